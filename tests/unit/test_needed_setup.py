"""Which locked setup cells the referee runs again before judging tests (the others only show things)."""

from gutcourse.grading.referee import Referee, needed_setup


def cells(*pairs):
    """(grade id, role, source) triples as the gradebook gives them, in notebook order."""
    trusted = {gid: {"role": role, "source": source} for gid, role, source in pairs}
    return trusted, [gid for gid, _, _ in pairs]


def test_a_cell_that_only_shows_something_is_not_run():
    trusted, order = cells(
        ("setup", "setup", "import numpy as np\nfrom gutcourse import data"),
        ("load", "setup", "table = data.load('x')\ntotal = table.sum()"),
        ("figure", "setup", "import matplotlib.pyplot as plt\nplt.plot(np.median(table))"),
        ("q1_1_test", "test", "assert np.allclose(answer, total)"),
    )
    assert needed_setup(trusted, order) == {"setup", "load"}


def test_a_cell_after_the_last_test_that_reads_it_is_not_run():
    trusted, order = cells(
        ("setup", "setup", "x = 1"),
        ("q1_1_test", "test", "assert answer == x"),
        ("demo", "setup", "x = 2"),
    )
    assert needed_setup(trusted, order) == {"setup"}
    # Moved before the test, the same cell changes what the test reads.
    assert needed_setup(trusted, ["setup", "demo", "q1_1_test"]) == {"setup", "demo"}


def test_what_a_needed_cell_reads_is_needed_in_turn():
    trusted, order = cells(
        ("a", "setup", "base = 10"),
        ("b", "setup", "limit = base * 2"),
        ("c", "setup", "other = 3"),
        ("q1_1_test", "test", "assert answer < limit"),
    )
    assert needed_setup(trusted, order) == {"a", "b"}


def test_changes_through_methods_and_module_state_count():
    trusted, order = cells(
        ("a", "setup", "import numpy as np\nrows = [1, 2]"),
        ("b", "setup", "rows.append(3)"),
        ("c", "setup", "np.random.seed(0)"),
        ("d", "setup", "np.median(other)"),
        ("e", "setup", "rng = np.random.default_rng(1)\nrng.shuffle(data)"),
        ("q1_1_test", "test", "assert answer == sum(rows) + sum(data) + np.random.rand()"),
    )
    assert needed_setup(trusted, order) == {"a", "b", "c", "e"}


def test_names_named_in_strings_count_as_read():
    trusted, order = cells(
        ("a", "setup", "def helper(name):\n    return globals().get(name)"),
        ("b", "setup", "reference = 5"),
        ("q1_1_test", "test", "assert helper('reference') == 5"),
    )
    assert needed_setup(trusted, order) == {"a", "b"}


def test_unreadable_or_dynamic_cells_make_setup_run():
    trusted, order = cells(
        ("a", "setup", "x = 1"),
        ("b", "setup", "exec('y = 2')"),
        ("q1_1_test", "test", "assert answer == y"),
    )
    assert needed_setup(trusted, order) == {"a", "b"}  # what the exec'd code reads is unknown too
    trusted, order = cells(
        ("a", "setup", "x = 1"),
        ("b", "setup", "z = 2"),
        ("q1_1_test", "test", "def broken(:"),
    )
    assert needed_setup(trusted, order) == {"a", "b"}


def test_the_referee_skips_what_is_not_needed():
    trusted, order = cells(
        ("keep", "setup", "value = 41 + 1"),
        ("skip", "setup", "raise RuntimeError('a figure the tests do not read')"),
        ("q1_1_test", "test", "assert value == 42"),
    )
    referee = Referee(trusted, order)
    for gid in ("keep", "skip"):
        referee.run_setup(gid)
    assert referee.setup_errors == []
    assert referee.ns["value"] == 42


def test_a_test_that_reads_names_it_builds_makes_every_earlier_setup_cell_run():
    trusted, order = cells(
        ("a", "setup", "q1 = 1"),
        ("b", "setup", "q2 = 2"),
        ("q1_1_test", "test", "assert all(globals()[f'q{i}'] for i in (1, 2))"),
        ("demo", "setup", "shown = 3"),
    )
    assert needed_setup(trusted, order) == {"a", "b"}
