"""Defer the one slow import in nbformat's chain: ``rfc3987_syntax``.

nbformat validates notebooks with jsonschema, and jsonschema's format module
imports ``rfc3987_syntax`` eagerly (when the GPL ``rfc3987`` package is absent).
That package compiles about 38 Lark grammars at import time: 0.9 s of CPU on
this project's machines, a third of the start-up of every ``gutcourse`` command
(python-jsonschema/jsonschema#1428, opendatahub-io/notebooks#3532).
No notebook or nbgrader schema uses the ``iri`` formats it checks.

:func:`install` puts a stand-in module in its place before jsonschema is first
imported. The stand-in loads the real package the first time
``is_valid_syntax`` is called, so an ``iri`` check still gets the real answer;
only its cost moves to the moment (if ever) it is needed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

_NAME = "rfc3987_syntax"


def _real():
    stub = sys.modules.pop(_NAME, None)
    try:
        module = importlib.import_module(_NAME)
    except BaseException:
        if stub is not None:
            sys.modules[_NAME] = stub
        raise
    return module


def install() -> bool:
    """Install the stand-in; returns False when it is not needed or too late."""
    if _NAME in sys.modules or "jsonschema._format" in sys.modules:
        return False
    if importlib.util.find_spec("rfc3987") is not None or importlib.util.find_spec(_NAME) is None:
        return False  # jsonschema takes the fast rfc3987, or the slow package is not installed
    stub = types.ModuleType(_NAME, "Stand-in for rfc3987_syntax that imports it on first use.")
    stub.__gutcourse_stub__ = True

    def is_valid_syntax(term, value):
        real = _real()
        stub.is_valid_syntax = real.is_valid_syntax
        return real.is_valid_syntax(term, value)

    stub.is_valid_syntax = is_valid_syntax
    sys.modules[_NAME] = stub
    return True
