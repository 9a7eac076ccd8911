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

from ..errors import GutcourseError

_PACKAGE_ROOT = Path(__file__).resolve().parents[3]
CONFIG_FILE = "nbgrader_config.py"


class CourseNotFound(GutcourseError, FileNotFoundError):
    """No course here: no ``nbgrader_config.py`` in the folder or above it, and no ``--course``."""


def find_course(start: str | os.PathLike) -> Path | None:
    """The nearest folder at or above ``start`` that holds an ``nbgrader_config.py``, if any."""
    folder = Path(start).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    return None


def repo_root() -> Path:
    """The course gutcourse acts on: the folder holding its ``nbgrader_config.py``.

    ``$GUTCOURSE_ROOT`` when set (``gutcourse --course DIR`` sets it), else the nearest
    folder at or above the current one that holds an ``nbgrader_config.py``, the way
    nbgrader finds its configuration. Never the checkout the package was installed
    from, unless that is where it is run: a course copied for a new term is acted on
    where it is run, and the original is left alone.
    """
    env = os.environ.get("GUTCOURSE_ROOT")
    if env:
        root = Path(env).resolve()
        if not (root / CONFIG_FILE).is_file():
            raise CourseNotFound(f"{root} has no {CONFIG_FILE}: --course (or $GUTCOURSE_ROOT) must name "
                                 f"the folder that holds the course's {CONFIG_FILE}")
        return root
    found = find_course(Path.cwd())
    if found is None:
        raise CourseNotFound(f"no {CONFIG_FILE} in {Path.cwd()} or any folder above it: run gutcourse "
                             f"in your course's folder, or name it with --course DIR")
    return found


def checkout_root() -> Path | None:
    """The repository this package runs from (an editable install of the checkout), if it is one."""
    if (_PACKAGE_ROOT / "pyproject.toml").is_file() and (_PACKAGE_ROOT / CONFIG_FILE).is_file():
        return _PACKAGE_ROOT
    return None


def load_config(course_root: str | os.PathLike | None = None, db_url: str | None = None) -> Config:
    """Load the course's ``nbgrader_config.py`` (see :func:`repo_root`), with optional overrides.

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


#: The nbgrader steps :func:`course_path` knows, each named by ``CourseDirectory.<step>_directory``.
COURSE_STEPS = ("source", "release", "submitted", "autograded", "feedback")


def course_path(config: Config, step: str, assignment: str, student: str = ".",
                notebook: str | None = None) -> Path:
    """Where nbgrader keeps ``assignment`` at ``step`` for ``student``, in the course ``config`` describes.

    Built by nbgrader's own ``CourseDirectory.format_path``, so the configured
    ``<step>_directory`` names and ``directory_structure`` are honoured (by default
    ``<root>/<step>/<student>/<assignment>``). ``step`` is one of :data:`COURSE_STEPS`;
    ``student`` is ``"."`` for the steps that belong to no student (source, release), as
    nbgrader passes it. With ``notebook`` (a notebook id, without ``.ipynb``) the path of
    that notebook in the folder. A ``CourseDirectory`` costs about 0.15 ms to build, so
    none is cached: a later change to ``config`` is always seen.
    """
    from nbgrader.coursedir import CourseDirectory

    if step not in COURSE_STEPS:
        raise ValueError(f"unknown nbgrader step {step!r}: one of {', '.join(COURSE_STEPS)}")
    coursedir = CourseDirectory(config=config)
    path = Path(coursedir.format_path(getattr(coursedir, f"{step}_directory"), student, assignment))
    return path / f"{notebook}.ipynb" if notebook is not None else path


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


def give_back(folder: str | os.PathLike) -> int:
    """Hand what root wrote in a course folder back to the folder's owner; returns how many paths changed.

    On a hub the course belongs to a grader account (``grader-<course>``) whose formgrader
    writes the gradebook, but grading runs as root so each kernel can get a user of its own.
    Files root leaves behind (the gradebook, autograded/, feedback/, reports) would then be
    read-only to the formgrader.  Only root-owned paths are changed, and nothing outside the
    folder (symbolic links are not followed).  A folder root owns, or a run that is not
    root's, is left as it is.
    """
    folder = Path(folder)
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return 0
    try:
        owner = folder.stat()
    except OSError:
        return 0
    if owner.st_uid == 0:
        return 0
    changed = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in (*dirnames, *filenames):
            path = os.path.join(dirpath, name)
            try:
                if os.lstat(path).st_uid == 0:
                    os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)
                    changed += 1
            except OSError:
                continue
    return changed
