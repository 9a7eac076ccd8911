"""The deferred rfc3987_syntax import keeps jsonschema's answers and saves start-up time."""

import subprocess
import sys

import pytest

SCRIPT = r"""
import sys
import gutcourse.grading  # installs the stand-in before nbformat is imported
import nbformat  # imports jsonschema and its format checkers
stub = sys.modules["rfc3987_syntax"]
print("deferred", getattr(stub, "__gutcourse_stub__", False), "lark" in sys.modules)
from jsonschema import Draft7Validator
v = Draft7Validator({"format": "iri"}, format_checker=Draft7Validator.FORMAT_CHECKER)
print("answers", v.is_valid("https://example.org/f\u00e4cal"), v.is_valid("no scheme here"))
print("loaded", "lark" in sys.modules)
"""


def test_iri_checks_still_work_and_load_the_real_package_on_first_use():
    pytest.importorskip("rfc3987_syntax")
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:3] == ["deferred True False", "answers True False", "loaded True"], out


def test_install_is_a_no_op_once_jsonschema_has_loaded():
    import jsonschema  # noqa: F401  (loaded by now in this process)

    from gutcourse.grading._lazy_iri import install

    assert install() is False
