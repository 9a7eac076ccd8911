"""``gutcourse check NOTEBOOK``: a learner grades their own notebook against the full tests.

The notebook is copied into a throwaway course built from the module's source
assignment, autograded there with every test (hidden ones included), and the
result is printed per question. The feedback HTML (without the hidden tests'
code) is written next to the notebook. The learner's file is only read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from ..errors import GutcourseError
from ._course import course_path, course_root, load_config, source_assignments
from ._notebooks import grade_id, question_of

if TYPE_CHECKING:
    from .autograde import SubmissionResult

# nbgrader (about a second to import) is imported by ``check_notebook`` once the kernel
# template has started, so the two overlap.

STUDENT = "self_check"


class CheckError(GutcourseError, RuntimeError):
    pass


@dataclass
class SelfCheck:
    assignment: str
    result: SubmissionResult
    feedback: Path | None


def identify_assignment(nb_path: Path, known: list[str]) -> str:
    """The assignment a notebook belongs to: by file name, else by its grade ids."""
    stem = nb_path.stem
    for name in known:
        if stem == name or stem.startswith(name):
            return name
    try:
        nb = nbformat.read(str(nb_path), as_version=4)
    except Exception as err:
        raise CheckError(f"{nb_path} is not a readable notebook ({type(err).__name__}: {err})") from None
    ids = {grade_id(c) for c in nb.cells} - {None}
    best, overlap = None, 0
    for name in known:
        source = course_path(load_config(), "source", name, notebook=name)
        source_ids = {grade_id(c) for c in nbformat.read(str(source), as_version=4).cells} - {None}
        if len(ids & source_ids) > overlap:
            best, overlap = name, len(ids & source_ids)
    if best is None:
        raise CheckError(f"{nb_path} does not look like any assignment of this module "
                         f"({', '.join(known)})")
    return best


def _prepare_sandbox(config, assignment: str, on_sandbox) -> threading.Thread:
    """Start the kernel template now and probe the sandbox in a thread, while the course is built.

    Both start other processes and mostly wait for them: on a machine with two cores they
    run beside the grader's own imports and nbgrader's release instead of before them.
    """
    from . import sandbox
    from .sandbox.forktemplate import _stop_template, warm_up_early
    from .sandbox.platform import _fork_unavailable
    from .sandbox.policy import GradingSandbox

    try:
        early = warm_up_early(config, assignment)  # its imports overlap the probe and the grader's
    except Exception:  # the kernel's own start reports whatever went wrong here
        early = False

    def work():
        try:
            platform = sandbox.detect(config)
            if on_sandbox is not None:
                on_sandbox(sandbox.describe(config, platform))
            if early and _fork_unavailable(GradingSandbox(config=config), platform):
                _stop_template()
            else:
                sandbox.warm_up(config, assignment)
        except Exception:  # the kernel's own start reports whatever went wrong here
            pass

    thread = threading.Thread(target=work, name="gutcourse-sandbox-probe", daemon=True)
    thread.start()
    return thread


def check_notebook(nb_path: str | Path, *, feedback_dir: str | Path | None = None,
                   on_result=None, on_sandbox=None) -> SelfCheck:
    """Grade ``nb_path`` against the full tests in a throwaway course.

    ``on_result`` is called with the :class:`SelfCheck` as soon as the grades are known,
    before the feedback HTML is written (the command prints its table then);
    ``on_sandbox`` with the sandbox's one-line summary.
    """
    nb_path = Path(nb_path).resolve()
    if not nb_path.is_file():
        raise CheckError(f"{nb_path}: no such file")
    real_config = load_config()
    real_root = course_root(real_config)
    assignment = identify_assignment(nb_path, source_assignments(real_root))
    probe = _prepare_sandbox(real_config, assignment, on_sandbox)
    from .autograde import autograde, submission_dir, write_timestamp
    from .feedback import generate_feedback

    from .sandbox import preload_setup_libraries

    # The grader runs the setup cells too (to judge the tests): their imports overlap the probe
    # and the template's start, instead of following them.
    preload_setup_libraries(real_config, assignment)
    import gc

    # What is loaded now stays until the check ends: collections meanwhile skip it.
    gc.freeze()
    try:
        with tempfile.TemporaryDirectory(prefix="gutcourse-check-") as tmp:
            course = Path(tmp) / "course"
            config = _released_course(real_root, assignment, course)
            target = submission_dir(config, assignment, STUDENT)
            target.mkdir(parents=True)
            shutil.copy(nb_path, target / f"{assignment}.ipynb")
            write_timestamp(target)
            probe.join()
            result = autograde(config, assignment, [STUDENT])[STUDENT]
            feedback = None
            if on_result is not None:
                on_result(SelfCheck(assignment, result, None))
            if result.error is None:
                generate_feedback(config, assignment, [STUDENT])
                html = course_path(config, "feedback", assignment, STUDENT) / f"{assignment}.html"
                if html.is_file():
                    out_dir = Path(feedback_dir) if feedback_dir else nb_path.parent
                    feedback = out_dir / f"{nb_path.stem}.feedback.html"
                    shutil.copy(html, feedback)
    finally:
        gc.unfreeze()
    return SelfCheck(assignment, result, feedback)


def release(config, assignments: list[str]) -> None:
    """:func:`gutcourse.grading.release.release`, imported when first needed."""
    from .release import release as release_now

    release_now(config, assignments)


def _released_course(real_root: Path, assignment: str, course: Path):
    """A throwaway course at ``course`` with ``assignment`` released; its configuration.

    Releasing takes seconds, and a learner checks the same assignment again and again: the
    released course is kept in the user's cache (``$XDG_CACHE_HOME/gutcourse/check``, by
    default ``~/.cache``), under a digest of everything the release reads (the assignment's
    source folder, the course header, the course configuration, the nbgrader and gutcourse
    versions), and copied from there while that digest holds. A cache that cannot be written
    is not used.
    """
    key = _release_key(real_root, assignment)
    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gutcourse" / "check"
    cached = cache_root / key
    if (cached / "course").is_dir():
        try:
            shutil.copytree(cached / "course", course)
            return load_config(course_root=course)
        except OSError:
            shutil.rmtree(course, ignore_errors=True)
    shutil.copytree(real_root / "source" / assignment, course / "source" / assignment)
    header = real_root / "source" / "header.ipynb"
    if header.is_file():
        shutil.copy(header, course / "source" / "header.ipynb")
    config = load_config(course_root=course)
    release(config, [assignment])
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_root))
        shutil.copytree(course, staging / "course")
        try:
            staging.rename(cached)  # another check may have cached it meanwhile: theirs is the same
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
        for old in sorted((p for p in cache_root.iterdir() if not p.name.startswith(".")),
                          key=lambda p: p.stat().st_mtime)[:-_CACHED_RELEASES]:
            shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass
    return config


#: Released courses kept in the cache (a few assignments, a couple of versions each).
_CACHED_RELEASES = 12


def _release_key(real_root: Path, assignment: str) -> str:
    import hashlib

    import nbgrader

    from .. import __version__ as gutcourse_version
    from ._course import repo_root

    digest = hashlib.sha256(f"{nbgrader.__version__}|{gutcourse_version}|{assignment}".encode())
    folder = real_root / "source" / assignment
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    files += [real_root / "source" / "header.ipynb", repo_root() / "nbgrader_config.py"]
    for path in files:
        digest.update(str(path.relative_to(folder) if path.is_relative_to(folder) else path.name).encode())
        digest.update(path.read_bytes() if path.is_file() else b"-")
    return f"{assignment}-{digest.hexdigest()[:20]}"


def format_check(check: SelfCheck) -> str:
    """A per-question table with the failure messages."""
    result = check.result
    if result.error:
        return f"{check.assignment}: could not be graded: {result.error.splitlines()[-1]}"
    rows: dict[str, list] = {}
    for gid, cell in result.cells.items():
        q = question_of(gid) or gid
        row = rows.setdefault(q, [0.0, 0.0, []])
        row[0] += cell.points or 0
        row[1] += cell.max_points
        if cell.message:
            row[2].append(cell.message.split(": ", 1)[-1])
    lines = [f"{check.assignment}: {result.auto_score:g} of {result.max_auto_score:g} autograded points"
             + (f" ({result.manual_pending:g} more are graded by your instructor)" if result.manual_pending else ""),
             "", f"{'question':<10} {'points':>9}  what to look at", f"{'-' * 10} {'-' * 9}  {'-' * 40}"]
    for q, (got, top, messages) in rows.items():
        label = q.replace("q", "", 1).replace("_", ".")
        lines.append(f"{label:<10} {got:>4g} / {top:<3g}  {messages[0] if messages else 'ok'}")
        lines.extend(f"{'':<10} {'':>9}  {m}" for m in messages[1:])
    if result.notes:
        lines += [""] + [f"note: {note}" for note in result.notes]
    if check.feedback:
        lines += ["", f"feedback: {check.feedback}"]
    return "\n".join(lines)
