"""A template process that forks preloaded grading kernels.

Started once per grading worker by :class:`gutcourse.grading.sandbox.ForkTemplate`
as ``python -c BOOT _forkserver.py SOCKET MODULE...``. It imports the listed
modules (the libraries the course's setup cells import, and ipykernel), then
listens on a Unix socket in a folder only the grader can enter. It never reads
course data, a submission, a secret or student code, and it starts no thread
and no ZMQ context, so a fork of it is a clean interpreter with those imports
already paid for.

For each connection (made by ``_forkclient.py``, the process the kernel manager
started) it forks a child at once, before reading anything from the connection:
this process never holds what one kernel was asked to do, so no later kernel
can find it in the memory it inherits. The child reads the request (the
sandbox spec, the kernel command, its environment and its standard streams),
builds the same sandbox as ``_sandbox_exec.py`` (namespaces, mounts, user id,
limits), and forks the kernel, which starts ipykernel in-process instead of
``exec``-ing a new interpreter. The template reports each child's exit status
on its connection, and kills the child when the connection closes (the kernel
manager killed the client).

Linux and root only (the ``namespaces`` sandbox mode); elsewhere kernels start
as before. Imports nothing but the standard library until it preloads.
"""

import array
import importlib.util
import json
import os
import select
import signal
import socket
import struct
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("_gutcourse_sandbox_exec", os.path.join(_HERE, "_sandbox_exec.py"))
sandbox_exec = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sandbox_exec)

_HEADER = struct.Struct("!I")
_MAX_REQUEST = 16 << 20


# ----------------------------------------------------------------------------- in the child
def _recv_request(conn: socket.socket) -> tuple[dict, list[int]]:
    """The request and the three standard-stream fds the client passed with it."""
    fds = array.array("i")
    data, anc, _flags, _addr = conn.recvmsg(_HEADER.size, socket.CMSG_SPACE(3 * fds.itemsize))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    if len(data) != _HEADER.size or len(fds) != 3:
        raise sandbox_exec.SandboxError("malformed request from the kernel manager")
    (size,) = _HEADER.unpack(data)
    if size > _MAX_REQUEST:
        raise sandbox_exec.SandboxError("request too large")
    body = bytearray()
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise sandbox_exec.SandboxError("kernel manager went away mid-request")
        body += chunk
    return json.loads(body.decode("utf-8")), list(fds)


def _forget_cached(func) -> None:
    """Make a matplotlib ``_logged_cached`` function compute its value again."""
    cells = dict(zip(getattr(func, "__code__", None) and func.__code__.co_freevars or (),
                     getattr(func, "__closure__", None) or ()))
    if "called" in cells:
        cells["called"].cell_contents = False


def _fresh_state(cwd: str) -> None:
    """What a freshly started interpreter would have that a fork of the template shares."""
    import random

    random.seed()  # CPython reseeds at fork too; explicit is cheap
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()  # the legacy global generator, from fresh OS entropy
    matplotlib = sys.modules.get("matplotlib")
    if matplotlib is not None:
        # The kernel's configuration and cache folders are its own, not the template's.
        for name in ("get_configdir", "get_cachedir"):
            _forget_cached(getattr(matplotlib, name, None))
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close("all")
    # `python -m ipykernel_launcher` starts with the working folder first on sys.path.
    if sys.path and sys.path[0] in ("", _TEMPLATE_CWD):
        sys.path[0] = cwd
    else:
        sys.path.insert(0, cwd)


def _run_kernel(cmd: list[str], cwd: str) -> None:
    """Become the kernel: ipykernel in this process when the command asks for it, else exec."""
    in_process = (len(cmd) >= 3 and cmd[1:3] == ["-m", "ipykernel_launcher"]
                  and os.path.realpath(cmd[0]) == os.path.realpath(sys.executable)
                  and "ipykernel.kernelapp" in sys.modules)
    if not in_process:
        os.execvpe(cmd[0], cmd, dict(os.environ))
    _fresh_state(cwd)
    launcher = importlib.util.find_spec("ipykernel_launcher")
    sys.argv = [launcher.origin if launcher else "ipykernel_launcher", *cmd[3:]]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()
    sys.exit(0)


