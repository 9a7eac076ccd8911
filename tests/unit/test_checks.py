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
