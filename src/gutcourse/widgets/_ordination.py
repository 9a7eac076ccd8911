"""Explorer for notebook 06: a metric and input picker that redraws a PCoA.

The pure function :func:`ordination_view` takes a prepared input (counts,
proportions, or repeated rarefaction), computes one distance matrix with
scikit-bio, ordinates it with scikit-bio's PCoA and summarises how the
ordination relates to one metadata column. The builder prepares the three
inputs once, so that one update stays well under 100 ms.
scikit-bio is imported inside the functions to keep ``import gutcourse.widgets`` light.

The "rarefied" input is the mean distance over many rarefied draws (what
vegan's ``avgdist`` and mothur compute), never one rarefied table: problem set 2
asks students to write ``rarefy``, and no course helper may hand them its answer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from threadpoolctl import threadpool_limits

__all__ = ["METRICS", "INPUTS", "ITERATIONS", "RepeatedRarefaction", "prepare_inputs",
           "ordination_view", "ordination_explorer"]

METRICS: dict[str, str] = {
    "braycurtis": "Bray-Curtis (abundance)",
    "jaccard": "Jaccard (presence/absence)",
    "aitchison": "Aitchison (Euclidean on CLR)",
}
INPUTS: dict[str, str] = {
    "counts": "raw counts",
    "proportions": "proportions",
    "rarefied": "rarefied counts (mean of repeated draws)",
}
#: Rarefied draws averaged per distance (vegan's ``avgdist`` default).
ITERATIONS = 100


class RepeatedRarefaction:
    """Distances averaged over repeated rarefaction: the explorer's "rarefied" input.

    Every iteration subsamples each kept sample to ``depth`` reads without
    replacement and computes every metric's distance matrix; the matrices are
    averaged over the iterations, as vegan's ``avgdist`` does (after mothur).
    Repeating the draw is what Schloss (2024, doi:10.1128/msphere.00355-23)
    calls rarefaction, as opposed to rarefying once: one draw adds noise, the
    average uses all the reads.

    The object holds only the averaged distances, never a rarefied table.

    Parameters
    ----------
    counts : pandas.DataFrame, shape (n_samples, n_taxa)
        Integer read counts.
    depth : int, optional
        Reads drawn per sample and iteration; defaults to the smallest sample
        total, so no sample is lost. Samples with fewer reads are left out.
    iterations : int
        Number of draws averaged.
    seed : int
        Seed of the draws.

    Attributes
    ----------
    index : pandas.Index
        The samples kept (at least ``depth`` reads).
    depth, iterations : int
    """

    def __init__(self, counts: pd.DataFrame, *, depth: int | None = None,
                 iterations: int = ITERATIONS, seed: int = 0):
        values = counts.to_numpy()
        if not np.issubdtype(values.dtype, np.integer) or (values < 0).any():
            raise ValueError("`counts` must hold non-negative integer read counts")
        totals = values.sum(axis=1)
        self.depth = int(totals.min()) if depth is None else int(depth)
        if self.depth < 1:
            raise ValueError("`depth` must be a positive number of reads")
        self.iterations = int(iterations)
        if self.iterations < 1:
            raise ValueError("`iterations` must be at least 1")
        kept = totals >= self.depth
        if kept.sum() < 2:
            raise ValueError("fewer than 2 samples have `depth` reads: no distance to compute")
        self.index = counts.index[kept]
        self._values = values[kept]
        self._seed = seed
        self._distances: dict | None = None

    def distances(self, metric: str):
        """The averaged `skbio.DistanceMatrix` of `metric` (one of :data:`METRICS`)."""
        if metric not in METRICS:
            raise ValueError(f"`metric` must be one of {list(METRICS)}")
        if self._distances is None:
            self._distances = self._average()
        return self._distances[metric]

    def _average(self) -> dict:
        from skbio import DistanceMatrix

        rng = np.random.default_rng(self._seed)
        n, ids = len(self.index), [str(i) for i in self.index]
        sums = {metric: np.zeros((n, n)) for metric in METRICS}
        draws = np.stack([rng.multivariate_hypergeometric(row, self.depth, size=self.iterations)
                          for row in self._values], axis=1)
        for drawn in draws:
            for metric in METRICS:
                sums[metric] += _distance_matrix(drawn, metric, ids).data
        return {metric: DistanceMatrix(total / self.iterations, ids)
                for metric, total in sums.items()}


def prepare_inputs(counts: pd.DataFrame, *, depth: int | None = None,
                   seed: int = 0) -> dict:
    """The three inputs the explorer can ordinate.

    Parameters
    ----------
    counts : pandas.DataFrame, shape (n_samples, n_taxa)
        Integer read counts.
    depth : int, optional
        Rarefaction depth; defaults to the smallest sample total, so no sample is lost.
    seed : int
        Seed of the repeated rarefaction.

    Returns
    -------
    dict
        ``counts`` and ``proportions`` tables (samples x taxa), and ``rarefied``:
        a `RepeatedRarefaction` (distances averaged over :data:`ITERATIONS`
        rarefied draws; samples with fewer than ``depth`` reads left out).
    """
    return {
        "counts": counts,
        "proportions": counts.div(counts.sum(axis=1), axis=0),
        "rarefied": RepeatedRarefaction(counts, depth=depth, seed=seed),
    }


def _distance_matrix(table, metric: str, ids=None):
    """Distance matrix of a samples x taxa DataFrame, or of an array with its `ids`."""
    from skbio.diversity import beta_diversity
    from skbio.stats.composition import clr, multi_replace

    if ids is None:
        ids = [str(i) for i in table.index]
    values = np.asarray(table, dtype=float)
    if metric == "aitchison":
        # CLR needs positive parts: zeros get a multiplicative replacement first.
        return beta_diversity("euclidean", clr(multi_replace(values)), ids=ids, validate=False)
    if metric == "jaccard":
        return beta_diversity("jaccard", values > 0, ids=ids)
    return beta_diversity(metric, values, ids=ids)


def _permanova(d: np.ndarray, labels: np.ndarray, permutations: int, seed: int):
    """Pseudo-F and permutation p-value, vectorised over permutations.

    Same statistic as ``skbio.stats.distance.permanova``:
    F = [SS_between / (g - 1)] / [SS_within / (n - g)].
    """
    n = labels.size
    levels, codes = np.unique(labels, return_inverse=True)
    g = levels.size
    d2 = d**2
    ss_total = d2.sum() / (2 * n)
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.tile(codes, (permutations, 1)), axis=1)
    perms = np.vstack([codes, shuffled])
    onehot = np.eye(g)[perms]  # (P, n, g)
    sizes = onehot.sum(axis=1)  # (P, g)
    within = (onehot * (d2 @ onehot)).sum(axis=1) / (2 * sizes)
    ss_within = within.sum(axis=1)
    f = ((ss_total - ss_within) / (g - 1)) / (ss_within / (n - g))
    p_value = (np.sum(f[1:] >= f[0] - 1e-12) + 1) / (permutations + 1)
    return float(f[0]), float(p_value)


def ordination_view(table: pd.DataFrame, metadata: pd.DataFrame, *,
                    metric: str = "braycurtis", color_by: str = "sex",
                    permutations: int = 999, seed: int = 0) -> dict:
    """PCoA of one distance matrix and how its axes relate to one metadata column.

    Parameters
    ----------
    table : pandas.DataFrame, shape (n_samples, n_taxa), or RepeatedRarefaction
        Counts or proportions, samples as rows; or the ``rarefied`` input of
        `prepare_inputs`, whose distances are averaged over repeated draws.
    metadata : pandas.DataFrame
        One row per sample, indexed like ``table`` (or with a ``sample_id`` column).
    metric : {"braycurtis", "jaccard", "aitchison"}
        Bray-Curtis on the values given; Jaccard on presence/absence;
        Aitchison = Euclidean distance between CLR-transformed compositions
        (zeros replaced multiplicatively).
    color_by : str
        A metadata column. A categorical column is tested with PERMANOVA;
        a numeric one with Spearman correlations against PC1 and PC2.
    permutations : int
        Permutations for PERMANOVA.
    seed : int
        Seed for the permutations.

    Returns
    -------
    dict
        ``coordinates`` (DataFrame with ``PC1``, ``PC2``), ``explained``
        (tuple of two proportions), ``negative_share`` (sum of |negative
        eigenvalues| / sum of positive ones; 0 for a Euclidean distance),
        ``color`` (the metadata column aligned on the samples) and ``test``
        (dict with ``name``, ``statistic`` and ``p_value``, plus ``rho_pc2``
        and ``p_value_pc2`` for a numeric column).
    """
    if metric not in METRICS:
        raise ValueError(f"`metric` must be one of {list(METRICS)}")
    if "sample_id" in metadata.columns:
        metadata = metadata.set_index("sample_id")
    if color_by not in metadata.columns:
        raise ValueError(f"`color_by` must be a column of `metadata`, not {color_by!r}")
    color = metadata[color_by].reindex(table.index)
    if color.isna().any():
        raise ValueError("every sample in `table` needs a value in `metadata`")

    # Matrices this small are faster on one thread, and on a busy machine
    # (a class server, parallel tests) multithreaded BLAS and OpenMP spin and
    # slow down by an order of magnitude.
    with threadpool_limits(limits=1):
        return _ordination_view(table, color, metric, permutations, seed)


def _ordination_view(table, color, metric, permutations, seed) -> dict:
    from skbio.stats.ordination import pcoa

    if isinstance(table, RepeatedRarefaction):
        dm = table.distances(metric)
    else:
        dm = _distance_matrix(table, metric)
    with warnings.catch_warnings():
        # Negative eigenvalues are reported below as `negative_share` instead.
        warnings.simplefilter("ignore", RuntimeWarning)
        result = pcoa(dm)
    coords = result.samples.iloc[:, :2].copy()
    coords.index = table.index
    coords.columns = ["PC1", "PC2"]
    # Axis signs are arbitrary; fix them so redraws do not flip at random.
    for column in coords:
        if coords[column].iloc[np.argmax(np.abs(coords[column].to_numpy()))] < 0:
            coords[column] = -coords[column]
    d = dm.data
    n = d.shape[0]
    centring = np.eye(n) - 1.0 / n
    eigvals = np.linalg.eigvalsh(-0.5 * centring @ (d**2) @ centring)
    negative_share = float(-eigvals[eigvals < 0].sum() / eigvals[eigvals > 0].sum())
    explained = tuple(float(v) for v in result.proportion_explained.iloc[:2])

    if pd.api.types.is_numeric_dtype(color):
        rho1, p1 = spearmanr(coords["PC1"], color)
        rho2, p2 = spearmanr(coords["PC2"], color)
        test = {"name": "Spearman rho with PC1", "statistic": float(rho1), "p_value": float(p1),
                "rho_pc2": float(rho2), "p_value_pc2": float(p2)}
    else:
        f, p = _permanova(d, color.astype(str).to_numpy(), permutations, seed)
        test = {"name": "PERMANOVA pseudo-F", "statistic": f, "p_value": p,
                "permutations": permutations}
    return {"coordinates": coords, "explained": explained, "negative_share": negative_share,
            "color": color, "test": test}


def ordination_explorer(counts: pd.DataFrame, metadata: pd.DataFrame, *,
                        color_options: Sequence[str] | None = None,
                        depth: int | None = None, seed: int = 0):
    """Pick a distance, an input and a colouring; the PCoA and its test redraw.

    Parameters
    ----------
    counts : pandas.DataFrame
        Integer read counts, samples x taxa.
    metadata : pandas.DataFrame
        Per-sample metadata (indexed by, or with a column, ``sample_id``).
    color_options : sequence of str, optional
        Metadata columns offered for colouring; by default every column except
        identifiers and ``group`` (the case/control question belongs to problem set 3).
    depth : int, optional
        Rarefaction depth for the "rarefied" input (default: smallest sample).
    seed : int
        Seed for the repeated rarefaction and the permutations.
    """
    import ipywidgets as w

    from ..plotting import plot_ordination
    from ._diversity import _figure_png, _image_widget, _table_html

    if "sample_id" in metadata.columns:
        metadata = metadata.set_index("sample_id")
    if color_options is None:
        color_options = [c for c in metadata.columns if c not in ("subject_id", "group")]
    inputs = prepare_inputs(counts, depth=depth, seed=seed)
    rarefied = inputs["rarefied"]
    rarefied.distances("braycurtis")  # draw once now, so no update waits for it
    metric = w.Dropdown(options=[(v, k) for k, v in METRICS.items()], value="braycurtis",
                        description="distance")
    source = w.Dropdown(options=[(v, k) for k, v in INPUTS.items()], value="proportions",
                        description="input")
    color_by = w.Dropdown(options=list(color_options), value=list(color_options)[0],
                          description="colour by")
    readout = w.HTML()
    image = _image_widget(b"")

    def update(*_):
        view = ordination_view(inputs[source.value], metadata, metric=metric.value,
                               color_by=color_by.value, seed=seed)
        title = f"PCoA, {METRICS[metric.value].split(' (')[0]} on {INPUTS[source.value]}"
        image.value = _figure_png(
            lambda ax: plot_ordination(view["coordinates"], ax=ax, color=view["color"],
                                       explained=view["explained"], color_label=color_by.value,
                                       title=title),
            figsize=(6.0, 4.6))
        test = view["test"]
        rows = [("samples", f"{len(view['coordinates'])}"
                 + (f" (rarefied to {rarefied.depth:,} reads, distances averaged over "
                    f"{rarefied.iterations} draws)" if source.value == "rarefied" else "")),
                ("variation on PC1 + PC2", f"{sum(view['explained']):.1%}"),
                ("negative eigenvalues (share of positive)", f"{view['negative_share']:.1%}"),
                (test["name"], f"{test['statistic']:.3f} (p = {test['p_value']:.3g})")]
        if "rho_pc2" in test:
            rows.append(("Spearman rho with PC2",
                         f"{test['rho_pc2']:.3f} (p = {test['p_value_pc2']:.3g})"))
        readout.value = _table_html(rows, "What the picture can and cannot tell you")

    for control in (metric, source, color_by):
        control.observe(update, names="value")
    update()
    return w.VBox([w.HBox([metric, source, color_by]), w.HBox([image, readout])])


def _benchmark_case() -> dict:
    from ._diversity import _benchmark_counts

    counts = _benchmark_counts()
    rng = np.random.default_rng(1)
    metadata = pd.DataFrame({"sex": rng.choice(["female", "male"], len(counts)),
                             "reads": counts.sum(axis=1)}, index=counts.index)
    return {"table": counts.div(counts.sum(axis=1), axis=0), "metadata": metadata,
            "metric": "braycurtis", "color_by": "sex"}


UPDATE_CASES: list[tuple[str, Callable, dict]] = [
    ("ordination: metric picker (Bray-Curtis, PERMANOVA 999)", ordination_view,
     _benchmark_case()),
    ("ordination: metric picker (Aitchison, Spearman)", ordination_view,
     {**_benchmark_case(), "metric": "aitchison", "color_by": "reads"}),
]
