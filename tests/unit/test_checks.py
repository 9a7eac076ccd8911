"""gutcourse.checks: right verdicts, helpful messages, and no way around them by patching."""

import builtins
import math

import numpy as np
import pandas as pd
import pytest

from gutcourse import checks


def test_close_on_hand_checkable_values():
    assert checks.close(math.log(2), 0.6931471805599453)
    assert checks.close([1.0, 2.0], np.array([1.0, 2.0 + 1e-9]))
    assert not checks.close([1.0, 2.0], [1.0, 2.1])
    assert not checks.close([1.0], [1.0, 2.0])
    assert checks.close(float("nan"), float("nan"))
    assert not checks.close("a string", 1.0)


def test_check_close_message_names_the_variable_and_not_the_answer():
    with pytest.raises(AssertionError) as err:
        checks.check_close(0.5, 0.6931, "shannon_toy", hint="Which logarithm?")
    assert "`shannon_toy` is not the expected value. Which logarithm?" == str(err.value)
    assert "0.6931" not in str(err.value)


def test_check_type_names_what_was_expected():
    with pytest.raises(AssertionError, match="should be a pandas Series, but it is a list"):
        checks.check_type([1, 2], pd.Series, "rel", what="a pandas Series")


def test_check_series_aligns_labels_and_counts_wrong_values():
    expected = pd.Series([0.1, 0.2, 0.7], index=["s1", "s2", "s3"])
    checks.check_series(expected.iloc[::-1], expected, "x")
    with pytest.raises(AssertionError, match=r"1 of 3 values of `x` are not correct \(first: s2\)"):
        checks.check_series(pd.Series([0.1, 0.3, 0.7], index=["s1", "s2", "s3"]), expected, "x")
    with pytest.raises(AssertionError, match="1 missing \\(first: s3\\); 1 unexpected \\(first: s4\\)"):
        checks.check_series(pd.Series([0.1, 0.2, 0.7], index=["s1", "s2", "s4"]), expected, "x")
    with pytest.raises(AssertionError, match="should have 3 entries, but it has 2"):
        checks.check_series(expected.iloc[:2], expected, "x")


def test_check_values_length_and_order():
    with pytest.raises(AssertionError, match="should have 2 values, but it has 3"):
        checks.check_values([1, 2, 3], [1, 2], "v")
    with pytest.raises(AssertionError, match="2 of 2 values"):
        checks.check_values([2, 1], [1, 2], "v")


def test_redefining_comparison_functions_gains_nothing(monkeypatch):
    """What a student might do to pass every test: make every comparison say 'equal'."""
    monkeypatch.setattr(np, "isclose", lambda *a, **k: True)
    monkeypatch.setattr(np, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(math, "isclose", lambda *a, **k: True)
    monkeypatch.setattr(pd.testing, "assert_series_equal", lambda *a, **k: None)
    original_abs, original_isinstance = builtins.abs, builtins.isinstance
    # Patched builtins would break pytest itself, so they are restored before any assert.
    builtins.abs, builtins.isinstance = (lambda x: 0), (lambda *a: True)
    try:
        verdicts = [checks.close(1.0, 2.0)]
        for check, args in ((checks.check_close, (1.0, 2.0, "x")),
                            (checks.check_values, ([1.0, 2.0], [1.0, 3.0], "x")),
                            (checks.check_type, ([1], pd.Series, "x"))):
            try:
                check(*args)
                verdicts.append(True)
            except AssertionError:
                verdicts.append(False)
    finally:
        builtins.abs, builtins.isinstance = original_abs, original_isinstance
    assert verdicts == [False, False, False, False]


# --- library_calls: "by hand" rules (issue 12's blind review) -------------------------------------------
import importlib as _importlib  # noqa: E402

import numpy as _np  # noqa: E402
from scipy import stats as _stats  # noqa: E402

from gutcourse import checks as _checks  # noqa: E402

_PROBE = (_np.array([7, 0, 3, 12, 1]),)


def _calls(function, **kw):
    return _checks.library_calls(function, banned_modules=("skbio",), banned=(_stats.entropy,), probe=_PROBE, **kw)


def _default_argument(c, _h=_stats.entropy):
    return _h(c)


def _built_name(c):
    return getattr(_stats, "entr" + "opy")(c)


def _imported_inside(c):
    return _importlib.import_module("skbio.diversity.alpha").shannon(c)


def _evaluated(c):
    return eval("_stats." + "entropy")(c)


_TOOLS = {"H": lambda c: _stats.entropy(c)}


def _in_a_dict(c):
    return _TOOLS["H"](c)


@pytest.mark.parametrize("function, name", [
    (_default_argument, "entropy"), (_built_name, "entropy"), (_imported_inside, "shannon"),
    (_evaluated, "entropy"), (_in_a_dict, "entropy"),
])
def test_library_calls_no_name_shows_are_found_when_the_function_runs(function, name):
    assert _calls(function) == [name]
    assert _checks.library_calls(function, banned_modules=("skbio",), banned=(_stats.entropy,)) == []  # reading only


entropy = _stats.entropy  # the global a student imported to compare with


def _by_hand(c):
    p = _np.asarray(c, dtype=float)
    p = p[p > 0] / p.sum()
    entropy = [x * _np.log(x) for x in p]  # a local named like the library function
    return -sum(entropy[i] for i in range(len(entropy)))


def _other_statistics(c):
    return _stats.mannwhitneyu(c, c[::-1]).pvalue  # decorated like entropy, but not banned


def _own_shannon(c):
    return _stats.entropy(c)


def _own_pielou(c):
    return _own_shannon(c) / _np.log(_np.count_nonzero(c))


def test_library_calls_leave_honest_functions_alone():
    assert _calls(_by_hand) == []
    assert _calls(_other_statistics) == []
    assert _calls(_own_pielou, skip=[_own_shannon]) == []  # pielou may call the student's own shannon
    assert _calls(_own_pielou) == ["entropy"]


def test_library_calls_walks_a_graph_of_mutual_modules_once():
    """Red team (round 6): two modules whose attributes all point at each other, and n names, cost n**3 walks in the
    grader (n=100: 69 s). Each (node, depth) is now walked once per function."""
    import time

    n = 300
    names = [f"n{i}" for i in range(n)]
    graph = {"nodes": [
        {"module": "__main__", "name": "f", "qual": "__main__.f", "kind": "function", "skip": False,
         "names": names, "edges": {k: 1 for k in names}},
        {"module": "m1", "name": "m1", "qual": "m1", "kind": "module", "skip": False, "attrs": {k: 2 for k in names}},
        {"module": "m2", "name": "m2", "qual": "m2", "kind": "module", "skip": False, "attrs": {k: 1 for k in names}},
    ]}

    class StudentFunction:  # what checks.library_calls sees from the referee
        def _reach_graph(self, skip=()):
            return graph

    started = time.process_time()
    assert checks.library_calls(StudentFunction(), banned_modules=("m2",)) == ["m2"]
    assert checks.library_calls(StudentFunction(), banned_modules=("statsmodels",)) == []
    assert time.process_time() - started < 2.0
