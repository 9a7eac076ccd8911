"""Plotting helpers for the course: colour-blind-safe, titled, labelled with units.

Every public function has the form ``plot_<thing>(data, *, ax=None) -> Axes``.
Importing this package changes no global matplotlib state:
colours are passed explicitly, never through ``rcParams``.
"""

from ._style import PALETTE, group_colors, new_axes

__all__ = ["PALETTE", "group_colors", "new_axes"]
