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
                # what could blind the grader's watch on a function (a profiler, its frames, another thread)
                "setprofile", "getprofile", "settrace", "gettrace", "_getframe", "vars"}
_RISKY_MODULES = {"builtins", "ctypes", "gc", "threading", "_thread", "multiprocessing"}
_KERNEL_HOOKS = {"set_custom_exc", "showtraceback", "register", "displayhook", "excepthook"}


def _root_name(node) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _parse(source: str):
    try:
        return ast.parse(source)
    except SyntaxError:
        try:  # IPython syntax (magics, shell escapes)
            from IPython.core.inputtransformer2 import TransformerManager

            return ast.parse(TransformerManager().transform_cell(source))
        except Exception:
            return None


def _findings(tree) -> list[str]:
    found = []

    def target(node, verb):
        if isinstance(node, ast.Attribute):
            root = _root_name(node)
            if root in _PATCHABLE_ROOTS or node.attr in _COMPARISONS or node.attr in _INTERNALS:
                found.append(f"{verb} {ast.unparse(node)}")
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in ("sys.modules", "__builtins__"):
            found.append(f"{verb} {ast.unparse(node)}")
        elif isinstance(node, ast.Name) and node.id == "checks":
            found.append(f"{verb} the name checks")
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                target(element, verb)

    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                target(t, "assigns to")
        elif isinstance(node, ast.Delete):
            for t in node.targets:
                target(t, "deletes")
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == "checks":
            found.append("defines its own checks")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                module = (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
                if (alias.asname or alias.name) == "checks" and module != "gutcourse":
                    found.append(f"imports something else as checks ({module or alias.name})")
                if module.split(".")[0] in _RISKY_MODULES or alias.name in _RISKY_MODULES:
                    found.append(f"imports {module or alias.name}")
        elif isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else \
                node.func.attr if isinstance(node.func, ast.Attribute) else None
            if name in _RISKY_CALLS:
                found.append(f"calls {name}()")
            elif name in _KERNEL_HOOKS and "get_ipython" in ast.unparse(node.func):
                found.append(f"changes the kernel with {ast.unparse(node.func)}")
        elif isinstance(node, ast.Name) and node.id == "get_ipython":
            found.append("uses get_ipython()")
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                "handout" in (alias.name or "") for alias in node.names) or \
                isinstance(node, ast.ImportFrom) and "handout" in (node.module or "") or \
                isinstance(node, ast.Attribute) and node.attr == "handout" or \
                isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                    "gutcourse.handout" in node.value or node.value.strip() == "handout"):
            # The channel that hands answers to the grader (gutcourse.handout): no answer needs it.
            found.append("reaches gutcourse.handout, which hands answers to the grader")
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
    for index, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        if cell.get("cell_type") != "code" or (meta and meta.get("locked")):
            continue
        tree = _parse(cell.source)
        if tree is not None:
            found.extend(f"cell {index + 1} {what}" for what in _findings(tree) + _redefined(tree, helpers))
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
