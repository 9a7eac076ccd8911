"""The learner's JupyterLab in a real browser: lecture notebooks, their explorers, Validate, no instructor tools."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from gutcourse.grading import load_bank
from gutcourse.grading._notebooks import (
    cells_by_id,
    grade_id,
    is_answer,
    is_test,
    strip_solution_markers,
)

from ._lab import (
    STDERR_OUTPUT,
    drag_first_slider,
    error_outputs,
    explorer_outputs,
    explorer_snapshot,
    has_command,
    menu_bar_labels,
    open_notebook,
    palette_labels,
    run_all,
    scroll_into_view,
    set_cell_source,
    shoot,
    unrun_cells,
    wait_until_changed,
)
from .conftest import ASSIGNMENT, REPO

pytestmark = pytest.mark.xdist_group("browser")

EXPLORER_CALL = re.compile(r"\b\w+_explorer\(")


def _explorer_calls(path: Path) -> int:
    nb = nbformat.read(str(path), as_version=4)
    return sum(len(EXPLORER_CALL.findall(c.source)) for c in nb.cells if c.cell_type == "code")


LECTURES = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")
                  if _explorer_calls(p))
# The misconception whose message the learner must see from Validate.
WRONG_ANSWER = "convert_multiply"


def test_there_are_lectures_with_explorers():
    assert len(LECTURES) >= 2, "expected lecture notebooks with ipywidgets explorers in notebooks/"


@pytest.mark.parametrize("lecture", LECTURES)
def test_lecture_runs_clean_and_its_sliders_move_the_explorer(learner_lab, new_page, artifacts, lecture):
    """Run All shows no error; every explorer renders; dragging a slider changes its readout or figure."""
    shots = artifacts / "learner" / lecture
    page = new_page()
    try:
        open_notebook(page, learner_lab, f"notebooks/{lecture}.ipynb")
        shoot(page, shots / "1-opened.png")
        run_all(page)
        shoot(page, shots / "2-ran-all.png")
        assert error_outputs(page) == []
        assert unrun_cells(page) == [], "Run All stopped before these code cells"
        rendered = page.locator(".jp-Notebook .jp-OutputArea-output").filter(
            has=page.locator(".jupyter-widgets.widget-box"))
        expected = _explorer_calls(REPO / "notebooks" / f"{lecture}.ipynb")
        assert rendered.count() >= expected, "an explorer did not render as a widget"
        outputs = explorer_outputs(page)
        for i in range(outputs.count()):
            output = outputs.nth(i)
            before = explorer_snapshot(output)
            old, new = drag_first_slider(page, output)
            assert new != old, f"explorer {i + 1}: the slider did not move (readout still {old})"
            after = wait_until_changed(page, output, before)
            assert after != before
            shoot(output, shots / f"3-explorer-{i + 1}-moved.png")
        assert error_outputs(page) == []
    finally:
        learner_lab.shutdown_kernels()


@pytest.fixture
def assignment_answers(learner_lab):
    """Index of each answer cell in the learner's copy, the right answer, and one wrong answer."""
    path = learner_lab.root_dir / "assignments" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    released = nbformat.read(str(path), as_version=4)
    source = cells_by_id(nbformat.read(str(REPO / "coursework" / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"),
                                       as_version=4))
    # Validate also reports a written answer left empty, so the learner fills in every answer cell.
    answers = {grade_id(c): (i, strip_solution_markers(source[grade_id(c)].source))
               for i, c in enumerate(released.cells) if is_answer(c)}
    visible_tests = {grade_id(c) for c in released.cells if is_test(c) and _checks_something(c.source)}
    wrong = next(m for m in load_bank(ASSIGNMENT) if m.id == WRONG_ANSWER)
    messages = {gid: text for gid, text in wrong.expect.items() if gid in visible_tests}
    assert messages, f"misconception {WRONG_ANSWER} fails no visible test of {ASSIGNMENT}"
    return answers, wrong.replace, messages


def _checks_something(source: str) -> bool:
    """True when a released test cell runs a check: more than the docstring that hidden tests leave."""
    body = ast.parse(source).body
    return any(not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)) for s in body)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


