"""The ``gutcourse`` command: one subcommand per instructor or learner job.

Every command acts on the course it is run in: the nearest folder at or above the
current one holding an ``nbgrader_config.py``, or the one ``--course DIR`` names, as
nbgrader does; never on the checkout the package was installed from.

A learner's installation (``pip install .``: no ``gutcourse.grading`` or
``gutcourse.simulate``) keeps ``gutcourse data check``; the instructor commands say
where they live instead of failing with an import error.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path


def _config(args):
    from gutcourse.grading import load_config

    return load_config(db_url=getattr(args, "db", None))


INSTRUCTOR_INSTALL = ("this is the learner's installation of gutcourse, which holds no grading tools or "
                      "dataset generator; instructors work from the course module's repository: "
                      "`make setup` there (or `pip install -e <the checkout>`), see its README")


def _has(module: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _cmd_data(args) -> int:
    if not _has("gutcourse.simulate"):
        if args.action == "build":
            print(f"gutcourse data build: {INSTRUCTOR_INSTALL}", file=sys.stderr)
            return 2
        from gutcourse.data import _data_dir, verify_files

        problems = verify_files()
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"datasets in {_data_dir()} " + ("differ from their checksums" if problems else "match their checksums"))
        return 1 if problems else 0
    from gutcourse import simulate

    if args.action == "build":
        paths = simulate.build()
        print(f"wrote {len(paths)} files to {paths[0].parent if paths else '?'}")
        return 0
    problems = simulate.check()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("datasets differ from their checksums: run `gutcourse data build` to regenerate them",
              file=sys.stderr)
        return 1
    print("datasets match their checksums")
    return 0


def _cmd_release(args) -> int:
    from gutcourse.grading import release

    names = release(_config(args), args.assignments or None)
    print(f"released: {', '.join(names)}")
    return 0


def _cmd_simulate_class(args) -> int:
    from gutcourse.grading import simulate_class
    from gutcourse.grading._course import course_root

    config = _config(args)
    plan = simulate_class(config, args.assignment, args.students, args.seed)
    kinds: dict[str, int] = {}
    for student in plan:
        kinds[student.profile] = kinds.get(student.profile, 0) + 1
    print(f"{len(plan)} submissions of {args.assignment} written to {course_root(config) / 'submitted'}: "
          + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    return 0


def _cmd_grade(args) -> int:
    from gutcourse.grading.sandbox import warm_up_workers

    config = _config(args)
    warm_up_workers(config, args.workers)  # the kernel templates import while nbgrader does, here

    from gutcourse.grading import grade_class

    outcomes = grade_class(config, args.assignment, workers=args.workers, force=args.force)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("graded", "skipped", "failed")}
    print(f"{args.assignment}: {counts['graded']} graded, {counts['skipped']} unchanged and skipped, "
          f"{counts['failed']} could not be graded")
    for o in outcomes:
        if o.status == "failed":
            print(f"  {o.student}: {o.reason}")
    noted = [o for o in outcomes if o.status == "graded" and o.notes]
    if noted:
        print("graded, with something to look at:")
        for o in noted:
            for note in o.notes:
                print(f"  {o.student}: {note}")
    if outcomes.backup:
        print(f"gradebook backed up before grading: {outcomes.backup}")
    for problem in outcomes.problems:
        print(f"gradebook check: {problem}", file=sys.stderr)
    if outcomes.problems:
        print("the gradebook check failed: `gutcourse gradebook restore` puts the backup back", file=sys.stderr)
        return 1
    return 1 if counts["failed"] and args.strict else 0


def _cmd_feedback(args) -> int:
    from gutcourse.grading import generate_feedback

    errors = generate_feedback(_config(args), args.assignment)
    failed = {s: e for s, e in errors.items() if e}
    print(f"{args.assignment}: feedback written for {len(errors) - len(failed)} students "
          f"in coursework/feedback/")
    for student, error in failed.items():
        print(f"  {student}: {error.strip().splitlines()[-1]}")
    return 0


def _cmd_report(args) -> int:
    from gutcourse.grading.report import write_class_report

    path = write_class_report(_config(args), args.assignment, args.out)
    print(f"item analysis: {path}")
    return 0


def _cmd_export(args) -> int:
    from gutcourse.grading.export import export_grades

    result = export_grades(_config(args), args.assignment, args.to, roster=args.roster, out=args.out,
                           force=args.force, title=args.title)
    for note in result.notes:
        print(note, file=sys.stderr)
    print(result.summary())
    return 0


def _cmd_check(args) -> int:
    from gutcourse.grading.learner_check import check_notebook, format_check

    def table(check):
        print(format_check(check), flush=True)

    check = check_notebook(args.notebook, on_result=table,
                           on_sandbox=lambda line: print(line, file=sys.stderr, flush=True))
    if check.feedback:
        print(f"\nfeedback: {check.feedback}")
    return 0 if check.result.error is None else 1


def _cmd_gradebook(args) -> int:
    from gutcourse.grading import backup
    from gutcourse.grading._course import course_root

    config = _config(args)
    db_url, root = config.CourseDirectory.db_url, course_root(config)
    if args.action == "list":
        backups = backup.list_backups(root)
        for path in backups:
            print(path.name)
        print(f"{len(backups)} backup(s) in {backup.backup_dir(root)}", file=sys.stderr)
        return 0
    if args.action == "backup":
        path = backup.backup_gradebook(db_url, root, label="manual")
        print(f"backed up to {path}" if path else "no gradebook yet: nothing to back up")
        return 0
    if args.action == "restore":
        restored, saved = backup.restore_gradebook(db_url, root, args.name)
        print(f"restored {restored.name}" + (f"; the gradebook it replaced is saved as {saved.name}" if saved else ""))
        return 0
    if not args.name:
        print("gutcourse gradebook check ASSIGNMENT: name the assignment", file=sys.stderr)
        return 2
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            students = [s.student.id for s in gb.find_assignment(args.name).submissions]
        except MissingEntry:
            students = []
    problems = backup.check_gradebook(db_url, args.name, students, partial_only=True)
    for problem in problems:
        print(problem)
    print(f"{args.name}: {len(students)} submissions checked, {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


def _cmd_demo(args) -> int:
    from gutcourse.grading import load_config, repo_root, run_demo

    folder = args.out or repo_root() / "demo-course"
    summaries = run_demo(load_config(), folder, assignments=args.assignments or None,
                         students=args.students, seed=args.seed, workers=args.workers)
    wrong = [s for s in summaries if s["solution"] != s["max"] or s["blank"] != 0]
    return 1 if wrong else 0


def _cmd_workspace(args) -> int:
    from gutcourse.grading import repo_root
    from gutcourse.learner import prepare_workspace, write_learner_config

    copied, kept = prepare_workspace(args.directory, repo_root())
    print(f"workspace {args.directory}: {len(copied)} file(s) copied, "
          f"{len(kept)} already there and left untouched")
    if args.jupyter_config:
        write_learner_config(args.jupyter_config)
        print(f"learner JupyterLab settings (no instructor tools) in {args.jupyter_config}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gutcourse",
        description="Course module on gut immunity, permeability, inflammation markers and "
                    "microbiome diversity: datasets, release, grading and self-checking.")
    course_help = ("the course to act on: the folder holding its nbgrader_config.py "
                   "(default: the current folder or the nearest one above it that holds one)")
    parser.add_argument("--course", metavar="DIR", type=Path, default=None, help=course_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        p.add_argument("--course", metavar="DIR", type=Path, default=argparse.SUPPRESS, help=course_help)
        return p

    data = add("data", _cmd_data, "regenerate the datasets or verify them against checksums")
    data.add_argument("action", choices=["build", "check"])

    rel = add("release", _cmd_release, "generate the student version of assignments")
    rel.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help="default: all")

    sim = add("simulate-class", _cmd_simulate_class,
              "write N realistic submissions (correct, known mistakes, blank, broken) into coursework/submitted/")
    sim.add_argument("assignment", metavar="ASSIGNMENT")
    sim.add_argument("--students", type=int, default=30)
    sim.add_argument("--seed", type=int, default=0)

    grade = add("grade", _cmd_grade, "autograde every submission in parallel; re-runs skip what is unchanged")
    grade.add_argument("assignment", metavar="ASSIGNMENT")
    grade.add_argument("--workers", type=int, default=2)
    grade.add_argument("--db", metavar="URL", help="SQLAlchemy URL of the gradebook (default: SQLite in coursework/)")
    grade.add_argument("--force", action="store_true", help="regrade unchanged submissions too")
    grade.add_argument("--strict", action="store_true", help="exit 1 if any submission could not be graded")

    fb = add("feedback", _cmd_feedback, "feedback HTML per student, without hidden tests")
    fb.add_argument("assignment", metavar="ASSIGNMENT")
    fb.add_argument("--db", metavar="URL")

    rep = add("report", _cmd_report, "item analysis: difficulty, discrimination, frequent failures (HTML, CSV, PNG)")
    rep.add_argument("assignment", metavar="ASSIGNMENT")
    rep.add_argument("--out", metavar="DIR")
    rep.add_argument("--db", metavar="URL")

    exp = add("export", _cmd_export,
              "one assignment's grades in Canvas's or Moodle's import format, or a plain CSV, "
              "with the late policy applied and the roster checked")
    exp.add_argument("assignment", metavar="ASSIGNMENT")
    exp.add_argument("--to", required=True, choices=["canvas", "moodle", "csv"])
    exp.add_argument("--roster", type=Path, metavar="FILE",
                     help="CSV mapping nbgrader student ids to LMS ids (default: use the nbgrader ids)")
    exp.add_argument("--out", type=Path, metavar="FILE",
                     help="default: coursework/exports/ASSIGNMENT-FORMAT.csv")
    exp.add_argument("--title", help="the assignment column's title (default: ASSIGNMENT); "
                                     "Canvas: 'Title (ID)' matches its assignment ID")
    exp.add_argument("--force", action="store_true", help="replace FILE if it exists")
    exp.add_argument("--db", metavar="URL")

    chk = add("check", _cmd_check, "self-study: grade one notebook against the full tests, hidden ones included")
    chk.add_argument("notebook", metavar="NOTEBOOK")

    gbk = add("gradebook", _cmd_gradebook,
              "list, make or restore gradebook backups (one is made before every grading run), or check it")
    gbk.add_argument("action", choices=["list", "backup", "restore", "check"])
    gbk.add_argument("name", nargs="?", metavar="BACKUP|ASSIGNMENT",
                     help="restore: the backup to put back (default: the newest made before a grading run); "
                          "check: the assignment")
    gbk.add_argument("--db", metavar="URL")

    demo = add("demo", _cmd_demo, "the whole instructor chain on a simulated class, in a course folder of its own")
    demo.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help="default: every assignment")
    demo.add_argument("--out", type=Path, default=None,
                      help="the demo's course folder (default: demo-course/ in the repository); "
                           "emptied on each run, and refused if something else is in it")
    demo.add_argument("--students", type=int, default=30)
    demo.add_argument("--seed", type=int, default=2026)
    demo.add_argument("--workers", type=int, default=2)

    ws = add("workspace", _cmd_workspace,
             "copy notebooks and released assignments into a learner workspace, never overwriting files")
    ws.add_argument("directory")
    ws.add_argument("--jupyter-config", metavar="DIR",
                    help="also write a Jupyter config dir without nbgrader's instructor tools")
    return parser


def main(argv: list[str] | None = None) -> int:
    import os

    args = build_parser().parse_args(argv)
    if args.course is not None:
        course = args.course.expanduser().resolve()
        if not (course / "nbgrader_config.py").is_file():
            print(f"gutcourse {args.command}: --course {args.course}: no nbgrader_config.py in {course}",
                  file=sys.stderr)
            return 2
        os.environ["GUTCOURSE_ROOT"] = str(course)  # grading workers and kernels' launchers inherit it
    if args.command != "data" and not _has("gutcourse.grading"):
        print(f"gutcourse {args.command}: {INSTRUCTOR_INSTALL}", file=sys.stderr)
        return 2
    if args.command == "data":
        return args.func(args)
    # nbgrader's gradebook code trips SQLAlchemy warnings that say nothing to a user.
    warnings.filterwarnings("ignore", module="nbgrader")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    from gutcourse.errors import GutcourseError

    try:
        return args.func(args)
    except (GutcourseError, FileExistsError, FileNotFoundError) as err:
        print(f"gutcourse {args.command}: {err}", file=sys.stderr)
        return 1
    finally:
        _give_back()


def _give_back() -> None:
    """Run as root on a course another account owns (a hub's grader): leave its files with that account."""
    from gutcourse.grading._course import CourseNotFound, give_back, repo_root

    try:
        give_back(repo_root())
    except CourseNotFound:
        pass


if __name__ == "__main__":
    sys.exit(main())
