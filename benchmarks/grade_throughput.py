"""Grading throughput: sequential `nbgrader autograde` against `gutcourse grade`.

One simulated class (40 submissions of ps2_alpha_diversity by default) is graded
several ways in one run, each in its own copy of a throwaway course:

1. `nbgrader autograde ASSIGNMENT --force` with the course's `nbgrader_config.py` and
   kernels started as new interpreters (the fork server off): the baseline, what an
   instructor of this course gets without `gutcourse grade`;
2. `gutcourse grade ASSIGNMENT --workers N`, kernels started as new interpreters;
3. `gutcourse grade ASSIGNMENT --workers N`, kernels forked from each worker's template
   (the default where the sandbox runs in namespaces mode, as root on Linux);
4. the same with every test cell run in the student's kernel (`c.GradingSandbox.referee = []`),
   to price judging tests outside the kernel (issue 12).

`--extended` adds nbgrader with a stock configuration (no sandbox, no repair), nbgrader
with the fork server (one template, sequential), one worker, and one worker without the
sandbox. Each is timed as a whole command (start-up included). The grades of every
course-configuration method are compared and the script fails if they differ; the stock
run is compared too and where it differs the students are listed (stock nbgrader may not
grade a damaged notebook that the course's configuration repairs).

`--rounds 3` runs the baseline and method 3 twice more, in turn (method 3 first in the second
round), and prints the speed-up of each round and of their totals: this machine's speed can
drift by a third within minutes, and the two methods run minutes apart.

`--scale 40,200,400` then grades classes of those sizes with method 3 (and the baseline
at the first size) and prints seconds per submission for each: it should stay flat.

    .venv/bin/python benchmarks/grade_throughput.py [--students 40] [--workers 2] [--assignment A] [--rounds 3]
    .venv/bin/python benchmarks/grade_throughput.py --assignment ps0_orientation --scale 40,200,400
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


def _timed(cmd: list[str], course: Path, cwd: Path = REPO, config_dir: Path | None = None) -> float:
    env = _env(course)
    if config_dir is not None:
        env["GUTCOURSE_ROOT"] = str(config_dir)  # where `gutcourse` reads nbgrader_config.py
    started = time.perf_counter()
    # Exit codes are not checked: the class holds broken submissions on purpose, and
    # nbgrader exits 1 when any submission fails. The grades are compared instead.
    subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _grades(course: Path, assignment: str) -> dict:
    from gutcourse.grading import load_config, read_result
    from gutcourse.grading.classgrade import submitted_students

    config = load_config(course_root=course)
    return {s: {g: c.points for g, c in read_result(config, assignment, s).cells.items()}
            for s in submitted_students(config, assignment)}


STOCK = "nbgrader autograde, stock config"
BASELINE = "nbgrader autograde (sequential)"
NO_SANDBOX = "gutcourse grade --workers 1, no sandbox"
IN_KERNEL = "gutcourse grade --workers {W}, fork server, tests in the kernel"
# `gutcourse grade --workers 1` through the Python API, with the sandbox off in
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


def _course_config_with(folder: Path, setting: str) -> Path:
    """A folder whose nbgrader_config.py is the course's plus one ``setting`` line."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nbgrader_config.py").write_text(
        f"load_subconfig('nbgrader_config.py', path={str(REPO)!r})  # noqa: F821\n"
        "c = get_config()  # noqa: F821\n"
        f"{setting}\n", encoding="utf-8")
    return folder


def _no_fork_config(folder: Path) -> Path:
    """The course's configuration with the fork server off."""
    return _course_config_with(folder, "c.GradingSandbox.fork_server = False")


def _in_kernel_config(folder: Path) -> Path:
    """The course's configuration with every test cell run in the student's kernel (no referee)."""
    return _course_config_with(folder, "c.GradingSandbox.referee = []")


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


def _prepare(scratch: Path, assignment: str, students: int, name: str) -> Path:
    from gutcourse.grading import load_config, release, simulate_class

    base = scratch / name
    (base / "source").mkdir(parents=True)
    shutil.copy(REPO / "coursework" / "source" / "header.ipynb", base / "source")
    shutil.copytree(REPO / "coursework" / "source" / assignment, base / "source" / assignment)
    config = load_config(course_root=base)
    release(config, [assignment])
    simulate_class(config, assignment, students, seed=1)
    return base


