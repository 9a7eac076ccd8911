"""Grades out to the LMS: ``gutcourse export ASSIGNMENT --to canvas|moodle|csv``.

nbgrader has no LMS export (jupyter/nbgrader#530, open since 2016; #797, #1916);
its ``nbgrader export`` writes one generic CSV. This module reads one assignment's
scores from the gradebook with nbgrader's Python API (``nbgrader.api.Gradebook``:
``SubmittedAssignment.score`` is nbgrader's total, autograded and manual grades
plus extra credit), applies the course's late policy, maps nbgrader student ids
to LMS ids through a roster, and writes the file the LMS imports:

- ``canvas``: Canvas's gradebook CSV. Columns ``Student, ID, SIS User ID,
  SIS Login ID, Section``, then one column per assignment, and a
  ``Points Possible`` row. Canvas finds each student by ``ID`` (the Canvas user
  id), else ``SIS User ID``, else ``SIS Login ID``, else the name; it finds the
  assignment by a trailing ``(id)`` in the column title, else by its exact
  title, else creates a new one with the points from the ``Points Possible`` row.
  A blank cell or ``-`` is "no score".
- ``moodle``: Moodle's CSV grade import. One identifier column (username,
  email address, ID number or user id) that the import's "Map from"/"Map to"
  step maps to the user field, then one column per grade item. A blank cell or
  ``-`` means "no grade"; a user Moodle cannot find stops the whole import.
- ``csv``: a plain table for the instructor's records: student id, LMS id,
  status, days late, raw score, maximum, late penalty and final score.

All three are UTF-8 without a byte-order mark, comma separated, quoted only
where needed and with CRLF line ends (RFC 4180), scores with at most two decimals.

A student in the gradebook without a submission gets ``0`` (``GradeExport.no_submission
= "zero"``, the default) or an empty cell (``"empty"``). Both imports read an empty
cell as "no score", which each LMS counts in its totals in its own way; the default
writes the zero nbgrader's own exporter writes. Roster problems are collected and reported
together, and nothing is written; the file is written to a temporary file and
renamed, never over an existing file without ``force``.

Sources (read 2026; see ``docs/lms_export.md``)
-----------------------------------------------
- Canvas's import code, ``lib/gradebook_importer.rb`` in instructure/canvas-lms
  (header check, student and assignment matching, the ``Points Possible`` row,
  blank cells).
- Ohio State's Canvas guide "Import CSV File for Carmen Grades",
  https://teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/import-csv-file-carmen-grades
  (the required columns; new columns create new assignments).
- Instructure's "How do I import grades in the Gradebook?",
  https://community.canvaslms.com/t5/Instructor-Guide/How-do-I-import-grades-in-the-Gradebook/ta-p/807
  (linked from the guides above; not retrieved here).
- Moodle Docs, "Grade import", https://docs.moodle.org/311/en/Grade_import
  (CSV mapping, "Email address" to useremail, "ID number" to useridnumber,
  grades above 100 need ``unlimitedgrades``/``gradepointmax``).
- Moodle's import code, ``grade/import/csv/classes/load_data.php`` in moodle/moodle
  (user fields id, idnumber, email, username; blank and ``-`` are no grade).
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from traitlets import Enum
from traitlets.config import Configurable

from ..errors import GutcourseError
from ._course import course_root

__all__ = [
    "FORMATS",
    "ExportError",
    "RosterError",
    "GradeExport",
    "StudentGrade",
    "RosterEntry",
    "ExportResult",
    "read_grades",
    "read_roster",
    "render",
    "default_out",
    "export_grades",
]

FORMATS = ("canvas", "moodle", "csv")

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
#: Column titles as Moodle's own grade export writes them (its language strings).
MOODLE_COLUMNS = {"username": "Username", "email": "Email address", "idnumber": "ID number", "id": "User ID"}
CSV_COLUMNS = ("student_id", "lms_id", "status", "days_late", "raw_score", "max_score",
               "late_penalty", "final_score")

ROSTER_REQUIRED = ("student_id", "lms_id")
ROSTER_OPTIONAL = ("name", "sis_user_id", "sis_login_id", "section")


class ExportError(GutcourseError):
    """The export cannot be written; the message says why."""


class RosterError(ExportError):
    """Every problem found in a roster, reported together."""

    def __init__(self, path, problems: list[str]):
        self.path = Path(path)
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"roster {self.path}: {len(self.problems)} problem(s), nothing was written:\n{lines}")


class GradeExport(Configurable):
    """Course settings of ``gutcourse export`` (``c.GradeExport`` in ``nbgrader_config.py``)."""

    no_submission = Enum(
        ("zero", "empty"), default_value="zero",
        help="What a student in the gradebook without a submission gets: 'zero' writes 0, "
             "'empty' leaves the cell empty ('no score' to Canvas's and Moodle's imports).",
    ).tag(config=True)
    moodle_user_field = Enum(
        tuple(MOODLE_COLUMNS), default_value="username",
        help="The Moodle user field the roster's lms_id holds (Moodle's 'Map to': "
             "username, useremail, useridnumber or userid).",
    ).tag(config=True)


@dataclass(frozen=True)
class StudentGrade:
    """One gradebook student's result for one assignment, late policy applied."""

    student_id: str
    first_name: str
    last_name: str
    max_score: float
    submitted: bool
    seconds_late: float = 0.0
    raw_score: float | None = None
    late_penalty: float | None = None
    needs_manual_grade: bool = False

    @property
    def status(self) -> str:
        if not self.submitted:
            return "no submission"
        return "late" if self.seconds_late > 0 else "on time"

    @property
    def display_name(self) -> str:
        """``Last, First`` as Canvas sorts names, or whichever part nbgrader knows."""
        return ", ".join(p for p in (self.last_name, self.first_name) if p)


