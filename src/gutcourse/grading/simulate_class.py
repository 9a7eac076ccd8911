"""``gutcourse simulate-class``: a realistic class of submissions, deterministic for a seed.

Each simulated student has an ability; for each autograded question they
answer correctly (sometimes in an alternative valid way from the bank), make
one of the bank's known mistakes, or leave it unanswered, with probabilities
that follow from their ability and the question's difficulty (a two-parameter
logistic item model, the usual model of item response theory). A few students
hand in a blank notebook and a few a broken one (invalid JSON, a deleted test
cell, a renamed file), as real classes do.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat
import numpy as np

from ._course import course_path, course_root
from ._notebooks import fill_answers, grade_id, is_autograded_answer, is_test, question_of
from .autograde import submit
from .bank import load_alternatives, load_bank

# Design choices of the simulation (not empirical figures): roughly one student in
# twenty hands in nothing and one in twenty hands in something broken.
SHARE_BLANK = 0.05
SHARE_BROKEN = 0.05
BROKEN_KINDS = ("invalid_json", "deleted_test_cell", "renamed_notebook")
_START = _dt.datetime(2026, 1, 15, 9, 0, tzinfo=_dt.timezone.utc)


@dataclass
class SimulatedStudent:
    student: str
    profile: str  # "worked", "blank" or "broken:<kind>"
    ability: float
    answers: dict[str, str] = field(default_factory=dict)  # question -> "correct", "alt:<id>", "<misconception id>", "unanswered"


def _questions(source_nb) -> list[str]:
    return list(dict.fromkeys(question_of(grade_id(c)) for c in source_nb.cells if is_autograded_answer(c)))


def plan_class(source_nb, bank, n_students: int, seed: int) -> list[SimulatedStudent]:
    """Decide, without writing anything, what every simulated student hands in."""
    rng = np.random.default_rng(seed)
    questions = _questions(source_nb)
    wrong = {q: [m for m in bank if m.points_lost > 0 and {question_of(g) for g in m.replace} == {q}]
             for q in questions}
    right = {q: [m for m in bank if m.points_lost == 0 and {question_of(g) for g in m.replace} == {q}]
             for q in questions}
    easiness = {q: rng.normal(1.0, 0.8) for q in questions}
    n_blank = max(1, round(SHARE_BLANK * n_students)) if n_students >= 10 else 0
    n_broken = max(1, round(SHARE_BROKEN * n_students)) if n_students >= 10 else 0
    profiles = (["blank"] * n_blank
                + [f"broken:{BROKEN_KINDS[i % len(BROKEN_KINDS)]}" for i in range(n_broken)]
                + ["worked"] * (n_students - n_blank - n_broken))
    profiles = [profiles[i] for i in rng.permutation(len(profiles))]
    students = []
    for i, profile in enumerate(profiles):
        ability = float(rng.normal())
        student = SimulatedStudent(f"student{i + 1:03d}", profile, round(ability, 3))
        for q in questions:
            p_correct = 1 / (1 + math.exp(-(1.5 * ability + easiness[q])))
            u = rng.random()
            if profile == "blank":
                choice = "unanswered"
            elif u < p_correct:
                alternatives = right[q]
                choice = f"alt:{alternatives[rng.integers(len(alternatives))].id}" \
                    if alternatives and rng.random() < 0.5 else "correct"
            elif wrong[q] and u < p_correct + 0.8 * (1 - p_correct):
                choice = wrong[q][rng.integers(len(wrong[q]))].id
            else:
                choice = "unanswered"
            student.answers[q] = choice
        students.append(student)
    return students


def _notebook_for(student: SimulatedStudent, released, source_nb, bank):
    by_id = {m.id: m for m in bank}
    blank_sources = {grade_id(c): c.source for c in released.cells if is_autograded_answer(c)}
    replacements = {}
    for q, choice in student.answers.items():
        if choice == "correct":
            continue
        if choice == "unanswered":
            replacements.update({g: s for g, s in blank_sources.items() if question_of(g) == q})
        else:
            replacements.update(by_id[choice.removeprefix("alt:")].replace)
    return fill_answers(released, source_nb, replacements)


def simulate_class(config, assignment: str, n_students: int, seed: int = 0) -> list[SimulatedStudent]:
    """Write ``n_students`` submissions into ``submitted/``; replaces earlier simulated ones.

    Raises FileExistsError, before writing anything, when a submission folder it would
    write exists and was not written by an earlier simulation (a real student's work).

    Requires the assignment to be released. Returns the plan, which is also saved
    as ``.gutcourse/simulated/<assignment>.json`` in the course folder.
    """
    root = course_root(config)
    release_path = course_path(config, "release", assignment, notebook=assignment)
    if not release_path.is_file():
        raise FileNotFoundError(f"{release_path} does not exist: run `gutcourse release {assignment}` first")
    released = nbformat.read(str(release_path), as_version=4)
    source_nb = nbformat.read(str(course_path(config, "source", assignment, notebook=assignment)), as_version=4)
    bank = [m for m in load_bank(assignment) + load_alternatives(assignment) if not m.hostile]
    plan = plan_class(source_nb, bank, n_students, seed)
    manifest = root / ".gutcourse" / "simulated" / f"{assignment}.json"
    ours = set()
    if manifest.is_file():
        ours = {s["student"] for s in json.loads(manifest.read_text(encoding="utf-8"))["students"]}
    # Never replace work this command did not write: a real student may share a simulated name.
    theirs = [folder for folder in (course_path(config, "submitted", assignment, s.student)
                                    for s in plan if s.student not in ours) if folder.exists()]
    if theirs:
        raise FileExistsError(
            f"{len(theirs)} submission folder(s) were not written by simulate-class and would be replaced, "
            f"e.g. {theirs[0]}: simulate a class in another course folder (`gutcourse demo` makes one)")
    for i, student in enumerate(plan):
        folder = course_path(config, "submitted", assignment, student.student)
        shutil.rmtree(folder, ignore_errors=True)
        nb = released if student.profile == "blank" else _notebook_for(student, released, source_nb, bank)
        path = submit(config, assignment, student.student, nb, timestamp=_START + _dt.timedelta(minutes=7 * i))
        if student.profile.startswith("broken:"):
            _break(path, student.profile.split(":", 1)[1])
    manifest.parent.mkdir(parents=True, exist_ok=True)
    # Students simulated by earlier runs stay listed: their folders remain this command's to replace.
    listed = [asdict(s) for s in plan]
    named = {s.student for s in plan}
    listed += [{"student": name} for name in sorted(ours - named)]
    manifest.write_text(json.dumps({"seed": seed, "students": listed}, indent=1) + "\n", encoding="utf-8")
    return plan


def _break(path: Path, kind: str) -> None:
    """Damage a written submission the way students do by accident."""
    if kind == "invalid_json":
        text = path.read_text(encoding="utf-8")
        path.write_text(text[: len(text) // 2], encoding="utf-8")
    elif kind == "deleted_test_cell":
        nb = nbformat.read(str(path), as_version=4)
        first_test = next(i for i, c in enumerate(nb.cells) if is_test(c))
        del nb.cells[first_test]
        nbformat.write(nb, str(path))
    elif kind == "renamed_notebook":
        path.rename(path.with_name(path.stem + "-Copy1.ipynb"))
    else:
        raise ValueError(f"unknown kind of broken submission: {kind}")
