"""How the tests of the tests pack bank entries into shared submissions ("rounds"), and unpack them."""

from gutcourse.grading.bank import Misconception
from gutcourse.grading.verify import Verification, _names, plan_rounds, settle_rounds


def entry(id, replace, expect=None, points_lost=1.0):
    return Misconception("psx", id, id, replace, expect or {}, points_lost)


def test_names_follow_python_scopes():
    defined, read = _names("shares = [g / total for g in groups]\ndef f(a):\n    return a + offset\n")
    assert defined == {"shares", "f"}
    assert read == {"total", "groups", "offset"}


def test_names_count_in_place_changes_as_definitions():
    defined, _ = _names("table['x'] = 1\nother.attr = 2\nframe.sort_values('a', inplace=True)\ndel rows[0]\n")
    assert {"table", "other", "frame", "rows"} <= defined
    assert _names("def broken(:\n") is None


# A solution notebook: q1 defines a, q2 defines b, q3's answer reads both.
CELLS = [
    ("q1_1_a", "a = 1"), ("q1_1_test", "assert a == 1"),
    ("q2_1_b", "b = 2"), ("q2_1_test", "assert b == 2"),
    ("q3_1_c", "c = a + b"), ("q3_1_test", "assert c == a + b"),
    ("q4_1_d", "d = 4"), ("q4_1_test", "assert d == 4"),
]
TESTS = {gid for gid, _ in CELLS if gid.endswith("_test")}


def test_independent_entries_share_a_round():
    rounds = plan_rounds([entry("wrong_a", {"q1_1_a": "a = 0"}), entry("wrong_d", {"q4_1_d": "d = 0"})], CELLS, TESTS)
    assert [[m.id for m in r] for r in rounds] == [["wrong_a", "wrong_d"]]


def test_entries_on_one_question_never_share_a_round():
    rounds = plan_rounds([entry("one", {"q4_1_d": "d = 0"}), entry("two", {"q4_1_d": "d = 5"})], CELLS, TESTS)
    assert len(rounds) == 2


def test_entries_that_read_what_another_binds_are_kept_apart_when_the_rounds_leave_room():
    # Question 4 has two entries, so two rounds are needed anyway: wrong_c (whose question's
    # tests read `a`) goes to the round wrong_a is not in.
    bank = [entry("wrong_a", {"q1_1_a": "a = 0"}), entry("wrong_c", {"q3_1_c": "c = 0"}, {"q3_1_test": ""}),
            entry("d_one", {"q4_1_d": "d = 0"}), entry("d_two", {"q4_1_d": "d = 5"})]
    rounds = [{m.id for m in r} for r in plan_rounds(bank, CELLS, TESTS)]
    assert sorted(map(sorted, rounds)) == [["d_one", "wrong_a"], ["d_two", "wrong_c"]]
    # The same for an answer that reads a helper another entry's answer binds.
    bank = [entry("wrong_a", {"q1_1_a": "a = 0\nhelper = 3"}), entry("uses_helper", {"q4_1_d": "d = helper + 1"}),
            entry("d_two", {"q4_1_d": "d = 5"})]
    rounds = [{m.id for m in r} for r in plan_rounds(bank, CELLS, TESTS)]
    assert sorted(map(sorted, rounds)) == [["d_two", "wrong_a"], ["uses_helper"]]


def test_entries_that_meet_share_a_round_rather_than_open_one():
    # One round is all the questions need; if the two meet, the round is split when it is graded.
    rounds = plan_rounds([entry("wrong_a", {"q1_1_a": "a = 0"}),
                          entry("wrong_c", {"q3_1_c": "c = 0"}, {"q3_1_test": ""})], CELLS, TESTS)
    assert len(rounds) == 1


def test_unreadable_code_gets_a_round_of_its_own():
    rounds = plan_rounds([entry("broken", {"q1_1_a": "a = (("}), entry("wrong_d", {"q4_1_d": "d = 0"})],
                         CELLS, TESTS)
    assert len(rounds) == 2


def test_a_spoilt_round_is_halved_down_to_the_entries_that_meet():
    members = [entry(f"m{i}", {}) for i in range(8)]
    graded = []

    def problems_of(part, student):
        ids = {m.id for m in part}
        return [f"misconception {student}: interaction"] if {"m1", "m6"} <= ids or "m3" in ids else []

    report = Verification("psx")
    settle_rounds([(members, "round01", problems_of)], lambda parts: graded.extend(s for _, s in parts), report)
    # m3 is wrong on its own: found alone. m1 and m6 only together: each passes in its half.
    assert report.problems == ["misconception mc_m3: interaction"]
    assert set(report.verified) == {f"m{i}" for i in range(8)} - {"m3"}
    assert "mc_m3" in graded and len(graded) < len(members)


def test_nbgraders_metadata_check_still_rejects_bad_metadata():
    import nbformat
    import pytest
    from jsonschema import ValidationError

    import gutcourse.grading  # noqa: F401  (installs the cached validator)
    from nbgrader.nbgraderformat import MetadataValidator

    cell = nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": {
        "schema_version": 3, "grade": True, "solution": False, "locked": True,
        "grade_id": "q1_1_test", "points": "two", "task": False}})
    with pytest.raises(ValidationError, match="'two' is not of type 'number'"):
        MetadataValidator().validate_cell(cell)
    cell.metadata["nbgrader"]["points"] = 2
    MetadataValidator().validate_cell(cell)
