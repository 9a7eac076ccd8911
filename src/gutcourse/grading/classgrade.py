"""``gutcourse grade``: autograde a whole class in parallel, safely and resumably.

nbgrader grades one submission after another (jupyter/nbgrader#174). Here each
submission is autograded by nbgrader's own Python API in one of N worker
processes, all writing to the same gradebook:

- SQLite is switched to write-ahead logging and every connection waits for
  locks instead of failing, so 2-8 workers never see "database is locked";
  any other SQLAlchemy URL (PostgreSQL) is used as given.
- After a submission is graded its fingerprint (a hash of the submitted files)
  is recorded under ``.gutcourse/graded/``. A re-run skips submissions whose
  fingerprint is unchanged and which the gradebook still holds; a run killed at
  any point is finished by running it again.
- nbgrader's autograde keeps manual scores already entered (it only sets
  ``auto_score``), so re-grading never overwrites a grader's work.
- A submission that cannot be graded is reported with its reason; the others go on.
- Kernels run in the grading sandbox (``sandbox/``, ``docs/security.md``); what
  went wrong inside one (a kernel that died or hung, repaired cells, suspected
  tampering) is reported with the student. Each worker also stops a submission
  that outlives the sandbox's own time limit.
- The SQLite gradebook is backed up before the run and checked after it
  (``backup.py``).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import multiprocessing
import os
import re
import stat
import sys
import threading
import time
import warnings
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GutcourseError
from . import incidents, sandbox
from ._course import course_path, course_root, load_config, make_api
from .backup import BackupError, backup_gradebook, check_gradebook, sqlite_path
from .repair import diagnose


@dataclass
class GradeOutcome:
    student: str
    status: str  # "graded", "skipped" or "failed"
    seconds: float = 0.0
    reason: str = ""
    notes: list[str] = field(default_factory=list)  # what went wrong while it was graded


class GradeRun(list):
    """The outcomes of one run (a list of :class:`GradeOutcome`), with what the run itself did."""

    sandbox: str = ""  # the one line saying which protections grading kernels had
    backup: Path | None = None  # the gradebook's backup taken before the run
    backup_note: str = ""  # why there is no backup, when there is none
    problems: list[str]  # what the check of the gradebook after the run found

    def __init__(self, outcomes=()):
        super().__init__(outcomes)
        self.problems = []


class GradingError(GutcourseError, RuntimeError):
    pass


def submitted_students(config, assignment: str) -> list[str]:
    submitted = course_path(config, "submitted", ".")
    if not submitted.is_dir():
        return []
    return sorted(p.name for p in submitted.iterdir()
                  if course_path(config, "submitted", assignment, p.name).is_dir())


def unsafe_entries(folder: Path, max_depth: int = 32) -> list[tuple[str, str]]:
    """What in a submission is not a plain file or folder: (relative path, what it is).

    A symbolic link in a submission would be followed by nbgrader when it copies the folder
    for grading, carrying whatever the link reaches (the gradebook, the course's sources)
    to where the student's code runs; a pipe or a device would hang or flood that copy.
    The submission's folder and the student's folder above it count too.  Read without
    recursion, and never through a link.
    """
    found = []
    for outer, label in ((folder.parent, ".."), (folder, ".")):
        try:
            mode = os.lstat(outer).st_mode
        except OSError as err:
            return [(label, f"unreadable ({err.strerror})")]
        if stat.S_ISLNK(mode):
            return [(label, f"a symbolic link (to {os.readlink(outer)})")]
        if not stat.S_ISDIR(mode):
            return [(label, "not a folder")]
    stack = [(str(folder), 0)]
    while stack:
        current, depth = stack.pop()
        try:
            with os.scandir(current) as it:
                for entry in it:
                    rel = os.path.relpath(entry.path, folder)
                    if entry.is_symlink():
                        found.append((rel, f"a symbolic link (to {os.readlink(entry.path)})"))
                    elif entry.is_dir(follow_symlinks=False):
                        if depth + 1 > max_depth:
                            found.append((rel, f"folders nested more than {max_depth} deep"))
                        else:
                            stack.append((entry.path, depth + 1))
                    elif not entry.is_file(follow_symlinks=False):
                        found.append((rel, "not a regular file (a pipe, socket or device)"))
        except OSError as err:
            found.append((os.path.relpath(current, folder), f"unreadable ({err.strerror})"))
    return found


def fingerprint(folder: Path) -> str:
    """A hash of every file in a submission folder (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _marker(config, assignment: str, student: str) -> Path:
    return course_root(config) / ".gutcourse" / "graded" / assignment / f"{student}.json"


def _write_marker(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def prepare_database(db_url: str) -> str:
    """The URL the workers use; for SQLite, WAL mode and a lock timeout are set up."""
    from contextlib import closing

    from sqlalchemy.engine import make_url

    path = sqlite_path(db_url)
    if path is None:
        return db_url
    import sqlite3

    with closing(sqlite3.connect(path, timeout=60)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    url = make_url(db_url)
    if "timeout" in url.query:
        return db_url
    return url.update_query_dict({"timeout": "60"}).render_as_string(hide_password=False)


def _graded_in_gradebook(db_url: str, assignment: str) -> set[str]:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            return {s.student.id for s in gb.find_assignment(assignment).submissions}
        except MissingEntry:
            raise GradingError(f"assignment {assignment} is not in the gradebook: "
                               f"run `gutcourse release {assignment}` first") from None


# Workers are forked from this process where the platform allows it: they inherit the
# imports of nbgrader and its dependencies (about 1.5 s of CPU per worker with "spawn"), and
# the libraries of the assignment's setup cells, which the referee runs (another 1.5 s).
# Nothing that forking would duplicate is open at that point: no Python threads, no event
# loop, no database connection (every Gradebook above was closed). NumPy's OpenBLAS keeps
# threads of its own, which it stops before a fork and starts again after (pthread_atfork).
_START_METHOD = "fork" if sys.platform == "linux" else "spawn"


# --- worker side ---------------------------------------------------------------
_worker_config = None
_worker_api = None
_worker_limit = 0.0
_worker_board = ""  # the folder where this worker says which submission it grades, since when


def _init_worker(root: str, db_url: str, platform: sandbox.Platform, board: str = "") -> None:
    global _worker_config, _worker_api, _worker_limit, _worker_board
    _worker_board = board
    from ._shared_engine import install as _one_engine_per_worker

    sandbox.pin_mode(platform)  # probed once by the coordinator
    _one_engine_per_worker()  # this worker's gradebooks share one engine and its compiled queries
    warnings.filterwarnings("ignore", module="nbgrader")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    config = _worker_config = load_config(course_root=root, db_url=db_url)
    _worker_api = make_api(config)
    policy = sandbox.GradingSandbox(config=config)
    # The notebook's own limit stops a slow submission; this one catches anything it missed.
    _worker_limit = policy.submission_timeout + 2 * policy.interrupt_grace + 60
    sandbox.warm_up(config)  # the kernel template imports the course's libraries meanwhile


def _expected_notebooks(config, assignment: str) -> list[str]:
    return sorted(p.stem for p in course_path(config, "source", assignment).glob("*.ipynb"))


def _post(student: str | None) -> None:
    """Say on the run's board which submission this worker grades now (None: none)."""
    if not _worker_board:
        return
    path = os.path.join(_worker_board, str(os.getpid()))
    try:
        with open(path + ".new", "w", encoding="utf-8") as note:
            json.dump({"student": student, "since": time.monotonic()}, note)
        os.replace(path + ".new", path)
    except OSError:
        pass


def _read_board(board: str) -> list[tuple[int, str, float]]:
    """(worker pid, student, seconds on it) for each worker grading a submission now."""
    busy = []
    now = time.monotonic()
    for entry in os.scandir(board):
        if not entry.name.isdigit():
            continue
        try:
            with open(entry.path, encoding="utf-8") as note:
                said = json.load(note)
        except (OSError, ValueError):
            continue
        if said.get("student"):
            busy.append((int(entry.name), str(said["student"]), now - float(said["since"])))
    return busy


def _stuck_after(config) -> float:
    """Seconds on one submission after which the run stops that worker from outside.

    The worker's own watchdog (``_worker_limit``) fires a minute earlier, but it is a thread:
    code of the grader's that holds Python's lock (a regular expression on a huge string,
    a C extension's loop) keeps it from running. Stopping the process always works.
    """
    policy = sandbox.GradingSandbox(config=config)
    return policy.submission_timeout + 2 * policy.interrupt_grace + 120


def _grade_one(assignment: str, student: str) -> tuple[str, bool, float, str, list[str]]:
    started = time.perf_counter()
    stopped = []
    _post(student)

    def last_resort():
        stopped.append(sandbox.kill_running_kernels())

    watchdog = threading.Timer(_worker_limit, last_resort)
    watchdog.daemon = True
    watchdog.start()
    notes: list[str] = []
    try:
        with incidents.collected() as notes:
            outcome = _worker_api.autograde(assignment, student, force=True, create=True)
        ok = bool(outcome.get("success"))
        reason = "" if ok else _reason((outcome.get("log") or "") + "\n" + (outcome.get("error") or ""))
    except Exception as err:  # a worker must report, never die, on one bad submission
        ok, reason = False, f"{type(err).__name__}: {err}"
    finally:
        watchdog.cancel()
    notes = list(notes)
    if stopped:
        notes.append(f"stopped by the grader after {_worker_limit:.0f} s")
    _freeze_once()
    if not ok:
        folder = course_path(_worker_config, "submitted", assignment, student)
        reason = diagnose(folder, _expected_notebooks(_worker_config, assignment)) or reason
    _post(None)
    return student, ok, time.perf_counter() - started, reason, notes


_EXCEPTION_LINE = re.compile(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception|Interrupt|Exit))\b:?\s*(.*)$")


def _reason(text: str) -> str:
    """The most telling line of nbgrader's log: its last exception, without module paths."""
    for line in reversed(text.strip().splitlines()):
        m = _EXCEPTION_LINE.match(line)
        if m and "see the the above traceback" not in line:
            return f"{m.group(1)}: {m.group(2)}".rstrip(": ")[:200]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else "autograde failed")[:200]


# --- coordinator ----------------------------------------------------------------
class _Progress:
    def __init__(self, total: int, stream=None):
        self.total, self.done, self.started = total, 0, time.perf_counter()
        self.stream = stream
        # A terminal gets one line redrawn in place; a log file gets a line per tenth of the class.
        self.live = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self.every = max(1, total // 10)

    def step(self, student: str, status: str) -> None:
        self.done += 1
        if self.stream is None:
            return
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"{rate:.2f}/s ETA {eta:4.0f}s  {student}: {status:<8}")
        if self.live:
            self.stream.write("\r" + line + ("\n" if self.done == self.total else ""))
        elif self.done % self.every == 0 or self.done == self.total or status != "graded":
            self.stream.write(line.rstrip() + "\n")
        self.stream.flush()


def grade_class(config, assignment: str, *, workers: int = 2, force: bool = False,
                students: list[str] | None = None, progress=sys.stderr) -> GradeRun:
    """Autograde every submission of ``assignment``; returns one outcome per student.

    The result is a list with three more attributes: ``sandbox`` (the protections
    kernels had, also written to ``progress``), ``backup`` (the gradebook's copy
    taken first) and ``problems`` (what the check of the gradebook afterwards found).
    """
    sandbox.warm_up_workers(config, workers)  # (already started by `gutcourse grade`)
    try:
        with _course_lock(config):
            return _grade_class(config, assignment, workers=workers, force=force, progress=progress,
                                students=students)
    finally:
        sandbox.ForkTemplate.stop_spares()


def lock_path(config) -> Path:
    return course_root(config) / ".gutcourse" / "grade.lock"


class _course_lock:
    """One `gutcourse grade` at a time per course: two would grade the same files at once."""

    def __init__(self, config):
        self.path = lock_path(config)
        self.handle = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here; nbgrader itself has none either
            self.handle = handle
            return self
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise GradingError(f"another `gutcourse grade` is running on this course ({self.path.parent.parent}): "
                               f"process and start time {holder}; wait for it to finish") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc):
        if self.handle is not None:
            self.handle.close()  # closing releases the lock
        return False


def _grade_class(config, assignment: str, *, workers: int, force: bool, progress, students):
    root = course_root(config)
    db_url = prepare_database(config.CourseDirectory.db_url)
    students = submitted_students(config, assignment) if students is None else students
    in_gradebook = _graded_in_gradebook(db_url, assignment)
    run = GradeRun()
    platform = sandbox.detect(config)
    if sandbox._fork_unavailable(sandbox.GradingSandbox(config=config), platform):
        sandbox.ForkTemplate.stop_spares()
    run.sandbox = sandbox.describe(config, platform)
    if progress is not None:
        progress.write(run.sandbox + "\n")
        progress.flush()

    outcomes: dict[str, GradeOutcome] = {}
    todo, prints = [], {}
    for student in students:
        folder = course_path(config, "submitted", assignment, student)
        unsafe = unsafe_entries(folder)
        if unsafe:
            where, what = unsafe[0]
            shown = Path(os.path.relpath(folder, root))  # submitted/<student>/<assignment> by default
            place = {".": shown.as_posix(), "..": shown.parent.as_posix()}.get(where, f"{shown.as_posix()}/{where}")
            _marker(config, assignment, student).unlink(missing_ok=True)
            outcomes[student] = GradeOutcome(
                student, "failed", 0.0,
                f"{place} is {what}: a submission holds only files and "
                f"folders, so it was not graded; remove that and grade again")
            continue
        prints[student] = fingerprint(folder)
        marker = _marker(config, assignment, student)
        if not force and marker.is_file() and student in in_gradebook \
                and course_path(config, "autograded", assignment, student).is_dir():
            record = json.loads(marker.read_text(encoding="utf-8"))
            if record.get("fingerprint") == prints[student] and record.get("db") == _db_key(db_url):
                outcomes[student] = GradeOutcome(student, "skipped")
                continue
        todo.append(student)

    bar = _Progress(len(todo), progress)
    if todo:
        try:
            run.backup = backup_gradebook(db_url, root)
        except BackupError:
            run.backup_note = ("this gradebook is not SQLite and was not backed up: "
                               "back it up with the database's own tools first (docs/security.md)")
            if progress is not None:
                progress.write(f"gradebook: {run.backup_note}\n")
        if _START_METHOD == "fork":
            sandbox.preload_setup_libraries(config, assignment)
        context = multiprocessing.get_context(_START_METHOD)
        initargs = (str(root), db_url, platform)

        def record(student, ok, seconds, reason, notes):
            if ok:
                _write_marker(_marker(config, assignment, student),
                              {"fingerprint": prints[student], "db": _db_key(db_url)})
                outcomes[student] = GradeOutcome(student, "graded", seconds, notes=notes)
            else:
                _marker(config, assignment, student).unlink(missing_ok=True)
                outcomes[student] = GradeOutcome(student, "failed", seconds, reason, notes)
            bar.step(student, "graded" if ok else "FAILED")

        # A worker that dies (killed from outside, out of memory) breaks its whole pool: every
        # submission not finished yet is given to a fresh pool; what breaks that one too is
        # graded alone, each in a pool of its own, so only the submission that kills its
        # worker is reported as failed.
        # A worker stuck on one submission past ``_stuck_after`` is stopped the same way, and
        # that submission is reported as failed at once (it is not graded again).
        limit = _stuck_after(config)
        broken = _grade_in_pool(context, workers, initargs, assignment, todo, record, limit)
        if broken:
            broken = _grade_in_pool(context, workers, initargs, assignment, broken, record, limit)
        for student in broken:
            if _grade_in_pool(context, 1, initargs, assignment, [student], record, limit):
                record(student, False, 0.0,
                       "the grading worker died while grading this submission (killed from outside, "
                       "or out of memory); run `gutcourse grade` again to retry it", [])
        graded = [s for s in todo if outcomes[s].status == "graded"]
        run.problems = check_gradebook(db_url, assignment, graded)
    run.extend(outcomes[s] for s in students)
    return run


_frozen = False


def _freeze_once() -> None:
    """After a worker's first submission (its libraries imported): its collections skip what that left."""
    global _frozen
    if not _frozen:
        _frozen = True
        import gc

        gc.collect()
        gc.freeze()


def _grade_in_worker(assignment: str, student: str):
    """What a worker runs: ``_grade_one`` as the module holds it when the worker was forked."""
    return _grade_one(assignment, student)


def _grade_in_pool(context, workers: int, initargs: tuple, assignment: str, students: list[str],
                   record, limit: float = float("inf")) -> list[str]:
    """Grade ``students`` in a fresh pool; returns those left unfinished because a worker died.

    A worker on one submission for more than ``limit`` seconds is killed; that submission is
    recorded as failed, and the pool's other unfinished ones are returned with the rest.
    """
    import gc
    import signal
    import tempfile

    broken = []
    stopped: dict[str, float] = {}
    # Workers forked while this process's objects are frozen leave them out of their garbage
    # collections (they are the imports; a worker never frees them). Thawed once all are forked,
    # so this process collects as before.
    gc.freeze()
    try:
        with tempfile.TemporaryDirectory(prefix="gutcourse-workers-") as board, \
                cf.ProcessPoolExecutor(max_workers=max(1, min(workers, len(students))), mp_context=context,
                                       initializer=_init_worker, initargs=(*initargs, board)) as pool:
            try:
                futures = {pool.submit(_grade_in_worker, assignment, s): s for s in students}
            finally:
                gc.unfreeze()
            sandbox.ForkTemplate.hand_over_spares()  # the workers are forked (all at once, by fork)
            pending = set(futures)
            while pending:
                done, pending = cf.wait(pending, timeout=min(5.0, limit), return_when=cf.FIRST_COMPLETED)
                for future in done:
                    student = futures[future]
                    try:
                        record(*future.result())
                    except BrokenProcessPool:
                        if student in stopped:
                            record(student, False, stopped[student],
                                   f"grading it did not finish in {limit:.0f} s, so the grader stopped its "
                                   f"worker; nothing of it was graded (run the notebook yourself to see why)", [])
                        else:
                            broken.append(student)
                for pid, student, seconds in _read_board(board):
                    if seconds > limit and student not in stopped:
                        stopped[student] = seconds
                        with contextlib.suppress(OSError):
                            os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    finally:
        gc.unfreeze()  # (a no-op when already thawed)
    return sorted(broken, key=students.index)


def _db_key(db_url: str) -> str:
    """The database a marker refers to, without credentials or connection options."""
    base = db_url.split("?", 1)[0]
    if "@" in base:
        scheme, rest = base.split("://", 1)
        base = scheme + "://" + rest.split("@", 1)[1]
    return base
