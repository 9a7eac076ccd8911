"""Kernels forked from a per-worker template that has imported the course's libraries (Linux, as root).

:class:`ForkTemplate` runs ``_forkserver.py`` (which loads ``_sandbox_exec.py``
to build each kernel's sandbox); the kernel manager then starts ``_forkclient.py``,
which stands in for the forked kernel. The scripts are run by path and stay in
``gutcourse/grading/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .jail import _TEMPLATE_ENV_KEEP, _TEMPLATE_PREFIX, _kernel_environment, _matplotlib_cache, _sweep_runtime_dirs
from .platform import _fork_unavailable, detect
from .policy import GradingSandbox

if TYPE_CHECKING:
    from .jail import Jail

FORK_SERVER = Path(__file__).parent.with_name("_forkserver.py")
FORK_CLIENT = Path(__file__).parent.with_name("_forkclient.py")

_CLAIMED = "claimed"  # made in a spare template's folder by the worker that takes it
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
    modules = [m for m in modules if _importable(m)]
    _preload_cache[key] = modules
    return modules


def preload_setup_libraries(config, assignment: str | None = None) -> None:
    """Import, in this process, the libraries of the setup cells (what :func:`kernel_preloads` lists).

    The grader runs the setup cells as well, to judge the tests: importing their libraries
    early puts that cost where it overlaps something else (the sandbox probe, the templates'
    start), or, in a grading run, before the workers are forked, which then share them.
    ipykernel is left out: the grader runs no kernel. Call it from one thread at a time.
    """
    import importlib

    for module in kernel_preloads(config, assignment):
        if module.split(".")[0] != "ipykernel":
            try:
                importlib.import_module(module)
            except Exception:  # the setup cell reports it when the grader runs it
                pass


def _importable(name: str) -> bool:
    """Whether module ``name`` can be imported, found without importing it or its parents here.

    ``importlib.util.find_spec("skbio.diversity")`` would import scikit-bio into the grader
    (1.5 s): a grader needs to know only that the file is there; the template imports it.
    """
    import importlib.machinery
    import importlib.util

    top, *rest = name.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError, AttributeError):
        return False
    if spec is None:
        return False
    places = list(spec.submodule_search_locations or [])
    for i, part in enumerate(rest):
        last = i == len(rest) - 1
        found = None
        for place in places:
            folder = Path(place) / part
            if folder.is_dir():  # a package (or a namespace package)
                found = [str(folder)]
                break
            if last and any((Path(place) / f"{part}{suffix}").is_file()
                            for suffix in importlib.machinery.all_suffixes()):
                found = []
                break
        if found is None:
            return False
        places = found
    return True


_BOOT = "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"


class ForkTemplate:
    """One grading worker's template process (``_forkserver.py``) and its socket.

    The template starts with an environment of its own (no variable of the
    grader's beyond the locale, the path and Python's own) in a folder only the
    grader can enter, imports :func:`kernel_preloads`, and forks every kernel of
    this worker. It ends with the worker: its standard input is a pipe from here.
    """

    _current: "ForkTemplate | None" = None
    #: Templates a grading run started for the workers it is about to fork: each worker claims one.
    _spares: "list[ForkTemplate]" = []

    def __init__(self, modules: list[str]):
        self.owner = os.getpid()
        self.adopted = False  # started by the parent process, handed to this one (a worker)
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
            if current is None or current.owner != os.getpid() or not current.alive():
                modules = kernel_preloads(config, assignment)
                current = cls._current = cls._claim_spare(modules) or cls(modules)
            return current

    @classmethod
    def start_spares(cls, config, count: int) -> None:
        """Start ``count`` templates for the workers this process is about to fork (a grading run).

        They import while the run gets ready (its own imports, the sandbox probe, the backup),
        instead of after each worker has started. A worker takes one with :meth:`for_this_process`
        (preloads for every assignment, as a worker's own template); :meth:`stop_spares` ends them.
        """
        with _template_lock:
            cls._spares = [t for t in cls._spares if t.owner == os.getpid() and t.alive()]
            modules = kernel_preloads(config) if len(cls._spares) < count else []
            while len(cls._spares) < count:
                cls._spares.append(cls(modules))

    @classmethod
    def stop_spares(cls) -> None:
        """End the templates :meth:`start_spares` started here (their workers have ended)."""
        with _template_lock:
            spares, cls._spares = cls._spares, []
        for template in spares:
            if template.owner == os.getpid():
                template.stop(at_once=not (template.folder / _CLAIMED).exists())

    @classmethod
    def _claim_spare(cls, modules: list[str]) -> "ForkTemplate | None":
        """A template the parent started for its workers, if one is left: claimed by this process only."""
        for template in cls._spares:
            if template.owner == os.getpid() or template.modules != modules or not template.alive():
                continue
            try:  # the parent's other workers hold the same list: the first to make the file takes it
                os.close(os.open(template.folder / _CLAIMED, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except OSError:
                continue
            template.owner, template.adopted = os.getpid(), True
            for other in cls._spares:  # the others' pipes stay with their own workers only
                if other is not template:
                    with contextlib.suppress(OSError):
                        other.process.stdin.close()
            return template
        return None

    @classmethod
    def hand_over_spares(cls) -> None:
        """Once the workers are forked, let go of the spares' pipes: each template then ends with its worker.

        A template ends when its standard input closes. Its worker holds the pipe, and closes
        those of the other spares when it takes its own: a worker that dies (killed from outside,
        out of memory) ends its template, and the template its kernels, as a worker's own would.
        """
        for template in cls._spares:
            if template.owner == os.getpid() and not template.adopted:
                with contextlib.suppress(OSError):
                    template.process.stdin.close()

    def alive(self) -> bool:
        """Whether the template process runs (a process that did not start it cannot wait for it)."""
        if self.owner == os.getpid() and not self.adopted:
            return self.process.poll() is None
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[-1].split()[:1] not in (["Z"], ["X"])

    def ready(self, timeout: float = 300) -> bool:
        """Wait until the template listens; False (with ``error`` set) if it cannot."""
        if self.info is not None:
            return self.alive()
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

    def stop(self, at_once: bool = False) -> None:
        """End the template (``at_once``: without letting it end its kernels first; it has none)."""
        if self.owner != os.getpid():
            return  # a forked worker's copy of its parent's template is not its to stop
        if self.adopted:  # the parent waits for it and removes its folder; its kernels end with it
            try:
                self.process.stdin.close()
                os.kill(self.process.pid, signal.SIGKILL)
            except OSError:
                pass
            return
        if self.process.poll() is None:
            try:
                if at_once:
                    self.process.kill()
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


def warm_up_early(config, assignment: str | None = None) -> bool:
    """Start the kernel template before the sandbox is probed, where kernels will most likely be forked.

    That is Linux, as root, with file isolation and the fork server on: the template's imports
    (seconds) then run while the probe does. True if a template was started; if the probe then
    finds no namespaces sandbox, stop it with :func:`_stop_template`.
    """
    likely = _fork_likely(GradingSandbox(config=config))
    if likely:
        ForkTemplate.for_this_process(config, assignment)
    return likely


def _fork_likely(policy: GradingSandbox) -> bool:
    """Kernels will be forked unless the probe finds no namespaces sandbox: Linux, as root, fork server on."""
    return bool(policy.enabled and policy.isolate_files and policy.fork_server and sys.platform.startswith("linux")
                and hasattr(os, "geteuid") and os.geteuid() == 0)


def warm_up_workers(config, workers: int) -> None:
    """Start the kernel templates of a grading run's ``workers`` now, where kernels will most likely be forked.

    As :func:`warm_up_early`; the run stops them with :func:`_stop_template` if its probe finds
    no namespaces sandbox, and at its end.
    """
    if _fork_likely(GradingSandbox(config=config)):
        ForkTemplate.start_spares(config, workers)


def _stop_template() -> None:
    if ForkTemplate._current is not None:
        ForkTemplate._current.stop()
    ForkTemplate.stop_spares()


import atexit  # noqa: E402

atexit.register(_stop_template)
