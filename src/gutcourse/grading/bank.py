"""The answer banks: realistic wrong answers and correct alternatives, with what each must cost.

Two YAML files per assignment, in ``tests/fixtures/<assignment>/``, each a list of entries.
``misconceptions.yml`` holds the wrong answers::

    - id: share_as_percent
      misconception: Reports a percentage where a fraction was asked for.
      replace:                      # answer cell grade id -> what the student wrote
        q2_2_share_high_crp: |
          share_high_crp = float((markers["hs_crp_mg_l"] > 3).mean() * 100)
      expect:                       # test cells that must fail -> text their message contains
        q2_2_test_range: "fraction between 0 and 1"
        q2_2_test_value: ""
      points_lost: 2

Every other test cell must keep its full points.
``alternatives.yml`` holds correct answers written differently from the solution, in the same
format with ``points_lost: 0`` and ``expect: {}``: each must keep every point, with no error.

The tests of the module assert both numbers and messages. The class simulator draws its
wrong answers from :func:`load_bank` and its alternative right answers from :func:`load_alternatives`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ._course import CourseNotFound, checkout_root, repo_root

_FIELDS = {"id", "misconception", "replace", "expect", "points_lost"}


@dataclass(frozen=True)
class Misconception:
    """One bank entry: a wrong answer, or (``points_lost == 0``, no ``expect``) a correct alternative."""

    assignment: str
    id: str
    misconception: str
    replace: dict[str, str]
    expect: dict[str, str]
    points_lost: float
    source: Path = field(compare=False, default=None)
    # A trick of a hostile student (red team), not a mistake a student makes: graded by the tests of
    # the tests like any entry, but never given to the realistic students of a simulated class.
    hostile: bool = False

    @property
    def is_alternative(self) -> bool:
        return self.points_lost == 0 and not self.expect


def _fixtures(assignment: str, name: str) -> Path:
    """The course's own bank file, else the one in the checkout the package runs from.

    A course copied for a new term may carry its banks (``tests/fixtures/``) or not; the
    course module's own banks stay in its repository with the other instructor tools.
    """
    checkout = checkout_root()
    try:
        own = repo_root() / "tests" / "fixtures" / assignment / name
    except CourseNotFound:
        if checkout is None:
            raise
        own = None
    if checkout is None or (own is not None and own.is_file()):
        return own
    return checkout / "tests" / "fixtures" / assignment / name


def bank_path(assignment: str) -> Path:
    return _fixtures(assignment, "misconceptions.yml")


def alternatives_path(assignment: str) -> Path:
    return _fixtures(assignment, "alternatives.yml")


def _read(path: Path, assignment: str) -> list[Misconception]:
    if not path.is_file():
        return []
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    bank = []
    for i, entry in enumerate(entries):
        missing = _FIELDS - set(entry)
        if missing:
            raise ValueError(f"{path}: entry {i + 1} lacks {sorted(missing)}")
        bank.append(Misconception(
            assignment=assignment,
            id=str(entry["id"]),
            misconception=str(entry["misconception"]).strip(),
            replace={str(k): str(v) for k, v in entry["replace"].items()},
            expect={str(k): str(v or "") for k, v in (entry["expect"] or {}).items()},
            points_lost=float(entry["points_lost"]),
            source=path,
            hostile=bool(entry.get("hostile", False)),
        ))
    ids = [m.id for m in bank]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"{path}: duplicate ids {duplicated}")
    return bank


def load_bank(assignment: str) -> list[Misconception]:
    """The wrong answers recorded for ``assignment`` (empty list when it has none).

    Entries of ``misconceptions.yml`` that cost nothing (``points_lost: 0``, an older way of
    recording a correct alternative) are left out: :func:`load_alternatives` returns them.
    """
    return [m for m in _read(bank_path(assignment), assignment) if not m.is_alternative]


def load_alternatives(assignment: str) -> list[Misconception]:
    """The correct alternatives recorded for ``assignment``: each must keep every point.

    Read from ``alternatives.yml``, followed by any zero-point entry still kept in
    ``misconceptions.yml``. Raises ValueError for an entry of ``alternatives.yml`` that
    expects to lose points, or for an id used in both files.
    """
    alternatives = _read(alternatives_path(assignment), assignment)
    for m in alternatives:
        if not m.is_alternative:
            raise ValueError(f"{m.source}: entry {m.id} is not a correct alternative "
                             f"(it needs points_lost: 0 and expect: {{}})")
    older = [m for m in _read(bank_path(assignment), assignment) if m.is_alternative]
    wrong = {m.id for m in load_bank(assignment)}
    both = sorted({m.id for m in alternatives} & ({m.id for m in older} | wrong))
    if both:
        raise ValueError(f"{alternatives_path(assignment)}: ids also used in misconceptions.yml: {both}")
    return alternatives + older
