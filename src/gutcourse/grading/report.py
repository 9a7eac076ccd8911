"""Item analysis of a graded assignment: ``gutcourse report ASSIGNMENT``.

nbgrader gives each student a score; it does not tell an instructor which
questions a class found hard, which ones separate strong from weak work, or
what the tests said when they failed. This module does, in three steps:

- :func:`collect_class_results` reads the gradebook, the autograded notebooks
  and the source notebook into a :class:`ClassResults` (I/O only);
- :func:`item_analysis` computes the statistics of classical test theory per
  question and per learning objective (pure pandas/numpy);
- :func:`write_report` writes one self-contained HTML page plus CSV and PNG files.

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

import base64
import html
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..plotting import PALETTE
from ._course import course_root
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
    submitted = course_root(config) / "submitted"
    if submitted.is_dir():
        names.update(p.name for p in submitted.iterdir() if (p / assignment).is_dir())
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

    source_path = course_root(config) / "source" / assignment / f"{assignment}.ipynb"
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


# --- figures ---------------------------------------------------------------------------------

def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    # No software/date metadata, so the same analysis gives byte-identical files.
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    return buffer.getvalue()


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# Okabe-Ito yellow is too pale for markers on white.
_POINT_COLOURS = tuple(c for c in PALETTE if c != "#F0E442")


def _difficulty_discrimination_figure(analysis: ItemAnalysis) -> tuple[bytes, str]:
    items = analysis.items
    fig = _new_figure(6.4, 4.8)
    ax = fig.add_subplot()
    ax.axvspan(0, HARD_BELOW, color="#DDDDDD", alpha=0.6, lw=0)
    ax.axvspan(EASY_ABOVE, 1, color="#DDDDDD", alpha=0.6, lw=0)
    ax.axhline(WEAK_DISCRIMINATION_BELOW, color="black", ls="--", lw=1)
    ax.axhline(0, color="#777777", lw=0.8)
    ax.text(HARD_BELOW / 2, 0.97, "hard", ha="center", va="top", fontsize=9)
    ax.text((EASY_ABOVE + 1) / 2, 0.97, "easy", ha="center", va="top", fontsize=9)
    ax.text(0.5, WEAK_DISCRIMINATION_BELOW - 0.03, f"weak discrimination (below {WEAK_DISCRIMINATION_BELOW:g})",
            ha="center", va="top", fontsize=9)
    shown = items.dropna(subset=["difficulty", "discrimination"])
    objectives = list(dict.fromkeys(shown["objective"]))
    for i, oid in enumerate(objectives):
        part = shown[shown["objective"] == oid]
        ax.scatter(part["difficulty"], part["discrimination"], s=50, marker=_MARKERS[i % len(_MARKERS)],
                   color=_POINT_COLOURS[i % len(_POINT_COLOURS)], edgecolor="black", linewidth=0.5,
                   label=oid or "no objective", zorder=3)
    for q, row in shown.iterrows():
        ax.annotate(q, (row["difficulty"], row["discrimination"]), xytext=(5, 4),
                    textcoords="offset points", fontsize=8)
    if objectives:
        ax.legend(title="objective", fontsize=8, title_fontsize=8, loc="lower right")
    missing = [q for q in items.index if q not in shown.index]
    if missing:
        ax.text(0.01, -0.97, "not shown (undefined): " + ", ".join(missing), fontsize=8, va="bottom")
    ax.set_xlim(0, 1)
    ax.set_ylim(-1, 1)
    ax.set_xlabel("difficulty (mean fraction of points earned; higher is easier)")
    ax.set_ylabel("discrimination (corrected item-total r)")
    ax.set_title(f"{analysis.assignment}: difficulty and discrimination per question")

    def named(flag):
        return ", ".join(items.index[items["flags"].str.contains(flag)]) or "none"

    alt = (f"Scatter plot of discrimination (vertical, -1 to 1) against difficulty (horizontal, 0 to 1) "
           f"for {len(shown)} of {len(items)} questions of {analysis.assignment}, each point labelled with "
           f"its question id and shaped by learning objective. Hard (difficulty below {HARD_BELOW:g}): "
           f"{named('hard')}. Easy (above {EASY_ABOVE:g}): {named('easy')}. "
           f"Weak discrimination (below {WEAK_DISCRIMINATION_BELOW:g}): {named('weak')}."
           + (f" Not plotted because discrimination is undefined: {', '.join(missing)}." if missing else ""))
    return _png(fig), alt


def _score_distributions_figure(analysis: ItemAnalysis) -> tuple[bytes, str]:
    questions = list(analysis.items.index)
    ncols = min(4, max(1, len(questions)))
    nrows = max(1, -(-len(questions) // ncols))
    fig = _new_figure(2.4 * ncols + 0.6, 2.0 * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    described = []
    for ax, q in zip(axes.flat, questions):
        counts = analysis.distributions[q]
        top = float(analysis.items.loc[q, "max_points"])
        # Every whole score from 0 to the maximum gets a slot, so an empty bar is visible as empty.
        slots = sorted(set(np.arange(0, top + 1e-9, 1.0).tolist()) | set(counts.index.tolist()))
        heights = [int(counts.get(s, 0)) for s in slots]
        ax.bar([f"{s:g}" for s in slots], heights, color=PALETTE[4], edgecolor="black", linewidth=0.5)
        ax.set_title(f"{q} ({analysis.items.loc[q, 'objective']})", fontsize=9)
        ax.set_xlabel("points earned", fontsize=8)
        ax.tick_params(labelsize=8)
        described.append(f"{q}: " + ", ".join(f"{n} at {s:g}" for s, n in zip(slots, heights)))
    for ax in axes[:, 0]:
        ax.set_ylabel("students", fontsize=8)
    for ax in list(axes.flat)[len(questions):]:
        ax.set_visible(False)
    if not questions:
        axes[0, 0].text(0.5, 0.5, "no autograded questions", ha="center", va="center")
    fig.suptitle(f"{analysis.assignment}: points earned per question (n = {analysis.n_students} students)",
                 fontsize=10)
    alt = (f"Bar charts, one per question, of how many of the {analysis.n_students} students earned each "
           f"number of points. " + "; ".join(described) + ".")
    return _png(fig), alt


# --- writing ---------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem;
       color: #1a1a1a; line-height: 1.5; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.92rem; }
caption { text-align: left; font-weight: 600; padding: 0.3rem 0; }
th, td { border: 1px solid #999; padding: 0.25rem 0.5rem; vertical-align: top; }
thead th { background: #e8e8e8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; }
figcaption { font-size: 0.9rem; color: #333; }
.flag { font-weight: 600; }
"""


