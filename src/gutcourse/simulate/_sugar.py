"""The raw lactulose/mannitol sugar absorption test (`sugar_test`), as a lab sheet reports it.

A subject drinks a lactulose (L) and mannitol (M) dose and collects urine; the lab
reports urine volume and concentrations. What students compute follows from

.. math:: \\%L = \\frac{c_L\\,V}{D_L} \\times 100, \\qquad
          \\%M = \\frac{c_M\\,V}{D_M} \\times 100, \\qquad L{:}M = \\%L / \\%M

with :math:`c` in mg/L, :math:`V` in L and :math:`D` in mg (Catassi et al. 1997,
Gut 40:215, reports the ratio as "L%/M%"). The simulation runs this backwards: it
draws each subject's recoveries, then the concentrations the lab would measure.

Two protocols are mixed so that the ratio of urine concentrations, which is
:math:`L{:}M \\times D_L / D_M`, differs from L:M by a protocol-dependent factor.
"""

from __future__ import annotations

from functools import partial
from statistics import NormalDist

import numpy as np

from ._tables import (Column, Table, fmt_float, lognormal_from_mean_sd, make_table, stream,
                      truncated)

#: (name, lactulose g, mannitol g, collection h). 5 g + 2 g: Catassi 1997; 10 g + 5 g:
#: Sequeira et al. 2012/2014 (PLoS One 9:e99256). Collection windows are the classic
#: 5-6 h (doi:10.1111/nmo.12871); which protocol used which window is a design choice.
PROTOCOLS = (("catassi", 5.0, 2.0, 5.0), ("sequeira", 10.0, 5.0, 6.0))

_CELIAC_LM = 0.038
_HEALTHY_LM_SIGMA = lognormal_from_mean_sd(0.0123, 0.0081)[1]
_CROHNS_LM = lognormal_from_mean_sd(0.0763, 0.0369)
_CIRRHOSIS_LM_SIGMA = 0.5
#: Per group: (n, median L:M, log-SD of L:M, median mannitol recovery %).
#: healthy: median L:M 0.013, between Dastych et al. 2008's adult mean 0.0123 and Catassi's
#:   median 0.014; log-SD 0.60 from Dastych's 0.0123 ± 0.0081; mannitol 18.5% (Catassi),
#:   which makes median lactulose recovery 0.24% (Dastych 0.24 ± 0.16%).
#: celiac_untreated: Catassi's screened celiac patients, median L:M 0.038 and lactulose
#:   0.63% (so mannitol 0.63 / 0.038 = 16.6%); log-SD chosen so that 16 of 29 fall below
#:   Catassi's 0.044 upper normal limit, as he found.
#: crohns: Dastych 0.0763 ± 0.0369 as a log-normal.
#: cirrhosis: Dastych mean 0.0517; its spread is [NV], design choice log-SD 0.5 (like Crohn's).
#: Mannitol recovery in Crohn's and cirrhosis is [NV]: kept at the healthy 18.5%, so the
#: group difference sits in lactulose. Group sizes are a design choice (20-40 per group).
GROUPS = {
    "healthy": (36, 0.013, _HEALTHY_LM_SIGMA, 18.5),
    "celiac_untreated": (28, _CELIAC_LM, np.log(0.044 / _CELIAC_LM) / NormalDist().inv_cdf(16 / 29),
                         0.63 / _CELIAC_LM),
    "crohns": (30, _CROHNS_LM[0], _CROHNS_LM[1], 18.5),
    "cirrhosis": (24, 0.0517 * np.exp(-_CIRRHOSIS_LM_SIGMA**2 / 2), _CIRRHOSIS_LM_SIGMA, 18.5),
}

#: Spread of mannitol recovery between subjects is [NV]; design choice log-SD 0.35.
MANNITOL_LOG_SD = 0.35
#: Urine flow is [NV]; design choice: log-normal, median 90 mL/h over the collection
#: window, log-SD 0.35, bounded to 50-3000 mL.
URINE_ML_PER_H, URINE_LOG_SD, URINE_RANGE = 90.0, 0.35, (50.0, 3000.0)


