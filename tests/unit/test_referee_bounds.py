"""What the grader parses from a kernel is bounded before it is parsed (red team round 8)."""

import json

import numpy as np
import pytest

from gutcourse import handout
from gutcourse.grading import referee


def test_json_that_would_fill_the_graders_memory_is_refused_before_parsing():
    bomb = '{"ok":[' + "[]," * (referee.MAX_CONTAINERS + 1) + "[]]}"  # 3 MB of text, 80 MB parsed
    with pytest.raises(referee._TooManyObjects, match="too large to read"):
        referee._check_parse_size(bomb)
    with pytest.raises(referee._TooManyObjects):
        referee._check_parse_size(bomb.encode())
    with pytest.raises(referee._TooManyObjects):
        referee._check_parse_size("[" + "0," * (referee.MAX_COMMAS + 1) + "0]")


def test_the_largest_hand_out_still_parses():
    """A hand-out holds at most MAX_ITEMS values: the biggest array one may hold is within the bounds."""
    values = np.arange(handout.MAX_ITEMS - 10, dtype=float)
    text = json.dumps({"ok": handout.encode({"a": values, "frame": {"x": [1, 2, 3]}})})
    referee._check_parse_size(text)
    referee._check_parse_size(text.encode())
    assert len(json.loads(text)["ok"]) > 0
