"""Put a submitted notebook's graded cells back in order before nbgrader grades it.

Students delete, copy, split and retype cells, by accident or not. nbgrader
then misreads the notebook: a deleted test cell leaves its grade at "needs
manual grading" for ever (jupyter/nbgrader#1682), a copied cell's duplicate id
confuses it (#1083), and a forged grade cell aborts the whole notebook.
:class:`RepairCells` runs among nbgrader's sanitizing preprocessors, before
``OverwriteCells`` (``nbgrader_config.py`` puts it there), and makes the
notebook's nbgrader cells match the gradebook again:

- a cell whose grade id the gradebook does not know becomes an ordinary cell;
- of several cells with one grade id, a student's answer keeps its first copy
  (the others stay as ordinary cells, so a split answer still runs) and a
  locked cell (test, setup) keeps the copy that sits where the source puts it
  (the others are dropped);
- every nbgrader cell gets the gradebook's flags back (grade, solution, locked,
  points), so a test cell cannot be turned into something else;
- every missing locked, answer or test cell is restored from the gradebook
  (the released version: tests with their hidden part, answers empty), after
  the nearest cell that precedes it in the source notebook.

``OverwriteCells`` then restores the source of every locked cell and the type
of every nbgrader cell, as it always does. Answers are never changed.

:func:`tampering` reads the cells a student wrote for code that patches what the
tests rely on; the grader reports it for review (it does not change scores).
:func:`diagnose` explains why a submission folder has no gradable notebook.
"""

from __future__ import annotations

import ast
import functools
import json
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader.preprocessors import NbGraderPreprocessor

from ._notebooks import grade_id, nbgrader_meta
from .incidents import report as report_incident


def _source_order(config, assignment: str, notebook: str) -> list[str]:
    """Grade ids in the order of the source notebook (the gradebook keeps no order)."""
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    path = Path(coursedir.format_path(coursedir.source_directory, ".", assignment)) / f"{notebook}.ipynb"
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception:  # no source at hand: the gradebook's own order is the best left
        return []
    return [gid for gid in (grade_id(c) for c in nb.cells) if gid]


def _restored_cell(source_cell, grade_cell, is_solution: bool, is_task: bool):
    meta = {"grade": grade_cell is not None, "grade_id": source_cell.name, "locked": bool(source_cell.locked),
            "solution": is_solution, "schema_version": 3}
    if grade_cell is not None:
        meta["points"] = float(grade_cell.max_score)
    if is_task:
        meta["task"] = True
    if source_cell.checksum:
        meta["checksum"] = source_cell.checksum
    make = new_code_cell if source_cell.cell_type == "code" else new_markdown_cell
    cell = make(source=source_cell.source)
    cell.metadata["nbgrader"] = meta
    if source_cell.locked:
        cell.metadata["editable"] = False
        cell.metadata["deletable"] = False
    return cell


