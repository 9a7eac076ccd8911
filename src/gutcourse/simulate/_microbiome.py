"""Stool 16S genus counts of the synthetic ME/CFS cohort, and the genus taxonomy.

Counts follow a Dirichlet-multinomial (DM) per group (Holmes, Harris & Quince 2012,
doi:10.1371/journal.pone.0030126; La Rosa et al. 2012, doi:10.1371/journal.pone.0052078):
each sample's true proportions are Dirichlet with

.. math:: \\alpha_j = \\pi_j (1 - \\theta) / \\theta, \\qquad \\theta = 1 / (1 + \\textstyle\\sum_j \\alpha_j)

and its counts are multinomial at the sample's depth (`reads` in `mecfs_metadata`).
:math:`\\pi` is the group's mean composition and :math:`\\theta` the sample's
overdispersion, drawn around its group's value (:math:`\\theta \\to 0` gives the plain
multinomial, Yu & Shaw 2014, doi:10.1093/bioinformatics/btu079).
"""

from __future__ import annotations

import numpy as np

from ._cohort import CASE, Cohort
from ._taxa import BUTYRATE_PRODUCERS, GENERA, RAISED_FAMILY
from ._tables import Column, Table, fmt_int, make_table, stream

#: Overdispersion per group. Typical gut values are [NV]. Design choice: 0.05 in
#: controls gives genus-level Shannon about 2.6-2.8 (natural log; the low end of the
#: 2.2-5.6 published range, which spans finer feature resolutions, Nutrients
#: 2020;12:2551) and about 40% zero cells. ME/CFS samples are more overdispersed
#: (each is dominated by fewer genera), the main reason their alpha diversity is lower.
#: 0.075 was chosen by simulating many cohorts of this size: the median Mann-Whitney p
#: on Shannon is then about 0.003, the order of the p = 0.004 reported for phylogenetic
#: diversity (Du Preez 2018, Table 4, [V-2°]), and about 6 in 7 cohorts detect it.
THETA = {"control": 0.05, CASE: 0.075}
#: Samples differ in how uneven they are, not only by group: each sample's θ is its
#: group's θ times exp(0.5 z), z standard normal (design choice). One θ per group gives
#: a within-group Shannon SD near 0.2; this gives about 0.3, closer to real stool tables.
THETA_LOG_SD = 0.5

#: ME/CFS mean composition relative to control, before renormalising to 1.
#: Butyrate producers x 0.6: Guo et al. 2023 report them lower without a size usable
#: here ([NV]); design choice for a difference that is detectable but not certain per
#: genus at n = 87. Enterobacteriaceae x 2: 6% vs 3% (Du Preez 2018, Table 4, [V-2°]),
#: which with the other Proteobacteria gives about 9% Proteobacteria (review: 8%).
#: Rare Firmicutes (control share <= 0.3%) x 0.5: Giloteaux found Firmicutes "reduced in
#: abundance and in diversity" ([V]); the size is a design choice. Rare genera halved
#: are absent from more samples, so Firmicutes richness drops.
BUTYRATE_FACTOR, RAISED_FAMILY_FACTOR = 0.6, 2.0
RARE_FIRMICUTES_MAX_SHARE, RARE_FIRMICUTES_FACTOR = 0.003, 0.5


def group_composition(group: str) -> np.ndarray:
    """Mean genus proportions :math:`\\pi` of `group`, in `GENERA` order (sums to 1)."""
    pi = np.array([g[5] for g in GENERA])
    if group == CASE:
        names = [g[0] for g in GENERA]
        family = np.array([g[1] for g in GENERA])
        phylum = np.array([g[4] for g in GENERA])
        rare_firmicutes = (phylum == "Firmicutes") & (pi <= RARE_FIRMICUTES_MAX_SHARE)
        pi[rare_firmicutes] *= RARE_FIRMICUTES_FACTOR
        pi[[names.index(n) for n in BUTYRATE_PRODUCERS]] *= BUTYRATE_FACTOR
        pi[family == RAISED_FAMILY] *= RAISED_FAMILY_FACTOR
    return pi / pi.sum()


def simulate_counts(cohort: Cohort) -> Table:
    """Draw `mecfs_genus_counts`: samples x genera integer counts, rows sorted by `sample_id`.

    Dirichlet draws are normalised gamma draws (the textbook construction), so that
    the many small :math:`\\alpha_j` give exact zeros the way rare genera do; each
    row then sums to the sample's `reads`.
    """
    rng = stream("mecfs_genus_counts")
    counts = np.empty((len(cohort.sample_id), len(GENERA)), dtype=np.int64)
    for i, (group, reads) in enumerate(zip(cohort.group, cohort.reads, strict=True)):
        theta = min(THETA[group] * np.exp(THETA_LOG_SD * rng.standard_normal()), 0.5)
        gamma = rng.standard_gamma(group_composition(group) * (1 - theta) / theta)
        counts[i] = rng.multinomial(reads, gamma / gamma.sum())

    columns = [Column("sample_id", "str", "", "unique",
                      "Stool sample identifier; joins to mecfs_metadata.sample_id. Synthetic "
                      "data: simulated, not from real people.", "simulated")]
    columns += [Column(genus, "int64", "reads", "0..",
                       f"Reads assigned to the genus {genus} ({family}, {phylum}); simulated "
                       "from a Dirichlet-multinomial.", "simulated")
                for genus, family, _, _, phylum, _ in GENERA]
    cells = {"sample_id": list(cohort.sample_id)}
    cells.update({g[0]: fmt_int(counts[:, j]) for j, g in enumerate(GENERA)})
    return make_table("mecfs_genus_counts", columns, cells)


def taxonomy_table() -> Table:
    """`genus_taxonomy`: one row per genus of `mecfs_genus_counts`, in its column order."""
    ranks = ("genus", "family", "order", "class", "phylum")
    columns = [Column("genus", "str", "", "unique",
                      "Genus name, a column of mecfs_genus_counts. The names and ranks are real; "
                      "the abundances attached to them in this course are synthetic.", "derived")]
    columns += [Column(rank, "str", "", "",
                       f"{rank.capitalize()} of the genus in the classic (Greengenes/RDP-era) "
                       "classification; see datasets/README.md.", "derived")
                for rank in ranks[1:-1]]
    columns.append(Column("phylum", "str", "", "",
                          "Phylum of the genus, pre-2021 names as in most microbiome papers: "
                          "Firmicutes (now Bacillota), Bacteroidetes (Bacteroidota), "
                          "Actinobacteria (Actinomycetota), Proteobacteria (Pseudomonadota), "
                          "Verrucomicrobia (Verrucomicrobiota), Fusobacteria (Fusobacteriota).",
                          "derived"))
    cells = {rank: [g[k] for g in GENERA] for k, rank in enumerate(ranks)}
    return make_table("genus_taxonomy", columns, cells)
