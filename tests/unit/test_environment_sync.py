"""environment.yml (conda, Binder) must ask for exactly what pyproject.toml asks for."""

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
# PyPI and conda-forge spell a few packages differently.
CONDA_NAMES = {"pyyaml": "pyyaml"}


def _split(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement).groups()
    return CONDA_NAMES.get(name.lower(), name.lower()), spec.replace(" ", "")


def _pyproject():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return dict(_split(r) for r in data["project"]["dependencies"]), data["project"]["requires-python"]


def _environment():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return dict(_split(d) for d in conda), pip


def test_environment_yml_has_the_same_packages_and_versions():
    wanted, _ = _pyproject()
    conda, _ = _environment()
    conda.pop("pip")
    conda.pop("python")
    assert conda == wanted


def test_environment_yml_has_the_same_python_and_installs_the_package():
    _, requires_python = _pyproject()
    conda, pip = _environment()
    assert conda["python"] == requires_python
    assert "-e ." in pip


def test_constraints_pin_every_dependency():
    wanted, _ = _pyproject()
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if "==" in line:
            name, version = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    assert sorted(set(wanted) - set(pins)) == []