def _child(conn: socket.socket) -> int:
    """One kernel's supervisor: the sandbox of ``_sandbox_exec``, then the kernel forked inside it."""
    # A session of its own, not only a process group: a kernel in the grader's session could open
    # the grader's terminal (/dev/tty), write on it, read it or type into it (red-team, session 17).
    os.setsid()
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    request, fds = _recv_request(conn)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    spec, cmd = request["spec"], request["cmd"]
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ.update(spec.get("env", {}))
    libc = sandbox_exec._libc()
    libc.prctl(sandbox_exec.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    sandbox_exec._enter_namespaces(spec)
    kernel = os.fork()
    if kernel == 0:
        try:
            conn.close()
            sandbox_exec._become_kernel(spec, cmd, dict(os.environ), run=lambda: _run_kernel(cmd, spec["cwd"]))
        except SystemExit as done:
            os._exit(done.code if isinstance(done.code, int) else (0 if done.code is None else 1))
        except BaseException as err:  # never fall back into the supervisor's code
            os.write(2, f"gutcourse sandbox: {err}\n".encode())
        os._exit(127)
    conn.close()
    return sandbox_exec._supervise(kernel)


# ----------------------------------------------------------------------------- the template
_TEMPLATE_CWD = os.getcwd()


#: What every ipykernel kernel imports once it runs (its debugger when debugpy is installed, the
#: object inspector, the formatter of tracebacks): where ipykernel is preloaded, these are too.
#: Each is checked to start no thread and open nothing when imported (tests/grading/test_forkserver.py).
_KERNEL_RUNTIME = ("ipykernel.debugger", "IPython.core.debugger", "IPython.core.oinspect",
                   "IPython.core.completerlib", "stack_data", "pygments.formatters", "pygments.styles")


def preload(modules: list[str]) -> list[str]:
    """Import what kernels will import; returns the modules that failed (they are skipped)."""
    failed = []
    for name in modules:
        try:
            __import__(name)
        except Exception:  # a library missing here is simply imported (or not) by the kernel
            failed.append(name)
    return failed


def _report(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall((json.dumps(message) + "\n").encode())
    except OSError:
        pass


def serve(path: str, listener: socket.socket) -> None:
    """Accept, fork, report exits; ends when stdin (a pipe from the grading worker) closes."""
    children: dict[int, socket.socket] = {}  # child pid -> its connection
    by_fd: dict[int, int] = {}  # connection fd -> child pid
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *a: None)
    poller = select.poll()
    poller.register(listener, select.POLLIN)
    poller.register(0, select.POLLIN | select.POLLHUP)
    poller.register(wake_r, select.POLLIN)
    while True:
        for fd, events in poller.poll(1000):
            if fd == 0:
                if os.read(0, 1) == b"":
                    for pid in children:
                        _kill_group(pid)
                    return
            elif fd == wake_r:
                os.read(wake_r, 4096)
            elif fd == listener.fileno():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                pid = os.fork()
                if pid == 0:
                    code = 126
                    try:
                        listener.close()
                        for other in children.values():
                            other.close()
                        os.close(wake_r)
                        os.close(wake_w)
                        signal.set_wakeup_fd(-1)
                        code = _child(conn)
                    except BaseException as err:
                        try:
                            os.write(2, f"gutcourse sandbox: {err}\n".encode())
                        except OSError:
                            pass
                    os._exit(code)
                # The child makes itself a session (and group) leader with setsid(); setting its
                # group from here as well could make that fail, so this side leaves it alone.
                children[pid] = conn
                by_fd[conn.fileno()] = pid
                # Only hang-ups: the request itself is still unread (the child reads it).
                poller.register(conn, select.POLLRDHUP)
                _report(conn, {"pid": pid})
            elif fd in by_fd and events & (select.POLLRDHUP | select.POLLHUP | select.POLLERR):
                # The client (the kernel manager's process) is gone: so is its kernel.
                _kill_group(by_fd[fd])
                poller.unregister(fd)
                del by_fd[fd]
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = children.pop(pid, None)
            if conn is not None:
                code = os.waitstatus_to_exitcode(status)
                _report(conn, {"exit": 128 - code if code < 0 else code})
                if conn.fileno() in by_fd:
                    poller.unregister(conn)
                    del by_fd[conn.fileno()]
                conn.close()


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def main(argv: list[str]) -> int:
    path, modules = argv[0], argv[1:]
    os.setpgid(0, 0)  # the worker's interrupts are not ours
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # No parent-death signal: it would fire when the worker *thread* that started us ends.
    # The template ends when its standard input, a pipe from the worker process, closes.
    started = time.monotonic()
    failed = preload(modules)
    if "ipykernel.kernelapp" in sys.modules:
        preload(list(_KERNEL_RUNTIME))
    # What the imports made lives as long as any kernel: kernels' garbage collections skip it
    # (a full collection of it costs about 90 ms) and so do not copy its pages either. No
    # collection first: the imports leave next to no garbage, and a kernel waits for the template.
    import gc

    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(64)
    threads = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 1
    sys.stdout.write(json.dumps({"ready": True, "seconds": round(time.monotonic() - started, 3),
                                 "failed": failed, "threads": threads}) + "\n")
    sys.stdout.flush()
    try:
        serve(path, listener)
    finally:
        import shutil

        shutil.rmtree(os.path.dirname(path), ignore_errors=True)  # the template's own folder
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
