"""Tests of `gutcourse.data`: schemas, validation messages, and the raw-to-clean cleaning exercise.

Corruption tests work on a copy of ``datasets/`` in ``tmp_path``, pointed to by
``GUTCOURSE_DATA_DIR``; the shipped files are never touched.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gutcourse import data
from gutcourse.data import DatasetError

DATASETS = Path(__file__).resolve().parents[2] / "datasets"
NAMES = ["clinic_markers", "clinic_markers_raw", "genus_taxonomy", "iga_seq_counts", "iga_seq_metadata",
         "mecfs_genus_counts", "mecfs_metadata", "mecfs_serum_markers", "sugar_test"]


@pytest.fixture
def copy(tmp_path, monkeypatch):
    """A writable copy of the shipped datasets, made the data directory."""
    folder = tmp_path / "datasets"
    shutil.copytree(DATASETS, folder)
    monkeypatch.setenv("GUTCOURSE_DATA_DIR", str(folder))
    return folder


def edit_cell(folder: Path, name: str, row: int, column: str, value: str) -> None:
    """Set one cell of ``<name>.csv`` (data row `row`, counted from 1) by rewriting its text."""
    path = folder / f"{name}.csv"
    lines = path.read_text(encoding="utf-8").split("\n")
    header = lines[0].split(",")
    cells = lines[row].split(",")
    cells[header.index(column)] = value
    lines[row] = ",".join(cells)
    path.write_text("\n".join(lines), encoding="utf-8")


# ---- schemas ---------------------------------------------------------------------------------

def test_available_lists_the_contract_names():
    assert data.available() == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_load_matches_its_dictionary(name):
    frame = data.load(name)
    spec = data.dictionary(name)
    columns = list(spec["column"])
    if name in ("mecfs_genus_counts", "iga_seq_counts"):
        assert frame.index.name == columns[0]
        columns = columns[1:]
        spec = spec.iloc[1:]
    assert list(frame.columns) == columns
    for column, dtype in zip(spec["column"], spec["dtype"], strict=True):
        if dtype == "str":
            assert pd.api.types.is_string_dtype(frame[column]), column
        else:
            assert frame[column].dtype == np.dtype(dtype), column
    assert set(spec["origin"]) <= {"simulated", "derived"}


#: Words that would tell a student where the simulation planted a difference, or answer a
#: written question (the zonulin kits' targets are ps1 Q6.1's to find).
GIVEAWAYS = re.compile(r"planted|group-specific|group difference|by design|higher in|lower in|"
                       r"haptoglobin|properdin|Scheffler|Ajamian", re.IGNORECASE)


@pytest.mark.parametrize("name", data.available())
def test_dictionaries_say_what_a_lab_dictionary_says(name):
    spec = data.dictionary(name)
    assert set(spec["origin"]) <= {"simulated", "derived"}, "origin must not mark planted columns"
    leaks = [f"{c}: {d}" for c, d in zip(spec["column"], spec["description"], strict=True)
             if GIVEAWAYS.search(d)]
    assert not leaks, leaks


@pytest.mark.parametrize("name", NAMES)
def test_every_dataset_says_it_is_synthetic(name):
    assert data.dictionary(name)["description"].str.contains("synthetic", case=False).any()


def test_genus_counts_are_int64_samples_by_genera():
    counts = data.load("mecfs_genus_counts")
    meta = data.load("mecfs_metadata").set_index("sample_id")
    taxonomy = data.load("genus_taxonomy")
    assert counts.index.name == "sample_id"
    assert (counts.dtypes == np.int64).all()
    assert counts.shape == (87, len(taxonomy)) and len(taxonomy) >= 60
    assert list(counts.columns) == list(taxonomy["genus"])
    assert counts.index.is_monotonic_increasing
    assert set(counts.index) == set(meta.index)
    assert (counts.sum(axis=1) == meta.loc[counts.index, "reads"]).all()
    assert (counts == 0).to_numpy().mean() > 0.1, "real genus tables have many zeros"


def test_cohort_tables_join_by_subject():
    meta = data.load("mecfs_metadata")
    serum = data.load("mecfs_serum_markers")
    assert sorted(meta["subject_id"]) == sorted(serum["subject_id"])


def test_load_returns_a_fresh_frame():
    first = data.load("sugar_test")
    first.loc[0, "urine_volume_ml"] = -1.0
    assert data.load("sugar_test").loc[0, "urine_volume_ml"] > 0


def test_a_file_changed_after_loading_is_read_and_checked_again(copy):
    """Loads are remembered per process, by the files' content: an edit is never missed."""
    assert data.load("sugar_test").loc[0, "urine_volume_ml"] > 0
    edit_cell(copy, "sugar_test", 1, "urine_volume_ml", "-1")
    with pytest.raises(DatasetError, match=r"urine_volume_ml"):
        data.load("sugar_test")