class RepairCells(NbGraderPreprocessor):
    """Restore missing, duplicated and altered nbgrader cells from the gradebook."""

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook, MissingEntry

        info = resources["nbgrader"]
        notebook_id, assignment_id = info["notebook"], info["assignment"]
        with Gradebook(info["db_url"]) as gb:
            try:
                notebook = gb.find_notebook(notebook_id, assignment_id)
            except MissingEntry:
                return nb, resources
            sources = {c.name: c for c in notebook.source_cells}
            grades = {c.name: c for c in notebook.grade_cells}
            solutions = {c.name for c in notebook.solution_cells}
            tasks = {c.name for c in notebook.task_cells}
            order = [gid for gid in _source_order(self.config, assignment_id, notebook_id) if gid in sources]
            order += [gid for gid in sources if gid not in order]
            notes = self._repair(nb, sources, grades, solutions, tasks, order)
        for note in notes:
            report_incident(note)
        found = tampering(nb)
        if found:
            report_incident("possible tampering with the tests, review by hand: " + "; ".join(found[:3]))
        return nb, resources

    def _repair(self, nb, sources, grades, solutions, tasks, order) -> list[str]:
        notes: list[str] = []
        chosen = self._choose(nb, sources, solutions, order)
        kept: dict[str, object] = {}
        cells = []
        for index, cell in enumerate(nb.cells):
            meta = nbgrader_meta(cell)
            if not meta:
                cells.append(cell)
                continue
            gid = meta.get("grade_id")
            if gid not in sources:
                del cell.metadata["nbgrader"]
                if gid is not None:
                    notes.append(f"cell {index + 1}: unknown grade id {gid!r} made an ordinary cell")
                cells.append(cell)
            elif chosen[gid] == index:
                kept[gid] = cell
                self._normalise(cell, sources[gid], grades.get(gid), gid in solutions, gid in tasks, notes)
                cells.append(cell)
            elif gid in solutions and not sources[gid].locked:
                del cell.metadata["nbgrader"]
                cells.append(cell)
                notes.append(f"cell {index + 1}: another copy of answer {gid} kept as an ordinary cell")
            else:
                notes.append(f"cell {index + 1}: duplicate of locked cell {gid} removed")
        missing = [gid for gid in order if gid not in kept]
        for gid in missing:
            restored = _restored_cell(sources[gid], grades.get(gid), gid in solutions, gid in tasks)
            before = [g for g in order[:order.index(gid)] if g in kept]
            position = cells.index(kept[before[-1]]) + 1 if before else 0
            cells.insert(position, restored)
            kept[gid] = restored
        if missing:
            notes.append(f"restored {len(missing)} deleted cell(s): {', '.join(missing[:6])}"
                         + (" ..." if len(missing) > 6 else ""))
        nb.cells = cells
        return notes

    @staticmethod
    def _choose(nb, sources, solutions, order) -> dict[str, int]:
        """For each grade id, the index of the cell that keeps it.

        A student's answer keeps its first copy. A locked cell (test, setup)
        keeps the first copy that comes after the cells chosen before it in the
        source order, so a copy pasted above the answer it tests is the one dropped.
        """
        where: dict[str, list[int]] = {}
        for index, cell in enumerate(nb.cells):
            gid = nbgrader_meta(cell).get("grade_id")
            if gid in sources:
                where.setdefault(gid, []).append(index)
        chosen: dict[str, int] = {}
        last = -1
        for gid in order:
            places = where.get(gid)
            if not places:
                continue
            if len(places) == 1 or (gid in solutions and not sources[gid].locked):
                chosen[gid] = places[0]
            else:
                chosen[gid] = next((i for i in places if i > last), places[-1])
            last = max(last, chosen[gid])
        return chosen

    @staticmethod
    def _normalise(cell, source_cell, grade_cell, is_solution: bool, is_task: bool, notes: list[str]) -> None:
        meta = cell.metadata["nbgrader"]
        wanted = {"grade": grade_cell is not None, "solution": is_solution, "locked": bool(source_cell.locked)}
        if is_task:
            wanted["task"] = True
        changed = [k for k, v in wanted.items() if bool(meta.get(k, False)) != v]
        meta.update(wanted)
        if grade_cell is not None:
            if float(meta.get("points", -1) or 0) != float(grade_cell.max_score):
                changed.append("points")
            meta["points"] = float(grade_cell.max_score)
        else:
            meta.pop("points", None)
        meta.setdefault("schema_version", 3)
        if changed:
            notes.append(f"cell {source_cell.name}: nbgrader settings {', '.join(changed)} put back")


# --------------------------------------------------------------------------- tampering
_PATCHABLE_ROOTS = {"checks", "builtins", "__builtins__", "gutcourse"}
_COMPARISONS = {"isclose", "allclose", "array_equal", "array_equiv", "assert_allclose", "assert_array_equal",
                "assert_almost_equal", "assert_frame_equal", "assert_series_equal", "assert_index_equal",
                "equals", "testing"}
_INTERNALS = {"__code__", "__globals__", "__defaults__", "__kwdefaults__", "__builtins__"}
_RISKY_CALLS = {"exec", "eval", "compile", "__import__", "setattr", "delattr",
                # what reaches a module by a name built at run time (red team round 8)
                "import_module", "reload",
                # what could blind the grader's watch on a function (a profiler, its frames, another thread)
                "setprofile", "getprofile", "settrace", "gettrace", "_getframe", "vars"}
