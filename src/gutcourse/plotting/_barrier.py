"""Figures for the sugar permeability test."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ._style import PALETTE, new_axes

__all__ = ["plot_lm_curve"]

_CUTOFF_STYLES: tuple[str, ...] = ("--", ":", "-.")


def plot_lm_curve(
    data: pd.DataFrame,
    *,
    ax=None,
    cutoffs: Mapping[str, float] | None = None,
    current: float | None = None,
    title: str = "Simulated L:M ratio as the leak pathway opens",
):
    """Line of the lactulose:mannitol ratio against a leak multiplier, with published cutoffs.

    Parameters
    ----------
    data : pandas.DataFrame
        Columns ``leak_multiplier`` (x) and ``lm_ratio`` (y), one row per simulated scenario.
    cutoffs : mapping of str to float, optional
        Horizontal reference lines, ``{legend text: L:M value}``.
    current : float, optional
        The leak multiplier currently chosen; marked with a point on the curve.

    Returns
    -------
    matplotlib.axes.Axes
    """
    for column in ("leak_multiplier", "lm_ratio"):
        if column not in data.columns:
            raise KeyError(f"`data` has no column {column!r}")
    ax = new_axes(ax)
    ax.plot(data["leak_multiplier"], data["lm_ratio"], color=PALETTE[4], linewidth=2, label="simulated L:M")
    for k, (text, level) in enumerate((cutoffs or {}).items()):
        ax.axhline(level, color="black", linewidth=1, linestyle=_CUTOFF_STYLES[k % len(_CUTOFF_STYLES)], label=text)
    if current is not None:
        row = data.iloc[(data["leak_multiplier"] - current).abs().argmin()]
        ax.plot(row["leak_multiplier"], row["lm_ratio"], marker="o", markersize=9, color=PALETTE[5],
                linestyle="none", label="current setting")
    ax.set_yscale("log")
    ax.set_xlabel("lactulose leak multiplier (× healthy baseline, illustrative)")
    ax.set_ylabel("L:M ratio (% lactulose / % mannitol, no unit)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small", frameon=False)
    return ax
