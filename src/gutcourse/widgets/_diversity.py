"""Explorers for notebooks 04 and 05: compositionality, alpha diversity, rarefaction.

Each explorer is a pure function (what tests and benchmarks call) plus a thin
ipywidgets builder that redraws a PNG and an HTML readout when a control moves.
The pure functions are explorer internals: they take explorer parameters
(a fold change, a richness and an evenness ratio, a depth), not a student's table
to be scored, and lean on scikit-bio for the metrics themselves.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from scipy.special import gammaln

__all__ = [
    "compositional_shift",
    "composition_explorer",
    "alpha_profile",
    "alpha_explorer",
    "rarefaction_view",
    "rarefaction_explorer",
]

# A toy gut community in arbitrary absolute units (10^9 cells per g of stool),
# chosen for readability, not taken from any study.
TOY_COMMUNITY: dict[str, float] = {
    "Bacteroides": 30.0,
    "Faecalibacterium": 20.0,
    "Roseburia": 15.0,
    "Prevotella": 10.0,
    "Escherichia": 5.0,
}


# ---- shared rendering -------------------------------------------------------

def _figure_png(draw: Callable, figsize=(6.0, 4.0), ncols: int = 1) -> bytes:
    """Render ``draw(axes)`` to PNG bytes without pyplot, so nothing global changes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained", dpi=90)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols) if ncols > 1 else fig.add_subplot()
    draw(axes)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _image_widget(png: bytes):
    import ipywidgets as w

    return w.Image(value=png, format="png", layout=w.Layout(max_width="720px"))


def _table_html(rows: list[tuple[str, str]], caption: str = "") -> str:
    body = "".join(f"<tr><td style='padding-right:1em'>{k}</td><td><b>{v}</b></td></tr>"
                   for k, v in rows)
    cap = f"<caption style='text-align:left'>{caption}</caption>" if caption else ""
    return f"<table>{cap}{body}</table>"


# ---- 04: compositionality ---------------------------------------------------

