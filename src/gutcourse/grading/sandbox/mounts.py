"""What a kernel sees of the filesystem: the folders to hide, the ones it needs, and the mounts that build its view."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

# Top-level folders a kernel sees as they are (read-only): the system's programs, libraries and
# settings. Every other top-level folder (/home, /root, /srv, /opt, /var, /run, /mnt, a /work ...)
# is covered, with what the kernel needs put back; /tmp and /dev/shm are private scratch space.
_SYSTEM_FOLDERS = frozenset({"usr", "lib", "lib32", "lib64", "libx32", "bin", "sbin", "etc", "proc", "sys",
                             "dev", "tmp"})


def _outside_system() -> list[str]:
    """The top-level folders of this machine that are not the system's own."""
    try:
        names = sorted(os.listdir("/"))
    except OSError:
        return []
    return [f"/{n}" for n in names if n not in _SYSTEM_FOLDERS and os.path.isdir(f"/{n}")
            and not os.path.islink(f"/{n}")]


def _checkout() -> str | None:
    """The repository the package runs from (an editable install), which kernels must not see."""
    from .._course import checkout_root

    root = checkout_root()
    return os.path.realpath(root) if root is not None else None


def _course_paths(config) -> tuple[list[str], list[str]]:
    """(folders to hide, folders the kernel needs to read) for this configuration."""

    hide: list[str] = []
    root = getattr(getattr(config, "CourseDirectory", None), "root", None) if config is not None else None
    if root:
        hide.append(str(Path(root).resolve()))
    db_url = str(getattr(config.CourseDirectory, "db_url", "")) if root else ""
    from ..backup import sqlite_path

    db_file = sqlite_path(db_url) if db_url else None
    if db_file is not None:
        hide.append(str(db_file.resolve().parent))
    package = Path(__file__).resolve().parents[2]  # gutcourse/, in src/ of a checkout or in site-packages
    # What kernels never need of the package: the grading tools and the dataset generator
    # (whose settings are the planted effects). Kernels import checks, data, plotting, widgets.
    hide += [str(package / "grading"), str(package / "simulate")]
    from gutcourse.data import _data_dir

    data_dir = str(_data_dir())
    needed = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, str(package.parent))}
    if os.path.isdir(data_dir):
        needed.add(os.path.realpath(data_dir))
    checkout = _checkout()
    for entry in sys.path:
        # Python's own folders, but nothing else of a checkout (its tests, docs or .git).
        if entry and os.path.isdir(entry):
            real = os.path.realpath(entry)
            if checkout is None or not (real == checkout or _inside(real, checkout)) or \
                    any(real == n or _inside(real, n) for n in needed):
                needed.add(real)
    return list(dict.fromkeys(hide)), sorted(needed)


def _opaque_ancestor(path: str) -> str | None:
    """The outermost folder above ``path`` that other users cannot enter, if any."""
    parts = Path(path).parts
    for i in range(2, len(parts)):
        folder = str(Path(*parts[:i]))
        try:
            if not os.stat(folder).st_mode & stat.S_IXOTH:
                return folder
        except OSError:
            return None
    return None


def mount_plan(hide: list[str], needed: list[str], writable: list[str], *, root: bool,
               mask: list[str] = ()) -> list[tuple[str, str]]:
    """The ordered mounts that build a kernel's view of the filesystem.

    ``hide`` folders (the course, the gradebook's) become empty; nothing inside
    them comes back except the ``writable`` folders, bound back writable.
    ``mask`` folders (the grader's home) and, when running as root (the kernel
    then runs as another user), folders other users cannot enter become empty
    too, but the ``needed`` folders inside them (the Python installation, this
    checkout) come back read-only. ``/tmp`` and friends become private scratch
    space. Outer mounts come before inner ones, so a hidden course folder inside
    an exposed checkout stays hidden and a submission inside it stays visible.
    """
    ops: dict[str, str] = {}
    for path in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(path):
            ops[path] = "scratch"
    for path in [*mask, *hide]:
        if os.path.isdir(path):
            ops[path] = "hide"
    for path in needed:
        if any(path == h or _inside(path, h) for h in hide):
            continue  # what is hidden stays hidden, whatever the grader's own path holds
        opaque = _opaque_ancestor(path) if root else None
        if opaque and opaque not in ops:
            ops[opaque] = "hide"
        ops.setdefault(path, "bind_ro")
    for path in writable:
        ops[path] = "bind_rw"
    plan: list[tuple[str, str]] = []
    for path, kind in sorted(ops.items(), key=lambda kv: (len(Path(kv[0]).parts), kv[0])):
        enclosing = [(p, k) for p, k in plan if _inside(path, p)]
        innermost = max(enclosing, key=lambda pk: len(pk[0]))[1] if enclosing else None
        # A needed folder is bound only where a hiding mount above it took it away.
        if kind == "bind_ro" and innermost in (None, "bind_ro", "bind_rw"):
            continue
        plan.append((path, kind))
    return [(kind, path) for path, kind in plan]


def _inside(path: str, folder: str) -> bool:
    return path != folder and (path + "/").startswith(folder.rstrip("/") + "/")
