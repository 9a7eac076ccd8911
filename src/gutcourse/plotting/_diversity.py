"""Plots for diversity and study design (notebooks 05-07 and their explorers)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._style import PALETTE, group_colors, new_axes

# cividis is built to read the same with and without colour-vision deficiency.
_SEQUENTIAL_CMAP = "cividis"


def plot_rank_abundance(proportions, *, ax=None, title: str | None = None):
    """Bars of one community's taxon proportions, most abundant first.

    Parameters
    ----------
    proportions : array_like, shape (n_taxa,)
        Relative abundances of one community; they must sum to 1.
    ax : matplotlib.axes.Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    p = np.asarray(proportions, dtype=float)
    if p.ndim != 1 or p.size == 0 or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
        raise ValueError("`proportions` must be a 1-D array of non-negative values summing to 1")
    p = np.sort(p)[::-1]
    ax = new_axes(ax, figsize=(5.0, 3.0))
    ranks = np.arange(1, p.size + 1)
    ax.bar(ranks, p, color=PALETTE[4], width=0.8)
    ax.set_xlabel("taxon rank (1 = most abundant)")
    ax.set_ylabel("relative abundance (proportion)")
    ax.set_ylim(0, 1)
    ax.set_xlim(0.4, max(p.size, 5) + 0.6)
    ax.set_title(title or f"Rank-abundance of a {p.size}-taxon community")
    return ax


def plot_rarefaction(curves: pd.DataFrame, *, ax=None, depth: int | None = None,
                     title: str | None = None):
    """Rarefaction curves: expected taxa observed against reads subsampled.

    Parameters
    ----------
    curves : pandas.DataFrame, shape (n_depths, n_samples)
        Index: subsampling depth in reads; one column per sample; NaN beyond a
        sample's own depth.
    ax : matplotlib.axes.Axes, optional
    depth : int, optional
        A rarefaction depth to mark with a vertical line.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(curves, pd.DataFrame) or curves.empty:
        raise ValueError("`curves` must be a non-empty DataFrame (depths x samples)")
    from matplotlib.collections import LineCollection

    ax = new_axes(ax, figsize=(6.0, 4.0))
    x = curves.index.to_numpy(dtype=float)
    # One collection of lines, not a line per sample: the same picture, drawn in a fraction of
    # the time (a cohort has about 90 samples). A curve stops where its sample runs out of reads.
    segments = []
    for column in curves.columns:
        y = curves[column].to_numpy(dtype=float)
        keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
        segments.append(np.column_stack([x[keep], y[keep]]))
    ax.add_collection(LineCollection(segments, colors=PALETTE[4], alpha=0.35, linewidths=0.9,
                                     label="_rarefaction curves"))
    ax.autoscale_view()
    if depth is not None:
        ax.axvline(depth, color=PALETTE[5], linestyle="--", linewidth=1.5,
                   label=f"rarefaction depth = {depth:,} reads")
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_xscale("log")
    ax.set_xlabel("reads subsampled (reads per sample, log scale)")
    ax.set_ylabel("expected genera observed (count)")
    ax.set_title(title or f"Rarefaction curves of {curves.shape[1]} samples")
    return ax


def plot_ordination(coordinates: pd.DataFrame, *, ax=None, color=None,
                    explained=None, color_label: str | None = None,
                    title: str | None = None):
    """Scatter of the first two ordination axes.

    Parameters
    ----------
    coordinates : pandas.DataFrame, shape (n_samples, >= 2)
        The first two columns are plotted (e.g. ``PC1``, ``PC2``).
    ax : matplotlib.axes.Axes, optional
    color : pandas.Series, optional
        Per-sample values aligned on the index: categories get palette colours,
        numbers a colour-blind-safe sequential colour map with a colour bar.
    explained : tuple of float, optional
        Proportion of variation explained by the two axes, shown in the labels.
    color_label : str, optional
        Legend or colour-bar title, with units for numbers.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(coordinates, pd.DataFrame) or coordinates.shape[1] < 2:
        raise ValueError("`coordinates` must be a DataFrame with at least two columns")
    ax = new_axes(ax, figsize=(5.5, 4.5))
    first, second = coordinates.columns[:2]
    xs = coordinates[first].to_numpy(dtype=float)
    ys = coordinates[second].to_numpy(dtype=float)
    if color is None:
        ax.scatter(xs, ys, color=PALETTE[4], s=25, edgecolor="white", linewidth=0.4)
    else:
        color = pd.Series(color).reindex(coordinates.index)
        if pd.api.types.is_numeric_dtype(color):
            points = ax.scatter(xs, ys, c=color.to_numpy(dtype=float), cmap=_SEQUENTIAL_CMAP,
                                s=25, edgecolor="grey", linewidth=0.3)
            ax.figure.colorbar(points, ax=ax, label=color_label or str(color.name))
        else:
            labels = color.astype(str)
            mapping = group_colors(sorted(labels.unique()))
            markers = "osD^vP*X"
            for i, (label, hue) in enumerate(mapping.items()):
                mask = (labels == label).to_numpy()
                ax.scatter(xs[mask], ys[mask], color=hue, s=28, marker=markers[i % len(markers)],
                           edgecolor="white", linewidth=0.4, label=f"{label} (n={mask.sum()})")
            ax.legend(title=color_label or str(color.name), fontsize=8, title_fontsize=8,
                      frameon=False, loc="best")
    if explained is not None:
        ax.set_xlabel(f"{first} ({100 * explained[0]:.1f}% of variation, unitless)")
        ax.set_ylabel(f"{second} ({100 * explained[1]:.1f}% of variation, unitless)")
    else:
        ax.set_xlabel(f"{first} (unitless)")
        ax.set_ylabel(f"{second} (unitless)")
    ax.axhline(0, color="lightgrey", linewidth=0.6, zorder=0)
    ax.axvline(0, color="lightgrey", linewidth=0.6, zorder=0)
    ax.set_title(title or "Ordination")
    return ax


