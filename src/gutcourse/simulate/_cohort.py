"""The synthetic ME/CFS cohort: who was sampled (`mecfs_metadata`) and their serum markers.

The cohort is sized like Giloteaux et al. 2016, *Microbiome* 4:30
(doi:10.1186/s40168-016-0171-4): 48 ME/CFS cases and 39 controls, one stool sample
and one serum sample per subject.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from ._tables import (Column, Table, fmt_float, fmt_int, lognormal_from_mean_sd,
                      lognormal_sigma_from_iqr, make_table, stream, truncated)

CASE, CONTROL = "ME/CFS", "control"

#: (group, females, males). Controls: 30 F / 9 M as tabulated by Du Preez et al. 2018
#: (doi:10.1186/s13643-018-0909-0, Table 2). Cases: the review's "38 F, 11 M" sums to
#: 49, not the paper's 48 ([NV]); design choice: keep the 11 males, 37 females.
SEX_SPLIT = ((CASE, 37, 11), (CONTROL, 30, 9))

#: Age mean and SD per group from the proxy cohort of Guo et al. 2023
#: (doi:10.1016/j.chom.2023.01.004): 47.8 ± 13.7 vs 47.0 ± 14.1 years. Giloteaux's own
#: ages are [NV]; the range 19-71 is the one its public data imply (phyloseqExtra).
AGE = {CASE: (47.8, 13.7), CONTROL: (47.0, 14.1)}
AGE_RANGE = (19, 71)

#: BMI is [NV] in the brief. Design choice: log-normal, median 25.5 kg/m², log-SD 0.16
#: (about 19-35 for the middle 95%), the same in both groups so it is not a confounder.
BMI_MEDIAN, BMI_LOG_SD, BMI_RANGE = 25.5, 0.16, (16.0, 45.0)

#: Reads per sample: mean about 98,000 (Hanson, J IiMER 11(1):27, [V-2°]). The spread is
#: [NV]; design choice log-SD 0.45 so the deepest sample has about five times the reads
#: of the shallowest, which makes rarefaction worth teaching. Depth does not depend on group.
READS_MEAN, READS_LOG_SD, READS_RANGE = 98_000, 0.45, (10_000, 400_000)

#: Serum markers of control subjects: (column, median, log-SD, decimals).
#: LBP: 5.1 ± 2.2 µg/mL in healthy volunteers (Crit Care, ccforum cc2386) as a log-normal.
#: sCD14: median 0.89, IQR 0.74-1.18 µg/mL in HIV-negative adults (Open AIDS J 2017;11:24).
#: LPS: healthy reference [NV]; design choice median 15 pg/mL, below the 25.2 pg/mL median
#: of a treated-HIV cohort (J Infect Dis 2014;210:1549), log-SD 0.6 because LAL assays on
#: blood vary widely (J Infect Dis 1984;150:916; doi:10.1016/j.jim.2014.11.010).
#: hs-CRP: median 1.3, IQR 0.6-2.7 mg/L (CoLaus, doi:10.1371/journal.pone.0021002).
#: I-FABP: median 178 pg/mL in adult controls (Adriaanse 2013, Aliment Pharmacol Ther
#: 37:482); its spread is [NV], design choice log-SD 0.5.
_LBP_MEDIAN, _LBP_SIGMA = lognormal_from_mean_sd(5.1, 2.2)
SERUM = (
    ("lps_pg_ml", 15.0, 0.6, 1),
    ("lbp_ug_ml", _LBP_MEDIAN, _LBP_SIGMA, 2),
    ("scd14_ug_ml", 0.89, lognormal_sigma_from_iqr(0.74, 1.18), 3),
    ("crp_mg_l", 1.3, lognormal_sigma_from_iqr(0.6, 2.7), 2),
    ("ifabp_pg_ml", 178.0, 0.5, 1),
)

#: The translocation markers share one latent factor, so they are correlated with each
#: other (as Giloteaux reported) and all shifted in ME/CFS. The sizes are [NV]: the
#: abstract gives direction and correlation only. Design choice: the latent factor is
#: shifted by `LATENT_SHIFT` SD in ME/CFS and each marker loads `LOADING` on it, so each
#: marker moves 0.7 SD on the log scale and within-group log correlations are about 0.5.
TRANSLOCATION_MARKERS = ("lps_pg_ml", "lbp_ug_ml", "scd14_ug_ml")
LATENT_SHIFT, LOADING = 1.0, 0.7


@dataclass(frozen=True)
class Cohort:
    """Per-sample facts the other cohort tables are drawn from, in `sample_id` order."""

    sample_id: tuple[str, ...]
    subject_id: tuple[str, ...]
    group: tuple[str, ...]
    reads: tuple[int, ...]


def simulate_cohort() -> tuple[Cohort, Table]:
    """Draw the cohort and its `mecfs_metadata` table.

    Returns
    -------
    cohort : Cohort
        Sample and subject ids, group and sequencing depth, one entry per sample.
    table : Table
        ``mecfs_metadata``: one row per stool sample, sorted by `sample_id`.
    """
    rng = stream("mecfs_metadata")
    groups, sexes = [], []
    for group, females, males in SEX_SPLIT:
        groups += [group] * (females + males)
        sexes += ["female"] * females + ["male"] * males
    n = len(groups)
    groups, sexes = np.array(groups), np.array(sexes)

    age = np.empty(n)
    for group, (mean, sd) in AGE.items():
        rows = groups == group
        age[rows] = truncated(partial(rng.normal, mean, sd, rows.sum()), *AGE_RANGE)
    bmi = truncated(partial(rng.lognormal, np.log(BMI_MEDIAN), BMI_LOG_SD, n), *BMI_RANGE)
    reads_median = READS_MEAN * np.exp(-READS_LOG_SD**2 / 2)
    reads = truncated(partial(rng.lognormal, np.log(reads_median), READS_LOG_SD, n),
                       *READS_RANGE).round().astype(np.int64)

    # Subjects are numbered in a shuffled order and samples in another (the sequencing
    # run's), so neither id reveals the group and tables must be joined by key, not position.
    subject_order = rng.permutation(n)
    sample_order = rng.permutation(n)
    subject_id = np.array([f"P{i + 1:03d}" for i in subject_order])
    sample_id = np.array([f"S{i + 1:03d}" for i in sample_order])

    order = np.argsort(sample_id)
    cohort = Cohort(tuple(sample_id[order]), tuple(subject_id[order]),
                    tuple(groups[order]), tuple(int(r) for r in reads[order]))
    columns = (
        Column("sample_id", "str", "", "unique",
               "Stool sample identifier. Synthetic data: simulated, not from real people.",
               "simulated"),
        Column("subject_id", "str", "", "unique",
               "Subject identifier; joins to mecfs_serum_markers.subject_id.", "simulated"),
        Column("group", "str", "", f"{CASE}|{CONTROL}",
               "Diagnosis: ME/CFS (Fukuda 1994 criteria in the study modelled) or healthy control. "
               "Group sizes 48 and 39 as in Giloteaux et al. 2016 (doi:10.1186/s40168-016-0171-4).",
               "simulated"),
        Column("sex", "str", "", "female|male",
               "Sex; about 4 in 5 are female in both groups, as in the study modelled.",
               "simulated"),
        Column("age_years", "int64", "years", f"{AGE_RANGE[0]}..{AGE_RANGE[1]}",
               "Age at sampling in completed years; proxy distribution from Guo et al. 2023 "
               "(doi:10.1016/j.chom.2023.01.004).", "simulated"),
        Column("bmi", "float64", "kg/m2", f"{BMI_RANGE[0]:g}..{BMI_RANGE[1]:g}",
               "Body-mass index; illustrative distribution (design choice).", "simulated"),
        Column("reads", "int64", "reads", f"{READS_RANGE[0]}..{READS_RANGE[1]}",
               "16S rRNA reads assigned to a genus; equals the row sum of mecfs_genus_counts. "
               "Mean depth modelled on the study's ~98,000 reads per sample.", "simulated"),
    )
    cells = {
        "sample_id": list(cohort.sample_id),
        "subject_id": list(cohort.subject_id),
        "group": list(cohort.group),
        "sex": list(sexes[order]),
        "age_years": fmt_int(np.floor(age[order])),
        "bmi": fmt_float(bmi[order], 1),
        "reads": fmt_int(cohort.reads),
    }
    return cohort, make_table("mecfs_metadata", columns, cells)


def simulate_serum(cohort: Cohort) -> Table:
    """Draw `mecfs_serum_markers`: one serum sample per subject, sorted by `subject_id`.

    Each marker is log-normal. For the translocation markers (LPS, LBP, sCD14),

    .. math:: \\ln m_{ik} = \\ln \\tilde m_k + \\sigma_k\\left(\\lambda L_i + \\sqrt{1-\\lambda^2}\\,
              \\varepsilon_{ik}\\right), \\quad L_i = \\delta\\,[i \\in \\text{ME/CFS}] + z_i

    with :math:`z_i, \\varepsilon_{ik} \\sim N(0, 1)`, :math:`\\tilde m_k` the control median,
    :math:`\\lambda` = `LOADING` and :math:`\\delta` = `LATENT_SHIFT`. CRP and I-FABP are
    drawn from the same log-normal in both groups: nothing is planted in them.
    """
    rng = stream("mecfs_serum_markers")
    order = np.argsort(cohort.subject_id)
    subject_id = np.array(cohort.subject_id)[order]
    is_case = np.array(cohort.group)[order] == CASE
    n = len(subject_id)
    latent = LATENT_SHIFT * is_case + rng.standard_normal(n)

    cells = {"subject_id": list(subject_id)}
    for column, median, sigma, decimals in SERUM:
        noise = rng.standard_normal(n)
        if column in TRANSLOCATION_MARKERS:
            noise = LOADING * latent + np.sqrt(1 - LOADING**2) * noise
        cells[column] = fmt_float(median * np.exp(sigma * noise), decimals)

    columns = (
        Column("subject_id", "str", "", "unique",
               "Subject identifier; joins to mecfs_metadata.subject_id. Synthetic data: "
               "simulated, not from real people.", "simulated"),
        Column("lps_pg_ml", "float64", "pg/mL", "0..",
               "Serum lipopolysaccharide (endotoxin), LAL-type assay; such assays on blood "
               "are unreliable (J Infect Dis 1984;150:916; doi:10.1016/j.jim.2014.11.010).",
               "simulated"),
        Column("lbp_ug_ml", "float64", "µg/mL", "0..",
               "Serum LPS-binding protein, an acute-phase protein; healthy volunteers "
               "5.1 ± 2.2 µg/mL (Crit Care, cc2386).", "simulated"),
        Column("scd14_ug_ml", "float64", "µg/mL", "0..",
               "Serum soluble CD14; HIV-negative adults median 0.89 µg/mL (Open AIDS J 2017;11:24).",
               "simulated"),
        Column("crp_mg_l", "float64", "mg/L", "0..",
               "Serum C-reactive protein (high-sensitivity assay); population median 1.3 mg/L "
               "(doi:10.1371/journal.pone.0021002).", "simulated"),
        Column("ifabp_pg_ml", "float64", "pg/mL", "0..",
               "Serum intestinal fatty-acid-binding protein, a marker of enterocyte damage; "
               "control medians 20-330 pg/mL depending on assay (Adriaanse 2013).",
               "simulated"),
    )
    return make_table("mecfs_serum_markers", columns, cells)