def compositional_shift(absolute: Mapping[str, float] | pd.Series | None = None,
                        taxon: str = "Escherichia", fold: float = 4.0) -> dict:
    """Multiply one taxon's absolute abundance and see every proportion move.

    Sequencing reports proportions, not cell counts, so a bloom of one taxon
    lowers the share of all others even when their absolute numbers do not change.

    Parameters
    ----------
    absolute : mapping or pandas.Series, optional
        Absolute abundance of each taxon before the change (any unit).
        Defaults to :data:`TOY_COMMUNITY`.
    taxon : str
        The taxon whose absolute abundance changes.
    fold : float
        The factor it changes by (> 0); 1 means no change.

    Returns
    -------
    dict
        ``absolute`` and ``relative``: DataFrames with rows ``before`` and ``after``
        and one column per taxon; ``apparent_fold``: Series of after / before
        proportions per taxon (1.0 for every taxon that truly did not change
        would be the honest answer; compositional data cannot give it).
    """
    before = pd.Series(TOY_COMMUNITY if absolute is None else absolute, dtype=float)
    if before.empty or (before < 0).any() or before.sum() <= 0:
        raise ValueError("`absolute` must hold non-negative amounts with a positive total")
    if taxon not in before.index:
        raise ValueError(f"`taxon` must be one of {list(before.index)}")
    if not fold > 0:
        raise ValueError("`fold` must be positive")
    after = before.copy()
    after[taxon] = before[taxon] * fold
    absolute_table = pd.DataFrame({"before": before, "after": after}).T
    relative_table = absolute_table.div(absolute_table.sum(axis=1), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        apparent = relative_table.loc["after"] / relative_table.loc["before"]
    return {"absolute": absolute_table, "relative": relative_table,
            "apparent_fold": apparent.rename("apparent_fold")}


def composition_explorer(absolute: Mapping[str, float] | None = None):
    """Slider for one taxon's true fold change; bars of absolute vs relative abundance."""
    import ipywidgets as w

    from ..plotting import plot_taxa_barplot

    community = dict(TOY_COMMUNITY if absolute is None else absolute)
    taxon = w.Dropdown(options=list(community), value=list(community)[-1],
                       description="taxon")
    fold = w.FloatLogSlider(value=4.0, base=2, min=-3, max=4, step=0.25,
                            description="true fold", readout_format=".2f",
                            continuous_update=False)
    readout = w.HTML()
    image = _image_widget(b"")

    def update(*_):
        result = compositional_shift(community, taxon.value, fold.value)

        def draw(axes):
            plot_taxa_barplot(result["absolute"], ax=axes[0], absolute=True,
                              unit="10^9 cells per g, toy", level="genus",
                              title="What is in the gut")
            plot_taxa_barplot(result["relative"], ax=axes[1], level="genus",
                              title="What sequencing reports")
            axes[0].get_legend().remove()
            axes[0].set_xlabel("state")
            axes[1].set_xlabel("state")

        image.value = _figure_png(draw, figsize=(8.0, 3.6), ncols=2)
        others = result["apparent_fold"].drop(taxon.value)
        rows = [(f"{name} (truly unchanged)", f"looks x{value:.2f}")
                for name, value in others.items()]
        rows.insert(0, (f"{taxon.value} (truly x{fold.value:.2f})",
                        f"looks x{result['apparent_fold'][taxon.value]:.2f}"))
        readout.value = _table_html(rows, "Change in relative abundance, after / before")

    taxon.observe(update, names="value")
    fold.observe(update, names="value")
    update()
    return w.VBox([w.HBox([taxon, fold]), image, readout])


# ---- 05: alpha diversity ----------------------------------------------------

def alpha_profile(richness: int = 10, ratio: float = 0.7) -> dict:
    """Alpha diversity of a toy community whose evenness is set by one ratio.

    Taxon *i* (0-based) has abundance proportional to ``ratio ** i``: with
    ``ratio = 1`` every taxon is equally common, and as ``ratio`` falls towards 0
    the first taxon dominates.

    .. math::

        p_i = r^i / \\sum_{j=0}^{S-1} r^j

    Parameters
    ----------
    richness : int
        Number of taxa S (1-200).
    ratio : float
        Evenness ratio r in (0, 1].

    Returns
    -------
    dict
        ``proportions`` (ndarray, shape (S,)), ``richness``, ``shannon_e``
        (natural log, nats), ``shannon_2`` (log base 2, bits, as QIIME 2 reports),
        ``effective_number`` (exp of Shannon, taxa), ``simpson`` (1 - sum p^2),
        ``dominance`` (sum p^2), ``inverse_simpson`` (1 / dominance, taxa) and
        ``pielou`` (Shannon / ln S; scikit-bio returns 1.0 for a single taxon).

    Notes
    -----
    Computed with scikit-bio's ``shannon``, ``simpson``, ``dominance`` and
    ``pielou_e``; the base-2 value uses ``shannon(..., base=2)``.
    """
    from skbio.diversity import alpha as _alpha

    richness = int(richness)
    if not 1 <= richness <= 200:
        raise ValueError("`richness` must be an integer between 1 and 200")
    if not 0 < ratio <= 1:
        raise ValueError("`ratio` must be in (0, 1]")
    weights = ratio ** np.arange(richness, dtype=float)
    p = weights / weights.sum()
    shannon_e = float(_alpha.shannon(p))
    dominance = float(_alpha.dominance(p))
    return {
        "proportions": p,
        "richness": richness,
        "shannon_e": shannon_e,
        "shannon_2": float(_alpha.shannon(p, base=2)),
        "effective_number": float(np.exp(shannon_e)),
        "simpson": float(_alpha.simpson(p)),
        "dominance": dominance,
        "inverse_simpson": 1.0 / dominance,
        "pielou": float(_alpha.pielou_e(p)),
    }


def alpha_explorer(richness: int = 10, ratio: float = 0.7):
    """Richness and evenness sliders driving Shannon, Simpson and Pielou."""
    import ipywidgets as w

    from ..plotting import plot_rank_abundance

    s_slider = w.IntSlider(value=richness, min=1, max=50, description="richness",
                           continuous_update=False)
    r_slider = w.FloatSlider(value=ratio, min=0.05, max=1.0, step=0.05,
                             description="evenness r", continuous_update=False)
    readout = w.HTML()
    image = _image_widget(b"")

    def update(*_):
        m = alpha_profile(s_slider.value, r_slider.value)
        image.value = _figure_png(lambda ax: plot_rank_abundance(m["proportions"], ax=ax),
                                  figsize=(5.5, 3.0))
        readout.value = _table_html([
            ("richness S", f"{m['richness']}"),
            ("Shannon H (natural log, nats)", f"{m['shannon_e']:.3f}"),
            ("Shannon H (log base 2, bits; QIIME 2)", f"{m['shannon_2']:.3f}"),
            ("effective number exp(H) (taxa)", f"{m['effective_number']:.2f}"),
            ("Gini-Simpson 1 - sum p^2", f"{m['simpson']:.3f}"),
            ("dominance sum p^2", f"{m['dominance']:.3f}"),
            ("inverse Simpson 1 / sum p^2 (taxa)", f"{m['inverse_simpson']:.2f}"),
            ("Pielou evenness J", f"{m['pielou']:.3f}"),
        ], "Alpha diversity of this community")

    s_slider.observe(update, names="value")
    r_slider.observe(update, names="value")
    update()
    return w.VBox([w.HBox([s_slider, r_slider]), w.HBox([image, readout])])


# ---- 05: rarefaction --------------------------------------------------------

def _log_choose(n, k):
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def _expected_richness(counts: np.ndarray, depths: np.ndarray) -> np.ndarray:
    """Expected taxa seen in a subsample of ``depths`` reads drawn without replacement.

    For one sample with total N and taxon counts N_i, a taxon is missed with
    probability C(N - N_i, n) / C(N, n) (hypergeometric), so
    E[S_n] = sum_i (1 - C(N - N_i, n) / C(N, n)).
    Returns shape (n_samples, n_depths), NaN where the depth exceeds N.
    """
    counts = np.asarray(counts, dtype=float)
    totals = counts.sum(axis=1)
    n = np.asarray(depths, dtype=float)[None, None, :]
    N = totals[:, None, None]
    Ni = counts[:, :, None]
    rest = N - Ni
    with np.errstate(invalid="ignore"):
        log_miss = _log_choose(rest, np.minimum(n, rest)) - _log_choose(N, np.minimum(n, N))
    miss = np.where(rest >= n, np.exp(log_miss), 0.0)
    miss = np.where(Ni > 0, miss, 1.0)
    expected = (1.0 - miss).sum(axis=1)
    return np.where(n[0] <= totals[:, None], expected, np.nan)


def rarefaction_view(counts: pd.DataFrame, depth: int, *, n_points: int = 25) -> dict:
    """What rarefying every sample to ``depth`` reads keeps and loses.

    Parameters
    ----------
    counts : pandas.DataFrame, shape (n_samples, n_taxa)
        Integer read counts, samples as rows.
    depth : int
        Rarefaction depth in reads (>= 1).
    n_points : int
        Number of log-spaced depths per rarefaction curve.

    Returns
    -------
    dict
        ``curves``: DataFrame (depths x samples) of expected taxa observed
        (NaN beyond a sample's own total); ``at_depth``: Series of expected taxa
        at ``depth`` for the samples that are kept; ``dropped``: list of sample ids
        with fewer than ``depth`` reads; ``reads_discarded``: share of all reads
        thrown away (dropped samples plus the excess of kept ones).

    Notes
    -----
    The curve is the exact expectation of random subsampling without replacement,
    so it is smooth and needs no seed; a single rarefied table (e.g.
    ``skbio.stats.subsample_counts``) scatters around it.
    """
    if not isinstance(counts, pd.DataFrame) or counts.empty:
        raise ValueError("`counts` must be a non-empty DataFrame (samples x taxa)")
    values = counts.to_numpy()
    if not np.issubdtype(values.dtype, np.integer) or (values < 0).any():
        raise ValueError("`counts` must hold non-negative integer read counts")
    depth = int(depth)
    if depth < 1:
        raise ValueError("`depth` must be a positive number of reads")
    totals = values.sum(axis=1)
    grid = np.unique(np.geomspace(1, max(totals.max(), 2), n_points).round().astype(int))
    curves = pd.DataFrame(_expected_richness(values, grid).T, index=pd.Index(grid, name="reads"),
                          columns=counts.index)
    kept = totals >= depth
    at_depth = pd.Series(_expected_richness(values[kept], np.array([depth]))[:, 0],
                         index=counts.index[kept], name="expected_taxa")
    discarded = 1.0 - depth * kept.sum() / totals.sum()
    return {"curves": curves, "at_depth": at_depth,
            "dropped": list(counts.index[~kept]), "reads_discarded": float(discarded)}


def rarefaction_explorer(counts: pd.DataFrame, depth: int | None = None):
    """A depth slider over rarefaction curves: samples kept, reads lost, taxa expected."""
    import ipywidgets as w

    from ..plotting import plot_rarefaction

    totals = counts.sum(axis=1)
    lowest, highest = int(totals.min()), int(totals.max())
    start = depth if depth is not None else lowest
    slider = w.IntSlider(value=start, min=10, max=highest, step=10,
                         description="depth (reads)", continuous_update=False,
                         layout=w.Layout(width="60%"), style={"description_width": "initial"})
    readout = w.HTML()
    image = _image_widget(b"")

    def update(*_):
        view = rarefaction_view(counts, slider.value)
        image.value = _figure_png(
            lambda ax: plot_rarefaction(view["curves"], ax=ax, depth=slider.value),
            figsize=(6.0, 3.8))
        at = view["at_depth"]
        rows = [
            ("samples kept", f"{at.size} of {len(counts)}"),
            ("samples dropped (too few reads)", f"{len(view['dropped'])}"),
            ("share of all reads thrown away", f"{view['reads_discarded']:.1%}"),
        ]
        if at.size:
            rows.append(("expected genera per kept sample, median (range)",
                         f"{at.median():.1f} ({at.min():.1f} to {at.max():.1f})"))
        readout.value = _table_html(rows, f"Rarefying to {slider.value:,} reads per sample")

    slider.observe(update, names="value")
    update()
    return w.VBox([slider, w.HBox([image, readout])])


# ---- benchmark cases ----------------------------------------------------------

def _benchmark_counts(n_samples: int = 87, n_taxa: int = 70, seed: int = 0) -> pd.DataFrame:
    """A seeded Dirichlet-multinomial table the size of the course cohort (not its data)."""
    rng = np.random.default_rng(seed)
    base = rng.dirichlet(np.full(n_taxa, 0.5)) * 30
    depths = rng.integers(20_000, 150_000, n_samples)
    rows = [rng.multinomial(d, rng.dirichlet(base)) for d in depths]
    index = pd.Index([f"S{i:03d}" for i in range(n_samples)], name="sample_id")
    return pd.DataFrame(rows, index=index, columns=[f"taxon_{j}" for j in range(n_taxa)])


UPDATE_CASES: list[tuple[str, Callable, dict]] = [
    ("composition: fold slider", compositional_shift, {"taxon": "Escherichia", "fold": 8.0}),
    ("alpha: richness/evenness sliders", alpha_profile, {"richness": 40, "ratio": 0.8}),
    ("rarefaction: depth slider", rarefaction_view,
     {"counts": _benchmark_counts(), "depth": 30_000}),
]
