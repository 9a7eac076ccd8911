"""The harness must catch a test that cannot fail, and a "correct alternative" that is not.

A copy of ps0_orientation whose test cell for Question 2.1 asserts nothing
lets a blank submission earn that cell's point: the verification must say so.
An entry of the alternatives bank that loses a point, or raises an error in any
cell, must be reported against that entry.
"""

import shutil
from pathlib import Path

import nbformat

from gutcourse.grading._notebooks import grade_id
from gutcourse.grading.bank import Misconception
from gutcourse.grading.verify import verify_assignment

REPO = Path(__file__).resolve().parents[2]


def test_a_test_cell_that_asserts_nothing_is_reported(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(REPO / "coursework" / "source", course / "source",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    path = course / "source" / "ps0_orientation" / "ps0_orientation.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    cell = next(c for c in nb.cells if grade_id(c) == "q2_1_test_by_hand")
    cell.source = '"""Checks nothing at all."""\n### BEGIN HIDDEN TESTS\npass\n### END HIDDEN TESTS'
    nbformat.write(nb, str(path))

    report = verify_assignment("ps0_orientation", course, bank=[], alternatives=[], workdir=tmp_path / "work")

    blank = [p for p in report.problems if p.startswith("blank release did not get zero")]
    assert blank, report.problems
    assert "q2_1_test_by_hand" in blank[0]
    assert report.results["blank"].auto_score == 1
    # The solution is unaffected: the weak test is caught by the blank, not the solution.
    assert report.results["solution"].auto_score == report.results["solution"].max_auto_score


def _alternative(id, replace):
    return Misconception("ps0_orientation", id, "an entry of the alternatives bank", replace, {}, 0.0)


def test_alternatives_that_lose_points_or_raise_are_reported(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(REPO / "coursework" / "source", course / "source",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    right = _alternative("times_a_tenth", {"q2_1_mg_l_to_mg_dl": "def mg_l_to_mg_dl(values):\n    return values * 0.1\n"})
    wrong = _alternative("not_really_right", {"q2_2_share_high_crp": "share_high_crp = 0.5\n"})
    raises = _alternative("raises_after_answering", {"q1_1_load_markers": (
        'markers = data.load("clinic_markers")\nn_subjects = len(markers)\nraise RuntimeError("after the answer")\n')})

    report = verify_assignment("ps0_orientation", course, bank=[], alternatives=[right, wrong, raises],
                               workdir=tmp_path / "work")

    assert "times_a_tenth" in report.verified
    assert [p for p in report.problems if p.startswith("alternative times_a_tenth:")] == []
    lost = [p for p in report.problems if p.startswith("alternative not_really_right:")]
    assert any("q2_2_test_value lost 1 points it should keep" in p for p in lost), report.problems
    raised = [p for p in report.problems if p.startswith("alternative raises_after_answering:")]
    assert any("raised an error" in p and "RuntimeError" in p for p in raised), report.problems
    assert "not_really_right" not in report.verified and "raises_after_answering" not in report.verified
