"""Load the course's sample datasets, validated against their data dictionaries.

Every dataset is synthetic: simulated by `gutcourse.simulate` from published summary
statistics and shipped in ``datasets/`` (provenance in ``datasets/README.md``). Nothing
is fetched from the network.

Each dataset ``<name>.csv`` has a data dictionary ``<name>.dictionary.csv`` with one row
per column: ``column``, ``dtype`` (``int64``, ``float64``, ``bool`` or ``str``), ``units``,
``allowed`` (``"min..max"`` with either end optional, ``"a|b|c"`` levels, ``"unique"``
for identifiers, or empty), ``nullable`` (``yes``/``no``), ``description`` and ``origin``
(``simulated``: drawn by the generator; ``derived``: computed from other values or taken
from a published reference). A ``bool`` column is written ``true`` or ``false``.

Examples
--------
>>> from gutcourse import data
>>> counts = data.load("mecfs_genus_counts")    # samples x genera, int64
>>> meta = data.load("mecfs_metadata")          # sample_id is a column
>>> meta.set_index("sample_id").loc[counts.index, "group"].value_counts()  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from gutcourse.errors import GutcourseError

__all__ = ["DatasetError", "available", "dictionary", "load", "verify_files"]

_DICTIONARY_FIELDS = ("column", "dtype", "units", "allowed", "nullable", "description", "origin")
_DTYPES = ("int64", "float64", "bool", "str")
_ORIGINS = ("simulated", "derived")
_BOOL_TEXT = {"true": True, "false": False}
#: Count tables are samples x taxa with `sample_id` as the index, as scikit-bio expects;
#: every other table keeps its identifiers as an ordinary column, so merges stay explicit.
#: Values: (index column, name given to the column axis).
_INDEX = {"mecfs_genus_counts": ("sample_id", "genus"),
          "iga_seq_counts": ("sample_id", "genus")}
_INT_TEXT = re.compile(r"[+-]?\d+")


class DatasetError(GutcourseError):
    """A dataset file is missing or does not match its data dictionary.

    The message names the file, the column and what was expected, e.g.
    ``datasets/sugar_test.csv: column 'urine_volume_ml' expected float64 >= 0,
    found -3.0 in row 7 (line 8)``. Rows count data rows from 1; lines count file
    lines, the header being line 1.
    """


def _data_dir() -> Path:
    """``$GUTCOURSE_DATA_DIR`` if set, else the datasets shipped inside the package.

    They are package data (``gutcourse/datasets/``, read through :mod:`importlib.resources`),
    so an installed wheel finds them wherever it is used; in the repository the top-level
    ``datasets/`` is a link to the same folder.
    """
    env = os.environ.get("GUTCOURSE_DATA_DIR")
    if env:
        return Path(env)
    from importlib.resources import files

    return Path(str(files("gutcourse") / "datasets"))


CHECKSUM_FILE = "CHECKSUMS.sha256"
UNCHECKED_FILES = frozenset({"README.md"})  # in the folder, not in the checksum list


def read_checksums(path: Path) -> tuple[dict[str, str], list[str]]:
    """Parse a sha256sum-format file into {file name: hex digest} and a list of problems."""
    recorded, problems = {}, []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name:
            problems.append(f"{path.name}: line {number} is not '<sha256>  <file name>': {line!r}")
        else:
            recorded[name] = digest
    return recorded, problems


def verify_files(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Problems with the data files against ``CHECKSUMS.sha256`` (empty when all match).

    Every listed file must exist with its recorded SHA-256, and no unlisted file may sit in
    the folder (``README.md`` excepted). This is what a learner's installation can check;
    the repository's ``gutcourse data check`` also regenerates the files and compares.
    """
    import hashlib

    folder = Path(data_dir) if data_dir is not None else _data_dir()
    checksum_path = folder / CHECKSUM_FILE
    if not checksum_path.is_file():
        return [f"{checksum_path}: checksum file missing"]
    recorded, problems = read_checksums(checksum_path)
    for name, digest in sorted(recorded.items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing (listed in {CHECKSUM_FILE})")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"{path}: changed (SHA-256 differs from {CHECKSUM_FILE})")
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.name not in recorded and path.name != CHECKSUM_FILE \
                and path.name not in UNCHECKED_FILES:
            problems.append(f"{path}: unexpected file (not listed in {CHECKSUM_FILE})")
    return problems


def _shown(path: Path) -> str:
    """How a file is named in messages: ``datasets/x.csv`` for the shipped folder, else in full."""
    if not os.environ.get("GUTCOURSE_DATA_DIR"):
        return f"{path.parent.name}/{path.name}"
    return str(path)


def available() -> list[str]:
    """Names of the datasets in the data directory, sorted.

    A dataset is available when its data dictionary ``<name>.dictionary.csv`` is
    present; `load` then checks that the data file itself is there and valid.

    Returns
    -------
    list of str
        E.g. ``['clinic_markers', 'clinic_markers_raw', 'genus_taxonomy', ...]``.
    """
    folder = _data_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name.removesuffix(".dictionary.csv") for p in folder.glob("*.dictionary.csv"))


