"""Tests of `gutcourse.simulate`: byte-identical rebuilds, checksums, and every planted effect.

The effect tests use the method a student uses (Mann-Whitney U, Spearman, scikit-bio's
natural-log Shannon) on the shipped files, and check values against the figures in
``shared/science/BRIEF.md``. The p-values they compute are the ones quoted in
``docs/instructor_guide.md`` (its datasets section); `test_instructor_doc_quotes_current_p_values` keeps the
two in step.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu, spearmanr
from skbio.diversity import alpha_diversity

from gutcourse import data, simulate
from gutcourse.simulate import _build, _sugar, _tables

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ROOT / "datasets"
INSTRUCTOR_DOC = ROOT / "docs" / "instructor_guide.md"
BUTYRATE = ["Faecalibacterium", "Agathobacter", "Roseburia", "Coprococcus", "Anaerostipes",
            "Butyricicoccus"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A fresh build into a temporary folder."""
    out = tmp_path_factory.mktemp("build")
    return out, simulate.build(out)


# ---- reproducibility and checksums -----------------------------------------------------------

def test_build_is_byte_identical_to_the_shipped_files(built):
    out, paths = built
    assert paths[-1].name == "CHECKSUMS.sha256"
    for path in paths:
        assert path.read_bytes() == (DATASETS / path.name).read_bytes(), path.name
    shipped = {p.name for p in DATASETS.iterdir()} - {"README.md"}
    assert {p.name for p in paths} == shipped


def test_files_are_utf8_with_unix_line_ends(built):
    out, paths = built
    for path in paths:
        text = path.read_bytes()
        assert b"\r" not in text and text.endswith(b"\n"), path.name
        text.decode("utf-8")


def test_check_passes_on_the_shipped_files():
    assert simulate.check() == []
    assert simulate.check(DATASETS) == []


def test_readme_lists_the_current_checksums():
    readme = (DATASETS / "README.md").read_text(encoding="utf-8")
    for line in (DATASETS / "CHECKSUMS.sha256").read_text(encoding="utf-8").splitlines():
        assert line in readme, f"datasets/README.md lacks the checksum line {line!r}"
    assert f"MASTER_SEED = {simulate.MASTER_SEED}" in readme


def test_check_reports_changed_missing_and_extra_files(tmp_path):
    folder = tmp_path / "d"
    shutil.copytree(DATASETS, folder)
    with (folder / "sugar_test.csv").open("ab") as f:
        f.write(b"LM999,healthy,5.0,2.0,400,10.00,500.0,5.0\n")
    (folder / "genus_taxonomy.dictionary.csv").unlink()
    (folder / "notes.txt").write_text("mine")
    problems = simulate.check(folder)
    assert len(problems) == 3, problems
    assert "sugar_test.csv: changed" in problems[1]
    assert "genus_taxonomy.dictionary.csv: missing" in problems[0]
    assert "notes.txt: unexpected file" in problems[2]


def test_check_reports_a_missing_checksum_file(tmp_path):
    folder = tmp_path / "d"
    shutil.copytree(DATASETS, folder)
    (folder / "CHECKSUMS.sha256").unlink()
    assert "checksum file missing" in simulate.check(folder)[0]


def test_changing_one_generator_leaves_the_other_files_alone(monkeypatch):
    before = _build.render()
    groups = dict(_sugar.GROUPS, healthy=(40, *_sugar.GROUPS["healthy"][1:]))
    monkeypatch.setattr(_sugar, "GROUPS", groups)
    after = _build.render()
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"sugar_test.csv", "CHECKSUMS.sha256"}


def test_streams_are_seeded_from_the_master_seed_and_the_name():
    a = _tables.stream("sugar_test").random(3)
    assert np.array_equal(a, _tables.stream("sugar_test").random(3))
    assert not np.array_equal(a, _tables.stream("clinic_markers").random(3))


