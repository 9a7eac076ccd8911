"""Item analysis of a graded assignment: ``gutcourse report ASSIGNMENT``.

nbgrader gives each student a score; it does not tell an instructor which
questions a class found hard, which ones separate strong from weak work, or
what the tests said when they failed. This module does, in three steps:

- :func:`collect_class_results` reads the gradebook, the autograded notebooks
  and the source notebook into a :class:`ClassResults` (I/O only);
- :func:`item_analysis` computes the statistics of classical test theory per
  question and per learning objective (pure pandas/numpy);
- :func:`write_report` (in :mod:`gutcourse.grading.report_render`) writes one self-contained HTML page,
  rendered by an autoescaping Jinja2 template, plus CSV and PNG files.

:func:`write_class_report` chains the three.

Only autograder test cells are analysed: written answers are graded by hand
and their scores may not exist yet when the report is wanted.

References
----------
Ebel, R. L. & Frisbie, D. A. (1991). *Essentials of Educational Measurement*,
5th ed. Prentice Hall (no DOI): an index of discrimination of 0.40 and up is
very good, 0.30-0.39 reasonably good, 0.20-0.29 marginal, below 0.20 poor.
They state it for the upper-minus-lower-group index; here it is applied to the
corrected item-total correlation, as is common practice. The difficulty bounds
(below 0.3 hard, above 0.9 easy) are rules of thumb, not a published standard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ._course import course_path, course_root
from ._notebooks import grade_id, is_test, question_of
from .autograde import read_result

__all__ = [
    "ClassResults",
    "ItemAnalysis",
    "collect_class_results",
    "item_analysis",
    "write_report",
    "write_class_report",
    "normalise_message",
    "HARD_BELOW",
    "EASY_ABOVE",
    "WEAK_DISCRIMINATION_BELOW",
    "TOP_MESSAGES",
]

HARD_BELOW = 0.3
EASY_ABOVE = 0.9
WEAK_DISCRIMINATION_BELOW = 0.2
TOP_MESSAGES = 3
# A correlation across two students is always +1 or -1: it says nothing about the item.
MIN_STUDENTS_FOR_DISCRIMINATION = 3

_OBJECTIVE_DEF = re.compile(r"^\s*(?:[-*+]\s+)?\*\*(O\d+)\*\*\s*(.+?)\s*[;.]?\s*$", re.MULTILINE)
_ASSERTION_PREFIX = re.compile(r"^AssertionError(?::\s*|$)")
_NO_MESSAGE = "(failed without a message)"


# --- collecting ------------------------------------------------------------------------------

@dataclass
class ClassResults:
    """What a class earned on one assignment, per autograded question.

    Attributes
    ----------
    assignment : str
    scores : pandas.DataFrame
        Index ``student``, one column per question id (``"q1_1"``) in notebook order:
        points earned on the question's autograder test cells.
    max_points : pandas.Series
        Question id -> points its test cells are worth.
    messages : pandas.DataFrame
        One row per failed test cell: ``student``, ``question``, ``grade_id``, ``message``
        (as nbgrader recorded it, e.g. ``"AssertionError: ..."``).
    objectives : pandas.Series
        Question id -> learning objective id (``"O2"``).
    objective_text : dict
        Objective id -> its wording in the notebook's introduction.
    errors : dict
        Student -> why the submission has no usable grades; excluded from the statistics.
    """

    assignment: str
    scores: pd.DataFrame
    max_points: pd.Series
    messages: pd.DataFrame
    objectives: pd.Series
    objective_text: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def parse_objectives(markdown: str) -> dict[str, str]:
    """``**O2** convert a marker ...;`` lines -> ``{"O2": "convert a marker ..."}`` (first definition wins)."""
    found: dict[str, str] = {}
    for oid, text in _OBJECTIVE_DEF.findall(markdown):
        found.setdefault(oid, text)
    return found


def _test_cells(source_nb) -> list[tuple[str, str, float, str]]:
    """(grade id, question, points, objective) of every autograder test cell tied to a question."""
    cells = []
    for cell in source_nb.cells:
        gid = grade_id(cell)
        if not is_test(cell) or question_of(gid) is None:
            continue
        points = float(cell.metadata.get("nbgrader", {}).get("points", 0) or 0)
        objective = cell.metadata.get("gutcourse", {}).get("objective") or ""
        cells.append((gid, question_of(gid), points, objective))
    return cells


def _students(config, assignment: str, gradebook) -> list[str]:
    """Everyone with a submission in the gradebook or in ``submitted/``: a submission
    that never reached the gradebook must show up as ungraded, not vanish."""
    from nbgrader.api import MissingEntry

    names: set[str] = set()
    try:
        names.update(s.student.id for s in gradebook.find_assignment(assignment).submissions)
    except MissingEntry:
        pass
    submitted = course_path(config, "submitted", ".")
    if submitted.is_dir():
        names.update(p.name for p in submitted.iterdir()
                     if course_path(config, "submitted", assignment, p.name).is_dir())
    return sorted(names)


def collect_class_results(config, assignment: str) -> ClassResults:
    """Read a graded assignment from the gradebook and the source notebook.

    A submission counts as graded when the gradebook holds a score for every
    autograder test cell of the source notebook; anything else (never graded,
    autograde failed, graded against another version of the notebook) goes to
    ``errors`` with the reason.
    """
    import nbformat
    from nbgrader.api import Gradebook

    source_path = course_path(config, "source", assignment, notebook=assignment)
    source_nb = nbformat.read(str(source_path), as_version=4)
    tests = _test_cells(source_nb)
    questions = list(dict.fromkeys(q for _, q, _, _ in tests))
    max_points = pd.Series({q: sum(p for _, qq, p, _ in tests if qq == q) for q in questions},
                           name="max_points", dtype=float)
    max_points.index.name = "question"
    # A question's objective is that of its first test cell; the lint ties all its cells to one.
    objectives = pd.Series({q: next(o for _, qq, _, o in tests if qq == q) for q in questions},
                           name="objective", dtype=str)
    objectives.index.name = "question"
    markdown = "\n".join(c.source for c in source_nb.cells if c.cell_type == "markdown")

    rows: dict[str, dict[str, float]] = {}
    messages: list[dict] = []
    errors: dict[str, str] = {}
    with Gradebook(config.CourseDirectory.db_url) as gb:
        for student in _students(config, assignment, gb):
            result = read_result(config, assignment, student, gradebook=gb)
            if result.error:
                errors[student] = result.error
                continue
            missing = [gid for gid, _, _, _ in tests
                       if gid not in result.cells or result.cells[gid].points is None]
            if missing:
                errors[student] = ("no autograder score for " + ", ".join(missing[:3])
                                   + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
                                   + " (autograding failed or used another version of the notebook)")
                continue
            earned = dict.fromkeys(questions, 0.0)
            for gid, question, points, _ in tests:
                cell = result.cells[gid]
                earned[question] += float(cell.points)
                if cell.points < cell.max_points:
                    messages.append({"student": student, "question": question,
                                     "grade_id": gid, "message": cell.message})
            rows[student] = earned

    scores = pd.DataFrame.from_dict(rows, orient="index", columns=questions, dtype=float)
    scores.index.name = "student"
    scores.columns.name = "question"
    return ClassResults(
        assignment=assignment,
        scores=scores,
        max_points=max_points,
        messages=pd.DataFrame(messages, columns=["student", "question", "grade_id", "message"]),
        objectives=objectives,
        objective_text=parse_objectives(markdown),
        errors=errors,
    )


# --- analysing -------------------------------------------------------------------------------

@dataclass
class ItemAnalysis:
    """Classical item statistics for one assignment.

    Attributes
    ----------
    items : pandas.DataFrame
        Index ``question``; columns ``objective``, ``n``, ``max_points``, ``mean_points``,
        ``difficulty`` (mean fraction of points), ``discrimination`` (corrected item-total
        correlation), ``flags``, ``note`` and ``score_distribution`` (``"points:students"`` pairs).
    distributions : dict
        Question -> Series of student counts indexed by points earned.
    messages : pandas.DataFrame
        ``question``, ``rank``, ``message`` (normalised), ``count`` (students), ``grade_ids``;
        every message, most frequent first within each question.
    objectives : pandas.DataFrame
        Index ``objective``; columns ``text``, ``questions``, ``n_questions``, ``points``,
        ``mean_points``, ``mean_fraction``.
    totals : pandas.Series
        Autograded points per student.
    """

    assignment: str
    n_students: int
    max_total: float
    items: pd.DataFrame
    distributions: dict[str, pd.Series]
    messages: pd.DataFrame
    objectives: pd.DataFrame
    totals: pd.Series
    errors: dict[str, str] = field(default_factory=dict)

    def top_messages(self, question: str, n: int = TOP_MESSAGES) -> pd.DataFrame:
        """The ``n`` most frequent failure messages of one question."""
        rows = self.messages[self.messages["question"] == question]
        return rows.head(n).reset_index(drop=True)


def normalise_message(message: str) -> str:
    """One line per failure, without the ``AssertionError:`` every test failure carries.

    Only the assertion prefix is removed: it is the test's verdict, and the text after
    it is the test's message. Other exception names stay, because they are the message
    (``KeyError: 'crp'`` would read ``'crp'`` alone).
    """
    text = " ".join(str(message or "").split())
    text = _ASSERTION_PREFIX.sub("", text)
    return text or _NO_MESSAGE


def _constant(values: np.ndarray) -> bool:
    return values.size == 0 or bool(np.all(np.abs(values - values[0]) <= 1e-12))


def _discrimination(item: np.ndarray, rest: np.ndarray) -> tuple[float, str]:
    """Pearson correlation of item and rest-of-test scores, or NaN with the reason."""
    if item.size < MIN_STUDENTS_FOR_DISCRIMINATION:
        return float("nan"), f"discrimination needs at least {MIN_STUDENTS_FOR_DISCRIMINATION} students"
    if _constant(item):
        return float("nan"), "every student earned the same points here, so the question cannot separate students"
    if _constant(rest):
        return float("nan"), ("every student earned the same points on the rest of the assignment, "
                              "so there is nothing to correlate with")
    return float(np.corrcoef(item, rest)[0, 1]), ""


def _flags(difficulty: float, discrimination: float) -> list[str]:
    flags = []
    if difficulty < HARD_BELOW:
        flags.append("hard")
    elif difficulty > EASY_ABOVE:
        flags.append("easy")
    if discrimination < WEAK_DISCRIMINATION_BELOW:
        flags.append("weak discrimination")
    return flags


def _format_distribution(counts: pd.Series) -> str:
    return " ".join(f"{score:g}:{int(n)}" for score, n in counts.items())


def item_analysis(results: ClassResults) -> ItemAnalysis:
    """Per question: difficulty, discrimination, score distribution and failure messages;
    per learning objective: the mean fraction of points.

    Difficulty is the mean fraction of the question's points the class earned
    (the item's classical p-value: high means easy). Discrimination is the corrected
    item-total correlation: Pearson's r between the points on the question and the
    points on every other autograded question, across students. Correcting (leaving
    the item out of the total) keeps an item from correlating with itself.
    """
    scores = results.scores.astype(float)
    questions = list(results.max_points.index)
    totals = scores.sum(axis=1).rename("total")
    n = len(scores)

    rows, distributions = {}, {}
    for q in questions:
        item = scores[q].to_numpy() if q in scores else np.array([])
        top = float(results.max_points[q])
        mean = float(item.mean()) if item.size else float("nan")
        difficulty = mean / top if top > 0 and item.size else float("nan")
        discrimination, note = _discrimination(item, totals.to_numpy() - item)
        if discrimination < 0:
            note = ("negative: students who did well elsewhere lost more points here; "
                    "check the question and its tests")
        counts = pd.Series(item).value_counts().sort_index()
        counts.index.name = "points"
        counts.name = "students"
        distributions[q] = counts
        rows[q] = {
            "objective": results.objectives.get(q, ""),
            "n": int(item.size),
            "max_points": top,
            "mean_points": mean,
            "difficulty": difficulty,
            "discrimination": discrimination,
            "flags": "; ".join(_flags(difficulty, discrimination)),
            "note": note,
            "score_distribution": _format_distribution(counts),
        }
    items = pd.DataFrame.from_dict(rows, orient="index",
                                   columns=["objective", "n", "max_points", "mean_points", "difficulty",
                                            "discrimination", "flags", "note", "score_distribution"])
    items.index.name = "question"

    return ItemAnalysis(
        assignment=results.assignment,
        n_students=n,
        max_total=float(results.max_points.sum()),
        items=items,
        distributions=distributions,
        messages=_count_messages(results.messages, questions),
        objectives=_objective_summary(results, scores, questions),
        totals=totals,
        errors=dict(results.errors),
    )


def _count_messages(messages: pd.DataFrame, questions: list[str]) -> pd.DataFrame:
    columns = ["question", "rank", "message", "count", "grade_ids"]
    if messages.empty:
        return pd.DataFrame(columns=columns)
    df = messages.assign(message=messages["message"].map(normalise_message))
    order = {q: i for i, q in enumerate(questions)}
    grouped = (df.groupby(["question", "message"], sort=False)
                 .agg(count=("student", "nunique"),
                      grade_ids=("grade_id", lambda s: ", ".join(dict.fromkeys(s))))
                 .reset_index())
    grouped["_order"] = grouped["question"].map(order)
    # Ties are broken by message text so the order does not depend on who was graded first.
    grouped = grouped.sort_values(["_order", "count", "message"], ascending=[True, False, True])
    grouped["rank"] = grouped.groupby("question").cumcount() + 1
    return grouped[columns].reset_index(drop=True)


def _objective_summary(results: ClassResults, scores: pd.DataFrame, questions: list[str]) -> pd.DataFrame:
    ids = list(dict.fromkeys([*results.objective_text, *results.objectives.tolist()]))
    ids = [o for o in ids if o]
    rows = {}
    for oid in ids:
        qs = [q for q in questions if results.objectives.get(q) == oid]
        points = float(results.max_points[qs].sum()) if qs else 0.0
        mean = float(scores[qs].sum(axis=1).mean()) if qs and len(scores) else float("nan")
        rows[oid] = {
            "text": results.objective_text.get(oid, ""),
            "questions": ", ".join(qs),
            "n_questions": len(qs),
            "points": points,
            "mean_points": mean,
            "mean_fraction": mean / points if points > 0 else float("nan"),
        }
    table = pd.DataFrame.from_dict(rows, orient="index",
                                   columns=["text", "questions", "n_questions", "points",
                                            "mean_points", "mean_fraction"])
    table.index.name = "objective"
    return table


def write_class_report(config, assignment: str, out_dir=None) -> Path:
    """Collect, analyse and write; the default folder is ``<course>/reports/<assignment>/``."""
    results = collect_class_results(config, assignment)
    analysis = item_analysis(results)
    out = Path(out_dir) if out_dir is not None else course_root(config) / "reports" / assignment
    return write_report(analysis, out, title=f"Item analysis: {assignment}")


from .report_render import write_report  # noqa: E402  (rendering lives apart from the statistics)
