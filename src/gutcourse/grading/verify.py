"""Tests of the tests: what every assignment must satisfy before it is released.

:func:`lint_notebook` checks a source notebook's structure without running it.
:func:`verify_assignment` releases the assignment into a throwaway course,
autogrades the solution, the blank release and every misconception in the
bank, and returns the problems it found (an empty list means all is well):

- the solution earns every autograded point and raises no error anywhere;
- the blank release earns zero, and no locked non-test cell raises an error;
- each misconception loses exactly its points, in exactly its cells, with its message;
- each correct alternative keeps every point of every test cell, and no cell raises an error.

Misconceptions on different questions share a submission ("rounds", see
:func:`plan_rounds`); a round whose result is not exactly the sum of its members
is split in halves and graded again, down to single entries (:func:`settle_rounds`),
so a problem is always reported against the entry that caused it. Alternatives share rounds only with other alternatives,
so an error in their submission can only come from one of them.

The module's test suite runs this for every folder under ``coursework/source/``,
so adding an assignment folder is enough for it to be covered.
"""

from __future__ import annotations

import ast
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ._cellnames import cell_names as _names
from ._course import course_path, course_root, load_config
from ._notebooks import (fill_answers, grade_id, is_answer, is_autograded_answer,
                         is_test, nbgrader_meta, question_of)
from ._shared_engine import installed
from .autograde import autograde, submit
from .bank import Misconception, load_alternatives, load_bank
from .release import ReleaseError, release

_DESCRIPTIVE_ID = re.compile(r"^[a-z][a-z0-9_]{3,}$")
_NBGRADER_DEFAULT_ID = re.compile(r"^cell-[0-9a-f]+$")
_GRADED_ID = re.compile(r"^q(\d+)_(\d+)_[a-z0-9_]{3,}$")
_PART = re.compile(r"^##\s+Part\s+(\d+)\b.*\((\d+(?:\.\d+)?) points?\)", re.MULTILINE)
_QUESTION = re.compile(r"\*\*Question\s+(\d+)\.(\d+)\*\*\s*\((\d+(?:\.\d+)?) points?", re.MULTILINE)
_TITLE = re.compile(r"^#\s+.*\((\d+(?:\.\d+)?) points?\)", re.MULTILINE)
_OBJECTIVE_DEF = re.compile(r"\*\*(O\d+)\*\*")
_STDERR_WRITERS = ("sys.stderr", "warnings.warn", "file=")


def _points(cell) -> float:
    return float(nbgrader_meta(cell).get("points", 0) or 0)


