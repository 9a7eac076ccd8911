"""``gutcourse demo``: the instructor chain on a small simulated class, for every assignment."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from ._course import course_root, source_assignments
from ._notebooks import fill_answers
from .autograde import autograde, submit
from .bank import load_bank
from .release import release


def _reset_course(config) -> None:
    """Remove what earlier demos generated, so the demo always starts from the sources."""
    root = course_root(config)
    for name in ("release", "submitted", "autograded", "feedback"):
        shutil.rmtree(root / name, ignore_errors=True)
    db = Path(config.CourseDirectory.db_url.removeprefix("sqlite:///"))
    if config.CourseDirectory.db_url.startswith("sqlite:///") and db.is_file():
        db.unlink()


def demo_submissions(config, assignment: str) -> dict:
    """Three submissions: the solution, the blank release and one wrong answer from the bank."""
    root = course_root(config)
    released = nbformat.read(str(root / "release" / assignment / f"{assignment}.ipynb"), as_version=4)
    source = nbformat.read(str(root / "source" / assignment / f"{assignment}.ipynb"), as_version=4)
    submissions = {"demo_solution": fill_answers(released, source), "demo_blank": released}
    bank = load_bank(assignment)
    if bank:
        submissions[f"demo_wrong_{bank[0].id}"] = fill_answers(released, source, bank[0].replace)
    return submissions


def export_grades(config, path: Path) -> Path:
    """Export every grade in the gradebook to CSV with nbgrader's own exporter."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    path.parent.mkdir(parents=True, exist_ok=True)
    with Gradebook(config.CourseDirectory.db_url) as gb:
        CsvExportPlugin(to=str(path)).export(gb)
    return path


def run_demo(config, echo=print) -> list[tuple]:
    """Release, submit, autograde and export; print and return rows of (assignment, student, score, max)."""
    _reset_course(config)
    names = release(config)
    echo(f"released {len(names)} assignment(s): {', '.join(names)}")
    rows = []
    for assignment in source_assignments(course_root(config)):
        submissions = demo_submissions(config, assignment)
        for student, nb in submissions.items():
            submit(config, assignment, student, nb)
        results = autograde(config, assignment, list(submissions))
        for student, result in results.items():
            rows.append((assignment, student, result.auto_score, result.max_auto_score, result.error))
    csv_path = export_grades(config, course_root(config) / "reports" / "grades.csv")
    echo("")
    echo(format_table(rows))
    echo("")
    echo(f"grades exported to {csv_path}")
    return rows


def format_table(rows) -> str:
    header = ("assignment", "student", "autograded points", "problem")
    body = [(a, s, f"{score:g} / {top:g}", (err or "").splitlines()[0][:60] if err else "")
            for a, s, score, top, err in rows]
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(4)]
    line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body)])
