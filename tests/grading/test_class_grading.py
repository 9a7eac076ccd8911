"""gutcourse simulate-class / grade / feedback / check on a throwaway copy of ps0_orientation."""

import hashlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from gutcourse.grading import (autograde, check_notebook, generate_feedback, grade_class, load_config,
                               read_result, release, simulate_class)
from gutcourse.grading._notebooks import fill_answers, grade_id
from gutcourse.grading.learner_check import format_check
from gutcourse.grading.savegrades import SaveAutoGradesOnce

from .conftest import REPO, make_course, run_cli

A = "ps0_orientation"
pytestmark = pytest.mark.xdist_group("class_grading")


def scores(config, students):
    """student -> {test cell: auto score} from the gradebook."""
    return {s: {g: c.points for g, c in read_result(config, A, s).cells.items()} for s in students}


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A released course with a simulated class of 10 (one blank, one broken)."""
    course = make_course(tmp_path_factory.mktemp("class") / "course")
    config = load_config(course_root=course)
    release(config, [A])
    plan = simulate_class(config, A, 10, seed=7)
    return course, plan


def copy_course(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


@pytest.fixture(scope="module")
def graded(released, tmp_path_factory):
    """The class graded once by `gutcourse grade` (two workers, SQLite): tests that need a graded
    class start from a copy of it instead of grading the class again."""
    course = copy_course(released[0], tmp_path_factory.mktemp("graded") / "course")
    outcomes = grade_class(load_config(course_root=course), A, workers=2, progress=None)
    return course, {o.student: o for o in outcomes}


def test_simulated_class_is_deterministic_and_varied(released, tmp_path):
    course, plan = released
    profiles = {s.profile for s in plan}
    assert {"blank", "worked"} <= profiles and any(p.startswith("broken:") for p in profiles)
    answers = {a for s in plan for a in s.answers.values()}
    assert "correct" in answers and "unanswered" in answers and len(answers) > 4
    again = make_course(tmp_path / "again")
    config = load_config(course_root=again)
    release(config, [A])
    assert [s.answers for s in simulate_class(config, A, 10, seed=7)] == [s.answers for s in plan]
    assert [s.answers for s in simulate_class(config, A, 10, seed=8)] != [s.answers for s in plan]


def test_parallel_grades_equal_sequential_nbgrader_and_broken_one_is_reported(released, graded, tmp_path):
    course, plan = released
    parallel, run = graded
    sequential = copy_course(course, tmp_path / "sequential")
    students = [s.student for s in plan]

    outcomes = list(run.values())
    seq_config = load_config(course_root=sequential)
    autograde(seq_config, A, students)  # nbgrader's own autograde, one after another

    broken = [s.student for s in plan if s.profile.startswith("broken:invalid_json")]
    failed = {o.student: o.reason for o in outcomes if o.status == "failed"}
    assert set(failed) == set(broken)
    assert all("NotJSONError" in reason for reason in failed.values())
    good = [s for s in students if s not in failed]
    assert len(good) >= 8
    assert scores(load_config(course_root=parallel), good) == scores(seq_config, good)


def _grades_and_comments(config, students):
    """Every grade and comment row of ``students``, as nbgrader keeps them."""
    rows = {}
    with Gradebook(config.CourseDirectory.db_url) as gb:
        for student in students:
            nb = gb.find_submission_notebook(A, A, student)
            rows[student] = ({g.name: (g.auto_score, g.manual_score, g.needs_manual_grade) for g in nb.grades},
                             {c.name: (c.auto_comment, c.manual_comment) for c in nb.comments})
    return rows


def test_grades_saved_in_one_commit_equal_nbgrader_saving_each_cell(released, graded):
    """The course saves a notebook's grades in one commit (savegrades.py); nbgrader's SaveAutoGrades, one per cell."""
    course, _ = released
    ours = load_config(course_root=graded[0])
    students = [s for s, o in graded[1].items() if o.status == "graded"][:4]
    nbgraders = load_config(course_root=copy_course(course, course.parent / "nbgraders-saving"))
    steps = nbgraders.Autograde.autograde_preprocessors
    assert "gutcourse.grading.savegrades.SaveAutoGradesOnce" in steps
    nbgraders.Autograde.autograde_preprocessors = [
        "nbgrader.preprocessors.SaveAutoGrades" if p.endswith("SaveAutoGradesOnce") else p for p in steps]
    autograde(nbgraders, A, students)
    assert _grades_and_comments(nbgraders, students) == _grades_and_comments(ours, students)


class _FailsAtTheFourthGrade(SaveAutoGradesOnce):
    """Saving fails half-way (as a database error would) for student003 only."""

    seen = 0  # grades this preprocessor has saved

    def _add_score(self, cell, resources):
        self.seen += 1
        if self.student_id == "student003" and self.seen == 4:
            raise RuntimeError("the database went away")
        super()._add_score(cell, resources)


def test_a_save_that_fails_half_way_saves_nothing_of_that_notebook(released, graded):
    """One commit per notebook: a failure leaves none of its grades, and the next student is saved."""
    course, _ = released
    config = load_config(course_root=copy_course(course, course.parent / "save-fails"))
    config.Autograde.autograde_preprocessors = [
        _FailsAtTheFourthGrade if p.endswith("SaveAutoGradesOnce") else p
        for p in config.Autograde.autograde_preprocessors]
    good = [s for s, o in graded[1].items() if o.status == "graded" and s != "student003"][0]
    results = autograde(config, A, ["student003", good])
    assert results["student003"].error and not results[good].error
    rows = _grades_and_comments(config, ["student003", good])
    assert all(auto is None for auto, _, _ in rows["student003"][0].values())
    assert rows[good] == _grades_and_comments(load_config(course_root=graded[0]), [good])[good]


def test_rerun_skips_unchanged_and_regrades_changed_keeping_manual_grades(released, tmp_path):
    # Graded here, not copied from `graded`: a run regrades what was graded into another gradebook.
    course = copy_course(released[0], tmp_path / "course")
    config = load_config(course_root=course)
    first = grade_class(config, A, workers=2, progress=None)
    done = [o.student for o in first if o.status == "graded"]
    student = done[0]

    with Gradebook(config.CourseDirectory.db_url) as gb:
        written = gb.find_grade("q3_2_written_mean_median", A, A, student)
        written.manual_score = 1.5
        override = gb.find_grade("q2_1_test_by_hand", A, A, student)
        override.manual_score = 0.5
        gb.db.commit()

    path = course / "submitted" / student / A / f"{A}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    next(c for c in nb.cells if grade_id(c) == "q1_1_load_markers").source += "\n# changed my mind"
    nbformat.write(nb, str(path))

    second = {o.student: o.status for o in grade_class(config, A, workers=2, progress=None)}
    assert second[student] == "graded"
    assert all(second[s] == "skipped" for s in done if s != student)
    with Gradebook(config.CourseDirectory.db_url) as gb:
        assert gb.find_grade("q3_2_written_mean_median", A, A, student).manual_score == 1.5
        assert gb.find_grade("q2_1_test_by_hand", A, A, student).manual_score == 0.5


def test_a_run_killed_midway_finishes_when_started_again(released, tmp_path):
    course = copy_course(released[0], tmp_path / "course")
    markers = course / ".gutcourse" / "graded" / A
    proc = subprocess.Popen([sys.executable, "-m", "gutcourse.cli", "grade", A, "--workers", "2"],
                            env=dict(os.environ, GUTCOURSE_COURSE_ROOT=str(course)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list(markers.glob("*.json"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(markers.glob("*.json")))
    assert 2 <= done_before < 9, "the run should have been killed midway"

    result = run_cli(course, "grade", A, "--workers", "2")
    assert result.returncode == 0, result.stderr
    counts = re.search(r"(\d+) graded, (\d+) unchanged and skipped, (\d+) could not be graded", result.stdout)
    graded, skipped, failed = map(int, counts.groups())
    assert skipped == done_before and graded + skipped + failed == 10 and failed == 1

    config = load_config(course_root=course)
    with Gradebook(config.CourseDirectory.db_url) as gb:
        rows = [s.student.id for s in gb.find_assignment(A).submissions]
    assert len(rows) == len(set(rows)), "a submission was recorded twice"
    autograded = sorted(p.name for p in (course / "autograded").iterdir() if (p / A).is_dir())
    assert len(autograded) == 9 and sorted(p.stem for p in markers.glob("*.json")) == autograded


def test_feedback_shows_no_hidden_tests(released, graded, tmp_path):
    course = copy_course(graded[0], tmp_path / "course")
    config = load_config(course_root=course)
    students = [s for s, o in graded[1].items() if o.status == "graded"]
    assert all(error is None for error in generate_feedback(config, A, students).values())

    source = nbformat.read(str(course / "source" / A / f"{A}.ipynb"), as_version=4)
    hidden_lines = []
    for cell in source.cells:
        inside = False
        for line in cell.source.splitlines():
            if "### BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "### END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) > 12:
                hidden_lines.append(line.strip())
    assert len(hidden_lines) > 5
    for student in students:
        page = html.unescape((course / "feedback" / student / A / f"{A}.html").read_text())
        text = re.sub(r"<[^>]+>", "", page)
        leaked = [line for line in hidden_lines if line in text]
        assert leaked == [], f"{student}'s feedback shows hidden test code"
    # A failing hidden test still tells the student what is wrong, in one line. (A student who left
    # an answer cell blank sees its NotImplementedError traceback: that one is their own cell's.)
    answered = {s.student for s in released[1] if "unanswered" not in s.answers.values()}
    messages = [read_result(config, A, s).cells["q2_1_test_new_values"].message for s in students]
    failing = next(s for s, m in zip(students, messages) if m and "AssertionError" in m and s in answered)
    page = html.unescape((course / "feedback" / failing / A / f"{A}.html").read_text())
    text = re.sub(r"<[^>]+>", "", page)
    assert "AssertionError" in text
    assert "most recent call last" not in text and "---->" not in text


def _learner_notebook(tmp_path, replace=None):
    """A released course in tmp_path, and a learner's filled-in copy of its notebook outside it."""
    course = make_course(tmp_path / "course")
    release(load_config(course_root=course), [A])
    released_nb = nbformat.read(str(course / "release" / A / f"{A}.ipynb"), as_version=4)
    source = nbformat.read(str(course / "source" / A / f"{A}.ipynb"), as_version=4)
    learner = tmp_path / "work" / f"{A}.ipynb"
    learner.parent.mkdir()
    nbformat.write(fill_answers(released_nb, source, replace or {}), str(learner))
    return course, learner