def lint_notebook(nb) -> list[str]:
    """Structural problems of a source notebook (empty list when it is fine)."""
    problems: list[str] = []
    ids: dict[str, int] = {}
    question_points: dict[str, float] = {}
    part_points: dict[str, float] = {}
    hidden_in: set[str] = set()
    tests_in: set[str] = set()
    objectives_defined: set[str] = set()
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    objectives_defined.update(_OBJECTIVE_DEF.findall(markdown))

    for index, cell in enumerate(nb.cells):
        where = f"cell {index + 1}"
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
            problems.append(f"{where}: committed with outputs; clear them")
        meta = nbgrader_meta(cell)
        if not meta:
            continue
        gid = grade_id(cell)
        if cell.cell_type == "code" and (is_test(cell) or (meta.get("locked") and not is_answer(cell))) and any(
                line.lstrip().startswith(("%", "!")) for line in cell.source.splitlines()):
            problems.append(f"cell {index + 1} ({gid}): IPython magic or shell escape in a locked cell; "
                            "the grader runs setup and test cells as plain Python")
        where = f"cell {index + 1} ({gid})"
        if not gid:
            problems.append(f"cell {index + 1}: nbgrader cell without a grade id")
            continue
        if gid in ids:
            problems.append(f"{where}: grade id also used by cell {ids[gid] + 1}")
        ids[gid] = index
        if _NBGRADER_DEFAULT_ID.match(gid) or not _DESCRIPTIVE_ID.match(gid):
            problems.append(f"{where}: grade id is not descriptive (lower_snake_case, e.g. q2_1_shannon_tests)")
        graded = bool(meta.get("grade")) or bool(meta.get("solution"))
        if not graded:
            continue
        m = _GRADED_ID.match(gid)
        if not m:
            problems.append(f"{where}: graded cells need an id of the form qPART_QUESTION_what")
            continue
        question = f"{m.group(1)}.{m.group(2)}"
        objective = cell.metadata.get("gutcourse", {}).get("objective")
        if not objective:
            problems.append(f"{where}: no learning objective in metadata gutcourse.objective")
        elif objective not in objectives_defined:
            problems.append(f"{where}: objective {objective} is not defined in the notebook (**{objective}**)")
        if meta.get("grade"):
            question_points[question] = question_points.get(question, 0.0) + _points(cell)
            part_points[m.group(1)] = part_points.get(m.group(1), 0.0) + _points(cell)
        if meta.get("grade") and meta.get("solution") and cell.cell_type != "markdown":
            problems.append(f"{where}: manually graded answers must be markdown cells")
        if is_autograded_answer(cell) and "### BEGIN SOLUTION" not in cell.source:
            problems.append(f"{where}: answer cell without ### BEGIN SOLUTION / ### END SOLUTION")
        if is_test(cell):
            tests_in.add(question)
            problems.extend(_lint_test_cell(cell, where))
            if "### BEGIN HIDDEN TESTS" in cell.source:
                hidden_in.add(question)

    for question in sorted(tests_in - hidden_in):
        problems.append(f"question {question}: no hidden tests in any of its test cells")

    declared_q = {f"{p}.{q}": float(pts) for p, q, pts in _QUESTION.findall(markdown)}
    for question in sorted(set(declared_q) | set(question_points)):
        if question not in declared_q:
            problems.append(f"question {question}: graded cells but no '**Question {question}** (N points)' heading")
        elif abs(declared_q[question] - question_points.get(question, 0.0)) > 1e-9:
            problems.append(f"question {question}: heading says {declared_q[question]:g} points, "
                            f"cells add up to {question_points.get(question, 0.0):g}")
    declared_p = {p: float(pts) for p, pts in _PART.findall(markdown)}
    for part in sorted(set(declared_p) | set(part_points), key=int):
        if part not in declared_p:
            problems.append(f"part {part}: graded cells but no '## Part {part} ... (N points)' heading")
        elif abs(declared_p[part] - part_points.get(part, 0.0)) > 1e-9:
            problems.append(f"part {part}: heading says {declared_p[part]:g} points, "
                            f"cells add up to {part_points.get(part, 0.0):g}")
    titles = _TITLE.findall(markdown)
    total = sum(question_points.values())
    if titles and abs(float(titles[0]) - total) > 1e-9:
        problems.append(f"title says {float(titles[0]):g} points, cells add up to {total:g}")
    return problems


def _lint_test_cell(cell, where: str) -> list[str]:
    problems = []
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as err:
        return [f"{where}: test cell does not parse ({err.msg}, line {err.lineno})"]
    body = tree.body
    if not (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        problems.append(f"{where}: test cell should open with a docstring saying what it checks")
    elif len(body) > 1 and isinstance(body[-1], ast.Expr) and not _returns_none(body[-1].value):
        problems.append(f"{where}: test cell ends with a bare expression (nbgrader reads its value as points)")
    for writer in _STDERR_WRITERS:
        if writer in cell.source:
            problems.append(f"{where}: test cell writes to stderr ({writer}); nbgrader scores that 0")
    return problems


def _returns_none(node) -> bool:
    """A call known to return None: print and the checks.check_*/fail helpers (nothing is shown)."""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Name):
        return func.id == "print"
    return (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "checks"
            and (func.attr.startswith("check_") or func.attr == "fail"))


@dataclass
class Verification:
    assignment: str
    problems: list[str] = field(default_factory=list)
    max_points: float = 0.0
    solution_seconds: float = 0.0
    results: dict = field(default_factory=dict)
    verified: dict = field(default_factory=dict)  # bank entry id (wrong or alternative) -> submission that showed it


def _locked_errors(executed_nb) -> list[str]:
    errors = []
    for cell in executed_nb.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type != "code" or is_test(cell) or is_answer(cell):
            continue
        if meta.get("locked") or not meta:
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    errors.append(f"{grade_id(cell) or 'an ungraded cell'}: {out.get('ename')}: {out.get('evalue')}")
    return errors


def _stderr_tests(executed_nb) -> list[str]:
    return [grade_id(c) for c in executed_nb.cells if is_test(c)
            and any(o.get("output_type") == "stream" and o.get("name") == "stderr" for o in c.get("outputs", []))]


