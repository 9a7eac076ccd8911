"""What went wrong while one submission was graded, reported through logging.

The sandbox, the referee's setup and the repair step report an incident with
:func:`report` (an INFO record on the ``gutcourse.grading.incidents`` logger);
whoever grades a submission gathers them with :func:`collected`, which returns
the notes in order, without repeats, once the block ends. An instructor who
configures logging sees the same notes in their own logs.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)


def report(note: str) -> None:
    """Record one incident of the submission being graded."""
    log.info("%s", note)


class _Notes(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.notes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.notes.append(record.getMessage())


@contextmanager
def collected() -> Iterator[list[str]]:
    """Gather the incidents reported inside the block; the list is filled (deduplicated) when it ends."""
    handler = _Notes()
    log.addHandler(handler)
    notes: list[str] = []
    try:
        yield notes
    finally:
        log.removeHandler(handler)
        notes.extend(dict.fromkeys(handler.notes))
