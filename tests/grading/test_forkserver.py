"""Grading kernels forked from a per-worker template (``_forkserver.py``).

The template imports the course's libraries once; each kernel is a fork of it,
sandboxed as a freshly started one. These tests check what the template holds
(no threads, no grader secrets, nothing of any submission), that forked kernels
start fresh (random generators, matplotlib, sys.path), that one kernel cannot
see or reach another or the template, and that interrupts and kills behave as
for a kernel started as a new interpreter.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from jupyter_core.utils import run_sync
from traitlets.config import Config

from gutcourse.grading import sandbox

from .conftest import run_code

pytestmark = pytest.mark.xdist_group("forkserver")

SECRET_VAR = "GUTCOURSE_TEST_DB_PASSWORD"
SECRET = "hunter2-" + uuid.uuid4().hex


def _root_linux() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "geteuid") and os.geteuid() == 0


needs_root = pytest.mark.skipif(not _root_linux() and os.environ.get("CI") != "true",
                                reason="the fork server needs the namespaces sandbox (Linux, root)")


def _course(tmp_path: Path) -> Config:
    """A course whose one source notebook's setup cell imports numpy and matplotlib."""
    root = tmp_path / "course"
    (root / "source" / "psx").mkdir(parents=True)
    setup = nbformat.v4.new_code_cell(
        "import numpy as np\nimport matplotlib.pyplot as plt\nfrom gutcourse import checks",
        metadata={"nbgrader": {"grade": False, "solution": False, "locked": True, "grade_id": "setup",
                               "schema_version": 3}})
    answer = nbformat.v4.new_code_cell("import pandas", metadata={"nbgrader": {
        "grade": False, "solution": True, "locked": False, "grade_id": "q1_1", "schema_version": 3}})
    nbformat.write(nbformat.v4.new_notebook(cells=[setup, answer]), str(root / "source" / "psx" / "psx.ipynb"))
    config = Config()
    config.CourseDirectory.root = str(root)
    return config


def _submission(tmp_path: Path) -> Path:
    folder = tmp_path / "course" / "submitted" / "s" / "psx"
    folder.mkdir(parents=True)
    return folder


def test_preloads_come_from_the_setup_cells_not_answers_or_course_code(tmp_path):
    modules = sandbox.kernel_preloads(_course(tmp_path))
    assert modules[0] == "ipykernel.kernelapp"
    assert "numpy" in modules and "matplotlib.pyplot" in modules
    assert "pandas" not in modules  # only in an answer cell
    assert not any(m.startswith("gutcourse") for m in modules)


def test_the_course_preloads_its_heavy_libraries():
    from gutcourse.grading import load_config

    modules = sandbox.kernel_preloads(load_config())
    for heavy in ("numpy", "pandas", "matplotlib.pyplot", "scipy.stats", "skbio"):
        assert heavy in modules, modules


def test_the_summary_line_says_how_kernels_start(tmp_path):
    config = _course(tmp_path)
    assert "forked from a per-worker template" in sandbox.describe(config, sandbox.Platform("namespaces"))
    assert "new interpreters (no fork server in bwrap mode" in sandbox.describe(config, sandbox.Platform("bwrap"))
    config.GradingSandbox.fork_server = False
    assert "fork server switched off" in sandbox.describe(config, sandbox.Platform("namespaces"))


# ----------------------------------------------------------------------------- live kernels
async def _start(config, folder: Path):
    km = sandbox.SandboxKernelManager(config=config)
    await km.start_kernel(cwd=str(folder))
    kc = km.client()
    kc.start_channels()
    await kc.wait_for_ready(timeout=120)
    return km, kc


async def _stop(km, kc):
    kc.stop_channels()
    await km.shutdown_kernel(now=True)


def _memory_holds(pid: int, needles: list[bytes]) -> list[bytes]:
    """Which needles occur in the readable memory of process ``pid`` (read from outside, as root)."""
    found = set()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            addresses, perms = line.split()[:2]
            if not perms.startswith("r"):
                continue
            start, end = (int(x, 16) for x in addresses.split("-"))
            if end - start > 1 << 30:
                continue
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            found |= {n for n in needles if n in chunk}
    return sorted(found)


