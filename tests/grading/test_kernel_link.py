"""The referee's link to a real kernel: requests go as messages of their own, else through the execute path."""

import asyncio
import concurrent.futures
import threading

import pytest
from jupyter_client.manager import AsyncKernelManager

from gutcourse.grading.referee import KernelLink, TooSlow

from .conftest import run_code


def _with_kernel(setup: str, work):
    """Run ``work(link)`` in a thread (the referee's calls block) against a fresh kernel that ran ``setup``."""

    async def main():
        km = AsyncKernelManager()
        await km.start_kernel(env={"MPLBACKEND": "Agg"})
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=120)
            await run_code(kc, setup)
            loop = asyncio.get_running_loop()
            box = {}

            def run():
                link = KernelLink(km, loop, lambda: 20.0)
                try:
                    box["value"] = work(link)
                except BaseException as err:  # noqa: BLE001
                    box["error"] = err
                finally:
                    link.close()

            thread = threading.Thread(target=run)
            thread.start()
            while thread.is_alive():
                await asyncio.sleep(0.05)
            if "error" in box:
                raise box["error"]
            return box["value"]
        finally:
            kc.stop_channels()
            await km.shutdown_kernel(now=True)

    # In a thread of its own: another test in this worker may have left an event loop running here.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def test_requests_go_as_messages_of_their_own_and_read_the_students_values():
    def work(link):
        got = [link.ask("fetch", "x", grace=5), link.ask("fetch", "nothing", grace=5)]
        return link.direct, got

    direct, (x, missing) = _with_kernel("import gutcourse.handout\nx = [1, 2.5, 'three']", work)
    assert direct is True
    assert x == {"ok": {"t": "list", "v": [1, 2.5, "three"]}} and missing == {"missing": True}


def test_a_kernel_that_cannot_take_them_is_asked_through_its_execute_path():
    """A student who broke `serve` gets the old path (slower), with the same answers."""
    setup = "import gutcourse.handout as h\nh.serve = None\nx = 7"
    x, direct = _with_kernel(setup, lambda link: (link.ask("fetch", "x", grace=5), link.direct))
    assert direct is False and x == {"ok": 7}


def test_a_slow_function_asked_directly_is_interrupted_as_too_slow():
    setup = ("import time, gutcourse.handout as h\n"
             "def slow():\n    time.sleep(60)\n"
             "h._refs['slow'] = slow")

    def work(link):
        link.deadline = lambda: 1.0
        link.ask("fetch", "slow", grace=5)  # opens the direct path
        assert link.direct is True
        with pytest.raises(TooSlow):
            link.ask("call", "slow", '{"args": {"t": "list", "v": []}, "kwargs": {"t": "dict", "k": [], "v": []}}',
                     grace=10)
        link.deadline = lambda: 20.0
        return link.ask("fetch", "slow", grace=5)  # the kernel is still there and answers

    assert "ok" in _with_kernel(setup, work)


# Red team (round 4), on the request channel: a student's code replaces the kernel's handler.
_EVIL = """
import gutcourse.handout as h
from IPython import get_ipython
k = get_ipython().kernel
_serve = h.serve
def serve():
    answer = _serve()
    k.shell_handlers[h.REQUEST] = evil
    return answer
h.serve = serve
x = [1, 2, 3]
"""


def _rss_mb() -> int:
    import os

    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20


def test_unasked_messages_from_the_kernel_cannot_fill_the_graders_memory():
    """A handler that answers, then sends 30 messages of 20 MB each: ZeroMQ would queue them all (600 MB)."""
    import time

    setup = _EVIL + """
import zmq
junk = zmq.Frame(b'x' * (20 << 20))
def flood(stream, ident):
    for _ in range(30):
        k.session.send(stream, 'junk', {}, None, ident, buffers=[junk])
def evil(stream, ident, parent):
    h._answer(k, stream, ident, parent)
    k.io_loop.call_later(0.1, flood, stream, ident)
"""

    def work(link):
        first = link.ask("fetch", "x", grace=5)
        before = _rss_mb()
        time.sleep(3)  # the flood arrives while the grader is not reading
        grown = _rss_mb() - before
        return first, grown, link.ask("fetch", "x", grace=5)

    first, grown, again = _with_kernel(setup, work)
    assert first == again == {"ok": {"t": "list", "v": [1, 2, 3]}}
    assert grown < 200, f"the grader queued {grown} MB of unasked messages"


def test_a_reply_with_a_malformed_header_is_skipped_not_a_crash():
    setup = _EVIL + """
def evil(stream, ident, parent):
    msg = k.session.msg(h.REPLY, {"status": "ok", "text": '{"ok": 99}'})
    msg["parent_header"] = [1, 2]
    k.session.send(stream, msg, ident=ident)
    h._answer(k, stream, ident, parent)
"""
    assert _with_kernel(setup, lambda link: link.ask("fetch", "x", grace=5)) == {"ok": {"t": "list", "v": [1, 2, 3]}}


def test_an_answer_that_cannot_be_sent_is_refused_at_once_not_waited_for():
    """A lone surrogate in what a student's function raised: ipykernel cannot send it; the kernel says so."""
    import time

    from gutcourse import handout

    setup = ("import gutcourse.handout as h\n"
             "def bad():\n    raise SystemExit('\\ud800')\n"
             "h._refs['bad'] = bad")

    def work(link):
        link.ask("fetch", "bad", grace=5)
        started = time.monotonic()
        with pytest.raises(handout.HandoutError, match="could not be sent"):
            link.ask("call", "bad", '{"args": {"t": "list", "v": []}, "kwargs": {"t": "dict", "k": [], "v": []}}',
                     grace=5)
        return time.monotonic() - started, link.ask("fetch", "bad", grace=5)

    waited, after = _with_kernel(setup, work)
    assert waited < 15 and "ok" in after
