"""``gutcourse demo``: the whole instructor chain on a simulated class, for every assignment.

Release every assignment, write a simulated class of 30 plus two reference
submissions (the solution and the blank release), grade them in parallel,
write feedback and the item-analysis report, export grades, print a summary.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nbformat

from ._course import course_root, source_assignments
from ._notebooks import fill_answers
from .autograde import read_result, submit
from .classgrade import grade_class
from .feedback import generate_feedback
from .release import release
from .simulate_class import simulate_class

REFERENCE = ("reference_solution", "reference_blank")


def reset_course(config) -> None:
    """Remove what earlier runs generated, so the demo always starts from the sources."""
    root = course_root(config)
    for name in ("release", "submitted", "autograded", "feedback", "reports", ".gutcourse"):
        shutil.rmtree(root / name, ignore_errors=True)
    url = config.CourseDirectory.db_url
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            path.unlink(missing_ok=True)


def submit_references(config, assignment: str) -> None:
    root = course_root(config)
    released = nbformat.read(str(root / "release" / assignment / f"{assignment}.ipynb"), as_version=4)
    source = nbformat.read(str(root / "source" / assignment / f"{assignment}.ipynb"), as_version=4)
    submit(config, assignment, REFERENCE[0], fill_answers(released, source))
    submit(config, assignment, REFERENCE[1], released)


def export_grades(config, path: Path) -> Path:
    """Export every grade in the gradebook to CSV with nbgrader's own exporter."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    path.parent.mkdir(parents=True, exist_ok=True)
    with Gradebook(config.CourseDirectory.db_url) as gb:
        CsvExportPlugin(to=str(path)).export(gb)
    return path


def run_demo(config, *, students: int = 30, seed: int = 2026, workers: int = 2,
             echo=print, progress=sys.stderr) -> list[dict]:
    """Run the chain; returns one summary dict per assignment."""
    from .report import write_class_report

    reset_course(config)
    names = release(config)
    echo(f"released {len(names)} assignments: {', '.join(names)}")
    summaries = []
    for assignment in source_assignments(course_root(config)):
        simulate_class(config, assignment, students, seed)
        submit_references(config, assignment)
        echo(f"\n{assignment}: grading {students + 2} submissions with {workers} workers")
        outcomes = grade_class(config, assignment, workers=workers, progress=progress)
        generate_feedback(config, assignment, [o.student for o in outcomes if o.status != "failed"])
        report = write_class_report(config, assignment)
        results = {s: read_result(config, assignment, s) for s in REFERENCE}
        graded = [o for o in outcomes if o.status != "failed"]
        scores = [read_result(config, assignment, o.student).auto_score
                  for o in graded if o.student not in REFERENCE]
        summaries.append({
            "assignment": assignment,
            "max": results[REFERENCE[0]].max_auto_score,
            "solution": results[REFERENCE[0]].auto_score,
            "blank": results[REFERENCE[1]].auto_score,
            "graded": len(graded),
            "failed": [(o.student, o.reason) for o in outcomes if o.status == "failed"],
            "class_mean": sum(scores) / len(scores) if scores else float("nan"),
            "report": report,
        })
    grades = export_grades(config, course_root(config) / "reports" / "grades.csv")
    echo("\n" + format_summary(summaries))
    echo(f"\ngrades (nbgrader's CSV export): {grades}")
    echo(f"feedback for each student:       {course_root(config) / 'feedback'}")
    for s in summaries:
        echo(f"item analysis, {s['assignment']}: {s['report']}")
    return summaries


def format_summary(summaries: list[dict]) -> str:
    header = ("assignment", "solution", "blank", "class mean", "graded", "could not grade")
    rows = [(s["assignment"], f"{s['solution']:g} / {s['max']:g}", f"{s['blank']:g} / {s['max']:g}",
             f"{s['class_mean']:.1f} / {s['max']:g}", str(s["graded"]),
             "; ".join(f"{st} ({why[:70]})" for st, why in s["failed"]) or "-")
            for s in summaries]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r):
        return "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])
