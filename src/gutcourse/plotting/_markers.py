"""Figures for inflammation and barrier markers: skewed values, groups, cutoffs, ROC curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ._style import PALETTE, new_axes

__all__ = [
    "axis_label",
    "plot_marker_by_group",
    "plot_marker_histogram",
    "plot_roc",
]

# Column-name suffixes used by the course's datasets (DESIGN.md: snake_case with unit suffixes).
_UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_ug_g", "µg/g"),
    ("_mg_l", "mg/L"),
    ("_pg_ml", "pg/mL"),
    ("_ng_ml", "ng/mL"),
    ("_ug_ml", "µg/mL"),
    ("_mg_dl", "mg/dL"),
    ("_pct", "%"),
    ("_ml", "mL"),
    ("_g", "g"),
    ("_h", "h"),
)

# Okabe-Ito yellow is too pale for small dots on white; points use the other colours.
_POINT_COLOURS: tuple[str, ...] = tuple(c for c in PALETTE if c != "#F0E442")

# Dashed styles so that cutoff lines stay distinguishable without colour.
_CUTOFF_STYLES: tuple[str, ...] = ("--", ":", "-.", (0, (5, 1, 1, 1)))


def axis_label(column: str) -> str:
    """Turn a dataset column name into an axis label with its unit.

    ``"fecal_calprotectin_ug_g"`` becomes ``"fecal calprotectin (µg/g)"``.
    A name without a known unit suffix is returned with underscores as spaces
    and ``(no unit)`` appended, so that a missing unit is visible rather than silent.
    """
    for suffix, unit in _UNIT_SUFFIXES:
        if column.endswith(suffix):
            return f"{column[: -len(suffix)].replace('_', ' ')} ({unit})"
    return f"{column.replace('_', ' ')} (no unit)"


def _positive(values: np.ndarray, name: str) -> np.ndarray:
    if np.any(values <= 0):
        raise ValueError(f"`{name}` must be positive on a log scale; found {int(np.sum(values <= 0))} value(s) <= 0")
    return values


def plot_marker_by_group(
    data: pd.DataFrame,
    *,
    value: str,
    group: str = "group",
    ax=None,
    log: bool = True,
    label: str | None = None,
    order: Sequence[str] | None = None,
    cutoffs: Mapping[str, float] | None = None,
    title: str | None = None,
    seed: int = 0,
):
    """Strip plot of one marker per group, with each group's median as a black bar.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject, with the columns ``value`` and ``group``.
    value, group : str
        Column names.
    log : bool
        Draw the value axis on a log scale (the default: most markers are right-skewed).
    label : str, optional
        Value-axis label with its unit; derived from the column name when omitted.
    order : sequence of str, optional
        Group order on the x axis; first-seen order when omitted.
    cutoffs : mapping of str to float, optional
        Horizontal reference lines, ``{legend text: value}``.
    seed : int
        Seed of the horizontal jitter, so the figure is the same on every run.

    Returns
    -------
    matplotlib.axes.Axes
    """
    for column in (value, group):
        if column not in data.columns:
            raise KeyError(f"`data` has no column {column!r}")
    subset = data[[group, value]].dropna()
    values = subset[value].to_numpy(dtype=float)
    if log:
        _positive(values, value)
    groups = list(order) if order is not None else list(dict.fromkeys(subset[group]))
    colors = {name: _POINT_COLOURS[i % len(_POINT_COLOURS)] for i, name in enumerate(groups)}
    rng = np.random.default_rng(seed)
    ax = new_axes(ax)
    for i, name in enumerate(groups):
        y = subset.loc[subset[group] == name, value].to_numpy(dtype=float)
        x = i + rng.uniform(-0.18, 0.18, size=y.size)
        ax.scatter(x, y, s=18, alpha=0.75, color=colors[name], edgecolor="none")
        if y.size:
            ax.hlines(np.median(y), i - 0.3, i + 0.3, color="black", linewidth=2)
    for k, (text, level) in enumerate((cutoffs or {}).items()):
        ax.axhline(level, color="black", linewidth=1, linestyle=_CUTOFF_STYLES[k % len(_CUTOFF_STYLES)], label=text)
    if cutoffs:
        ax.legend(loc="upper left", fontsize="small", frameon=False)
    if log:
        ax.set_yscale("log")
    counts = subset[group].value_counts()
    ax.set_xticks(range(len(groups)), [f"{g}\n(n={int(counts.get(g, 0))})" for g in groups])
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_xlabel(group.replace("_", " "))
    ax.set_ylabel(label or axis_label(value))
    ax.set_title(title or f"{(label or axis_label(value)).split(' (')[0]} by {group.replace('_', ' ')}")
    return ax


def plot_marker_histogram(
    data,
    *,
    ax=None,
    log: bool = False,
    bins: int = 20,
    label: str = "value (no unit)",
    title: str | None = None,
):
    """Histogram of one marker, on a linear or a logarithmic value axis.

    On the log axis the bins are evenly spaced in log10, so a log-normal marker
    looks symmetric; on the linear axis the same values pile up near zero with a long right tail.
    The median (solid) and mean (dashed) are drawn so that the skew is visible as their gap;
    on the log axis the geometric mean (dotted), the centre of the logged values, is added.

    Parameters
    ----------
    data : array-like of float
        The values; missing values are dropped.
    log : bool
        Log-spaced bins and a log x axis.
    label : str
        x-axis label with its unit.

    Returns
    -------
    matplotlib.axes.Axes
    """
    values = np.asarray(pd.Series(data, dtype=float).dropna(), dtype=float)
    if values.size == 0:
        raise ValueError("`data` has no non-missing values to plot")
    ax = new_axes(ax)
    if log:
        _positive(values, "data")
        # geomspace puts the end edges exactly on the lowest and highest value; logspace of their
        # log10 can round the first edge above the minimum, and that value would not be drawn.
        edges = np.geomspace(values.min(), values.max(), bins + 1)
        ax.set_xscale("log")
    else:
        edges = np.linspace(values.min(), values.max(), bins + 1)
    ax.hist(values, bins=edges, color=PALETTE[4], edgecolor="white")
    ax.axvline(np.median(values), color="black", linewidth=1.5, label=f"median {np.median(values):.3g}")
    ax.axvline(values.mean(), color=PALETTE[5], linewidth=1.5, linestyle="--", label=f"mean {values.mean():.3g}")
    if log:
        geometric = float(np.exp(np.log(values).mean()))
        ax.axvline(geometric, color=PALETTE[2], linewidth=2, linestyle=":", label=f"geometric mean {geometric:.3g}")
    ax.legend(fontsize="small", frameon=False)
    ax.set_xlabel(label + (" — log scale" if log else ""))
    ax.set_ylabel("number of subjects")
    ax.set_title(title or f"{label.split(' (')[0]}: {'log' if log else 'linear'} axis")
    return ax


def plot_roc(
    data: pd.DataFrame,
    *,
    ax=None,
    point: tuple[float, float] | None = None,
    title: str = "ROC curve",
):
    """Receiver operating characteristic curve, with the current cutoff as a point.

    Parameters
    ----------
    data : pandas.DataFrame
        Columns ``false_positive_rate`` and ``true_positive_rate`` (both 0-1), one row per threshold.
    point : (float, float), optional
        ``(1 - specificity, sensitivity)`` of the cutoff in use.

    Returns
    -------
    matplotlib.axes.Axes
    """
    for column in ("false_positive_rate", "true_positive_rate"):
        if column not in data.columns:
            raise KeyError(f"`data` has no column {column!r}")
    ax = new_axes(ax, figsize=(4.0, 4.0))
    ax.plot(data["false_positive_rate"], data["true_positive_rate"], color=PALETTE[4], linewidth=2, label="marker")
    ax.plot([0, 1], [0, 1], color=PALETTE[7], linestyle=":", label="chance")
    if point is not None:
        ax.plot(*point, marker="o", markersize=9, color=PALETTE[5], linestyle="none", label="current cutoff")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel("1 − specificity (false-positive rate, fraction)")
    ax.set_ylabel("sensitivity (true-positive rate, fraction)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small", frameon=False)
    return ax