_VALIDATING = """() => {
  const b = document.querySelector('.jp-NotebookPanel-toolbar .validate-button button, .jp-NotebookPanel-toolbar .validate-button');
  const label = b ? b.textContent.trim() : '';
  return !!document.querySelector('#validation-message') || (b && b.disabled) || (label !== '' && label !== 'Validate');
}"""


def _validate(page):
    """Press Validate and return the results dialog once it shows.

    The press has taken effect once the button says it is saving or validating (or the
    dialog is up); a press that did nothing within 30 s is made again.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    button = page.locator(".jp-NotebookPanel-toolbar .validate-button")
    for _ in range(3):
        button.click()
        try:
            page.wait_for_function(_VALIDATING, timeout=30_000)
            break
        except PlaywrightTimeout:
            continue
    dialog = page.locator(".jp-Dialog").filter(has=page.locator("#validation-message"))
    dialog.wait_for(timeout=240_000)
    return dialog


def _close(dialog):
    dialog.get_by_role("button", name=re.compile("ok", re.I)).click()
    dialog.wait_for(state="detached")


def test_validate_shows_the_failure_message_then_success(learner_lab, new_page, artifacts,
                                                         assignment_answers):
    """A learner fills in the released assignment; Validate names a wrong answer's mistake, then passes."""
    answers, wrong, messages = assignment_answers
    shots = artifacts / "learner" / ASSIGNMENT
    page = new_page()
    try:
        open_notebook(page, learner_lab, f"assignments/{ASSIGNMENT}/{ASSIGNMENT}.ipynb")
        shoot(page, shots / "1-opened.png")
        for gid, (index, answer) in answers.items():
            set_cell_source(page, index, wrong.get(gid, answer))
        # Running the cells shows the first failing check's message under it, as the learner sees it.
        run_all(page)
        shown = error_outputs(page)
        if shown:
            scroll_into_view(page, page.locator(f".jp-Notebook {STDERR_OUTPUT}").first)
        shoot(page, shots / "2-ran-one-wrong.png")
        assert len(shown) == 1 and any(m in shown[0] for m in messages.values()), shown

        dialog = _validate(page)
        message = dialog.locator("#validation-message")
        shoot(page, shots / "3-validate-failed.png")
        assert "validation-failed" in message.get_attribute("class")
        blocks = message.locator(".jp-RenderedText pre").all_inner_texts()
        # Each failure shows the test's source, then its traceback; the last line is the message.
        errors = [_last_line(b) for b in blocks[1::2]]
        assert len(errors) == len(messages), blocks
        for expected in messages.values():
            assert any(expected in e for e in errors), f"no failure says {expected!r}: {errors}"
        _close(dialog)

        for gid in wrong:
            index, answer = answers[gid]
            set_cell_source(page, index, answer)
        dialog = _validate(page)
        shoot(page, shots / "4-validate-passed.png")
        message = dialog.locator("#validation-message")
        assert "validation-success" in message.get_attribute("class"), message.inner_text()
        assert "Success! Your notebook passes all the tests." in message.inner_text()
        _close(dialog)
    finally:
        learner_lab.shutdown_kernels()


INSTRUCTOR_COMMANDS = ("nbgrader:open-formgrader", "nbgrader:open-formgrader-local",
                       "nbgrader:open-create-assignment", "nbgrader:open-course-list",
                       "nbgrader:open-assignment-list")


def test_learner_sees_no_instructor_tools(learner_lab, new_page, artifacts):
    """`make lab`'s learner config: no Nbgrader menu, no formgrader or create-assignment anywhere."""
    page = new_page()
    page.goto(learner_lab.url("lab", reset=True))
    labels = menu_bar_labels(page)
    assert "Run" in labels
    palette = palette_labels(page, known="Run All Cells")  # also waits until every plugin has loaded
    assert "Nbgrader" not in menu_bar_labels(page), "learners get an Nbgrader menu"
    assert [c for c in INSTRUCTOR_COMMANDS if has_command(page, c)] == []
    assert [e for e in palette if "formgrader" in e.lower() or "create assignment" in e.lower()] == []
    assert page.locator(".jp-SideBar .lm-TabBar-tab", has_text="Create Assignment").count() == 0
    shoot(page, artifacts / "learner" / "lab-without-instructor-tools.png")
    assert learner_lab.api("formgrader")[0] == 404
    assert learner_lab.api("formgrader/api/assignments")[0] == 404
    # Validate's server side stays: it answers a version check.
    status, body = learner_lab.api("nbgrader_version?version=0")
    assert status == 200 and isinstance(body, dict)


