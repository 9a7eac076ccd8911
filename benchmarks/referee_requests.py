"""Milliseconds per request from the referee to a grading kernel, by each way of asking.

The referee (src/gutcourse/grading/referee.py) asks the student's kernel for every value a
test reads and for every call of a student's function. It can ask through the kernel's
execute path (an empty cell with a user expression, the baseline) or with a shell message
of its own (`gutcourse.handout.serve`). Both are timed in one run, alternating, on the same
kernel: a fetch of a small table and a call of a function on it. A kernel_info request is
timed too, as the floor of any request to ipykernel. Run it on a quiet machine:

    .venv/bin/python benchmarks/referee_requests.py [--requests 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

SETUP = """
import gutcourse.handout as h, pandas as pd
table = pd.DataFrame([[50, 30, 20, 0]], index=["one"], columns=["g1", "g2", "g3", "g4"])
def shares(t):
    return t / t.sum(axis=1).to_numpy()[:, None]
h._refs["shares"] = shares
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from jupyter_client.manager import AsyncKernelManager

    from gutcourse import handout
    from gutcourse.grading.referee import KernelLink

    table = __import__("pandas").DataFrame([[50, 30, 20, 0]], index=["one"], columns=["g1", "g2", "g3", "g4"])
    payload = json.dumps({"args": handout.encode([table]), "kwargs": handout.encode({})})
    times: dict[str, list[float]] = {}

    def measure(link, label, ask):
        started = time.perf_counter()
        for _ in range(args.requests):
            ask()
        times.setdefault(label, []).append((time.perf_counter() - started) / args.requests * 1000)

    async def run():
        km = AsyncKernelManager()
        await km.start_kernel(env={"MPLBACKEND": "Agg"})
        kc = km.client()
        kc.start_channels()
        await kc.wait_for_ready(timeout=120)
        await kc.execute_interactive(SETUP, timeout=120, output_hook=lambda msg: None)
        loop = asyncio.get_running_loop()

        def work():
            for _ in range(args.rounds):
                for direct in (False, True):
                    link = KernelLink(km, loop, lambda: 60.0)
                    if direct:
                        link._open_direct(5.0)
                        assert link.direct, "the kernel did not take requests as messages of their own"
                    else:
                        link.direct = False
                    way = "message of its own" if direct else "execute path (baseline)"
                    measure(link, f"fetch, {way}", lambda: link.ask("fetch", "table", grace=5.0))
                    measure(link, f"call, {way}", lambda: link.ask("call", "shares", payload, grace=5.0))
                    if direct:
                        measure(link, "kernel_info (floor)",
                                lambda: link._wait(link.kc.kernel_info(), time.monotonic() + 10))
                    link.close()

        thread = threading.Thread(target=work)
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.05)
        kc.stop_channels()
        await km.shutdown_kernel(now=True)

    asyncio.run(run())
    print(f"{args.requests} requests each, {args.rounds} rounds, median ms per request")
    medians = {label: statistics.median(v) for label, v in times.items()}
    for label, ms in medians.items():
        print(f"{label:<36} {ms:6.2f} ms")
    for op in ("fetch", "call"):
        print(f"{op}: execute path / message of its own = "
              f"{medians[f'{op}, execute path (baseline)'] / medians[f'{op}, message of its own']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
