"""Explorer update times: how long each widget's pure function takes for one update.

Every private module of `gutcourse.widgets` lists typical updates in `UPDATE_CASES`
(label, pure function, keyword arguments). This script times each case (median and
worst of N calls after one warm-up call) against a baseline measured in the same run:
one call of `numpy.sort` on 100,000 random numbers, so figures from different machines
compare as ratios. The budget for one update is 100 ms.

    .venv/bin/python benchmarks/explorer_updates.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import statistics
import sys
import time

BUDGET_MS = 100.0


def _time(func, kwargs, repeat: int) -> list[float]:
    func(**kwargs)  # warm-up: caches and lazy imports are not what a slider move costs
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func(**kwargs)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--report-only", action="store_true",
                        help="exit 0 even when an update is over the budget (the tests only check the script runs)")
    args = parser.parse_args()

    import numpy as np

    import gutcourse.widgets as widgets

    data = np.random.default_rng(0).random(100_000)
    baseline = statistics.median(_time(lambda values: np.sort(values), {"values": data}, args.repeat))

    cases = []
    for info in pkgutil.iter_modules(widgets.__path__):
        module = importlib.import_module(f"gutcourse.widgets.{info.name}")
        cases.extend((info.name, *case) for case in getattr(module, "UPDATE_CASES", []))

    print(f"baseline: numpy.sort of 100,000 floats = {baseline:.2f} ms (median of {args.repeat})")
    print(f"{'module':<12} {'update':<58} {'median ms':>9} {'worst ms':>9} {'x baseline':>10}")
    over = []
    for module, label, func, kwargs in cases:
        times = _time(func, kwargs, args.repeat)
        median = statistics.median(times)
        print(f"{module:<12} {label:<58} {median:9.2f} {max(times):9.2f} {median / baseline:10.1f}")
        if median > BUDGET_MS:
            over.append(label)
    print(f"{len(cases)} updates timed; over the {BUDGET_MS:.0f} ms budget: {', '.join(over) or 'none'}")
    return 1 if over and not args.report_only else 0


if __name__ == "__main__":
    sys.exit(main())
