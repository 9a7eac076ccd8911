"""A gastroenterology clinic's inflammation markers: clean (`clinic_markers`) and as exported (`clinic_markers_raw`).

The raw export is the clean table made messy the way lab and hospital exports are:
mixed CRP units with a units column, unit suffixes inside numbers, decimal commas,
missing-value codes, a below-detection-limit code, re-exported duplicate rows, stray
whitespace and inconsistent case, rows in export order. Every mess is reversible, so
a correct cleaning gives back `clinic_markers` exactly.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ._tables import (Column, Table, fmt_bool, fmt_float, lognormal_sigma_from_iqr, make_table,
                      stream, truncated)

#: Group sizes (a design choice).
GROUP_SIZES = {"healthy": 40, "ibs": 60, "ibd": 40}

#: Fecal calprotectin per group as (median µg/g, log-SD, lower bound). The brief has no
#: group medians ([NV]); the figures it does verify set the shape: at 50 µg/g, sensitivity
#: for IBD 100% and specificity 60% among non-IBD referrals (Banerjee et al., Frontline
#: Gastroenterol 6:20). So IBD is bounded below by 50 and 40% of IBS lie above 50:
#: median = 50 exp(-0.9 z_0.6) = 39.8 with log-SD 0.9. IBD median 400 and healthy
#: median 20 (log-SD 0.7) are design choices that put IBD mostly above the 150/250 referral
#: cutoffs and healthy mostly below 50 (NHS Borders and RUH Bath pathways). Values above
#: `CALPROTECTIN_MAX` are redrawn (design choice: no implausible extremes).
CALPROTECTIN = {"healthy": (20.0, 0.7, 1.0), "ibs": (39.8, 0.9, 1.0), "ibd": (400.0, 0.7, 50.0)}
CALPROTECTIN_MAX = 3000.0

#: hs-CRP, IL-6 and TNF-alpha in people without IBD: CoLaus medians and IQRs
#: (Marques-Vidal et al. 2011, doi:10.1371/journal.pone.0021002): CRP 1.3 (0.6-2.7) mg/L,
#: IL-6 1.47 (0.71-3.53) pg/mL, TNF-alpha 2.89 (1.82-4.53) pg/mL, as (median, log-SD).
CRP = (1.3, lognormal_sigma_from_iqr(0.6, 2.7))
IL6 = (1.47, lognormal_sigma_from_iqr(0.71, 3.53))
TNFA = (2.89, lognormal_sigma_from_iqr(1.82, 4.53))
#: IBD raises the acute-phase response; the size is [NV]. Design choice: CRP and IL-6
#: medians three and two times higher in IBD; TNF-alpha unchanged.
IBD_FACTOR = {"hs_crp_mg_l": 3.0, "il6_pg_ml": 2.0}
#: hs-CRP detection limit of the simulated assay (design choice): results below it are
#: reported as "<0.2" in the raw export. The clean table keeps what the lab reported:
#: no number in `hs_crp_mg_l` (empty) and `hs_crp_below_detection` true, so that a
#: below-detection result stays a result and is never confused with "not measured",
#: and no substitute value (LOD/2, LOD/sqrt 2) is passed off as a measurement.
CRP_LOD = 0.2
#: Zonulin kits report a signal that is not pre-haptoglobin-2 (Scheffler et al. 2018,
#: doi:10.3389/fendo.2018.00022; Ajamian et al. 2019, doi:10.1371/journal.pone.0210728);
#: typical kit values are [NV]. Design choice: median 40 ng/mL, log-SD 0.4, no group
#: difference.
ZONULIN = (40.0, 0.4)

#: How many values are missing (not measured) per column in the clean table.
N_MISSING = {"fecal_calprotectin_ug_g": 4, "hs_crp_mg_l": 2, "il6_pg_ml": 3, "tnfa_pg_ml": 2}
#: Decimals each clean column is reported with.
DECIMALS = {"fecal_calprotectin_ug_g": 0, "hs_crp_mg_l": 2, "il6_pg_ml": 2, "tnfa_pg_ml": 2,
            "zonulin_assay_ng_ml": 1}


def simulate_clinic() -> tuple[Table, dict[str, np.ndarray]]:
    """Draw `clinic_markers`: one row per patient, sorted by `subject_id`.

    Returns
    -------
    table : Table
        The clean table.
    values : dict of str to numpy.ndarray
        Its columns as arrays (rounded as written; NaN where missing), for `make_raw`.
    """
    rng = stream("clinic_markers")
    groups = np.concatenate([[g] * n for g, n in GROUP_SIZES.items()])
    n = len(groups)
    ibd = groups == "ibd"

    calprotectin = np.empty(n)
    for group, (median, sigma, low) in CALPROTECTIN.items():
        rows = groups == group
        calprotectin[rows] = truncated(partial(rng.lognormal, np.log(median), sigma, rows.sum()),
                                       low, CALPROTECTIN_MAX)
    values = {"fecal_calprotectin_ug_g": calprotectin}
    for column, (median, sigma) in (("hs_crp_mg_l", CRP), ("il6_pg_ml", IL6), ("tnfa_pg_ml", TNFA)):
        factor = np.where(ibd, IBD_FACTOR.get(column, 1.0), 1.0)
        values[column] = factor * rng.lognormal(np.log(median), sigma, n)
    values["zonulin_assay_ng_ml"] = rng.lognormal(np.log(ZONULIN[0]), ZONULIN[1], n)
    values = {c: np.round(v, DECIMALS[c]) for c, v in values.items()}

    crp_below_lod = values["hs_crp_mg_l"] < CRP_LOD
    values["hs_crp_mg_l"][crp_below_lod] = np.nan
    for column, k in N_MISSING.items():
        measured = np.flatnonzero(~np.isnan(values[column]))
        values[column][rng.choice(measured, size=k, replace=False)] = np.nan

    subject_id = np.array([f"C{i + 1:03d}" for i in rng.permutation(n)])
    order = np.argsort(subject_id)
    values = {c: v[order] for c, v in values.items()}
    values["subject_id"], values["group"] = subject_id[order], groups[order]
    values["hs_crp_below_detection"] = crp_below_lod[order]

    columns = (
        Column("subject_id", "str", "", "unique",
               "Patient identifier. Synthetic data: simulated, not from real people.", "simulated"),
        Column("group", "str", "", "|".join(GROUP_SIZES),
               "Final diagnosis: healthy volunteer, irritable bowel syndrome, or inflammatory "
               "bowel disease.", "simulated"),
        Column("fecal_calprotectin_ug_g", "float64", "µg/g", "0..",
               "Fecal calprotectin. Pathway cutoffs: <50 normal, 50-150 equivocal, >150 refer "
               "(NHS Borders); <100, 100-250, >250 (RUH Bath). Empty: not measured.",
               "simulated", nullable=True),
        Column("hs_crp_mg_l", "float64", "mg/L", "0..",
               "Serum high-sensitivity C-reactive protein. Empty: no number was reported, "
               f"either because it was not measured or because the result was below the assay's "
               f"{CRP_LOD:g} mg/L detection limit; hs_crp_below_detection says which.",
               "simulated", nullable=True),
        Column("hs_crp_below_detection", "bool", "", "",
               f"true: hs-CRP was measured and the result was below the {CRP_LOD:g} mg/L "
               f"detection limit (reported as <{CRP_LOD:g} mg/L; hs_crp_mg_l is empty). "
               "false: a value was reported, or hs-CRP was not measured.", "derived"),
        Column("il6_pg_ml", "float64", "pg/mL", "0..",
               "Serum interleukin-6. Empty: not measured.", "simulated", nullable=True),
        Column("tnfa_pg_ml", "float64", "pg/mL", "0..",
               "Serum tumour necrosis factor alpha. Empty: not measured.", "simulated",
               nullable=True),
        Column("zonulin_assay_ng_ml", "float64", "ng/mL", "0..",
               "Result of a commercial ELISA kit sold as a zonulin test, in ng/mL as "
               "the kit reports it.", "simulated"),
    )
    cells = {"subject_id": list(values["subject_id"]), "group": list(values["group"])}
    for column, decimals in DECIMALS.items():
        cells[column] = fmt_float(values[column], decimals)
        if column == "hs_crp_mg_l":
            cells["hs_crp_below_detection"] = fmt_bool(values["hs_crp_below_detection"])
    return make_table("clinic_markers", columns, cells), values


def _mess_case(rng, text: str) -> str:
    """Return `text` in one of the case variants exports produce."""
    return (text.upper(), text.lower(), text.capitalize(), text)[rng.integers(4)]


def _mess_space(rng, text: str, rate: float) -> str:
    """Pad `text` with a stray space before or after it, with probability `rate`."""
    if rng.random() >= rate:
        return text
    return (f" {text}", f"{text} ", f"  {text}")[rng.integers(3)]


def make_raw(values: dict[str, np.ndarray]) -> Table:
    """Turn the clean columns into the messy `clinic_markers_raw` export.

    Parameters
    ----------
    values : dict of str to numpy.ndarray
        The second value returned by `simulate_clinic`.

    Notes
    -----
    The messes, each reversible:

    - ``subject_id``: lower case or padded with spaces in some rows;
    - ``group``: any case, sometimes padded;
    - ``fecal_calprotectin_ug_g``: some values carry a unit suffix (``"87 ug/g"``);
      missing is ``"NA"`` or ``"-"``;
    - ``hs_crp`` with ``hs_crp_unit``: about a quarter in mg/dL (value / 10), unit
      spelled in mixed case; below the detection limit ``"<0.2"`` (``"<0.02"`` in
      mg/dL); missing is ``"-99"``;
    - ``il6_pg_ml``: missing is ``"NA"`` or empty; some values padded with spaces;
    - ``tnfa_pg_ml``: some values carry ``" pg/mL"``; missing is ``"-"``;
    - ``zonulin_assay_ng_ml``: some values written with a decimal comma;
    - six patients exported twice (the copy differs only in case and whitespace);
    - rows in export order, not sorted.
    """
    rng = stream("clinic_markers_raw")
    n = len(values["subject_id"])
    rows = []
    for i in range(n):
        sid = values["subject_id"][i]
        subject = _mess_space(rng, sid.lower() if rng.random() < 0.1 else sid, 0.1)
        group = _mess_space(rng, _mess_case(rng, values["group"][i]), 0.1)

        cal = values["fecal_calprotectin_ug_g"][i]
        if np.isnan(cal):
            cal_text = ("NA", "-")[rng.integers(2)]
        else:
            cal_text = f"{cal:.0f}" + (" ug/g" if rng.random() < 0.1 else "")

        in_mg_dl = rng.random() < 0.25
        unit = _mess_case(rng, "mg/dL") if in_mg_dl else ("mg/L", "mg/l")[rng.integers(2)]
        crp = values["hs_crp_mg_l"][i]
        if values["hs_crp_below_detection"][i]:
            crp_text = f"<{CRP_LOD / 10:g}" if in_mg_dl else f"<{CRP_LOD:g}"
        elif np.isnan(crp):
            crp_text = "-99"
        else:
            # one more decimal in mg/dL keeps the conversion exact
            crp_text = f"{crp / 10:.3f}" if in_mg_dl else f"{crp:.2f}"

        il6 = values["il6_pg_ml"][i]
        il6_text = ("NA", "")[rng.integers(2)] if np.isnan(il6) else _mess_space(rng, f"{il6:.2f}", 0.1)
        tnfa = values["tnfa_pg_ml"][i]
        tnfa_text = "-" if np.isnan(tnfa) else f"{tnfa:.2f}" + (" pg/mL" if rng.random() < 0.1 else "")
        zonulin_text = f"{values['zonulin_assay_ng_ml'][i]:.1f}"
        if rng.random() < 0.1:
            zonulin_text = zonulin_text.replace(".", ",")
        rows.append((subject, group, cal_text, crp_text, unit, il6_text, tnfa_text, zonulin_text))

    duplicated = rng.choice(n, size=6, replace=False)
    for i in duplicated:
        subject, group, *rest = rows[i]
        rows.append((_mess_space(rng, subject.strip().upper(), 0.5),
                     _mess_case(rng, group.strip()), *rest))
    rows = [rows[i] for i in rng.permutation(len(rows))]

    names = ("subject_id", "group", "fecal_calprotectin_ug_g", "hs_crp", "hs_crp_unit",
             "il6_pg_ml", "tnfa_pg_ml", "zonulin_assay_ng_ml")
    described = {
        "subject_id": "Patient identifier as typed (case and whitespace vary; some patients "
                      "appear twice). Synthetic data: simulated, not from real people.",
        "group": "Diagnosis as typed (healthy, IBS or IBD; case and whitespace vary).",
        "fecal_calprotectin_ug_g": "Fecal calprotectin in µg/g as exported; may carry a unit "
                                   "suffix; missing coded NA or -.",
        "hs_crp": "hs-CRP in the unit of hs_crp_unit; '<x' = below the detection limit; "
                  "-99 = not measured.",
        "hs_crp_unit": "Unit of hs_crp: mg/L or mg/dL (1 mg/dL = 10 mg/L), case varies.",
        "il6_pg_ml": "IL-6 in pg/mL as exported; missing coded NA or left empty.",
        "tnfa_pg_ml": "TNF-alpha in pg/mL as exported; may carry a unit suffix; missing coded -.",
        "zonulin_assay_ng_ml": "Zonulin-kit assay signal in ng/mL as exported; some values use "
                               "a decimal comma.",
    }
    columns = [Column(c, "str", "", "", described[c], "derived", nullable=True) for c in names]
    return make_table("clinic_markers_raw", columns,
                      {c: [r[k] for r in rows] for k, c in enumerate(names)})