_RISKY_MODULES = {"builtins", "ctypes", "gc", "threading", "_thread", "multiprocessing",
                  # modules that import or find a module by a computed name, or hand out frames
                  "importlib", "imp", "runpy", "pkgutil", "inspect", "pickle", "marshal"}
_KERNEL_HOOKS = {"set_custom_exc", "showtraceback", "register", "displayhook", "excepthook"}
# Reading these reaches a module, its namespace or a caller's without naming it: no answer needs them.
_REACH_ATTRS = {"__dict__", "__globals__", "__builtins__", "__subclasses__", "__getattribute__", "__loader__",
                "__spec__", "__import__", "__self__", "f_globals", "f_locals", "f_back", "tb_frame", "gi_frame",
                "cr_frame", "ag_frame"}
_REACH_NAMES = {"__builtins__", "__import__", "__loader__", "__spec__", "import_module"}
# Names a student could reach through getattr(obj, "...") as well as by writing them.
_REACH_STRINGS = _REACH_ATTRS | _INTERNALS | {"modules", "import_module", "handout", "__code__"}
_GETATTRS = {"getattr", "attrgetter"}
# Names a student's cell must not define: the grader's requests may go through them.
_SHADOWED = {"__import__", "__builtins__", "gutcourse"}


def _root_name(node) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _parse(source: str):
    """The cell's syntax tree (read, never changed, by the scans here), or None.

    Locked cells are the same in every submission, and a notebook is scanned twice: trees of
    sources up to 20,000 characters are kept (the last 512), so each is parsed once per process.
    """
    return _parse_kept(source) if len(source) <= 20_000 else _parse_now(source)


@functools.lru_cache(maxsize=512)
def _parse_kept(source: str):
    return _parse_now(source)


def _parse_now(source: str):
    try:
        return ast.parse(source)
    except SyntaxError:
        try:  # IPython syntax (magics, shell escapes)
            from IPython.core.inputtransformer2 import TransformerManager

            return ast.parse(TransformerManager().transform_cell(source))
        except Exception:
            return None