# ---- the ME/CFS cohort ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cohort():
    """Shipped cohort tables, aligned by sample; relative abundances; serum with group."""
    meta = data.load("mecfs_metadata").set_index("sample_id")
    counts = data.load("mecfs_genus_counts")
    taxonomy = data.load("genus_taxonomy").set_index("genus")
    group = meta.loc[counts.index, "group"]
    rel = counts.div(counts.sum(axis=1), axis=0)
    serum = data.load("mecfs_serum_markers").merge(
        meta[["subject_id", "group"]], on="subject_id", validate="one_to_one")
    return {"meta": meta, "counts": counts, "rel": rel, "group": group, "serum": serum,
            "family": rel.T.groupby(taxonomy.loc[rel.columns, "family"]).sum().T,
            "phylum": rel.T.groupby(taxonomy.loc[rel.columns, "phylum"]).sum().T}


def mw(values: pd.Series, group: pd.Series, alternative="two-sided") -> float:
    """Mann-Whitney U p-value, ME/CFS vs control, as a student computes it."""
    return mannwhitneyu(values[group == "ME/CFS"], values[group == "control"],
                        alternative=alternative).pvalue


def planted_p_values(c) -> dict[str, float]:
    """Two-sided p-values of the planted effects and of the markers with nothing planted."""
    shannon = alpha_diversity("shannon", c["counts"].to_numpy(), ids=c["counts"].index)
    serum, sgroup = c["serum"], c["serum"]["group"]
    p = {"Shannon": mw(shannon, c["group"]),
         "observed genera": mw((c["counts"] > 0).sum(axis=1), c["group"]),
         "butyrate producers": mw(c["rel"][BUTYRATE].sum(axis=1), c["group"]),
         "Enterobacteriaceae": mw(c["family"]["Enterobacteriaceae"], c["group"]),
         "Firmicutes": mw(c["phylum"]["Firmicutes"], c["group"]),
         "Proteobacteria": mw(c["phylum"]["Proteobacteria"], c["group"])}
    p.update({genus: mw(c["rel"][genus], c["group"]) for genus in BUTYRATE})
    p.update({column: mw(serum[column], sgroup) for column in
              ("lps_pg_ml", "lbp_ug_ml", "scd14_ug_ml", "crp_mg_l", "ifabp_pg_ml")})
    return p


def test_cohort_size_sex_age_and_depth(cohort):
    meta = cohort["meta"]
    assert meta["group"].value_counts().to_dict() == {"ME/CFS": 48, "control": 39}
    sex = pd.crosstab(meta["group"], meta["sex"])
    assert sex.loc["control"].tolist() == [30, 9] and sex.loc["ME/CFS"].tolist() == [37, 11]
    assert meta["age_years"].between(19, 71).all()
    assert 40 < meta["age_years"].mean() < 55
    assert 80_000 < meta["reads"].mean() < 115_000
    assert meta["reads"].max() / meta["reads"].min() > 4, "depths vary enough to teach rarefaction"


def test_alpha_diversity_is_lower_in_mecfs(cohort):
    shannon = alpha_diversity("shannon", cohort["counts"].to_numpy(), ids=cohort["counts"].index)
    assert mw(shannon, cohort["group"], "less") < 0.05
    # genus-level Shannon (natural log) at the low end of the brief's 2.2-5.6 range
    assert 2.0 < shannon.median() < 3.2
    assert mw((cohort["counts"] > 0).sum(axis=1), cohort["group"], "less") < 0.05


def test_butyrate_producers_lower_in_mecfs(cohort):
    rel, group = cohort["rel"], cohort["group"]
    assert mw(rel[BUTYRATE].sum(axis=1), group, "less") < 0.05
    assert mw(rel["Agathobacter"], group, "less") < 0.05
    assert mw(rel["Roseburia"], group, "less") < 0.05
    assert mw(rel["Faecalibacterium"], group, "less") < 0.05
    # Faecalibacterium > 5% of fecal bacteria in healthy adults (Miquel 2013)
    assert rel.loc[group == "control", "Faecalibacterium"].mean() > 0.05


