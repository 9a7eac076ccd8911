"""Gradebook URLs are parsed as SQLAlchemy parses them, whatever the SQLite driver named."""

from pathlib import Path

import pytest
from traitlets.config import Config

from gutcourse.grading.backup import sqlite_path
from gutcourse.grading.classgrade import prepare_database
from gutcourse.grading.sandbox import _course_paths


@pytest.mark.parametrize("url, path", [
    ("sqlite:////srv/course/gradebook.db", "/srv/course/gradebook.db"),
    ("sqlite+pysqlite:////srv/course/gradebook.db", "/srv/course/gradebook.db"),
    ("sqlite+pysqlite:////srv/course/gradebook.db?timeout=30", "/srv/course/gradebook.db"),
    ("sqlite:///gradebook.db", "gradebook.db"),
    ("sqlite://", None),
    ("sqlite:///:memory:", None),
    ("postgresql+psycopg2://grader:secret@127.0.0.1/gradebook", None),
    ("not a database url", None),
])
def test_sqlite_file_of_a_url(url, path):
    assert sqlite_path(url) == (Path(path) if path else None)


def test_every_sqlite_driver_gets_wal_and_a_lock_timeout(tmp_path):
    url = prepare_database(f"sqlite+pysqlite:///{tmp_path / 'gradebook.db'}")
    assert url == f"sqlite+pysqlite:///{tmp_path / 'gradebook.db'}?timeout=60"
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(tmp_path / "gradebook.db")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    kept = f"sqlite:///{tmp_path / 'gradebook.db'}?timeout=5"
    assert prepare_database(kept) == kept
    assert prepare_database("postgresql+psycopg2://g:p@127.0.0.1/gb") == "postgresql+psycopg2://g:p@127.0.0.1/gb"


def test_a_gradebook_named_with_a_driver_is_hidden_from_kernels(tmp_path):
    (tmp_path / "course").mkdir()
    (tmp_path / "db").mkdir()
    config = Config()
    config.CourseDirectory.root = str(tmp_path / "course")
    config.CourseDirectory.db_url = f"sqlite+pysqlite:///{tmp_path / 'db' / 'gradebook.db'}"
    hide, _ = _course_paths(config)
    assert str((tmp_path / "db").resolve()) in hide
