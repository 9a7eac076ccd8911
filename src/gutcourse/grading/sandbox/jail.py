"""The sandbox of one kernel: its user id, private runtime folders, environment and launch command.

Also what is done to a kernel's user and folder around it: :func:`kill_user`
stops whatever runs as a kernel's own user id, :func:`sanitize_folder` makes
its working folder safe for the grader to write into again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import cgroups
from .mounts import _checkout, _outside_system, mount_plan
from .policy import GradingSandbox

if TYPE_CHECKING:
    from .platform import Platform

LAUNCHER = Path(__file__).parent.with_name("_sandbox_exec.py")

_counter = 0


def _processes_of(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as fh:
                for line in fh:
                    if line.startswith("State:") and line.split()[1] in ("Z", "X"):
                        break  # already dead, waiting for its parent to notice
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid or int(line.split()[2]) == uid:
                            pids.append(int(entry))
                        break
        except (OSError, ValueError):
            continue
    return pids


def kill_user(uid: int, wait: float = 5.0) -> None:
    """SIGKILL every process running as ``uid`` until none is left (a kernel's own user id)."""
    deadline = time.monotonic() + wait
    while True:
        pids = _processes_of(uid)
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)


def _tasks_of_current_user() -> int:
    """Processes and threads now running as this user (RLIMIT_NPROC counts them all)."""
    uid, count = os.getuid(), 0
    try:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid == uid:
                        count += len(os.listdir(f"/proc/{entry}/task"))
                except OSError:
                    continue
    except OSError:
        return 0
    return count


def sanitize_folder(folder: Path, uid: int | None, owner: tuple[int, int]) -> list[str]:
    """Make a folder a kernel could write safe for the grader to write into again.

    Symbolic links, hard links and special files are removed (the grader would
    otherwise write the graded notebook through them), and, when the kernel had
    a user id of its own, its files are given back to the folder's owner.
    Returns what was removed.
    """
    removed = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode) or not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)) \
                    or (stat.S_ISREG(st.st_mode) and st.st_nlink > 1):
                os.unlink(path)
                removed.append(os.path.relpath(path, folder))
                if name in dirnames:
                    dirnames.remove(name)
                continue
            if uid is not None and st.st_uid == uid:
                os.lchown(path, *owner)
            if stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_IRWXU:
                os.chmod(path, 0o755)
    if uid is not None:
        os.lchown(folder, *owner)
    return removed


