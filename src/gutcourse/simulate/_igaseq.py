"""An IgA-SEQ study of people with and without IBD: sorted stool fractions and their 16S counts.

IgA-SEQ (Palm et al. 2014, Cell 158:1000, doi:10.1016/j.cell.2014.08.006) stains stool
bacteria with an anti-IgA antibody, sorts them by flow cytometry into an IgA-positive and an
IgA-negative fraction, and sequences the 16S rRNA gene of each fraction and of the unsorted
("presort") sample. The sorter reports how many bacterial events fell in each gate.

The simulation follows the bacteria, not the indices. Subject :math:`s` has a presort
composition :math:`\\pi_{s}` (Dirichlet, as in `_microbiome`) and every genus :math:`g` a
probability :math:`c_{sg}` that one of its cells is coated and lands in the IgA+ gate:

.. math:: \\operatorname{logit} c_{sg} = a_g + \\delta_g [\\text{IBD}] + u_s + \\varepsilon_{sg}

Then the IgA+ gate holds the share :math:`P_s = \\sum_g \\pi_{sg} c_{sg}` of all bacteria, the
IgA+ fraction has composition :math:`\\propto \\pi_{sg} c_{sg}` and the IgA- fraction
:math:`\\propto \\pi_{sg}(1 - c_{sg})`. The IgA- gate holds :math:`(1 - P_s)(1 - \\gamma_s)`:
a band of events :math:`\\gamma_s` between the two gates is not sorted, so the two shares do
not add up to 1. Jackson et al. 2021 (Microbiome, doi:10.1186/s40168-020-00992-w) show that
:math:`a^{+}_{sg} P_s / \\pi_{sg}` recovers :math:`c_{sg}`; in this model it does so exactly
up to sequencing noise. Every size below is a design choice ([NV]) unless a source is named.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ._taxa import GENERA
from ._tables import Column, Table, fmt_float, fmt_int, make_table, stream, truncated

IBD, CONTROL = "IBD", "control"
FRACTIONS = ("presort", "iga_pos", "iga_neg")

#: Cohort size [NV]: IgA-SEQ studies of people are small (Palm 2014 sorted stool from a few
#: dozen people); 30 with IBD and 26 controls is a design choice.
GROUP_SIZES = {IBD: 30, CONTROL: 26}

#: Share of stool bacteria coated with IgA (flow cytometry): healthy controls 36 ± 12%,
#: IBD 69 ± 19% in active disease and 50 ± 16% in long-term remission (van der Waaij et al.
#: 2004, Eur J Gastroenterol Hepatol 16:669, PMID 15201580, doi:10.1097/01.meg.0000108346.41221.19
#: as a PubMed mirror gives it).
#: Controls use the healthy figure. The IBD cohort mixes activity states: design choice
#: 55 ± 17%, between the active and remission figures. Truncated to 10-90%.
GATE_SHARE = {CONTROL: (0.36, 0.12), IBD: (0.55, 0.17)}
GATE_RANGE = (0.10, 0.90)
#: Events between the IgA+ and IgA- gates, not sorted: uniform 5-15% of the rest [NV].
GAP_RANGE = (0.05, 0.15)
#: Bacterial events the sorter records per stained sample [NV]: uniform 80,000-200,000.
EVENTS_RANGE = (80_000, 200_000)

#: Presort composition: the course's control genus means (`_taxa.GENERA`), Dirichlet-multinomial
#: overdispersion theta = 0.02 [NV] (less than the ME/CFS cohort's 0.05, `_microbiome.THETA`).
THETA = 0.02
#: IBD presort composition: Enterobacteriaceae and Pasteurellaceae (Haemophilus) are
#: higher in new-onset Crohn's disease (Gevers et al. 2014, Cell Host Microbe 15:382,
#: doi:10.1016/j.chom.2014.02.005); the factor 2 is a design choice.
IBD_ABUNDANCE_FACTOR = {"Enterobacteriaceae": 2.0, "Pasteurellaceae": 2.0}

#: Typical genus: a_g ~ N(logit 0.25, 0.6^2), drawn once per genus [NV].
BASE_COATING, BASE_LOGIT_SD = 0.25, 0.6
#: Highly coated in everybody: a_g = logit 0.9 [NV]. Akkermansia muciniphila OTUs were
#: strongly IgA-targeted in the twin study of Planer et al. 2016 (Nature 534:263,
#: doi:10.1038/nature17940, Extended Data Fig. 6); Haemophilus was among the most
#: IgA-recognised genera in stunted and non-stunted children (Huus et al. 2020, Microbiome,
#: doi:10.1186/s40168-020-00890-1). Streptococcus is a design choice.
HIGHLY_COATED = ("Akkermansia", "Haemophilus", "Streptococcus")
HIGH_COATING = 0.9
#: More coated in IBD: delta_g = +1.2 on the logit scale [NV]. Palm 2014 found that high IgA
#: coating marks colitogenic bacteria and Shapiro et al. 2021 (Cell Host Microbe,
#: doi:10.1016/j.chom.2020.12.003) found 43 taxa more coated in IBD than in controls; which
#: genera, and by how much, is a design choice.
IBD_COATED = ("Escherichia", "Ruminococcus", "Oscillospira")
IBD_COATING_SHIFT = 1.2
#: Subject-by-genus scatter of the coating logit [NV].
NOISE_SD = 0.5

#: 16S reads per sorted fraction [NV]: log-normal, median 30,000, log-SD 0.4, 8,000-120,000.
READS_MEDIAN, READS_LOG_SD, READS_RANGE = 30_000, 0.4, (8_000, 120_000)
#: Library noise on top of the multinomial (PCR, few sorted cells): Dirichlet with
#: theta = 0.002 around each fraction's composition [NV].
LIBRARY_THETA = 0.002


def _logit(p):
    return np.log(p / (1 - p))


def _expit(x):
    return 1 / (1 + np.exp(-x))


def _offset_for_share(pi: np.ndarray, logits: np.ndarray, share: float) -> float:
    """The subject offset u with sum(pi * expit(logits + u)) == share (bisection)."""
    low, high = -15.0, 15.0
    for _ in range(80):
        mid = (low + high) / 2
        if float(pi @ _expit(logits + mid)) < share:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def coating_logits() -> dict[str, np.ndarray]:
    """The genus baseline logits a_g and IBD shifts delta_g, in `GENERA` order."""
    rng = stream("iga_seq_coating")
    names = [g[0] for g in GENERA]
    base = _logit(BASE_COATING) + BASE_LOGIT_SD * rng.standard_normal(len(names))
    for genus in HIGHLY_COATED:
        base[names.index(genus)] = _logit(HIGH_COATING)
    shift = np.zeros(len(names))
    for genus in IBD_COATED:
        shift[names.index(genus)] = IBD_COATING_SHIFT
    return {"base": base, "ibd_shift": shift}


def group_composition(group: str) -> np.ndarray:
    """Mean presort genus proportions of `group`, in `GENERA` order (sums to 1)."""
    pi = np.array([g[5] for g in GENERA])
    if group == IBD:
        family = np.array([g[1] for g in GENERA])
        for name, factor in IBD_ABUNDANCE_FACTOR.items():
            pi[family == name] *= factor
    return pi / pi.sum()


def _dirichlet(rng, mean: np.ndarray, theta: float) -> np.ndarray:
    gamma = rng.standard_gamma(mean * (1 - theta) / theta)
    return gamma / gamma.sum()


def simulate_igaseq() -> tuple[Table, Table, dict]:
    """Draw `iga_seq_metadata` and `iga_seq_counts`.

    Returns
    -------
    metadata, counts : Table
        One row per sorted or presort sample, rows sorted by `sample_id`.
    truth : dict
        The simulated coating probabilities ``c`` (subjects x genera), subject ids,
        groups and true gate shares, for the unit tests.
    """
    rng = stream("iga_seq")
    logits = coating_logits()
    groups = np.array([g for g, n in GROUP_SIZES.items() for _ in range(n)])
    n_subjects, n_genera = len(groups), len(GENERA)
    subjects = np.array([f"P{i + 1:03d}" for i in rng.permutation(n_subjects)])

    coating = np.empty((n_subjects, n_genera))
    compositions = np.empty((n_subjects, len(FRACTIONS), n_genera))
    pos_share, neg_share = np.empty(n_subjects), np.empty(n_subjects)
    for s, group in enumerate(groups):
        pi = _dirichlet(rng, group_composition(group), THETA)
        mean, sd = GATE_SHARE[group]
        target = float(truncated(partial(rng.normal, mean, sd, 1), *GATE_RANGE)[0])
        subject_logits = (logits["base"] + logits["ibd_shift"] * (group == IBD)
                          + NOISE_SD * rng.standard_normal(n_genera))
        u = _offset_for_share(pi, subject_logits, target)
        c = _expit(subject_logits + u)
        coating[s] = c
        pos_share[s] = float(pi @ c)
        neg_share[s] = (1 - pos_share[s]) * (1 - rng.uniform(*GAP_RANGE))
        compositions[s, 0] = pi
        compositions[s, 1] = pi * c / (pi @ c)
        compositions[s, 2] = pi * (1 - c) / (pi @ (1 - c))

    events = rng.integers(EVENTS_RANGE[0], EVENTS_RANGE[1] + 1, size=n_subjects)
    n_samples = n_subjects * len(FRACTIONS)
    reads = np.round(truncated(partial(rng.lognormal, np.log(READS_MEDIAN), READS_LOG_SD, n_samples),
                               *READS_RANGE)).astype(np.int64)
    counts = np.empty((n_samples, n_genera), dtype=np.int64)
    for k in range(n_samples):
        s, f = divmod(k, len(FRACTIONS))
        counts[k] = rng.multinomial(reads[k], _dirichlet(rng, compositions[s, f], LIBRARY_THETA))
    reads = counts.sum(axis=1)
    sample_id = np.array([f"IGS{i + 1:03d}" for i in rng.permutation(n_samples)])

    subject_of = np.repeat(subjects, len(FRACTIONS))
    group_of = np.repeat(groups, len(FRACTIONS))
    fraction_of = np.tile(FRACTIONS, n_subjects)
    bacterial_events = np.repeat(events, len(FRACTIONS))
    share_of = np.column_stack([np.ones(n_subjects), pos_share, neg_share]).ravel()
    gate_events = np.round(bacterial_events * share_of).astype(np.int64)
    order = np.argsort(sample_id)

    metadata_columns = (
        Column("sample_id", "str", "", "unique",
               "Sequenced sample (one sorted fraction or the presort of one stool sample); "
               "joins to iga_seq_counts.sample_id. Synthetic data: simulated, not from real "
               "people.", "simulated"),
        Column("subject_id", "str", "", "",
               "Person who gave the stool sample; three rows (fractions) per person.", "simulated"),
        Column("group", "str", "", f"{IBD}|{CONTROL}",
               "Diagnosis: inflammatory bowel disease (IBD) or control without IBD.", "simulated"),
        Column("fraction", "str", "", "|".join(FRACTIONS),
               "What was sequenced: presort (stained sample before sorting), iga_pos (cells "
               "sorted from the IgA-positive gate) or iga_neg (cells sorted from the "
               "IgA-negative gate).", "simulated"),
        Column("bacterial_events", "int64", "events", "1..",
               "Bacterial events the sorter recorded for this person's stained sample "
               "(the same on the person's three rows).", "simulated"),
        Column("gate_events", "int64", "events", "0..",
               "Of those, events falling in this fraction's gate as the sorter reports them; "
               "equal to bacterial_events for the presort. Events between the IgA+ and IgA- "
               "gates are not sorted, so the two gates need not add up to bacterial_events.",
               "simulated"),
        Column("reads", "int64", "reads", "0..",
               "16S reads of this sample assigned to a genus (the row total in iga_seq_counts).",
               "derived"),
    )
    metadata_cells = {
        "sample_id": list(sample_id[order]),
        "subject_id": list(subject_of[order]),
        "group": list(group_of[order]),
        "fraction": list(fraction_of[order]),
        "bacterial_events": fmt_int(bacterial_events[order]),
        "gate_events": fmt_int(gate_events[order]),
        "reads": fmt_int(reads[order]),
    }
    count_columns = [Column("sample_id", "str", "", "unique",
                            "Sequenced sample; joins to iga_seq_metadata.sample_id. Synthetic "
                            "data: simulated, not from real people.", "simulated")]
    count_columns += [Column(genus, "int64", "reads", "0..",
                             f"Reads assigned to the genus {genus} ({family}, {phylum}).",
                             "simulated")
                      for genus, family, _, _, phylum, _ in GENERA]
    count_cells = {"sample_id": list(sample_id[order])}
    count_cells.update({g[0]: fmt_int(counts[order, j]) for j, g in enumerate(GENERA)})
    truth = {"subject_id": subjects, "group": groups, "coating": coating,
             "pos_share": pos_share, "neg_share": neg_share}
    return (make_table("iga_seq_metadata", metadata_columns, metadata_cells),
            make_table("iga_seq_counts", count_columns, count_cells), truth)
