"""Explorers for notebooks 08 and 09: keeping bacteria off the epithelium, and how long a marker stays up.

Both are teaching toys, not physiological models.
Each pure function names which of its numbers come from a paper ([V], with the source)
and which are design choices made for the lesson ([NV]); the explorers say the same on screen.

- :func:`exclusion_profile` (notebook 08): bacteria that reach the edge of the inner,
  bacteria-poor zone must cross it to touch the epithelium.
  The zone's thickness is the one anchored number: about 50 µm for the inner mucus layer of mouse colon
  (Johansson et al. 2011, doi:10.1073/pnas.1006451107) and for the RegIIIγ-maintained zone of mouse small
  intestine (Vaishnava et al. 2011, doi:10.1126/science.1209791).
  How fast antimicrobial peptides thin the bacteria out with depth, and how many IgA-coated bacteria
  are held back at the edge, are [NV] design choices.
- :func:`marker_time_course` (notebook 09): a marker made at a constant extra rate while a stimulus lasts
  and cleared by first-order elimination.
  The anchored number is CRP's plasma half-life of about 19 h, which is constant whatever the
  concentration (stated in a Pepys-laboratory paper, "Rapid automated high sensitivity enzyme
  immunoassay of C-reactive protein", citing earlier work; see lecture 09 for what was checked).
  The rise over baseline, the stimulus length and every other half-life offered are [NV] design choices.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

import numpy as np
import pandas as pd

from ._markers import _png

__all__ = [
    "EXCLUSION_SETTINGS",
    "MARKER_HALF_LIVES",
    "exclusion_explorer",
    "exclusion_profile",
    "marker_kinetics",
    "marker_kinetics_explorer",
    "marker_time_course",
]

# [V] Inner mucus layer of mouse colon, about 50 µm (Johansson et al. 2011); the RegIIIγ-maintained
# bacteria-free zone of mouse small intestine, about 50 µm (Vaishnava et al. 2011).
MOUSE_INNER_ZONE_UM = 50.0

# [NV] Teaching choices: at antimicrobial strength 1 the bacterial density falls e-fold every 10 µm
# of the inner zone, and a coated bacterium is held back at the zone's edge with probability 0.9.
PENETRATION_LENGTH_UM = 10.0
COATED_HELD_BACK = 0.9

EXCLUSION_SETTINGS: dict[str, dict] = {
    "mouse colon, healthy": {
        "inner_zone_um": MOUSE_INNER_ZONE_UM, "amp_strength": 1.0, "iga_coating": 0.3,
        "source": "inner layer about 50 µm: Johansson et al. 2011, doi:10.1073/pnas.1006451107 (mouse)",
    },
    "Muc2-deficient mouse (no inner layer)": {
        "inner_zone_um": 0.0, "amp_strength": 1.0, "iga_coating": 0.3,
        "source": "bacteria on the epithelium without Muc2: Johansson et al. 2008, doi:10.1073/pnas.0803124105 (mouse)",
    },
    "RegIIIγ-deficient mouse, small intestine": {
        "inner_zone_um": MOUSE_INNER_ZONE_UM, "amp_strength": 0.2, "iga_coating": 0.3,
        "source": "zone lost without RegIIIγ: Vaishnava et al. 2011, doi:10.1126/science.1209791 (mouse); "
                  "the strength 0.2 is a teaching choice",
    },
}

# Half-lives offered by the marker explorer, in hours. Only CRP's is a literature value.
MARKER_HALF_LIVES: dict[str, dict] = {
    "CRP (about 19 h)": {
        "half_life_h": 19.0, "evidence": "V",
        "source": "'Rapid automated high sensitivity enzyme immunoassay of C-reactive protein' (Pepys laboratory)",
    },
    "short-lived marker (1 h, teaching choice)": {
        "half_life_h": 1.0, "evidence": "NV", "source": "design choice for the lesson",
    },
    "long-lived marker (72 h, teaching choice)": {
        "half_life_h": 72.0, "evidence": "NV", "source": "design choice for the lesson",
    },
}

# [NV] Teaching choices: while the stimulus lasts the marker is made fast enough to settle at
# 1 + 10 times its baseline; the stimulus lasts 24 h; the course is followed for a week.
DEFAULT_RISE = 10.0
DEFAULT_STIMULUS_H = 24.0
DEFAULT_FOLLOW_H = 168.0


def _check_range(name: str, value: float, low: float, high: float | None = None) -> float:
    value = float(value)
    if not (value >= low and (high is None or value <= high)) or math.isnan(value):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise ValueError(f"`{name}` must be {bound}, got {value!r}")
    return value


def exclusion_profile(
    inner_zone_um: float = MOUSE_INNER_ZONE_UM,
    amp_strength: float = 1.0,
    iga_coating: float = 0.3,
    *,
    penetration_length_um: float = PENETRATION_LENGTH_UM,
    coated_held_back: float = COATED_HELD_BACK,
    points: int = 121,
) -> dict:
    """Relative bacterial density across the inner zone, and the share that reaches the epithelium.

    Bacteria arrive at the outer edge of the inner, bacteria-poor zone at a relative density of 1.
    A share :math:`c` of them is coated with IgA, and each coated one is held back at the edge with
    probability :math:`h`. The rest enter, and antimicrobial peptides of strength :math:`a` thin them
    out e-fold every :math:`\\lambda_0 / a` µm:

    .. math::

        n(x) = (1 - h c)\\, e^{-x a / \\lambda_0}, \\qquad
        \\text{contact} = n(L) = (1 - h c)\\, e^{-L a / \\lambda_0}

    where :math:`x` is the depth into the zone (0 at its outer edge) and :math:`L` its thickness.

    Parameters
    ----------
    inner_zone_um : float
        Thickness of the inner, bacteria-poor zone in µm (0-500). About 50 µm in mouse colon
        (Johansson et al. 2011, doi:10.1073/pnas.1006451107) [V]; 0 models a Muc2-deficient mouse.
    amp_strength : float
        Antimicrobial strength relative to a healthy zone (0-5; 1 = healthy) [NV].
    iga_coating : float
        Share of arriving bacteria coated with IgA (0-1) [NV].
    penetration_length_um : float
        :math:`\\lambda_0`, the e-fold distance at strength 1 [NV]; default 10 µm.
    coated_held_back : float
        :math:`h`, the chance a coated bacterium is held back at the edge [NV]; default 0.9.
    points : int
        Number of depths at which the profile is given (at least 2).

    Returns
    -------
    dict
        ``depth_um`` (array, 0 to ``inner_zone_um``), ``density`` (array, relative to arrival),
        ``entering`` (share that enters the zone), ``contact`` (share that reaches the epithelium),
        ``contact_per_million`` and ``log10_contact`` (``-inf`` when none reach it).

    Notes
    -----
    With no zone (``inner_zone_um=0``) everything that enters touches the epithelium, so only
    IgA is left to hold bacteria back. With no antimicrobial activity (``amp_strength=0``) the zone
    is a gap, not a filter, and ``contact`` equals ``entering``.

    Examples
    --------
    >>> r = exclusion_profile(50, 1.0, 0.0)
    >>> round(r["contact"], 6) == round(math.exp(-5), 6)
    True
    """
    inner_zone_um = _check_range("inner_zone_um", inner_zone_um, 0.0, 500.0)
    amp_strength = _check_range("amp_strength", amp_strength, 0.0, 5.0)
    iga_coating = _check_range("iga_coating", iga_coating, 0.0, 1.0)
    penetration_length_um = _check_range("penetration_length_um", penetration_length_um, 1e-9)
    coated_held_back = _check_range("coated_held_back", coated_held_back, 0.0, 1.0)
    if int(points) < 2:
        raise ValueError(f"`points` must be at least 2, got {points!r}")
    entering = 1.0 - coated_held_back * iga_coating
    depth = np.linspace(0.0, inner_zone_um, int(points))
    density = entering * np.exp(-depth * amp_strength / penetration_length_um)
    contact = float(density[-1])
    return {
        "depth_um": depth,
        "density": density,
        "entering": entering,
        "contact": contact,
        "contact_per_million": contact * 1e6,
        "log10_contact": math.log10(contact) if contact > 0 else -math.inf,
    }


def _count(per_million: float) -> str:
    if per_million >= 100:
        return f"{per_million:,.0f}"
    if per_million >= 1:
        return f"{per_million:.1f}"
    return f"{per_million:.2g}"


def _exclusion_readout(result: dict, thickness: float) -> str:
    return (
        f"Of every million bacteria that reach the edge of a {thickness:.0f} µm inner zone, "
        f"<b>{100 * result['entering']:.0f}%</b> get past the IgA at its edge and about "
        f"<b>{_count(result['contact_per_million'])}</b> reach the epithelium "
        f"(log<sub>10</sub> share {result['log10_contact']:.1f}).<br>"
        "<small>Anchored: the inner zone is about 50 µm in mouse colon (Johansson et al. 2011, "
        "doi:10.1073/pnas.1006451107) and in mouse small intestine (Vaishnava et al. 2011, "
        "doi:10.1126/science.1209791). The antimicrobial thinning rate and the IgA hold-back are "
        "<b>illustrative design choices</b> [NV], not measured values.</small>"
    )


def _draw_exclusion(ax, result: dict, reference: dict) -> None:
    from gutcourse.plotting import PALETTE

    floor = 1e-9
    for res, label, colour, style in ((reference, "healthy mouse colon (reference)", PALETTE[7], "--"),
                                      (result, "your setting", PALETTE[0], "-")):
        depth = res["depth_um"]
        x = depth[-1] - depth  # distance from the epithelium: 0 at the cell surface
        ax.plot(x, np.maximum(res["density"], floor), linestyle=style, color=colour, linewidth=2, label=label)
        ax.plot(0.0, max(res["contact"], floor), marker="o", color=colour, markersize=8)
    ax.axvline(0.0, color="black", linewidth=3)
    ax.text(0.0, 2.0, "epithelium ", va="bottom", ha="right", fontsize="small")
    ax.set_yscale("log")
    ax.set_ylim(floor, 5.0)
    ax.set_xlim(-5, max(result["depth_um"][-1], reference["depth_um"][-1], 10) + 5)
    ax.invert_xaxis()
    ax.set_xlabel("distance from the epithelium (µm)")
    ax.set_ylabel("bacterial density (relative to arrival, log scale)")
    ax.set_title("Bacteria across the inner zone (teaching model)")
    ax.legend(loc="lower left", fontsize="small", frameon=False)


def exclusion_explorer():
    """Sliders for the inner zone's thickness, antimicrobial strength and IgA coating.

    Returns
    -------
    ipywidgets.VBox
        ``FloatSlider`` controls described ``"Inner zone (µm)"``, ``"Antimicrobial strength"`` and
        ``"IgA-coated share"``, a ``Dropdown`` described ``"Start from"`` with the settings of
        :data:`EXCLUSION_SETTINGS`, an ``HTML`` readout, an ``Image`` figure and a source note.
    """
    import ipywidgets as widgets
    from matplotlib.figure import Figure

    style = {"description_width": "160px"}
    layout = widgets.Layout(width="520px")
    healthy = EXCLUSION_SETTINGS["mouse colon, healthy"]
    thickness = widgets.FloatSlider(value=healthy["inner_zone_um"], min=0.0, max=150.0, step=5.0,
                                    description="Inner zone (µm)", readout_format=".0f", style=style,
                                    layout=layout, continuous_update=False)
    strength = widgets.FloatSlider(value=healthy["amp_strength"], min=0.0, max=3.0, step=0.1,
                                   description="Antimicrobial strength", readout_format=".1f", style=style,
                                   layout=layout, continuous_update=False)
    coating = widgets.FloatSlider(value=healthy["iga_coating"], min=0.0, max=1.0, step=0.05,
                                  description="IgA-coated share", readout_format=".2f", style=style,
                                  layout=layout, continuous_update=False)
    preset = widgets.Dropdown(options=list(EXCLUSION_SETTINGS), description="Start from", style=style,
                              layout=layout)
    readout = widgets.HTML()
    image = widgets.Image(format="png", layout=widgets.Layout(max_width="680px"))
    note = widgets.HTML()
    reference = exclusion_profile(healthy["inner_zone_um"], healthy["amp_strength"], healthy["iga_coating"])
    applying_preset = [False]  # one redraw per preset, not one per slider it sets

    def update(change=None) -> None:
        if applying_preset[0]:
            return
        result = exclusion_profile(thickness.value, strength.value, coating.value)
        readout.value = _exclusion_readout(result, thickness.value)
        fig = Figure(figsize=(7.0, 3.8), layout="constrained")
        _draw_exclusion(fig.add_subplot(), result, reference)
        image.value = _png(fig)

    def apply_preset(change=None) -> None:
        setting = EXCLUSION_SETTINGS[preset.value]
        note.value = f"<small>{escape(preset.value)}: {escape(setting['source'])}</small>"
        applying_preset[0] = True
        try:
            thickness.value = setting["inner_zone_um"]
            strength.value = setting["amp_strength"]
            coating.value = setting["iga_coating"]
        finally:
            applying_preset[0] = False
        update()

    for control in (thickness, strength, coating):
        control.observe(update, names="value")
    preset.observe(apply_preset, names="value")
    apply_preset()
    return widgets.VBox([thickness, strength, coating, preset, readout, image, note])


def marker_time_course(
    half_life_h: float = 19.0,
    *,
    stimulus_h: float = DEFAULT_STIMULUS_H,
    rise: float = DEFAULT_RISE,
    follow_h: float = DEFAULT_FOLLOW_H,
    step_h: float = 0.5,
) -> pd.DataFrame:
    """A marker's level, as a multiple of its baseline, before, during and after a stimulus.

    One compartment with first-order clearance :math:`k = \\ln 2 / t_{1/2}`.
    Basal production holds the marker at 1 (its baseline). From time 0 to :math:`T` (the stimulus)
    extra production adds enough to settle at :math:`1 + R`; afterwards it decays back:

    .. math::

        C(t) = 1 + R\\,(1 - e^{-k t}) \\quad (0 \\le t \\le T), \\qquad
        C(t) = 1 + R\\,(1 - e^{-k T})\\, e^{-k (t - T)} \\quad (t > T)

    Parameters
    ----------
    half_life_h : float
        Plasma half-life in hours (at least 0.05). CRP's is about 19 h
        (a Pepys-laboratory assay paper; lecture 09 gives the reference) [V].
    stimulus_h : float
        How long the extra production lasts, in hours [NV]; default 24.
    rise : float
        :math:`R`, the extra level the marker would settle at if the stimulus lasted for ever,
        in multiples of baseline [NV]; default 10.
    follow_h : float
        How long to follow the marker after the stimulus starts, in hours; default 168 (a week).
    step_h : float
        Time step of the table, in hours.

    Returns
    -------
    pandas.DataFrame
        Columns ``hours`` (from 0 to ``follow_h``) and ``fold_over_baseline``.
    """
    half_life_h = _check_range("half_life_h", half_life_h, 0.05)
    stimulus_h = _check_range("stimulus_h", stimulus_h, 0.0)
    rise = _check_range("rise", rise, 0.0)
    follow_h = _check_range("follow_h", follow_h, 1e-9)
    step_h = _check_range("step_h", step_h, 1e-6)
    k = math.log(2) / half_life_h
    hours = np.arange(0.0, follow_h + step_h / 2, step_h)
    during = 1.0 + rise * (1.0 - np.exp(-k * np.minimum(hours, stimulus_h)))
    level_at_end = rise * (1.0 - math.exp(-k * stimulus_h))
    after = 1.0 + level_at_end * np.exp(-k * np.clip(hours - stimulus_h, 0.0, None))
    fold = np.where(hours <= stimulus_h, during, after)
    return pd.DataFrame({"hours": hours, "fold_over_baseline": fold})


def marker_kinetics(
    half_life_h: float = 19.0,
    sample_h: float = 48.0,
    *,
    stimulus_h: float = DEFAULT_STIMULUS_H,
    rise: float = DEFAULT_RISE,
) -> dict:
    """What a single blood sample shows of a marker, given its half-life and when it was taken.

    Uses the closed form of :func:`marker_time_course`.

    Parameters
    ----------
    half_life_h : float
        Plasma half-life in hours (at least 0.05).
    sample_h : float
        When the sample is taken, in hours after the stimulus started (at least 0).
    stimulus_h, rise : float
        As in :func:`marker_time_course` [NV].

    Returns
    -------
    dict
        ``peak_fold`` (the highest level, reached when the stimulus ends), ``peak_h`` (when),
        ``fold_at_sample``, ``share_of_rise_at_sample`` (the sample's excess over baseline as a share
        of the peak's excess; 0 when there is no rise), ``hours_to_90pct_cleared`` (hours after the
        stimulus ends until 90% of the excess is gone: :math:`t_{1/2} \\log_2 10`) and ``half_life_h``.

    Examples
    --------
    >>> r = marker_kinetics(19.0, sample_h=24.0 + 19.0)
    >>> round(r["share_of_rise_at_sample"], 3)
    0.5
    """
    half_life_h = _check_range("half_life_h", half_life_h, 0.05)
    sample_h = _check_range("sample_h", sample_h, 0.0)
    stimulus_h = _check_range("stimulus_h", stimulus_h, 0.0)
    rise = _check_range("rise", rise, 0.0)
    k = math.log(2) / half_life_h
    peak_excess = rise * (1.0 - math.exp(-k * stimulus_h))
    if sample_h <= stimulus_h:
        excess = rise * (1.0 - math.exp(-k * sample_h))
    else:
        excess = peak_excess * math.exp(-k * (sample_h - stimulus_h))
    return {
        "half_life_h": half_life_h,
        "peak_fold": 1.0 + peak_excess,
        "peak_h": stimulus_h,
        "fold_at_sample": 1.0 + excess,
        "share_of_rise_at_sample": excess / peak_excess if peak_excess > 0 else 0.0,
        "hours_to_90pct_cleared": half_life_h * math.log2(10),
    }


def _kinetics_readout(result: dict, sample_h: float, stimulus_h: float) -> str:
    return (
        f"Half-life <b>{result['half_life_h']:g} h</b>: the marker peaks at "
        f"<b>{result['peak_fold']:.1f}&times;</b> baseline when the {stimulus_h:g} h stimulus ends, "
        f"and 90% of the excess is gone {result['hours_to_90pct_cleared']:.0f} h later.<br>"
        f"A sample taken at <b>{sample_h:g} h</b> reads <b>{result['fold_at_sample']:.2f}&times;</b> baseline, "
        f"{100 * result['share_of_rise_at_sample']:.0f}% of the peak's excess.<br>"
        "<small>Anchored: CRP's half-life is about 19 h and constant whatever its level (a Pepys-laboratory "
        "assay paper; lecture 09 gives the reference). The 10&times; rise, the stimulus and the other "
        "half-lives are <b>illustrative design choices</b> [NV].</small>"
    )


def _draw_kinetics(ax, half_life_h: float, stimulus_h: float, sample_h: float) -> None:
    from gutcourse.plotting import PALETTE

    crp = marker_time_course(MARKER_HALF_LIVES["CRP (about 19 h)"]["half_life_h"], stimulus_h=stimulus_h)
    yours = marker_time_course(half_life_h, stimulus_h=stimulus_h)
    ax.axvspan(0, stimulus_h, color=PALETTE[7], alpha=0.15, label="stimulus")
    ax.plot(crp["hours"], crp["fold_over_baseline"], color=PALETTE[7], linestyle="--", linewidth=2,
            label="CRP, half-life about 19 h")
    ax.plot(yours["hours"], yours["fold_over_baseline"], color=PALETTE[0], linewidth=2,
            label=f"half-life {half_life_h:g} h")
    ax.axvline(sample_h, color="black", linestyle=":", linewidth=1.5, label=f"sample at {sample_h:g} h")
    ax.set_xlim(0, DEFAULT_FOLLOW_H)
    ax.set_ylim(0, 1 + DEFAULT_RISE * 1.1)
    ax.set_xlabel("hours after the stimulus starts (h)")
    ax.set_ylabel("marker level (multiple of baseline)")
    ax.set_title("One stimulus, markers with different half-lives (teaching model)")
    ax.legend(loc="upper right", fontsize="small", frameon=False)


def marker_kinetics_explorer(half_life_h: float = 19.0):
    """Sliders for a marker's half-life, the stimulus length and when the sample is taken.

    Returns
    -------
    ipywidgets.VBox
        ``FloatSlider`` controls described ``"Half-life (h)"``, ``"Stimulus (h)"`` and
        ``"Sample at (h)"``, an ``HTML`` readout and an ``Image`` figure.
    """
    import ipywidgets as widgets
    from matplotlib.figure import Figure

    style = {"description_width": "120px"}
    layout = widgets.Layout(width="520px")
    half_life = widgets.FloatSlider(value=half_life_h, min=0.5, max=96.0, step=0.5, description="Half-life (h)",
                                    readout_format=".1f", style=style, layout=layout, continuous_update=False)
    stimulus = widgets.FloatSlider(value=DEFAULT_STIMULUS_H, min=1.0, max=96.0, step=1.0,
                                   description="Stimulus (h)", readout_format=".0f", style=style,
                                   layout=layout, continuous_update=False)
    sample = widgets.FloatSlider(value=48.0, min=0.0, max=DEFAULT_FOLLOW_H, step=1.0, description="Sample at (h)",
                                 readout_format=".0f", style=style, layout=layout, continuous_update=False)
    readout = widgets.HTML()
    image = widgets.Image(format="png", layout=widgets.Layout(max_width="680px"))

    def update(change=None) -> None:
        result = marker_kinetics(half_life.value, sample.value, stimulus_h=stimulus.value)
        readout.value = _kinetics_readout(result, sample.value, stimulus.value)
        fig = Figure(figsize=(7.0, 3.8), layout="constrained")
        _draw_kinetics(fig.add_subplot(), half_life.value, stimulus.value, sample.value)
        image.value = _png(fig)

    for control in (half_life, stimulus, sample):
        control.observe(update, names="value")
    update()
    return widgets.VBox([half_life, stimulus, sample, readout, image])


UPDATE_CASES: list[tuple[str, Callable, dict]] = [
    ("exclusion_profile: one slider move", exclusion_profile,
     {"inner_zone_um": 30.0, "amp_strength": 1.2, "iga_coating": 0.5}),
    ("marker_time_course: redraw a curve", marker_time_course, {"half_life_h": 6.0, "stimulus_h": 12.0}),
    ("marker_kinetics: one slider move", marker_kinetics, {"half_life_h": 6.0, "sample_h": 36.0}),
]
