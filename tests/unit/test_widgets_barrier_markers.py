"""Explorers of notebooks 01-03: the pure functions on hand-checkable inputs, and the widgets' controls."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gutcourse.widgets as gw
from gutcourse.widgets import _barrier, _immune, _markers

from ._widget_helpers import PNG_MAGIC, find, walk



def _png(image) -> bytes:
    return bytes(image.value)


def _only(widget, type_name: str):
    matches = [w for w in walk(widget) if type(w).__name__ == type_name]
    assert len(matches) == 1, f"expected one {type_name}, found {len(matches)}"
    return matches[0]


# --- immune census -------------------------------------------------------------------------------


def test_census_lymphocyte_claim_is_three_and_a_half_times_the_upper_estimate():
    r = gw.immune_census_check(70, "lymphocytes")
    assert r["verdict"] == "above"
    assert r["fold_over"] == pytest.approx(70 / 20)
    # 40% of 1.8e12 immune cells are lymphocytes (Sender 2023): 7.2e11.
    assert r["claimed_cells"] == pytest.approx(0.70 * 7.2e11)
    assert r["estimated_cells"] == pytest.approx(0.20 * 7.2e11)
    assert "10.1016/j.it.2007.08.009" in r["source"]


@pytest.mark.parametrize(
    ("claim", "population", "verdict"),
    [
        (10, "lymphocytes", "within"),
        (2, "lymphocytes", "below"),
        (70, "antibody-producing plasma cells", "within"),
        (80, "antibody-producing plasma cells", "above"),
        (3, "all immune cells", "within"),
        (70, "all immune cells", "above"),
    ],
)
def test_census_verdicts(claim, population, verdict):
    assert gw.immune_census_check(claim, population)["verdict"] == verdict


def test_census_without_a_total_gives_no_cell_numbers():
    r = gw.immune_census_check(50, "antibody-producing plasma cells")
    assert r["claimed_cells"] is None and r["estimated_cells"] is None and r["low_pct"] is None


def test_census_every_estimate_names_a_doi_or_labels_itself_secondary():
    for name, estimate in gw.GUT_SHARE_ESTIMATES.items():
        assert estimate["evidence"] in {"primary", "secondary"}, name
        if estimate["evidence"] == "primary":
            assert "doi:" in estimate["source"], name


def test_census_rejects_bad_input():
    with pytest.raises(KeyError, match="population"):
        gw.immune_census_check(70, "neutrophils in the moon")
    with pytest.raises(ValueError, match="claimed_pct"):
        gw.immune_census_check(120, "lymphocytes")


def test_census_explorer_controls_move_the_readout():
    explorer = gw.immune_census_explorer()
    readout, image = _only(explorer, "HTML"), _only(explorer, "Image")
    assert _png(image).startswith(PNG_MAGIC)
    before, before_png = readout.value, _png(image)
    find(explorer, "Counting").value = "lymphocytes"
    assert "3.5&times;" in readout.value and readout.value != before
    find(explorer, "Claimed gut share (%)").value = 10
    assert "consistent" in readout.value
    assert _png(image) != before_png


# --- sugar test / leak ---------------------------------------------------------------------------


def test_scenario_at_healthy_baseline_matches_hand_arithmetic():
    r = gw.sugar_test_scenario(1.0, 1.0, lactulose_dose_g=5, mannitol_dose_g=2, urine_volume_ml=500)
    assert r["lactulose_recovery_pct"] == pytest.approx(0.18)
    assert r["mannitol_recovery_pct"] == pytest.approx(18.5)
    assert r["lm_ratio"] == pytest.approx(0.18 / 18.5)
    # 0.18% of 5 g = 9 mg in 0.5 L = 18 mg/L; 18.5% of 2 g = 370 mg in 0.5 L = 740 mg/L.
    assert r["lactulose_mg_l"] == pytest.approx(18.0)
    assert r["mannitol_mg_l"] == pytest.approx(740.0)
    assert r["above_cutoff"] == {label: False for label in gw.LM_CUTOFFS}


def test_concentration_ratio_differs_from_lm_by_the_dose_ratio():
    r = gw.sugar_test_scenario(3.0, 0.9, lactulose_dose_g=5, mannitol_dose_g=2)
    assert r["concentration_ratio"] == pytest.approx(r["lm_ratio"] * 5 / 2)
    equal_doses = gw.sugar_test_scenario(3.0, 0.9, lactulose_dose_g=5, mannitol_dose_g=5)
    assert equal_doses["concentration_ratio"] == pytest.approx(equal_doses["lm_ratio"])


def test_urine_volume_changes_concentrations_not_recoveries():
    small = gw.sugar_test_scenario(4.0, urine_volume_ml=250)
    large = gw.sugar_test_scenario(4.0, urine_volume_ml=1000)
    assert small["lactulose_mg_l"] == pytest.approx(4 * large["lactulose_mg_l"])
    for key in ("lactulose_recovery_pct", "mannitol_recovery_pct", "lm_ratio"):
        assert small[key] == pytest.approx(large[key])


def test_a_ten_fold_leak_crosses_both_cutoffs_and_less_mannitol_raises_the_ratio():
    r = gw.sugar_test_scenario(10.0)
    assert r["lm_ratio"] == pytest.approx(1.8 / 18.5)
    assert all(r["above_cutoff"].values())
    assert gw.sugar_test_scenario(1.0, 0.5)["lm_ratio"] == pytest.approx(0.18 / 9.25)


def test_recovery_is_capped_at_100_percent():
    assert gw.sugar_test_scenario(1000.0)["lactulose_recovery_pct"] == 100.0


def test_scenario_rejects_non_positive_inputs():
    with pytest.raises(ValueError, match="urine_volume_ml"):
        gw.sugar_test_scenario(1.0, urine_volume_ml=0)
    with pytest.raises(ValueError, match="leak_multiplier"):
        gw.sugar_test_scenario(-1.0)


def test_leak_curve_starts_at_baseline_and_rises():
    curve = gw.leak_curve(1.0, max_multiplier=20, points=50)
    assert list(curve.columns) == ["leak_multiplier", "lm_ratio"]
    assert len(curve) == 50
    assert curve["lm_ratio"].iloc[0] == pytest.approx(gw.sugar_test_scenario(1.0)["lm_ratio"])
    assert curve["lm_ratio"].is_monotonic_increasing


def test_leak_explorer_controls_move_the_readout():
    explorer = gw.leak_explorer()
    readout = [w for w in walk(explorer) if type(w).__name__ == "HTML"][0]
    image = _only(explorer, "Image")
    assert "0.0097" in readout.value and _png(image).startswith(PNG_MAGIC)
    before_png = _png(image)
    find(explorer, "Lactulose leak ×").value = 10.0
    assert "0.0973" in readout.value
    assert _png(image) != before_png
    find(explorer, "Protocol").value = "10 g lactulose + 5 g mannitol (Sequeira 2014)"
    assert "10/5 g" in readout.value
    find(explorer, "Mannitol uptake ×").value = 0.5
    find(explorer, "Urine volume (mL)").value = 1000.0
    assert "0.1946" in readout.value
    notes = [w.value for w in walk(explorer) if type(w).__name__ == "HTML"]
    assert any("illustrative design choices" in n for n in notes)


# --- cutoffs -------------------------------------------------------------------------------------


def test_cutoff_performance_on_a_hand_checkable_table():
    values = [5, 20, 60, 80, 40, 120, 300, 50]
    ill = [False, False, False, False, True, True, True, True]
    r = gw.cutoff_performance(values, ill, 50)
    # positives (>= 50): 60, 80 (healthy) and 120, 300, 50 (ill)
    assert (r["tp"], r["fp"], r["tn"], r["fn"]) == (3, 2, 2, 1)
    assert r["sensitivity"] == pytest.approx(3 / 4)
    assert r["specificity"] == pytest.approx(2 / 4)
    assert r["ppv"] == pytest.approx(3 / 5)
    assert r["npv"] == pytest.approx(2 / 3)
    assert r["youden_j"] == pytest.approx(0.25)
    assert r["n"] == 8


def test_a_lower_cutoff_trades_specificity_for_sensitivity():
    values = [5, 20, 60, 80, 40, 120, 300, 50]
    ill = [False, False, False, False, True, True, True, True]
    low, high = gw.cutoff_performance(values, ill, 10), gw.cutoff_performance(values, ill, 100)
    assert low["sensitivity"] == 1.0 and low["specificity"] == 0.25
    assert high["sensitivity"] == 0.5 and high["specificity"] == 1.0


def test_cutoff_performance_edge_cases():
    r = gw.cutoff_performance([1.0, 2.0], [False, False], 1.5)
    assert math.isnan(r["sensitivity"]) and r["specificity"] == 0.5
    with_missing = gw.cutoff_performance([1.0, np.nan, 3.0], [False, True, True], 2.0)
    assert with_missing["n"] == 2 and with_missing["sensitivity"] == 1.0
    with pytest.raises(ValueError, match="same length"):
        gw.cutoff_performance([1.0, 2.0], [True], 1.0)
    with pytest.raises(ValueError, match="boolean"):
        gw.cutoff_performance([1.0, 2.0], ["IBD", "IBS"], 1.0)


def test_roc_table_auc():
    perfect = gw.roc_table([1, 2, 3, 10, 20, 30], [False, False, False, True, True, True])
    assert perfect.attrs["auc"] == pytest.approx(1.0)
    assert list(perfect.columns) == ["cutoff", "false_positive_rate", "true_positive_rate"]
    # one ill subject below one healthy subject: 8 of 9 pairs ordered correctly
    mixed = gw.roc_table([1, 2, 15, 10, 20, 30], [False, False, False, True, True, True])
    assert mixed.attrs["auc"] == pytest.approx(8 / 9)
    with pytest.raises(ValueError, match="both"):
        gw.roc_table([1, 2], [True, True])


def test_roc_table_agrees_with_scikit_learn_including_ties():
    from sklearn.metrics import roc_auc_score, roc_curve

    rng = np.random.default_rng(7)
    ill = rng.random(200) < 0.4
    values = np.round(np.exp(rng.normal(np.where(ill, 1.0, 0.0), 1.0)), 1)  # rounding makes ties
    table = gw.roc_table(values, ill)
    fpr, tpr, _ = roc_curve(ill, values, drop_intermediate=False)
    np.testing.assert_allclose(table["false_positive_rate"], fpr)
    np.testing.assert_allclose(table["true_positive_rate"], tpr)
    assert table.attrs["auc"] == pytest.approx(roc_auc_score(ill, values))


def test_cutoff_explorer_slider_moves_sensitivity_and_specificity():
    values = [5, 20, 60, 80, 40, 120, 300, 50]
    ill = [False, False, False, False, True, True, True, True]
    explorer = gw.cutoff_explorer(values, ill, label="fecal calprotectin (µg/g)", cutoff=50,
                                  condition_names=("IBS", "IBD"))
    readout, image = _only(explorer, "HTML"), _only(explorer, "Image")
    assert "sensitivity <b>75%</b>" in readout.value and "specificity <b>50%</b>" in readout.value
    before_png = _png(image)
    find(explorer, "Cutoff").value = 100
    assert "sensitivity <b>50%</b>" in readout.value and "specificity <b>100%</b>" in readout.value
    assert _png(image) != before_png and _png(image).startswith(PNG_MAGIC)


# --- benchmark hooks -----------------------------------------------------------------------------


@pytest.mark.parametrize("module", [_immune, _barrier, _markers])
def test_update_cases_run(module):
    assert module.UPDATE_CASES, f"{module.__name__} declares no UPDATE_CASES"
    for label, function, kwargs in module.UPDATE_CASES:
        assert isinstance(label, str) and callable(function)
        function(**kwargs)


# --- plotting helpers the explorers draw with ----------------------------------------------------


@pytest.fixture
def axes():
    from matplotlib.figure import Figure

    return Figure().add_subplot()


def test_axis_label_reads_the_unit_suffix():
    from gutcourse.plotting import axis_label

    assert axis_label("fecal_calprotectin_ug_g") == "fecal calprotectin (µg/g)"
    assert axis_label("il6_pg_ml") == "il6 (pg/mL)"
    assert axis_label("lm_ratio") == "lm ratio (no unit)"


def test_plot_marker_by_group_labels_log_axis_and_cutoffs(axes):
    import pandas as pd

    from gutcourse.plotting import plot_marker_by_group

    frame = pd.DataFrame({"group": ["a", "a", "b"], "hs_crp_mg_l": [0.5, 2.0, 8.0]})
    ax = plot_marker_by_group(frame, value="hs_crp_mg_l", ax=axes, cutoffs={"3 mg/L": 3.0})
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel() == "hs crp (mg/L)"
    assert ax.get_title() and [t.get_text() for t in ax.get_xticklabels()] == ["a\n(n=2)", "b\n(n=1)"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["3 mg/L"]
    with pytest.raises(ValueError, match="positive"):
        plot_marker_by_group(frame.assign(hs_crp_mg_l=[0.0, 1.0, 2.0]), value="hs_crp_mg_l", ax=axes)
    with pytest.raises(KeyError, match="il6"):
        plot_marker_by_group(frame, value="il6_pg_ml", ax=axes)


def test_plot_marker_histogram_shows_median_mean_and_geometric_mean(axes):
    from gutcourse.plotting import plot_marker_histogram

    ax = plot_marker_histogram([1.0, 10.0, 100.0, np.nan], ax=axes, log=True, label="IL-6 (pg/mL)")
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["median 10", "mean 37", "geometric mean 10"]
    assert ax.get_xscale() == "log" and "pg/mL" in ax.get_xlabel()


def test_plot_roc_and_lm_curve(axes):
    from matplotlib.figure import Figure

    from gutcourse.plotting import plot_lm_curve, plot_roc

    roc = gw.roc_table([1, 2, 3, 10], [False, False, True, True])
    ax = plot_roc(roc, ax=axes, point=(0.0, 1.0))
    assert "sensitivity" in ax.get_ylabel() and "specificity" in ax.get_xlabel()
    ax = plot_lm_curve(gw.leak_curve(), ax=Figure().add_subplot(), cutoffs=gw.LM_CUTOFFS, current=5.0)
    assert ax.get_yscale() == "log" and "illustrative" in ax.get_xlabel()


def test_plot_marker_histogram_log_bins_draw_every_value(axes):
    """Log bins start and end exactly at the lowest and highest value, so none is left out."""
    from gutcourse.plotting import plot_marker_histogram

    values = [0.22, 0.23, 0.26, 1.5, 3.2, 13.94, 33.38]  # 10**log10(0.22) rounds above 0.22
    ax = plot_marker_histogram(values, ax=axes, log=True, bins=5, label="hs-CRP (mg/L)")
    assert sum(p.get_height() for p in ax.patches) == len(values)
