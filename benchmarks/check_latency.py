"""The learner's loop: seconds from `gutcourse check NOTEBOOK` to its printed table.

A blank release of the assignment (ps2_alpha_diversity by default) is checked several
times, each as a new command, as a learner runs it; the clock stops when the table's
first line ("... autograded points") is printed, and again when the command exits (it
writes the feedback page after the table). Two ways, alternating, in one run:

- cold: the user's cache is empty, so the throwaway course is released first (a learner's
  first check of an assignment, or after the source changed);
- warm: the released course comes from the cache (every later check).

The ratio warm/cold is against the cold run measured in the same run. Nothing is timed in
the test suite; run it on a quiet machine:

    .venv/bin/python benchmarks/check_latency.py [--assignment A] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def blank_release(assignment: str, folder: Path) -> Path:
    """The student's version of ``assignment``, released in a throwaway course under ``folder``."""
    sys.path.insert(0, str(REPO / "src"))
    from gutcourse.grading import load_config, release

    course = folder / "course"
    shutil.copytree(REPO / "coursework" / "source" / assignment, course / "source" / assignment)
    header = REPO / "coursework" / "source" / "header.ipynb"
    if header.is_file():
        shutil.copy(header, course / "source" / "header.ipynb")
    release(load_config(course_root=course), [assignment])
    target = folder / f"{assignment}.ipynb"
    shutil.copy(course / "release" / assignment / f"{assignment}.ipynb", target)
    return target


def one_check(notebook: Path, cache: Path) -> tuple[float, float]:
    """(seconds to the table, seconds to the end) of one `gutcourse check`."""
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "gutcourse.cli", "check", str(notebook)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    table = None
    for line in proc.stdout:
        if table is None and "autograded points" in line:
            table = time.perf_counter() - started
    proc.wait()
    if proc.returncode not in (0, 1) or table is None:
        raise SystemExit(f"gutcourse check failed (exit {proc.returncode})")
    return table, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", default="ps2_alpha_diversity")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="check-latency-") as tmp:
        tmp = Path(tmp)
        notebook = blank_release(args.assignment, tmp)
        cache = tmp / "cache"
        times: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": []}
        one_check(notebook, cache)  # fills the cache and the disk caches: not counted
        for _ in range(args.repeat):
            shutil.rmtree(cache, ignore_errors=True)
            times["cold"].append(one_check(notebook, cache))
            times["warm"].append(one_check(notebook, cache))
    print(f"gutcourse check on a blank {args.assignment}, {args.repeat} runs each (median; min-max)")
    for way, runs in times.items():
        table = [t for t, _ in runs]
        end = [e for _, e in runs]
        print(f"  {way}: table after {statistics.median(table):.2f} s ({min(table):.2f}-{max(table):.2f}), "
              f"command ends after {statistics.median(end):.2f} s")
    cold = statistics.median(t for t, _ in times["cold"])
    warm = statistics.median(t for t, _ in times["warm"])
    print(f"  warm/cold (table): {warm / cold:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
