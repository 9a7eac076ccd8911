"""Explorers of notebooks 04-07: pure functions on hand-checkable inputs, controls, plots."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

import gutcourse.plotting as gp
import gutcourse.widgets as gw
from gutcourse.widgets import _diversity, _ordination, _study

from ._widget_helpers import PNG_MAGIC, find, walk


def _only(widget, type_name: str):
    matches = [w for w in walk(widget) if type(w).__name__ == type_name]
    assert len(matches) == 1, f"expected one {type_name}, found {len(matches)}"
    return matches[0]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def _toy_counts() -> pd.DataFrame:
    index = pd.Index(["a", "b", "c"], name="sample_id")
    return pd.DataFrame([[5, 3, 2, 0], [1, 1, 0, 0], [10, 0, 0, 10]], index=index,
                        columns=["t1", "t2", "t3", "t4"])


# --- compositionality --------------------------------------------------------------------------


def test_compositional_shift_doubling_one_of_two_equal_taxa():
    r = gw.compositional_shift({"A": 1.0, "B": 1.0}, "A", 2.0)
    assert r["relative"].loc["before"].tolist() == pytest.approx([0.5, 0.5])
    assert r["relative"].loc["after"].tolist() == pytest.approx([2 / 3, 1 / 3])
    # B did not change at all, yet its share fell by a third.
    assert r["apparent_fold"]["B"] == pytest.approx(2 / 3)
    assert r["absolute"].loc["after", "B"] == 1.0


def test_compositional_shift_fold_one_changes_nothing():
    r = gw.compositional_shift(taxon="Bacteroides", fold=1.0)
    assert np.allclose(r["apparent_fold"].to_numpy(), 1.0)
    assert r["relative"].sum(axis=1).tolist() == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"taxon": "Nope"}, "taxon"),
    ({"fold": 0.0}, "fold"),
    ({"absolute": {"A": -1.0, "B": 2.0}, "taxon": "A"}, "absolute"),
])
def test_compositional_shift_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gw.compositional_shift(**kwargs)


def test_composition_explorer_controls_redraw():
    widget = gw.composition_explorer()
    fold = find(widget, "true fold")
    find(widget, "taxon")
    html = _only(widget, "HTML")
    image = _only(widget, "Image")
    assert bytes(image.value).startswith(PNG_MAGIC)
    before = html.value
    fold.value = 1.0
    assert html.value != before
    assert "looks x1.00" in html.value


# --- alpha diversity ---------------------------------------------------------------------------


def test_alpha_profile_even_community_matches_closed_forms():
    m = gw.alpha_profile(4, 1.0)
    assert m["proportions"].tolist() == pytest.approx([0.25] * 4)
    assert m["shannon_e"] == pytest.approx(math.log(4))
    assert m["shannon_2"] == pytest.approx(2.0)
    assert m["effective_number"] == pytest.approx(4.0)
    assert m["simpson"] == pytest.approx(0.75)
    assert m["dominance"] == pytest.approx(0.25)
    assert m["inverse_simpson"] == pytest.approx(4.0)
    assert m["pielou"] == pytest.approx(1.0)


def test_alpha_profile_ratio_one_half_on_two_taxa():
    m = gw.alpha_profile(2, 0.5)
    p = np.array([2 / 3, 1 / 3])
    assert m["proportions"].tolist() == pytest.approx(p.tolist())
    assert m["shannon_e"] == pytest.approx(-(p * np.log(p)).sum())
    assert m["simpson"] == pytest.approx(1 - (p**2).sum())
    assert m["simpson"] + m["dominance"] == pytest.approx(1.0)
    # The log-base trap: bits = nats / ln 2.
    assert m["shannon_2"] == pytest.approx(m["shannon_e"] / math.log(2))


def test_alpha_profile_single_taxon():
    m = gw.alpha_profile(1, 0.3)
    assert m["shannon_e"] == 0.0 and m["simpson"] == 0.0 and m["dominance"] == 1.0
    assert m["pielou"] == 1.0  # scikit-bio's convention for the undefined 0/0


def test_alpha_profile_less_even_is_less_diverse():
    even, skewed = gw.alpha_profile(20, 1.0), gw.alpha_profile(20, 0.5)
    assert skewed["shannon_e"] < even["shannon_e"]
    assert skewed["simpson"] < even["simpson"]
    assert skewed["richness"] == even["richness"] == 20


@pytest.mark.parametrize(("richness", "ratio"), [(0, 0.5), (201, 0.5), (5, 0.0), (5, 1.5)])
def test_alpha_profile_rejects_bad_input(richness, ratio):
    with pytest.raises(ValueError):
        gw.alpha_profile(richness, ratio)


def test_alpha_explorer_sliders_drive_readout():
    widget = gw.alpha_explorer()
    richness = find(widget, "richness")
    evenness = find(widget, "evenness r")
    html = _only(widget, "HTML")
    assert bytes(_only(widget, "Image").value).startswith(PNG_MAGIC)
    richness.value, evenness.value = 4, 1.0
    assert "1.386" in html.value  # ln 4
    assert "2.000" in html.value  # log2 4
    richness.value = 8
    assert "2.079" in html.value  # ln 8


# --- rarefaction -------------------------------------------------------------------------------


def test_expected_richness_hand_case():
    # Counts (2, 1, 1), N = 4, subsample 2 reads:
    # P(miss taxon with 2) = C(2,2)/C(4,2) = 1/6; P(miss a singleton) = C(3,2)/C(4,2) = 1/2.
    # E[S_2] = (1 - 1/6) + 2 * (1 - 1/2) = 11/6.
    view = gw.rarefaction_view(pd.DataFrame([[2, 1, 1]], index=["s"]), 2)
    assert view["at_depth"]["s"] == pytest.approx(11 / 6)


def test_rarefaction_full_depth_gives_observed_richness_and_one_read_gives_one():
    counts = _toy_counts()
    view = gw.rarefaction_view(counts, 2)
    assert view["dropped"] == []
    full = view["curves"]
    assert full.loc[1].tolist() == pytest.approx([1.0, 1.0, 1.0])
    # At each sample's own total the expectation is its observed richness.
    assert gw.rarefaction_view(counts.loc[["a"]], 10)["at_depth"]["a"] == pytest.approx(3.0)
    assert gw.rarefaction_view(counts.loc[["c"]], 20)["at_depth"]["c"] == pytest.approx(2.0)


def test_rarefaction_drops_shallow_samples_and_counts_lost_reads():
    counts = _toy_counts()  # totals 10, 2, 20
    view = gw.rarefaction_view(counts, 10)
    assert view["dropped"] == ["b"]
    assert list(view["at_depth"].index) == ["a", "c"]
    assert view["reads_discarded"] == pytest.approx(1 - 20 / 32)
    assert np.isnan(view["curves"]["b"].iloc[-1])


def test_rarefaction_matches_random_subsampling_on_average():
    from skbio.stats import subsample_counts

    row = np.array([50, 20, 10, 5, 3, 1, 1])
    expected = gw.rarefaction_view(pd.DataFrame([row], index=["s"]), 15)["at_depth"]["s"]
    draws = [(subsample_counts(row, 15, seed=i) > 0).sum() for i in range(2000)]
    assert np.mean(draws) == pytest.approx(expected, abs=0.05)


def test_rarefaction_rejects_non_integer_counts():
    with pytest.raises(ValueError, match="integer"):
        gw.rarefaction_view(pd.DataFrame([[0.5, 0.5]]), 1)


def test_rarefaction_explorer_depth_slider():
    counts = _diversity._benchmark_counts(n_samples=12, n_taxa=20)
    widget = gw.rarefaction_explorer(counts)
    slider = find(widget, "depth (reads)")
    html = _only(widget, "HTML")
    assert "12 of 12" in html.value
    slider.value = slider.max
    assert "1 of 12" in html.value


# --- ordination --------------------------------------------------------------------------------


def _ordination_inputs():
    case = _ordination._benchmark_case()
    return case["table"], case["metadata"]


def test_bray_curtis_worked_example_through_the_explorer_distance():
    table = pd.DataFrame([[4, 0, 3, 2, 6], [0, 8, 0, 0, 5]], index=["x", "y"])
    dm = _ordination._distance_matrix(table, "braycurtis")
    assert dm["x", "y"] == pytest.approx(0.642857, abs=1e-6)
    assert _ordination._distance_matrix(table, "jaccard")["x", "y"] == pytest.approx(0.8)


def test_permanova_matches_scikit_bio():
    from skbio.stats.distance import permanova

    table, metadata = _ordination_inputs()
    dm = _ordination._distance_matrix(table, "braycurtis")
    labels = metadata["sex"].to_numpy()
    f, p = _ordination._permanova(dm.data, labels, 199, 0)
    reference = permanova(dm, labels, permutations=0)
    assert f == pytest.approx(reference["test statistic"])
    assert 0 < p <= 1


def test_permanova_separated_groups_give_smallest_p():
    d = np.array([[0, 1, 9, 9], [1, 0, 9, 9], [9, 9, 0, 1], [9, 9, 1, 0]], dtype=float)
    f, p = _ordination._permanova(d, np.array(["a", "a", "b", "b"]), 99, 0)
    # Pairs: 2 within groups at d = 1, 4 between at d = 9; SS = sum of d^2 over pairs / size.
    ss_total = (2 * 1 + 4 * 81) / 4
    ss_within = 1 / 2 + 1 / 2
    assert f == pytest.approx((ss_total - ss_within) / (ss_within / 2))
    # 4 samples split 2 + 2 in only 3 ways, so a third of permutations match the observed
    # split: with so few samples no p-value can be small.
    assert p == pytest.approx(1 / 3, abs=0.12)


def test_ordination_view_categorical_and_numeric():
    table, metadata = _ordination_inputs()
    view = gw.ordination_view(table, metadata, metric="braycurtis", color_by="sex")
    assert list(view["coordinates"].columns) == ["PC1", "PC2"]
    assert view["coordinates"].index.equals(table.index)
    assert view["explained"][0] >= view["explained"][1] > 0
    assert view["negative_share"] > 0  # Bray-Curtis is not Euclidean
    assert view["test"]["name"].startswith("PERMANOVA")
    numeric = gw.ordination_view(table, metadata, metric="aitchison", color_by="reads")
    assert numeric["negative_share"] == pytest.approx(0.0, abs=1e-9)  # Euclidean
    assert numeric["test"]["name"].startswith("Spearman")
    assert -1 <= numeric["test"]["statistic"] <= 1


def test_ordination_view_is_deterministic_and_sign_fixed():
    table, metadata = _ordination_inputs()
    a = gw.ordination_view(table, metadata, metric="jaccard")
    b = gw.ordination_view(table, metadata, metric="jaccard")
    pd.testing.assert_frame_equal(a["coordinates"], b["coordinates"])
    assert a["test"]["p_value"] == b["test"]["p_value"]


def test_ordination_view_rejects_bad_input():
    table, metadata = _ordination_inputs()
    with pytest.raises(ValueError, match="metric"):
        gw.ordination_view(table, metadata, metric="unifrac")
    with pytest.raises(ValueError, match="color_by"):
        gw.ordination_view(table, metadata, color_by="group")


def test_prepare_inputs_rarefies_to_the_smallest_sample():
    counts = _toy_counts()
    inputs = _ordination.prepare_inputs(counts)
    assert inputs["rarefied"].depth == 2 and list(inputs["rarefied"].index) == ["a", "b", "c"]
    assert inputs["proportions"].sum(axis=1).tolist() == pytest.approx([1, 1, 1])
    assert list(_ordination.prepare_inputs(counts, depth=10)["rarefied"].index) == ["a", "c"]


def test_no_rarefied_table_a_student_could_pass_off_as_rarefy():
    # ps2 asks students to write `rarefy`; the explorer must not hand them one.
    rarefied = _ordination.prepare_inputs(_toy_counts(), seed=1)["rarefied"]
    assert not isinstance(rarefied, (pd.DataFrame, np.ndarray))
    rarefied.distances("jaccard")
    held = [v for v in vars(rarefied).values() if isinstance(v, (pd.DataFrame, np.ndarray))]
    assert all(v.sum(axis=1).tolist() != [2, 2, 2] for v in held), "a rarefied table is kept"


def test_repeated_rarefaction_at_full_depth_gives_the_plain_distances():
    # Every sample has 10 reads: drawing all 10 without replacement returns it unchanged.
    counts = pd.DataFrame([[5, 3, 2, 0], [1, 1, 0, 8], [4, 0, 0, 6]], index=["a", "b", "c"],
                          columns=["t1", "t2", "t3", "t4"])
    rarefied = _ordination.RepeatedRarefaction(counts, depth=10, iterations=3)
    for metric in _ordination.METRICS:
        expected = _ordination._distance_matrix(counts, metric).data
        np.testing.assert_allclose(rarefied.distances(metric).data, expected, atol=1e-12)


def test_repeated_rarefaction_averages_draws_reproducibly():
    counts = _diversity._benchmark_counts(n_samples=8, n_taxa=12)
    depth = int(counts.sum(axis=1).min()) // 20
    one = _ordination.RepeatedRarefaction(counts, depth=depth, iterations=1, seed=3)
    many = _ordination.RepeatedRarefaction(counts, depth=depth, iterations=50, seed=3)
    again = _ordination.RepeatedRarefaction(counts, depth=depth, iterations=50, seed=3)
    full = _ordination._distance_matrix(counts.div(counts.sum(axis=1), axis=0), "braycurtis").data
    np.testing.assert_array_equal(many.distances("braycurtis").data,
                                  again.distances("braycurtis").data)
    # the average of many draws sits closer to the full-depth distances than one draw does
    error_one, error_many = (np.abs(r.distances("braycurtis").data - full).mean()
                             for r in (one, many))
    assert error_many < error_one
    with pytest.raises(ValueError, match="metric"):
        many.distances("unifrac")
    with pytest.raises(ValueError, match="fewer than 2 samples"):
        _ordination.RepeatedRarefaction(counts, depth=10**9)


def test_ordination_explorer_pickers_and_group_left_out():
    counts = _diversity._benchmark_counts(n_samples=20, n_taxa=15)
    metadata = pd.DataFrame({"sample_id": counts.index, "subject_id": counts.index,
                             "group": ["ME/CFS", "control"] * 10,
                             "sex": ["female", "male"] * 10,
                             "reads": counts.sum(axis=1).to_numpy()})
    widget = gw.ordination_explorer(counts, metadata)
    metric, source, color = (find(widget, d) for d in ("distance", "input", "colour by"))
    assert "group" not in color.options and "subject_id" not in color.options
    html = _only(widget, "HTML")
    before = html.value
    metric.value = "aitchison"
    assert html.value != before and "0.0%" in html.value
    source.value = "rarefied"
    assert "rarefied to" in html.value
    color.value = "reads"
    assert "Spearman" in html.value


# --- power and multiple testing ----------------------------------------------------------------


def test_power_textbook_values():
    # Equal groups of 64 give about 80% power for d = 0.5 at alpha 0.05 (two-sided t-test).
    r = gw.two_group_power(0.5, 64, 64, 0.05)
    assert r["power"] == pytest.approx(0.80, abs=0.01)
    assert r["n_per_group_needed"] == 64


def test_power_at_zero_effect_is_alpha_and_grows_with_d():
    r = gw.two_group_power(0.0, 48, 39, 0.05)
    assert r["power"] == pytest.approx(0.05)
    assert r["n_per_group_needed"] is None
    curve = r["curve"]
    assert curve.index[0] == 0.0 and curve.index[-1] == 1.5
    assert np.all(np.diff(curve.to_numpy()) >= 0)


def test_power_at_cohort_size():
    r = gw.two_group_power(0.5, 48, 39, 0.05)
    assert 0.55 < r["power"] < 0.70
    assert 0.55 < r["detectable_d"] < 0.7
    assert gw.two_group_power(r["detectable_d"], 48, 39)["power"] == pytest.approx(0.8, abs=1e-3)


def test_power_survives_large_noncentrality():
    # SciPy's noncentral t gives NaN in the lower tail for large ncp; power must stay 1.
    r = gw.two_group_power(3.0, 300, 300)
    assert r["power"] == pytest.approx(1.0)
    assert not r["curve"].isna().any()
    assert gw.two_group_power(0.5, 48, 39, alpha=0.0005)["n_per_group_needed"] > 64


def test_power_rejects_bad_input():
    with pytest.raises(ValueError):
        gw.two_group_power(0.5, 1, 39)
    with pytest.raises(ValueError):
        gw.two_group_power(-0.1)


def test_chance_findings_counts_and_bounds():
    r = gw.chance_findings(n_taxa=500, seed=3)
    assert r["pvalues"].shape == (500,)
    assert r["raw_hits"] == int(np.sum(r["pvalues"] < 0.05))
    assert r["expected_raw"] == pytest.approx(25.0)
    assert r["family_wise"] == pytest.approx(1 - 0.95**500)
    assert r["bh_hits"] <= r["raw_hits"]
    assert 5 <= r["raw_hits"] <= 50  # binomial(500, 0.05) is almost surely in this range


def test_chance_findings_are_uniform_under_the_null_on_average():
    hits = [gw.chance_findings(200, seed=s)["raw_hits"] for s in range(30)]
    assert np.mean(hits) == pytest.approx(10.0, abs=2.0)


def test_chance_findings_is_seeded():
    a, b = gw.chance_findings(50, seed=7), gw.chance_findings(50, seed=7)
    assert np.array_equal(a["pvalues"], b["pvalues"])


def test_power_explorer_controls():
    widget = gw.power_explorer()
    d = find(widget, "effect size d")
    n1 = find(widget, "n group 1")
    find(widget, "n group 2")
    find(widget, "alpha")
    html = _only(widget, "HTML")
    d.value = 0.5
    assert "63.0%" in html.value
    assert "64 per group" in html.value
    n1.value = 100
    assert "63.0%" not in html.value


def test_chance_explorer_button_draws_a_new_cohort():
    widget = gw.chance_explorer(n_taxa=100)
    seed = find(widget, "seed")
    button = find(widget, "draw a new null cohort")
    find(widget, "taxa tested")
    html = _only(widget, "HTML")
    assert "5.0" in html.value  # 100 taxa x 0.05
    button.click()
    assert seed.value == 1


# --- plots -------------------------------------------------------------------------------------


def test_taxa_barplot_pools_other_and_labels_units():
    table = pd.DataFrame(np.full((3, 10), 0.1), columns=[f"g{i}" for i in range(10)])
    ax = gp.plot_taxa_barplot(table, top_n=3, level="genus")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "Other" and len(labels) == 4
    assert "proportion" in ax.get_ylabel() and ax.get_title()
    with pytest.raises(ValueError, match="sum to 1"):
        gp.plot_taxa_barplot(table * 2)


def test_diversity_plots_have_titles_and_units():
    view = gw.rarefaction_view(_toy_counts(), 2)
    axes = [
        gp.plot_rarefaction(view["curves"], depth=2),
        gp.plot_rank_abundance(gw.alpha_profile(5, 0.5)["proportions"]),
        gp.plot_power_curve(gw.two_group_power()["curve"], effect_size=0.5),
        gp.plot_pvalue_histogram(gw.chance_findings(50)["pvalues"]),
        gp.plot_by_group(pd.Series([1.0, 2, 3, 4], name="reads"),
                         groups=pd.Series(["a", "a", "b", "b"]),
                         ylabel="sequencing depth (reads per sample)"),
    ]
    table, metadata = _ordination_inputs()
    view = gw.ordination_view(table, metadata)
    axes.append(gp.plot_ordination(view["coordinates"], color=view["color"],
                                   explained=view["explained"]))
    for ax in axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
        assert "(" in ax.get_ylabel(), ax.get_ylabel()  # a unit or scale in brackets


# --- update cases for the benchmark ------------------------------------------------------------


@pytest.mark.parametrize("module", [_diversity, _ordination, _study])
def test_update_cases_run(module):
    assert module.UPDATE_CASES
    for label, function, kwargs in module.UPDATE_CASES:
        start = time.perf_counter()
        function(**kwargs)
        assert time.perf_counter() - start < 5, label  # a smoke bound; the benchmark measures



def test_package_exports_resolve_to_their_submodules():
    import importlib

    import gutcourse.widgets as widgets

    assert widgets.__all__ == sorted(widgets._WHERE)
    for name in widgets.__all__:
        module = importlib.import_module(f"gutcourse.widgets.{widgets._WHERE[name]}")
        assert getattr(widgets, name) is getattr(module, name), name