def _matplotlib_cache() -> Path | None:
    base = os.environ.get("MPLCONFIGDIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "matplotlib"


_RUNTIME_PREFIX = "gutcourse-kernel-"
_TEMPLATE_PREFIX = "gutcourse-template-"
_swept: set[str] = set()


def _sweep_runtime_dirs(base: str) -> None:
    """Remove runtime folders left by graders that were killed (once per process and folder)."""
    if base in _swept:
        return
    _swept.add(base)
    entries = [(e, _RUNTIME_PREFIX) for e in Path(base).glob(f"{_RUNTIME_PREFIX}*-*")]
    entries += [(e, _TEMPLATE_PREFIX) for e in Path(base).glob(f"{_TEMPLATE_PREFIX}*-*")]
    for entry, prefix in entries:
        try:
            pid = int(entry.name[len(prefix):].split("-", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except (ValueError, PermissionError, OSError):
            continue


class Jail:
    """The sandbox of one kernel: its user id, private folders and launch command."""

    def __init__(self, policy: GradingSandbox, platform: Platform, cwd: str | os.PathLike,
                 *, hide: list[str], needed: list[str]):
        global _counter
        self.policy, self.platform = policy, platform
        self.cwd = os.path.realpath(cwd)
        home = os.path.realpath(os.path.expanduser("~"))
        self.hide = hide + list(policy.hide_paths)
        # Everything outside the system's own folders is covered: the grader's home, the package's
        # checkout (its git history, tests, answer banks, guide), other courses and checkouts on the
        # machine, services' data and sockets. What the kernel needs from them comes back read-only.
        self.mask = _outside_system()
        for private in (home, _checkout()):
            if private and private != "/" and private not in self.mask:
                self.mask.append(private)
        self.needed = needed
        self.uid = None
        self.cgroup: Path | None = None  # the kernel's own cgroup v2, where kernels share one user id
        if platform.mode == "namespaces":
            _counter += 1
            self.uid = policy.uid_base + (os.getpid() % (1 << 22)) * 8 + _counter % 8
        base = tempfile.gettempdir()
        if len(base) > 60 and os.path.isdir("/tmp"):
            base = "/tmp"  # the kernel's sockets live here, and socket paths are short (108 bytes)
        _sweep_runtime_dirs(base)
        self.runtime = Path(tempfile.mkdtemp(prefix=f"{_RUNTIME_PREFIX}{os.getpid()}-", dir=base))
        st = os.stat(self.cwd)
        self.owner = (st.st_uid, st.st_gid)

    def prepare(self) -> None:
        """Create the kernel's private folders and hand it its working folder."""
        for sub in ("home", "ipython", "mpl", "cache"):
            (self.runtime / sub).mkdir()
        cache = _matplotlib_cache()
        if cache and cache.is_dir():
            # A fresh matplotlib config folder would rebuild its font list: seconds per kernel.
            for font_list in cache.glob("fontlist-*.json"):
                shutil.copy(font_list, self.runtime / "mpl" / font_list.name)
        if self.uid is not None:
            kill_user(self.uid)
            for dirpath, dirnames, filenames in os.walk(self.runtime):
                for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                    os.lchown(name, self.uid, self.uid)
            for dirpath, dirnames, filenames in os.walk(self.cwd, followlinks=False):
                for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                    os.lchown(name, self.uid, self.uid)
        os.chmod(self.runtime, 0o700)
        if self.uid is None and self.platform.mode in ("bwrap", "limits") and self.policy.cgroups:
            base, _ = cgroups.setup()
            if base is not None:
                try:
                    self.cgroup = cgroups.create(base, self.policy.memory_mb << 20, self.policy.processes)
                except OSError as err:
                    raise RuntimeError(f"the kernel's cgroup could not be made under {base} "
                                       f"({err.strerror or err})") from None

    def give(self, path: str | os.PathLike) -> None:
        """Let the kernel's user read a file the grader wrote for it (its connection file)."""
        if self.uid is not None:
            os.lchown(path, self.uid, self.uid)

    def env(self) -> dict[str, str]:
        r = self.runtime
        env = {"HOME": str(r / "home"), "IPYTHONDIR": str(r / "ipython"), "MPLCONFIGDIR": str(r / "mpl"),
               "XDG_CACHE_HOME": str(r / "cache"), "JUPYTER_RUNTIME_DIR": str(r),
               "JUPYTER_DATA_DIR": str(r / "home"), "TMPDIR": "/tmp", "MPLBACKEND": "Agg",
               # Threads count against the process limit, and two graders share the cores anyway.
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        if self.platform.mode in ("namespaces", "bwrap"):
            # ipykernel would take its new parent (the namespace's init) for a dead grader.
            env["JPY_PARENT_PID"] = "1"
        if self.uid is not None:
            env["USER"] = env["LOGNAME"] = "grader"
        return env

    def limits(self) -> dict[str, int]:
        mb = 1 << 20
        processes = self.policy.processes
        if self.uid is None and sys.platform.startswith("linux"):
            processes += _tasks_of_current_user()  # RLIMIT_NPROC counts everything this user runs
        return {"RLIMIT_AS": self.policy.memory_mb * mb, "RLIMIT_CPU": self.policy.cpu_seconds,
                "RLIMIT_FSIZE": self.policy.file_mb * mb, "RLIMIT_NPROC": processes, "RLIMIT_CORE": 0}

    def spec(self) -> dict:
        mounts = []
        if self.platform.mode in ("namespaces", "bwrap"):
            mounts = mount_plan(self.hide, self.needed, [self.cwd, str(self.runtime)],
                                root=self.platform.mode == "namespaces", mask=self.mask)
        return {"mode": self.platform.mode if self.platform.mode != "off" else "limits",
                "uid": self.uid, "gid": self.uid, "limits": self.limits(), "mounts": mounts,
                "scratch_mb": self.policy.tmp_mb, "network": self.policy.network, "cwd": self.cwd,
                "env": self.env(), "bwrap": shutil.which("bwrap") or "bwrap",
                "cgroup": str(self.cgroup) if self.cgroup is not None else None}

    def wrap(self, cmd: list[str]) -> list[str]:
        return [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(self.spec()), "--", *cmd]

    def release(self) -> list[str]:
        """Stop whatever the kernel left running and give the folder back; returns removed files."""
        removed = []
        if self.uid is not None:
            kill_user(self.uid)
        if self.cgroup is not None:
            cgroups.remove(self.cgroup)
            self.cgroup = None
        if os.path.isdir(self.cwd) and self.platform.mode != "off":
            removed = sanitize_folder(Path(self.cwd), self.uid, self.owner)
        shutil.rmtree(self.runtime, ignore_errors=True)
        return removed


_TEMPLATE_ENV_KEEP = ("PATH", "LANG", "LANGUAGE", "TZ", "PYTHONHASHSEED", "PYTHONPATH", "VIRTUAL_ENV",
                      "CONDA_PREFIX", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_KERNEL_ENV_KEEP = _TEMPLATE_ENV_KEEP + ("GUTCOURSE_DATA_DIR",)


def _kernel_environment(environ, keep=_KERNEL_ENV_KEEP) -> dict[str, str]:
    """The part of the grader's environment a kernel (or the template) may see: how to run Python."""
    return {k: v for k, v in environ.items() if k in keep or k.startswith("LC_")}