@dataclass(frozen=True)
class RosterEntry:
    """One roster row: an nbgrader student id and what the LMS knows the student by."""

    student_id: str
    lms_id: str
    name: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""
    line: int = 0


@dataclass
class ExportResult:
    """What :func:`export_grades` wrote, and what an instructor should know about it."""

    path: Path
    fmt: str
    grades: list[StudentGrade]
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        n_late = sum(g.status == "late" for g in self.grades)
        n_missing = sum(not g.submitted for g in self.grades)
        n_on_time = len(self.grades) - n_late - n_missing
        return (f"wrote {self.path} ({self.fmt}): {len(self.grades)} students, {n_on_time} on time, "
                f"{n_late} late, {n_missing} without a submission")


def _late_plugin(config):
    """The late-submission plugin nbgrader's ``AssignLatePenalties`` would use with ``config``."""
    from nbgrader.preprocessors import AssignLatePenalties

    assigner = AssignLatePenalties(config=config)
    assigner.init_plugin()
    return assigner.plugin_inst


def _penalty(plugin, student_id: str, score: float, seconds_late: float) -> float:
    """The plugin's penalty, kept between 0 and the score as nbgrader's ``AssignLatePenalties`` does."""
    if seconds_late <= 0:
        return 0.0
    penalty = plugin.late_submission_penalty(student_id, score, seconds_late)
    if penalty is None:
        return 0.0
    return min(max(float(penalty), 0.0), max(score, 0.0))


def _check_database(db_url: str) -> None:
    # nbgrader's Gradebook creates an empty database where none exists; an export must not.
    from .backup import sqlite_path

    path = sqlite_path(db_url)
    if path is not None:
        if not path.is_file():
            raise ExportError(f"no gradebook at {path}: grade the assignment first (`gutcourse grade`)")


def read_grades(config, assignment: str) -> list[StudentGrade]:
    """Every gradebook student's score for ``assignment``, with the configured late policy applied.

    The score is nbgrader's ``SubmittedAssignment.score`` (autograded scores,
    manual scores where a grader gave one, plus extra credit). The late penalty is
    recomputed here by the plugin ``AssignLatePenalties`` is configured with,
    on that final score: the penalty nbgrader stored while autograding was computed
    before any manual grade existed. Students are sorted by id.
    """
    return _read(config, assignment)[0]


def _read(config, assignment: str) -> tuple[list[StudentGrade], datetime | None]:
    """(grades, the assignment's due date or None)."""
    from nbgrader.api import Gradebook, MissingEntry

    db_url = config.CourseDirectory.db_url
    _check_database(db_url)
    plugin = _late_plugin(config)
    grades = []
    with Gradebook(db_url, course_id=config.CourseDirectory.course_id) as gb:
        try:
            found = gb.find_assignment(assignment)
        except MissingEntry:
            known = ", ".join(sorted(a.name for a in gb.assignments)) or "none"
            raise ExportError(f"no assignment {assignment!r} in the gradebook (it has: {known})") from None
        max_score = float(found.max_score or 0.0)
        duedate = found.duedate
        submissions = {s.student.id: s for s in found.submissions}
        for student in sorted(gb.students, key=lambda s: s.id):
            names = dict(student_id=student.id, first_name=student.first_name or "",
                         last_name=student.last_name or "", max_score=max_score)
            sub = submissions.get(student.id)
            if sub is None:
                grades.append(StudentGrade(submitted=False, **names))
                continue
            score = float(sub.score or 0.0)
            seconds = float(sub.total_seconds_late)
            grades.append(StudentGrade(
                submitted=True, seconds_late=seconds, raw_score=score,
                late_penalty=_penalty(plugin, student.id, score, seconds),
                needs_manual_grade=bool(sub.needs_manual_grade), **names))
    if not grades:
        raise ExportError(f"the gradebook has no students: nothing to export for {assignment}")
    return grades, duedate