def _read_text(path: Path) -> str:
    """Read `path` as UTF-8 (a leading byte-order mark is allowed), or raise DatasetError."""
    if not path.is_file():
        raise DatasetError(f"{_shown(path)}: file not found; expected it in {path.parent} "
                           "(set GUTCOURSE_DATA_DIR, or run `gutcourse data build`)")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line_start = raw.rfind(b"\n", 0, err.start) + 1
        line = raw.count(b"\n", 0, err.start) + 1
        header = raw[:raw.find(b"\n")].decode("utf-8", errors="replace").split(",")
        field = raw.count(b",", line_start, err.start)
        where = f" in column {header[field]!r}" if line > 1 and field < len(header) else ""
        raise DatasetError(f"{_shown(path)}: expected UTF-8 text, found byte "
                           f"0x{raw[err.start]:02x} at line {line}{where}") from None


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    """Parse a CSV file into its header and a 2-D array of text cells, verbatim.

    No type guessing and no missing-value codes: every cell stays the text in the file.
    The standard-library reader is used rather than `pandas.read_csv` so that a row with
    too few or too many fields is an error (pandas pads short rows silently).
    """
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        header = next(reader, [])
        rows = [row for row in reader if row]
    except csv.Error as err:
        raise DatasetError(f"{_shown(path)}: not a well-formed CSV table: {err} "
                           f"(line {reader.line_num})") from None
    if not header:
        raise DatasetError(f"{_shown(path)}: empty file; expected a header row")
    repeated = [name for i, name in enumerate(header) if name in header[:i]]
    if repeated:
        raise DatasetError(f"{_shown(path)}: column {repeated[0]!r} appears twice in the header")
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise DatasetError(f"{_shown(path)}: expected {len(header)} fields in every row, "
                               f"found {len(row)} in row {i + 1} (line {i + 2})")
    return header, np.array(rows, dtype=str).reshape(len(rows), len(header))


def _check_dictionary(frame: pd.DataFrame, path: Path) -> None:
    """Raise DatasetError unless `frame` is a well-formed data dictionary."""
    missing = [f for f in _DICTIONARY_FIELDS if f not in frame.columns]
    if missing:
        raise DatasetError(f"{_shown(path)}: missing column {missing[0]!r}; a data dictionary "
                           f"has columns {', '.join(_DICTIONARY_FIELDS)}")
    for field, allowed in (("dtype", _DTYPES), ("nullable", ("yes", "no")), ("origin", _ORIGINS)):
        bad = ~frame[field].isin(allowed)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DatasetError(f"{_shown(path)}: column {field!r} expected one of "
                               f"{', '.join(allowed)}, found {frame[field].iloc[i]!r} in row {i + 1}")
    duplicated = frame["column"].duplicated()
    if duplicated.any():
        raise DatasetError(f"{_shown(path)}: column 'column' lists "
                           f"{frame['column'][duplicated].iloc[0]!r} twice")


