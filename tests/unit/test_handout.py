"""The hand-out codec: what a grading kernel sends the referee, and what the referee refuses (issue 12)."""

import json
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from gutcourse import handout  # noqa: E402
from gutcourse.handout import HandoutError, decode, encode  # noqa: E402


def _trip(value, refs=None):
    """Encode, pass through JSON as the kernel's reply does, decode."""
    return decode(json.loads(json.dumps(encode(value, refs), allow_nan=False)))


@pytest.mark.parametrize("value", [
    None, True, 0, -3, 2 ** 70, 1.5, "text", "", b"\x00\xff", 1 + 2j,
    [1, "a", None], (1, 2.5), {"a": 1, 2: [3]}, {3, 1, 2}, frozenset({"x"}),
])
def test_plain_values_come_back_equal_and_of_the_same_type(value):
    back = _trip(value)
    assert back == value and type(back) is type(value)


def test_special_floats_come_back():
    back = _trip([float("nan"), float("inf"), -float("inf")])
    assert math.isnan(back[0]) and back[1] == float("inf") and back[2] == -float("inf")


@pytest.mark.parametrize("array", [
    np.array([[1.0, np.nan], [3.0, 4.0]]), np.arange(6, dtype="int32").reshape(2, 3), np.array([True, False]),
    np.array(["a", "bc"]), np.array(["2024-01-01", "NaT"], dtype="datetime64[ns]"), np.array([1 + 1j]),
    np.array([1, "a", None], dtype=object), np.zeros((0, 3)),
])
def test_numpy_arrays_keep_dtype_shape_and_values(array):
    back = _trip(array)
    assert back.dtype == array.dtype and back.shape == array.shape
    if array.dtype.kind == "f":
        assert np.array_equal(back, array, equal_nan=True)
    else:
        assert (back == array).all() or array.dtype.kind == "M"


def test_numpy_scalars_keep_their_type():
    for scalar in (np.float64(2.5), np.int64(3), np.bool_(True), np.float32(1.5)):
        back = _trip(scalar)
        assert type(back) is type(scalar) and back == scalar


