"""Set up and run the course on a real multi-user JupyterHub on this machine (`make hub`).

    hubctl.py setup [--students N]   create what the hub needs (as root; idempotent)
    hubctl.py env                    only the students' venv and the proxy (what the tests need)
    hubctl.py run                    start the hub on 127.0.0.1, print its URL and the trial logins;
                                     Ctrl-C stops the hub and everything it started

What `setup` makes, under the hub folder (``$GUTCOURSE_HUB_ROOT``, default /srv/gutcourse-hub):

- ``venv/`` (or ``$GUTCOURSE_HUB_VENV``): the students' and the course service's Python, built from a Python every
  account can run (Debian's ``/usr/bin/python3.11`` here; this machine's default Python
  lives under /root, which other users cannot enter).  It holds JupyterHub, JupyterLab,
  nbgrader and the learner installation of gutcourse (the wheel ``pip install .`` builds),
  so no solutions, hidden tests or dataset generator.
- ``venv/etc/jupyter/nbgrader_config.py``: nbgrader's settings for every account
  (``global_nbgrader_config.py``: the exchange, one folder per course, JupyterHub groups).
- ``etc/jupyter-student``, ``etc/jupyter-instructor``, ``etc/jupyter-grader``: which of
  nbgrader's extensions each kind of account gets (nbgrader's table for a course service).
- ``exchange/``: nbgrader's exchange, mode 1777.
- ``instructor/src``: the instructor's gutcourse (grading tools and generator), readable by
  the grader account only, put on the course service's PYTHONPATH.
- ``courses/<course>``: the course (its nbgrader_config.py and sources), owned by the grader
  account ``grader-<course>``, mode 0700.
- Unix users: the grader account, the instructor and the students.  Homes are 0700.

Nothing is downloaded at run time: `setup` installs from PyPI and npm once.
This file uses the standard library only, so any Python 3.9+ can run it.
"""

from __future__ import annotations

import argparse
import grp
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parents[1]
COURSE_ID = "gut-immunity"
GRADER = f"grader-{COURSE_ID}"
INSTRUCTOR = "gc-instructor"
# JupyterHub 5 (the choice; 6 also runs here).  Kept in one place with the proxy's pin (package.json).
JUPYTERHUB = "jupyterhub==5.5.4"
DEFAULT_ROOT = Path("/srv/gutcourse-hub")
# Pins in constraints.txt that a Python older than this repository's venv cannot install, and why.
# The students' Python is Debian's 3.11.2; soupsieve 3.0.2 and later need 3.11.5.
UNPIN_FOR_OLD_PYTHON = {"soupsieve": (3, 11, 5)}

# nbgrader's extensions per kind of account (nbgrader's docs, "One Class, Multiple Graders").
LAB_PLUGINS = {
    "formgrader": "@jupyter/nbgrader:formgrader",
    "create": "@jupyter/nbgrader:create-assignment",
    "courses": "@jupyter/nbgrader:course-list",
    "assignments": "@jupyter/nbgrader:assignment-list",
}
SERVER_EXTENSIONS = {
    "formgrader": "nbgrader.server_extensions.formgrader",
    "courses": "nbgrader.server_extensions.course_list",
    "assignments": "nbgrader.server_extensions.assignment_list",
}
ROLES = {
    "student": {"assignments"},
    "instructor": {"assignments", "courses"},
    "grader": {"formgrader", "create"},
}


def hub_root() -> Path:
    return Path(os.environ.get("GUTCOURSE_HUB_ROOT") or DEFAULT_ROOT)


def students(n: int) -> list[str]:
    return [f"gc-student{i}" for i in range(1, n + 1)]


def log(message: str) -> None:
    print(f"hub: {message}", flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kwargs)


class SetupError(RuntimeError):
    pass


def run_as(user: str, cmd: list[str], *, cwd: str, env: dict, timeout: float) -> subprocess.CompletedProcess:
    """Run ``cmd`` as the Unix user ``user`` (we are root), with ``env`` plus HOME and USER."""
    entry = pwd.getpwnam(user)

    def demote():
        os.setgid(entry.pw_gid)
        os.initgroups(user, entry.pw_gid)
        os.setuid(entry.pw_uid)

    return subprocess.run(cmd, preexec_fn=demote, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={"HOME": entry.pw_dir, "USER": user, **env})