def _kernel_pid(km) -> int:
    uid = km._jail.uid
    pids = [p for p in sandbox._processes_of(uid)]
    assert pids, "no process runs as the kernel's user"
    return min(pids)


@needs_root
def test_forked_kernels_are_fresh_isolated_and_hold_nothing_of_each_other(tmp_path, monkeypatch):
    config = _course(tmp_path)
    assert sandbox.detect(config).mode == "namespaces"
    monkeypatch.setenv(SECRET_VAR, SECRET)
    sandbox._stop_template()
    sandbox.ForkTemplate._current = None
    folders = {}
    for name in ("alice", "bob"):
        folders[name] = tmp_path / "course" / "submitted" / f"{name}-{uuid.uuid4().hex}" / "psx"
        folders[name].mkdir(parents=True)

    async def scenario():
        km_a, kc_a = await _start(config, folders["alice"])
        km_b, kc_b = await _start(config, folders["bob"])
        try:
            template = sandbox.ForkTemplate.for_this_process(config)
            assert template.info["threads"] == 1, template.info  # nothing running beside the fork
            assert km_a.provisioner.process.args[3] == str(sandbox.FORK_CLIENT)
            probe = ("import sys, os, numpy, matplotlib\n"
                     "print('PRELOADED', 'numpy' in sys.modules and 'matplotlib.pyplot' in sys.modules)\n"
                     "print('RANDOM', numpy.random.rand())\n"
                     "print('CONFIGDIR', matplotlib.get_configdir() == os.environ['MPLCONFIGDIR'])\n"
                     "print('PATH0', sys.path[0] == os.getcwd())\n"
                     "print('UID', os.getuid())\n"
                     "from ipykernel.kernelapp import IPKernelApp\n"
                     "print('PARENT', IPKernelApp.instance().parent_handle)\n"
                     "print('PIDS', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n")
            out_a, out_b = await run_code(kc_a, probe), await run_code(kc_b, probe)
            for out in (out_a, out_b):
                assert "PRELOADED True" in out and "CONFIGDIR True" in out and "PATH0 True" in out, out
                assert "UID 0" not in out
                assert "PARENT 1" in out, out  # ipykernel's import-time defaults as in a new kernel
            rand = [re.search(r"RANDOM (\S+)", o).group(1) for o in (out_a, out_b)]
            assert rand[0] != rand[1], "two forked kernels drew the same random numbers"
            # Bob's kernel cannot see or signal Alice's, nor the template.
            pid_a = _kernel_pid(km_a)
            reach = await run_code(kc_b, f"import os\ntry:\n    os.kill({pid_a}, 0); print('REACHED')\n"
                                     f"except OSError as e:\n    print('NO', type(e).__name__)\n"
                                     f"try:\n    os.kill({template.process.pid}, 0); print('REACHED')\n"
                                     f"except OSError as e:\n    print('NO', type(e).__name__)\n"
                                     f"print(os.path.exists({template.socket!r}))")
            assert "REACHED" not in reach and reach.strip().endswith("False"), reach
            # Nothing of Alice's request is in Bob's kernel, nor anything of either in the template,
            # and the template never had the grader's secrets.
            needles = [folders["alice"].parent.name.encode(), folders["bob"].parent.name.encode(),
                       SECRET.encode()]
            assert _memory_holds(template.process.pid, needles) == []
            assert folders["alice"].parent.name.encode() not in _memory_holds(_kernel_pid(km_b), needles)
            environ = Path(f"/proc/{template.process.pid}/environ").read_bytes()
            assert SECRET.encode() not in environ
        finally:
            await _stop(km_a, kc_a)
            await _stop(km_b, kc_b)

    run_sync(scenario)()