def test_self_check_grades_with_hidden_tests_and_never_touches_the_file(tmp_path):
    wrong = "def mg_l_to_mg_dl(values):\n    return values * 10"
    _, learner = _learner_notebook(tmp_path, {"q2_1_mg_l_to_mg_dl": wrong})
    before = hashlib.sha256(learner.read_bytes()).hexdigest()

    check = check_notebook(learner)
    table = format_check(check)

    assert hashlib.sha256(learner.read_bytes()).hexdigest() == before
    assert check.assignment == A and check.result.auto_score == check.result.max_auto_score - 2
    assert re.search(r"^2\.1\s+0 / 2\s+.*bigger or smaller", table, re.MULTILINE), table
    assert re.search(r"^1\.1\s+1 / 1\s+ok", table, re.MULTILINE), table
    assert check.feedback == learner.with_name(f"{A}.feedback.html") and check.feedback.is_file()
    assert not (REPO / "coursework" / "submitted" / "self_check").exists()


def test_check_command_prints_its_table_before_writing_the_feedback(tmp_path):
    """`gutcourse check`: the sandbox line on stderr, the table, then where the feedback went."""
    course, learner = _learner_notebook(tmp_path)
    done = run_cli(course, "check", str(learner))
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("grading sandbox") == 1
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines[0].startswith(f"{A}: 7 of 7 autograded points"), done.stdout
    assert lines[-1] == f"feedback: {learner.with_name(f'{A}.feedback.html')}"
    assert learner.with_name(f"{A}.feedback.html").is_file()


