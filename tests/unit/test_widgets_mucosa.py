"""Explorers of notebooks 08 and 09: the pure functions on hand-checkable inputs, and the widgets' controls."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gutcourse.widgets as gw
from gutcourse.widgets import _mucosa

from ._widget_helpers import PNG_MAGIC, find, walk


def _png(widget) -> bytes:
    images = [w for w in walk(widget) if type(w).__name__ == "Image"]
    assert len(images) == 1, f"expected one Image, found {len(images)}"
    return bytes(images[0].value)


def _readout(widget) -> str:
    # The first HTML widget is the readout; a source note may follow it.
    return [w for w in walk(widget) if type(w).__name__ == "HTML"][0].value


# --- exclusion profile ---------------------------------------------------------------------------


def test_exclusion_without_iga_is_one_exponential_across_the_zone():
    r = gw.exclusion_profile(50, 1.0, 0.0, points=11)
    assert r["entering"] == 1.0
    # e-fold every 10 µm at strength 1: 50 µm is e^-5.
    assert r["contact"] == pytest.approx(math.exp(-5))
    assert r["contact_per_million"] == pytest.approx(1e6 * math.exp(-5))
    assert r["log10_contact"] == pytest.approx(-5 / math.log(10))
    np.testing.assert_allclose(r["depth_um"], np.linspace(0, 50, 11))
    np.testing.assert_allclose(r["density"], np.exp(-np.linspace(0, 50, 11) / 10))


def test_iga_holds_back_coated_bacteria_at_the_edge():
    r = gw.exclusion_profile(50, 1.0, 0.5)
    assert r["entering"] == pytest.approx(1 - 0.9 * 0.5)
    assert r["contact"] == pytest.approx(0.55 * math.exp(-5))
    assert gw.exclusion_profile(50, 1.0, 1.0, coated_held_back=1.0)["log10_contact"] == -math.inf


def test_no_zone_means_everything_that_enters_touches_the_epithelium():
    r = gw.exclusion_profile(0, 2.0, 0.3)
    assert r["contact"] == pytest.approx(r["entering"]) == pytest.approx(1 - 0.27)


def test_no_antimicrobial_activity_makes_the_zone_a_gap_not_a_filter():
    assert gw.exclusion_profile(120, 0.0, 0.0)["contact"] == 1.0


def test_thicker_zone_and_stronger_peptides_each_let_fewer_through():
    thin, thick = gw.exclusion_profile(20), gw.exclusion_profile(80)
    weak, strong = gw.exclusion_profile(50, 0.5), gw.exclusion_profile(50, 2.0)
    assert thick["contact"] < thin["contact"]
    assert strong["contact"] < weak["contact"]
    # Halving the strength is the same as halving the thickness: only L * a / lambda matters.
    assert gw.exclusion_profile(50, 0.5)["contact"] == pytest.approx(gw.exclusion_profile(25, 1.0)["contact"])


def test_exclusion_rejects_bad_input_naming_the_argument():
    with pytest.raises(ValueError, match="inner_zone_um"):
        gw.exclusion_profile(-1)
    with pytest.raises(ValueError, match="iga_coating"):
        gw.exclusion_profile(50, 1.0, 1.5)
    with pytest.raises(ValueError, match="amp_strength"):
        gw.exclusion_profile(50, float("nan"))
    with pytest.raises(ValueError, match="points"):
        gw.exclusion_profile(50, points=1)


def test_exclusion_settings_cite_their_source():
    assert gw.EXCLUSION_SETTINGS["mouse colon, healthy"]["inner_zone_um"] == 50.0
    assert gw.EXCLUSION_SETTINGS["Muc2-deficient mouse (no inner layer)"]["inner_zone_um"] == 0.0
    for name, setting in gw.EXCLUSION_SETTINGS.items():
        assert "doi:10." in setting["source"] and "mouse" in setting["source"], name


def test_exclusion_explorer_sliders_move_the_readout_and_figure():
    explorer = gw.exclusion_explorer()
    assert _png(explorer).startswith(PNG_MAGIC)
    assert "50 µm inner zone" in _readout(explorer) and "<b>73%</b>" in _readout(explorer)
    assert "4,919" in _readout(explorer)  # 0.73 * e^-5 * 1e6
    before_png, before = _png(explorer), _readout(explorer)
    find(explorer, "Inner zone (µm)").value = 20.0
    assert _readout(explorer) != before and _png(explorer) != before_png
    find(explorer, "Antimicrobial strength").value = 0.0
    find(explorer, "IgA-coated share").value = 0.0
    assert "<b>100%</b>" in _readout(explorer) and "1,000,000" in _readout(explorer)
    find(explorer, "Start from").value = "Muc2-deficient mouse (no inner layer)"
    assert find(explorer, "Inner zone (µm)").value == 0.0
    assert "Johansson et al. 2008" in [w.value for w in walk(explorer) if type(w).__name__ == "HTML"][-1]
    assert "illustrative design choices" in _readout(explorer)


# --- marker kinetics -----------------------------------------------------------------------------


def test_time_course_matches_the_closed_form_by_hand():
    course = gw.marker_time_course(19.0, stimulus_h=24.0, rise=10.0, follow_h=100.0, step_h=1.0)
    assert list(course.columns) == ["hours", "fold_over_baseline"]
    assert len(course) == 101 and course["hours"].iloc[-1] == 100.0
    k = math.log(2) / 19.0
    at = dict(zip(course["hours"], course["fold_over_baseline"], strict=True))
    assert at[0.0] == pytest.approx(1.0)
    assert at[24.0] == pytest.approx(1 + 10 * (1 - math.exp(-24 * k)))
    # One half-life after the stimulus ends, half of the excess is left.
    assert at[43.0] - 1 == pytest.approx((at[24.0] - 1) / 2)
    assert course["fold_over_baseline"].idxmax() == 24


def test_kinetics_summary_agrees_with_the_table():
    course = gw.marker_time_course(6.0, stimulus_h=12.0, step_h=0.5)
    r = gw.marker_kinetics(6.0, 30.0, stimulus_h=12.0)
    assert r["fold_at_sample"] == pytest.approx(course.set_index("hours").loc[30.0, "fold_over_baseline"])
    assert r["peak_fold"] == pytest.approx(course["fold_over_baseline"].max())
    assert r["peak_h"] == 12.0
    assert r["share_of_rise_at_sample"] == pytest.approx(0.5 ** 3)  # 18 h after the end = 3 half-lives
    assert r["hours_to_90pct_cleared"] == pytest.approx(6.0 * math.log2(10))


def test_a_short_lived_marker_has_gone_by_the_next_day_and_crp_has_not():
    short, crp = gw.marker_kinetics(1.0, 48.0), gw.marker_kinetics(19.0, 48.0)
    assert short["fold_at_sample"] == pytest.approx(1.0, abs=1e-5)
    assert crp["share_of_rise_at_sample"] == pytest.approx(0.5 ** (24 / 19))
    assert crp["fold_at_sample"] > 3


def test_no_rise_and_a_sample_during_the_stimulus():
    assert gw.marker_kinetics(19.0, 10.0, rise=0.0)["share_of_rise_at_sample"] == 0.0
    r = gw.marker_kinetics(10.0, 10.0, stimulus_h=24.0, rise=10.0)
    assert r["fold_at_sample"] == pytest.approx(1 + 10 * 0.5)


def test_kinetics_reject_bad_input_naming_the_argument():
    with pytest.raises(ValueError, match="half_life_h"):
        gw.marker_time_course(0.0)
    with pytest.raises(ValueError, match="sample_h"):
        gw.marker_kinetics(19.0, -1.0)
    with pytest.raises(ValueError, match="rise"):
        gw.marker_time_course(19.0, rise=-2.0)


def test_only_crp_half_life_is_labelled_verified():
    verified = {name for name, m in gw.MARKER_HALF_LIVES.items() if m["evidence"] == "V"}
    assert verified == {"CRP (about 19 h)"}
    assert gw.MARKER_HALF_LIVES["CRP (about 19 h)"]["half_life_h"] == 19.0
    assert "C-reactive protein" in gw.MARKER_HALF_LIVES["CRP (about 19 h)"]["source"]


def test_kinetics_explorer_sliders_move_the_readout_and_figure():
    explorer = gw.marker_kinetics_explorer()
    assert _png(explorer).startswith(PNG_MAGIC)
    assert "Half-life <b>19 h</b>" in _readout(explorer)
    before_png = _png(explorer)
    find(explorer, "Half-life (h)").value = 1.0
    assert "Half-life <b>1 h</b>" in _readout(explorer) and "reads <b>1.00&times;</b>" in _readout(explorer)
    assert _png(explorer) != before_png
    find(explorer, "Sample at (h)").value = 12.0
    find(explorer, "Stimulus (h)").value = 24.0
    assert "at <b>12 h</b>" in _readout(explorer)
    assert "illustrative design choices" in _readout(explorer)


# --- benchmark hooks and exports -----------------------------------------------------------------


def test_update_cases_run():
    assert _mucosa.UPDATE_CASES
    for label, function, kwargs in _mucosa.UPDATE_CASES:
        assert isinstance(label, str) and callable(function)
        function(**kwargs)


def test_new_names_are_exported_lazily():
    for name in _mucosa.__all__:
        assert gw._WHERE[name] == "_mucosa"
        assert getattr(gw, name) is getattr(_mucosa, name)
