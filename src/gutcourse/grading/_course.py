"""Where the course lives and how nbgrader is configured for it.

Everything that talks to nbgrader goes through :func:`make_api`, so the
configuration in the repository's ``nbgrader_config.py`` is the single source of
settings whether nbgrader is run from its own CLI, from JupyterLab or from here.
"""

from __future__ import annotations

import os
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

_PACKAGE_ROOT = Path(__file__).resolve().parents[3]


def repo_root() -> Path:
    """The repository root: ``$GUTCOURSE_ROOT`` if set, else the checkout this package runs from."""
    return Path(os.environ.get("GUTCOURSE_ROOT", _PACKAGE_ROOT)).resolve()


def load_config(course_root: str | os.PathLike | None = None, db_url: str | None = None) -> Config:
    """Load ``nbgrader_config.py`` from the repository root, with optional overrides.

    ``course_root`` points nbgrader at another course folder (a copy used by
    tests or by ``gutcourse check``); the gradebook then defaults to a SQLite file
    inside it, unless ``db_url`` names another database.
    """
    root = repo_root()
    previous = os.environ.get("GUTCOURSE_COURSE_ROOT")
    if course_root is not None:
        os.environ["GUTCOURSE_COURSE_ROOT"] = str(Path(course_root).resolve())
    try:
        config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    finally:
        if course_root is not None:
            if previous is None:
                del os.environ["GUTCOURSE_COURSE_ROOT"]
            else:
                os.environ["GUTCOURSE_COURSE_ROOT"] = previous
    if db_url:
        config.CourseDirectory.db_url = db_url
    return config


def course_root(config: Config) -> Path:
    """The course folder a loaded configuration points at."""
    return Path(config.CourseDirectory.root)


def source_assignments(root: str | os.PathLike) -> list[str]:
    """Assignment ids found under ``<root>/source``: every folder holding a notebook named after it."""
    source = Path(root) / "source"
    return sorted(
        p.name for p in source.iterdir()
        if p.is_dir() and (p / f"{p.name}.ipynb").is_file()
    )


def make_api(config: Config):
    """An ``NbGraderAPI`` for the course described by ``config`` (quiet logging)."""
    import logging

    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    api.log_level = logging.WARNING
    return api