def test_self_check_reuses_its_released_course_until_the_source_changes(tmp_path, monkeypatch):
    """A learner's second check copies the released course from the cache; a changed test is released again."""
    from gutcourse.grading import learner_check

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    course, learner = _learner_notebook(tmp_path)
    monkeypatch.setenv("GUTCOURSE_COURSE_ROOT", str(course))
    releases = []
    real_release = learner_check.release
    monkeypatch.setattr(learner_check, "release", lambda *a, **k: releases.append(a[1]) or real_release(*a, **k))

    first = check_notebook(learner)
    second = check_notebook(learner)
    assert releases == [[A]]
    assert first.result.auto_score == second.result.auto_score == first.result.max_auto_score
    assert len(list((tmp_path / "cache" / "gutcourse" / "check").iterdir())) == 1

    source = course / "source" / A / f"{A}.ipynb"
    nb = nbformat.read(str(source), as_version=4)
    test = next(c for c in nb.cells if grade_id(c) == "q1_1_test_load")
    test.source += "\nassert False, 'a test the cached release does not have'"
    nbformat.write(nb, str(source))
    third = check_notebook(learner)
    assert releases == [[A], [A]]
    assert third.result.cells["q1_1_test_load"].points == 0


def test_grading_into_postgresql_gives_the_same_grades(released, graded, tmp_path, postgres_url):
    course = copy_course(released[0], tmp_path / "course")
    config_pg = load_config(course_root=course, db_url=postgres_url)
    release(config_pg, [A])
    outcomes = grade_class(config_pg, A, workers=2, progress=None)
    good = [o.student for o in outcomes if o.status == "graded"]
    assert len(good) == 9

    config_sqlite = load_config(course_root=graded[0])  # the same class graded into SQLite
    assert scores(config_pg, good) == scores(config_sqlite, good)
    with Gradebook(load_config(course_root=course).CourseDirectory.db_url) as gb:
        assert gb.find_assignment(A).submissions == [], "grades went to SQLite, not PostgreSQL"


