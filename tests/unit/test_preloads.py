"""Which libraries a kernel template preloads, found without importing them into the grader."""

import importlib.util
import subprocess
import sys
from pathlib import Path

from gutcourse.grading.sandbox.forktemplate import _importable

REPO = Path(__file__).resolve().parents[2]


def test_importable_agrees_with_find_spec_on_packages_modules_and_names():
    names = ["numpy", "scipy.stats", "skbio.diversity", "skbio.diversity.alpha", "matplotlib.pyplot",
             "ipykernel.kernelapp", "numpy.mean", "skbio.diversity.alpha_diversity", "no_such_module",
             "scipy.no_such_submodule", "json", "email.mime"]

    def find_spec(name):
        try:
            return importlib.util.find_spec(name) is not None
        except ImportError:
            return False

    assert {n: _importable(n) for n in names} == {n: find_spec(n) for n in names}


def test_reading_the_preloads_imports_none_of_them():
    code = ("import sys\nfrom gutcourse.grading import load_config\n"
            "from gutcourse.grading.sandbox import kernel_preloads\n"
            "found = kernel_preloads(load_config(), 'ps2_alpha_diversity')\n"
            "assert 'skbio.diversity' in found and 'scipy.stats' in found, found\n"
            "print(sorted(m for m in ('skbio', 'scipy', 'matplotlib') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