def _grade_cmd(assignment: str, workers: int) -> list[str]:
    return [sys.executable, "-m", "gutcourse.cli", "grade", assignment, "--workers", str(workers)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="ps2_alpha_diversity")
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--extended", action="store_true", help="also the stock, one-worker and no-sandbox runs")
    parser.add_argument("--scale", metavar="N,N,...", help="class sizes for the seconds-per-submission check")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the baseline and the fork server again, in turn (fork server first in even "
                             "rounds), so that a machine that speeds up or slows down during the run biases "
                             "neither; the speed-up is then the ratio of the totals")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="gutcourse-bench-"))
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        os.environ[var] = str(scratch / "jupyter" / var.lower())
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    try:
        no_fork = _no_fork_config(scratch / "no-fork")
        A, W = args.assignment, args.workers
        if args.scale:
            return _scale(scratch, A, W, [int(n) for n in args.scale.split(",")], no_fork)
        base = _prepare(scratch, A, args.students, "base")
        stock_cwd = _stock_config(scratch / "stock")
        # label -> (command, working folder, configuration folder for gutcourse)
        runs = {BASELINE: (["nbgrader", "autograde", A, "--force"], no_fork, None)}
        if args.extended:
            runs[STOCK] = (["nbgrader", "autograde", A, "--force"], stock_cwd, None)
            runs["nbgrader autograde, fork server"] = (["nbgrader", "autograde", A, "--force"], REPO, None)
            runs["gutcourse grade --workers 1"] = (_grade_cmd(A, 1), REPO, None)
            runs[NO_SANDBOX] = ([sys.executable, "-c", _NO_SANDBOX_SCRIPT, A], REPO, None)
        runs[f"gutcourse grade --workers {W}, new interpreters"] = (_grade_cmd(A, W), REPO, no_fork)
        runs[f"gutcourse grade --workers {W}, fork server"] = (_grade_cmd(A, W), REPO, None)
        runs[IN_KERNEL.format(W=W)] = (_grade_cmd(A, W), REPO, _in_kernel_config(scratch / "in-kernel"))
        seconds, grades = {}, {}
        for i, (label, (cmd, cwd, config_dir)) in enumerate(runs.items()):
            course = scratch / f"run{i}"
            shutil.copytree(base, course)
            seconds[label] = _timed(cmd, course, cwd, config_dir)
            grades[label] = _grades(course, A)
        fork_label = f"gutcourse grade --workers {W}, fork server"
        rounds = [(seconds[BASELINE], seconds[fork_label])]
        for r in range(1, args.rounds):
            timed = {}
            for label in ((fork_label, BASELINE) if r % 2 else (BASELINE, fork_label)):
                cmd, cwd, config_dir = runs[label]
                course = scratch / f"round{r}-{len(timed)}"
                shutil.copytree(base, course)
                timed[label] = _timed(cmd, course, cwd, config_dir)
                grades[f"{label}, round {r + 1}"] = _grades(course, A)
                shutil.rmtree(course, ignore_errors=True)
            rounds.append((timed[BASELINE], timed[fork_label]))

        baseline = seconds[BASELINE]
        print(f"{args.students} submissions of {A}, {os.cpu_count()} CPUs")
        print(f"{'method':<46} {'seconds':>8} {'s/subm':>7} {'speed-up':>9}")
        for label, s in seconds.items():
            print(f"{label:<46} {s:8.1f} {s / args.students:7.2f} {baseline / s:8.2f}x")
        if len(rounds) > 1:
            print(f"baseline and fork server in {len(rounds)} rounds (in turn):")
            for r, (b, f) in enumerate(rounds, 1):
                print(f"  round {r}: {b:7.1f} s and {f:6.1f} s, {b / f:.2f}x")
            total_b, total_f = sum(b for b, _ in rounds), sum(f for _, f in rounds)
            print(f"  all rounds: {total_b / len(rounds) / args.students:.2f} and {total_f / len(rounds) / args.students:.2f} "
                  f"s per submission, {total_b / total_f:.2f}x")
        fork, fresh = seconds[fork_label], seconds[f"gutcourse grade --workers {W}, new interpreters"]
        print(f"fork server against new interpreters, {W} workers: {fresh / fork:.2f}x")
        in_kernel = seconds[IN_KERNEL.format(W=W)]
        print(f"tests judged outside the kernel (referee) against tests in the kernel, fork server: "
              f"{fork / args.students:.2f} s vs {in_kernel / args.students:.2f} s per submission "
              f"(ratio {fork / in_kernel:.2f})")
        if NO_SANDBOX in seconds:
            sandboxed = seconds["gutcourse grade --workers 1"]
            print(f"sandbox overhead: {sandboxed / args.students:.2f} s vs {seconds[NO_SANDBOX] / args.students:.2f} s "
                  f"per submission with one worker (ratio {sandboxed / seconds[NO_SANDBOX]:.2f})")
        reference = grades[BASELINE]
        same = all(g == reference for label, g in grades.items() if label != STOCK)
        print("grades identical across the course-config methods:", "yes" if same else "NO")
        for label, g in grades.items():
            if label == STOCK or g == reference:
                continue
            for student in sorted(set(reference) | set(g)):
                cells = {c for c in set(reference.get(student, {})) | set(g.get(student, {}))
                         if reference.get(student, {}).get(c) != g.get(student, {}).get(c)}
                for c in sorted(cells):
                    print(f"  {label}: {student} {c}: {reference.get(student, {}).get(c)} "
                          f"(baseline) against {g.get(student, {}).get(c)}")
        if STOCK in grades:
            differ = sorted(s for s in reference if grades[STOCK].get(s) != reference[s])
            print(f"{STOCK}: grades differ for {len(differ)} of {len(reference)}"
                  + (f" ({', '.join(differ)})" if differ else ""))
        return 0 if same else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _scale(scratch: Path, assignment: str, workers: int, sizes: list[int], no_fork: Path) -> int:
    """Seconds per submission of `gutcourse grade` (fork server) as the class grows."""
    rows = []
    base = _prepare(scratch, assignment, sizes[0], f"class{sizes[0]}")
    course = scratch / "baseline"
    shutil.copytree(base, course)
    baseline = _timed(["nbgrader", "autograde", assignment, "--force"], course, no_fork) / sizes[0]
    for n in sizes:
        base = base if n == sizes[0] else _prepare(scratch, assignment, n, f"class{n}")
        rows.append((n, _timed(_grade_cmd(assignment, workers), base, REPO) / n))
    print(f"{assignment}, gutcourse grade --workers {workers} with the fork server, {os.cpu_count()} CPUs")
    print(f"baseline: sequential nbgrader autograde (new interpreters), {sizes[0]} submissions: "
          f"{baseline:.2f} s per submission")
    print(f"{'submissions':>11} {'s/subm':>7} {'vs baseline':>12} {'vs first size':>14}")
    for n, per in rows:
        print(f"{n:>11} {per:7.3f} {baseline / per:11.2f}x {per / rows[0][1]:13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
