"""The learner's side: a workspace of their own, and a JupyterLab without instructor tools."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

# nbgrader's instructor and exchange tools; a learner working alone needs none of them.
# The menu plugin only holds entries for those tools: left on, it shows learners an empty "Nbgrader" menu.
INSTRUCTOR_LAB_PLUGINS = (
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:course-list",
    "@jupyter/nbgrader:assignment-list",
    "@jupyter/nbgrader:menu",
)
INSTRUCTOR_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.course_list",
    "nbgrader.server_extensions.assignment_list",
)


def prepare_workspace(dest: str | Path, repo: str | Path) -> tuple[list[Path], list[Path]]:
    """Copy the lecture notebooks and the released assignments into ``dest``.

    A file that already exists in ``dest`` is never overwritten: it may hold the
    learner's work. Returns (copied, kept) paths inside ``dest``.
    """
    dest, repo = Path(dest), Path(repo)
    sources = [(repo / "notebooks", dest / "notebooks"),
               (repo / "coursework" / "release", dest / "assignments")]
    copied, kept = [], []
    for src_dir, dst_dir in sources:
        if not src_dir.is_dir():
            continue
        for src in sorted(src_dir.rglob("*")):
            if not src.is_file() or ".ipynb_checkpoints" in src.parts:
                continue
            target = dst_dir / src.relative_to(src_dir)
            if target.exists():
                kept.append(target)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
            copied.append(target)
    return copied, kept


def write_learner_config(config_dir: str | Path) -> list[Path]:
    """Write a Jupyter config dir in which nbgrader's instructor UI is switched off.

    The Validate button stays: it is how a learner checks the visible tests.
    """
    config_dir = Path(config_dir)
    labconfig = config_dir / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    page = labconfig / "page_config.json"
    page.write_text(json.dumps({"disabledExtensions": {p: True for p in INSTRUCTOR_LAB_PLUGINS}},
                               indent=2) + "\n", encoding="utf-8")
    # No prompt about fetching Jupyter news from the web: the module works offline.
    notification = (config_dir / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
                    / "notification.jupyterlab-settings")
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}) + "\n",
                            encoding="utf-8")
    server = config_dir / "jupyter_server_config.json"
    server.write_text(json.dumps({"ServerApp": {"jpserver_extensions": {
        e: False for e in INSTRUCTOR_SERVER_EXTENSIONS}}}, indent=2) + "\n", encoding="utf-8")
    return [page, notification, server]
