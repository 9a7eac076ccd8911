"""Tests of the tests, for every assignment under coursework/source/.

Adding an assignment folder (and its misconception bank) is enough for it to be
covered: the parameters below are read from the folders at collection time.
Each assignment is verified once (release, then autograde of the solution, the
blank release and every misconception) in its own throwaway course; the tests
below read that one verification.
"""

from pathlib import Path

import nbformat
import pytest

from gutcourse.grading import load_bank
from gutcourse.grading.selftest import lint_notebook, verify_assignment

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "coursework" / "source"
ASSIGNMENTS = sorted(p.name for p in SOURCE.iterdir() if (p / f"{p.name}.ipynb").is_file())
CASES = [(a, m.id) for a in ASSIGNMENTS for m in load_bank(a)]

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
        if m.points_lost == 0:  # an alternative correct answer, not a mistake
            continue
        for gid in m.replace:
            covered[question_of(gid)] = covered.get(question_of(gid), 0) + 1
    assert {q: covered.get(q, 0) for q in questions if covered.get(q, 0) < 2} == {}


@pytest.mark.parametrize("assignment,misconception",
                         [pytest.param(a, m, marks=group(a)) for a, m in CASES])
def test_misconception_loses_its_points_with_its_message(assignment, misconception, tmp_path_factory):
    report = verification(assignment, tmp_path_factory)
    assert [p for p in report.problems if p.startswith(f"misconception {misconception}")] == []
    assert misconception in report.verified


@pytest.mark.parametrize("assignment", [pytest.param(a, marks=group(a)) for a in ASSIGNMENTS])
def test_verification_found_no_other_problem(assignment, tmp_path_factory):
    assert verification(assignment, tmp_path_factory).problems == []
