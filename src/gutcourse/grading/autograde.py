"""Autograding submissions with nbgrader's Python API, and reading back the results."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ._course import course_path, make_api
from ._notebooks import error_messages

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f UTC"


@dataclass
class CellResult:
    grade_id: str
    points: float | None
    max_points: float
    message: str = ""


@dataclass
class SubmissionResult:
    """What autograding gave one student for one assignment."""

    student: str
    auto_score: float = 0.0
    max_auto_score: float = 0.0
    manual_pending: float = 0.0
    cells: dict[str, CellResult] = field(default_factory=dict)
    error: str | None = None
    notes: list[str] = field(default_factory=list)  # what the grading sandbox or repair reported


def submission_dir(config, assignment: str, student: str) -> Path:
    return course_path(config, "submitted", assignment, student)


def submit(config, assignment: str, student: str, nb, *, timestamp: _dt.datetime | None = None) -> Path:
    """Place notebook ``nb`` in ``submitted/<student>/<assignment>/`` as nbgrader expects."""
    folder = submission_dir(config, assignment, student)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assignment}.ipynb"
    nbformat.write(nb, str(path))
    write_timestamp(folder, timestamp)
    return path


def write_timestamp(folder: Path, timestamp: _dt.datetime | None = None) -> None:
    """Record when a submission was handed in (now by default), as nbgrader's submit does."""
    stamp = timestamp or _dt.datetime.now(_dt.timezone.utc)
    (folder / "timestamp.txt").write_text(stamp.strftime(TIMESTAMP_FORMAT) + "\n", encoding="utf-8")


def read_result(config, assignment: str, student: str, gradebook=None) -> SubmissionResult:
    """Scores per test cell from the gradebook, messages from the autograded notebook."""
    from nbgrader.api import Gradebook, MissingEntry

    result = SubmissionResult(student=student)
    own = gradebook is None
    gb = gradebook or Gradebook(config.CourseDirectory.db_url)
    try:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            result.error = "not graded"
            return result
        for notebook in submission.notebooks:
            autograded = course_path(config, "autograded", assignment, student, notebook.name)
            messages = {}
            if autograded.is_file():
                messages = error_messages(nbformat.read(str(autograded), as_version=4))
            for grade in notebook.grades:
                # The course's lint allows manual grading only in markdown answer cells,
                # so a code grade cell is always an autograder test.
                if grade.cell_type == "code":
                    result.cells[grade.name] = CellResult(
                        grade.name, grade.auto_score, grade.max_score, messages.get(grade.name, ""))
                    result.auto_score += grade.auto_score or 0.0
                    result.max_auto_score += grade.max_score
                else:
                    result.manual_pending += grade.max_score
    finally:
        if own:
            gb.close()
    return result


def autograde(config, assignment: str, students: list[str], *, force: bool = True) -> dict[str, SubmissionResult]:
    """Autograde ``students`` one after another in this process; never stops at a bad submission."""
    from . import incidents
    from .repair import diagnose

    api = make_api(config)
    results = {}
    for student in students:
        with incidents.collected() as notes:
            outcome = api.autograde(assignment, student, force=force, create=True)
        result = read_result(config, assignment, student)
        result.notes = notes
        if not outcome.get("success"):
            source = course_path(config, "source", assignment)
            why = diagnose(submission_dir(config, assignment, student), sorted(p.stem for p in source.glob("*.ipynb")))
            result.error = why or (outcome.get("error") or outcome.get("log") or "autograde failed").strip()
        results[student] = result
    return results