@needs_root
def test_interrupt_reaches_a_forked_kernel_and_a_kill_ends_it(tmp_path):
    config = _course(tmp_path)
    folder = _submission(tmp_path)

    async def scenario():
        km, kc = await _start(config, folder)
        try:
            msg_id = kc.execute("import time\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n"
                                "    print('INTERRUPTED')")
            await asyncio.sleep(1.0)
            started = time.monotonic()
            await km.interrupt_kernel()
            text = []
            while True:
                msg = await kc.get_iopub_msg(timeout=60)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "stream":
                    text.append(msg["content"]["text"])
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    break
            assert "INTERRUPTED" in "".join(text)
            assert time.monotonic() - started < 30
            pid = _kernel_pid(km)
            kc.execute("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass")
            await asyncio.sleep(0.5)
            await km.shutdown_kernel(now=True)
            for _ in range(200):
                if not os.path.exists(f"/proc/{pid}"):
                    break
                await asyncio.sleep(0.05)
            assert not os.path.exists(f"/proc/{pid}"), "the kernel outlived its kill"
        finally:
            kc.stop_channels()
            if await km.is_alive():
                await km.shutdown_kernel(now=True)

    run_sync(scenario)()


@needs_root
def test_a_kernel_that_exits_reports_its_exit_code(tmp_path):
    config = _course(tmp_path)
    folder = _submission(tmp_path)

    async def scenario():
        km, kc = await _start(config, folder)
        try:
            kc.execute("import os\nos._exit(7)")
            for _ in range(400):
                if km.exit_status is not None:
                    break
                await asyncio.sleep(0.05)
            return km.exit_status
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    assert run_sync(scenario)() == 7


def test_bubblewrap_and_limits_modes_start_kernels_as_before(tmp_path):
    config = _course(tmp_path)
    policy = sandbox.GradingSandbox(config=config)
    assert "bwrap mode" in sandbox._fork_unavailable(policy, sandbox.Platform("bwrap"))
    assert "limits mode" in sandbox._fork_unavailable(policy, sandbox.Platform("limits"))
    if sys.platform.startswith("linux"):
        assert sandbox._fork_unavailable(policy, sandbox.Platform("namespaces")) == ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is Linux only")
def test_the_template_ends_with_its_worker(tmp_path):
    """Closing the worker's pipe ends the template and removes its folder."""
    template = sandbox.ForkTemplate(["json"])
    try:
        assert template.ready(timeout=120), template.error
        folder = template.folder
        template.process.stdin.close()
        template.process.wait(timeout=30)
        assert not folder.exists()
    finally:
        if template.process.poll() is None:
            template.process.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is Linux only")
def test_a_grading_run_starts_a_template_per_worker_and_each_worker_takes_its_own(tmp_path):
    """Templates started before the workers are forked: one per worker, none shared, all ended after."""
    import json

    config = _course(tmp_path)
    sandbox.ForkTemplate.start_spares(config, 2)
    spares = list(sandbox.ForkTemplate._spares)
    try:
        assert len(spares) == 2 and all(t.alive() for t in spares)
        sandbox.ForkTemplate.start_spares(config, 2)
        assert sandbox.ForkTemplate._spares == spares, "a second call starts no more templates"
        read, write = os.pipe()
        children = []
        for _ in range(3):  # three workers, two templates: the third starts its own
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    os.close(read)
                    template = sandbox.ForkTemplate.for_this_process(config)
                    line = json.dumps({"folder": str(template.folder), "adopted": template.adopted,
                                       "ready": template.ready(timeout=120), "owner": template.owner == os.getpid()})
                    os.write(write, (line + "\n").encode())
                    if not template.adopted:
                        template.stop()
                    code = 0
                finally:
                    os._exit(code)
            children.append(pid)
        os.close(write)
        for pid in children:
            assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        with os.fdopen(read) as stream:
            got = [json.loads(line) for line in stream]
        assert len(got) == 3 and all(g["ready"] and g["owner"] for g in got), got
        taken = sorted(g["folder"] for g in got if g["adopted"])
        assert taken == sorted(str(t.folder) for t in spares), got
        assert all(t.alive() for t in spares), "this process still holds the templates' pipes"
        sandbox.ForkTemplate.hand_over_spares()  # as a run does once its workers are forked
        for template in spares:  # their workers have ended: so do they
            assert template.process.wait(timeout=60) == 0 and not template.folder.exists()
    finally:
        sandbox.ForkTemplate.stop_spares()
    assert sandbox.ForkTemplate._spares == []
    for template in spares:
        assert template.process.poll() is not None and not template.folder.exists()


