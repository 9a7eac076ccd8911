"""Instructor tooling built on nbgrader's Python API.

Public entry points: :func:`load_config`, :func:`release`, :func:`simulate_class`,
:func:`grade_class`, :func:`generate_feedback`, :func:`check_notebook`,
:func:`load_bank`, :func:`load_alternatives` and :func:`run_demo`. The item analysis lives in
``gutcourse.grading.report`` and the tests of the tests in ``gutcourse.grading.verify``.
"""

from ._lazy_iri import install as _defer_slow_import

_defer_slow_import()  # before anything imports nbformat (and so jsonschema)

from ._alembic_head import install as _alembic_in_process  # noqa: E402

_alembic_in_process()  # new gradebooks are stamped without an `alembic` subprocess

from ._fast_schema import install as _validate_once  # noqa: E402

_validate_once()  # nbgrader's cell-metadata schema is checked once, not once per cell

from ._course import load_config, repo_root, source_assignments
from .autograde import SubmissionResult, autograde, read_result, submit
from .bank import Misconception, load_alternatives, load_bank
from .classgrade import GradeOutcome, GradingError, grade_class
from .demo import run_demo
from .feedback import generate_feedback
from .release import ReleaseError, release
from .learner_check import CheckError, check_notebook
from .simulate_class import simulate_class

__all__ = [
    "CheckError",
    "GradeOutcome",
    "GradingError",
    "Misconception",
    "ReleaseError",
    "SubmissionResult",
    "autograde",
    "check_notebook",
    "generate_feedback",
    "grade_class",
    "load_alternatives",
    "load_bank",
    "load_config",
    "read_result",
    "release",
    "repo_root",
    "run_demo",
    "simulate_class",
    "source_assignments",
    "submit",
]