def read_roster(path, fmt: str = "csv") -> dict[str, RosterEntry]:
    """Read a roster CSV: ``student_id`` (nbgrader) and ``lms_id``, plus optional columns.

    Optional columns: ``name``, ``sis_user_id``, ``sis_login_id``, ``section``
    (Canvas copies them into its columns); others are ignored. Header names are
    matched without regard to case or surrounding spaces; a UTF-8 byte-order mark
    (as Excel writes) is fine. Every problem in the file is collected: a missing
    column, an empty ``student_id`` or ``lms_id``, an id used twice on either side,
    and for Canvas an ``lms_id`` that is not a Canvas user id (digits). Raises
    :class:`RosterError` listing them all; returns the entries by student id.
    """
    entries, problems = _parse_roster(path, fmt)
    if problems:
        raise RosterError(path, problems)
    return {entry.student_id: entry for entry in entries}


def _parse_roster(path, fmt: str) -> tuple[list[RosterEntry], list[str]]:
    """The roster's rows and the problems in them; a file without the required columns raises at once."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"roster {path} does not exist")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        try:
            rows = list(csv.reader(fh))
        except (csv.Error, UnicodeDecodeError) as err:
            raise RosterError(path, [f"not a UTF-8 CSV file: {err}"]) from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise RosterError(path, ["the file is empty: the first row must name the columns "
                                 f"({', '.join(ROSTER_REQUIRED)}, optionally {', '.join(ROSTER_OPTIONAL)})"])
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in ROSTER_REQUIRED if c not in header]
    if missing:
        raise RosterError(path, [f"missing column {c!r} (the header row has: {', '.join(rows[0])})"
                                 for c in missing])
    index = {name: header.index(name) for name in ROSTER_REQUIRED + ROSTER_OPTIONAL if name in header}

    problems: list[str] = []
    entries: list[RosterEntry] = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        values = {name: (row[i].strip() if i < len(row) else "") for name, i in index.items()}
        for name in ROSTER_REQUIRED:
            if not values[name]:
                problems.append(f"line {line}: empty {name}")
        if fmt == "canvas" and values["lms_id"] and not values["lms_id"].isdigit():
            problems.append(f"line {line}: lms_id {values['lms_id']!r} is not a Canvas user id "
                            "(the digits in the ID column of a Canvas gradebook export)")
        entries.append(RosterEntry(line=line, **values))

    for name in ROSTER_REQUIRED:
        seen: dict[str, list[int]] = {}
        for entry in entries:
            value = getattr(entry, name)
            if value:
                seen.setdefault(value, []).append(entry.line)
        problems += [f"duplicate {name} {value!r} on lines {', '.join(map(str, lines))}"
                     for value, lines in seen.items() if len(lines) > 1]
    return entries, problems


def _compare(entries: list[RosterEntry], grades: list[StudentGrade]) -> list[str]:
    """Every student who is in the gradebook or the roster but not in both.

    A gradebook student missing from the roster would get no grade in the LMS.
    A roster student who is not in the gradebook is an error too, not a zero: it is
    most often a mistyped id, and a zero written for it would hide that. (To give a
    zero to someone who submitted nothing, add them to the gradebook:
    ``nbgrader db student add ID``; then they are exported as having no submission.)
    """
    in_gradebook = {g.student_id for g in grades}
    in_roster = {e.student_id for e in entries if e.student_id}
    problems = [f"{sid!r} is in the gradebook but not in the roster"
                for sid in sorted(in_gradebook - in_roster)]
    problems += [f"line {e.line}: {e.student_id!r} is in the roster but not in the gradebook"
                 for e in entries if e.student_id and e.student_id not in in_gradebook]
    return problems


def _default_roster(grades: list[StudentGrade]) -> dict[str, RosterEntry]:
    return {g.student_id: RosterEntry(student_id=g.student_id, lms_id=g.student_id) for g in grades}


def _number(value: float | Decimal) -> str:
    """At most two decimals, half up, no trailing zeros: 8.5, 10, 0.33."""
    q = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    text = f"{q:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _scores(grade: StudentGrade, no_submission: str) -> tuple[str, str, str]:
    """(raw, penalty, final) as written: final is the rounded raw minus the rounded penalty."""
    if not grade.submitted:
        return "", "", ("0" if no_submission == "zero" else "")
    raw = Decimal(_number(grade.raw_score))
    penalty = Decimal(_number(grade.late_penalty))
    return _number(raw), _number(penalty), _number(raw - penalty)


def render(fmt: str, grades: list[StudentGrade], roster: dict[str, RosterEntry], title: str,
           settings: GradeExport | None = None) -> str:
    """The file's text for ``fmt`` (one of :data:`FORMATS`)."""
    settings = settings or GradeExport()
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    max_score = _number(grades[0].max_score) if grades else "0"
    if fmt == "canvas":
        writer.writerow([*CANVAS_COLUMNS, title])
        writer.writerow(["Points Possible", "", "", "", "", max_score])
        for g in grades:
            entry = roster[g.student_id]
            writer.writerow([entry.name or g.display_name, entry.lms_id, entry.sis_user_id,
                             entry.sis_login_id, entry.section, _scores(g, settings.no_submission)[2]])
    elif fmt == "moodle":
        writer.writerow([MOODLE_COLUMNS[settings.moodle_user_field], title])
        for g in grades:
            writer.writerow([roster[g.student_id].lms_id, _scores(g, settings.no_submission)[2]])
    elif fmt == "csv":
        writer.writerow(CSV_COLUMNS)
        for g in grades:
            raw, penalty, final = _scores(g, settings.no_submission)
            days = _number(g.seconds_late / 86400) if g.submitted else ""
            writer.writerow([g.student_id, roster[g.student_id].lms_id, g.status, days, raw,
                             _number(g.max_score), penalty, final])
    else:
        raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return buffer.getvalue()


