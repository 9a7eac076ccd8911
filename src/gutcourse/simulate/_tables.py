"""Pieces every generator shares: seeded streams, column specs and byte-stable CSV rendering.

Byte-identical output on every run and platform rests on three rules kept here:
every random number comes from a `numpy.random.Generator` seeded from
`MASTER_SEED` and the dataset's name; every number is formatted with an explicit
number of decimals before it is written; files are UTF-8 with ``"\\n"`` line ends.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass

import numpy as np

#: The one seed behind every dataset. Arbitrary; fixed once, before any p-value was
#: looked at. Changing it changes every file and every checksum.
MASTER_SEED = 20160630

#: The columns of every ``<name>.dictionary.csv`` file, in order.
DICTIONARY_FIELDS = ("column", "dtype", "units", "allowed", "nullable", "description", "origin")


def stream(name: str) -> np.random.Generator:
    """Return the random stream of one dataset.

    Each dataset draws from its own stream, seeded by `MASTER_SEED` together with a
    hash of the stream's name, so that changing how one dataset is simulated (even the
    number of draws it takes) leaves every other dataset byte-identical.

    Parameters
    ----------
    name : str
        Stream name, usually the dataset name (``"sugar_test"``).

    Returns
    -------
    numpy.random.Generator
        ``numpy.random.default_rng([MASTER_SEED, k])`` with ``k`` the first 8 bytes
        of SHA-256(`name`) read as an unsigned big-endian integer.
    """
    key = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big")
    return np.random.default_rng([MASTER_SEED, key])


def lognormal_sigma_from_iqr(q1: float, q3: float) -> float:
    """Log-scale SD of a log-normal whose quartiles are `q1` and `q3`.

    .. math:: \\sigma = \\ln(q_3 / q_1) / (2 \\Phi^{-1}(0.75)) = \\ln(q_3/q_1) / 1.349
    """
    return float(np.log(q3 / q1) / 1.3489795003921634)


def lognormal_from_mean_sd(mean: float, sd: float) -> tuple[float, float]:
    """Median and log-scale SD of the log-normal with arithmetic `mean` and `sd`.

    .. math:: \\sigma^2 = \\ln(1 + sd^2/mean^2), \\quad median = mean\\, e^{-\\sigma^2/2}
    """
    sigma2 = float(np.log1p((sd / mean) ** 2))
    return mean * float(np.exp(-sigma2 / 2)), float(np.sqrt(sigma2))


def truncated(draw, low: float, high: float) -> np.ndarray:
    """Draw with `draw()` and redraw values outside [low, high] until none are left.

    Rejection sampling keeps the shape of the distribution inside the range, unlike
    clipping, which would pile values up on the bounds.
    """
    values = draw()
    while (bad := (values < low) | (values > high)).any():
        values[bad] = draw()[bad]
    return values


def fmt_float(values, decimals: int) -> list[str]:
    """Format floats with a fixed number of decimals; NaN becomes an empty field.

    Python's ``%.Nf`` formatting is correctly rounded from the binary double, so the
    text is the same on every platform.
    """
    return ["" if np.isnan(v) else f"{v:.{decimals}f}" for v in np.asarray(values, dtype=float)]


def fmt_int(values) -> list[str]:
    """Format integers as plain decimal text."""
    return [str(int(v)) for v in values]


def fmt_bool(values) -> list[str]:
    """Format booleans as ``true`` / ``false``, the text `gutcourse.data.load` reads as bool."""
    return ["true" if v else "false" for v in np.asarray(values, dtype=bool)]


def render_csv(header, rows) -> bytes:
    """Render rows of strings as UTF-8 CSV bytes with ``"\\n"`` line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


@dataclass(frozen=True)
class Column:
    """One column of a dataset as its data dictionary describes it.

    Parameters
    ----------
    name : str
        Column name, snake_case with a unit suffix.
    dtype : {"int64", "float64", "bool", "str"}
        The dtype `gutcourse.data.load` returns.
    units : str
        Units, or ``""`` for identifiers and labels.
    allowed : str
        ``"min..max"`` (either end may be empty), ``"a|b|c"`` (levels), ``"unique"``
        (identifiers) or ``""`` (no constraint).
    description : str
        What the column means and where its values come from.
    origin : {"simulated", "derived"}
        ``simulated``: drawn by the generator; ``derived``: computed from other values
        or files, or taken from a published reference (the taxonomy). Students read the
        dictionaries, so the origin never says whether a group difference was designed
        into a column: that lives in the instructor guide only.
    nullable : bool
        Whether empty cells (missing values) are allowed.
    """

    name: str
    dtype: str
    units: str
    allowed: str
    description: str
    origin: str
    nullable: bool = False


@dataclass(frozen=True)
class Table:
    """A dataset ready to write: its column specs and its cells as formatted text."""

    name: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[str, ...], ...]

    def csv_bytes(self) -> bytes:
        """The dataset file, ``<name>.csv``."""
        return render_csv([c.name for c in self.columns], self.rows)

    def dictionary_bytes(self) -> bytes:
        """The data dictionary file, ``<name>.dictionary.csv``."""
        rows = [(c.name, c.dtype, c.units, c.allowed, "yes" if c.nullable else "no",
                 c.description, c.origin) for c in self.columns]
        return render_csv(DICTIONARY_FIELDS, rows)


def make_table(name: str, columns, cells: dict[str, list[str]]) -> Table:
    """Assemble a `Table` from column specs and one list of formatted cells per column."""
    columns = tuple(columns)
    if [c.name for c in columns] != list(cells):
        raise ValueError(f"{name}: column specs and cells disagree")
    return Table(name, columns, tuple(zip(*cells.values(), strict=True)))