def _folded(node) -> str | None:
    """The string an expression of string constants builds ('gutcourse.' + 'hand' + 'out'), else None."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _folded(node.left), _folded(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.JoinedStr):
        parts = [_folded(v.value if isinstance(v, ast.FormattedValue) else v) for v in node.values]
        return None if None in parts else "".join(parts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join" \
            and len(node.args) == 1 and isinstance(node.args[0], (ast.List, ast.Tuple)) and not node.keywords:
        sep, parts = _folded(node.func.value), [_folded(e) for e in node.args[0].elts]
        return None if sep is None or None in parts else sep.join(parts)
    return None


def _names_handout(text: str | None) -> bool:
    return text is not None and ("gutcourse.handout" in text or text.strip() == "handout")


def _called_name(node) -> str | None:
    return node.func.id if isinstance(node.func, ast.Name) else \
        node.func.attr if isinstance(node.func, ast.Attribute) else None


class _Known:
    """What the notebook's imports and assignments bind, for a scan of one cell at a time.

    ``modules``: names bound by an import, in any cell (module-like: getattr on them with a computed name
    is flagged); ``sys``: names of the sys module; ``gutcourse``: names of the course's own modules
    (``import gutcourse.handout as _h``); ``reached``: names a student cell bound to what a computed name
    reached (a module from ``importlib.import_module``, ``sys.modules``, a ``__dict__``...). Assigning to
    an attribute or item of the last two is flagged.
    """

    def __init__(self, trees=(), locked=()):
        self.modules: set[str] = {"sys", "builtins", "importlib", "gutcourse"}
        self.sys: set[str] = {"sys"}
        self.gutcourse: set[str] = set()
        self.reached: set[str] = set()
        self.aliases: dict[str, str] = {}  # im -> import_module, after `from importlib import import_module as im`
        trees = [t for t in trees if t is not None]
        bindings, students = [], {id(t) for t in trees}
        for tree in trees + [t for t in locked if t is not None]:
            student = id(tree) in students
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        self.modules.add(alias.asname or alias.name.split(".")[0])
                        if alias.name == "sys" and alias.asname:
                            self.sys.add(alias.asname)
                        if alias.asname and alias.name.startswith("gutcourse."):
                            self.gutcourse.add(alias.asname)
                elif isinstance(node, ast.ImportFrom):
                    for alias in node.names:
                        bound = alias.asname or alias.name
                        self.modules.add(bound)
                        if (node.module or "") == "gutcourse" and _is_gutcourse_module(alias.name):
                            self.gutcourse.add(bound)
                        if alias.asname and alias.name in _RISKY_CALLS | _GETATTRS:
                            self.aliases[alias.asname] = alias.name
                        if node.module == "sys" and alias.name == "modules" and student:
                            self.reached.add(bound)
                elif student and (binding := self._binding(node)):
                    bindings.append(binding)
                    names, value = binding
                    if isinstance(node, ast.Assign) and isinstance(value, (ast.Name, ast.Attribute)):  # f = eval
                        name = value.id if isinstance(value, ast.Name) else value.attr
                        if name in _RISKY_CALLS | _GETATTRS:
                            self.aliases.update((t.id, name) for t in node.targets if isinstance(t, ast.Name))
        for names, value in bindings:  # _h = getattr(_g, _n): what it got may be a module (red team round 9)
            if isinstance(value, ast.Call) and self.computed_getattr(value, any_name=True) is not None:
                self.reached |= names
        # A name bound to what reached a module, or to anything that mentions such a name (_h2 = _h),
        # spread along the bindings once each: a loop to a fixed point took time growing with the
        # square of a chain of assignments (27 s for 4,000 lines; red team round 9).
        readers: dict[str, list[int]] = {}
        for index, (_, value) in enumerate(bindings):
            for name in {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}:
                readers.setdefault(name, []).append(index)
        spread = list(self.reached)
        for names, value in bindings:
            if not names <= self.reached and self._reaches_in(value):
                spread += names - self.reached
                self.reached |= names
        while spread:
            for index in readers.get(spread.pop(), ()):
                new = bindings[index][0] - self.reached
                self.reached |= new
                spread += new

    @staticmethod
    def _binding(node):
        """(names bound, the expression bound to them) for an assignment, a loop, a with; else None."""
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            targets, value = [node.target], node.iter
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            targets, value = [node.optional_vars], node.context_expr
        else:
            return None
        names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        return (names, value) if names else None

    def _reaches_in(self, value) -> bool:
        return any(self.reaches(n) for n in ast.walk(value))

    def called(self, node) -> str | None:
        """The name a call calls, seen through the aliases above."""
        name = _called_name(node)
        return self.aliases.get(name, name) if isinstance(node.func, ast.Name) else name

    def is_sys_modules(self, node) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "modules" and (
            isinstance(node.value, ast.Name) and node.value.id in self.sys
            or isinstance(node.value, ast.Attribute) and node.value.attr == "sys")

    def computed_getattr(self, node, any_name: bool = False) -> str | None:
        """Why a getattr() call is flagged: a name it is given that reaches internals, or one built at run time.

        ``any_name``: also a plain variable as the name, on any object (what such a call returns may be a
        module: ``_g = gutcourse; _h = getattr(_g, name)``)."""
        called = self.called(node) if isinstance(node, ast.Call) else None
        if not (called in _GETATTRS and node.args):
            return None
        if called == "attrgetter":
            obj, names = None, node.args
        else:
            obj, names = node.args[0], node.args[1:2]
        for name in names:
            text = _folded(name)
            if text is not None and text.split(".")[-1] in _REACH_STRINGS:
                return f"calls {called}() for {text}"
            if isinstance(name, ast.Constant):
                continue
            if obj is not None and _root_name(obj) in self.modules | self.gutcourse | self.reached:
                return f"calls {called}() on {_root_name(obj)} with a computed name"
            if isinstance(name, (ast.BinOp, ast.JoinedStr, ast.Call)):
                return f"calls {called}() with a name built at run time"
            if any_name:
                return f"calls {called}() with a name computed at run time"
        return None

    def reaches(self, node) -> bool:
        """Whether ``node`` is a step that reaches a module or a namespace by a computed name."""
        return (isinstance(node, ast.Name) and (node.id in self.reached or node.id in _REACH_NAMES)
                or isinstance(node, ast.Attribute) and (node.attr in _REACH_ATTRS or self.is_sys_modules(node))
                or isinstance(node, ast.Call) and (self.called(node) in {"import_module", "__import__", "reload",
                                                                          "vars"}
                                                   or self.computed_getattr(node) is not None))


def _is_gutcourse_module(name: str) -> bool:
    """Whether gutcourse.<name> is one of the package's modules (not a function or a constant)."""
    package = Path(__file__).resolve().parents[1]
    return (package / f"{name}.py").is_file() or (package / name / "__init__.py").is_file()


