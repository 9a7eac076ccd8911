"""Cutoff explorer: a slider moves a marker's cutoff and redraws sensitivity and specificity.

The pure functions are :func:`cutoff_performance` (one update) and :func:`roc_table`
(computed once per explorer); :func:`cutoff_explorer` is the ipywidgets front end.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from html import escape

import numpy as np
import pandas as pd

__all__ = ["cutoff_performance", "roc_table", "cutoff_explorer"]


def _as_arrays(values, has_condition) -> tuple[np.ndarray, np.ndarray]:
    """Validate the two inputs and drop pairs whose value is missing."""
    x = np.asarray(values, dtype=float).ravel()
    y = np.asarray(has_condition).ravel()
    if x.size != y.size:
        raise ValueError(f"`values` ({x.size}) and `has_condition` ({y.size}) must have the same length")
    if y.dtype != bool:
        if not np.isin(y, [0, 1, True, False]).all():
            raise ValueError("`has_condition` must be boolean (True = has the condition)")
        y = y.astype(bool)
    keep = ~np.isnan(x)
    return x[keep], y[keep]


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def cutoff_performance(values, has_condition, cutoff: float) -> dict:
    """Confusion table and test characteristics of the rule "positive if value >= cutoff".

    .. math::

        \\text{sensitivity} = \\frac{TP}{TP + FN}, \\qquad
        \\text{specificity} = \\frac{TN}{TN + FP}

    Parameters
    ----------
    values : array-like of float, shape (n_subjects,)
        Marker values; pairs with a missing value are dropped.
    has_condition : array-like of bool, shape (n_subjects,)
        The reference-standard diagnosis (True = has the condition).
    cutoff : float
        Values at or above the cutoff count as a positive test.

    Returns
    -------
    dict
        ``cutoff``, ``n``, ``tp``, ``fp``, ``tn``, ``fn`` (counts), and ``sensitivity``,
        ``specificity``, ``ppv``, ``npv``, ``youden_j`` (fractions 0-1).

    Notes
    -----
    A ratio whose denominator is zero (for example sensitivity with nobody ill) is NaN.
    PPV and NPV depend on how common the condition is in ``has_condition``;
    sensitivity and specificity do not.

    Examples
    --------
    >>> r = cutoff_performance([10, 60, 200, 30], [False, False, True, True], 50)
    >>> r["sensitivity"], r["specificity"]
    (0.5, 0.5)
    """
    x, y = _as_arrays(values, has_condition)
    positive = x >= cutoff
    tp = int(np.sum(positive & y))
    fp = int(np.sum(positive & ~y))
    tn = int(np.sum(~positive & ~y))
    fn = int(np.sum(~positive & y))
    sensitivity = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    return {
        "cutoff": float(cutoff),
        "n": int(x.size),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "sensitivity": sensitivity,
        "specificity": specificity,
        "ppv": _ratio(tp, tp + fp),
        "npv": _ratio(tn, tn + fn),
        "youden_j": sensitivity + specificity - 1,
    }


def roc_table(values, has_condition) -> pd.DataFrame:
    """Every distinct cutoff with its false-positive and true-positive rate.

    Returns
    -------
    pandas.DataFrame
        Columns ``cutoff``, ``false_positive_rate``, ``true_positive_rate``, sorted from the
        strictest cutoff (``inf``: nobody positive) to the loosest (everybody positive).
        ``DataFrame.attrs["auc"]`` holds the area under the curve (trapezoidal rule, so tied
        values count as half right).
    """
    x, y = _as_arrays(values, has_condition)
    if y.all() or not y.any():
        raise ValueError("`has_condition` needs both True and False subjects to draw a ROC curve")
    cutoffs = np.unique(x)[::-1]
    # positives at each cutoff = subjects with value >= cutoff, counted per distinct value
    order = np.searchsorted(-cutoffs, -x)
    true_pos = np.cumsum(np.bincount(order[y], minlength=cutoffs.size))
    false_pos = np.cumsum(np.bincount(order[~y], minlength=cutoffs.size))
    tpr = np.concatenate([[0.0], true_pos / y.sum()])
    fpr = np.concatenate([[0.0], false_pos / (~y).sum()])
    table = pd.DataFrame({"cutoff": np.concatenate([[np.inf], cutoffs]),
                          "false_positive_rate": fpr, "true_positive_rate": tpr})
    table.attrs["auc"] = float(np.trapezoid(tpr, fpr))
    return table


def _png(fig) -> bytes:
    """Render a matplotlib Figure to PNG bytes without pyplot (no backend, no global figure list)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _pct(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{100 * value:.0f}%"


def _readout_html(result: dict, unit: str, condition_names: tuple[str, str]) -> str:
    without, with_ = (escape(n) for n in condition_names)
    cutoff = f"{result['cutoff']:.3g} {escape(unit)}"
    return (
        f"<b>Rule: positive if value &ge; {cutoff}</b>"
        "<table style='border-collapse:collapse;margin:4px 0'>"
        f"<tr><th></th><th style='padding:0 8px'>{with_}</th><th style='padding:0 8px'>{without}</th></tr>"
        f"<tr><th style='text-align:left'>test positive</th><td style='text-align:center'>{result['tp']} (TP)</td>"
        f"<td style='text-align:center'>{result['fp']} (FP)</td></tr>"
        f"<tr><th style='text-align:left'>test negative</th><td style='text-align:center'>{result['fn']} (FN)</td>"
        f"<td style='text-align:center'>{result['tn']} (TN)</td></tr></table>"
        f"sensitivity <b>{_pct(result['sensitivity'])}</b> &middot; "
        f"specificity <b>{_pct(result['specificity'])}</b> &middot; "
        f"PPV {_pct(result['ppv'])} &middot; NPV {_pct(result['npv'])}<br>"
        f"{result['fn']} of {result['tp'] + result['fn']} people with {with_} are missed; "
        f"{result['fp']} of {result['fp'] + result['tn']} people with {without} test positive."
    )


def cutoff_explorer(
    values,
    has_condition,
    *,
    label: str = "marker (no unit)",
    cutoff: float = 50.0,
    condition_names: tuple[str, str] = ("no condition", "condition"),
    reference_cutoffs: dict[str, float] | None = None,
):
    """A log-scale cutoff slider over one marker, with a confusion table, strip plot and ROC curve.

    Parameters
    ----------
    values, has_condition : array-like
        As in :func:`cutoff_performance`; values must be positive (the slider is logarithmic).
    label : str
        The marker's name with its unit, e.g. ``"fecal calprotectin (µg/g)"``.
    cutoff : float
        Starting cutoff.
    condition_names : (str, str)
        How to call subjects without and with the condition.
    reference_cutoffs : dict of str to float, optional
        Published cutoffs drawn as dashed lines, ``{legend text: value}``.

    Returns
    -------
    ipywidgets.VBox
        A ``FloatLogSlider`` described ``"Cutoff"``, an ``HTML`` readout and an ``Image`` figure.
    """
    import ipywidgets as widgets
    from matplotlib.figure import Figure

    from gutcourse.plotting import PALETTE, plot_marker_by_group, plot_roc

    x, y = _as_arrays(values, has_condition)
    if np.any(x <= 0):
        raise ValueError("`values` must be positive for the logarithmic cutoff slider")
    roc = roc_table(x, y)
    groups = np.where(y, condition_names[1], condition_names[0])
    frame = pd.DataFrame({"group": groups, "value": x})
    unit = label.rsplit("(", 1)[-1].rstrip(")") if "(" in label else ""

    slider = widgets.FloatLogSlider(
        value=cutoff, base=10, min=np.floor(np.log10(x.min())), max=np.ceil(np.log10(x.max())), step=0.02,
        description="Cutoff", readout_format=".0f" if x.min() >= 1 else ".2f", continuous_update=False,
        layout=widgets.Layout(width="480px"),
    )
    readout = widgets.HTML()
    image = widgets.Image(format="png", layout=widgets.Layout(max_width="820px"))

    def update(change=None) -> None:
        result = cutoff_performance(x, y, slider.value)
        readout.value = _readout_html(result, unit, condition_names)
        fig = Figure(figsize=(9.0, 3.8), layout="constrained")
        left, right = fig.subplots(1, 2, width_ratios=[1.4, 1])
        plot_marker_by_group(frame, value="value", group="group", ax=left, label=label,
                             order=list(condition_names), cutoffs=reference_cutoffs,
                             title=f"{label.split(' (')[0]} by diagnosis")
        left.axhline(slider.value, color=PALETTE[5], linewidth=2, label=f"current cutoff {slider.value:.3g}")
        left.legend(loc="upper left", fontsize="small", frameon=False)
        left.set_xlabel("diagnosis")
        plot_roc(roc, ax=right, point=(1 - result["specificity"], result["sensitivity"]),
                 title=f"ROC curve (AUC {roc.attrs['auc']:.2f})")
        image.value = _png(fig)

    slider.observe(update, names="value")
    update()
    return widgets.VBox([slider, readout, image])


def _benchmark_inputs(n: int = 300, seed: int = 2024) -> dict:
    """A log-normal marker for two groups, the size of a clinic cohort; for the benchmark only."""
    rng = np.random.default_rng(seed)
    ill = rng.random(n) < 0.3
    values = np.exp(rng.normal(np.where(ill, 5.5, 3.5), 1.0))
    return {"values": values, "has_condition": ill}


UPDATE_CASES: list[tuple[str, Callable, dict]] = [
    ("cutoff_performance: one slider move, 300 subjects", cutoff_performance, {**_benchmark_inputs(), "cutoff": 50.0}),
]
