"""``gutcourse demo``: the whole instructor chain on a simulated class, for every assignment.

Release every assignment, write a simulated class of 30 plus two reference
submissions (the solution and the blank release), grade them in parallel,
write feedback and the item-analysis report, export grades, print a summary.

The demo never runs in the real course folder: it copies the assignment
sources into a folder of its own (``demo-course/`` by default), marked as the
demo's, and starts that folder afresh on every run. A real class's submissions
and gradebook are never touched.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nbformat

from ..errors import GutcourseError
from ._course import course_path, course_root, load_config, source_assignments
from ._notebooks import fill_answers
from .autograde import read_result, submit
from .classgrade import grade_class
from .feedback import generate_feedback
from .release import release
from .simulate_class import simulate_class

REFERENCE = ("reference_solution", "reference_blank")


DEMO_MARKER = ".gutcourse-demo"


class DemoError(GutcourseError, RuntimeError):
    pass


def prepare_demo_course(source_root: str | Path, folder: str | Path,
                        assignments: list[str] | None = None) -> Path:
    """A fresh course folder for the demo, holding a copy of the sources it needs.

    ``folder`` is emptied first only when an earlier demo made it (it holds
    :data:`DEMO_MARKER`); any other non-empty folder is refused, so neither the
    real course nor an unrelated folder can be wiped by mistake.
    """
    source_root, folder = Path(source_root).resolve(), Path(folder).resolve()
    available = source_assignments(source_root)
    chosen = list(assignments or available)
    unknown = [a for a in chosen if a not in available]
    if unknown:
        raise DemoError(f"no assignment {', '.join(unknown)} in {source_root / 'source'} "
                        f"(there are: {', '.join(available)})")
    if folder == source_root or folder in source_root.parents:
        raise DemoError(f"{folder} holds the real course ({source_root}): the demo needs a folder of its own")
    if folder.exists():
        if not folder.is_dir():
            raise DemoError(f"{folder} is a file, not a folder")
        if (folder / DEMO_MARKER).is_file():
            shutil.rmtree(folder)
        elif any(folder.iterdir()):
            raise DemoError(f"{folder} is not empty and was not made by `gutcourse demo`: "
                            f"choose another folder with --out")
    (folder / "source").mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARKER).write_text("made by `gutcourse demo`; emptied by the next demo run\n",
                                      encoding="utf-8")
    header = source_root / "source" / "header.ipynb"
    if header.is_file():
        shutil.copy(header, folder / "source" / header.name)
    for assignment in chosen:
        shutil.copytree(source_root / "source" / assignment, folder / "source" / assignment)
    return folder


def submit_references(config, assignment: str) -> None:
    released = nbformat.read(str(course_path(config, "release", assignment, notebook=assignment)), as_version=4)
    source = nbformat.read(str(course_path(config, "source", assignment, notebook=assignment)), as_version=4)
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


def run_demo(source_config, folder: str | Path, *, assignments: list[str] | None = None,
             students: int = 30, seed: int = 2026, workers: int = 2,
             echo=print, progress=sys.stderr) -> list[dict]:
    """Run the chain in ``folder`` on copies of ``source_config``'s assignments.

    Returns one summary dict per assignment.
    """
    from .report import write_class_report

    folder = prepare_demo_course(course_root(source_config), folder, assignments)
    config = load_config(course_root=folder)
    echo(f"demo course folder: {folder} (the real course is not touched)")
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
    echo(f"feedback for each student:       {course_path(config, 'feedback', '.')}")
    for s in summaries:
        echo(f"item analysis, {s['assignment']}: {s['report']}")
    return summaries


def _short(text: str, limit: int = 70) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, marked with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[:limit - 1].rsplit(" ", 1)[0].rstrip(" :;,")
    return cut + "…"


def format_summary(summaries: list[dict]) -> str:
    header = ("assignment", "solution", "blank", "class mean", "graded", "could not grade")
    rows = [(s["assignment"], f"{s['solution']:g} / {s['max']:g}", f"{s['blank']:g} / {s['max']:g}",
             f"{s['class_mean']:.1f} / {s['max']:g}", str(s["graded"]),
             "; ".join(f"{st} ({_short(why)})" for st, why in s["failed"]) or "-")
            for s in summaries]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r):
        return "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])
