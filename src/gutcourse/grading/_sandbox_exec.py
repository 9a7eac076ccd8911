"""Start one grading kernel inside the sandbox, then become it.

Run as ``python -I -S _sandbox_exec.py SPEC -- KERNEL-COMMAND...`` by
:class:`gutcourse.grading.sandbox.SandboxKernelManager`; ``SPEC`` is JSON made
by :meth:`gutcourse.grading.sandbox.Jail.spec`. This file imports nothing but
the standard library, so starting it costs a few milliseconds.

Modes (chosen by the grader, see ``docs/security.md``):

``namespaces`` (Linux, run as root)
    New mount, PID, IPC and network namespaces. Every mount is made read-only,
    the course folder and other hidden paths are covered by empty tmpfs, the
    submission's folder and the kernel's runtime folder are bound back
    writable, ``/tmp`` is a small private tmpfs. The kernel then runs as a user
    id of its own (no other process has it) with no way to regain privileges.
    This process stays outside as the kernel's parent: it forwards termination
    and kills the kernel if the grader that started it dies.
``bwrap`` (Linux, unprivileged, bubblewrap installed)
    The same filesystem view and namespaces built by bubblewrap; the kernel
    keeps the grader's user id.
``limits``
    Resource limits only.

Resource limits (memory, CPU time, file size, processes) apply in every mode.
"""

import ctypes
import json
import os
import re
import resource
import signal
import sys
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME = 32, 1024, 2048
MS_BIND, MS_REC, MS_PRIVATE, MS_RELATIME = 4096, 16384, 1 << 18, 1 << 21
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
_MOUNT_FLAGS = {"ro": MS_RDONLY, "nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
                "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}


class SandboxError(RuntimeError):
    pass


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise SandboxError(f"{what}: {os.strerror(err)}")


def _mount(source, target, fstype, flags, data=None) -> None:
    enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    _check(_libc().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           f"mount {target}")


def _mount_points() -> list[tuple[str, int]]:
    """(mount point, per-mount flags to keep) for every mount, outermost first."""
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        for line in fh:
            fields = line.split()
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])  # \040 is a space
            flags = 0
            for opt in fields[5].split(","):
                flags |= _MOUNT_FLAGS.get(opt, 0)
            points.append((point, flags & ~MS_RDONLY))
    return sorted(points, key=lambda p: p[0].count("/") if p[0] != "/" else 0)


def _limit(name: str, value) -> None:
    if value is None:
        return
    kind = getattr(resource, name, None)
    if kind is None:
        return
    try:
        soft, hard = resource.getrlimit(kind)
        value = int(value)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        # RLIMIT_CPU: the soft limit sends SIGXCPU, the hard limit a little later SIGKILL.
        new_hard = value + 2 if name == "RLIMIT_CPU" and hard == resource.RLIM_INFINITY else value
        resource.setrlimit(kind, (value, new_hard))
    except (ValueError, OSError):
        pass  # e.g. macOS refuses RLIMIT_AS; the other limits still hold


def join_cgroup(path) -> None:
    """Move this process (and so the kernel it becomes) into the kernel's own cgroup v2."""
    if not path:
        return
    try:
        with open(os.path.join(path, "cgroup.procs"), "w") as fh:
            fh.write(str(os.getpid()))
    except OSError as err:
        raise SandboxError(f"could not join the kernel's cgroup {path} ({err.strerror or err})") from None


def apply_limits(limits: dict) -> None:
    for name, value in limits.items():
        _limit(name, value)
    try:
        with open("/proc/self/oom_score_adj", "w") as fh:
            fh.write("1000")  # if memory runs out anyway, the kernel goes first, not the grader
    except OSError:
        pass


def _no_new_privileges(libc) -> None:
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def _enter_namespaces(spec: dict) -> None:
    """Unshare and build the filesystem view from ``spec["mounts"]``; runs as root."""
    libc = _libc()
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | (0 if spec.get("network") else CLONE_NEWNET)
    _check(libc.unshare(flags), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    sources = {path: os.open(path, os.O_PATH | os.O_DIRECTORY)
               for kind, path in spec["mounts"] if kind.startswith("bind")}
    for point, kept_flags in _mount_points():
        try:
            _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept_flags)
        except SandboxError:
            pass  # a mount hidden under another one; what is visible is read-only
    for kind, path in spec["mounts"]:
        os.makedirs(path, mode=0o755, exist_ok=True)
        if kind == "hide":
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m,mode=0755")
        elif kind == "scratch":
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={int(spec['scratch_mb'])}m,mode=1777")
        else:
            _mount(f"/proc/self/fd/{sources[path]}", path, None, MS_BIND | MS_REC)
            ro = MS_RDONLY if kind == "bind_ro" else 0
            _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | ro)
    for fd in sources.values():
        os.close(fd)


# keyctl(2) by machine; where it is missing there are no kernel keyrings to clear.
_SYS_KEYCTL = {"x86_64": 250, "aarch64": 219, "i686": 288, "armv7l": 311, "ppc64le": 311, "s390x": 280}
KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_CLEAR, KEYCTL_GET_PERSISTENT = 1, 7, 22
KEY_SPEC_SESSION_KEYRING, KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING = -3, -4, -5
ENOSYS, EOPNOTSUPP = 38, 95


