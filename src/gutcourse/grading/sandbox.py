"""Grading kernels that a student's code cannot escape, hang or flood.

nbgrader runs every submission in an ordinary kernel with the grader's rights.
Here each kernel is started through :mod:`gutcourse.grading._sandbox_exec`
with resource limits and, where the operating system allows it, without
network and with a filesystem view in which only the submission's own folder
is writable and the course folder (gradebook, other students, solutions) is
hidden. ``docs/security.md`` explains what this does and does not protect.

``nbgrader_config.py`` puts :class:`GuardedExecute` in place of nbgrader's
``Execute``, so ``gutcourse grade``, ``gutcourse check``, the tests of the
tests and nbgrader's own ``autograde`` all grade this way. Settings are the
traits of :class:`GradingSandbox` (``c.GradingSandbox.memory_mb = 2048``) and
nbgrader's ``c.Execute.timeout`` (seconds per cell).

:class:`GuardedExecute` also makes a stuck or dead kernel cheap: a cell that
times out and whose kernel does not react to the interrupt within
``interrupt_grace`` seconds, or a kernel that exits, stops the notebook there.
The remaining cells are marked as not run (their tests earn nothing, unlike
jupyter/nbgrader#427), the points earned before are kept, and what happened is
reported through :mod:`gutcourse.grading.incidents` for the grader to show.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, DottedObjectName, Float, Integer, List, Type, Unicode
from traitlets.config import Configurable

from .incidents import report as report_incident

LAUNCHER = Path(__file__).with_name("_sandbox_exec.py")
FORK_SERVER = Path(__file__).with_name("_forkserver.py")
FORK_CLIENT = Path(__file__).with_name("_forkclient.py")
_CELL_ALLOWANCE = 64 * 1024  # bytes of output every cell keeps, even after a flood elsewhere
_IOPUB_DRAIN = 30  # seconds a finished cell's output may take to arrive
_MODE_ENV = "GUTCOURSE_SANDBOX_MODE"


class GradingSandbox(Configurable):
    """Limits and isolation for grading kernels (settings in ``nbgrader_config.py``)."""

    enabled = Bool(True, help="Run grading kernels in the sandbox at all.").tag(config=True)
    memory_mb = Integer(2048, help="Address space of each kernel process, in MB.").tag(config=True)
    cpu_seconds = Integer(600, help="CPU time of each kernel process, in seconds.").tag(config=True)
    file_mb = Integer(200, help="Largest file a kernel may write, in MB.").tag(config=True)
    processes = Integer(128, help="Processes and threads a kernel may run at once.").tag(config=True)
    tmp_mb = Integer(256, help="Size of the kernel's private /tmp, in MB.").tag(config=True)
    interrupt_grace = Float(
        5.0, help="Seconds a timed-out cell gets to stop after the interrupt before its kernel is killed "
                  "(stretched, up to four times, while the machine is busier than it has cores)."
    ).tag(config=True)
    submission_timeout = Integer(
        900, help="Seconds one notebook may run in total; later cells are not run."
    ).tag(config=True)
    max_output_mb = Float(
        5.0, help="Output kept from one notebook, in MB; the rest is dropped while it runs."
    ).tag(config=True)
    network = Bool(False, help="Allow kernels to use the network.").tag(config=True)
    isolate_files = Bool(
        True, help="Hide the course folder and make everything but the submission read-only."
    ).tag(config=True)
    use_bubblewrap = Bool(True, help="Use bubblewrap (bwrap) when not running as root.").tag(config=True)
    hide_paths = List(
        Unicode(), ["/srv/nbgrader/exchange", "/usr/local/share/nbgrader"],
        help="More folders the kernel must not see (besides the course folder and the gradebook's).",
    ).tag(config=True)
    uid_base = Integer(
        1_000_000_000, help="As root, kernels run as user ids from here up (no account needed)."
    ).tag(config=True)
    fork_server = Bool(
        True, help="Fork kernels from a per-worker template that has imported the course's libraries "
                   "(Linux, as root); off, or elsewhere, every kernel starts a new interpreter."
    ).tag(config=True)
    referee = List(
        Unicode(), ["ps0_orientation", "ps1_permeability", "ps2_alpha_diversity", "ps3_beta_diversity",
                    "ps5_mucosal_immunity"],
        help="Assignments whose test cells are judged outside the student's kernel, in the grader's "
             "process (gutcourse.grading.referee); '*' for all. Others run their tests in the kernel.",
    ).tag(config=True)


# ----------------------------------------------------------------------------- platform
@dataclass(frozen=True)
class Platform:
    """What this machine lets the sandbox do: ``namespaces``, ``bwrap``, ``limits`` or ``off``."""

    mode: str
    why: str = ""  # why a stronger mode is not available


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
    from ._course import checkout_root

    root = checkout_root()
    return os.path.realpath(root) if root is not None else None


def _course_paths(config) -> tuple[list[str], list[str]]:
    """(folders to hide, folders the kernel needs to read) for this configuration."""

    hide: list[str] = []
    root = getattr(getattr(config, "CourseDirectory", None), "root", None) if config is not None else None
    if root:
        hide.append(str(Path(root).resolve()))
    db_url = str(getattr(config.CourseDirectory, "db_url", "")) if root else ""
    from .backup import sqlite_path

    db_file = sqlite_path(db_url) if db_url else None
    if db_file is not None:
        hide.append(str(db_file.resolve().parent))
    package = Path(__file__).resolve().parents[1]  # gutcourse/, in src/ of a checkout or in site-packages
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


def _probe(mode: str, policy: GradingSandbox, config) -> str:
    """Start a throwaway sandbox of ``mode``; returns "" if a kernel could run in it, else why not."""
    hide, needed = _course_paths(config)
    with tempfile.TemporaryDirectory(prefix="gutcourse-probe-") as tmp:
        jail = Jail(policy, Platform(mode), tmp, hide=hide, needed=needed)
        try:
            jail.prepare()
            cmd = jail.wrap([sys.executable, "-c", "import ipykernel, gutcourse.checks"])
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp,
                                  env=dict(os.environ, **jail.env()))
        except (OSError, subprocess.SubprocessError) as err:
            return f"{type(err).__name__}: {err}"
        finally:
            jail.release()
    if done.returncode == 0:
        return ""
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {done.returncode}"


_detected: dict[tuple, Platform] = {}


def detect(config) -> Platform:
    """The sandbox mode for this process (probed once, or inherited from the grading run)."""
    policy = GradingSandbox(config=config)
    inherited = os.environ.get(_MODE_ENV)
    if inherited:
        mode, _, why = inherited.partition(":")
        return Platform(mode, why)
    key = (policy.enabled, policy.isolate_files, policy.use_bubblewrap, os.geteuid() if hasattr(os, "geteuid") else 0)
    if key not in _detected:
        _detected[key] = _detect(policy, config)
    return _detected[key]


def _detect(policy: GradingSandbox, config) -> Platform:
    if not policy.enabled:
        return Platform("off", "switched off in nbgrader_config.py (GradingSandbox.enabled)")
    if os.name != "posix":
        return Platform("off", f"no sandbox on {sys.platform}")
    if not sys.platform.startswith("linux"):
        return Platform("limits", f"{sys.platform} has no Linux namespaces")
    if not policy.isolate_files:
        return Platform("limits", "isolation switched off (GradingSandbox.isolate_files)")
    reasons = []
    if os.geteuid() == 0:
        why = _probe("namespaces", policy, config)
        if not why:
            return Platform("namespaces")
        reasons.append(f"namespaces failed ({why})")
    else:
        reasons.append("not running as root")
    bwrap = shutil.which("bwrap")
    if policy.use_bubblewrap and bwrap:
        why = _probe("bwrap", policy, config)
        if not why:
            return Platform("bwrap", "; ".join(reasons))
        reasons.append(f"bubblewrap failed ({why})")
    elif policy.use_bubblewrap:
        reasons.append("bubblewrap is not installed")
    return Platform("limits", "; ".join(reasons))


def pin_mode(platform: Platform) -> None:
    """Use ``platform`` in this process (a grading worker) and its children without probing."""
    os.environ[_MODE_ENV] = f"{platform.mode}:{platform.why}"


def describe(config, platform: Platform | None = None) -> str:
    """One line saying which protections grading kernels get here."""
    policy = GradingSandbox(config=config)
    platform = platform or detect(config)
    timeout = getattr(getattr(config, "Execute", None), "timeout", None) or 30
    limits = (f"limits: memory {policy.memory_mb} MB, CPU {policy.cpu_seconds} s, files {policy.file_mb} MB, "
              f"{policy.processes} processes; timeouts {timeout} s per cell, "
              f"{policy.submission_timeout} s per notebook")
    if platform.mode == "off":
        return f"grading sandbox OFF ({platform.why}): student code runs with your rights; timeouts only"
    net = "network allowed" if policy.network else "no network"
    if platform.mode == "namespaces":
        return (f"grading sandbox: each kernel as its own user, {net}, course folder hidden, "
                f"only the submission's folder writable; {limits}; {_start_note(policy, platform)}")
    if platform.mode == "bwrap":
        return (f"grading sandbox (bubblewrap): {net}, course folder hidden, only the submission's "
                f"folder writable, kernels keep your user id; {limits}; {_start_note(policy, platform)}")
    missing = "network and filesystem NOT isolated" + (f" ({platform.why})" if platform.why else "")
    return f"grading sandbox: resource limits only, {missing}; {limits}; {_start_note(policy, platform)}"


# ----------------------------------------------------------------------------- kernel template
def _start_note(policy: GradingSandbox, platform: Platform) -> str:
    """How kernels start: forked from a preloaded template, or as new interpreters (and why)."""
    why = _fork_unavailable(policy, platform)
    if why:
        return f"kernels start as new interpreters ({why})"
    return "kernels forked from a per-worker template with the course's libraries preloaded"


def _fork_unavailable(policy: GradingSandbox, platform: Platform) -> str:
    """Why kernels cannot be forked from a template here ("" when they can)."""
    if not policy.fork_server:
        return "fork server switched off (GradingSandbox.fork_server)"
    if not sys.platform.startswith("linux"):
        return f"no fork server on {sys.platform}"
    if platform.mode != "namespaces":
        return f"no fork server in {platform.mode} mode: it needs the namespaces sandbox (root)"
    return ""


_SKIP_PRELOAD = ("gutcourse",)  # course code is imported by the kernel itself, never by the template
_preload_cache: dict[tuple, list[str]] = {}
_template_lock = __import__("threading").Lock()


def kernel_preloads(config, assignment: str | None = None) -> list[str]:
    """The modules a grading kernel will import first: read from the course's setup cells.

    Every import in a locked code cell (not an answer, not a test) of every source
    notebook, with ``from A import B`` also trying the submodule ``A.B``; course code
    (``gutcourse``) is left to the kernel. ipykernel itself always comes first.
    """
    import ast

    import nbformat

    root = getattr(getattr(config, "CourseDirectory", None), "root", None) if config is not None else None
    source = Path(root) / "source" if root else None
    pattern = f"{assignment}/*.ipynb" if assignment else "*/*.ipynb"
    notebooks = sorted(source.glob(pattern)) if source and source.is_dir() else []
    key = tuple((str(p), p.stat().st_mtime_ns) for p in notebooks)
    if key in _preload_cache:
        return _preload_cache[key]
    found: list[str] = ["ipykernel.kernelapp"]
    for path in notebooks:
        try:
            nb = nbformat.read(str(path), as_version=4)
        except Exception:  # an unreadable source notebook is reported by whatever grades it
            continue
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.cell_type != "code" or meta.get("solution") or meta.get("grade") or not meta.get("locked"):
                continue
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found += [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.append(node.module)
                    found += [f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*"]
    modules = [m for m in dict.fromkeys(found) if m.split(".")[0] not in _SKIP_PRELOAD]
    # ``from scipy import stats`` names a submodule; ``from numpy import mean`` does not.
    import importlib.util

    def importable(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError, AttributeError):
            return False

    modules = [m for m in modules if importable(m)]
    _preload_cache[key] = modules
    return modules


_TEMPLATE_ENV_KEEP = ("PATH", "LANG", "LANGUAGE", "TZ", "PYTHONHASHSEED", "PYTHONPATH", "VIRTUAL_ENV",
                      "CONDA_PREFIX", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_BOOT = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"


class ForkTemplate:
    """One grading worker's template process (``_forkserver.py``) and its socket.

    The template starts with an environment of its own (no variable of the
    grader's beyond the locale, the path and Python's own) in a folder only the
    grader can enter, imports :func:`kernel_preloads`, and forks every kernel of
    this worker. It ends with the worker: its standard input is a pipe from here.
    """

    _current: "ForkTemplate | None" = None

    def __init__(self, modules: list[str]):
        self.owner = os.getpid()
        self.modules = modules
        base = tempfile.gettempdir()
        if len(base) > 60 and os.path.isdir("/tmp"):
            base = "/tmp"
        _sweep_runtime_dirs(base)
        self.folder = Path(tempfile.mkdtemp(prefix=f"{_TEMPLATE_PREFIX}{os.getpid()}-", dir=base))
        os.chmod(self.folder, 0o700)
        self.socket = str(self.folder / "s")
        self.error = ""
        self.info: dict | None = None
        env = _kernel_environment(os.environ, _TEMPLATE_ENV_KEEP)
        for sub in ("home", "ipython", "mpl", "cache"):
            (self.folder / sub).mkdir()
        cache = _matplotlib_cache()
        if cache and cache.is_dir():
            for font_list in cache.glob("fontlist-*.json"):
                shutil.copy(font_list, self.folder / "mpl" / font_list.name)
        env.update({"HOME": str(self.folder / "home"), "IPYTHONDIR": str(self.folder / "ipython"),
                    "MPLCONFIGDIR": str(self.folder / "mpl"), "XDG_CACHE_HOME": str(self.folder / "cache"),
                    "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                    "MKL_NUM_THREADS": "1",
                    # Read when ipykernel is imported (trait defaults): as in a namespaces kernel.
                    "JPY_PARENT_PID": "1"})
        self.log = self.folder / "template.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(FORK_SERVER), self.socket, *modules],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=self.folder, env=env,
                close_fds=True)

    @classmethod
    def for_this_process(cls, config, assignment: str | None = None) -> "ForkTemplate":
        """This process's template, started now if it has none (a forked worker starts its own).

        ``assignment`` limits the preloads to that assignment's setup cells.
        """
        with _template_lock:
            current = cls._current
            if current is None or current.owner != os.getpid() or current.process.poll() is not None:
                current = cls._current = cls(kernel_preloads(config, assignment))
            return current

    def ready(self, timeout: float = 300) -> bool:
        """Wait until the template listens; False (with ``error`` set) if it cannot."""
        if self.info is not None:
            return self.process.poll() is None
        if self.error:
            return False
        import select

        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else b""
        try:
            self.info = json.loads(line.decode()) if line else None
        except ValueError:
            self.info = None
        if not self.info or not self.info.get("ready"):
            self.info = None
            tail = self.log.read_text(errors="replace").strip().splitlines()[-1:] if self.log.exists() else []
            self.error = "the kernel template did not start" + (f": {tail[0]}" if tail else "")
            self.stop()
            return False
        return True

    def client_command(self, jail: "Jail", cmd: list[str]) -> list[str]:
        return [sys.executable, "-I", "-S", str(FORK_CLIENT), self.socket, json.dumps(jail.spec()), "--", *cmd]

    def stop(self) -> None:
        if self.owner != os.getpid():
            return  # a forked worker's copy of its parent's template is not its to stop
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def warm_up(config, assignment: str | None = None) -> None:
    """Start this process's kernel template now, if kernels here will be forked (a worker's start)."""
    policy = GradingSandbox(config=config)
    if not _fork_unavailable(policy, detect(config)):
        ForkTemplate.for_this_process(config, assignment)


def _stop_template() -> None:
    if ForkTemplate._current is not None:
        ForkTemplate._current.stop()


import atexit  # noqa: E402

atexit.register(_stop_template)


# ----------------------------------------------------------------------------- one kernel
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
                "env": self.env(), "bwrap": shutil.which("bwrap") or "bwrap"}

    def wrap(self, cmd: list[str]) -> list[str]:
        return [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(self.spec()), "--", *cmd]

    def release(self) -> list[str]:
        """Stop whatever the kernel left running and give the folder back; returns removed files."""
        removed = []
        if self.uid is not None:
            kill_user(self.uid)
        if os.path.isdir(self.cwd) and self.platform.mode != "off":
            removed = sanitize_folder(Path(self.cwd), self.uid, self.owner)
        shutil.rmtree(self.runtime, ignore_errors=True)
        return removed


# ----------------------------------------------------------------------------- kernel manager
_live_managers: set = set()


def kill_running_kernels() -> int:
    """SIGKILL every sandboxed kernel this process started (the worker's last-resort time limit)."""
    count = 0
    for km in list(_live_managers):
        process = getattr(km.provisioner, "process", None) if km.provisioner else None
        if process is not None and process.poll() is None:
            try:
                os.killpg(os.getpgid(process.pid), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                process.kill()
            count += 1
        jail = km._jail  # read once: the kernel's own thread may clear it meanwhile
        if jail is not None and jail.uid is not None:
            kill_user(jail.uid, wait=1.0)
    return count


class PromptKernelClient(AsyncKernelClient):
    """A kernel client that is ready as soon as the kernel is, without idle waits.

    jupyter_client's ``wait_for_ready`` ends by reading IOPub until it has been
    silent for 0.2 s: every graded kernel cost 0.2 s of doing nothing.
    This one asks for ``kernel_info`` and, once answered, is done as soon as
    IOPub shows it is connected: by the ``iopub_welcome`` a subscriber gets from
    ipykernel 7 (JEP 65), or by the kernel's ``idle`` status for that very
    request. Without either within a second, the request is sent again, as
    jupyter_client does. A stray status message left on IOPub is harmless:
    nbclient only reads the messages that answer its own requests.
    """

    async def _wait_until_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply" \
                    and await self._iopub_connected(reply["parent_header"].get("msg_id"), within=1.0):
                self._handle_kernel_info_reply(reply)
                return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

    async def _iopub_connected(self, msg_id: str | None, within: float) -> bool:
        end = time.monotonic() + within
        while (left := end - time.monotonic()) > 0:
            try:
                msg = await self.iopub_channel.get_msg(timeout=left)
            except Empty:
                return False
            if msg["msg_type"] == "iopub_welcome":
                return True
            if (msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle"
                    and msg["parent_header"].get("msg_id") == msg_id):
                return True
        return False

    wait_for_ready = _wait_until_ready


class PromptKernelManager(AsyncKernelManager):
    """An async kernel manager without the fixed waits around a kernel's start and stop.

    Its clients are :class:`PromptKernelClient`. After killing a kernel,
    jupyter_client checks every 0.1 s whether it has gone (most of a killed
    kernel's 0.12 s clean-up); this one checks every 0.01 s.
    """

    client_class = DottedObjectName("gutcourse.grading.sandbox.PromptKernelClient", config=True)
    client_factory = Type(klass=AsyncKernelClient, default_value=PromptKernelClient, config=True)

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        await super()._async_wait(pollinterval=min(pollinterval, 0.01))


_KERNEL_ENV_KEEP = _TEMPLATE_ENV_KEEP + ("GUTCOURSE_DATA_DIR",)


def _kernel_environment(environ, keep=_KERNEL_ENV_KEEP) -> dict[str, str]:
    """The part of the grader's environment a kernel (or the template) may see: how to run Python."""
    return {k: v for k, v in environ.items() if k in keep or k.startswith("LC_")}


class SandboxKernelManager(PromptKernelManager):
    """A kernel manager whose kernels start inside a :class:`Jail`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.policy = GradingSandbox(config=self.config)
        self.platform = detect(self.config)
        self._jail: Jail | None = None

    async def _async_pre_start_kernel(self, **kw):
        hide, needed = _course_paths(self.config)
        self._template = None
        if not _fork_unavailable(self.policy, self.platform):
            self._template = ForkTemplate.for_this_process(self.config)
        self._jail = Jail(self.policy, self.platform, kw.get("cwd") or os.getcwd(), hide=hide, needed=needed)
        self._jail.prepare()
        self.connection_file = str(self._jail.runtime / "kernel.json")
        # The kernel talks to us through Unix sockets in its private runtime folder: they work
        # without a network and, unlike TCP ports, no other user of the machine can reach them.
        self.transport = "ipc"
        self.ip = str(self._jail.runtime / "k")
        return await super()._async_pre_start_kernel(**kw)

    def write_connection_file(self, **kwargs) -> None:
        super().write_connection_file(**kwargs)
        if self._jail is not None:
            self._jail.give(self.connection_file)

    def format_kernel_cmd(self, extra_arguments=None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if self._jail is None:
            return cmd
        template = getattr(self, "_template", None)
        if template is not None:
            if template.ready():
                return template.client_command(self._jail, cmd)
            report_incident(f"{template.error}; this kernel started as a new interpreter")
        return self._jail.wrap(cmd)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        # The grader's environment stays with the grader (a gradebook URL may hold a password):
        # the kernel gets the few variables that only say how to run Python, and its own.
        env = _kernel_environment(kw.get("env") or os.environ)
        env.update(self._jail.env())
        kw["env"] = env
        # Nor may a kernel write into the grader's own output (its terminal, its log): what it
        # prints outside the notebook's channels goes nowhere, its stderr to a file without a name.
        self._stderr = tempfile.TemporaryFile()
        kw["stdout"], kw["stderr"] = subprocess.DEVNULL, self._stderr
        await super()._async_launch_kernel(kernel_cmd, **kw)
        _live_managers.add(self)

    def _last_words(self) -> str:
        """What the launcher said before the kernel died (its errors start 'gutcourse sandbox:')."""
        stream = getattr(self, "_stderr", None)
        if stream is None:
            return ""
        try:
            stream.seek(max(0, stream.seek(0, os.SEEK_END) - 4096))
            tail = stream.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        said = [line.strip() for line in tail.splitlines() if line.startswith("gutcourse sandbox:")]
        # The kernel can write this file too: keep printable text only (no terminal escapes).
        return "".join(ch for ch in said[-1][:300] if ch.isprintable()) if said else ""

    @property
    def exit_status(self) -> int | None:
        process = getattr(self.provisioner, "process", None) if self.provisioner else None
        return process.poll() if process is not None else None

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        try:
            await super()._async_cleanup_resources(restart=restart)
        finally:
            _live_managers.discard(self)
            stream, self._stderr = getattr(self, "_stderr", None), None
            if stream is not None:
                stream.close()
            if self._jail is not None:
                removed = self._jail.release()
                self._jail = None
                if removed:
                    report_incident("removed links and special files the kernel left in its folder: "
                                     + ", ".join(removed[:5]))

    cleanup_resources = _async_cleanup_resources


# ----------------------------------------------------------------------------- execution
def _load_factor() -> float:
    """How many times busier than its cores the machine has been over the last minute (1 to 4)."""
    try:
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:  # no load average on this system
        return 1.0
    return min(4.0, max(1.0, load))


def _where(cell, index: int) -> str:
    """A cell as the student knows it: its grade id, else its position."""
    gid = (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id")
    return f"cell {gid}" if gid else f"cell {index + 1}"


def _exit_description(code: int | None) -> str:
    if code is None:
        return "stopped"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    if code > 128 and code - 128 in signal.valid_signals():
        return f"was killed by {signal.Signals(code - 128).name}"
    return f"exited with code {code}"


class GuardedExecute(Execute):
    """nbgrader's Execute with a sandboxed kernel, an output budget and a kernel that cannot stall it."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self._referee = None
        self.policy = GradingSandbox(parent=self)
        if self.policy.enabled and os.name == "posix":
            self.kernel_manager_class = SandboxKernelManager
        elif self.kernel_manager_class is AsyncKernelManager:  # nbclient's default, not one configured
            self.kernel_manager_class = PromptKernelManager

    # -- timing ---------------------------------------------------------------------
    def _time_left(self) -> float:
        """Seconds the notebook has left; its clock starts with its first cell, once the kernel is up
        (a kernel slow to start on a busy machine must not eat the student's time)."""
        if self._deadline is None:
            self._deadline = time.monotonic() + self.policy.submission_timeout
        return self._deadline - time.monotonic()

    def _cell_timeout(self, cell) -> int:
        remaining = max(1, int(self._time_left()) + 1)
        return min(self.timeout, remaining) if self.timeout and self.timeout > 0 else remaining

    def _grace(self) -> float:
        """Seconds the kernel gets to stop after an interrupt.

        A kernel that handles the interrupt still needs the CPU to say so: on a machine
        running more than it has cores, ``interrupt_grace`` is stretched by the load
        (at most four times), so a busy grading machine does not kill a kernel that was stopping.
        """
        self._grace_used = self.policy.interrupt_grace * _load_factor()
        return self._grace_used

    async def _async_handle_timeout(self, timeout, cell=None):
        self._interrupted = True
        # After the interrupt, the kernel has this long to say the cell ended.
        self.iopub_timeout = max(1, int(round(self._grace())))
        return await super()._async_handle_timeout(timeout, cell)

    # -- output budget -----------------------------------------------------------------
    def process_message(self, msg, cell, cell_index):
        msg_type = msg["msg_type"]
        content = msg["content"]
        if msg_type == "stream":
            size = len(content.get("text", ""))
        elif msg_type in ("display_data", "execute_result", "update_display_data"):
            size = sum(len(str(v)) for v in (content.get("data") or {}).values())
        elif msg_type.startswith("comm"):
            size = len(str(content.get("data")))
        elif msg_type == "error":
            content["evalue"] = str(content.get("evalue", ""))[:2000]
            content["traceback"] = [line[:2000] for line in content.get("traceback", [])[:200]]
            size = 0
        else:
            size = 0
        self._output_bytes += size
        cell_bytes = self._cell_bytes.get(cell_index, 0) + size
        self._cell_bytes[cell_index] = cell_bytes
        # A flood stops at the notebook's budget; later cells still keep a little output each.
        over = cell_bytes > self._output_budget or (
            self._output_bytes > self._output_budget and cell_bytes > _CELL_ALLOWANCE)
        if size and over and msg_type != "execute_result":
            if cell_index not in self._truncated_cells:
                self._truncated_cells.add(cell_index)
                cell.outputs.append(NotebookNode(
                    output_type="stream", name="stdout",
                    text=f"\n... output beyond {self.policy.max_output_mb:g} MB was dropped by the grader ...\n"))
            if msg_type == "stream" and content.get("name") == "stderr" and cell_index not in self._stderr_cells:
                # Output on stderr fails a test cell: dropping it must not turn a failure into a pass.
                self._stderr_cells.add(cell_index)
                cell.outputs.append(NotebookNode(output_type="stream", name="stderr",
                                                 text="... (stderr output dropped) ...\n"))
            return None
        return super().process_message(msg, cell, cell_index)

    # -- cells -----------------------------------------------------------------------
    def _mark_not_run(self, cell, ename: str, evalue: str) -> None:
        cell.outputs = list(cell.get("outputs", [])) + [NotebookNode(
            output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])]

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        runs = cell.cell_type == "code" and cell.source.strip()
        if self._stopped is not None:
            if runs:
                self._mark_not_run(cell, "NotRun", self._stopped)
            return cell
        if runs and self._time_left() <= 0:
            self._stop(f"not run: the notebook used up its {self.policy.submission_timeout} s", cell, cell_index)
            self._mark_not_run(cell, "NotRun", self._stopped)
            return cell
        role = self._referee.role(cell) if self._referee is not None else None
        if role == "test":
            return await self._judge(cell, cell_index)
        cell = await self._in_kernel(cell, cell_index, execution_count, store_history)
        if role == "setup" and self._stopped is None:
            self._referee.run_setup(cell.metadata.nbgrader.grade_id)
        return cell

    async def _judge(self, cell, cell_index):
        """A test cell judged by the referee, in this process, asking the kernel only for answers."""
        from .referee import KernelLink, judge

        referee = self._referee
        end = time.monotonic() + self._cell_timeout(cell)
        if referee.link is None:
            try:
                referee.link = KernelLink(self.km, asyncio.get_running_loop(), lambda: end - time.monotonic())
            except Exception as err:  # no second connection to the kernel: no test can be judged
                self._mark_not_run(cell, "GraderError", f"the grader could not reach the kernel ({err})")
                self._stop("not run: the grader could not reach the kernel", cell, cell_index)
                return cell
        referee.link.deadline = lambda: end - time.monotonic()
        referee.grace = self._grace()
        cell.outputs = await judge(referee, cell.metadata.nbgrader.grade_id,
                                   self._cell_timeout(cell) + referee.grace + 30)
        cell.execution_count = None
        if referee.link.dead:
            await self._wait_exit()
            code = self._exit_code()
            if code is not None:
                what = f"the kernel {_exit_description(code)} while this test ran the student's code"
            else:
                what = (f"the student's code ran past this test's time limit and the kernel did not stop within "
                        f"{self._grace_used:.3g} s of the interrupt, so it was shut down")
            await self._kill_kernel()
            self._stop(f"not run: the kernel had stopped at {_where(cell, cell_index)}", cell, cell_index, what)
        return cell

    async def _in_kernel(self, cell, cell_index, execution_count, store_history):
        self._interrupted = False
        # A cell that finished may still be sending a long output: give it time to arrive.
        self.iopub_timeout = _IOPUB_DRAIN
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except (CellTimeoutError, DeadKernelError) as err:
            if isinstance(err, DeadKernelError):
                await self._wait_exit()
                what = f"the kernel {_exit_description(self._exit_code())} while this cell ran"
                said = self.km._last_words() if hasattr(self.km, "_last_words") else ""
                if said:
                    what += f" ({said})"
            elif self._interrupted:
                what = (f"this cell ran past its time limit and the kernel did not stop within "
                        f"{self._grace_used:.3g} s of the interrupt, so it was shut down")
            else:
                what = f"the kernel stopped answering ({err.__class__.__name__}), so it was shut down"
            await self._kill_kernel()
            self._mark_not_run(cell, "KernelStopped", what)
            self._stop(f"not run: the kernel had stopped at {_where(cell, cell_index)}", cell, cell_index, what)
            return cell

    # nbclient binds the synchronous wrapper to its own coroutine; point it at ours.
    execute_cell = run_sync(async_execute_cell)

    def _stop(self, message: str, cell, cell_index: int, what: str | None = None) -> None:
        self._stopped = message
        report_incident(f"{_where(cell, cell_index)}: {what or message}; later cells not run")

    def _exit_code(self) -> int | None:
        return getattr(self.km, "exit_status", None) if self.km is not None else None

    async def _wait_exit(self) -> None:
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        for _ in range(50):
            if process is None or process.poll() is not None:
                return
            await asyncio.sleep(0.02)

    async def _kill_kernel(self) -> None:
        try:
            if self.km is not None and await self.km.is_alive():
                await self.km.shutdown_kernel(now=True)
        except Exception:  # the kernel is going away either way; nothing to report
            pass

    def preprocess(self, nb, resources=None, km=None):
        self._stopped = None
        self._interrupted = False
        self._grace_used = self.policy.interrupt_grace
        self._deadline = None  # set when the first cell runs
        self._output_bytes = 0
        self._output_budget = int(self.policy.max_output_mb * (1 << 20))
        self._truncated_cells: set[int] = set()
        self._cell_bytes: dict[int, int] = {}
        self._stderr_cells: set[int] = set()
        self.timeout_func = self._cell_timeout
        self._referee = None
        info = (resources or {}).get("nbgrader") or {}
        wanted = self.policy.referee
        if info.get("db_url") and info.get("notebook") and ("*" in wanted or info.get("assignment") in wanted):
            from .referee import Referee, trusted_cells

            self._referee = Referee(trusted_cells(info["db_url"], info["assignment"], info["notebook"]))
        try:
            nb, resources = super().preprocess(nb, resources, km)
        finally:
            if self._referee is not None:
                if self._referee.link is not None:
                    self._referee.link.close()
                for note in self._referee.setup_errors:
                    report_incident(note)
                self._referee = None
        if self._truncated_cells:
            report_incident(f"output beyond {self.policy.max_output_mb:g} MB dropped "
                            f"(cells {', '.join(str(i + 1) for i in sorted(self._truncated_cells))})")
        return nb, resources
