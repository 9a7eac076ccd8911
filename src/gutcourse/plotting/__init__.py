"""Plotting helpers for the course: colour-blind-safe, titled, labelled with units.

Every public function has the form ``plot_<thing>(data, *, ax=None) -> Axes``.
Importing this package changes no global matplotlib state:
colours are passed explicitly, never through ``rcParams``.
"""

from ._barrier import plot_lm_curve
from ._composition import plot_taxa_barplot
from ._diversity import (
    plot_by_group,
    plot_ordination,
    plot_power_curve,
    plot_pvalue_histogram,
    plot_rank_abundance,
    plot_rarefaction,
)
from ._markers import axis_label, plot_marker_by_group, plot_marker_histogram, plot_roc
from ._style import PALETTE, group_colors, new_axes

__all__ = [
    "plot_taxa_barplot",
    "plot_rank_abundance",
    "plot_rarefaction",
    "plot_ordination",
    "plot_by_group",
    "plot_power_curve",
    "plot_pvalue_histogram",
    "PALETTE",
    "group_colors",
    "new_axes",
    "axis_label",
    "plot_lm_curve",
    "plot_marker_by_group",
    "plot_marker_histogram",
    "plot_roc",
]
