"""Course paths come from nbgrader's ``CourseDirectory.format_path``, so its settings are honoured."""

import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config

from gutcourse.grading._course import COURSE_STEPS, course_path, load_config
from gutcourse.grading.autograde import read_result, submission_dir

REPO = Path(__file__).resolve().parents[2]


def _config(root: Path, **course_directory) -> Config:
    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    for name, value in course_directory.items():
        setattr(config.CourseDirectory, name, value)
    return config


def _nbgrader_path(config, step, student, assignment):
    coursedir = CourseDirectory(config=config)
    return Path(coursedir.format_path(getattr(coursedir, f"{step}_directory"), student, assignment))


@pytest.mark.parametrize("settings", [
    {},
    {"source_directory": "masters", "release_directory": "handouts", "submitted_directory": "handed_in",
     "autograded_directory": "marked", "feedback_directory": "comments"},
    {"directory_structure": os.path.join("{nbgrader_step}", "{assignment_id}", "{student_id}")},
])
@pytest.mark.parametrize("step", COURSE_STEPS)
def test_the_same_paths_as_nbgraders_format_path(tmp_path, settings, step):
    config = _config(tmp_path, **settings)
    student = "." if step in ("source", "release") else "alice"
    assert course_path(config, step, "ps1", student) == _nbgrader_path(config, step, student, "ps1")
    assert course_path(config, step, "ps1", student, "ps1") == _nbgrader_path(config, step, student, "ps1") / "ps1.ipynb"
    assert isinstance(course_path(config, step, "ps1"), Path)


def test_the_course_configuration_keeps_the_usual_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("GUTCOURSE_ROOT", str(REPO))
    config = load_config(course_root=tmp_path)
    root = tmp_path.resolve()
    assert course_path(config, "source", "ps1", notebook="ps1") == root / "source" / "ps1" / "ps1.ipynb"
    assert course_path(config, "release", "ps1") == root / "release" / "ps1"
    assert course_path(config, "submitted", "ps1", "alice") == root / "submitted" / "alice" / "ps1"
    assert course_path(config, "autograded", "ps1", "alice", "ps1") == root / "autograded" / "alice" / "ps1" / "ps1.ipynb"
    assert course_path(config, "feedback", "ps1", "alice") == root / "feedback" / "alice" / "ps1"
    assert course_path(config, "feedback", ".") == root / "feedback"


def test_an_unknown_step_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown nbgrader step"):
        course_path(_config(tmp_path), "gradebook", "ps1")


def test_renamed_folders_are_followed_by_submission_and_results(tmp_path):
    from nbgrader.api import Gradebook

    config = _config(tmp_path, submitted_directory="handed_in", autograded_directory="marked")
    assert submission_dir(config, "ps1", "alice") == tmp_path / "handed_in" / "alice" / "ps1"

    with Gradebook(config.CourseDirectory.db_url) as gb:
        gb.add_assignment("ps1")
        gb.add_notebook("ps1", "ps1")
        gb.add_grade_cell("test_q1", "ps1", "ps1", max_score=2, cell_type="code")
        gb.add_student("alice")
        gb.add_submission("ps1", "alice")

    test = new_code_cell("assert answer == 42, 'q1: not yet'", outputs=[
        new_output("error", ename="AssertionError", evalue="q1: not yet", traceback=[])])
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "test_q1", "points": 2}
    autograded = tmp_path / "marked" / "alice" / "ps1"
    autograded.mkdir(parents=True)
    nbformat.write(new_notebook(cells=[test]), str(autograded / "ps1.ipynb"))

    result = read_result(config, "ps1", "alice")
    assert result.error is None
    assert result.max_auto_score == 2
    assert result.cells["test_q1"].message == "AssertionError: q1: not yet"
    assert not (tmp_path / "autograded").exists()