@pytest.mark.skipif(sys.platform != "linux", reason="the patched function reaches workers only when they are forked")
def test_a_grading_worker_that_dies_costs_only_its_own_submission(released, graded, tmp_path, monkeypatch):
    """The pool breaks; the unfinished submissions go to a fresh pool, the one that kills its worker fails."""
    from gutcourse.grading import classgrade

    course = copy_course(released[0], tmp_path / "course")
    config = load_config(course_root=course)
    students = classgrade.submitted_students(config, A)
    victim = students[len(students) // 2]
    # Five of the class, the victim third: two workers, each with work before and after it.
    some = [s for s in students if s != victim][:4]
    some.insert(2, victim)
    grade_one = classgrade._grade_one

    def dies_on_the_victim(assignment, student):  # runs in the forked workers
        if student == victim:
            os._exit(9)
        return grade_one(assignment, student)

    monkeypatch.setattr(classgrade, "_grade_one", dies_on_the_victim)
    run = {o.student: o for o in grade_class(config, A, workers=2, progress=None, students=some)}
    assert run[victim].status == "failed" and "worker died" in run[victim].reason
    assert [s for s, o in run.items() if s != victim and "worker died" in o.reason] == []
    baseline = {s: o.status for s, o in graded[1].items()}  # the same class graded without a death
    assert {s: o.status for s, o in run.items() if s != victim} == \
        {s: status for s, status in baseline.items() if s in run and s != victim}


@pytest.mark.skipif(sys.platform != "linux", reason="the patched function reaches workers only when they are forked")
def test_a_worker_stuck_holding_the_interpreter_is_stopped_and_only_its_submission_fails(
        released, graded, tmp_path, monkeypatch):
    """Red team round 8: a hidden test's regular expression on a huge label held a worker for hours.

    The worker's own watchdog is a thread and cannot run while the grader's code holds Python's
    lock; the run stops such a worker from outside, fails that submission, and grades the rest.
    """
    import re

    from gutcourse.grading import classgrade

    course = copy_course(released[0], tmp_path / "course")
    config = load_config(course_root=course)
    students = classgrade.submitted_students(config, A)
    victim = students[len(students) // 2]
    some = [s for s in students if s != victim][:4]  # five of the class, the victim third
    some.insert(2, victim)
    grade_one = classgrade._grade_one

    def stuck_on_the_victim(assignment, student):  # runs in the forked workers
        if student == victim:
            # On the board as if it had been at it for hours already: no other submission can look
            # stuck however slow this machine is, and the run need not wait out the real limit.
            with open(os.path.join(classgrade._worker_board, str(os.getpid())), "w", encoding="utf-8") as note:
                json.dump({"student": student, "since": time.monotonic() - 36_000}, note)
            re.match(r"(a*)*b", "a" * 40)  # holds the interpreter's lock for far longer than any test runs
        return grade_one(assignment, student)

    monkeypatch.setattr(classgrade, "_grade_one", stuck_on_the_victim)
    run = {o.student: o for o in grade_class(config, A, workers=2, progress=None, students=some)}
    limit = classgrade._stuck_after(config)
    assert run[victim].status == "failed" and f"did not finish in {limit:.0f} s" in run[victim].reason, run[victim]
    baseline = {s: o.status for s, o in graded[1].items()}  # the same class graded without it
    assert {s: o.status for s, o in run.items() if s != victim} == \
        {s: status for s, status in baseline.items() if s in run and s != victim}


def test_two_grading_runs_on_one_course_are_refused(released, tmp_path):
    """While one `gutcourse grade` holds the course, a second one stops with a clear message."""
    import fcntl

    from gutcourse.grading import GradingError
    from gutcourse.grading.classgrade import lock_path

    course = copy_course(released[0], tmp_path / "course")
    config = load_config(course_root=course)
    path = lock_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("12345 2026-12-02T00:00:00\n")
        held.flush()
        with pytest.raises(GradingError, match="another `gutcourse grade` is running on this course"):
            grade_class(config, A, workers=2, progress=None)
        done = run_cli(course, "grade", A)
        assert done.returncode == 1 and "another `gutcourse grade` is running" in done.stderr
        assert not (course / "autograded").exists()
