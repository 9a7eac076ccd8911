"""The verification's own gradebook skips SQLite's waits for the disk; no other database does."""

from sqlalchemy import create_engine, text

from gutcourse.grading.verify import _throwaway_gradebook

FULL, OFF = 2, 0


def _synchronous(path) -> int:
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            return conn.execute(text("PRAGMA synchronous")).scalar()
    finally:
        engine.dispose()


def test_only_the_verification_gradebook_and_only_while_it_runs(tmp_path):
    (tmp_path / "course").mkdir()
    ours, other = tmp_path / "course" / "gradebook.db", tmp_path / "gradebook.db"
    with _throwaway_gradebook(ours):
        assert _synchronous(ours) == OFF
        assert _synchronous(other) == FULL
    assert _synchronous(ours) == FULL


def test_verification_refuses_a_folder_that_already_holds_a_gradebook(tmp_path):
    """Never grade the fake students `solution` and `blank` into a course that is already there."""
    import pytest

    from gutcourse.grading.verify import verify_assignment

    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "gradebook.db").write_bytes(b"")
    with pytest.raises(ValueError, match="already exists"):
        verify_assignment("ps0_orientation", workdir=tmp_path)