def test_all_files_are_small():
    assert sum(p.stat().st_size for p in DATASETS.iterdir()) < 2_000_000


def test_loading_everything_is_fast():
    start = time.perf_counter()
    for name in NAMES:
        data.load(name)
    assert time.perf_counter() - start < 2.0


# ---- validation messages ---------------------------------------------------------------------

def test_unknown_name(copy):
    with pytest.raises(DatasetError, match=r"unknown dataset 'sugar'; available: clinic_markers"):
        data.load("sugar")


def test_missing_file(copy):
    (copy / "sugar_test.csv").unlink()
    with pytest.raises(DatasetError, match=r"sugar_test\.csv: file not found"):
        data.load("sugar_test")


def test_missing_column(copy):
    frame = pd.read_csv(copy / "sugar_test.csv", dtype=str)
    frame.drop(columns="collection_h").to_csv(copy / "sugar_test.csv", index=False)
    with pytest.raises(DatasetError, match=r"sugar_test\.csv: column 'collection_h' missing"):
        data.load("sugar_test")


def test_unexpected_column(copy):
    frame = pd.read_csv(copy / "sugar_test.csv", dtype=str)
    frame.assign(note="x").to_csv(copy / "sugar_test.csv", index=False)
    with pytest.raises(DatasetError, match=r"sugar_test\.csv: unexpected column 'note'"):
        data.load("sugar_test")


def test_wrong_dtype_float(copy):
    edit_cell(copy, "sugar_test", 3, "urine_volume_ml", "about 400")
    with pytest.raises(DatasetError, match=re.escape(
            "sugar_test.csv: column 'urine_volume_ml' expected float64 between 50 and 3000, "
            "found 'about 400' in row 3 (line 4)")):
        data.load("sugar_test")


def test_wrong_dtype_int(copy):
    edit_cell(copy, "mecfs_metadata", 5, "age_years", "41.5")
    with pytest.raises(DatasetError, match=re.escape(
            "mecfs_metadata.csv: column 'age_years' expected int64 between 19 and 71, "
            "found '41.5' in row 5")):
        data.load("mecfs_metadata")


def test_negative_count(copy):
    edit_cell(copy, "mecfs_genus_counts", 12, "Roseburia", "-5")
    with pytest.raises(DatasetError, match=re.escape(
            "mecfs_genus_counts.csv: column 'Roseburia' expected int64 >= 0, found -5 in row 12")):
        data.load("mecfs_genus_counts")


def test_out_of_range_float(copy):
    edit_cell(copy, "mecfs_serum_markers", 7, "lbp_ug_ml", "-3.0")
    with pytest.raises(DatasetError, match=re.escape(
            "mecfs_serum_markers.csv: column 'lbp_ug_ml' expected float64 >= 0, "
            "found -3.0 in row 7 (line 8)")):
        data.load("mecfs_serum_markers")


def test_duplicate_ids(copy):
    edit_cell(copy, "sugar_test", 9, "subject_id", "LM002")
    with pytest.raises(DatasetError, match=re.escape(
            "sugar_test.csv: column 'subject_id' expected unique identifiers, found 'LM002' "
            "in rows 2 and 9")):
        data.load("sugar_test")


def test_unknown_level(copy):
    edit_cell(copy, "mecfs_metadata", 4, "group", "CFS")
    with pytest.raises(DatasetError, match=re.escape(
            "mecfs_metadata.csv: column 'group' expected str, one of ME/CFS, control, "
            "found 'CFS' in row 4")):
        data.load("mecfs_metadata")


