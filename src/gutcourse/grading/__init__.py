"""Instructor tooling built on nbgrader's Python API.

Public entry points: :func:`load_config`, :func:`release`, :func:`simulate_class`,
:func:`grade_class`, :func:`generate_feedback`, :func:`check_notebook`,
:func:`load_bank`, :func:`load_alternatives` and :func:`run_demo`. The item analysis lives in
``gutcourse.grading.report`` and the tests of the tests in ``gutcourse.grading.verify``.

Each name is imported from its module when it is first used (PEP 562): importing nbgrader
takes about a second, and ``gutcourse check`` starts its kernel template before that.
"""

import sys
import types

from ._lazy import exports
from ._lazy_iri import install as _defer_slow_import

_defer_slow_import()  # before anything imports nbformat (and so jsonschema)


def _patch_nbgrader() -> None:
    from ._alembic_head import install as alembic_in_process
    from ._fast_schema import install as validate_once

    alembic_in_process()  # new gradebooks are stamped without an `alembic` subprocess
    validate_once()  # nbgrader's cell-metadata schema is checked once, not once per cell


if "nbgrader" in sys.modules:
    _patch_nbgrader()
else:
    from ._after_import import after_import

    after_import("nbgrader", _patch_nbgrader)

#: Each public name and the module (in this package) that defines it.
_EXPORTS = {
    "load_config": "_course", "repo_root": "_course", "source_assignments": "_course",
    "SubmissionResult": "autograde", "autograde": "autograde", "read_result": "autograde", "submit": "autograde",
    "Misconception": "bank", "load_alternatives": "bank", "load_bank": "bank",
    "GradeOutcome": "classgrade", "GradingError": "classgrade", "grade_class": "classgrade",
    "run_demo": "demo",
    "generate_feedback": "feedback",
    "ReleaseError": "release", "release": "release",
    "CheckError": "learner_check", "check_notebook": "learner_check",
    "simulate_class": "simulate_class",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = exports(__name__, _EXPORTS)


class _Package(types.ModuleType):
    """This package's module: ``autograde``, ``release`` and ``simulate_class`` stay functions.

    Those three modules define a function of their own name, and the package's name is the
    function's. Importing such a module names it on the package (the import system sets the
    attribute), which would hide the function: the function is kept instead.
    """

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            value = getattr(value, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