def dictionary(name: str) -> pd.DataFrame:
    """Return the data dictionary of dataset `name`.

    Parameters
    ----------
    name : str
        A name from `available`.

    Returns
    -------
    pandas.DataFrame
        One row per column of the dataset, with columns ``column``, ``dtype``,
        ``units``, ``allowed``, ``nullable``, ``description``, ``origin``; all text.

    Raises
    ------
    DatasetError
        If the dictionary file is missing, not UTF-8, or malformed.
    """
    path = _data_dir() / f"{name}.dictionary.csv"
    if not path.is_file() and not (_data_dir() / f"{name}.csv").is_file():
        raise DatasetError(f"unknown dataset {name!r}; available: {', '.join(available()) or 'none'} "
                           f"(in {_data_dir()})")
    header, cells = _read_csv(path)
    frame = pd.DataFrame(cells, columns=header, dtype=str)
    _check_dictionary(frame, path)
    return frame[list(_DICTIONARY_FIELDS)]


def _describe(dtype: str, allowed: str) -> str:
    """The 'expected ...' part of a message, e.g. ``float64 >= 0`` or ``str, one of a, b``."""
    if dtype == "bool":
        return "bool, true or false"
    if ".." in allowed:
        low, high = allowed.split("..")
        if low and high:
            return f"{dtype} between {low} and {high}"
        return f"{dtype} >= {low}" if low else f"{dtype} <= {high}"
    if allowed and allowed != "unique":
        return f"{dtype}, one of {', '.join(allowed.split('|'))}"
    return dtype


def _parse(text: np.ndarray, dtype: str, fail) -> np.ndarray:
    """Parse text cells as `dtype` (empty cells become NaN), calling `fail` on the first bad one.

    The fast path is numpy's vectorised conversion; only when it refuses a cell does a
    Python loop find which one, so a valid file costs one conversion per column.
    `fail(mask, quote=True)` raises the DatasetError for the first True cell of `mask`.
    """
    if dtype == "int64":
        if np.char.isdigit(np.char.lstrip(text, "+-")).all():
            try:
                return text.astype(np.int64)
            except (ValueError, OverflowError):
                pass
        fail(np.array([_INT_TEXT.fullmatch(t) is None or not -2**63 <= int(t) < 2**63
                       for t in text]), quote=True)
    empty = text == ""
    try:
        values = np.where(empty, "nan", text).astype(np.float64)
    except ValueError:
        values = np.array([_float_or_inf(t) for t in np.where(empty, "nan", text)])
    fail(~empty & ~np.isfinite(values), quote=True)
    return values


def _float_or_inf(text: str) -> float:
    """`float(text)`, or infinity (flagged as invalid by the caller) if it is not a number."""
    try:
        return float(text)
    except ValueError:
        return np.inf


def _convert(text: np.ndarray, spec: pd.Series, where: str) -> np.ndarray:
    """Convert one column of text cells to its dictionary dtype and check its constraints."""
    dtype, allowed, nullable = spec["dtype"], spec["allowed"], spec["nullable"] == "yes"
    expected = _describe(dtype, allowed)

    def fail(mask, quote=False, found=None):
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            found = found or (repr(str(text[i])) if quote else text[i])
            raise DatasetError(f"{where} expected {expected}, found {found} "
                               f"in row {i + 1} (line {i + 2})")

    empty = text == ""
    if not nullable or dtype in ("int64", "bool"):
        fail(empty, found="an empty cell")
    if dtype == "bool":
        fail(~np.isin(text, list(_BOOL_TEXT)), quote=True)
        return text == "true"
    values = text if dtype == "str" else _parse(text, dtype, fail)

    if ".." in allowed:
        low, high = allowed.split("..")
        if low:
            fail(values < float(low))
        if high:
            fail(values > float(high))
    elif allowed == "unique":
        repeated = pd.Series(values).duplicated(keep=False).to_numpy()
        if repeated.any():
            rows = np.flatnonzero(values == values[np.flatnonzero(repeated)[0]])
            raise DatasetError(f"{where} expected unique identifiers, found {str(values[rows[0]])!r} "
                               f"in rows {rows[0] + 1} and {rows[1] + 1} "
                               f"(lines {rows[0] + 2} and {rows[1] + 2})")
    elif allowed:
        fail(~np.isin(values, allowed.split("|")) & ~empty, quote=True)
    return values


