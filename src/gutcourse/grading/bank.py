"""The misconception bank: realistic wrong answers, with the points each must lose.

One YAML file per assignment, ``tests/fixtures/<assignment>/misconceptions.yml``,
a list of entries::

    - id: share_as_percent
      misconception: Reports a percentage where a fraction was asked for.
      replace:                      # answer cell grade id -> what the student wrote
        q2_2_share_high_crp: |
          share_high_crp = float((markers["hs_crp_mg_l"] > 3).mean() * 100)
      expect:                       # test cells that must fail -> text their message contains
        q2_2_test_range: "fraction between 0 and 1"
        q2_2_test_value: ""
      points_lost: 2

Every other test cell must keep its full points. The tests of the module assert
both numbers and messages; the class simulator draws wrong answers from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ._course import repo_root


@dataclass(frozen=True)
class Misconception:
    assignment: str
    id: str
    misconception: str
    replace: dict[str, str]
    expect: dict[str, str]
    points_lost: float
    source: Path = field(compare=False, default=None)


def bank_path(assignment: str) -> Path:
    return repo_root() / "tests" / "fixtures" / assignment / "misconceptions.yml"


def load_bank(assignment: str) -> list[Misconception]:
    """The misconceptions recorded for ``assignment`` (empty list when it has none)."""
    path = bank_path(assignment)
    if not path.is_file():
        return []
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    bank = []
    for i, entry in enumerate(entries):
        missing = {"id", "misconception", "replace", "expect", "points_lost"} - set(entry)
        if missing:
            raise ValueError(f"{path}: entry {i + 1} lacks {sorted(missing)}")
        bank.append(Misconception(
            assignment=assignment,
            id=str(entry["id"]),
            misconception=str(entry["misconception"]).strip(),
            replace={str(k): str(v) for k, v in entry["replace"].items()},
            expect={str(k): str(v or "") for k, v in entry["expect"].items()},
            points_lost=float(entry["points_lost"]),
            source=path,
        ))
    ids = [m.id for m in bank]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise ValueError(f"{path}: duplicate ids {duplicated}")
    return bank