# Red-team findings (session 16): a later kernel with the same user id found keys an earlier
# student's kernel left in the kernel keyrings; kernels got the grader's environment (a database
# password) and wrote into the grader's own output.
_KEYS = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
         "ADD, KEYCTL = {'x86_64': (248, 250), 'aarch64': (217, 219)}[os.uname().machine]\n"
         "def search(ring, name):\n    return libc.syscall(KEYCTL, 10, ring, b'user', name, 0)\n")


@needs_root
@pytest.mark.parametrize("fork", [True, False], ids=["forked", "new-interpreter"])
def test_a_kernel_inherits_no_keys_environment_or_output_of_the_grader_or_earlier_kernels(
        tmp_path, monkeypatch, capfd, fork):
    config = _course(tmp_path)
    config.GradingSandbox.fork_server = fork
    folder = _submission(tmp_path)
    monkeypatch.setenv(SECRET_VAR, SECRET)

    async def scenario():
        km, kc = await _start(config, folder)
        first_uid = km._jail.uid
        try:
            # The kernel is in a session of its own: not the grader's, whose terminal it could open.
            stat = Path(f"/proc/{_kernel_pid(km)}/stat").read_text()
            assert int(stat.rsplit(")", 1)[1].split()[3]) != os.getsid(0)
            planted = await run_code(kc, _KEYS + "print('ADDED', libc.syscall(ADD, b'user', b'planted-u', b's', 1, -4) > 0,"
                                              " libc.syscall(ADD, b'user', b'planted-s', b's', 1, -3) > 0)\n"
                                              "libc.syscall.restype = ctypes.c_long\n"
                                              "pk = libc.syscall(ctypes.c_long(KEYCTL), ctypes.c_long(22), ctypes.c_long(-1),"
                                              " ctypes.c_long(-3))\n"
                                              "print('PERSISTENT', pk < 0 or libc.syscall(ADD, b'user', b'planted-p', b's',"
                                              " 1, ctypes.c_long(pk)) > 0)\n"
                                              "import sys\nsys.__stdout__.write('LEAK-OUT\\n'); sys.__stdout__.flush()\n"
                                              "os.write(1, b'LEAK-FD1\\n'); os.write(2, b'LEAK-FD2\\n')\n"
                                              f"print('ENV', {SECRET_VAR!r} in os.environ)\n")
            assert "ADDED True True" in planted and "ENV False" in planted and "PERSISTENT True" in planted, planted
        finally:
            await _stop(km, kc)
        # Kernels of one grading process take user ids in a cycle: start more until one reuses it.
        for _ in range(16):
            km, kc = await _start(config, folder)
            if km._jail.uid == first_uid:
                break
            await _stop(km, kc)
        assert km._jail.uid == first_uid
        try:
            found = await run_code(kc, _KEYS + "print('FOUND', search(-4, b'planted-u'), search(-3, b'planted-s'),"
                                           " search(-5, b'planted-u'))\n"
                                           "libc.syscall.restype = ctypes.c_long\n"
                                           "pk = libc.syscall(ctypes.c_long(KEYCTL), ctypes.c_long(22), ctypes.c_long(-1),"
                                           " ctypes.c_long(-3))\n"
                                           "print('PFOUND', -1 if pk < 0 else search(pk, b'planted-p'))\n")
            assert "FOUND -1 -1 -1" in found and "PFOUND -1" in found, found
        finally:
            await _stop(km, kc)

    run_sync(scenario)()
    out, err = capfd.readouterr()
    assert "LEAK" not in out and "LEAK" not in err
