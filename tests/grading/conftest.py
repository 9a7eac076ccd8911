"""Shared fixtures for grading tests: throwaway course folders and a real PostgreSQL server."""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def make_course(dest: Path, assignments=("ps0_orientation",)) -> Path:
    """A course folder holding copies of the given source assignments (not yet released)."""
    (dest / "source").mkdir(parents=True)
    shutil.copy(REPO / "coursework" / "source" / "header.ipynb", dest / "source" / "header.ipynb")
    for name in assignments:
        shutil.copytree(REPO / "coursework" / "source" / name, dest / "source" / name)
    return dest


def run_cli(course: Path, *args, timeout=600, **kwargs) -> subprocess.CompletedProcess:
    """Run the `gutcourse` command against ``course`` in a child process."""
    env = dict(os.environ, GUTCOURSE_COURSE_ROOT=str(course))
    return subprocess.run([sys.executable, "-m", "gutcourse.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, **kwargs)


async def run_code(kc, code: str, timeout: float = 120) -> str:
    """Run ``code`` in a kernel through client ``kc``; its printed output, and any error as 'Name: value'."""
    msg_id = kc.execute(code)
    out = []
    while True:
        msg = await kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server of our own on 127.0.0.1, in a temp folder; stopped by pid afterwards.

    PostgreSQL refuses to run as root, so as root it runs as the `postgres` user
    Debian's package creates. Where no server is installed the test skips, except
    in CI (CI=true), where a missing server is a failure.
    """
    bindir = _pg_bin()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL server binaries not found (Debian package postgresql)")
        pytest.skip("PostgreSQL server binaries not found (install Debian's postgresql)")
    as_root = os.geteuid() == 0
    folder = Path(tempfile.mkdtemp(prefix="gutcourse-pg-", dir="/tmp"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    prefix = []
    if as_root:
        pw = pwd.getpwnam("postgres")
        for path in (folder, sockets):
            os.chown(path, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                    "--no-sync"], check=True, capture_output=True)
    server = subprocess.Popen([*prefix, str(bindir / "postgres"), "-D", str(data), "-p", str(port),
                               "-h", "127.0.0.1", "-k", str(sockets), "-c", "fsync=off"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pid_file = data / "postmaster.pid"
        # Ready when it answers; given up only when the server has exited or after a long wait.
        deadline = time.monotonic() + 180
        while not (pid_file.exists() and subprocess.run(
                [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                capture_output=True).returncode == 0):
            if server.poll() is not None:
                pytest.fail(f"PostgreSQL exited while starting (code {server.returncode})")
            if time.monotonic() > deadline:
                pytest.fail("PostgreSQL did not answer within 180 s")
            time.sleep(0.1)
        subprocess.run([*prefix, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                        "gradebook"], check=True, capture_output=True)
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/gradebook"
    finally:
        postmaster = None
        pid_file = data / "postmaster.pid"
        if pid_file.exists():
            postmaster = int(pid_file.read_text().split()[0])
        # SIGINT is PostgreSQL's "fast shutdown"; the postmaster's pid is the one it recorded.
        if postmaster:
            os.kill(postmaster, signal.SIGINT)
        elif server.poll() is None:
            server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)
