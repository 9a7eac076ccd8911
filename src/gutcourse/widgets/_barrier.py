"""Leak explorer: open the tight-junction leak pathway and watch a simulated sugar test respond.

This is a teaching toy, not a physiological model.
Two published numbers anchor it: the healthy recoveries (Catassi et al. 1997,
doi:10.1136/gut.40.2.215: median lactulose recovery 0.18%, mean mannitol recovery 18.5%,
children aged 11-15 given 5 g lactulose + 2 g mannitol).
Everything the sliders change is an illustrative design choice:
lactulose recovery scales linearly with the "leak multiplier", mannitol recovery with the
"mannitol uptake" factor, and the urine volume is whatever you set.
The explorer computes in the direction a simulation runs (recovery -> urine concentration);
problem set 1 asks you to go the other way, from a lab report to recoveries.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import numpy as np
import pandas as pd

from ._markers import _png

__all__ = ["sugar_test_scenario", "leak_curve", "leak_explorer", "LM_CUTOFFS", "SUGAR_PROTOCOLS"]

# Catassi et al. 1997 (doi:10.1136/gut.40.2.215), controls: median lactulose and mean mannitol recovery.
HEALTHY_LACTULOSE_RECOVERY_PCT = 0.18
HEALTHY_MANNITOL_RECOVERY_PCT = 18.5

# Published L:M cutoffs; that they differ two-fold is part of the lesson.
LM_CUTOFFS: dict[str, float] = {
    "Dastych 2008 best cutoff, Crohn's (0.022)": 0.022,  # doi:10.1007/s10620-007-0184-8
    "Catassi 1997 upper normal limit (0.044)": 0.044,  # doi:10.1136/gut.40.2.215
}

# Drinks used in published protocols, (lactulose g, mannitol g).
SUGAR_PROTOCOLS: dict[str, tuple[float, float]] = {
    "5 g lactulose + 2 g mannitol (Catassi 1997)": (5.0, 2.0),  # doi:10.1136/gut.40.2.215
    "10 g lactulose + 5 g mannitol (Sequeira 2014)": (10.0, 5.0),  # doi:10.1371/journal.pone.0099256
}

# Illustrative design choice, not a literature value: a plausible 5-6 h urine collection.
ILLUSTRATIVE_URINE_VOLUME_ML = 500.0


def _require_positive(**named: float) -> None:
    for name, value in named.items():
        if not np.all(np.asarray(value, dtype=float) > 0):
            raise ValueError(f"`{name}` must be positive, got {value!r}")


def sugar_test_scenario(
    leak_multiplier: float = 1.0,
    mannitol_uptake: float = 1.0,
    *,
    lactulose_dose_g: float = 5.0,
    mannitol_dose_g: float = 2.0,
    urine_volume_ml: float = ILLUSTRATIVE_URINE_VOLUME_ML,
) -> dict:
    """Simulate one subject's sugar test from a leak setting to what the lab would report.

    .. math::

        R_L = \\min(100, 0.18 \\cdot m_{leak}), \\quad R_M = \\min(100, 18.5 \\cdot m_{M})

        c = \\frac{R/100 \\cdot \\text{dose (g)} \\cdot 1000}{V (\\text{mL}) / 1000} \\;\\text{mg/L}

    Parameters
    ----------
    leak_multiplier : float
        Lactulose recovery relative to the healthy median (1 = healthy). Illustrative.
    mannitol_uptake : float
        Mannitol recovery relative to the healthy mean (1 = healthy; below 1 = less mannitol
        absorbed, as reported in untreated coeliac disease by Hamilton et al. 1982,
        doi:10.1136/gut.23.3.202). Illustrative.
    lactulose_dose_g, mannitol_dose_g : float
        The drink.
    urine_volume_ml : float
        Total urine collected. Illustrative.

    Returns
    -------
    dict
        ``lactulose_recovery_pct``, ``mannitol_recovery_pct``, ``lm_ratio`` (recovery ratio),
        ``lactulose_mg_l``, ``mannitol_mg_l`` (urine concentrations), ``concentration_ratio``
        (lactulose mg/L over mannitol mg/L, which is NOT the L:M ratio unless the doses are equal),
        and ``above_cutoff`` (``{cutoff label: bool}`` for :data:`LM_CUTOFFS`).
    """
    _require_positive(
        leak_multiplier=leak_multiplier, mannitol_uptake=mannitol_uptake, lactulose_dose_g=lactulose_dose_g,
        mannitol_dose_g=mannitol_dose_g, urine_volume_ml=urine_volume_ml,
    )
    lactulose_pct = min(100.0, HEALTHY_LACTULOSE_RECOVERY_PCT * leak_multiplier)
    mannitol_pct = min(100.0, HEALTHY_MANNITOL_RECOVERY_PCT * mannitol_uptake)
    litres = urine_volume_ml / 1000.0
    lactulose_mg_l = lactulose_pct / 100.0 * lactulose_dose_g * 1000.0 / litres
    mannitol_mg_l = mannitol_pct / 100.0 * mannitol_dose_g * 1000.0 / litres
    lm_ratio = lactulose_pct / mannitol_pct
    return {
        "lactulose_recovery_pct": lactulose_pct,
        "mannitol_recovery_pct": mannitol_pct,
        "lm_ratio": lm_ratio,
        "lactulose_mg_l": lactulose_mg_l,
        "mannitol_mg_l": mannitol_mg_l,
        "concentration_ratio": lactulose_mg_l / mannitol_mg_l,
        "above_cutoff": {label: lm_ratio > level for label, level in LM_CUTOFFS.items()},
    }


def leak_curve(mannitol_uptake: float = 1.0, *, max_multiplier: float = 30.0, points: int = 120) -> pd.DataFrame:
    """The L:M ratio over a range of leak multipliers at a fixed mannitol uptake.

    Returns
    -------
    pandas.DataFrame
        Columns ``leak_multiplier`` and ``lm_ratio``, ``points`` rows from 1 to ``max_multiplier``.
    """
    _require_positive(mannitol_uptake=mannitol_uptake, max_multiplier=max_multiplier)
    multipliers = np.linspace(1.0, max_multiplier, points)
    lactulose = np.minimum(100.0, HEALTHY_LACTULOSE_RECOVERY_PCT * multipliers)
    mannitol = min(100.0, HEALTHY_MANNITOL_RECOVERY_PCT * mannitol_uptake)
    return pd.DataFrame({"leak_multiplier": multipliers, "lm_ratio": lactulose / mannitol})


def _readout_html(result: dict, lactulose_dose_g: float, mannitol_dose_g: float) -> str:
    verdicts = "".join(
        f"<li>{escape(label)}: <b>{'above' if above else 'at or below'}</b></li>"
        for label, above in result["above_cutoff"].items()
    )
    return (
        "<b>What the lab reports</b> (urine concentrations): "
        f"lactulose {result['lactulose_mg_l']:.1f} mg/L, mannitol {result['mannitol_mg_l']:.0f} mg/L<br>"
        "<b>What you compute</b> (recovery = amount in urine / dose): "
        f"lactulose {result['lactulose_recovery_pct']:.2f}%, mannitol {result['mannitol_recovery_pct']:.1f}%<br>"
        f"<b>L:M ratio</b> (recovery / recovery) = <b>{result['lm_ratio']:.4f}</b> &nbsp; "
        f"<span style='color:#D55E00'>concentration ratio = {result['concentration_ratio']:.4f}"
        f" (differs by the dose ratio {lactulose_dose_g:g}/{mannitol_dose_g:g} g)</span><br>"
        f"Against published cutoffs:<ul style='margin:0'>{verdicts}</ul>"
    )


def leak_explorer():
    """Sliders for the leak pathway, mannitol uptake, protocol and urine volume over a simulated sugar test.

    Returns
    -------
    ipywidgets.VBox
        Controls described ``"Lactulose leak ×"``, ``"Mannitol uptake ×"``, ``"Protocol"`` and
        ``"Urine volume (mL)"``, an ``HTML`` readout, an ``Image`` figure, and a note saying which
        parameters are illustrative.
    """
    import ipywidgets as widgets
    from matplotlib.figure import Figure

    from gutcourse.plotting import plot_lm_curve

    style = {"description_width": "150px"}
    layout = widgets.Layout(width="520px")
    leak = widgets.FloatSlider(value=1.0, min=1.0, max=30.0, step=0.5, description="Lactulose leak ×",
                               readout_format=".1f", style=style, layout=layout, continuous_update=False)
    mannitol = widgets.FloatSlider(value=1.0, min=0.3, max=1.5, step=0.05, description="Mannitol uptake ×",
                                   readout_format=".2f", style=style, layout=layout, continuous_update=False)
    protocol = widgets.Dropdown(options=list(SUGAR_PROTOCOLS), description="Protocol", style=style, layout=layout)
    volume = widgets.FloatSlider(value=ILLUSTRATIVE_URINE_VOLUME_ML, min=200.0, max=1500.0, step=50.0,
                                 description="Urine volume (mL)", readout_format=".0f", style=style,
                                 layout=layout, continuous_update=False)
    readout = widgets.HTML()
    image = widgets.Image(format="png", layout=widgets.Layout(max_width="640px"))
    note = widgets.HTML(
        "<small>Anchored on healthy recoveries from Catassi et al. 1997 (doi:10.1136/gut.40.2.215). "
        "The leak and mannitol multipliers, their linear effect and the urine volume are "
        "<b>illustrative design choices</b>, not fitted physiology.</small>"
    )

    def update(change=None) -> None:
        lactulose_g, mannitol_g = SUGAR_PROTOCOLS[protocol.value]
        result = sugar_test_scenario(leak.value, mannitol.value, lactulose_dose_g=lactulose_g,
                                     mannitol_dose_g=mannitol_g, urine_volume_ml=volume.value)
        readout.value = _readout_html(result, lactulose_g, mannitol_g)
        fig = Figure(figsize=(6.5, 3.6), layout="constrained")
        plot_lm_curve(leak_curve(mannitol.value), ax=fig.add_subplot(), cutoffs=LM_CUTOFFS, current=leak.value)
        image.value = _png(fig)

    for control in (leak, mannitol, protocol, volume):
        control.observe(update, names="value")
    update()
    return widgets.VBox([leak, mannitol, protocol, volume, readout, image, note])


UPDATE_CASES: list[tuple[str, Callable, dict]] = [
    ("sugar_test_scenario: one slider move", sugar_test_scenario,
     {"leak_multiplier": 4.0, "mannitol_uptake": 0.8, "lactulose_dose_g": 5.0, "mannitol_dose_g": 2.0,
      "urine_volume_ml": 500.0}),
    ("leak_curve: redraw the curve", leak_curve, {"mannitol_uptake": 0.8}),
]