def test_validate_works_in_notebook_7_too(learner_lab, course_repo, new_page, artifacts):
    """Jupyter Notebook 7's interface has the Validate button, and it runs (nbgrader issues #1866, #1883)."""
    # A blank copy of its own: the Lab test above saves its answers into the workspace's copy.
    blank = Path("notebook7") / f"{ASSIGNMENT}.ipynb"
    (learner_lab.root_dir / blank).parent.mkdir(exist_ok=True)
    shutil.copy(course_repo / "coursework" / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                learner_lab.root_dir / blank)
    page = new_page()
    try:
        page.goto(learner_lab.url(f"notebooks/{blank.as_posix()}"))
        page.locator(".jp-Notebook .jp-Cell").first.wait_for()
        dialog = _validate(page)
        shoot(page, artifacts / "learner" / ASSIGNMENT / "5-notebook7-validate-blank.png")
        message = dialog.locator("#validation-message")
        # The released notebook is blank: its answer cells raise NotImplementedError.
        assert "validation-failed" in message.get_attribute("class")
        assert "NotImplementedError" in message.inner_text()
        _close(dialog)
    finally:
        learner_lab.shutdown_kernels()


# Commands JupyterLab runs on its own after restoring (state, routing, a Launcher) can undo a
# test's step: an open command palette hides and empties itself, and a Launcher takes the current
# widget from a notebook, which disables "Run All Cells". On a quiet machine they run before the
# test acts; on a busy one, after. These tests make them land in between, every time.
_HIDE_PALETTE_ON_OPEN = """n => {
  let left = n;
  const watch = () => {
    const modal = document.getElementById('modal-command-palette');
    if (!modal) { return setTimeout(watch, 20); }
    new MutationObserver(() => {
      if (left > 0 && !modal.classList.contains('lm-mod-hidden')) {
        left -= 1;
        window.jupyterapp.commands.execute('helpmenu:get-kernel');
      }
    }).observe(modal, {attributes: true, attributeFilter: ['class']});
  };
  watch();
}"""


def test_palette_read_survives_commands_run_while_it_is_open(learner_lab, new_page):
    """The palette is hidden by a command twice just after opening; the list is still read whole."""
    page = new_page()
    page.goto(learner_lab.url("lab", reset=True))
    page.wait_for_function("() => window.jupyterapp !== undefined")
    page.evaluate(_HIDE_PALETTE_ON_OPEN, 2)
    labels = palette_labels(page, known="Run All Cells")
    assert "Run All Cells" in labels and len(labels) > 50, labels[:10]


def test_run_all_survives_a_launcher_taking_the_current_widget(learner_lab, new_page):
    """A Launcher opened after the notebook disables Run All Cells; run_all makes the notebook current again."""
    import nbformat

    path = Path("races") / "tiny.ipynb"
    (learner_lab.root_dir / path).parent.mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 6 * 7"),
                                         nbformat.v4.new_code_cell("print(x)")],
                                  metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3 (ipykernel)"}})
    nbformat.write(nb, str(learner_lab.root_dir / path))
    page = new_page()
    try:
        open_notebook(page, learner_lab, path)
        page.evaluate("() => window.jupyterapp.commands.execute('launcher:create')")
        page.wait_for_function("() => !window.jupyterapp.commands.isEnabled('notebook:run-all-cells')")
        run_all(page)
        assert unrun_cells(page) == []
        assert "42" in page.locator(".jp-Notebook .jp-OutputArea-output").last.inner_text()
    finally:
        learner_lab.shutdown_kernels()
