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


def test_only_a_plain_string_literal_from_the_kernel_is_evaluated():
    """Red team round 9: a student's `__import__` made a reply's text "1+1+1...": gigabytes to parse."""
    for value in ['{"ok": 1}', "it's", 'a"b', "x\\y\n\t\u00e9\x00"]:
        assert referee._STRING_REPR.fullmatch(repr(value))
    for text in ["1+1+1", "'a'+'b'", "'a' 'b'", "('a')", "b'x'", "'a", "'a\nb'", "[1]"]:
        assert referee._STRING_REPR.fullmatch(text) is None, text


def test_feedback_keeps_only_a_pictures_numeric_size_from_output_metadata():
    """Red team round 9: the template writes width unquoted, so "1 onerror=..." added an event handler."""
    from gutcourse.grading.feedback import _safe_output_metadata

    assert _safe_output_metadata({"image/png": {"width": "1 onerror=alert(1)", "height": 200},
                                  "text/html": {"isolated": True}, "tags": ["x"]}) == {"image/png": {"height": 200}}
    assert _safe_output_metadata({"image/png": {"width": "640", "height": 480.5}}) == \
        {"image/png": {"width": "640", "height": 480.5}}
    assert _safe_output_metadata("junk") == {}
