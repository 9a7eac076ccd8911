"""Shared style: the Okabe-Ito palette and a helper that makes axes on demand."""

from __future__ import annotations

from collections.abc import Iterable

# Okabe & Ito (2008), "Color Universal Design", the palette recommended for readers
# with colour-vision deficiency; black is left out because it is used for text.
PALETTE: tuple[str, ...] = (
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#F0E442",  # yellow
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#999999",  # grey
)


def group_colors(groups: Iterable[str]) -> dict[str, str]:
    """Map each distinct group label, in first-seen order, to a palette colour."""
    labels = list(dict.fromkeys(groups))
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def new_axes(ax=None, *, figsize=(6.0, 4.0)):
    """Return ``ax`` if given, otherwise the axes of a new figure of ``figsize`` inches."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax
