"""A cgroup v2 of its own for each kernel where kernels share the grader's user id.

In the ``bwrap`` and ``limits`` modes every kernel runs as the grader's user, and
``RLIMIT_NPROC`` counts all the processes of a user: the kernels share one process
budget, so one kernel's fork storm could leave its neighbours (and the grader)
unable to start a thread. Where the system hands the grader a cgroup v2 subtree
of its own (systemd's ``Delegate=yes``, a container with its own cgroup
namespace), each kernel gets a cgroup with ``pids.max`` and ``memory.max``, and
those limits are per kernel.

Layout: the grader's cgroup ``G`` (from ``/proc/self/cgroup``). Cgroup v2 lets a
cgroup give controllers to its children only while it holds no process itself,
so the processes in ``G`` move into ``G/gutcourse-grader`` first; then
``+memory +pids`` is written to ``G/cgroup.subtree_control`` and each kernel gets
``G/gutcourse-kernel-<grader pid>-<n>``. The kernel's launcher joins that cgroup
before it starts the kernel (``_sandbox_exec.py``); :func:`remove` kills what
is left in it and removes it.

On this project's CI machine (cgroup v1 and v2 mixed, no controllers in the
v2 part) :func:`setup` says why it is not used, and the sandbox's one-line
summary says the process limit is shared.
"""

from __future__ import annotations

import itertools
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids")
GRADER_LEAF = "gutcourse-grader"
KERNEL_PREFIX = "gutcourse-kernel-"

_counter = itertools.count(1)
_state: dict[str, tuple[Path | None, str]] = {}


def _self_cgroup() -> str | None:
    """This process's cgroup v2 path (``0::/path`` in ``/proc/self/cgroup``), or None."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        return None
    return None


def _base(root: Path) -> tuple[Path | None, str]:
    """The cgroup whose children the kernels' cgroups become, or (None, why not)."""
    if not sys.platform.startswith("linux"):
        return None, f"no cgroups on {sys.platform}"
    if not (root / "cgroup.controllers").is_file() and (root / "unified" / "cgroup.controllers").is_file():
        root = root / "unified"  # the mixed v1 and v2 layout
    if not (root / "cgroup.controllers").is_file():
        return None, "no cgroup v2 hierarchy at /sys/fs/cgroup"
    own = _self_cgroup()
    if own is None:
        return None, "this process is in no cgroup v2"
    base = root / own.lstrip("/")
    if base.name == GRADER_LEAF:  # moved there by this grader's coordinator, or an earlier run
        base = base.parent
    try:
        offered = (base / "cgroup.controllers").read_text(encoding="utf-8").split()
    except OSError:
        return None, f"its cgroup {base} cannot be read"
    missing = [c for c in CONTROLLERS if c not in offered]
    if missing:
        return None, f"its cgroup v2 does not offer the {' and '.join(missing)} controller"
    if not (os.access(base, os.W_OK) and os.access(base / "cgroup.subtree_control", os.W_OK)
            and os.access(base / "cgroup.procs", os.W_OK)):
        return None, "its cgroup v2 is not delegated to the grader"
    return base, ""


def setup(root: Path | None = None) -> tuple[Path | None, str]:
    """Ready the grader's cgroup for kernels' cgroups (once per process); (base, "") or (None, why not)."""
    root = root or ROOT
    key = str(root)
    if key in _state:
        return _state[key]
    base, why = _base(root)
    if base is not None:
        try:
            enabled = (base / "cgroup.subtree_control").read_text(encoding="utf-8").split()
            if not all(c in enabled for c in CONTROLLERS):
                leaf = base / GRADER_LEAF
                leaf.mkdir(exist_ok=True)
                for pid in (base / "cgroup.procs").read_text(encoding="utf-8").split():
                    try:
                        (leaf / "cgroup.procs").write_text(pid, encoding="utf-8")
                    except ProcessLookupError:
                        pass  # it ended meanwhile
                (base / "cgroup.subtree_control").write_text(
                    " ".join(f"+{c}" for c in CONTROLLERS), encoding="utf-8")
        except OSError as err:
            base, why = None, f"its cgroup v2 could not be set up ({err.strerror or err})"
    _state[key] = (base, why)
    return base, why


def create(base: Path, memory_bytes: int, processes: int) -> Path:
    """A new cgroup for one kernel under ``base``, limited to ``memory_bytes`` and ``processes``."""
    path = base / f"{KERNEL_PREFIX}{os.getpid()}-{next(_counter)}"
    path.mkdir()
    try:
        (path / "pids.max").write_text(str(int(processes)), encoding="utf-8")
        (path / "memory.max").write_text(str(int(memory_bytes)), encoding="utf-8")
        try:
            (path / "memory.swap.max").write_text("0", encoding="utf-8")
        except OSError:
            pass  # no swap accounting here: memory.max still holds
    except OSError:
        remove(path)
        raise
    return path


def remove(path: Path, wait: float = 5.0) -> None:
    """Kill every process left in a kernel's cgroup and remove the cgroup."""
    kill = path / "cgroup.kill"
    deadline = time.monotonic() + wait
    while True:
        try:
            pids = [int(p) for p in (path / "cgroup.procs").read_text(encoding="utf-8").split()]
        except (OSError, ValueError):
            pids = []
        if not pids:
            break
        try:
            if kill.exists():
                kill.write_text("1", encoding="utf-8")
            else:
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
        except OSError:
            pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    try:
        path.rmdir()
    except OSError:
        pass


def describe(base: Path | None, why: str) -> str:
    """Which limits hold per kernel in the modes where kernels share the grader's user id."""
    if base is not None:
        return "memory and processes limited per kernel (cgroup v2)"
    return f"the process limit is shared by every kernel of this user (no per-kernel cgroup: {why})"