# ---------------------------------------------------------------- environment

def student_python() -> str:
    """A Python 3.9+ every account can execute (not one under /root)."""
    for candidate in (os.environ.get("GUTCOURSE_HUB_PYTHON"), "/usr/bin/python3.11", "/usr/bin/python3"):
        if candidate and os.path.isfile(candidate) and _world_executable(candidate):
            return candidate
    raise SetupError("no Python that other accounts can run: install Debian's python3 "
                     "(apt-get install python3 python3-venv) or name one with GUTCOURSE_HUB_PYTHON")


def _world_executable(path: str) -> bool:
    real = Path(path).resolve()
    for folder in (real, *real.parents):
        if not os.stat(folder).st_mode & 0o001:
            return False
    return True


def _python_version(python: str) -> tuple[int, ...]:
    out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:3])"],
                         check=True, capture_output=True, text=True).stdout
    return tuple(int(x) for x in out.split())


def _constraints_for(python: str, dest: Path) -> Path:
    version = _python_version(python)
    kept = []
    for line in (CHECKOUT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        name = line.split("==")[0].strip().lower()
        if name in UNPIN_FOR_OLD_PYTHON and version < UNPIN_FOR_OLD_PYTHON[name]:
            continue
        kept.append(line)
    dest.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return dest


def _fingerprint(*paths: Path) -> str:
    digest = hashlib.sha256()
    for base in paths:
        files = [base] if base.is_file() else sorted(
            p for p in base.rglob("*") if p.is_file()
            and not any(part == "__pycache__" or part.endswith(".egg-info") for part in p.parts))
        for f in files:
            digest.update(str(f.relative_to(CHECKOUT)).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()


def build_venv(venv: Path) -> Path:
    """The students' venv; rebuilt only when the pins, the package or the hub pin change."""
    root = venv.parent
    stamp = venv / ".gutcourse-hub"
    want = _fingerprint(CHECKOUT / "constraints.txt", CHECKOUT / "pyproject.toml", CHECKOUT / "src") + JUPYTERHUB
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == want:
        return venv
    python = student_python()
    log(f"building the students' Python environment in {venv} from {python} (about a minute)")
    if not (venv / "bin" / "python").exists():
        run([python, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    run([*pip, "install", "--upgrade", "pip"])
    wheels = root / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    # The learner wheel, built without fetching a build backend, from a clean copy of the sources:
    # a checkout's build/ can hold modules setuptools would carry into the wheel from an older build.
    with tempfile.TemporaryDirectory(prefix="gutcourse-wheel-") as clean:
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            shutil.copy2(CHECKOUT / name, Path(clean) / name)
        shutil.copytree(CHECKOUT / "src", Path(clean) / "src",
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
             "-w", str(wheels), clean])
    wheel = next(wheels.glob("gutcourse-*.whl"))
    constraints = _constraints_for(str(venv / "bin" / "python"), root / "constraints-hub.txt")
    run([*pip, "install", "--no-compile", "-c", str(constraints), "--force-reinstall", "--no-deps", str(wheel)])
    run([*pip, "install", "--no-compile", "-c", str(constraints), str(wheel), JUPYTERHUB])
    # Students cannot write bytecode into this venv: compile it now, on every core (pip uses one).
    # A file that does not compile (a template, an old test) is skipped, as pip would skip it.
    subprocess.run([str(venv / "bin" / "python"), "-m", "compileall", "-q", "-j", "0", str(venv / "lib")],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    stamp.write_text(want, encoding="utf-8")
    return venv


def proxy_command() -> Path:
    """configurable-http-proxy, installed by npm into deploy/hub/node_modules (never globally)."""
    chp = HERE / "node_modules" / ".bin" / "configurable-http-proxy"
    lock = HERE / "package-lock.json"
    stamp = HERE / "node_modules" / ".gutcourse-lock"
    want = hashlib.sha256(lock.read_bytes()).hexdigest()
    if not chp.exists() or not stamp.is_file() or stamp.read_text() != want:
        if shutil.which("npm") is None:
            raise SetupError("npm is needed once to install JupyterHub's proxy (configurable-http-proxy): "
                             "apt-get install nodejs npm")
        log("installing configurable-http-proxy with npm into deploy/hub/node_modules")
        run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE)
        stamp.write_text(want)
    return chp


# ---------------------------------------------------------------- accounts

def ensure_user(name: str) -> pwd.struct_passwd:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        run(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", name])
        entry = pwd.getpwnam(name)
        log(f"created the Unix user {name}")
    home = Path(entry.pw_dir)
    if not home.is_dir():
        home.mkdir(parents=True)
        os.chown(home, entry.pw_uid, entry.pw_gid)
    os.chmod(home, 0o700)
    return entry


def _course_exchange(folder: Path, grader: pwd.struct_passwd) -> None:
    """The course's folders in the exchange, made now with nbgrader's modes and the grader as owner.

    Left to the first release, a student could make them first: their own ``outbound``
    would hand other students a notebook of their choosing, and their own ``inbound``
    would receive everyone's submissions.  A folder someone else owns stops the set-up.
    """
    modes = {folder: 0o755, folder / "outbound": 0o755, folder / "inbound": 0o2733, folder / "feedback": 0o711}
    for path, mode in modes.items():
        if not path.exists():
            path.mkdir(mode=0o700)
            os.chown(path, grader.pw_uid, grader.pw_gid)
        info = os.lstat(path)
        if path.is_symlink() or not path.is_dir() or info.st_uid != grader.pw_uid:
            owner = _user_name(info.st_uid)
            raise SetupError(f"{path} belongs to {owner}, not {grader.pw_name}: someone made it before the "
                             f"course did; check what it holds, remove it, and run the set-up again")
        os.chmod(path, mode)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _close_checkout() -> None:
    """Close this checkout to other accounts: it holds the solutions, hidden tests and the generator.

    On a machine where students have accounts, a clone readable by all would undo everything
    the learner installation keeps out of their reach.  Only the top folder changes (others
    lose the right to enter it); root, which runs the hub and grading, is not affected.
    """
    mode = CHECKOUT.stat().st_mode
    if mode & 0o007:
        os.chmod(CHECKOUT, mode & ~0o007)
        log(f"closed {CHECKOUT} to other accounts (it holds the solutions): mode {oct(mode & 0o777)} -> "
            f"{oct(mode & 0o770)}")


def _write_config(folder: Path, role: str) -> None:
    """A Jupyter config dir that switches nbgrader's extensions on or off for one kind of account."""
    wanted = ROLES[role]
    labconfig = folder / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {plugin: key not in wanted for key, plugin in LAB_PLUGINS.items()}},
        indent=2) + "\n", encoding="utf-8")
    (folder / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {ext: key in wanted for key, ext in SERVER_EXTENSIONS.items()}}},
        indent=2) + "\n", encoding="utf-8")
    # The module works offline: no prompt about fetching news from the web.
    settings = folder / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}) + "\n", encoding="utf-8")


