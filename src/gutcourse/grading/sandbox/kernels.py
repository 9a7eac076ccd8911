"""Kernel managers and clients for grading: prompt to start and stop, and sandboxed (:class:`SandboxKernelManager`)."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type

from ..incidents import report as report_incident
from .forktemplate import ForkTemplate
from .jail import Jail, _kernel_environment, kill_user
from .mounts import _course_paths
from .platform import _fork_unavailable, detect
from .policy import GradingSandbox

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
                said = getattr(self.parent, "_last_words", lambda: "")()
                raise RuntimeError("Kernel died before replying to kernel_info" + (f" ({said})" if said else ""))
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
