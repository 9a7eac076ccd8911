"""`nbgrader collect` with the course's StrictCollect: what a student forges in the exchange is refused.

Each case is a trick a red-team student used on the course's hub (issue 14), played
against nbgrader's own collect first (which falls for it: the test can fail) and then
against the course's configuration.  Needs root, to make folders owned by other accounts.
"""

from __future__ import annotations

import datetime as dt
import os
import pwd
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from gutcourse.grading import load_config
from gutcourse.grading._course import make_api

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: folders owned by other accounts")

REPO = Path(__file__).resolve().parents[2]
COURSE_ID = "gut-immunity"
A = "ps0_orientation"
STUDENT, OTHER = "nobody", "daemon"  # accounts every Debian machine has
SECRET = "the grader's secret"


def _ts(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


@pytest.fixture
def exchange(tmp_path):
    """A course and an exchange with one released assignment; returns (config, inbound, course root)."""
    course = tmp_path / "course"
    (course / "coursework").mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", course / "nbgrader_config.py")
    root = tmp_path / "exchange"
    inbound = root / COURSE_ID / "inbound"
    inbound.mkdir(parents=True)
    (root / COURSE_ID / "outbound" / A).mkdir(parents=True)
    config = load_config(course_root=course / "coursework")
    config.Exchange.root = str(root)
    config.Exchange.path_includes_course = True
    config.CourseDirectory.course_id = COURSE_ID
    (tmp_path / "secret.txt").write_text(SECRET)
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "gradebook.txt").write_text(SECRET)
    return config, inbound, course / "coursework", tmp_path


def submission(inbound: Path, named: str, owner: str, when: dt.datetime, *, secret=True, text="my answers"):
    """A folder in inbound/ as nbgrader's submit makes it (or a forged one), owned by ``owner``."""
    folder = inbound / f"{named}+{A}+{_ts(when)}+abc123"
    folder.mkdir()
    (folder / f"{A}.ipynb").write_text(text)
    (folder / "timestamp.txt").write_text(_ts(when))
    if secret:
        (folder / "submission_secret.txt").write_text(secrets.token_hex(64))  # as nbgrader writes it
    entry = pwd.getpwnam(owner)
    for path in (folder, *folder.iterdir()):
        os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    return folder


def collect(config, nbgrader_default: bool):
    if nbgrader_default:
        config.ExchangeFactory.collect = "nbgrader.exchange.default.collect.ExchangeCollect"
    result = make_api(config).collect(A)
    return result


def collected(coursework: Path, student: str) -> Path:
    return coursework / "submitted" / student / A


def test_the_course_uses_the_strict_collect():
    config = load_config(course_root=REPO / "coursework")
    assert config.ExchangeFactory.collect == "gutcourse.grading.exchange.StrictCollect"


def test_an_honest_submission_is_collected_as_it_was(exchange):
    config, inbound, coursework, _ = exchange
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    submission(inbound, STUDENT, STUDENT, now)
    assert collect(config, False)["success"]
    got = collected(coursework, STUDENT)
    assert (got / f"{A}.ipynb").read_text() == "my answers"
    assert (got / "timestamp.txt").read_text() == _ts(now), "an honest time stamp must be kept as it is"


@pytest.mark.parametrize("nbgrader_default", [True, False], ids=["nbgrader", "course"])
def test_a_folder_named_for_another_student_is_not_collected(exchange, nbgrader_default):
    config, inbound, coursework, _ = exchange
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    submission(inbound, OTHER, STUDENT, now, text="planted by nobody")  # named daemon, owned by nobody
    collect(config, nbgrader_default)
    planted = collected(coursework, OTHER) / f"{A}.ipynb"
    if nbgrader_default:
        assert planted.is_file(), "nbgrader's own collect is expected to fall for this"
    else:
        assert not planted.exists(), "a submission owned by one student was collected as another's"


@pytest.mark.parametrize("nbgrader_default", [True, False], ids=["nbgrader", "course"])
def test_an_early_time_stamp_does_not_make_a_late_submission_on_time(exchange, nbgrader_default):
    config, inbound, coursework, _ = exchange
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    claimed = now - dt.timedelta(days=1)  # written by the student's own process
    submission(inbound, STUDENT, STUDENT, claimed)
    collect(config, nbgrader_default)
    stamp = collected(coursework, STUDENT) / "timestamp.txt"
    from nbgrader.utils import parse_utc

    recorded = parse_utc(stamp.read_text())
    if nbgrader_default:
        assert recorded == claimed
    else:
        assert abs((recorded - now).total_seconds()) < 120, f"recorded {recorded}, the files changed at {now}"


