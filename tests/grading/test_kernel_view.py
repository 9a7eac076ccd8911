"""What a grading kernel can read holds no answer (issue 12).

A grading kernel is started as `gutcourse grade` starts one, with a gradebook beside the
course and a secret in the grader's environment. From inside it, student code walks every
folder it can list and reads every file it can open (up to 4 MB, not compiled or compressed),
looking for a copy of any answer-bearing file of the repository (the source notebooks, the
answer banks, the instructor guide, the grading tools, the dataset generator), a file named
like the banks or the guide, a notebook with nbgrader's solution or hidden-test markers, the
generator's settings by name, a gradebook and a git repository (nbgrader's own package, which
ships example notebooks and a test gradebook, is searched for copies only); it also reads its environment and asks `git` for a
repository. It must find none of them, while the course's own helpers and datasets still work.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
import uuid
from pathlib import Path

import nbformat
import pytest
from jupyter_core.utils import run_sync
from traitlets.config import Config

from gutcourse.grading import sandbox

from .conftest import run_code
from learner_install.needles import PUBLIC_SETTINGS

pytestmark = pytest.mark.xdist_group("forkserver")

REPO = Path(__file__).resolve().parents[2]
SECRET_VAR = "GUTCOURSE_TEST_GRADEBOOK_URL"
SECRET = "postgresql://grader:" + uuid.uuid4().hex + "@127.0.0.1/gradebook"

WALK = r'''
import hashlib, json, os, re, subprocess, sys
hashes, names, files = set(HASHES), re.compile(NAMES.encode()), set(FILES)
skip_roots = ("/proc", "/sys", "/dev", "/run", os.environ["JUPYTER_RUNTIME_DIR"], os.getcwd())
binary = (".so", ".pyc", ".png", ".jpg", ".gif", ".woff", ".woff2", ".ttf", ".otf", ".gz", ".zip",
          ".whl", ".bz2", ".xz", ".npy", ".npz", ".pak", ".bin", ".a", ".o", ".ico", ".svgz", ".mo")
# Debian's own trees are listed (a file named like an answer file is still found there) but not
# read: the package manager writes them, not a course. Everything else is read.
system = tuple(p + "/" for p in ("/usr/lib", "/usr/share", "/usr/bin", "/usr/sbin", "/usr/libexec",
                                 "/usr/include", "/lib", "/lib64", "/bin", "/sbin", "/boot", "/var/lib/dpkg",
                                 "/var/lib/apt", "/var/cache/apt", "/var/cache/debconf"))
text = (".py", ".md", ".txt", ".rst", ".yml", ".yaml", ".csv", ".ipynb", ".cfg", ".toml", ".ini", ".sh")
found, listed, read, size = [], 0, 0, 0
import nbgrader
nbgrader_own = os.path.dirname(nbgrader.__file__) + "/"
for top, dirs, filenames in os.walk("/", onerror=lambda e: None):
    if top.startswith(skip_roots):
        dirs[:] = []
        continue
    if ".git" in dirs:
        found.append(("git repository", os.path.join(top, ".git")))
    for name in filenames:
        path = os.path.join(top, name)
        listed += 1
        if (name in files or name.startswith("gradebook.db")) and not path.startswith(nbgrader_own):
            found.append(("named like an answer file", path))
        if name.endswith(binary) or os.path.islink(path) or path.startswith(system):
            continue
        try:
            if os.path.getsize(path) > 4_000_000:
                continue
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        read += 1
        size += len(data)
        if hashlib.sha256(data).hexdigest() in hashes:
            found.append(("a copy of an answer-bearing file", path))
        if path.startswith(nbgrader_own):
            continue  # nbgrader's own examples and test gradebook, in every nbgrader installation
        if name.endswith(".ipynb") and (b"### BEGIN SOLUTION" in data or b"### BEGIN HIDDEN TESTS" in data):
            found.append(("a notebook with nbgrader solutions or hidden tests", path))
        if data.startswith(b"SQLite format 3") and b"submitted_assignment" in data:
            found.append(("an nbgrader gradebook", path))
        hit = names.search(data) if (name.endswith(text) or "." not in name) and len(data) < 1_000_000 else None
        if hit:
            found.append((f"the generator's setting {hit.group(0).decode()}", path))
env = [k for k, v in os.environ.items() if SECRET in v or SECRET_VAR == k]
gits = []
for folder in (os.getcwd(), sys.prefix, os.path.dirname(sys.prefix), "/"):
    try:
        done = subprocess.run(["git", "-C", folder, "rev-parse", "--git-dir"], capture_output=True, text=True)
        gits.append(done.stdout.strip() if done.returncode == 0 else "")
    except OSError:
        gits.append("")
from gutcourse import data, checks
print("RESULT", json.dumps({"found": found[:60], "listed": listed, "read": read, "bytes": size, "env": env,
                            "git": [g for g in gits if g], "datasets": len(data.available()),
                            "sugar_rows": len(data.load("sugar_test"))}))
'''


def _answer_files() -> list[Path]:
    """Files that hold answers or what decides them: sources, banks, the guide, the grading tools, the generator."""
    roots = [REPO / "coursework" / "source", REPO / "tests" / "fixtures", REPO / "src" / "gutcourse" / "simulate",
             REPO / "src" / "gutcourse" / "grading"]
    found = [p for root in roots for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return found + [REPO / "docs" / "instructor_guide.md"]


def _setting_names() -> str:
    """A regular expression for the generator's module-level settings (IBD_COATED, THETA_LOG_SD, ...)."""
    names = set()
    for path in (REPO / "src" / "gutcourse" / "simulate").glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign):
                names |= {t.id for t in node.targets if isinstance(t, ast.Name) and t.id.lstrip("_").isupper()
                          and "_" in t.id.strip("_") and len(t.id) >= 10 and t.id not in PUBLIC_SETTINGS
                          and t.id != "DICTIONARY_FIELDS"}
    return r"\b(" + "|".join(sorted(names)) + r")\b"


