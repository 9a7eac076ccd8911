"""The process a kernel manager starts when its kernel comes from the fork server.

Run as ``python -I -S _forkclient.py SOCKET SPEC -- KERNEL-COMMAND...`` in place
of ``_sandbox_exec.py``. It hands the request and its standard streams to the
grading worker's template (``_forkserver.py``), which forks the sandboxed
kernel, and then stands in for that kernel towards the kernel manager:

- an interrupt (SIGINT) is passed on to the kernel's process group, and
  SIGTERM or SIGHUP to its supervisor, which stops the kernel;
- when this process is killed, the template sees the connection close and
  kills the kernel;
- it exits with the kernel's exit status, so the manager reports how the
  kernel ended exactly as for a kernel it started itself.

Imports nothing but the standard library, so starting it costs a few milliseconds.
"""

import array
import json
import os
import signal
import socket
import struct
import sys

_HEADER = struct.Struct("!I")


def main(argv: list[str]) -> int:
    split = argv.index("--")
    path, spec = argv[0], json.loads(argv[1])
    cmd = argv[split + 1:]
    body = json.dumps({"spec": spec, "cmd": cmd, "env": dict(os.environ)}).encode("utf-8")
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    conn.sendmsg([_HEADER.pack(len(body))],
                 [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [0, 1, 2]).tobytes())])
    conn.sendall(body)
    supervisor = None

    def forward(signum, frame):
        if supervisor is None:
            return
        try:
            if signum == signal.SIGINT:
                os.killpg(supervisor, signal.SIGINT)  # the supervisor ignores it; the kernel handles it
            else:
                os.kill(supervisor, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    reader = conn.makefile("r", encoding="utf-8")
    for line in reader:
        message = json.loads(line)
        if "pid" in message:
            supervisor = int(message["pid"])
        elif "exit" in message:
            return int(message["exit"])
    sys.stderr.write("gutcourse sandbox: the grading worker's kernel template went away\n")
    if supervisor is not None:
        try:
            os.killpg(supervisor, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return 125


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (OSError, ValueError) as err:
        sys.stderr.write(f"gutcourse sandbox: cannot reach the kernel template: {err}\n")
        sys.exit(126)
