"""Which module-level names a cell of Python binds and reads, found without running it.

Used to keep bank entries that meet apart when they share a graded notebook
(:func:`gutcourse.grading.verify.plan_rounds`) and to find the names the referee never
takes from a student because a locked setup cell binds them (:class:`gutcourse.grading.referee.Referee`).
"""

from __future__ import annotations

import ast
import functools
import symtable

@functools.lru_cache(maxsize=4096)
def cell_names(source: str) -> tuple[frozenset[str], frozenset[str]] | None:
    """(module-level names a cell binds or changes in place, module-level names it reads); None when it does not parse.

    Scopes are Python's own (:mod:`symtable`): a comprehension's or a function's own
    variables are neither defined nor read at module level, so two answers that both
    write ``[g for g in groups]`` do not look as if they shared ``g``. A name whose item
    or attribute is assigned (``table["x"] = ...``, ``table.x = ...``, ``del table[0]``)
    or that is passed ``inplace=True`` counts as defined: the change reaches every cell.
    """
    try:
        tree = ast.parse(source)
        table = symtable.symtable(source, "<cell>", "exec")
    except (SyntaxError, ValueError):
        return None
    defined, read = set(), set()
    for sym in table.get_symbols():
        if sym.is_assigned() or sym.is_imported() or sym.is_namespace():
            defined.add(sym.get_name())
        if sym.is_referenced():
            read.add(sym.get_name())

    def nested(scope):
        for child in scope.get_children():
            for sym in child.get_symbols():
                if sym.is_global() or sym.is_declared_global():
                    if sym.is_referenced():
                        read.add(sym.get_name())
                    if sym.is_declared_global() and sym.is_assigned():
                        defined.add(sym.get_name())
            nested(child)

    nested(table)

    def root(node):
        while isinstance(node, (ast.Subscript, ast.Attribute)):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None

    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and any(
                k.arg == "inplace" for k in node.keywords):
            targets = [node.func.value]
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, (ast.Subscript, ast.Attribute)) and root(part):
                    defined.add(root(part))
            if isinstance(target, ast.Name) and isinstance(node, ast.Call):
                defined.add(target.id)
    return frozenset(defined), frozenset(read)
