"""The notebook lint catches each structural mistake it promises to catch."""

import copy
from pathlib import Path

import nbformat
import pytest

from gutcourse.grading._notebooks import grade_id
from gutcourse.grading.verify import lint_notebook

REPO = Path(__file__).resolve().parents[2]
PS0 = REPO / "coursework" / "source" / "ps0_orientation" / "ps0_orientation.ipynb"


@pytest.fixture
def nb():
    return nbformat.read(str(PS0), as_version=4)


def cell(nb, gid):
    return next(c for c in nb.cells if grade_id(c) == gid)


def test_the_example_assignment_is_clean(nb):
    assert lint_notebook(nb) == []


def test_duplicate_grade_ids(nb):
    nb.cells.append(copy.deepcopy(cell(nb, "q2_1_test_by_hand")))
    assert any("grade id also used by cell" in p for p in lint_notebook(nb))


def test_default_grade_ids_are_not_descriptive(nb):
    cell(nb, "setup").metadata.nbgrader.grade_id = "cell-8f3a9c2d1e"
    assert any("not descriptive" in p for p in lint_notebook(nb))


def test_heading_points_must_match_cell_points(nb):
    cell(nb, "q2_1_test_by_hand").metadata.nbgrader.points = 3
    problems = lint_notebook(nb)
    assert any("question 2.1: heading says 2 points, cells add up to 4" in p for p in problems)
    assert any("part 2: heading says 4 points, cells add up to 6" in p for p in problems)
    assert any("title says 9 points, cells add up to 11" in p for p in problems)


def test_bare_trailing_expression_in_a_test_cell(nb):
    cell(nb, "q2_1_test_by_hand").source += "\nmg_l_to_mg_dl(10.0)"
    assert any("bare expression" in p for p in lint_notebook(nb))


def test_stderr_in_a_test_cell(nb):
    cell(nb, "q2_1_test_by_hand").source += "\nimport sys\nprint('x', file=sys.stderr)"
    assert any("writes to stderr" in p for p in lint_notebook(nb))


def test_question_without_hidden_tests(nb):
    target = cell(nb, "q2_1_test_new_values")
    target.source = '"""Visible only."""\nassert True'
    assert any("question 2.1: no hidden tests" in p for p in lint_notebook(nb))


def test_test_cell_without_docstring(nb):
    cell(nb, "q2_1_test_by_hand").source = "assert True\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS"
    assert any("docstring" in p for p in lint_notebook(nb))


def test_graded_cell_without_objective(nb):
    del cell(nb, "q2_1_test_by_hand").metadata["gutcourse"]
    assert any("no learning objective" in p for p in lint_notebook(nb))


def test_committed_outputs(nb):
    code = cell(nb, "setup")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hi")]
    assert any("committed with outputs" in p for p in lint_notebook(nb))


def test_manual_code_answer_is_refused(nb):
    answer = cell(nb, "q2_1_mg_l_to_mg_dl")
    answer.metadata.nbgrader.grade = True
    answer.metadata.nbgrader.points = 0
    assert any("manually graded answers must be markdown" in p for p in lint_notebook(nb))


@pytest.mark.parametrize("gid, line", [("setup", "%time LIMIT = 10"), ("q2_1_test_by_hand", "!ls"),
                                       ("setup", "  %matplotlib inline")])
def test_magics_in_setup_and_test_cells(nb, gid, line):
    """The grader runs setup and test cells as plain Python, where a magic line would be skipped (red team)."""
    cell(nb, gid).source += "\n" + line
    assert any(f"({gid}): IPython magic or shell escape in a locked cell" in p for p in lint_notebook(nb))
