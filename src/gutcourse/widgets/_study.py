"""Explorers for notebook 07: power at a fixed cohort size, and findings by chance.

Both pure functions know nothing about the course cohort except its shape
(how many people per group, how many taxa); they never see its values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import optimize, stats

__all__ = ["two_group_power", "power_explorer", "chance_findings", "chance_explorer"]

_EFFECT_GRID = np.round(np.linspace(0.0, 1.5, 61), 4)
_MAX_N = 5000


def _t_power(d, n1, n2, alpha):
    """Power of a two-sided two-sample t-test (equal variances) via the noncentral t."""
    d = np.asarray(d, dtype=float)
    n1 = np.asarray(n1, dtype=float)
    n2 = np.asarray(n2, dtype=float)
    df = n1 + n2 - 2
    ncp = d * np.sqrt(n1 * n2 / (n1 + n2))
    crit = stats.t.ppf(1 - alpha / 2, df)
    # SciPy's noncentral t returns NaN for the lower tail once ncp exceeds about 8,
    # where the true value is below 1e-20; count it as 0.
    lower = np.nan_to_num(stats.nct.cdf(-crit, df, ncp), nan=0.0)
    return stats.nct.sf(crit, df, ncp) + lower


def two_group_power(effect_size: float = 0.5, n1: int = 48, n2: int = 39,
                    alpha: float = 0.05, target: float = 0.8) -> dict:
    """Power to detect a standardized difference between two groups of fixed size.

    Uses the two-sided, equal-variance two-sample t-test, whose power has a closed
    form: with :math:`\\delta = d\\sqrt{n_1 n_2/(n_1+n_2)}` and
    :math:`t^* = t_{1-\\alpha/2,\\,n_1+n_2-2}`,

    .. math::

        \\text{power} = P(T_{\\nu,\\delta} > t^*) + P(T_{\\nu,\\delta} < -t^*)

    where :math:`T_{\\nu,\\delta}` is noncentral t with :math:`\\nu = n_1+n_2-2`.

    Parameters
    ----------
    effect_size : float
        Cohen's d: the difference in means divided by the common standard deviation.
    n1, n2 : int
        Group sizes (>= 2 each).
    alpha : float
        Two-sided significance level.
    target : float
        Power for which the required (equal) group size is reported.

    Returns
    -------
    dict
        ``power`` at ``effect_size``; ``curve``: Series of power indexed by d from
        0 to 1.5; ``n_per_group_needed``: the smallest equal group size reaching
        ``target`` at ``effect_size`` (None when d = 0 or above 5000 per group);
        ``detectable_d``: the smallest d reaching ``target`` at ``n1``, ``n2``
        (to 1e-4).
    """
    if n1 < 2 or n2 < 2:
        raise ValueError("`n1` and `n2` must be at least 2")
    if not 0 < alpha < 1:
        raise ValueError("`alpha` must be between 0 and 1")
    if effect_size < 0:
        raise ValueError("`effect_size` must be non-negative (it is a distance)")
    power = float(_t_power(effect_size, n1, n2, alpha))
    curve = pd.Series(_t_power(_EFFECT_GRID, n1, n2, alpha), index=_EFFECT_GRID,
                      name="power")
    curve.index.name = "cohens_d"
    needed = None
    # Power rises monotonically with n and with d, so bisection needs ~15 evaluations
    # instead of a scan over thousands of sizes.
    if effect_size > 0 and _t_power(effect_size, _MAX_N, _MAX_N, alpha) >= target:
        low, high = 2, _MAX_N
        while low < high:
            middle = (low + high) // 2
            if _t_power(effect_size, middle, middle, alpha) >= target:
                high = middle
            else:
                low = middle + 1
        needed = int(low)
    detectable = float(optimize.brentq(
        lambda d: _t_power(d, n1, n2, alpha) - target, 0.0, 50.0, xtol=1e-4))
    return {"power": power, "curve": curve, "n_per_group_needed": needed,
            "detectable_d": detectable}


def power_explorer(n1: int = 48, n2: int = 39, effect_size: float = 0.5):
    """Sliders for effect size, group sizes and alpha; power curve and readout redraw."""
    import ipywidgets as w

    from ..plotting import plot_power_curve
    from ._diversity import _figure_png, _image_widget, _table_html

    style = {"description_width": "initial"}
    d_slider = w.FloatSlider(value=effect_size, min=0.0, max=1.5, step=0.05,
                             description="effect size d", continuous_update=False, style=style)
    n1_slider = w.IntSlider(value=n1, min=5, max=300, description="n group 1",
                            continuous_update=False, style=style)
    n2_slider = w.IntSlider(value=n2, min=5, max=300, description="n group 2",
                            continuous_update=False, style=style)
    alpha = w.Dropdown(options=[0.05, 0.01, 0.001, 0.05 / 100], value=0.05,
                       description="alpha", style=style)
    readout = w.HTML()
    image = _image_widget(b"")

    def update(*_):
        r = two_group_power(d_slider.value, n1_slider.value, n2_slider.value, alpha.value)
        image.value = _figure_png(
            lambda ax: plot_power_curve(
                r["curve"], ax=ax, effect_size=d_slider.value,
                title=(f"Power with {n1_slider.value} vs {n2_slider.value}, "
                       f"alpha = {alpha.value:g}")),
            figsize=(5.5, 3.6))
        needed = r["n_per_group_needed"]
        readout.value = _table_html([
            ("power at this d", f"{r['power']:.1%}"),
            ("chance of missing a real effect (type II error)", f"{1 - r['power']:.1%}"),
            ("smallest d detected with 80% power", f"{r['detectable_d']:.2f}"),
            ("equal group size for 80% power at this d",
             "-" if needed is None else f"{needed} per group"),
        ], "Two-sided two-sample t-test")

    for control in (d_slider, n1_slider, n2_slider, alpha):
        control.observe(update, names="value")
    update()
    return w.VBox([w.HBox([d_slider, alpha]), w.HBox([n1_slider, n2_slider]),
                   w.HBox([image, readout])])


def chance_findings(n_taxa: int = 100, n1: int = 48, n2: int = 39, alpha: float = 0.05,
                    seed: int = 0) -> dict:
    """How many taxa look different between two groups when none truly is.

    Every taxon is drawn from the same skewed distribution in both groups
    (log-normal, so there is nothing to find), each is compared with a
    two-sided Mann-Whitney U test, and the p-values are then adjusted with the
    Benjamini-Hochberg procedure (``scipy.stats.false_discovery_control``).

    Parameters
    ----------
    n_taxa : int
        Number of independent taxa tested (1-5000).
    n1, n2 : int
        Group sizes.
    alpha : float
        Significance level, for raw and for adjusted p-values.
    seed : int
        Seed of the simulated null data.

    Returns
    -------
    dict
        ``pvalues`` (ndarray, shape (n_taxa,)), ``raw_hits`` (number with
        p < alpha), ``bh_hits`` (number with BH-adjusted p < alpha),
        ``expected_raw`` (n_taxa * alpha), ``family_wise`` (probability of at
        least one raw hit, 1 - (1 - alpha)^n_taxa, for independent tests).
    """
    n_taxa = int(n_taxa)
    if not 1 <= n_taxa <= 5000:
        raise ValueError("`n_taxa` must be between 1 and 5000")
    if n1 < 2 or n2 < 2:
        raise ValueError("`n1` and `n2` must be at least 2")
    if not 0 < alpha < 1:
        raise ValueError("`alpha` must be between 0 and 1")
    rng = np.random.default_rng(seed)
    values = rng.lognormal(mean=0.0, sigma=1.0, size=(n1 + n2, n_taxa))
    pvalues = stats.mannwhitneyu(values[:n1], values[n1:], alternative="two-sided",
                                 axis=0, method="asymptotic").pvalue
    adjusted = stats.false_discovery_control(pvalues, method="bh")
    return {"pvalues": pvalues, "raw_hits": int(np.sum(pvalues < alpha)),
            "bh_hits": int(np.sum(adjusted < alpha)), "expected_raw": n_taxa * alpha,
            "family_wise": 1 - (1 - alpha) ** n_taxa}


def chance_explorer(n_taxa: int = 100, n1: int = 48, n2: int = 39):
    """Sliders for how many taxa are tested and alpha; a button draws a fresh null cohort."""
    import ipywidgets as w

    from ..plotting import plot_pvalue_histogram
    from ._diversity import _figure_png, _image_widget, _table_html

    style = {"description_width": "initial"}
    taxa = w.IntSlider(value=n_taxa, min=10, max=2000, step=10, description="taxa tested",
                       continuous_update=False, style=style)
    alpha = w.Dropdown(options=[0.1, 0.05, 0.01, 0.001], value=0.05, description="alpha",
                       style=style)
    redraw = w.Button(description="draw a new null cohort", icon="refresh")
    seed = w.IntText(value=0, description="seed", layout=w.Layout(width="140px"))
    readout = w.HTML()
    image = _image_widget(b"")

    def update(*_):
        r = chance_findings(taxa.value, n1, n2, alpha.value, seed.value)
        image.value = _figure_png(
            lambda ax: plot_pvalue_histogram(
                r["pvalues"], ax=ax, alpha=alpha.value,
                title=f"{taxa.value} taxa, {n1} vs {n2}, no real difference"),
            figsize=(5.5, 3.6))
        readout.value = _table_html([
            ("taxa with p < alpha", f"{r['raw_hits']}"),
            ("expected by chance (taxa x alpha)", f"{r['expected_raw']:.1f}"),
            ("chance of at least one hit", f"{r['family_wise']:.1%}"),
            ("after Benjamini-Hochberg", f"{r['bh_hits']}"),
        ], "Every one of these hits is a false positive")

    def next_seed(_):
        seed.value += 1

    for control in (taxa, alpha, seed):
        control.observe(update, names="value")
    redraw.on_click(next_seed)
    update()
    return w.VBox([w.HBox([taxa, alpha]), w.HBox([redraw, seed]), w.HBox([image, readout])])


UPDATE_CASES: list[tuple[str, Callable, dict]] = [
    ("power: effect-size slider", two_group_power,
     {"effect_size": 0.5, "n1": 48, "n2": 39, "alpha": 0.05}),
    ("chance findings: taxa slider (200 taxa)", chance_findings,
     {"n_taxa": 200, "n1": 48, "n2": 39, "alpha": 0.05, "seed": 1}),
    ("chance findings: taxa slider (2000 taxa)", chance_findings,
     {"n_taxa": 2000, "n1": 48, "n2": 39, "alpha": 0.05, "seed": 1}),
]