def plot_by_group(values: pd.Series, *, groups: pd.Series, ax=None,
                  ylabel: str | None = None, title: str | None = None, log: bool = False):
    """Box plot with every observation drawn on top, one box per group.

    Parameters
    ----------
    values : pandas.Series
        One number per observation; its name is the default y label.
    groups : pandas.Series
        Group labels aligned on the same index as ``values``.
    ax : matplotlib.axes.Axes, optional
    ylabel : str, optional
        Y label with units, e.g. "reads per sample".
    title : str, optional
    log : bool
        Use a log y axis (right-skewed data).

    Returns
    -------
    matplotlib.axes.Axes
    """
    values = pd.Series(values)
    groups = pd.Series(groups).reindex(values.index)
    if groups.isna().any():
        raise ValueError("every entry of `values` needs a group label in `groups`")
    order = sorted(groups.astype(str).unique())
    colors = group_colors(order)
    ax = new_axes(ax, figsize=(4.5, 4.0))
    data = [values[groups.astype(str) == g].dropna().to_numpy(dtype=float) for g in order]
    ax.boxplot(data, positions=range(len(order)), widths=0.5, showfliers=False,
               medianprops={"color": "black"})
    rng = np.random.default_rng(0)  # jitter only; fixed so the figure is reproducible
    for i, (g, d) in enumerate(zip(order, data)):
        ax.scatter(i + rng.uniform(-0.12, 0.12, d.size), d, color=colors[g], s=16,
                   edgecolor="white", linewidth=0.3, zorder=3)
    ax.set_xticks(range(len(order)), [f"{g}\n(n={d.size})" for g, d in zip(order, data)])
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("group")
    ax.set_ylabel(ylabel or str(values.name))
    ax.set_title(title or f"{values.name} by group")
    return ax


def plot_power_curve(curve: pd.Series, *, ax=None, effect_size: float | None = None,
                     target: float = 0.8, title: str | None = None):
    """Statistical power against standardized effect size.

    Parameters
    ----------
    curve : pandas.Series
        Power (0-1) indexed by effect size (Cohen's d).
    ax : matplotlib.axes.Axes, optional
    effect_size : float, optional
        An effect size to mark.
    target : float
        Conventional target power, drawn as a horizontal line.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = new_axes(ax, figsize=(5.5, 3.8))
    ax.plot(curve.index.to_numpy(dtype=float), curve.to_numpy(dtype=float),
            color=PALETTE[4], linewidth=2)
    ax.axhline(target, color=PALETTE[7], linestyle=":", linewidth=1.2,
               label=f"power = {target:.0%}")
    if effect_size is not None:
        ax.axvline(effect_size, color=PALETTE[5], linestyle="--", linewidth=1.2,
                   label=f"d = {effect_size:.2f}")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("effect size (Cohen's d, difference in SD units)")
    ax.set_ylabel("power (probability of p < alpha)")
    ax.set_title(title or "Power of a two-group comparison")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return ax


def plot_pvalue_histogram(pvalues, *, ax=None, alpha: float = 0.05,
                          title: str | None = None):
    """Histogram of p-values with the significance threshold marked.

    Parameters
    ----------
    pvalues : array_like
        P-values between 0 and 1.
    ax : matplotlib.axes.Axes, optional
    alpha : float
        Threshold to mark.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    p = np.asarray(pvalues, dtype=float)
    if p.size == 0 or np.any((p < 0) | (p > 1)):
        raise ValueError("`pvalues` must be a non-empty array of values in [0, 1]")
    ax = new_axes(ax, figsize=(5.5, 3.8))
    ax.hist(p, bins=np.linspace(0, 1, 21), color=PALETTE[1], edgecolor="white")
    ax.axvline(alpha, color=PALETTE[5], linestyle="--", linewidth=1.5,
               label=f"alpha = {alpha:g} ({int(np.sum(p < alpha))} below)")
    ax.set_xlim(0, 1)
    ax.set_xlabel("p-value (unitless)")
    ax.set_ylabel("number of tests (count)")
    ax.set_title(title or f"P-values of {p.size} tests")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    return ax
