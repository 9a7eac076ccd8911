"""One database engine per grading worker, instead of one per nbgrader ``Gradebook``.

nbgrader's ``Gradebook(url)`` creates a new SQLAlchemy engine, lists the database's
tables and checks every table of its schema again, each time; autograding one
submission opens several. SQLAlchemy keeps the compiled form of each query in its
engine, so every new engine also compiles every query again.

:func:`install` (called by each ``gutcourse grade`` worker, a process that grades one
course's gradebook for the length of one run) makes ``Gradebook(url)`` in this process
reuse one engine per URL, and check the tables once per engine. A gradebook still
closes as before (its session ends and its engine's pooled connections are closed):
nothing stays open between two gradebooks but the compiled queries.

:func:`installed` does the same for the length of a block (a verification, which grades
its own throwaway course in the caller's process), then gives nbgrader its own ways back
and disposes of the engines made in the block.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

_engines: dict[tuple, object] = {}
_checked: set[int] = set()


def install() -> None:
    import nbgrader.api as api

    if getattr(api.create_engine, "_gutcourse_shared", False):
        return
    create_engine, inspect, metadata = api.create_engine, api.inspect, api.Base.metadata
    create_all = metadata.create_all

    def shared_engine(url, **kwargs):
        key = (os.getpid(), str(url), tuple(sorted(kwargs.items())))
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = create_engine(url, **kwargs)
        return engine

    class _Tables:
        """``inspect(engine)`` for nbgrader's one question (are there tables?), asked once per engine."""

        def __init__(self, engine):
            self.engine = engine

        def get_table_names(self):
            if id(self.engine) in _checked:
                return ["(checked)"]
            return inspect(self.engine).get_table_names()

    def inspect_once(subject, *args, **kwargs):
        if not args and not kwargs and any(subject is e for e in _engines.values()):
            return _Tables(subject)
        return inspect(subject, *args, **kwargs)

    def create_all_once(bind=None, *args, **kwargs):
        if bind is not None and id(bind) in _checked and not args and not kwargs:
            return None
        create_all(bind, *args, **kwargs)
        if bind is not None and any(bind is e for e in _engines.values()):
            _checked.add(id(bind))

    shared_engine._gutcourse_shared = True
    api.create_engine = shared_engine
    api.inspect = inspect_once
    metadata.create_all = create_all_once


@contextmanager
def installed():
    """:func:`install` for the length of a ``with`` block; nothing changes if it is already installed."""
    import nbgrader.api as api

    if getattr(api.create_engine, "_gutcourse_shared", False):
        yield
        return
    metadata = api.Base.metadata
    before = (api.create_engine, api.inspect, metadata.__dict__.get("create_all"))
    known = set(_engines)
    install()
    try:
        yield
    finally:
        api.create_engine, api.inspect = before[0], before[1]
        if before[2] is None:
            del metadata.create_all  # the class's own method again
        else:
            metadata.create_all = before[2]
        for key in [k for k in _engines if k not in known]:
            engine = _engines.pop(key)
            _checked.discard(id(engine))
            engine.dispose()
