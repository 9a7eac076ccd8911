"""Tests of the tests, for every assignment under coursework/source/.

Adding an assignment folder (and its banks of misconceptions and correct
alternatives) is enough for it to be covered: the parameters below are read from
the folders at collection time. Each assignment is verified once (release, then
autograde of the solution, the blank release, every misconception and every
alternative) in its own throwaway course; the tests below read that one verification.
"""

from pathlib import Path

import nbformat
import pytest

from gutcourse.grading import load_alternatives, load_bank
from gutcourse.grading.verify import lint_notebook, verify_assignment

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "coursework" / "source"
ASSIGNMENTS = sorted(p.name for p in SOURCE.iterdir() if (p / f"{p.name}.ipynb").is_file())
CASES = [(a, m.id) for a in ASSIGNMENTS for m in load_bank(a)]
ALTERNATIVES = [(a, m.id) for a in ASSIGNMENTS for m in load_alternatives(a)]

# Issue 13 (section 4): every assignment gets at least 20 wrong answers and at least 8 correct
# alternatives, written blind by a reviewer who has not read the solution or the tests.
MIN_WRONG, MIN_ALTERNATIVES = 20, 8
# Assignments whose banks are not yet at those sizes (issue 13) are listed here, each taken off
# when its banks grow (the size test below fails for a listed assignment that already meets them).
# Empty since ps1-ps5 reached the sizes; a new assignment goes here only while its banks are written.
BANKS_BELOW_ISSUE_13_SIZES: set[str] = set()

_verified: dict = {}


def verification(assignment, tmp_path_factory):
    if assignment not in _verified:
        _verified[assignment] = verify_assignment(
            assignment, SOURCE.parent, workdir=tmp_path_factory.mktemp(assignment))
    return _verified[assignment]


def group(assignment):
    return pytest.mark.xdist_group(assignment)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_notebook_passes_lint(assignment):
    nb = nbformat.read(str(SOURCE / assignment / f"{assignment}.ipynb"), as_version=4)
    assert lint_notebook(nb) == []


@pytest.mark.parametrize("assignment", [pytest.param(a, marks=group(a)) for a in ASSIGNMENTS])
def test_solution_earns_every_point(assignment, tmp_path_factory):
    report = verification(assignment, tmp_path_factory)
    solution = report.results["solution"]
    assert solution.error is None
    assert solution.max_auto_score > 0
    assert solution.auto_score == solution.max_auto_score
    assert [p for p in report.problems if p.startswith("solution")] == []


@pytest.mark.parametrize("assignment", [pytest.param(a, marks=group(a)) for a in ASSIGNMENTS])
def test_blank_release_earns_zero(assignment, tmp_path_factory):
    report = verification(assignment, tmp_path_factory)
    assert report.results["blank"].auto_score == 0
    assert [p for p in report.problems if p.startswith("blank")] == []


@pytest.mark.parametrize("assignment", [pytest.param(a, marks=group(a)) for a in ASSIGNMENTS])
def test_every_question_has_misconceptions(assignment):
    """Each autograded question has at least two realistic wrong answers in the bank."""
    nb = nbformat.read(str(SOURCE / assignment / f"{assignment}.ipynb"), as_version=4)
    from gutcourse.grading._notebooks import is_autograded_answer, grade_id, question_of

    questions = {question_of(grade_id(c)) for c in nb.cells if is_autograded_answer(c)}
    covered: dict = {}
    for m in load_bank(assignment):
        for gid in m.replace:
            covered[question_of(gid)] = covered.get(question_of(gid), 0) + 1
    assert {q: covered.get(q, 0) for q in questions if covered.get(q, 0) < 2} == {}


@pytest.mark.parametrize("assignment,misconception",
                         [pytest.param(a, m, marks=group(a)) for a, m in CASES])
def test_misconception_loses_its_points_with_its_message(assignment, misconception, tmp_path_factory):
    report = verification(assignment, tmp_path_factory)
    assert [p for p in report.problems if p.startswith(f"misconception {misconception}")] == []
    assert misconception in report.verified


@pytest.mark.parametrize("assignment,alternative",
                         [pytest.param(a, m, marks=group(a)) for a, m in ALTERNATIVES])
def test_alternative_keeps_every_point(assignment, alternative, tmp_path_factory):
    """A correct answer written differently from the solution keeps every point, with no error."""
    report = verification(assignment, tmp_path_factory)
    assert [p for p in report.problems if p.startswith(f"alternative {alternative}:")] == []
    assert alternative in report.verified


def _size_param(assignment):
    if assignment in BANKS_BELOW_ISSUE_13_SIZES:
        return pytest.param(assignment, marks=pytest.mark.xfail(
            strict=True, reason="banks not yet at issue 13's sizes; take it off BANKS_BELOW_ISSUE_13_SIZES"))
    return assignment


@pytest.mark.parametrize("assignment", [_size_param(a) for a in ASSIGNMENTS])
def test_banks_meet_issue_13_sizes(assignment):
    """At least 20 wrong answers and 8 correct alternatives per assignment (issue 13)."""
    wrong, alternatives = len(load_bank(assignment)), len(load_alternatives(assignment))
    assert (wrong >= MIN_WRONG, alternatives >= MIN_ALTERNATIVES) == (True, True), \
        f"{assignment}: {wrong} wrong answers (need {MIN_WRONG}), {alternatives} alternatives (need {MIN_ALTERNATIVES})"


@pytest.mark.parametrize("assignment", [pytest.param(a, marks=group(a)) for a in ASSIGNMENTS])
def test_verification_found_no_other_problem(assignment, tmp_path_factory):
    assert verification(assignment, tmp_path_factory).problems == []
