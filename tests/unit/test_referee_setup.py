"""The referee runs every setup cell in the instructor's order, and never takes a setup cell's name from the student.

Red team (issue 12): a student who drags a locked setup cell below the tests that read it
must not have the referee fetch that cell's names from the kernel, where the student set them.
"""

from gutcourse.grading.referee import Referee, trusted_order


def cells(*rows):
    return {gid: {"role": role, "source": source} for gid, role, source in rows}


TRUSTED = cells(
    ("setup", "setup", "DEPTH = 30_000"),
    ("figure", "setup", "shown = DEPTH // 1000"),
    ("q1_1_test", "test", "assert DEPTH == 30_000, DEPTH"),
)


class Link:
    """A kernel where the student has set DEPTH = 1000 (and everything else is theirs)."""

    def __init__(self):
        self.asked = []

    def ask(self, op, *args, grace):
        self.asked.append((op, *args))
        if (op, *args) == ("fetch", "DEPTH"):
            return {"ok": 1000}
        return {"missing": True}


def test_a_setup_cell_moved_below_the_tests_still_runs_before_them():
    referee = Referee(TRUSTED, ["setup", "figure", "q1_1_test"])
    referee.link = Link()
    # The submission's order: the student moved "setup" to the end, so the kernel reaches it last.
    referee.run_setup("figure")
    outputs = referee.run_test("q1_1_test")
    assert outputs == [] and referee.link.asked == []
    referee.run_setup("setup")  # already run: not again
    assert referee.done == {"setup", "figure"} and referee.setup_errors == []
    assert referee.ns["shown"] == 30


def test_a_setup_cells_name_is_never_fetched_even_when_its_order_is_unknown():
    referee = Referee(TRUSTED, None)
    referee.link = Link()
    referee.run_setup("figure")  # "setup" has not run, and nobody knows where it belongs
    outputs = referee.run_test("q1_1_test")
    assert [o.ename for o in outputs] == ["NameError"]
    assert referee.link.asked == []  # failed closed, the student's DEPTH was never read


def test_a_setup_cell_moved_above_a_test_does_not_run_before_it():
    """A later setup cell that changes the data must not reach an earlier test because the student moved it up."""
    trusted = cells(("a", "setup", "rows = [1, 2, 3]"), ("q1_1_test", "test", "assert rows == [1, 2, 3], rows"),
                    ("b", "setup", "rows.pop()"), ("q1_2_test", "test", "assert rows == [1, 2], rows"))
    referee = Referee(trusted, ["a", "q1_1_test", "b", "q1_2_test"])
    referee.link = Link()
    for gid in ("b", "a"):  # the kernel's order: "b" dragged to the top
        referee.run_setup(gid)
    assert referee.run_test("q1_1_test") == []
    assert referee.run_test("q1_2_test") == []


