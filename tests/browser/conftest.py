"""Fixtures for the browser tests: Debian's chromium, a course copy, and one JupyterLab per role.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``make browser``), driven by
Playwright; ``playwright install`` is never used. Where chromium or Playwright is
missing the tests skip and say why, except under ``CI=true``, where that is a failure.

The test modules that start servers are in one xdist group ("browser"), so
``pytest -n 2 --dist loadgroup`` runs them on one worker and each JupyterLab starts once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

from ._lab import Lab, start_lab

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 900}
ASSIGNMENT = "ps0_orientation"
STUDENT = "browser_student"


def pytest_configure(config):
    # Registered here too, so the mark is known when xdist is not loaded (-p no:xdist).
    config.addinivalue_line("markers", "xdist_group(name): run in one pytest-xdist worker with --dist loadgroup")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.browser_failed = report.failed
        if report.failed:
            # What the server said (requests left out) goes with the failure: CI keeps no files.
            for name, value in getattr(item, "funcargs", {}).items():
                lab = getattr(value, "lab", value)
                if hasattr(lab, "log_tail"):
                    said = [line for line in lab.log_tail(400).splitlines()
                            if not re.search(r"\b[1-3]\d\d (GET|POST|PUT|PATCH|DELETE|HEAD)\b", line)]
                    report.sections.append((f"{name} server log (last lines)", "\n".join(said[-60:])))
    return report


def unavailable(reason: str) -> None:
    """Skip with ``reason``; under CI=true the browser tests must run, so fail instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> Path | None:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    found = shutil.which("chromium")
    return Path(found) if found else None


@pytest.fixture(scope="session")
def browser():
    chromium = chromium_path()
    if chromium is None:
        unavailable(f"Debian's chromium is not installed ({CHROMIUM}); "
                    "`make browser` installs it as root, or run `apt-get install chromium`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="session")
def artifacts():
    """``artifacts/browser/``, emptied once per run so every file in it is from this run.

    xdist workers of one run share a run id, so a second worker does not empty it again.
    """
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"{os.getpid()}-{time.time_ns()}"
    stamp = ARTIFACTS.parent / ".browser-run"
    if not stamp.is_file() or stamp.read_text(encoding="utf-8") != run:
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        ARTIFACTS.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(run, encoding="utf-8")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def new_page(browser, artifacts, request):
    """Open pages in a fresh browser context; a failing test leaves a screenshot of each."""
    contexts = []

    def make():
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(120_000)
        contexts.append(context)
        return context.new_page()

    yield make
    failed = getattr(request.node, "browser_failed", False)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    for i, context in enumerate(contexts):
        if failed:
            for j, page in enumerate(context.pages):
                try:
                    page.screenshot(path=str(artifacts / "failures" / f"{name}-{i}-{j}.png"))
                except Exception:  # a crashed page must not hide the test's own failure
                    pass
        context.close()


@pytest.fixture(scope="session")
def course_repo(tmp_path_factory) -> Path:
    """A repo-like temp folder: nbgrader_config.py, notebooks/, and coursework/ with every source assignment.

    Only the assignment the tests work with is released: the formgrader lists the
    others from source/ all the same, and releasing each one is slow.
    """
    from gutcourse.grading import load_config, release

    repo = tmp_path_factory.mktemp("course-repo")
    shutil.copy(REPO / "nbgrader_config.py", repo / "nbgrader_config.py")
    skip = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
    shutil.copytree(REPO / "notebooks", repo / "notebooks", ignore=skip)
    shutil.copytree(REPO / "coursework" / "source", repo / "coursework" / "source", ignore=skip)
    release(load_config(course_root=repo / "coursework"), [ASSIGNMENT])
    return repo


@pytest.fixture(scope="module")
def learner_lab(course_repo, tmp_path_factory) -> Lab:
    """JupyterLab as `make lab` sets it up for a learner: their workspace and the learner config.

    The workspace and the config dir come from the same `gutcourse workspace` command
    `make lab` runs. The server runs in the workspace, which holds no nbgrader config,
    as on a student's own machine or hub account.
    """
    base = tmp_path_factory.mktemp("learner")
    workspace, config = base / "workspace", base / "jupyter-config"
    env = dict(os.environ, GUTCOURSE_ROOT=str(course_repo))
    done = subprocess.run([sys.executable, "-m", "gutcourse.cli", "workspace", str(workspace),
                           "--jupyter-config", str(config)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lab = start_lab(cwd=workspace, root_dir=workspace, config_dir=config, home=base / "home")
    try:
        yield lab
    finally:
        lab.stop()


@dataclass
class Instructor:
    lab: Lab
    assignments: list[str]
    student: str
    auto_score: float
    manual_pending: float


@pytest.fixture(scope="module")
def instructor(course_repo, tmp_path_factory) -> Instructor:
    """JupyterLab for the instructor, run in the course copy, after one student's work was graded.

    The submission is the released notebook with the source's answers filled in,
    submitted and autograded with `gutcourse.grading`. The Jupyter config dir is
    empty, so nbgrader's extensions are on as installed.
    """
    import nbformat

    from gutcourse.grading import autograde, load_config, source_assignments, submit
    from gutcourse.grading._notebooks import fill_answers

    coursework = course_repo / "coursework"
    config = load_config(course_root=coursework)
    released = nbformat.read(str(coursework / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), as_version=4)
    source = nbformat.read(str(coursework / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), as_version=4)
    submit(config, ASSIGNMENT, STUDENT, fill_answers(released, source))
    with warnings.catch_warnings():
        # nbgrader's gradebook code trips SQLAlchemy session warnings that say nothing here.
        warnings.filterwarnings("ignore", message=".*not in session.*")
        result = autograde(config, ASSIGNMENT, [STUDENT])[STUDENT]
    assert result.error is None, result.error
    base = tmp_path_factory.mktemp("instructor")
    (base / "jupyter-config").mkdir()
    lab = start_lab(cwd=course_repo, root_dir=course_repo, config_dir=base / "jupyter-config",
                    home=base / "home")
    try:
        yield Instructor(lab, source_assignments(coursework), STUDENT, result.auto_score,
                         result.manual_pending)
    finally:
        lab.stop()
