"""The ``gutcourse`` command: one subcommand per instructor or learner job."""

from __future__ import annotations

import argparse
import sys


def _cmd_data(args) -> int:
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
    from gutcourse.grading import ReleaseError, load_config, release

    try:
        names = release(load_config(), args.assignments or None)
    except ReleaseError as err:
        print(f"gutcourse release: {err}", file=sys.stderr)
        return 1
    print(f"released: {', '.join(names)}")
    return 0


def _cmd_demo(args) -> int:
    from gutcourse.grading import load_config, run_demo

    rows = run_demo(load_config())
    return 1 if any(err for *_, err in rows) and args.strict else 0


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
                    "microbiome diversity: datasets, release and grading.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="regenerate the datasets or verify them against checksums")
    data.add_argument("action", choices=["build", "check"])
    data.set_defaults(func=_cmd_data)

    rel = sub.add_parser("release", help="generate the student version of assignments")
    rel.add_argument("assignments", nargs="*", metavar="ASSIGNMENT", help="default: all")
    rel.set_defaults(func=_cmd_release)

    demo = sub.add_parser("demo", help="the whole instructor chain on a simulated class")
    demo.add_argument("--strict", action="store_true", help="exit 1 if any submission failed to grade")
    demo.set_defaults(func=_cmd_demo)

    ws = sub.add_parser("workspace", help="copy notebooks and released assignments into a learner "
                                          "workspace, never overwriting existing files")
    ws.add_argument("directory")
    ws.add_argument("--jupyter-config", metavar="DIR",
                    help="also write a Jupyter config dir without nbgrader's instructor tools")
    ws.set_defaults(func=_cmd_workspace)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
