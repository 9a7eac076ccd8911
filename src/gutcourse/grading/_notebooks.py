"""Reading and writing the cells of nbgrader notebooks."""

from __future__ import annotations

import re

_SOLUTION_MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


def nbgrader_meta(cell) -> dict:
    """The cell's nbgrader metadata, or an empty dict."""
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def is_test(cell) -> bool:
    """An autograder test cell: graded code that is not a solution."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def is_answer(cell) -> bool:
    """A cell the student writes in (autograded code or manually graded answer)."""
    return bool(nbgrader_meta(cell).get("solution"))


def is_autograded_answer(cell) -> bool:
    return cell.get("cell_type") == "code" and is_answer(cell)


def cells_by_id(nb) -> dict:
    """Map grade id -> cell for every nbgrader cell of ``nb``."""
    return {grade_id(c): c for c in nb.cells if grade_id(c)}


def strip_solution_markers(source: str) -> str:
    """The solution as a student would have typed it: delimiter lines removed."""
    return "\n".join(line for line in source.splitlines() if not _SOLUTION_MARKER.match(line))


def question_of(gid: str) -> str | None:
    """``q2_1_shannon_tests`` -> ``q2_1``; None when the id does not name a question."""
    m = re.match(r"^(q\d+_\d+)_", gid or "")
    return m.group(1) if m else None


def fill_answers(release_nb, source_nb, replacements: dict | None = None):
    """A submission made from the student version: every answer cell filled in.

    Answers come from the source notebook's solutions; ``replacements`` maps a grade
    id to the source to use instead (a misconception, a partial answer). Returns a
    new notebook; ``release_nb`` is not changed.
    """
    import copy

    replacements = dict(replacements or {})
    solutions = cells_by_id(source_nb)
    nb = copy.deepcopy(release_nb)
    for cell in nb.cells:
        gid = grade_id(cell)
        if not gid or not is_answer(cell):
            continue
        if gid in replacements:
            cell.source = replacements.pop(gid)
        elif gid in solutions:
            cell.source = strip_solution_markers(solutions[gid].source)
    if replacements:
        raise KeyError(f"no answer cell with grade id {sorted(replacements)!r}")
    return nb


def error_messages(nb) -> dict[str, str]:
    """For each test cell of an executed notebook, the text of its error (empty if none)."""
    messages = {}
    for cell in nb.cells:
        if not is_test(cell):
            continue
        parts = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                parts.append(f"{out.get('ename', '')}: {out.get('evalue', '')}")
        messages[grade_id(cell)] = "\n".join(parts)
    return messages
