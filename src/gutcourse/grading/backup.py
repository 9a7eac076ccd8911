"""Gradebook safety: a backup before every grading run, a check after it, and a way back.

The default gradebook is one SQLite file. Before ``gutcourse grade`` changes it,
:func:`backup_gradebook` copies it with SQLite's online backup API (consistent
even while another program reads it) into ``<course>/.backups/`` under a
timestamped name; the copy is written to a temporary name first and renamed
when complete, so a run killed during the backup leaves no half copy behind.
Grading itself changes the gradebook one submission at a time, each in its own
transaction, so a run killed at any point loses nothing that was committed and
the next run finishes the rest.

:func:`check_gradebook` runs ``PRAGMA integrity_check`` and verifies that every
submission reported as graded has a score for every autograded test.
:func:`restore_gradebook` puts a backup back (``gutcourse gradebook restore``),
after backing up the current state, so a restore can itself be undone.

Other databases (PostgreSQL) are backed up with their own tools; see
``docs/security.md``.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import sqlite3
from pathlib import Path

from ..errors import GutcourseError

KEEP = 30  # newest backups kept; older ones are removed after each new backup
_PREFIX = "gradebook-"


class BackupError(GutcourseError, RuntimeError):
    pass


def sqlite_path(db_url: str) -> Path | None:
    """The file of a SQLite URL (any driver: ``sqlite://``, ``sqlite+pysqlite://``), None otherwise.

    Parsed with SQLAlchemy's ``make_url``, as nbgrader's gradebook parses it; an in-memory
    database has no file and gives None too.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(str(db_url))
    except ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:"):  # a URI filename (?uri=true)
        return Path(url.database.removeprefix("file:").split("?", 1)[0])
    return Path(url.database)


def backup_dir(course_root: str | os.PathLike) -> Path:
    return Path(course_root) / ".backups"


def _copy(src: Path, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".partial")
    with sqlite3.connect(f"{Path(src).resolve().as_uri()}?mode=ro", uri=True, timeout=60) as source, \
            sqlite3.connect(tmp) as target:
        source.backup(target)
    source.close()
    target.close()
    os.replace(tmp, dest)


def backup_gradebook(db_url: str, course_root: str | os.PathLike, *, label: str = "") -> Path | None:
    """Copy a SQLite gradebook into ``<course>/.backups/``; None if there is nothing to copy.

    Raises ``BackupError`` for a database that is not SQLite (it cannot be copied here).
    """
    path = sqlite_path(db_url)
    if path is None:
        raise BackupError("only SQLite gradebooks are backed up by gutcourse")
    if not path.is_file():
        return None
    folder = backup_dir(course_root)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.partial"):
        stale.unlink(missing_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    dest = folder / f"{_PREFIX}{stamp}{'-' + label if label else ''}.db"
    _copy(path, dest)
    for old in list_backups(course_root)[KEEP:]:
        old.unlink(missing_ok=True)
    return dest


def list_backups(course_root: str | os.PathLike) -> list[Path]:
    """Backups of the gradebook, newest first."""
    folder = backup_dir(course_root)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{_PREFIX}*.db"), key=lambda p: p.name, reverse=True)


def integrity_problems(path: Path) -> list[str]:
    """What SQLite's own check finds wrong with a database file (empty when it is fine)."""
    try:
        with sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=60) as conn:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        conn.close()
    except sqlite3.DatabaseError as err:
        return [f"{path.name}: {err}"]
    return [] if rows == ["ok"] else [f"{path.name}: {r}" for r in rows]


def check_gradebook(db_url: str, assignment: str, graded: list[str], *, partial_only: bool = False) -> list[str]:
    """Problems with the gradebook after grading ``graded`` students (empty when all is well).

    With ``partial_only`` a submission without any autograded score is taken as
    never graded (nbgrader keeps an empty row for a submission it could not read)
    and only one with some scores missing is a problem.
    """
    from nbgrader.api import Gradebook, MissingEntry

    problems = []
    path = sqlite_path(db_url)
    if path is not None:
        problems += integrity_problems(path)
        if problems:
            return problems
    with Gradebook(db_url) as gb:
        for student in graded:
            try:
                submission = gb.find_submission(assignment, student)
            except MissingEntry:
                problems.append(f"{student}: graded, but the gradebook has no submission")
                continue
            tests = [g for nb in submission.notebooks for g in nb.grades if g.cell_type == "code"]
            missing = [g.name for g in tests if g.auto_score is None]
            if partial_only and len(missing) == len(tests):
                continue
            problems.extend(f"{student}: no score for {name}" for name in missing)
    return problems


def restore_gradebook(db_url: str, course_root: str | os.PathLike, backup: str | os.PathLike | None = None) -> tuple[Path, Path | None]:
    """Put ``backup`` (default: the newest taken before a grading run) back as the gradebook.

    The current gradebook is backed up first (labelled ``before-restore``); the
backup is copied next to the gradebook and renamed over it, so a restore that
is killed half-way leaves the old gradebook in place.
    Returns (the backup restored, the backup of the state it replaced).
    """
    path = sqlite_path(db_url)
    if path is None:
        raise BackupError("only SQLite gradebooks are restored by gutcourse; "
                          "restore other databases with their own tools (docs/security.md)")
    backups = list_backups(course_root)
    if backup is None:
        # The newest backup taken before a grading run, not one taken before a restore.
        before_runs = [b for b in backups if not b.stem.endswith("-before-restore")]
        if not before_runs:
            raise BackupError(f"no backups in {backup_dir(course_root)}")
        chosen = before_runs[0]
    else:
        chosen = Path(backup)
        if not chosen.is_file():
            chosen = backup_dir(course_root) / str(backup)
        if not chosen.is_file():
            raise BackupError(f"no backup {backup}; see `gutcourse gradebook list`")
    problems = integrity_problems(chosen)
    if problems:
        raise BackupError(f"{chosen.name} is damaged: {problems[0]}")
    saved = _save_current(path, course_root) if path.is_file() else None
    tmp = path.with_name(path.name + ".restoring")
    _copy(chosen, tmp)
    # The old write-ahead log belongs to the old file: left in place it would be replayed into the new one.
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.replace(tmp, path)
    return chosen, saved


def _save_current(path: Path, course_root) -> Path:
    """Keep the gradebook a restore replaces, even when it is too damaged for SQLite to read."""
    try:
        return backup_gradebook(f"sqlite:///{path}", course_root, label="before-restore")
    except sqlite3.DatabaseError:
        folder = backup_dir(course_root)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        dest = folder / f"{_PREFIX}{stamp}-before-restore.db"
        shutil.copy(path, dest)
        return dest
