"""Instructor tooling built on nbgrader's Python API.

Public entry points: :func:`load_config`, :func:`release`, :func:`autograde`,
:func:`generate_feedback`, :func:`load_bank` and :func:`run_demo`.
"""

from ._course import load_config, repo_root, source_assignments
from .autograde import SubmissionResult, autograde, read_result, submit
from .bank import Misconception, load_bank
from .demo import run_demo
from .feedback import generate_feedback
from .release import ReleaseError, release

__all__ = [
    "Misconception",
    "ReleaseError",
    "SubmissionResult",
    "autograde",
    "generate_feedback",
    "load_bank",
    "load_config",
    "read_result",
    "release",
    "repo_root",
    "run_demo",
    "source_assignments",
    "submit",
]