def _course(tmp_path: Path) -> Config:
    root = tmp_path / "course"
    (root / "source" / "ps0_orientation").mkdir(parents=True)
    source = REPO / "coursework" / "source" / "ps0_orientation" / "ps0_orientation.ipynb"
    nbformat.write(nbformat.read(str(source), as_version=4), str(root / "source" / "ps0_orientation" / source.name))
    (root / "gradebook.db").write_bytes(b"SQLite format 3\x00 submitted_assignment")
    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    return config


def test_a_grading_kernel_can_read_no_answer_gradebook_repository_or_grader_secret(tmp_path, monkeypatch):
    config = _course(tmp_path)
    mode = sandbox.detect(config).mode
    if mode not in ("namespaces", "bwrap"):
        if os.environ.get("CI") == "true":
            pytest.fail(f"the grading sandbox is in {mode} mode here; the kernel's view is only limited "
                        "with namespaces (root) or bubblewrap")
        pytest.skip(f"the grading sandbox is in {mode} mode: no filesystem isolation to test")
    monkeypatch.setenv(SECRET_VAR, SECRET)
    folder = tmp_path / "course" / "submitted" / "student" / "ps0_orientation"
    folder.mkdir(parents=True)
    answer_files = _answer_files()
    assert len(answer_files) > 50
    hashes = sorted({hashlib.sha256(p.read_bytes()).hexdigest() for p in answer_files})
    # Names that only answer files have (a student's own notebook shares its source's name).
    names = sorted({p.name for p in answer_files if p.suffix in (".yml", ".md")})
    code = (f"HASHES = {hashes!r}\nFILES = {names!r}\nNAMES = {_setting_names()!r}\n"
            f"SECRET = {SECRET!r}\nSECRET_VAR = {SECRET_VAR!r}\n" + WALK)

    async def scenario():
        km = sandbox.SandboxKernelManager(config=config)
        await km.start_kernel(cwd=str(folder))
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=120)
            return await run_code(kc, code, timeout=600)
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    out = run_sync(scenario)()
    assert "RESULT" in out, out[-3000:]
    result = json.loads(out.split("RESULT", 1)[1])
    assert result["found"] == [], "\n".join(f"{why}: {path}" for why, path in result["found"])
    assert result["env"] == [] and result["git"] == []
    assert result["listed"] > 1000 and result["read"] > 500, result  # it did look
    assert result["datasets"] >= 9 and result["sugar_rows"] > 0  # and the course's helpers still work
    print(f"\nkernel view ({mode}): {result['listed']} files listed, {result['read']} read "
          f"({result['bytes'] / 1e6:.0f} MB)", file=sys.stderr)