def _all_errors(executed_nb) -> list[str]:
    return [f"{grade_id(c) or 'cell'}: {o.get('ename')}: {o.get('evalue')}"
            for c in executed_nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


def verify_assignment(assignment: str, source_root: str | Path | None = None,
                      bank: list[Misconception] | None = None, workdir: str | Path | None = None,
                      alternatives: list[Misconception] | None = None) -> Verification:
    """Release ``assignment`` in a throwaway course and check solution, blank, misconceptions and alternatives.

    ``source_root`` is the course folder holding ``source/<assignment>`` (the real
    course by default); ``bank`` defaults to the assignment's misconception bank and
    ``alternatives`` to its bank of correct alternatives (pass ``[]`` to skip either).
    """
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix=f"verify-{assignment}-") as tmp, \
                _throwaway_gradebook(Path(tmp) / "course" / "gradebook.db"):
            return _verify(assignment, source_root, bank, alternatives, Path(tmp))
    gradebook = Path(workdir) / "course" / "gradebook.db"
    if gradebook.exists():  # a course already there (perhaps a real one): never grade into it
        raise ValueError(f"{gradebook} already exists: verification needs a folder of its own")
    with _throwaway_gradebook(gradebook):
        return _verify(assignment, source_root, bank, alternatives, Path(workdir))


@contextmanager
def _throwaway_gradebook(path: Path):
    """SQLite does not wait for the disk at each commit to the verification's own gradebook.

    That gradebook lives in a temporary folder and is read back in the same process, so a
    power cut could cost nothing worth keeping. Autograding still commits several times per
    notebook (nbgrader's steps before the grades are saved); on a busy machine each wait for
    the disk took about 6 ms. Every other database, a course's real gradebook included, keeps
    SQLite's defaults.
    """
    import os
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    target = os.path.realpath(path)

    def on_connect(connection, _record) -> None:
        if isinstance(connection, sqlite3.Connection) and any(
                row[2] and os.path.realpath(row[2]) == target
                for row in connection.execute("PRAGMA database_list").fetchall()):
            connection.execute("PRAGMA synchronous=OFF")

    event.listen(Engine, "connect", on_connect)
    try:
        with installed():  # and its gradebooks share one engine, as a grading worker's do (_shared_engine.py)
            yield
    finally:
        event.remove(Engine, "connect", on_connect)