def test_enterobacteriaceae_higher_in_mecfs(cohort):
    family, group = cohort["family"]["Enterobacteriaceae"], cohort["group"]
    assert mw(family, group, "greater") < 0.05
    # Du Preez 2018: Enterobacteriaceae 6% vs 3%
    assert 0.02 < family[group == "control"].mean() < 0.045
    assert 0.04 < family[group == "ME/CFS"].mean() < 0.09


def test_bacteroidetes_plus_firmicutes_dominate(cohort):
    phylum = cohort["phylum"]
    share = (phylum["Bacteroidetes"] + phylum["Firmicutes"]).mean()
    assert 0.7 < share <= 0.9
    assert set(phylum.columns) == {"Actinobacteria", "Bacteroidetes", "Firmicutes",
                                   "Fusobacteria", "Proteobacteria", "Verrucomicrobia"}


def test_translocation_markers_higher_and_correlated(cohort):
    serum = cohort["serum"]
    markers = ["lps_pg_ml", "lbp_ug_ml", "scd14_ug_ml"]
    for column in markers:
        assert mw(serum[column], serum["group"], "greater") < 0.05, column
    for i, a in enumerate(markers):
        for b in markers[i + 1:]:
            rho, p = spearmanr(serum[a], serum[b])
            assert rho > 0.2 and p < 0.05, (a, b)


def test_crp_and_ifabp_not_different(cohort):
    serum = cohort["serum"]
    for column in ("crp_mg_l", "ifabp_pg_ml"):
        assert mw(serum[column], serum["group"]) >= 0.05, column


def test_serum_levels_match_the_literature(cohort):
    serum = cohort["serum"]
    control = serum[serum["group"] == "control"]
    assert 3.5 < control["lbp_ug_ml"].mean() < 7.0          # 5.1 ± 2.2 and 5.7 ± 1.9 µg/mL
    assert 0.74 < control["scd14_ug_ml"].median() < 1.18    # median 0.89, IQR 0.74-1.18 µg/mL
    assert 20 < control["ifabp_pg_ml"].median() < 330       # control medians 20-330 pg/mL
    assert control["lps_pg_ml"].median() < 25.2             # below a treated-HIV cohort's median
    for column in ("lps_pg_ml", "lbp_ug_ml", "scd14_ug_ml", "crp_mg_l", "ifabp_pg_ml"):
        assert serum[column].mean() > serum[column].median(), f"{column} is right-skewed"
    assert serum["crp_mg_l"].skew() > 1


# ---- sugar test ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sugar():
    """The shipped sugar test with recoveries and ratios computed the intended way."""
    s = data.load("sugar_test")
    litres = s["urine_volume_ml"] / 1000
    s["lactulose_pct"] = s["lactulose_mg_l"] * litres / (s["lactulose_dose_g"] * 1000) * 100
    s["mannitol_pct"] = s["mannitol_mg_l"] * litres / (s["mannitol_dose_g"] * 1000) * 100
    s["lm_ratio"] = s["lactulose_pct"] / s["mannitol_pct"]
    s["concentration_ratio"] = s["lactulose_mg_l"] / s["mannitol_mg_l"]
    return s


def test_sugar_groups_and_protocols(sugar):
    sizes = sugar["group"].value_counts()
    assert set(sizes.index) == {"healthy", "celiac_untreated", "crohns", "cirrhosis"}
    assert sizes.between(20, 40).all()
    protocols = set(zip(sugar["lactulose_dose_g"], sugar["mannitol_dose_g"], strict=True))
    assert protocols == {(5.0, 2.0), (10.0, 5.0)}
    assert sugar["collection_h"].between(5, 6).all()