def test_the_order_comes_from_the_course_source_notebook(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from gutcourse.grading import load_config

    config = load_config(course_root=tmp_path)
    assert trusted_order(config, "ps9", "ps9") is None
    folder = tmp_path / "release" / "ps9"
    folder.mkdir(parents=True)
    nb = new_notebook(cells=[new_code_cell("x = 1", metadata={"nbgrader": {"grade_id": g}}) for g in ("b", "a")])
    nbformat.write(nb, str(folder / "ps9.ipynb"))
    assert trusted_order(config, "ps9", "ps9") == ["b", "a"]
    (tmp_path / "source" / "ps9").mkdir(parents=True)
    nb.cells.reverse()
    nbformat.write(nb, str(tmp_path / "source" / "ps9" / "ps9.ipynb"))
    assert trusted_order(config, "ps9", "ps9") == ["a", "b"]  # the source folder comes first


def test_a_locked_cell_with_a_magic_that_may_bind_names_fails_every_test_closed():
    """`%time LIMIT = 10` would be skipped in the grader, so LIMIT would be missing there (red team)."""
    trusted = cells(("setup", "setup", "%matplotlib inline\n%time LIMIT = 10"),
                    ("q1_1_test", "test", "assert answer <= LIMIT"))
    referee = Referee(trusted, ["setup", "q1_1_test"])
    referee.link = Link()
    outputs = referee.run_test("q1_1_test")
    assert [o.ename for o in outputs] == ["GraderError"]
    assert "%time LIMIT = 10" in outputs[0].evalue and referee.link.asked == []
    harmless = Referee(cells(("setup", "setup", "%matplotlib inline\nLIMIT = 10"),
                             ("q1_1_test", "test", "assert LIMIT == 10")), ["setup", "q1_1_test"])
    harmless.link = Link()
    assert harmless.run_test("q1_1_test") == []


def test_the_figures_a_notebook_made_in_the_grader_are_closed_after_it():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kept = plt.figure()
    referee = Referee(cells(("figure", "setup", "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()")),
                      ["figure"])
    referee.run_setup("figure")
    referee._catch_up(1)
    assert referee.ns["fig"].number in plt.get_fignums()
    referee.close()
    assert plt.get_fignums() == [kept.number]
    plt.close(kept)


def test_a_helper_an_earlier_test_defines_is_never_fetched_from_the_student():
    """A student who moves a test above the test defining its helpers must not supply them (red team, ps3)."""
    trusted = cells(("q1_1_test_points", "test", "def _plotted(ax):\n    return 1\nassert _plotted(None) == 1"),
                    ("q1_1_test_labels", "test", "assert _plotted(None) == 1"))
    referee = Referee(trusted, ["q1_1_test_points", "q1_1_test_labels"])
    referee.link = Link()
    outputs = referee.run_test("q1_1_test_labels")  # judged first: the student moved it up
    assert [o.ename for o in outputs] == ["NameError"] and referee.link.asked == []


def test_a_function_that_changes_its_input_is_reported_and_an_unchanged_input_is_not():
    from gutcourse.grading.referee import StudentFunction
    from gutcourse.handout import encode

    referee = Referee(cells(("q1_1_test", "test", "pass")), ["q1_1_test"])

    class Echo:
        def __init__(self, after):
            self.after = after

        def ask(self, op, *args, grace):
            return {"ok": None, "args": [{"ok": encode(self.after)}]}

    referee.link = Echo([1, 2, 3])
    function = StudentFunction(referee, "1", "observed_genera")
    function([1, 2, 3])
    assert referee.notes == []
    referee.link = Echo([1, 0, 3])
    given = [1, 2, 3]
    function(given)
    assert given == [1, 0, 3]
    assert referee.notes == ["`observed_genera` changed an argument a test gave it, in place; "
                             "a test that reads that argument again sees the change"]


def test_a_tests_own_argument_is_changed_back_even_if_it_took_the_id_of_a_freed_setup_object():
    """The fresh-clone proof of this session (ps2, `blind21_q41_mutates_input`): the referee kept only the ids of
    what the setup cells made; a test's table that took the id of one that had since been freed was treated as
    course data, so the student's change to it was not copied back and a wrong answer kept its point."""
    from gutcourse.grading.referee import StudentFunction
    from gutcourse.handout import encode

    referee = Referee(cells(("setup", "setup", "scratch = [0, 0, 0]"), ("q1_1_test", "test", "pass")),
                      ["setup", "q1_1_test"])
    referee._run_setup("setup")
    freed_id = id(referee.ns["scratch"])
    del referee.ns["scratch"]  # a later cell rebinds the name: the setup cell's list may be freed
    assert referee.setup_objects.get(freed_id) is not None  # held: its id cannot be reused meanwhile

    class Echo:
        def ask(self, op, *args, grace):
            return {"ok": None, "args": [{"ok": encode([1, 0, 3])}]}

    referee.link = Echo()
    given = [1, 2, 3]
    referee.setup_objects[id(given)] = [1, 2, 3]  # the same id, another object (what reuse looked like)
    StudentFunction(referee, "1", "rarefy")(given)
    assert given == [1, 0, 3]