def _e(value) -> str:
    return html.escape(str(value))


def _num(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _table(caption: str, header: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """An HTML table; cells are already escaped; column 0 is the row header."""
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in header)
    body = []
    for row in rows:
        cells = [f'<th scope="row">{row[0]}</th>']
        cells += [f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                  for i, c in enumerate(row[1:], start=1)]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<table><caption>{_e(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _figure(png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_e(alt)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _html(analysis: ItemAnalysis, title: str, figures: dict[str, tuple[bytes, str]]) -> str:
    items = analysis.items
    parts = [f"<h1>{_e(title)}</h1>"]
    mean_total = float(analysis.totals.mean()) if analysis.n_students else float("nan")
    parts.append(
        f"<p>Assignment <code>{_e(analysis.assignment)}</code>: {analysis.n_students} graded "
        f"submission{'s' if analysis.n_students != 1 else ''}"
        + (f", {len(analysis.errors)} could not be graded (listed below)" if analysis.errors else "")
        + f". Mean autograded score {_num(mean_total, 1)} of {analysis.max_total:g} points. "
        "Written answers are graded by hand and are not part of this analysis.</p>")

    parts.append("<h2>What to look at</h2>")
    flagged = items[items["flags"] != ""]
    if analysis.n_students == 0:
        parts.append("<p>No graded submissions yet.</p>")
    elif flagged.empty:
        parts.append("<p>No question is flagged.</p>")
    else:
        parts.append("<ul>" + "".join(
            f'<li><strong>{_e(q)}</strong>: <span class="flag">{_e(r["flags"])}</span> '
            f"(difficulty {_num(r['difficulty'])}, discrimination {_num(r['discrimination'])})"
            + (f"; {_e(r['note'])}" if r["note"] else "") + "</li>"
            for q, r in flagged.iterrows()) + "</ul>")
    if 0 < analysis.n_students < 30:
        parts.append(f"<p>With {analysis.n_students} students these statistics are rough: "
                     "one student more or less can move a discrimination by 0.1 or more.</p>")

    parts.append("<h2>Questions</h2>")
    parts.append(_table(
        "Per question: points, difficulty, discrimination and score distribution",
        ["question", "objective", "students", "max points", "mean points", "difficulty",
         "discrimination", "flags", "points earned: students", "note"],
        [[_e(q), _e(r["objective"]), str(r["n"]), f"{r['max_points']:g}", _num(r["mean_points"]),
          _num(r["difficulty"]), _num(r["discrimination"]), _e(r["flags"]),
          _e(", ".join(f"{s:g}: {int(c)}" for s, c in analysis.distributions[q].items())), _e(r["note"])]
         for q, r in items.iterrows()],
        numeric={2, 3, 4, 5, 6}))

    png, alt = figures["difficulty_discrimination"]
    parts.append("<h2>Difficulty and discrimination</h2>")
    parts.append(_figure(png, alt, "Each point is a question. Shaded bands: hard and easy; "
                                   "dashed line: the weak-discrimination threshold."))
    png, alt = figures["score_distributions"]
    parts.append("<h2>Score distributions</h2>")
    parts.append(_figure(png, alt, "How many students earned each number of points, per question."))

    parts.append("<h2>Most frequent failure messages</h2>")
    parts.append(f"<p>The {TOP_MESSAGES} messages the tests gave most often per question, "
                 "with the number of students who saw each. All messages are in messages.csv.</p>")
    any_messages = False
    for q in items.index:
        top = analysis.top_messages(q)
        if top.empty:
            continue
        any_messages = True
        parts.append(f"<h3>{_e(q)}</h3>")
        parts.append(_table(f"Failure messages of {q}", ["rank", "students", "message", "test cells"],
                            [[str(r["rank"]), str(r["count"]), _e(r["message"]), _e(r["grade_ids"])]
                             for _, r in top.iterrows()], numeric={1}))
    if not any_messages:
        parts.append("<p>No test failed.</p>")

    parts.append("<h2>Learning objectives</h2>")
    parts.append(_table(
        "Per learning objective: autograded questions and the mean fraction of their points earned",
        ["objective", "the learner can", "questions", "points", "mean points", "mean fraction"],
        [[_e(o), _e(r["text"]), _e(r["questions"] or "none autograded"), f"{r['points']:g}",
          _num(r["mean_points"]), _num(r["mean_fraction"])]
         for o, r in analysis.objectives.iterrows()],
        numeric={3, 4, 5}))

    if analysis.errors:
        parts.append("<h2>Submissions that could not be graded</h2>")
        parts.append("<p>These are left out of every number above.</p>")
        parts.append(_table("Ungraded submissions", ["student", "reason"],
                            [[_e(s), _e(r.strip().splitlines()[-1] if r.strip() else "unknown")]
                             for s, r in sorted(analysis.errors.items())]))

    parts.append("<h2>How to read this report</h2>")
    parts.append(
        "<ul>"
        "<li><strong>Difficulty</strong>: the mean fraction of a question's points the class earned "
        "(the classical p-value of an item; higher means easier). "
        f"Flagged <em>hard</em> below {HARD_BELOW:g} and <em>easy</em> above {EASY_ABOVE:g}: "
        "rules of thumb, not a published standard.</li>"
        "<li><strong>Discrimination</strong>: the corrected item-total correlation, Pearson's r between "
        "the points on the question and the points on all other autograded questions. "
        "It is undefined when either varies not at all. "
        f"Flagged <em>weak</em> below {WEAK_DISCRIMINATION_BELOW:g}, after Ebel &amp; Frisbie's guideline "
        "(0.40 and up very good, 0.30-0.39 reasonably good, 0.20-0.29 marginal, below 0.20 poor; "
        "Ebel R.L. &amp; Frisbie D.A., <cite>Essentials of Educational Measurement</cite>, 5th ed., "
        "Prentice Hall, 1991), which they gave for the upper-minus-lower-group index.</li>"
        "<li><strong>Messages</strong>: the text of the test's error with the leading "
        "<code>AssertionError:</code> removed; other error names are kept because they are the message.</li>"
        "</ul>")

    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{_e(title)}</title>\n"
            f"<style>{_CSS}</style>\n</head>\n<body>\n<main>\n" + "\n".join(parts) + "\n</main>\n</body>\n</html>\n")


def write_report(analysis: ItemAnalysis, out_dir, *, title: str) -> Path:
    """Write ``report.html`` (self-contained), ``items.csv``, ``objectives.csv``,
    ``messages.csv``, ``difficulty_discrimination.png`` and ``score_distributions.png``
    into ``out_dir``; returns the path of the HTML page."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "difficulty_discrimination": _difficulty_discrimination_figure(analysis),
        "score_distributions": _score_distributions_figure(analysis),
    }
    for name, (png, _) in figures.items():
        (out / f"{name}.png").write_bytes(png)
    # "NaN" for undefined numbers keeps them apart from empty text (no flags, no note).
    analysis.items.to_csv(out / "items.csv", na_rep="NaN")
    analysis.objectives.to_csv(out / "objectives.csv", na_rep="NaN")
    analysis.messages.to_csv(out / "messages.csv", index=False, na_rep="NaN")
    page = out / "report.html"
    page.write_text(_html(analysis, title, figures), encoding="utf-8")
    return page


def write_class_report(config, assignment: str, out_dir=None) -> Path:
    """Collect, analyse and write; the default folder is ``<course>/reports/<assignment>/``."""
    results = collect_class_results(config, assignment)
    analysis = item_analysis(results)
    out = Path(out_dir) if out_dir is not None else course_root(config) / "reports" / assignment
    return write_report(analysis, out, title=f"Item analysis: {assignment}")