def _findings(tree, known: _Known | None = None) -> list[str]:
    found = []
    known = known if known is not None else _Known([tree])
    roots = _PATCHABLE_ROOTS | known.gutcourse | known.reached

    def through_reach(node) -> bool:
        # sys.modules[...].x = ..., importlib.import_module(...).x = ..., vars(m)[...] = ...
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
            if known.reaches(node):
                return True
        return False

    def target(node, verb):
        if isinstance(node, ast.Attribute):
            root = _root_name(node)
            if root in roots or node.attr in _COMPARISONS or node.attr in _INTERNALS or through_reach(node):
                found.append(f"{verb} {ast.unparse(node)}")
        elif isinstance(node, ast.Subscript) and (ast.unparse(node.value) in ("sys.modules", "__builtins__")
                                                  or _root_name(node) in roots or through_reach(node)):
            found.append(f"{verb} {ast.unparse(node)}")
        elif isinstance(node, ast.Name) and node.id == "checks":
            found.append(f"{verb} the name checks")
        elif isinstance(node, ast.Name) and node.id in _SHADOWED:
            found.append(f"{verb} {node.id}")
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                target(element, verb)

    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    inner = set()  # the shorter chains inside one already reported (e.tb_frame inside e.tb_frame.f_globals)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                target(t, "assigns to")
        elif isinstance(node, ast.Delete):
            for t in node.targets:
                target(t, "deletes")
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == "checks":
            found.append("defines its own checks")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in _SHADOWED:
            # The grader's requests may name these in the student's namespace (red team round 9).
            found.append(f"defines {node.name}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                module = (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
                if (alias.asname or alias.name) == "checks" and module != "gutcourse":
                    found.append(f"imports something else as checks ({module or alias.name})")
                if module.split(".")[0] in _RISKY_MODULES or alias.name in _RISKY_MODULES:
                    found.append(f"imports {module or alias.name}")
                elif module == "sys" and alias.name in ("modules", "_getframe", "setprofile", "settrace"):
                    found.append(f"imports sys.{alias.name}")
        elif isinstance(node, ast.Call):
            name = known.called(node)
            if name in _RISKY_CALLS and not (name == "compile" and isinstance(node.func, ast.Attribute)
                                             and _root_name(node.func) in ("re", "_re", "regex")):
                found.append(f"calls {name}()")
            elif name in _KERNEL_HOOKS and "get_ipython" in ast.unparse(node.func):
                found.append(f"changes the kernel with {ast.unparse(node.func)}")
            elif (why := known.computed_getattr(node)) is not None:
                found.append(why)
        elif isinstance(node, ast.Name) and node.id == "get_ipython":
            found.append("uses get_ipython()")
        elif isinstance(node, ast.Name) and node.id in _REACH_NAMES and isinstance(node.ctx, ast.Load) \
                and id(node) not in called:
            found.append(f"uses {node.id}")
        elif isinstance(node, ast.Attribute) and (node.attr in _REACH_ATTRS or known.is_sys_modules(node)) \
                and not (id(node) in called and node.attr in _RISKY_CALLS) and id(node) not in inner:
            found.append(f"uses {ast.unparse(node)}")
            inner.update(id(n) for n in ast.walk(node.value))
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                "handout" in (alias.name or "") for alias in node.names) or \
                isinstance(node, ast.ImportFrom) and "handout" in (node.module or "") or \
                isinstance(node, ast.Attribute) and node.attr == "handout" or \
                isinstance(node, (ast.Constant, ast.BinOp, ast.JoinedStr, ast.Call)) and _names_handout(_folded(node)):
            # The channel that hands answers to the grader (gutcourse.handout): no answer needs it.
            found.append("reaches gutcourse.handout, which hands answers to the grader")
    # The clearest finding first: the grader's note shows only the first three.
    found.sort(key=lambda f: "gutcourse.handout" not in f)
    return list(dict.fromkeys(found))


