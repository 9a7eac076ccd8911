"""The grading kernel client starts without idle waits and loses nothing."""

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync

from gutcourse.grading.sandbox import GuardedExecute, PromptKernelClient, PromptKernelManager


def test_execute_uses_the_prompt_manager_with_the_sandbox_off_too():
    from traitlets.config import Config

    from gutcourse.grading.sandbox import SandboxKernelManager

    config = Config()
    config.GradingSandbox.enabled = False
    assert GuardedExecute(config=config).kernel_manager_class is PromptKernelManager
    assert issubclass(SandboxKernelManager, PromptKernelManager)


def test_prompt_client_is_ready_and_the_first_output_arrives():
    async def run():
        km = PromptKernelManager()
        assert isinstance(km, AsyncKernelManager)
        await km.start_kernel()
        kc = km.client()
        assert isinstance(kc, PromptKernelClient)
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=60)
            msg_id = kc.execute("print('first output', 6 * 7)")
            texts = []
            while True:
                msg = await kc.get_iopub_msg(timeout=30)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "stream":
                    texts.append(msg["content"]["text"])
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    break
            return "".join(texts)
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)
            assert not await km.is_alive()

    # run_sync, as nbclient uses: other tests in this worker may leave an event loop running.
    assert run_sync(run)() == "first output 42\n"


def test_the_interrupt_grace_stretches_with_the_machine_load_up_to_four_times(monkeypatch):
    from traitlets.config import Config

    from gutcourse.grading.sandbox import policy  # where _load_factor reads the load

    config = Config()
    config.GradingSandbox.interrupt_grace = 2.0
    execute = GuardedExecute(config=config)
    monkeypatch.setattr(policy.os, "cpu_count", lambda: 2)
    for load, grace in [(0.5, 2.0), (2.0, 2.0), (5.0, 5.0), (40.0, 8.0)]:
        monkeypatch.setattr(policy.os, "getloadavg", lambda load=load: (load, load, load))
        assert execute._grace() == grace

    def no_load_average():
        raise OSError("no load average")

    monkeypatch.setattr(policy.os, "getloadavg", no_load_average)
    assert execute._grace() == 2.0


def test_last_words_keep_the_launchers_last_error_as_printable_text():
    """The launcher's last 'gutcourse sandbox:' line names why a kernel died; anything else it wrote is not shown."""
    import tempfile

    from gutcourse.grading.sandbox import SandboxKernelManager

    km = SandboxKernelManager.__new__(SandboxKernelManager)  # no jail or policy needed to read the stderr file
    km._stderr = None
    assert km._last_words() == ""
    km._stderr = tempfile.TemporaryFile()
    km._stderr.write(b"x" * 5000 + b"\nTraceback: something the student printed\n"
                     b"gutcourse sandbox: first complaint\n"
                     b"gutcourse sandbox: could not make /usr read-only \x1b[31m(EPERM)\x1b[0m\n"
                     b"a student's line after it\n")
    assert km._last_words() == "gutcourse sandbox: could not make /usr read-only [31m(EPERM)[0m"
    km._stderr.close()
