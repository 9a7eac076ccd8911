"""nbgrader's gradebook schema version, read in-process instead of by a subprocess.

When nbgrader creates a new gradebook it stamps it with the schema version it
gets from ``alembic -c ... heads`` run as a subprocess (``nbgrader.api.get_alembic_version``):
about a second of a new interpreter importing alembic and SQLAlchemy, and a
``FileNotFoundError`` when the environment's ``bin`` is not on ``PATH`` (a known
nbgrader pitfall). :func:`install` puts an equivalent in its place that reads the
same head revision from nbgrader's own migration scripts with alembic's Python API.
"""

from __future__ import annotations

import functools
from pathlib import Path


@functools.cache
def alembic_head() -> str:
    """The head revision of nbgrader's migrations (what ``alembic heads`` prints first)."""
    import nbgrader
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(Path(nbgrader.__file__).parent / "alembic"))
    return script.get_current_head()


def install() -> None:
    import nbgrader.api

    nbgrader.api.get_alembic_version = alembic_head