def _locked_helpers(nb) -> set[str]:
    """Private names (``_answer``, ``_library_calls``) that locked cells define for the tests."""
    names = set()
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if cell.get("cell_type") != "code" or not (meta and meta.get("locked")):
            continue
        tree = _parse(cell.source)
        if tree is None:
            continue
        test = bool(meta.get("grade")) and not meta.get("solution")
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign) and not test:
                # A test cell's own temporaries (_r, _name) are not helpers: students may use such names.
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return {n for n in names if n.startswith("_")}


def _redefined(tree, helpers: set[str]) -> list[str]:
    """Student code that rebinds a test helper a locked cell defined."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name in helpers:
            found.append(f"redefines the test helper {node.name}")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for t in targets:
                for name in ast.walk(t):
                    if isinstance(name, ast.Name) and name.id in helpers:
                        found.append(f"rebinds the test helper {name.id}")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            found.extend(f"imports over the test helper {a.asname or a.name}" for a in node.names
                         if (a.asname or a.name) in helpers)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            found.extend(f"declares the test helper {n} global" for n in node.names if n in helpers)
    return found


def tampering(nb) -> list[str]:
    """What the student-written code cells of ``nb`` do to the helpers tests rely on."""
    found = []
    helpers = _locked_helpers(nb)
    student, locked = {}, []
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        meta = nbgrader_meta(cell)
        tree = _parse(cell.source)
        if meta and meta.get("locked"):
            locked.append(tree)
        elif tree is not None:
            student[index] = tree
    # Names bound in one cell (import sys as s, _h = importlib.import_module(...)) are used in others.
    known = _Known(student.values(), locked)
    for index, tree in student.items():
        found.extend(f"cell {index + 1} {what}" for what in _findings(tree, known) + _redefined(tree, helpers))
    return found


# --------------------------------------------------------------------------- diagnosis
def diagnose(folder: Path, notebooks: list[str]) -> str | None:
    """Why the submission in ``folder`` cannot be graded, in words for the instructor (None if it can)."""
    folder = Path(folder)
    if not folder.is_dir():
        return "no submission folder"
    present = sorted(p.name for p in folder.glob("*.ipynb"))
    problems = []
    for name in notebooks:
        path = folder / f"{name}.ipynb"
        if not path.is_file():
            others = [p for p in present if p != f"{name}.ipynb"]
            hint = f"; found {', '.join(others[:3])} (rename it to {name}.ipynb to grade it)" if others else ""
            problems.append(f"MissingNotebook: no {name}.ipynb in the submission{hint}")
            continue
        text = path.read_bytes()
        if not text.strip():
            problems.append(f"EmptyNotebook: {name}.ipynb is an empty file")
            continue
        try:
            json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            where = f" (line {err.lineno})" if isinstance(err, json.JSONDecodeError) else ""
            problems.append(f"NotJSONError: {name}.ipynb is not a readable notebook: "
                            f"it is cut off or damaged{where}")
            continue
        try:
            nbformat.validate(nbformat.reads(text.decode("utf-8"), as_version=4))
        except Exception as err:
            problems.append(f"InvalidNotebook: {name}.ipynb is not a valid notebook "
                            f"({type(err).__name__}: {str(err).splitlines()[0][:120]})")
    return "; ".join(problems) or None
