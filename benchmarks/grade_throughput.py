"""Grading throughput: plain sequential `nbgrader autograde` against `gutcourse grade`.

The same simulated class (40 submissions of ps0_orientation by default) is
graded four ways in one run, each in its own copy of a throwaway course:

1. `nbgrader autograde ASSIGNMENT --force` with the course's `nbgrader_config.py`:
   nbgrader's CLI, one submission after another, with the same sandboxed kernels
   (the baseline: what an instructor of this course gets without `gutcourse grade`);
2. the same with a stock configuration (course folder and gradebook only): nbgrader's
   own kernels, no sandbox, no repair of damaged cells; shows what the sandbox costs;
3. `gutcourse grade ASSIGNMENT --workers 1`: this package, one worker;
4. the same with the grading sandbox switched off (`GradingSandbox.enabled = False`):
   what the sandbox costs per submission, as a ratio to run 3;
5. `gutcourse grade ASSIGNMENT --workers N`: this package, N workers (default 2).

Each is timed as a whole command (start-up included). The grades of runs 1, 3, 4
and 5 are compared and the script fails if they differ; run 2 is compared too
and where it differs the students are listed (stock nbgrader may not grade a
damaged notebook that the course's configuration repairs). Usage:

    .venv/bin/python benchmarks/grade_throughput.py [--students 40] [--workers 2] [--assignment A]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _env(course: Path) -> dict:
    env = dict(os.environ, GUTCOURSE_COURSE_ROOT=str(course), MPLBACKEND="Agg")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def _timed(cmd: list[str], course: Path, cwd: Path = REPO) -> float:
    started = time.perf_counter()
    # Exit codes are not checked: the class holds broken submissions on purpose, and
    # nbgrader exits 1 when any submission fails. The grades are compared instead.
    subprocess.run(cmd, cwd=cwd, env=_env(course), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _grades(course: Path, assignment: str) -> dict:
    from gutcourse.grading import load_config, read_result
    from gutcourse.grading.classgrade import submitted_students

    config = load_config(course_root=course)
    return {s: {g: c.points for g, c in read_result(config, assignment, s).cells.items()}
            for s in submitted_students(config, assignment)}


STOCK = "nbgrader autograde, stock config"
NO_SANDBOX = "gutcourse grade --workers 1, no sandbox"
# Run 4: `gutcourse grade --workers 1` through the Python API, with the sandbox off in
# the coordinator and in the (forked) worker, which loads the configuration again.
_NO_SANDBOX_SCRIPT = """
import sys
import gutcourse.grading.classgrade as classgrade
from gutcourse.grading import grade_class

def load_config(*args, _load=classgrade.load_config, **kwargs):
    config = _load(*args, **kwargs)
    config.GradingSandbox.enabled = False
    return config

classgrade.load_config = load_config
grade_class(load_config(), sys.argv[1], workers=1, progress=None)
"""


def _stock_config(folder: Path) -> Path:
    """A folder whose nbgrader_config.py only names the course (read from the environment)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nbgrader_config.py").write_text(
        "import os\n"
        "c = get_config()  # noqa: F821\n"
        "root = os.environ['GUTCOURSE_COURSE_ROOT']\n"
        "c.CourseDirectory.root = root\n"
        "c.CourseDirectory.course_id = 'gut-immunity'\n"
        "c.CourseDirectory.db_url = 'sqlite:///' + os.path.join(root, 'gradebook.db')\n",
        encoding="utf-8")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="ps0_orientation")
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="gutcourse-bench-"))
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        os.environ[var] = str(scratch / "jupyter" / var.lower())
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    try:
        from gutcourse.grading import load_config, release, simulate_class

        base = scratch / "base"
        (base / "source").mkdir(parents=True)
        shutil.copy(REPO / "coursework" / "source" / "header.ipynb", base / "source")
        shutil.copytree(REPO / "coursework" / "source" / args.assignment, base / "source" / args.assignment)
        config = load_config(course_root=base)
        release(config, [args.assignment])
        simulate_class(config, args.assignment, args.students, seed=1)

        stock_cwd = _stock_config(scratch / "stock")
        runs = {
            "nbgrader autograde (sequential)": ["nbgrader", "autograde", args.assignment, "--force"],
            STOCK: ["nbgrader", "autograde", args.assignment, "--force"],
            "gutcourse grade --workers 1": [sys.executable, "-m", "gutcourse.cli", "grade", args.assignment,
                                            "--workers", "1"],
            NO_SANDBOX: [sys.executable, "-c", _NO_SANDBOX_SCRIPT, args.assignment],
            f"gutcourse grade --workers {args.workers}": [sys.executable, "-m", "gutcourse.cli", "grade",
                                                          args.assignment, "--workers", str(args.workers)],
        }
        seconds, grades = {}, {}
        for i, (label, cmd) in enumerate(runs.items()):
            course = scratch / f"run{i}"
            shutil.copytree(base, course)
            seconds[label] = _timed(cmd, course, stock_cwd if label == STOCK else REPO)
            grades[label] = _grades(course, args.assignment)

        baseline = next(iter(seconds.values()))
        print(f"{args.students} submissions of {args.assignment}, {os.cpu_count()} CPUs")
        print(f"{'method':<40} {'seconds':>8} {'subm/s':>7} {'speed-up':>9}")
        for label, s in seconds.items():
            print(f"{label:<40} {s:8.1f} {args.students / s:7.2f} {baseline / s:8.2f}x")
        last = list(seconds)[-1]
        print(f"{last} against {STOCK}: {seconds[STOCK] / seconds[last]:.2f}x")
        sandboxed = seconds["gutcourse grade --workers 1"]
        print(f"sandbox overhead: {sandboxed / args.students:.2f} s vs {seconds[NO_SANDBOX] / args.students:.2f} s "
              f"per submission with one worker (ratio {sandboxed / seconds[NO_SANDBOX]:.2f})")
        reference = next(iter(grades.values()))
        same = all(g == reference for label, g in grades.items() if label != STOCK)
        print("grades identical across the course-config methods:", "yes" if same else "NO")
        stock = grades[STOCK]
        differ = sorted(s for s in reference if stock.get(s) != reference[s])
        print(f"{STOCK}: grades differ for {len(differ)} of {len(reference)}"
              + (f" ({', '.join(differ)})" if differ else ""))
        return 0 if same else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