def _fresh_keyrings(libc) -> None:
    """Empty the keyrings the kernel's user id keeps from earlier kernels; start a new session keyring.

    Linux keeps a user's keyrings after that user's processes end, and kernels of one
    grading worker reuse user ids in a cycle: without this, a key one student's code
    added would be there for a later student's. The session keyring would otherwise be
    the grader's own, shared by every kernel it starts.
    """
    number = _SYS_KEYCTL.get(os.uname().machine)
    if number is None:
        return
    libc.syscall.restype = ctypes.c_long
    long = ctypes.c_long
    for what, args in (("clearing the user keyring", (KEYCTL_CLEAR, KEY_SPEC_USER_KEYRING)),
                       ("clearing the user session keyring", (KEYCTL_CLEAR, KEY_SPEC_USER_SESSION_KEYRING)),
                       ("joining a new session keyring", (KEYCTL_JOIN_SESSION_KEYRING, None))):
        if libc.syscall(long(number), *(long(a) if isinstance(a, int) else a for a in args)) < 0:
            err = ctypes.get_errno()
            if err in (ENOSYS, EOPNOTSUPP):
                return  # keyrings are not built into this kernel: nothing to leak
            raise SandboxError(f"{what}: {os.strerror(err)}")
    # The user's persistent keyring outlives its processes by days: empty it too.
    persistent = libc.syscall(long(number), long(KEYCTL_GET_PERSISTENT), long(-1), long(KEY_SPEC_SESSION_KEYRING))
    if persistent >= 0 and libc.syscall(long(number), long(KEYCTL_CLEAR), long(persistent)) < 0:
        raise SandboxError(f"clearing the persistent keyring: {os.strerror(ctypes.get_errno())}")


def _become_kernel(spec: dict, cmd: list[str], env: dict, run=None) -> None:
    """In the child: finish the sandbox, drop to the kernel's user, exec the kernel.

    ``run`` (the fork server's) starts the kernel in this process instead of ``exec``.
    """
    libc = _libc()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if spec["mode"] == "namespaces":
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    apply_limits(spec["limits"])
    uid, gid = spec.get("uid"), spec.get("gid")
    if uid is not None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    _fresh_keyrings(libc)
    _no_new_privileges(libc)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.chdir(spec["cwd"])
    if run is not None:
        run()
    os.execvpe(cmd[0], cmd, env)


def _supervise(child: int) -> int:
    """Wait for the kernel; kill it if our parent (the grader) dies or asks us to stop."""
    parent = os.getppid()

    def stop(signum, frame):
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass

    # SIGINT reaches the kernel directly (same process group): here it is not ours to act on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    while True:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code  # a signal, as a shell would report it
        if os.getppid() != parent:
            stop(None, None)
        time.sleep(0.05)


def _bwrap_command(spec: dict, cmd: list[str]) -> list[str]:
    args = [spec["bwrap"], "--die-with-parent", "--unshare-user", "--unshare-pid", "--unshare-ipc",
            "--unshare-uts", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    if not spec.get("network"):
        args.append("--unshare-net")
    for kind, path in spec["mounts"]:
        if kind == "hide":
            args += ["--size", str(1 << 20), "--tmpfs", path]
        elif kind == "scratch":
            if not path.startswith("/dev/"):  # bwrap's fresh /dev has its own shm
                args += ["--size", str(int(spec["scratch_mb"]) << 20), "--perms", "1777", "--tmpfs", path]
        else:
            args += ["--ro-bind" if kind == "bind_ro" else "--bind", path, path]
    return args + ["--chdir", spec["cwd"], "--", *cmd]


def main(argv: list[str]) -> int:
    split = argv.index("--")
    spec = json.loads(argv[0])
    cmd = argv[split + 1:]
    env = dict(os.environ)
    env.update(spec.get("env", {}))
    mode = spec["mode"]
    if mode == "namespaces":
        _enter_namespaces(spec)
        child = os.fork()
        if child == 0:
            try:
                _become_kernel(spec, cmd, env)
            except BaseException as err:  # never fall back into the supervisor's code
                os.write(2, f"gutcourse sandbox: {err}\n".encode())
            os._exit(127)
        return _supervise(child)
    join_cgroup(spec.get("cgroup"))
    apply_limits(spec["limits"])
    if mode == "limits" and sys.platform.startswith("linux"):
        _no_new_privileges(_libc())
    elif mode == "bwrap":
        cmd = _bwrap_command(spec, cmd)
        # An interrupt is for the kernel, which sets its own handler; bubblewrap's own
        # processes (same process group) would otherwise die of it and take the kernel along.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.chdir(spec["cwd"])
    os.execvpe(cmd[0], cmd, env)
    return 127


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (SandboxError, OSError) as err:
        sys.stderr.write(f"gutcourse sandbox: {err}\n")
        sys.exit(126)
