"""`gutcourse` acts on the course it is run in (or the one --course names), never on its own checkout."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
A = "ps0_term2"  # a name only the copied course has


def gutcourse(*args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUTCOURSE")}
    return subprocess.run([sys.executable, "-m", "gutcourse.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def copied_course(dest: Path) -> Path:
    """What an instructor copies for a new term: the configuration and the course's sources."""
    dest.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", dest / "nbgrader_config.py")
    source = dest / "coursework" / "source"
    (source / A).mkdir(parents=True)
    shutil.copy(REPO / "coursework" / "source" / "header.ipynb", source / "header.ipynb")
    shutil.copy(REPO / "coursework" / "source" / "ps0_orientation" / "ps0_orientation.ipynb", source / A / f"{A}.ipynb")
    return dest


def test_a_copied_course_is_the_one_released_and_the_original_is_left_alone(tmp_path):
    course = copied_course(tmp_path / "term2")
    (course / "notes").mkdir()
    done = gutcourse("release", A, cwd=course / "notes")  # from a folder inside the course, as with git
    assert done.returncode == 0, done.stderr
    assert (course / "coursework" / "release" / A / f"{A}.ipynb").is_file()
    assert (course / "coursework" / "gradebook.db").is_file()
    assert not (REPO / "coursework" / "release" / A).exists()


def test_course_names_the_course_from_anywhere_and_nowhere_is_an_error(tmp_path):
    course = copied_course(tmp_path / "term2")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = gutcourse("--course", str(course), "gradebook", "list", cwd=elsewhere)
    assert listed.returncode == 0, listed.stderr
    assert str(course / "coursework" / ".backups") in listed.stderr
    after = gutcourse("gradebook", "list", "--course", str(course), cwd=elsewhere)
    assert after.returncode == 0 and str(course) in after.stderr, after.stderr

    nowhere = gutcourse("release", A, cwd=elsewhere)
    assert nowhere.returncode == 1
    assert f"no nbgrader_config.py in {elsewhere}" in nowhere.stderr and "--course DIR" in nowhere.stderr
    wrong = gutcourse("--course", str(elsewhere), "release", cwd=course)
    assert wrong.returncode == 2 and f"no nbgrader_config.py in {elsewhere}" in wrong.stderr
    assert not (course / "coursework" / "release").exists()


def test_root_hands_files_back_to_the_owner_of_the_course(tmp_path):
    """Grading as root in a course a grader account owns leaves the files with that account."""
    import pytest

    from gutcourse.grading._course import give_back

    if os.geteuid() != 0:
        pytest.skip("only root can write files as another user")
    course = tmp_path / "course"
    (course / "coursework" / "autograded").mkdir(parents=True)
    written = course / "coursework" / "autograded" / "grades.txt"
    written.write_text("7/9")
    outside = tmp_path / "outside.txt"
    outside.write_text("not the course's")
    (course / "coursework" / "link").symlink_to(outside)
    os.chown(course, 65534, 65534)  # nobody, as a grader account would own it
    assert give_back(course) == 4  # coursework, autograded, grades.txt, the link itself
    assert written.stat().st_uid == 65534 and written.stat().st_gid == 65534
    assert os.lstat(course / "coursework" / "link").st_uid == 65534
    assert outside.stat().st_uid == 0, "a link led give_back outside the course"
    os.chown(course, 0, 0)
    assert give_back(course) == 0, "a course root owns is left as it is"
