"""Census explorer: test a claim such as "70-80% of immune cells live in the gut" against counts.

The explorer asks two things of a claim: *which cells* is it counting, and *what share* does it
put in the gut? The published estimates it compares with are in :data:`GUT_SHARE_ESTIMATES`,
each with its source and whether that source is primary or a secondary summary.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from ._markers import _png

__all__ = ["GUT_SHARE_ESTIMATES", "immune_census_check", "immune_census_explorer"]

_SENDER = "Sender et al. 2023, PNAS, doi:10.1073/pnas.2308511120"
_GANUSOV = "Ganusov & De Boer 2007, Trends Immunol, doi:10.1016/j.it.2007.08.009"
_PZ = "Pharmazeutische Zeitung, 25 Oct 2023 (a secondary summary of Sender et al. 2023)"

# Sender et al. 2023: 1.8 x 10^12 immune cells in a reference 73 kg man; lymphocytes are 40% of them.
_ALL_IMMUNE_CELLS = 1.8e12
_LYMPHOCYTES = 0.40 * _ALL_IMMUNE_CELLS

GUT_SHARE_ESTIMATES: dict[str, dict] = {
    "all immune cells": {
        "low_pct": 3.0, "high_pct": 3.0, "total_cells": _ALL_IMMUNE_CELLS,
        "source": f"total from {_SENDER}; the ~3% gut share from {_PZ}", "evidence": "secondary",
    },
    "lymphocytes": {
        "low_pct": 5.0, "high_pct": 20.0, "total_cells": _LYMPHOCYTES,
        "source": f"{_GANUSOV} (review across mammal species); total = 40% of immune cells, {_SENDER}",
        "evidence": "primary",
    },
    "lymphocytes (lamina propria only)": {
        "low_pct": 1.0, "high_pct": 9.0, "total_cells": _LYMPHOCYTES,
        "source": f"{_GANUSOV}; total = 40% of immune cells, {_SENDER}", "evidence": "primary",
    },
    "antibody-producing plasma cells": {
        "low_pct": None, "high_pct": 70.0, "total_cells": None,
        "source": f"'up to about 70%' from {_PZ}; most Ig-producing cells sit in mucosae, "
                  "J Exp Med 2002;195(2):F5",
        "evidence": "secondary",
    },
}


def immune_census_check(claimed_pct: float = 70.0, population: str = "all immune cells") -> dict:
    """Compare a claimed gut share of some immune population with the published estimate.

    Parameters
    ----------
    claimed_pct : float
        The share of the population the claim puts in the gut, in percent (0-100).
    population : str
        A key of :data:`GUT_SHARE_ESTIMATES`: which cells the claim is taken to count.

    Returns
    -------
    dict
        ``population``, ``claimed_pct``, ``low_pct`` (None when the source gives only an upper
        figure), ``high_pct``, ``claimed_cells`` and ``estimated_cells`` (absolute numbers when a
        total is known, else None; ``estimated_cells`` uses the upper figure), ``fold_over``
        (claim / upper estimate), ``verdict`` (``"above"``, ``"within"`` or ``"below"``),
        ``source`` and ``evidence`` (``"primary"`` or ``"secondary"``).

    Examples
    --------
    >>> r = immune_census_check(70, "lymphocytes")
    >>> r["verdict"], round(r["fold_over"], 1)
    ('above', 3.5)
    """
    if population not in GUT_SHARE_ESTIMATES:
        raise KeyError(f"`population` must be one of {sorted(GUT_SHARE_ESTIMATES)}, got {population!r}")
    if not 0 <= claimed_pct <= 100:
        raise ValueError(f"`claimed_pct` must be a percentage between 0 and 100, got {claimed_pct!r}")
    estimate = GUT_SHARE_ESTIMATES[population]
    low, high, total = estimate["low_pct"], estimate["high_pct"], estimate["total_cells"]
    if claimed_pct > high:
        verdict = "above"
    elif low is not None and claimed_pct < low:
        verdict = "below"
    else:
        verdict = "within"
    return {
        "population": population,
        "claimed_pct": float(claimed_pct),
        "low_pct": low,
        "high_pct": high,
        "claimed_cells": None if total is None else total * claimed_pct / 100,
        "estimated_cells": None if total is None else total * high / 100,
        "fold_over": claimed_pct / high,
        "verdict": verdict,
        "source": estimate["source"],
        "evidence": estimate["evidence"],
    }


def _cells(n: float | None) -> str:
    if n is None:
        return "no total count published"
    mantissa, exponent = f"{n:.2e}".split("e")
    return f"{float(mantissa):.2g} &times; 10<sup>{int(exponent)}</sup> cells"


def _range(result: dict) -> str:
    if result["low_pct"] is None:
        return f"up to about {result['high_pct']:g}%"
    if result["low_pct"] == result["high_pct"]:
        return f"about {result['high_pct']:g}%"
    return f"{result['low_pct']:g}-{result['high_pct']:g}%"


def _readout_html(result: dict) -> str:
    if result["verdict"] == "above":
        verdict = (f"<b style='color:#D55E00'>about {result['fold_over']:.1f}&times; the published "
                   "estimate</b>")
    elif result["verdict"] == "below":
        verdict = "<b>below the published range</b>"
    else:
        verdict = "<b style='color:#009E73'>consistent with the published estimate</b>"
    return (
        f"Counting <b>{escape(result['population'])}</b>: the claim puts {result['claimed_pct']:g}% in the gut "
        f"({_cells(result['claimed_cells'])}).<br>"
        f"Published estimate: {_range(result)} ({_cells(result['estimated_cells'])} at the upper figure).<br>"
        f"The claim is {verdict}.<br>"
        f"<small>Source ({result['evidence']}): {escape(result['source'])}</small>"
    )


def _draw_census(ax, claimed_pct: float, highlight: str) -> None:
    """Horizontal ranges of the published gut shares, with the claim as a vertical line."""
    from gutcourse.plotting import PALETTE

    names = list(GUT_SHARE_ESTIMATES)
    for row, name in enumerate(names):
        estimate = GUT_SHARE_ESTIMATES[name]
        low, high = estimate["low_pct"], estimate["high_pct"]
        colour = PALETTE[4] if estimate["evidence"] == "primary" else PALETTE[0]
        width = 10 if name == highlight else 6
        if low is None:
            ax.plot([0, high], [row, row], color=colour, linewidth=width, alpha=0.35, solid_capstyle="butt")
            ax.plot(high, row, marker="<", color=colour, markersize=10)
        elif low == high:
            ax.plot(high, row, marker="o", color=colour, markersize=width + 2)
        else:
            ax.plot([low, high], [row, row], color=colour, linewidth=width, solid_capstyle="butt")
            ax.plot([low, high], [row, row], marker="|", color=colour, markersize=14, linestyle="none")
    ax.axvline(claimed_pct, color="black", linestyle="--", linewidth=1.5, label=f"claim: {claimed_pct:g}%")
    ax.plot([], [], color=PALETTE[4], linewidth=6, label="estimate, primary source")
    ax.plot([], [], color=PALETTE[0], linewidth=6, label="estimate, secondary summary")
    ax.set_yticks(range(len(names)), [f"» {n}" if n == highlight else n for n in names])
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the population located in the gut (%)")
    ax.set_title("A gut-share claim against published estimates")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize="small", frameon=False)


def immune_census_explorer(claimed_pct: float = 70.0):
    """A slider for the claimed gut share and a picker for which cells the claim counts.

    Returns
    -------
    ipywidgets.VBox
        A ``FloatSlider`` described ``"Claimed gut share (%)"``, a ``Dropdown`` described
        ``"Counting"``, an ``HTML`` readout and an ``Image`` figure.
    """
    import ipywidgets as widgets
    from matplotlib.figure import Figure

    style = {"description_width": "160px"}
    layout = widgets.Layout(width="520px")
    claim = widgets.FloatSlider(value=claimed_pct, min=0.0, max=100.0, step=1.0, description="Claimed gut share (%)",
                                readout_format=".0f", style=style, layout=layout, continuous_update=False)
    population = widgets.Dropdown(options=list(GUT_SHARE_ESTIMATES), description="Counting", style=style,
                                  layout=layout)
    readout = widgets.HTML()
    image = widgets.Image(format="png", layout=widgets.Layout(max_width="760px"))

    def update(change=None) -> None:
        readout.value = _readout_html(immune_census_check(claim.value, population.value))
        fig = Figure(figsize=(8.0, 3.6), layout="constrained")
        _draw_census(fig.add_subplot(), claim.value, population.value)
        image.value = _png(fig)

    claim.observe(update, names="value")
    population.observe(update, names="value")
    update()
    return widgets.VBox([claim, population, readout, image])


UPDATE_CASES: list[tuple[str, Callable, dict]] = [
    ("immune_census_check: one slider move", immune_census_check,
     {"claimed_pct": 70.0, "population": "lymphocytes"}),
]
