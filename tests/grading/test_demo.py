"""`gutcourse demo` works in a course folder of its own; simulated classes never replace real work."""

import hashlib
from pathlib import Path

import pytest

from gutcourse.grading import load_config, release, simulate_class
from gutcourse.grading.demo import DEMO_MARKER, DemoError, prepare_demo_course

from .conftest import make_course, run_cli

A = "ps0_orientation"
pytestmark = pytest.mark.xdist_group("demo")


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def real_course_with_a_class(folder: Path) -> Path:
    """A course that already holds a student's submission and a gradebook."""
    course = make_course(folder)
    work = course / "submitted" / "alice" / A
    work.mkdir(parents=True)
    (work / f"{A}.ipynb").write_text('{"alice": "real work"}', encoding="utf-8")
    (course / "gradebook.db").write_bytes(b"a real gradebook")
    return course


def test_demo_grades_a_class_in_its_own_folder_and_leaves_the_course_alone(tmp_path):
    course = real_course_with_a_class(tmp_path / "course")
    before = snapshot(course)
    demo = tmp_path / "demo"
    done = run_cli(course, "demo", A, "--students", "3", "--out", str(demo))
    assert done.returncode == 0, done.stdout + done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith(A + " "))  # the summary table
    assert row.split()[1:7] == ["7", "/", "7", "0", "/", "7"], row  # solution full, blank zero
    assert f"demo course folder: {demo.resolve()}" in done.stdout
    assert (demo / DEMO_MARKER).is_file()
    assert (demo / "reports" / A / "report.html").is_file()
    assert len(list((demo / "feedback").iterdir())) >= 4
    assert snapshot(course) == before


def test_demo_refuses_the_real_course_and_folders_it_did_not_make(tmp_path):
    course = real_course_with_a_class(tmp_path / "course")
    before = snapshot(course)
    for target in (course, course.parent):
        with pytest.raises(DemoError, match="real course"):
            prepare_demo_course(course, target)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(DemoError, match="not made by `gutcourse demo`"):
        prepare_demo_course(course, other)
    with pytest.raises(DemoError, match="no assignment ps9"):
        prepare_demo_course(course, tmp_path / "demo", ["ps9"])
    assert (other / "todo.txt").read_text(encoding="utf-8") == "keep me"
    assert snapshot(course) == before
    done = run_cli(course, "demo", "--out", str(other))
    assert done.returncode == 1 and "choose another folder" in done.stderr, done.stderr


def test_a_second_demo_starts_afresh_in_the_folder_the_first_one_made(tmp_path):
    course = make_course(tmp_path / "course")
    demo = prepare_demo_course(course, tmp_path / "demo")
    (demo / "submitted").mkdir()
    (demo / "submitted" / "left-over").write_text("from the last demo", encoding="utf-8")
    again = prepare_demo_course(course, demo)
    assert again == demo.resolve()
    assert not (demo / "submitted").exists()
    assert sorted(p.name for p in (demo / "source").iterdir()) == ["header.ipynb", A]


def test_simulate_class_never_replaces_a_real_submission(tmp_path):
    course = make_course(tmp_path / "course")
    config = load_config(course_root=course)
    release(config, [A])
    real = course / "submitted" / "student002" / A
    real.mkdir(parents=True)
    (real / f"{A}.ipynb").write_text('{"student002": "real work"}', encoding="utf-8")
    with pytest.raises(FileExistsError, match="student002"):
        simulate_class(config, A, 5, seed=1)
    assert (real / f"{A}.ipynb").read_text(encoding="utf-8") == '{"student002": "real work"}'
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["student002"]  # nothing written
    done = run_cli(course, "simulate-class", A, "--students", "5")
    assert done.returncode == 1 and "were not written by simulate-class" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_simulate_class_may_replace_its_own_earlier_class(tmp_path):
    course = make_course(tmp_path / "course")
    config = load_config(course_root=course)
    release(config, [A])
    simulate_class(config, A, 5, seed=1)
    simulate_class(config, A, 3, seed=2)  # smaller: student004-005 stay from the first run
    simulate_class(config, A, 5, seed=3)  # and are still known as simulated
    assert len(list((course / "submitted").iterdir())) == 5
