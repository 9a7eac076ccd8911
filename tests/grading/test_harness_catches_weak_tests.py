"""The harness must catch a test that cannot fail.

A copy of ps0_orientation whose test cell for Question 2.1 asserts nothing
lets a blank submission earn that cell's point: the verification must say so.
"""

import shutil
from pathlib import Path

import nbformat

from gutcourse.grading._notebooks import grade_id
from gutcourse.grading.selftest import verify_assignment

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

    report = verify_assignment("ps0_orientation", course, bank=[], workdir=tmp_path / "work")

    blank = [p for p in report.problems if p.startswith("blank release did not get zero")]
    assert blank, report.problems
    assert "q2_1_test_by_hand" in blank[0]
    assert report.results["blank"].auto_score == 1
    # The solution is unaffected: the weak test is caught by the blank, not the solution.
    assert report.results["solution"].auto_score == report.results["solution"].max_auto_score