def test_pandas_objects_keep_labels_names_and_dtypes():
    s = pd.Series([1.0, None, 3.0], index=pd.Index(["a", "b", "c"], name="subject_id"), name="crp")
    back = _trip(s)
    pd.testing.assert_series_equal(back, s)
    frame = pd.DataFrame({"group": pd.Categorical(["x", "y", "x"]), "n": pd.array([1, None, 3], dtype="Int64"),
                          "name": ["p", "q", None], "value": [0.5, 1.5, 2.5]},
                         index=pd.RangeIndex(3, name="row"))
    pd.testing.assert_frame_equal(_trip(frame), frame)
    multi = pd.Series([1, 2], index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"]))
    pd.testing.assert_series_equal(_trip(multi), multi)
    stamps = pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01"]).tz_localize("UTC"))
    pd.testing.assert_series_equal(_trip(stamps), stamps)


def test_callables_become_references_and_need_a_factory():
    refs = {}
    data = json.loads(json.dumps(encode({"f": len}, refs)))
    assert list(refs.values()) == [len]
    with pytest.raises(HandoutError, match="function"):
        decode(data)
    made = decode(data, function=lambda ref, name: (ref, name))
    assert made == {"f": ("1", "len")}


def test_other_objects_travel_as_their_type_name_only():
    class Secret:
        answer = 42

    back = _trip(Secret())
    assert isinstance(back, handout.Opaque) and type(back).__name__ == "Secret"
    assert not hasattr(back, "answer")


@pytest.mark.parametrize("data, words", [
    ({"t": "eval", "v": "__import__('os')"}, "unknown kind"),
    ({"t": "ndarray", "dtype": "f8", "shape": [3], "v": [1.0]}, "shape"),
    ({"t": "ndarray", "dtype": "V8", "shape": [1], "v": [1]}, "array of type"),
    ({"t": "ndarray", "dtype": [["a", "f8"]], "shape": [1], "v": [1]}, "text field"),
    ({"t": "ndarray", "dtype": "f8", "shape": [1], "v": [{"t": "list", "v": []}]}, "not a number"),
    ({"t": "series", "dtype": "object; import os", "objects": [], "index": {"t": "list", "v": []}, "name": None},
     "column of type"),
    ({"t": "dict", "k": [1, 2], "v": [1]}, "more keys"),
    ([1, 2], "entry of type list"),
    ({"t": "function", "ref": "1"}, "function"),
])
def test_malformed_or_unknown_entries_are_refused(data, words):
    with pytest.raises(HandoutError, match=words):
        decode(data)


def test_size_and_depth_are_bounded():
    deep = 1
    for _ in range(60):
        deep = {"t": "list", "v": [deep]}
    with pytest.raises(HandoutError, match="nested"):
        decode(deep)
    with pytest.raises(HandoutError, match="values"):
        decode({"t": "list", "v": [0] * (handout.MAX_ITEMS + 1)})
    with pytest.raises(HandoutError):
        encode(np.zeros(handout.MAX_ITEMS + 1))


def test_an_axes_is_rebuilt_with_what_it_draws():
    fig, ax = plt.subplots()
    ax.hist([1, 2, 2, 3, 10], bins=[1, 2, 5, 10])
    ax.scatter([1, 2], [3, 4], c=["red", "blue"])
    ax.plot([1, 10], [0.044, 0.44], marker="o", label="cutoff")
    ax.axline((1, 0.044), slope=0.044)
    ax.axvspan(2, 3, alpha=0.2)
    ax.set(xscale="log", yscale="log", xlabel="mannitol (%)", ylabel="lactulose (%)", title="LM")
    ax.legend()
    fig.suptitle("whole")
    back = _trip(ax)
    plt.close(fig)
    assert (back.get_xscale(), back.get_yscale()) == ("log", "log")
    assert (back.get_xlabel(), back.get_ylabel(), back.get_title()) == ("mannitol (%)", "lactulose (%)", "LM")
    bars = [(p.get_x(), p.get_width(), p.get_height()) for p in back.patches if p.get_data_transform() is back.transData]
    assert bars == [(1.0, 1.0, 1.0), (2.0, 3.0, 3.0), (5.0, 5.0, 1.0)]
    assert len(back.patches) == 4  # the span is kept, drawn outside data coordinates
    assert np.allclose(back.collections[0].get_offsets(), [[1, 3], [2, 4]])
    assert np.allclose(back.collections[0].get_facecolors()[:, :3], [[1, 0, 0], [0, 0, 1]])
    line, axline = back.lines
    assert line.get_marker() == "o" and list(line.get_ydata()) == [0.044, 0.44]
    assert isinstance(axline, matplotlib.lines.AxLine) and axline.get_slope() == 0.044
    assert back.get_legend() is not None and back.figure.get_suptitle() == "whole"


def test_scikit_bio_matrices_ordinations_and_trees_come_back():
    from skbio import DistanceMatrix, TreeNode
    from skbio.stats.ordination import pcoa

    dm = DistanceMatrix([[0, 0.5, 0.2], [0.5, 0, 0.4], [0.2, 0.4, 0]], ["a", "b", "c"])
    back = _trip(dm)
    assert isinstance(back, DistanceMatrix) and back == dm
    ordination = pcoa(dm)
    again = _trip(ordination)
    pd.testing.assert_frame_equal(again.samples, ordination.samples)
    pd.testing.assert_series_equal(again.proportion_explained, ordination.proportion_explained)
    assert again.short_method_name == ordination.short_method_name
    tree = TreeNode.read(["((a:1,b:2)x:0.5,c:3)root;"])
    rebuilt = _trip(tree)
    assert str(rebuilt) == str(tree) and rebuilt.find("b").length == 2


def test_wide_text_arrays_and_huge_drawings_are_refused_before_they_cost_memory():
    # 30 bytes that would have numpy allocate 400 MB (red-team of the referee).
    with pytest.raises(HandoutError, match="MB|wider"):
        decode({"t": "ndarray", "dtype": "<U100000000", "shape": [1], "v": ["a"]})
    with pytest.raises(HandoutError, match="MB"):
        decode({"t": "ndarray", "dtype": "<U1000", "shape": [70000], "v": ["a"] * 70000})
    spec = encode(plt.subplots()[1])
    spec["patches"] = [{"kind": "rectangle", "in_data": True, "x": 0, "y": 0, "width": 1, "height": 1}] * 2001
    with pytest.raises(HandoutError, match="more than 2000 patches"):
        decode(spec)
    fig, ax = plt.subplots()
    ax.bar(range(2001), 1)
    with pytest.raises(HandoutError, match="more than 2000 patches"):
        encode(ax)
    plt.close("all")


def test_a_student_function_never_changes_the_course_data_it_is_given():
    """What a function does to its arguments is copied back to the test's own data, not to the setup's."""
    from gutcourse.grading.referee import Referee, StudentFunction

    referee = Referee({"setup": {"role": "setup",
                                 "source": "import pandas as pd\nmeta = pd.DataFrame({'a': [1.0, 2.0]})"},
                       "q1_1_test": {"role": "test", "source": "gate_shares(meta)"}})
    referee.run_setup("setup")
    changed = pd.DataFrame({"a": [100.0, 200.0]})

    class Link:
        def ask(self, op, *args, grace):
            return {"ok": None, "args": [{"ok": encode(changed)}]}

    referee.link = Link()
    function = StudentFunction(referee, "1", "gate_shares")
    meta = referee.ns["meta"]
    function(meta)
    assert meta["a"].tolist() == [1.0, 2.0]
    copy = meta.copy()
    function(copy)
    assert copy["a"].tolist() == [100.0, 200.0]


def test_setup_cells_never_ask_the_kernel():
    """A locked cell that shows the student's results stops there in the referee; nothing is fetched (red-team)."""
    from gutcourse.grading.referee import Referee

    referee = Referee({"figure": {"role": "setup", "source": "x = 1\nshown = gates.plot()"},
                       "q1_1_test": {"role": "test", "source": "assert x == 1"}})

    class Link:
        def ask(self, op, *args, grace):
            raise AssertionError("a setup cell asked the kernel")

    referee.link = Link()
    referee.run_setup("figure")
    assert referee.ns["x"] == 1 and referee.setup_errors == []


def test_invented_type_names_cannot_fill_the_graders_memory():
    """A kernel that hands out 300,000 values, each of a new type name, gets at most a bounded number of types."""
    values = {"t": "list", "v": [{"t": "opaque", "type": f"T{i}", "module": f"m{i}"} for i in range(3000)]}
    decode(values)
    assert len(handout._opaque_types) <= handout.MAX_OPAQUE_TYPES


def test_wide_tables_of_one_type_travel_as_one_block_and_come_back_equal():
    counts = pd.DataFrame(np.arange(600).reshape(20, 30), index=[f"s{i}" for i in range(20)],
                          columns=pd.Index([f"g{j}" for j in range(30)], name="genus"))
    assert "block" in encode(counts)
    pd.testing.assert_frame_equal(_trip(counts), counts)
    shares = counts / counts.sum(axis=1).to_numpy()[:, None]
    shares.iloc[0, 0] = np.nan
    pd.testing.assert_frame_equal(_trip(shares), shares)
    with pytest.raises(HandoutError, match="block"):
        bad = json.loads(json.dumps(encode(counts)))
        bad["block"]["shape"] = [30, 20]
        decode(bad)


def test_call_each_runs_every_call_in_one_request_as_a_loop_would():
    """checks.call_each: one request to the kernel; results, the first error and changed arguments as with single calls."""
    from gutcourse import checks, handout
    from gutcourse.grading.referee import Referee, StudentFunction

    def scale(values, factor=2):
        if factor < 0:
            raise ValueError("negative factor")
        values[0] = -1.0
        return values * factor

    asked = []

    class Link:  # the kernel's side runs here, on the same handout code
        seconds = 60.0

        def ask(self, op, *args, grace):
            asked.append(op)
            return json.loads(getattr(handout, op)(*args))

        def deadline(self):
            return self.seconds

    referee = Referee({})
    referee.link = Link()
    handout._refs["call-each-test"] = scale
    try:
        function = StudentFunction(referee, "call-each-test", "scale")
        arrays = [np.array([1.0, 2.0]), np.array([3.0, 4.0])]
        calls = [((arrays[0],), {}), ((arrays[1],), {"factor": 3})]
        got = checks.call_each(function, calls)
        assert len(asked) == 1
        expected = checks.call_each(scale, [((np.array([1.0, 2.0]),), {}), ((np.array([3.0, 4.0]),), {"factor": 3})])
        assert [g.tolist() for g in got] == [e.tolist() for e in expected] == [[-2.0, 4.0], [-3.0, 12.0]]
        assert [a.tolist() for a in arrays] == [[-1.0, 2.0], [-1.0, 4.0]]  # changed in place, as in the kernel
        with pytest.raises(ValueError, match="negative factor"):
            checks.call_each(function, [((np.array([1.0]),), {}), ((np.array([1.0]),), {"factor": -1})])
        with pytest.raises(ValueError, match="negative factor"):
            checks.call_each(scale, [((np.array([1.0]),), {"factor": -1})])
        assert checks.call_each(function, []) == []

        # One object returned again and again, changed in between: each call's result as it returned.
        kept = []

        def counter(n):
            kept[:] = [n]
            return kept

        handout._refs["call-each-test"] = counter
        assert checks.call_each(function, [((n,), {}) for n in range(3)]) == [[0], [1], [2]]
        assert checks.call_each(counter, [((n,), {}) for n in range(3)]) == [[0], [1], [2]]  # in a kernel too
        # Out of time between calls (an interrupt one call swallowed): stopped, as a timeout.
        from gutcourse.grading.referee import TooSlow

        referee.link.seconds = -1.0
        with pytest.raises(TooSlow):
            checks.call_each(function, [((n,), {}) for n in range(3)])
    finally:
        handout._refs.pop("call-each-test", None)


def test_an_answer_too_large_to_send_is_refused_in_the_kernel():
    from gutcourse import handout

    reply = json.loads(handout._reply({"ok": "x" * (handout.MAX_REPLY_TEXT + 1)}))
    assert "ok" not in reply and "MB" in reply["unreadable"]


def test_the_kernel_reports_arguments_it_left_unchanged_as_none():
    """The grader need not encode its copy of an argument again when the kernel found it unchanged."""
    untouched, touched = np.array([1.0, 2.0]), [1, 2]
    sent = [encode(untouched), encode(touched)]
    touched.append(3)
    after = handout._after([untouched, touched], sent)
    assert after[0] is None and decode(after[1]["ok"]) == [1, 2, 3]
    assert handout._after([untouched], None)[0] == {"ok": encode(untouched)}  # nothing to compare with: sent back


def test_wide_text_arrays_are_counted_together():
    """Red team (round 6): 12 arrays of 64 empty texts typed 1,000,000 characters wide (a few hundred bytes of
    hand-out) each passed the per-array limit and made the grader allocate 3.2 GB; arrays now count together."""
    arr = {"t": "ndarray", "dtype": "<U1000000", "shape": [64], "v": [""] * 64}
    with pytest.raises(HandoutError, match="in all"):
        decode({"t": "list", "v": [arr] * 12})
    assert len(decode({"t": "list", "v": [{"t": "ndarray", "dtype": "<U3", "shape": [2], "v": ["a", "b"]}] * 50})) == 50


def test_a_time_zone_travels_by_name_never_as_a_path():
    """Red team (round 7): a column typed `datetime64[ns, dateutil//usr/share/zoneinfo/UTC]` made the grader
    (root) open that path as a time-zone file; only zone names are read now."""
    column = {"t": "series", "name": None, "index": encode(pd.RangeIndex(1)), "timestamps": ["2024-01-01T00:00:00"]}
    for zone in ("dateutil//usr/share/zoneinfo/UTC", "/etc/hostname", "../../etc/hostname", "dateutil/../x"):
        with pytest.raises(HandoutError, match="column of type"):
            decode({**column, "dtype": f"datetime64[ns, {zone}]"})
    for zone in ("UTC", "Europe/Paris", "America/Argentina/Buenos_Aires"):
        series = pd.Series(pd.to_datetime(["2024-01-01"]).tz_localize(zone))
        assert str(_trip(series).dtype) == str(series.dtype)