def test_empty_cell_where_not_nullable(copy):
    edit_cell(copy, "mecfs_serum_markers", 2, "crp_mg_l", "")
    with pytest.raises(DatasetError, match=r"column 'crp_mg_l' expected float64 >= 0, "
                                           r"found an empty cell in row 2"):
        data.load("mecfs_serum_markers")


def test_missing_code_in_a_clean_table(copy):
    edit_cell(copy, "clinic_markers", 5, "il6_pg_ml", "NA")
    with pytest.raises(DatasetError, match=re.escape(
            "clinic_markers.csv: column 'il6_pg_ml' expected float64 >= 0, found 'NA' in row 5")):
        data.load("clinic_markers")


def test_empty_cell_where_nullable_is_nan(copy):
    edit_cell(copy, "clinic_markers", 2, "il6_pg_ml", "")
    assert np.isnan(data.load("clinic_markers").loc[1, "il6_pg_ml"])


def test_bool_cell_that_is_not_true_or_false(copy):
    edit_cell(copy, "clinic_markers", 3, "hs_crp_below_detection", "yes")
    with pytest.raises(DatasetError, match=re.escape(
            "clinic_markers.csv: column 'hs_crp_below_detection' expected bool, true or false, "
            "found 'yes' in row 3")):
        data.load("clinic_markers")


def test_empty_bool_cell(copy):
    edit_cell(copy, "clinic_markers", 3, "hs_crp_below_detection", "")
    with pytest.raises(DatasetError, match="found an empty cell in row 3"):
        data.load("clinic_markers")


def test_non_utf8_bytes(copy):
    path = copy / "mecfs_metadata.csv"
    text = path.read_bytes()
    line3 = text.index(b"\n", text.index(b"\n") + 1) + 1
    path.write_bytes(text[:line3] + b"S\xff" + text[line3 + 2:])
    with pytest.raises(DatasetError, match=re.escape(
            "mecfs_metadata.csv: expected UTF-8 text, found byte 0xff at line 3 "
            "in column 'sample_id'")):
        data.load("mecfs_metadata")


def test_short_row(copy):
    path = copy / "mecfs_serum_markers.csv"
    path.write_text(path.read_text(encoding="utf-8") + "P999,1.0,2.0\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=re.escape(
            "mecfs_serum_markers.csv: expected 6 fields in every row, found 3 in row 88")):
        data.load("mecfs_serum_markers")


def test_long_row(copy):
    path = copy / "mecfs_serum_markers.csv"
    path.write_text(path.read_text(encoding="utf-8") + "P999,1,2,3,4,5,6\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=re.escape(
            "mecfs_serum_markers.csv: expected 6 fields in every row, found 7 in row 88")):
        data.load("mecfs_serum_markers")


def test_repeated_header(copy):
    path = copy / "sugar_test.csv"
    path.write_text(path.read_text(encoding="utf-8").replace("collection_h", "group", 1),
                    encoding="utf-8")
    with pytest.raises(DatasetError, match=r"sugar_test\.csv: column 'group' appears twice"):
        data.load("sugar_test")


def test_byte_order_mark_is_accepted(copy):
    path = copy / "sugar_test.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert list(data.load("sugar_test").columns)[0] == "subject_id"


def test_malformed_dictionary(copy):
    path = copy / "sugar_test.dictionary.csv"
    path.write_text(path.read_text(encoding="utf-8").replace(",float64,", ",float,", 1),
                    encoding="utf-8")
    with pytest.raises(DatasetError, match=r"sugar_test\.dictionary\.csv: column 'dtype' expected one "
                                           r"of int64, float64, bool, str, found 'float' in row 3"):
        data.dictionary("sugar_test")


def test_message_names_the_default_folder_as_datasets(copy, monkeypatch):
    monkeypatch.delenv("GUTCOURSE_DATA_DIR")
    monkeypatch.setattr(data, "_data_dir", lambda: copy)
    edit_cell(copy, "sugar_test", 7, "urine_volume_ml", "-3.0")
    with pytest.raises(DatasetError, match=re.escape(
            "datasets/sugar_test.csv: column 'urine_volume_ml' expected float64 between 50 and "
            "3000, found -3.0 in row 7 (line 8)")):
        data.load("sugar_test")