def load(name: str) -> pd.DataFrame:
    """Load dataset `name`, validated against its data dictionary.

    Validation checks the file is UTF-8 CSV with exactly the dictionary's columns;
    each column converts to its dtype (``int64``, ``float64``, ``bool`` or ``str``); values lie in
    the allowed range or levels; identifiers marked ``unique`` are unique; non-nullable
    columns have no empty cells. Text columns are returned verbatim (not stripped),
    which is what the raw export ``clinic_markers_raw`` needs for its cleaning exercise.

    Parameters
    ----------
    name : str
        A name from `available`, e.g. ``"sugar_test"``.

    Returns
    -------
    pandas.DataFrame
        A fresh frame (safe to modify), columns in dictionary order. Identifiers are an
        ordinary column, except the count tables ``mecfs_genus_counts`` and
        ``iga_seq_counts``: samples x genera int64 counts, indexed by ``sample_id``, as
        scikit-bio's diversity functions expect.

    Raises
    ------
    DatasetError
        Naming the file, the column and what was expected: missing file or column,
        unexpected column, wrong dtype, value out of range (e.g. a negative count),
        duplicate identifier, non-UTF-8 bytes.
    """
    path = _data_dir() / f"{name}.csv"
    key = _files_key(path, _data_dir() / f"{name}.dictionary.csv")
    cached = _loaded.get(name)
    if key is not None and cached is not None and cached[0] == key:
        return cached[1].copy(deep=True)
    frame = _load(name, path)
    if key is not None:
        _loaded[name] = (key, frame.copy(deep=True))
    return frame


#: name -> (digest of the data and dictionary files when read, the validated frame): the same files
#: are parsed and checked once per process (a grader judges many notebooks loading the same data).
_loaded: dict[str, tuple[tuple, pd.DataFrame]] = {}


def _files_key(*paths: Path) -> tuple | None:
    import hashlib

    try:
        return tuple((str(p), hashlib.sha256(p.read_bytes()).hexdigest()) for p in paths)
    except OSError:
        return None


def _load(name: str, path: Path) -> pd.DataFrame:
    spec = dictionary(name)
    header, cells = _read_csv(path)
    expected = list(spec["column"])
    missing = [c for c in expected if c not in header]
    if missing:
        raise DatasetError(f"{_shown(path)}: column {missing[0]!r} missing; expected columns as in "
                           f"{name}.dictionary.csv ({len(expected)} columns)")
    extra = [c for c in header if c not in expected]
    if extra:
        raise DatasetError(f"{_shown(path)}: unexpected column {extra[0]!r}; "
                           f"{name}.dictionary.csv does not describe it")
    columns = {}
    for _, row in spec.iterrows():
        column = row["column"]
        values = _convert(cells[:, header.index(column)], row, f"{_shown(path)}: column {column!r}")
        columns[column] = pd.Series(values, dtype=str) if row["dtype"] == "str" else values
    frame = pd.DataFrame(columns)
    if name in _INDEX:
        index, axis_name = _INDEX[name]
        frame = frame.set_index(index)
        frame.columns.name = axis_name
    return frame