def _verify(assignment: str, source_root, bank, alternatives, tmp: Path) -> Verification:
    source_root = Path(source_root) if source_root else course_root(load_config())
    report = Verification(assignment)
    source_path = source_root / "source" / assignment / f"{assignment}.ipynb"
    source_nb = nbformat.read(str(source_path), as_version=4)
    report.problems.extend(f"lint: {p}" for p in lint_notebook(source_nb))
    bank = load_bank(assignment) if bank is None else bank
    alternatives = load_alternatives(assignment) if alternatives is None else alternatives

    course = tmp / "course"
    (course / "source").mkdir(parents=True, exist_ok=True)
    shutil.copytree(source_root / "source" / assignment, course / "source" / assignment, dirs_exist_ok=True)
    header = source_root / "source" / "header.ipynb"
    if header.is_file():
        shutil.copy(header, course / "source" / "header.ipynb")
    config = load_config(course_root=course)
    try:
        release(config, [assignment])
    except ReleaseError as err:
        report.problems.append(f"release: {err}")
        return report
    released = nbformat.read(str(course_path(config, "release", assignment, notebook=assignment)), as_version=4)
    points = {grade_id(c): _points(c) for c in released.cells if is_test(c)}
    report.max_points = sum(points.values())

    submissions = {"solution": fill_answers(released, source_nb), "blank": released}
    usable = []
    for m in bank:
        try:
            fill_answers(released, source_nb, m.replace)
            usable.append(m)
        except KeyError as err:
            report.problems.append(f"misconception {m.id}: {err}")
    usable_alternatives = []
    for m in alternatives:
        try:
            fill_answers(released, source_nb, m.replace)
            usable_alternatives.append(m)
        except KeyError as err:
            report.problems.append(f"alternative {m.id}: {err}")
    solution_cells = [(grade_id(c), c.source) for c in submissions["solution"].cells if c.cell_type == "code"]
    test_ids = {grade_id(c) for c in source_nb.cells if is_test(c)}
    rounds = plan_rounds(usable, solution_cells, test_ids)
    for r, members in enumerate(rounds):
        merged = {gid: src for m in members for gid, src in m.replace.items()}
        submissions[f"round{r + 1:02d}"] = fill_answers(released, source_nb, merged)
    alt_rounds = plan_rounds(usable_alternatives, solution_cells, test_ids)
    for r, members in enumerate(alt_rounds):
        merged = {gid: src for m in members for gid, src in m.replace.items()}
        submissions[f"altround{r + 1:02d}"] = fill_answers(released, source_nb, merged)
    for student, nb in submissions.items():
        submit(config, assignment, student, nb)

    started = time.perf_counter()
    report.results.update(autograde(config, assignment, ["solution"]))
    report.solution_seconds = time.perf_counter() - started
    report.results.update(autograde(config, assignment, [s for s in submissions if s != "solution"]))

    def executed(student):
        path = course_path(config, "autograded", assignment, student, assignment)
        return nbformat.read(str(path), as_version=4) if path.is_file() else None

    def misconception_problems(members, student):
        result = report.results[student]
        if result.error:
            return [f"misconception {members[0].id}: autograde failed: {result.error.splitlines()[-1]}"]
        return _check_misconceptions(members, result, points)

    # Alternatives: every point kept and no error anywhere in the notebook.
    def alternative_problems(members, student):
        result = report.results[student]
        if result.error:
            problems = [f"autograde failed: {result.error.splitlines()[-1]}"]
        else:
            problems = _check_misconceptions(members, result, points, kind="alternative")
            nb = executed(student)
            problems += [f"raised an error: {err}" for err in (_all_errors(nb) if nb is not None else [])]
        return [p if p.startswith("alternative ") else f"alternative {members[0].id}: {p}" for p in problems]

    def regrade(parts):
        for part, name in parts:
            merged = {gid: src for m in part for gid, src in m.replace.items()}
            submit(config, assignment, name, fill_answers(released, source_nb, merged))
        report.results.update(autograde(config, assignment, [name for _, name in parts]))

    pending = [(members, f"round{r + 1:02d}", misconception_problems) for r, members in enumerate(rounds)]
    pending += [(members, f"altround{r + 1:02d}", alternative_problems) for r, members in enumerate(alt_rounds)]
    settle_rounds(pending, regrade, report)

    for student in ("solution", "blank"):
        result = report.results[student]
        if result.error:
            report.problems.append(f"{student}: autograde failed: {result.error.splitlines()[-1]}")

    solution = report.results["solution"]
    lost = {g: c for g, c in solution.cells.items() if (c.points or 0) < c.max_points}
    for gid, cell in lost.items():
        report.problems.append(f"solution: {gid} earned {cell.points or 0:g} of {cell.max_points:g}"
                               f"{' (' + cell.message + ')' if cell.message else ''}")
    solution_nb = executed("solution")
    if solution_nb is not None:
        for err in _all_errors(solution_nb):
            report.problems.append(f"solution raised an error: {err}")
        for gid in _stderr_tests(solution_nb):
            report.problems.append(f"solution: test cell {gid} wrote to stderr")

    blank = report.results["blank"]
    if blank.auto_score != 0:
        passing = [g for g, c in blank.cells.items() if (c.points or 0) > 0]
        report.problems.append(f"blank release did not get zero: {blank.auto_score:g} points "
                               f"from {', '.join(passing)}")
    blank_nb = executed("blank")
    if blank_nb is not None:
        for err in _locked_errors(blank_nb):
            report.problems.append(f"blank release: error in a locked cell: {err}")

    return report


def settle_rounds(pending, regrade, report: Verification) -> None:
    """Verify graded rounds; split a round with a problem in two and grade the halves again.

    ``pending`` lists (members, student, problems_of) for rounds already graded, where
    ``problems_of(members, student)`` reads that submission's problems. A round without one
    verifies all its members. A round that does not come out exactly as the sum of its members
    is halved, ``regrade([(members, student), ...])`` grades the halves, and so on down to
    single entries, whose problems are reported. So every problem is pinned on the entry that
    caused it, while a round spoilt by one entry (or by two that meet) costs a few more
    submissions rather than one per member.
    """
    while pending:
        again = []
        for members, student, problems_of in pending:
            problems = problems_of(members, student)
            if not problems:
                report.verified.update({m.id: student for m in members})
            elif len(members) == 1:
                report.problems.extend(problems)
            else:
                half = (len(members) + 1) // 2
                for part, suffix in ((members[:half], "a"), (members[half:], "b")):
                    name = f"{student}{suffix}"
                    if len(part) == 1:
                        name = ("alt_" if student.startswith("alt") else "mc_") + part[0].id
                    again.append((part, name, problems_of))
        if again:
            regrade([(members, student) for members, student, _ in again])
        pending = again