# ---- the raw clinic export and its cleaning ---------------------------------------------------

MISSING_CODES = {"", "NA", "-", "-99"}


def to_number(text: pd.Series) -> pd.Series:
    """Reference parse of a messy numeric column: strip units and spaces, decimal comma, codes.

    A below-detection result (``"<0.2"``) has no number either, so it becomes NaN here too;
    `clean_clinic` keeps the fact that it was a result in a flag column.
    """
    text = text.str.strip().str.replace(r"\s*(ug/g|pg/mL)$", "", regex=True).str.replace(",", ".")
    missing = text.isin(MISSING_CODES) | text.str.startswith("<")
    return pd.to_numeric(text.mask(missing), errors="raise").astype("float64")


def clean_clinic(raw: pd.DataFrame) -> pd.DataFrame:
    """Reference solution of the cleaning exercise. Lives in the tests, never in the package."""
    out = pd.DataFrame({
        "subject_id": raw["subject_id"].str.strip().str.upper(),
        "group": raw["group"].str.strip().str.lower(),
        "fecal_calprotectin_ug_g": to_number(raw["fecal_calprotectin_ug_g"]),
    })
    unit = raw["hs_crp_unit"].str.strip().str.lower()
    assert set(unit) == {"mg/l", "mg/dl"}
    crp = to_number(raw["hs_crp"])
    out["hs_crp_mg_l"] = crp.where(unit == "mg/l", crp * 10).round(2)
    # "<0.2" (mg/L) or "<0.02" (mg/dL): measured, below the detection limit, no number.
    out["hs_crp_below_detection"] = raw["hs_crp"].str.strip().str.startswith("<")
    for column in ("il6_pg_ml", "tnfa_pg_ml", "zonulin_assay_ng_ml"):
        out[column] = to_number(raw[column])
    out = out.drop_duplicates().sort_values("subject_id", ignore_index=True)
    assert out["subject_id"].is_unique, "duplicates must be identical once normalised"
    return out


def test_raw_export_loads_verbatim():
    raw = data.load("clinic_markers_raw")
    assert all(pd.api.types.is_string_dtype(raw[c]) for c in raw.columns)
    assert not raw.isna().to_numpy().any(), "missing codes stay text, not NaN"
    values = set(raw.to_numpy().ravel())
    assert {"NA", "-", "-99", "<0.2", ""} <= values
    assert any(v != v.strip() for v in raw["subject_id"]), "stray whitespace kept"
    assert any(v.endswith(" ug/g") for v in raw["fecal_calprotectin_ug_g"])
    assert any("," in v for v in raw["zonulin_assay_ng_ml"])
    assert raw["subject_id"].str.strip().str.upper().duplicated().sum() > 0
    assert len(set(raw["group"])) > 3


def test_cleaning_the_raw_export_gives_the_clean_table():
    clean = data.load("clinic_markers")
    cleaned = clean_clinic(data.load("clinic_markers_raw"))
    pd.testing.assert_frame_equal(cleaned, clean, check_dtype=False)
    assert clean.dtypes.astype(str).drop(["subject_id", "group"]).to_dict() == {
        "fecal_calprotectin_ug_g": "float64", "hs_crp_mg_l": "float64",
        "hs_crp_below_detection": "bool", "il6_pg_ml": "float64", "tnfa_pg_ml": "float64",
        "zonulin_assay_ng_ml": "float64"}


def test_below_detection_is_a_result_without_a_number():
    clean = data.load("clinic_markers")
    below = clean["hs_crp_below_detection"]
    assert below.sum() == 6
    assert clean.loc[below, "hs_crp_mg_l"].isna().all(), "no substitute value in hs_crp_mg_l"
    not_measured = clean["hs_crp_mg_l"].isna() & ~below
    assert not_measured.sum() == 2
    assert (clean.loc[~below, "hs_crp_mg_l"].dropna() >= 0.2).all(), "reported values are >= LOD"