def test_sugar_ratios_follow_the_brief(sugar):
    median = sugar.groupby("group").median(numeric_only=True)
    assert 0.009 < median.loc["healthy", "lm_ratio"] < 0.018          # 0.0123 (Dastych), 0.014 (Catassi)
    assert 0.15 < median.loc["healthy", "lactulose_pct"] < 0.35       # 0.18%, 0.24%
    assert 14 < median.loc["healthy", "mannitol_pct"] < 23            # about 18.5%
    assert 0.025 < median.loc["celiac_untreated", "lm_ratio"] < 0.06  # 0.038 (Catassi)
    assert 0.4 < median.loc["celiac_untreated", "lactulose_pct"] < 0.9  # 0.63%
    assert 0.05 < median.loc["crohns", "lm_ratio"] < 0.1              # 0.0763 ± 0.0369 (Dastych)
    assert 0.035 < median.loc["cirrhosis", "lm_ratio"] < 0.07         # 0.0517 (Dastych)
    celiac = sugar.loc[sugar["group"] == "celiac_untreated", "lm_ratio"]
    assert 0.35 < (celiac < 0.044).mean() < 0.75                      # 16 of 29 below 0.044
    healthy = sugar.loc[sugar["group"] == "healthy", "lm_ratio"]
    for group in ("celiac_untreated", "crohns", "cirrhosis"):
        other = sugar.loc[sugar["group"] == group, "lm_ratio"]
        assert mannwhitneyu(other, healthy, alternative="greater").pvalue < 0.05, group


def test_concentration_ratio_is_not_the_lm_ratio(sugar):
    factor = sugar["concentration_ratio"] / sugar["lm_ratio"]
    dose_ratio = sugar["lactulose_dose_g"] / sugar["mannitol_dose_g"]
    np.testing.assert_allclose(factor, dose_ratio, rtol=0.02)
    assert set(dose_ratio.round(2)) == {2.0, 2.5}


# ---- clinic markers --------------------------------------------------------------------------

def test_calprotectin_sorts_by_the_pathway_cutoffs():
    clinic = data.load("clinic_markers")
    cal = clinic.dropna(subset=["fecal_calprotectin_ug_g"])
    by = cal.groupby("group")["fecal_calprotectin_ug_g"]
    assert (by.get_group("ibd") > 50).all()                     # sensitivity 100% at 50 µg/g
    assert 0.25 < (by.get_group("ibs") > 50).mean() < 0.55      # specificity 60% at 50 µg/g
    assert (by.get_group("healthy") < 50).mean() > 0.8
    assert (by.get_group("ibd") > 250).mean() > 0.5


def test_clinic_markers_are_right_skewed_at_population_levels():
    clinic = data.load("clinic_markers")
    no_ibd = clinic[clinic["group"] != "ibd"]
    assert 0.8 < no_ibd["hs_crp_mg_l"].median() < 2.2            # CoLaus median 1.3 mg/L
    assert (no_ibd["hs_crp_mg_l"] > 10).mean() < 0.1             # Ridker: 5.4% > 10 mg/L
    assert 0.9 < no_ibd["il6_pg_ml"].median() < 2.5              # CoLaus median 1.47 pg/mL
    assert 2.0 < no_ibd["tnfa_pg_ml"].median() < 4.0             # CoLaus median 2.89 pg/mL
    for column in ("fecal_calprotectin_ug_g", "hs_crp_mg_l", "il6_pg_ml", "tnfa_pg_ml"):
        assert clinic[column].skew() > 1, column
    zonulin = clinic.groupby("group")["zonulin_assay_ng_ml"].median()
    assert zonulin.max() / zonulin.min() < 1.3, "nothing planted in the zonulin assay signal"


# ---- the instructor guide quotes the p-values the shipped data give -------------------------

def test_instructor_doc_quotes_current_p_values(cohort):
    doc = INSTRUCTOR_DOC.read_text(encoding="utf-8")
    for label, p in planted_p_values(cohort).items():
        lines = [line for line in doc.splitlines() if line.startswith(f"| {label} |")]
        assert lines, f"no table row for {label!r} in {INSTRUCTOR_DOC.name}"
        assert f"{p:.2g}" in lines[0], f"{label}: doc should quote p = {p:.2g}"