def plan_rounds(bank: list[Misconception], cells: list[tuple[str, str]],
                tests: set[str] = frozenset()) -> list[list[Misconception]]:
    """Group misconceptions into rounds that can share one submission.

    ``cells`` is the solution notebook's code cells in order, as (grade id, source),
    and ``tests`` the grade ids of its test cells. Members of a round always touch different
    questions (their replaced answer cells and the test cells they expect to fail). That alone
    fixes how many rounds are needed: as many as the busiest question has entries, or close.
    Within that number, entries are also kept apart where one reads a name another binds or
    changes, in its own code or in its questions' tests, because a wrong value read by a later
    question can change what that question's tests say. Where every round already holds such
    an entry, an entry joins the round where it meets the fewest, rather than opening a round
    of its own. Grading rounds instead of one notebook per misconception is what keeps the
    suite fast; a round that comes out differently from the sum of its members is split and
    graded again (:func:`settle_rounds`), so entries that do meet cost a few more submissions,
    and every problem is still pinned on the entry that caused it.
    """
    parsed = [(gid, _names(src)) for gid, src in cells]
    test_sources = [(gid, names) for gid, names in parsed if gid in tests]
    order = {q: i for i, q in enumerate(dict.fromkeys(question_of(g) for g, _ in parsed if g))}
    profiles = []
    for m in bank:
        touched = {question_of(g) or g for g in [*m.replace, *m.expect]}
        own = [_names(src) for src in m.replace.values()]
        checks = [names for gid, names in test_sources if (question_of(gid) or gid) in touched]
        if any(p is None for p in own + checks):
            profiles.append((m, touched, None, None))
            continue
        defined = set().union(*(d for d, _ in own))
        read = set().union(*(r for _, r in own + checks))
        profiles.append((m, touched, defined, read))

    def apart(a, b) -> bool:
        """Must never share a round: the same question, or code that cannot be read."""
        return bool(a[1] & b[1]) or a[2] is None or b[2] is None

    def meet(a, b) -> bool:
        """Better apart: one reads what the other binds."""
        return apart(a, b) or bool(a[2] & b[3] or b[2] & a[3])

    first = lambda p: min((order.get(question_of(g), 0) for g in p[0].replace), default=0)  # noqa: E731
    ordered = sorted(profiles, key=first)

    def pack(clash) -> list[list]:
        rounds: list[list] = []
        for profile in ordered:
            for members in rounds:
                if not any(clash(profile, other) for other in members):
                    members.append(profile)
                    break
            else:
                rounds.append([profile])
        return rounds

    needed = len(pack(apart))
    rounds: list[list] = []
    for profile in ordered:
        allowed = [r for r in rounds if not any(apart(profile, other) for other in r)]
        clean = [r for r in allowed if not any(meet(profile, other) for other in r)]
        if clean:
            clean[0].append(profile)
        elif allowed and len(rounds) >= needed:
            min(allowed, key=lambda r: sum(meet(profile, other) for other in r)).append(profile)
        else:
            rounds.append([profile])
    return [[p[0] for p in members] for members in rounds]


def _check_misconceptions(members: list[Misconception], result, points: dict[str, float],
                          kind: str = "misconception") -> list[str]:
    """Problems with one graded submission carrying ``members`` (disjoint misconceptions).

    ``kind`` names the entries in the messages ("alternative" for correct alternatives,
    which expect nothing to fail and no point lost).
    """
    problems = []
    name = f"{kind} " + ", ".join(m.id for m in members)
    expected: dict[str, list[str]] = {}
    for m in members:
        unknown = sorted(set(m.expect) - set(points))
        if unknown:
            problems.append(f"{kind} {m.id}: expects test cells that do not exist: {unknown}")
        for gid, message in m.expect.items():
            expected.setdefault(gid, []).append(message)
    lost_total = 0.0
    for gid, cell in result.cells.items():
        lost = cell.max_points - (cell.points or 0)
        lost_total += lost
        if gid in expected:
            if lost <= 0:
                problems.append(f"{name}: {gid} should fail but earned its points")
            for message in expected[gid]:
                if message and message not in cell.message:
                    problems.append(f"{name}: {gid} failed with {cell.message!r}, "
                                    f"expected a message containing {message!r}")
        elif lost > 0:
            problems.append(f"{name}: {gid} lost {lost:g} points it should keep"
                            f"{' (' + cell.message + ')' if cell.message else ''}")
    wanted = sum(m.points_lost for m in members)
    if abs(lost_total - wanted) > 1e-9:
        problems.append(f"{name}: lost {lost_total:g} points, expected {wanted:g}")
    return problems