def test_changing_a_submission_after_its_time_moves_its_time(exchange):
    """Submit on time, then edit the submitted notebook later: the edit's time counts."""
    config, inbound, coursework, _ = exchange
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    folder = submission(inbound, STUDENT, STUDENT, now - dt.timedelta(hours=3))
    # The files' inode change times say "now"; make the folder's own look as old as it claims
    # is impossible for a user, so the change shows.
    (folder / f"{A}.ipynb").write_text("edited after the due date")
    assert collect(config, False)["success"]
    from nbgrader.utils import parse_utc

    recorded = parse_utc((collected(coursework, STUDENT) / "timestamp.txt").read_text())
    assert recorded > now - dt.timedelta(minutes=2)


@pytest.mark.parametrize("nbgrader_default", [True, False], ids=["nbgrader", "course"])
def test_links_to_the_graders_files_are_not_followed(exchange, nbgrader_default):
    config, inbound, coursework, tmp = exchange
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    folder = submission(inbound, STUDENT, STUDENT, now)
    (folder / "loot.txt").symlink_to(tmp / "secret.txt")
    (folder / "loot_dir").symlink_to(tmp / "private")
    os.chown(folder / "loot.txt", pwd.getpwnam(STUDENT).pw_uid, -1, follow_symlinks=False)
    collect(config, nbgrader_default)
    got = collected(coursework, STUDENT)
    texts = [p.read_text(errors="replace") for p in got.rglob("*") if p.is_file() and not p.is_symlink()]
    if nbgrader_default:
        assert any(SECRET in t for t in texts), "nbgrader's own collect is expected to copy what links reach"
    else:
        assert not any(SECRET in t for t in texts), "a link carried the grader's file into submitted/"
        assert not any(p.is_symlink() for p in got.rglob("*")), "a link was copied"
        assert (got / f"{A}.ipynb").read_text() == "my answers", "the student's own work must still be collected"


def test_a_file_another_account_put_in_a_submission_is_left_behind(exchange):
    config, inbound, coursework, _ = exchange
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    folder = submission(inbound, STUDENT, STUDENT, now)
    (folder / "extra.py").write_text("dropped in by someone else")  # owned by root here
    assert collect(config, False)["success"]
    assert not (collected(coursework, STUDENT) / "extra.py").exists()


def test_a_submission_without_its_secret_is_not_collected(exchange):
    """nbgrader's release_feedback stops for the whole class on such a submission."""
    config, inbound, coursework, _ = exchange
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    submission(inbound, STUDENT, STUDENT, now, secret=False)
    collect(config, False)
    assert not collected(coursework, STUDENT).exists()


def test_the_latest_honest_submission_wins_over_a_forged_later_one(exchange):
    """A forged folder under another's name with a later time must not replace their real one."""
    config, inbound, coursework, _ = exchange
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    submission(inbound, OTHER, OTHER, now - dt.timedelta(seconds=30), text="daemon's own work")
    submission(inbound, OTHER, STUDENT, now + dt.timedelta(seconds=30), text="planted")
    collect(config, False)
    assert (collected(coursework, OTHER) / f"{A}.ipynb").read_text() == "daemon's own work"


# --------------------------------------------------------------------------- red-team, round 2
# A student's folder is theirs while it is collected: they can swap what is in it between the
# grader's look and the grader's copy, and make entries that break a naive copy.  Each case
# below failed against the first StrictCollect; one bad submission must never stop the others.

def _now():
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _honest_neighbour(inbound):
    submission(inbound, OTHER, OTHER, _now(), text="daemon's work")


def _neighbour_collected(coursework):
    return (collected(coursework, OTHER) / f"{A}.ipynb").read_text() == "daemon's work"


def _chown(path, user=STUDENT):
    os.chown(path, pwd.getpwnam(user).pw_uid, -1, follow_symlinks=False)


def _swap_when_copying_starts(monkeypatch, coursework, swap):
    """Run ``swap`` just as the grader starts copying this student's submission."""
    mkdir = os.mkdir
    done = []

    def hooked(path, *args, **kwargs):
        result = mkdir(path, *args, **kwargs)
        if not done and str(path).startswith(str(collected(coursework, STUDENT)) + ".collecting-"):
            done.append(path)
            swap()
        return result

    monkeypatch.setattr(os, "mkdir", hooked)


def test_a_folder_named_timestamp_txt_does_not_stop_the_collect(exchange):
    config, inbound, coursework, _ = exchange
    _honest_neighbour(inbound)
    folder = submission(inbound, STUDENT, STUDENT, _now())
    (folder / "timestamp.txt").unlink()
    (folder / "timestamp.txt").mkdir()
    _chown(folder / "timestamp.txt")
    assert collect(config, False)["success"]
    assert _neighbour_collected(coursework)
    assert not collected(coursework, STUDENT).exists()


def test_a_sparse_huge_file_is_left_behind_and_stops_nothing(exchange):
    config, inbound, coursework, _ = exchange
    _honest_neighbour(inbound)
    folder = submission(inbound, STUDENT, STUDENT, _now())
    with open(folder / "big.bin", "wb") as fh:
        fh.truncate(101 * 1000 * 1000)  # 101 MB apparent, no disk used
    _chown(folder / "big.bin")
    assert collect(config, False)["success"]
    assert _neighbour_collected(coursework)
    assert (collected(coursework, STUDENT) / f"{A}.ipynb").read_text() == "my answers"
    assert not (collected(coursework, STUDENT) / "big.bin").exists()


