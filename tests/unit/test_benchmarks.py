"""The benchmark scripts still run: they are not timed here, only kept working."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"


def _run(*args, timeout=120):
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def test_explorer_benchmark_runs_once_and_reports_every_update():
    # Not timed: on a busy machine an update may go over its budget, which is the benchmark's business.
    done = _run(BENCH / "explorer_updates.py", "--repeat", "1", "--report-only")
    assert done.returncode == 0, done.stderr
    assert "updates timed" in done.stdout


def test_throughput_benchmark_parses_and_explains_itself():
    done = _run(BENCH / "grade_throughput.py", "--help")
    assert done.returncode == 0, done.stderr
    assert "--workers" in done.stdout


def test_referee_request_benchmark_runs_both_ways_once():
    done = _run(BENCH / "referee_requests.py", "--requests", "3", "--rounds", "1")
    assert done.returncode == 0, done.stderr
    assert "execute path / message of its own" in done.stdout
