"""Kernels forked from a per-worker template that has imported the course's libraries (Linux, as root).

:class:`ForkTemplate` runs ``_forkserver.py`` (which loads ``_sandbox_exec.py``
to build each kernel's sandbox); the kernel manager then starts ``_forkclient.py``,
which stands in for the forked kernel. The scripts are run by path and stay in
``gutcourse/grading/``.
"""

from __future__ import annotations

import json
import os
import shutil
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


def warm_up_early(config, assignment: str | None = None) -> bool:
    """Start the kernel template before the sandbox is probed, where kernels will most likely be forked.

    That is Linux, as root, with file isolation and the fork server on: the template's imports
    (seconds) then run while the probe does. True if a template was started; if the probe then
    finds no namespaces sandbox, stop it with :func:`_stop_template`.
    """
    policy = GradingSandbox(config=config)
    likely = (policy.enabled and policy.isolate_files and policy.fork_server and sys.platform.startswith("linux")
              and hasattr(os, "geteuid") and os.geteuid() == 0)
    if likely:
        ForkTemplate.for_this_process(config, assignment)
    return bool(likely)


def _stop_template() -> None:
    if ForkTemplate._current is not None:
        ForkTemplate._current.stop()


import atexit  # noqa: E402

atexit.register(_stop_template)
