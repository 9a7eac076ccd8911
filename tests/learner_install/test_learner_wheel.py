"""`pip install .` is the learner's installation: it works anywhere, and holds nothing that grades.

The wheel is built from a clean copy of the sources (no stale build folder), installed
into a new virtual environment whose only other packages are this environment's
dependencies, and used from a folder that is not a course. Then every installed file is
searched for solution code, hidden tests and the generator's planted-effect settings.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from learner_install.needles import needles as all_needles

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.xdist_group("wheel")


def _run(cmd, **kwargs):
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, f"{cmd}: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def learner(tmp_path_factory):
    """(python of a venv holding only the learner wheel over our dependencies, its site-packages)."""
    base = tmp_path_factory.mktemp("wheel")
    tree = base / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, tree / name)
    shutil.copytree(REPO / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
          "--disable-pip-version-check", "-w", base / "dist", tree])
    wheel = next((base / "dist").glob("gutcourse-*.whl"))

    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # Our dependencies (pandas, scikit-bio, ...) without our own package: a path added by a .pth
    # file is not a site folder, so the editable install's own .pth there is never read.
    (site / "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
          "--disable-pip-version-check", wheel])
    return python, site


def test_the_learner_wheel_loads_every_dataset_from_any_folder(learner, tmp_path):
    python, site = learner
    script = (
        "import json, importlib.util, gutcourse, gutcourse.data as d\n"
        "import gutcourse.checks, gutcourse.plotting, gutcourse.widgets, gutcourse.phylogeny\n"
        "shapes = {n: list(d.load(n).shape) for n in d.available()}\n"
        "print(json.dumps({'file': gutcourse.__file__, 'shapes': shapes, 'problems': d.verify_files(),\n"
        "  'simulate': importlib.util.find_spec('gutcourse.simulate') is not None,\n"
        "  'grading': importlib.util.find_spec('gutcourse.grading') is not None}))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUTCOURSE")}
    out = json.loads(_run([python, "-c", script], cwd=tmp_path, env=env).stdout)
    assert Path(out["file"]).is_relative_to(site)
    assert sorted(out["shapes"]) == sorted(p.name[:-len(".dictionary.csv")]
                                           for p in (REPO / "datasets").glob("*.dictionary.csv"))
    assert all(rows > 0 and cols > 0 for rows, cols in out["shapes"].values())
    assert out["problems"] == []
    assert (out["simulate"], out["grading"]) == (False, False)


def test_the_learner_command_checks_data_and_points_instructors_to_the_repository(learner, tmp_path):
    python, _ = learner
    gutcourse = python.parent / "gutcourse"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUTCOURSE")}
    check = subprocess.run([gutcourse, "data", "check"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert check.returncode == 0 and "match their checksums" in check.stdout, check.stderr
    for command in (["grade", "ps0_orientation"], ["data", "build"], ["check", "x.ipynb"]):
        done = subprocess.run([gutcourse, *command], capture_output=True, text=True, cwd=tmp_path, env=env)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "learner's installation" in done.stderr and "Traceback" not in done.stderr


def test_the_learner_wheel_holds_no_solution_hidden_test_or_planted_setting(learner):
    _, site = learner
    record = next(site.glob("gutcourse-*.dist-info")) / "RECORD"
    files = [site / line.split(",")[0] for line in record.read_text(encoding="utf-8").splitlines() if line]
    assert any(f.name == "checks.py" for f in files) and any(f.suffix == ".csv" for f in files)
    needles = all_needles()
    assert len([w for w in needles.values() if w.startswith("solution")]) > 100
    assert len([w for w in needles.values() if w.startswith("hidden test")]) > 100
    found = []
    for path in files:
        if not path.is_file() or path.suffix == ".pyc":
            continue
        text = re.sub(r"[ \t]+", " ", path.read_text(encoding="utf-8", errors="replace"))
        found += [f"{path.relative_to(site)}: {where}: {needle[:80]}" for needle, where in needles.items()
                  if needle in text]
    assert found == [], "\n".join(found)