def _write_new(path: Path, text: str, force: bool) -> None:
    """Write ``text`` to a temporary file beside ``path``, then move it into place.

    Without ``force`` an existing file is never replaced (a hard link fails if the
    name exists, so this holds even against a file created meanwhile). The file is
    readable by its owner only: it holds students' grades.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        if force:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise FileExistsError(f"{path} exists: pass --force to replace it") from None
        except OSError:
            # A filesystem without hard links: check, then rename.
            if path.exists():
                raise FileExistsError(f"{path} exists: pass --force to replace it") from None
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def default_out(config, assignment: str, fmt: str) -> Path:
    """``<course>/exports/<assignment>-<format>.csv``."""
    return course_root(config) / "exports" / f"{assignment}-{fmt}.csv"


def export_grades(config, assignment: str, fmt: str, *, roster=None, out=None, force: bool = False,
                  title: str | None = None) -> ExportResult:
    """Write ``assignment``'s grades in ``fmt``; see the module docstring.

    ``roster`` is a CSV path (see :func:`read_roster`); without one the nbgrader
    student ids are written as the LMS ids (for Canvas, as the SIS Login ID, the
    login name, which Canvas matches when it equals the hub user name). ``out``
    defaults to :func:`default_out`. ``title`` is the assignment column's title
    (default: the nbgrader assignment name; for Canvas, ``Title (12345)`` matches the
    existing Canvas assignment 12345). Everything is checked before anything is written.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    out = Path(out) if out is not None else default_out(config, assignment, fmt)
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists: pass --force to replace it")
    settings = GradeExport(config=config)
    grades, duedate = _read(config, assignment)
    notes = []
    if roster is not None:
        rows, problems = _parse_roster(roster, fmt)
        problems += _compare(rows, grades)
        if problems:
            raise RosterError(roster, problems)
        entries = {entry.student_id: entry for entry in rows}
    else:
        entries = _default_roster(grades)
        if fmt == "canvas":
            entries = {sid: RosterEntry(student_id=sid, lms_id="", sis_login_id=sid) for sid in entries}
            notes.append("no roster: the nbgrader student ids are written as Canvas SIS Login IDs; "
                         "Canvas matches them only where a student's login id is their nbgrader id")
        else:
            notes.append("no roster: the nbgrader student ids are written as the LMS ids")
    if duedate is None:
        notes.append(f"{assignment} has no due date in the gradebook: no late penalty applies")
    manual = [g.student_id for g in grades if g.needs_manual_grade]
    if manual:
        notes.append(f"{len(manual)} submission(s) still need manual grading; answers not yet graded by hand "
                     f"count what the autograder gave them (0 for a written answer): {', '.join(manual)}")
    if fmt == "moodle" and max([grades[0].max_score] + [g.raw_score or 0 for g in grades]) > 100:
        notes.append("Moodle refuses grades above 100 unless the site allows them "
                     "(unlimitedgrades and gradepointmax in Site administration > Grades > General settings)")
    if settings.no_submission == "empty" and fmt != "csv":
        notes.append("students without a submission get an empty cell (GradeExport.no_submission = 'empty')")
    text = render(fmt, grades, entries, title or assignment, settings)
    _write_new(out, text, force)
    return ExportResult(path=out, fmt=fmt, grades=grades, notes=notes)
