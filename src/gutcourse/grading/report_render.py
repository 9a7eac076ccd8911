"""Rendering an item analysis (``gutcourse report``): figures, CSV files and one HTML page.

The statistics live in :mod:`gutcourse.grading.report`; this module only draws and writes them.
The page is rendered by a Jinja2 template with autoescaping on, so a failure message, a student
name or a title holding markup appears as text, never as markup.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import jinja2
import numpy as np

from ..plotting import PALETTE
from .report import EASY_ABOVE, HARD_BELOW, TOP_MESSAGES, WEAK_DISCRIMINATION_BELOW, ItemAnalysis

__all__ = ["write_report", "render_html"]


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


def _num(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


_TEMPLATE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>{{ css|safe }}</style>
</head>
<body>
<main>
{%- macro table(caption, header, rows, numeric=()) %}
<table><caption>{{ caption }}</caption><thead><tr>{% for h in header %}<th scope="col">{{ h }}</th>{% endfor %}</tr></thead><tbody>
{%- for row in rows %}<tr><th scope="row">{{ row[0] }}</th>{% for c in row[1:] %}{% if loop.index in numeric %}<td class="num">{{ c }}</td>{% else %}<td>{{ c }}</td>{% endif %}{% endfor %}</tr>{% endfor -%}
</tbody></table>
{%- endmacro %}
{%- macro figure(png, alt, caption) %}
<figure><img src="data:image/png;base64,{{ png }}" alt="{{ alt }}"><figcaption>{{ caption }}</figcaption></figure>
{%- endmacro %}
<h1>{{ title }}</h1>
<p>Assignment <code>{{ a.assignment }}</code>: {{ a.n_students }} graded submission{{ "" if a.n_students == 1 else "s" }}
{%- if a.errors %}, {{ a.errors|length }} could not be graded (listed below){% endif %}. Mean autograded score {{ mean_total }} of {{ max_total }} points. Written answers are graded by hand and are not part of this analysis.</p>
<h2>What to look at</h2>
{%- if a.n_students == 0 %}
<p>No graded submissions yet.</p>
{%- elif not flagged %}
<p>No question is flagged.</p>
{%- else %}
<ul>{% for f in flagged %}<li><strong>{{ f.question }}</strong>: <span class="flag">{{ f.flags }}</span> (difficulty {{ f.difficulty }}, discrimination {{ f.discrimination }}){% if f.note %}; {{ f.note }}{% endif %}</li>{% endfor %}</ul>
{%- endif %}
{%- if 0 < a.n_students < 30 %}
<p>With {{ a.n_students }} students these statistics are rough: one student more or less can move a discrimination by 0.1 or more.</p>
{%- endif %}
<h2>Questions</h2>
{{ table("Per question: points, difficulty, discrimination and score distribution",
         ["question", "objective", "students", "max points", "mean points", "difficulty", "discrimination", "flags",
          "points earned: students", "note"], question_rows, numeric=(2, 3, 4, 5, 6)) }}
<h2>Difficulty and discrimination</h2>
{{ figure(figures.difficulty_discrimination.png, figures.difficulty_discrimination.alt,
          "Each point is a question. Shaded bands: hard and easy; dashed line: the weak-discrimination threshold.") }}
<h2>Score distributions</h2>
{{ figure(figures.score_distributions.png, figures.score_distributions.alt,
          "How many students earned each number of points, per question.") }}
<h2>Most frequent failure messages</h2>
<p>The {{ top }} messages the tests gave most often per question, with the number of students who saw each. All messages are in messages.csv.</p>
{%- for q, rows in messages %}
<h3>{{ q }}</h3>
{{ table("Failure messages of " ~ q, ["rank", "students", "message", "test cells"], rows, numeric=(1,)) }}
{%- else %}
<p>No test failed.</p>
{%- endfor %}
<h2>Learning objectives</h2>
{{ table("Per learning objective: autograded questions and the mean fraction of their points earned",
         ["objective", "the learner can", "questions", "points", "mean points", "mean fraction"],
         objective_rows, numeric=(3, 4, 5)) }}
{%- if errors %}
<h2>Submissions that could not be graded</h2>
<p>These are left out of every number above.</p>
{{ table("Ungraded submissions", ["student", "reason"], errors) }}
{%- endif %}
<h2>How to read this report</h2>
<ul><li><strong>Difficulty</strong>: the mean fraction of a question's points the class earned (the classical p-value of an item; higher means easier). Flagged <em>hard</em> below {{ hard }} and <em>easy</em> above {{ easy }}: rules of thumb, not a published standard.</li><li><strong>Discrimination</strong>: the corrected item-total correlation, Pearson's r between the points on the question and the points on all other autograded questions. It is undefined when either varies not at all. Flagged <em>weak</em> below {{ weak }}, after Ebel &amp; Frisbie's guideline (0.40 and up very good, 0.30-0.39 reasonably good, 0.20-0.29 marginal, below 0.20 poor; Ebel R.L. &amp; Frisbie D.A., <cite>Essentials of Educational Measurement</cite>, 5th ed., Prentice Hall, 1991), which they gave for the upper-minus-lower-group index.</li><li><strong>Messages</strong>: the text of the test's error with the leading <code>AssertionError:</code> removed; other error names are kept because they are the message.</li></ul>
</main>
</body>
</html>
"""

_ENVIRONMENT = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def render_html(analysis: ItemAnalysis, title: str, figures: dict[str, tuple[bytes, str]]) -> str:
    """The report's HTML page; every value is escaped by the template."""
    items = analysis.items
    mean_total = float(analysis.totals.mean()) if analysis.n_students else float("nan")
    flagged = [{"question": q, "flags": r["flags"], "difficulty": _num(r["difficulty"]),
                "discrimination": _num(r["discrimination"]), "note": r["note"]}
               for q, r in items[items["flags"] != ""].iterrows()]
    question_rows = [
        [q, r["objective"], str(r["n"]), f"{r['max_points']:g}", _num(r["mean_points"]), _num(r["difficulty"]),
         _num(r["discrimination"]), r["flags"],
         ", ".join(f"{s:g}: {int(c)}" for s, c in analysis.distributions[q].items()), r["note"]]
        for q, r in items.iterrows()]
    messages = []
    for q in items.index:
        top = analysis.top_messages(q)
        if not top.empty:
            messages.append((q, [[str(r["rank"]), str(r["count"]), r["message"], r["grade_ids"]]
                                 for _, r in top.iterrows()]))
    objective_rows = [[o, r["text"], r["questions"] or "none autograded", f"{r['points']:g}",
                       _num(r["mean_points"]), _num(r["mean_fraction"])] for o, r in analysis.objectives.iterrows()]
    errors = [[s, r.strip().splitlines()[-1] if r.strip() else "unknown"] for s, r in sorted(analysis.errors.items())]
    return _ENVIRONMENT.from_string(_TEMPLATE).render(
        title=title, css=_CSS, a=analysis, mean_total=_num(mean_total, 1), max_total=f"{analysis.max_total:g}",
        flagged=flagged, question_rows=question_rows, messages=messages, objective_rows=objective_rows,
        errors=errors, top=TOP_MESSAGES, hard=f"{HARD_BELOW:g}", easy=f"{EASY_ABOVE:g}",
        weak=f"{WEAK_DISCRIMINATION_BELOW:g}",
        figures={name: {"png": base64.b64encode(png).decode("ascii"), "alt": alt} for name, (png, alt) in figures.items()})


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
    page.write_text(render_html(analysis, title, figures), encoding="utf-8")
    return page