def test_a_very_deep_tree_is_refused_and_stops_nothing(exchange):
    config, inbound, coursework, _ = exchange
    _honest_neighbour(inbound)
    folder = submission(inbound, STUDENT, STUDENT, _now())
    try:
        subprocess.run(["sh", "-c", "for i in $(seq 1100); do mkdir d && cd d || exit 1; done"],
                       cwd=folder, check=True, timeout=60)
        subprocess.run(["chown", "-R", f"{STUDENT}:", str(folder)], check=True, timeout=60)
        assert collect(config, False)["success"]
        assert _neighbour_collected(coursework)
        assert not collected(coursework, STUDENT).exists()
    finally:  # shutil.rmtree (pytest's clean-up) recurses too deep for this tree
        subprocess.run(["rm", "-rf", str(folder / "d")], timeout=60)


def test_a_secret_that_is_not_what_submit_writes_is_refused(exchange):
    """nbgrader's release_feedback fails for the whole class on a secret it cannot read."""
    config, inbound, coursework, _ = exchange
    _honest_neighbour(inbound)
    folder = submission(inbound, STUDENT, STUDENT, _now())
    (folder / "submission_secret.txt").write_bytes(b"\xff\xfe not utf-8")
    assert collect(config, False)["success"]
    assert _neighbour_collected(coursework)
    assert not collected(coursework, STUDENT).exists()


def test_a_folder_swapped_for_a_link_after_the_look_is_not_followed(exchange, monkeypatch):
    from gutcourse.grading.exchange import StrictCollect

    config, inbound, coursework, tmp = exchange
    folder = submission(inbound, STUDENT, STUDENT, _now())
    look = StrictCollect.init_src

    def student_swaps_after_the_look(self):
        look(self)
        os.rename(folder, inbound / "kept")
        folder.symlink_to(tmp / "private")

    monkeypatch.setattr(StrictCollect, "init_src", student_swaps_after_the_look)
    collect(config, False)
    assert not (collected(coursework, STUDENT) / "gradebook.txt").exists(), "the grader's files were copied"


def test_a_subfolder_swapped_for_a_link_during_the_copy_is_not_followed(exchange, monkeypatch):
    config, inbound, coursework, tmp = exchange
    folder = submission(inbound, STUDENT, STUDENT, _now())
    (folder / "sub").mkdir()
    _chown(folder / "sub")

    def swap():
        os.rename(folder / "sub", folder / "kept")
        (folder / "sub").symlink_to(tmp / "private")

    _swap_when_copying_starts(monkeypatch, coursework, swap)
    assert collect(config, False)["success"]
    monkeypatch.undo()
    got = collected(coursework, STUDENT)
    assert (got / f"{A}.ipynb").read_text() == "my answers"
    assert not (got / "sub" / "gradebook.txt").exists(), "a link was followed"


def test_a_file_swapped_for_a_link_to_dev_zero_during_the_copy_is_not_read(exchange, monkeypatch):
    import resource
    import signal

    config, inbound, coursework, _ = exchange
    _honest_neighbour(inbound)
    folder = submission(inbound, STUDENT, STUDENT, _now())
    (folder / "notes.txt").write_text("mine")
    _chown(folder / "notes.txt")

    def swap():
        (folder / "notes.txt").unlink()
        (folder / "notes.txt").symlink_to("/dev/zero")

    _swap_when_copying_starts(monkeypatch, coursework, swap)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (50 * 2**20, old[1]))  # 50 MB, not the whole disk
    try:
        result = collect(config, False)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, old_handler)
        monkeypatch.undo()
    assert result["success"], result.get("error")
    notes = collected(coursework, STUDENT) / "notes.txt"
    assert not notes.exists(), "the grader copied what a link reached"
    assert _neighbour_collected(coursework)


def test_an_edit_after_the_look_moves_the_time(exchange, monkeypatch):
    import time

    from nbgrader.utils import parse_utc

    from gutcourse.grading.exchange import StrictCollect

    config, inbound, coursework, _ = exchange
    config.StrictCollect.timestamp_tolerance = 1.0  # stands in for "collected days after the due date"
    claimed = _now()
    folder = submission(inbound, STUDENT, STUDENT, claimed, text="on time")
    look = StrictCollect.init_src

    def student_edits_after_the_look(self):
        look(self)
        time.sleep(2)
        (folder / f"{A}.ipynb").write_text("written after the look")

    monkeypatch.setattr(StrictCollect, "init_src", student_edits_after_the_look)
    assert collect(config, False)["success"]
    got = collected(coursework, STUDENT)
    assert (got / f"{A}.ipynb").read_text() == "written after the look"
    assert parse_utc((got / "timestamp.txt").read_text()) > claimed + dt.timedelta(seconds=1.5)