def simulate_sugar() -> Table:
    """Draw `sugar_test`: one row per subject, sorted by `subject_id`.

    Recoveries are log-normal: :math:`\\ln\\%M \\sim N(\\ln m_g, 0.35^2)` and
    :math:`\\ln L{:}M \\sim N(\\ln r_g, s_g^2)` independently, with
    :math:`\\%L = \\%M \\times L{:}M`. Recoveries do not depend on the protocol or
    the window (a simplification: in reality both matter, Camilleri et al. 2010).
    """
    rng = stream("sugar_test")
    groups = np.concatenate([[g] * spec[0] for g, spec in GROUPS.items()])
    n = len(groups)
    lm_ratio, mannitol_pct = np.empty(n), np.empty(n)
    for group, (size, lm_median, lm_sigma, m_median) in GROUPS.items():
        rows = groups == group
        mannitol_pct[rows] = truncated(
            partial(rng.lognormal, np.log(m_median), MANNITOL_LOG_SD, size), 1.0, 60.0)
        lm_ratio[rows] = truncated(partial(rng.lognormal, np.log(lm_median), lm_sigma, size),
                                   0.001, 1.0)
    lactulose_pct = mannitol_pct * lm_ratio

    protocol = rng.integers(len(PROTOCOLS), size=n)
    lactulose_g, mannitol_g, hours = (np.array([p[k] for p in PROTOCOLS])[protocol]
                                      for k in (1, 2, 3))
    volume_ml = truncated(partial(rng.lognormal, np.log(URINE_ML_PER_H), URINE_LOG_SD, n),
                          URINE_RANGE[0] / hours, URINE_RANGE[1] / hours) * hours
    volume_ml = np.round(volume_ml)
    # mg/L = (recovered fraction x dose in mg) / litres of urine
    lactulose_mg_l = lactulose_pct / 100 * lactulose_g * 1000 / (volume_ml / 1000)
    mannitol_mg_l = mannitol_pct / 100 * mannitol_g * 1000 / (volume_ml / 1000)

    subject_id = np.array([f"LM{i + 1:03d}" for i in rng.permutation(n)])
    order = np.argsort(subject_id)
    levels = "|".join(GROUPS)
    columns = (
        Column("subject_id", "str", "", "unique",
               "Subject identifier. Synthetic data: simulated, not from real people.", "simulated"),
        Column("group", "str", "", levels,
               "Diagnosis: healthy volunteer, untreated (screen-detected) celiac disease, "
               "Crohn's disease or liver cirrhosis.", "simulated"),
        Column("lactulose_dose_g", "float64", "g", "0..",
               "Lactulose in the test drink: 5 g (Catassi 1997 protocol) or 10 g (Sequeira 2014).",
               "simulated"),
        Column("mannitol_dose_g", "float64", "g", "0..",
               "Mannitol in the test drink: 2 g (Catassi 1997 protocol) or 5 g (Sequeira 2014).",
               "simulated"),
        Column("urine_volume_ml", "float64", "mL", f"{URINE_RANGE[0]:g}..{URINE_RANGE[1]:g}",
               "Total urine volume collected over collection_h hours.", "simulated"),
        Column("lactulose_mg_l", "float64", "mg/L", "0..",
               "Lactulose concentration in the pooled urine.", "simulated"),
        Column("mannitol_mg_l", "float64", "mg/L", "0..",
               "Mannitol concentration in the pooled urine.", "simulated"),
        Column("collection_h", "float64", "h", "0..24",
               "Length of the urine collection after the drink.", "simulated"),
    )
    cells = {
        "subject_id": list(subject_id[order]),
        "group": list(groups[order]),
        "lactulose_dose_g": fmt_float(lactulose_g[order], 1),
        "mannitol_dose_g": fmt_float(mannitol_g[order], 1),
        "urine_volume_ml": fmt_float(volume_ml[order], 0),
        "lactulose_mg_l": fmt_float(lactulose_mg_l[order], 2),
        "mannitol_mg_l": fmt_float(mannitol_mg_l[order], 1),
        "collection_h": fmt_float(hours[order], 1),
    }
    return make_table("sugar_test", columns, cells)
