"""The instructor's JupyterLab in a real browser: nbgrader's tools are there, the formgrader shows the class."""

from __future__ import annotations

import re

import pytest

from ._lab import has_command, menu, menu_bar_labels, palette_labels, shoot, visible_menu_items
from .conftest import ASSIGNMENT

pytestmark = pytest.mark.xdist_group("browser")

INSTRUCTOR_MENU_ITEMS = ("Formgrader", "Create Assignment")


def _formgrader_frame(page, instructor):
    """Open the formgrader from JupyterLab's Nbgrader menu; returns its frame."""
    page.goto(instructor.lab.url("lab", reset=True))
    menu_bar_labels(page)
    menu(page, "Nbgrader", "Formgrader")
    page.locator("iframe[src*='formgrader']").wait_for()
    return page.frame_locator("iframe[src*='formgrader']")


def test_instructor_has_formgrader_and_create_assignment(instructor, new_page, artifacts):
    page = new_page()
    page.goto(instructor.lab.url("lab", reset=True))
    assert "Nbgrader" in menu_bar_labels(page)
    items = visible_menu_items(page, "Nbgrader")
    lowered = [i.lower() for i in items]
    assert [i for i in INSTRUCTOR_MENU_ITEMS if i.lower() not in lowered] == [], items
    assert has_command(page, "nbgrader:open-formgrader")
    assert has_command(page, "nbgrader:open-create-assignment")
    assert page.locator(".jp-SideBar .lm-TabBar-tab", has_text="Create Assignment").count() == 1
    # The learner test looks for these palette entries and must not find them; here they are.
    palette = [e.lower() for e in palette_labels(page, known="Run All Cells")]
    assert any("formgrader" in e for e in palette), palette
    page.locator("#jp-MainMenu .lm-MenuBar-item", has_text=re.compile("^Nbgrader$")).click()
    shoot(page, artifacts / "instructor" / "nbgrader-menu.png")
    page.keyboard.press("Escape")
    assert instructor.lab.api("formgrader/api/assignments")[0] == 200


def test_formgrader_lists_the_assignments_and_the_graded_submission(instructor, new_page, artifacts):
    page = new_page()
    frame = _formgrader_frame(page, instructor)
    names = frame.locator("#main-table tr td.name")
    names.first.wait_for()
    page.wait_for_function("n => document.querySelector(\"iframe[src*='formgrader']\")"
                           ".contentDocument.querySelectorAll('#main-table tr td.name').length >= n",
                           arg=len(instructor.assignments))
    shoot(page, artifacts / "instructor" / "formgrader-assignments.png")
    listed = sorted(t.strip() for t in names.all_inner_texts())
    assert listed == sorted(instructor.assignments)
    row = frame.locator("#main-table tr").filter(has=frame.locator("td.name", has_text=ASSIGNMENT))
    assert row.locator("td.num-submissions").inner_text().strip() == "1"

    row.locator("td.num-submissions a").click()
    student = frame.locator("#main-table tr").filter(
        has=frame.locator("td.student-id", has_text=instructor.student))
    student.wait_for()
    score = student.locator("td.score").inner_text().strip()
    shoot(page, artifacts / "instructor" / "formgrader-submissions.png")
    assert re.fullmatch(rf"{instructor.auto_score:g} / \d+(\.\d+)?", score), score
    # Autograded; the written answer (a manually graded cell) is what is left for the instructor.
    expected = "needs manual grading" if instructor.manual_pending else "graded"
    assert student.locator("td.status").inner_text().strip().lower() == expected