def setup(n_students: int = 2, *, root: Path | None = None, student_names: list[str] | None = None,
          instructor: str = INSTRUCTOR, venv: Path | None = None) -> dict:
    """Make everything the hub needs (idempotent); returns the settings written to hub.json.

    ``venv`` lets a second hub (the tests') share the students' venv of the first.
    """
    if os.geteuid() != 0:
        raise SetupError("run as root: the hub creates Unix users and runs each student's server as that "
                         "user (deploy/hub/README.md says what to do without root)")
    root = Path(root or hub_root())
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    venv = build_venv(Path(venv or os.environ.get("GUTCOURSE_HUB_VENV") or root / "venv"))
    chp = proxy_command()

    # nbgrader's settings for every account of this hub, in each kind of account's config dir
    # (on JUPYTER_CONFIG_PATH), not in the venv: hubs that share the venv keep their own exchange.
    old_global = venv / "etc" / "jupyter" / "nbgrader_config.py"
    if old_global.is_file():  # where an earlier version put it
        old_global.unlink()
    text = (HERE / "global_nbgrader_config.py").read_text(encoding="utf-8")
    for role in ROLES:
        folder = root / "etc" / f"jupyter-{role}"
        _write_config(folder, role)
        (folder / "nbgrader_config.py").write_text(text.replace("@EXCHANGE@", str(root / "exchange")),
                                                   encoding="utf-8")

    # The exchange: every account writes, nobody renames or deletes another's folders (sticky).
    exchange = root / "exchange"
    exchange.mkdir(exist_ok=True)
    os.chown(exchange, 0, 0)
    os.chmod(exchange, 0o1777)

    grader = ensure_user(GRADER)
    ensure_user(instructor)
    names = list(student_names) if student_names is not None else students(n_students)
    for name in names:
        ensure_user(name)
    _course_exchange(exchange / COURSE_ID, grader)

    # The instructor's gutcourse (grading tools, dataset generator): the course service only.
    # Built in a folder nobody else can enter, then moved into place: at no moment is any of
    # it open to other accounts (a process that opened a folder while it was open would keep it).
    instructor_src = root / "instructor"
    building = Path(tempfile.mkdtemp(prefix=".instructor-", dir=root))  # mode 0700
    previous = os.umask(0o027)
    try:
        shutil.copytree(CHECKOUT / "src", building / "src",
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    finally:
        os.umask(previous)
    for dirpath, dirnames, filenames in os.walk(building):
        for path in (dirpath, *(os.path.join(dirpath, f) for f in filenames)):
            os.chown(path, 0, grader.pw_gid)
    os.chmod(building, 0o750)
    if instructor_src.exists():
        retired = Path(tempfile.mkdtemp(prefix=".retired-", dir=root))
        os.rename(instructor_src, retired / "instructor")
        shutil.rmtree(retired)
    os.rename(building, instructor_src)

    # The course: the checkout's configuration and sources, owned by the grader account and
    # closed to everyone else from the moment it exists.  An existing course (a gradebook,
    # submissions) is never replaced: only missing sources are added.
    course = root / "courses" / COURSE_ID
    course.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(course.parent, 0o755)
    if not course.exists():
        course.mkdir(mode=0o700)
    os.chown(course, grader.pw_uid, grader.pw_gid)
    os.chmod(course, 0o700)
    _close_checkout()
    if not (course / "nbgrader_config.py").exists():
        shutil.copy2(CHECKOUT / "nbgrader_config.py", course / "nbgrader_config.py")
    source = course / "coursework" / "source"
    source.mkdir(parents=True, exist_ok=True)
    for item in (CHECKOUT / "coursework" / "source").iterdir():
        if item.name.startswith(".") or (source / item.name).exists():
            continue
        if item.is_dir():
            shutil.copytree(item, source / item.name, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        else:
            shutil.copy2(item, source / item.name)
    run(["chown", "-R", "--no-dereference", f"{GRADER}:{GRADER}", str(course)])

    state = root / "state"
    state.mkdir(exist_ok=True)
    os.chmod(state, 0o700)
    settings = {
        "course_id": COURSE_ID, "grader": GRADER, "course_dir": str(course),
        "instructors": [instructor], "students": names,
        "venv": str(venv), "proxy": str(chp), "hub_root": str(root),
    }
    (root / "hub.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    log(f"ready: {len(names)} students, the instructor {instructor}, the course in {course}")
    return settings


# ---------------------------------------------------------------- running

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    """A running JupyterHub: its URL, the shared trial password, its process and log."""

    def __init__(self, root: Path | None = None, port: int | None = None, password: str | None = None,
                 log_path: Path | None = None):
        self.root = Path(root or hub_root())
        self.settings = json.loads((self.root / "hub.json").read_text(encoding="utf-8"))
        self.port = port or int(os.environ.get("GUTCOURSE_HUB_PORT", "8000"))
        self.password = password or secrets.token_urlsafe(12)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or self.root / "state" / "jupyterhub.log"
        self.process: subprocess.Popen | None = None
        self.api_token = secrets.token_hex(32)

    def start(self, timeout: float = 420) -> "Hub":
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON", "PYTHON"))}
        self.api_port = free_port()
        env.update(
            GUTCOURSE_HUB_ROOT=str(self.root),
            GUTCOURSE_HUB_PORT=str(self.port),
            GUTCOURSE_HUB_API_PORT=str(self.api_port),
            GUTCOURSE_HUB_PROXY_API_PORT=str(free_port()),
            GUTCOURSE_HUB_SERVICE_PORT=str(free_port()),
            GUTCOURSE_HUB_PASSWORD=self.password,
            # A token for the script driving the hub (this class), with the admin role: local trials only.
            GUTCOURSE_HUB_ADMIN_TOKEN=self.api_token,
            PATH=f"{self.settings['venv']}/bin:" + env.get("PATH", "/usr/bin:/bin"),
        )
        venv = Path(self.settings["venv"])
        log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(venv / "bin" / "jupyterhub"), "-f", str(HERE / "jupyterhub_config.py")],
            cwd=self.root / "state", env=env, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True)
        log_file.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SetupError(f"JupyterHub exited with {self.process.returncode}; "
                                 f"its log: {self.log_path}\n{self.tail()}")
            # Ready when the hub answers and the course service answers through the proxy.
            if self._answers(f"{self.url}/hub/api/") and \
                    self._answers(f"{self.url}/services/{self.settings['course_id']}/api"):
                return self
            time.sleep(0.5)
        self.stop()
        raise SetupError(f"JupyterHub was not ready in {timeout:.0f} s; its log: {self.log_path}\n{self.tail()}")

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def api(self, path: str, method: str = "GET", body: dict | None = None,
            token: str | None = None) -> tuple[int, object]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}/hub/api{path}", data=data, method=method,
                                         headers={"Authorization": f"token {token or self.api_token}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            return status, json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return status, raw.decode("utf-8", "replace")

    def stop(self, timeout: float = 60) -> None:
        """Stop the hub (it stops the proxy, the course service and the users' servers it started).

        A hub that died, or did not finish stopping, can leave the servers it started running:
        they are found by the hub address in their environment and stopped too.
        """
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._stop_leftovers()

    def _stop_leftovers(self, grace: float = 10) -> None:
        if getattr(self, "api_port", None) is None:
            return
        marker = f"JUPYTERHUB_API_URL=http://127.0.0.1:{self.api_port}/".encode()
        left = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as fh:
                    if marker in fh.read():
                        left.append(int(entry))
            except OSError:
                continue
        for pid in left:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        while left and time.monotonic() < deadline:
            left = [pid for pid in left if os.path.exists(f"/proc/{pid}") and not _zombie(pid)]
            time.sleep(0.2)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def serve() -> int:
    # Ctrl-C, `kill` (SIGTERM) and a closed terminal (SIGHUP) stop the hub.  Ctrl-C is set
    # explicitly: Python leaves SIGINT ignored when its parent ignored it (a test runner's worker).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    hub = Hub()
    print(f"starting JupyterHub (log: {hub.log_path}) ...", flush=True)
    try:
        hub.start()
    except KeyboardInterrupt:
        hub.stop()
        return 1
    except SetupError as err:
        print(err, file=sys.stderr)
        return 1
    s = hub.settings
    print(f"""
JupyterHub for the course {s['course_id']} is up: {hub.url}
For local trials only: every account below logs in with the shared password {hub.password}
  instructor: {', '.join(s['instructors'])}   (formgrader: {hub.url}/services/{s['course_id']}/formgrader)
  students:   {', '.join(s['students'])}
The course lives in {s['course_dir']}; grade there as root:
  sudo {CHECKOUT}/.venv/bin/gutcourse --course {s['course_dir']} grade ps0_orientation
Ctrl-C stops the hub and everything it started.
""", flush=True)
    try:
        while hub.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        print("stopping ...", flush=True)
    finally:
        hub.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--students", type=int, default=2)
    sub.add_parser("run")
    sub.add_parser("env", help="only build the students' venv and install the proxy (what the tests need)")
    args = parser.parse_args(argv)
    try:
        if args.command == "setup":
            setup(args.students)
            return 0
        if args.command == "env":
            hub_root().mkdir(parents=True, exist_ok=True)
            build_venv(hub_root() / "venv")
            proxy_command()
            return 0
        return serve()
    except (SetupError, subprocess.CalledProcessError) as err:
        print(f"hub {args.command}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
