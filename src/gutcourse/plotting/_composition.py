"""Stacked bar plots of community composition (notebook 04 and the composition explorer)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._style import PALETTE, new_axes

# Okabe-Ito has seven coloured entries before grey; grey is kept for "Other".
_MAX_NAMED = len(PALETTE) - 1
_OTHER_COLOR = PALETTE[-1]


def _validate_table(table, *, absolute: bool) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise TypeError("`table` must be a pandas DataFrame (samples x taxa)")
    if table.empty:
        raise ValueError("`table` must have at least one sample and one taxon")
    values = table.to_numpy(dtype=float)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("`table` must hold finite, non-negative values")
    if not absolute:
        totals = values.sum(axis=1)
        if not np.allclose(totals, 1.0, atol=1e-6):
            raise ValueError(
                "`table` rows must sum to 1 (relative abundances); "
                "divide each row by its total first, or pass absolute=True"
            )
    return table.astype(float)


def plot_taxa_barplot(
    table: pd.DataFrame,
    *,
    ax=None,
    top_n: int = _MAX_NAMED,
    absolute: bool = False,
    level: str = "taxon",
    unit: str | None = None,
    title: str | None = None,
):
    """Stacked bars, one per sample, one segment per taxon.

    The ``top_n`` taxa with the highest mean value get their own colour;
    the rest are pooled into a grey "Other" segment so that the palette stays
    colour-blind-safe (Okabe-Ito has seven colours besides grey).

    Parameters
    ----------
    table : pandas.DataFrame, shape (n_samples, n_taxa)
        Relative abundances (each row sums to 1), or absolute amounts when
        ``absolute=True``. Rows are samples, columns are taxa.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is made when omitted.
    top_n : int
        How many taxa to colour individually, at most 7.
    absolute : bool
        Plot absolute amounts instead of proportions (the y axis is then not 0-1).
    level : str
        Taxonomic level of the columns, used in the legend title ("genus", "family", ...).
    unit : str, optional
        Unit of absolute amounts for the y label, e.g. "cells per g".
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        If rows of a relative table do not sum to 1, or values are negative.
    """
    table = _validate_table(table, absolute=absolute)
    if not 1 <= top_n <= _MAX_NAMED:
        raise ValueError(f"`top_n` must be between 1 and {_MAX_NAMED}")
    order = table.mean(axis=0).sort_values(ascending=False).index
    named = list(order[:top_n])
    rest = [c for c in table.columns if c not in named]
    shown = table[named].copy()
    if rest:
        shown["Other"] = table[rest].sum(axis=1)
    colors = list(PALETTE[: len(named)]) + ([_OTHER_COLOR] if rest else [])

    ax = new_axes(ax, figsize=(max(4.0, 0.35 * len(table) + 2.5), 4.0))
    x = np.arange(len(shown))
    bottom = np.zeros(len(shown))
    for column, color in zip(shown.columns, colors):
        heights = shown[column].to_numpy()
        ax.bar(x, heights, bottom=bottom, color=color, label=str(column),
               edgecolor="white", linewidth=0.4, width=0.85)
        bottom += heights
    ax.set_xticks(x, [str(i) for i in shown.index], rotation=90, fontsize=8)
    ax.set_xlim(-0.6, len(shown) - 0.4)
    ax.set_xlabel("sample")
    if absolute:
        ax.set_ylabel(f"abundance ({unit})" if unit else "abundance")
    else:
        ax.set_ylabel("relative abundance (proportion of reads)")
        ax.set_ylim(0, 1)
    ax.set_title(title or f"Composition by {level}")
    # Reverse so the legend reads top-down in the same order as the stack.
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], title=level, fontsize=8,
              title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              frameon=False)
    return ax
