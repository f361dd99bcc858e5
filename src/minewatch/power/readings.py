"""Meter readings in, one clean columnar table out, with every repair counted.

Input is long form, one reading a row, as Parquet, CSV or gzip-compressed CSV:

=============== ======== ==========================================================================
column          required meaning
=============== ======== ==========================================================================
``account_id``  yes      the metering account (string; Parquet integers are read as strings)
``ts``          yes      end or start of the interval, ISO 8601 *with* a UTC offset, e.g.
                         ``2026-03-01T00:15:00+08:00`` (``Z``, ``+08``, ``+0800`` also accepted)
``kw``          yes      average active power over the interval, kW
``kvar``        no       average reactive power, kvar (may be negative)
``ia ib ic``    no       phase currents, A
``kwh``         no       cumulative energy register; only used to detect meter resets
=============== ======== ==========================================================================

A Parquet ``ts`` may also be a time-zone-aware timestamp column: the offset is then the column's
fixed offset (``+08:00``), derived per row from a named zone, or taken from an integer
``utc_offset_min`` column when the file has one (needed when the column was stored as UTC).

Column names are matched after trimming spaces and ignoring case; other columns are ignored.

:func:`load_readings` returns :class:`LoadedReadings`: ``table`` holds exactly ``account_id``
(string), ``ts_utc`` (timestamp[us, UTC]), ``utc_offset_min`` (int16, the offset the meter
reported, so local clock hours are ``ts_utc + utc_offset_min``), ``kw``, ``kvar``, ``ia``, ``ib``,
``ic`` (float64, null where absent or excluded), sorted by account then time, one row per account
and instant. ``per_account`` gives each account's interval (the median step between readings) and
its gaps; ``summary`` counts everything that was repaired, dropped or excluded, each count with up
to five example row numbers (1-based; in a CSV the header is row 1, as in a spreadsheet, so the
first reading is row 2; blank lines are not counted).

Rules, decided here once:

* A missing required column, an unreadable file, an empty ``account_id``, a ``ts`` that cannot be
  parsed or has no UTC offset, or a value that is not a number raise
  :class:`~minewatch.errors.InputError` naming the file, the column, the rows and their values.
* Offsets: mainland China has no daylight saving time, so a meter's offset never changes. Several
  different offsets *within one account* therefore mean a misconfigured export and raise
  :class:`~minewatch.errors.InputError` naming the account and the rows; different accounts with
  different offsets are fine. (Parquet columns in a named time zone with DST must be converted to
  fixed offsets first.)
* Duplicates (same account and same instant): the first row in file order is kept, the rest are
  dropped and counted.
* ``kw`` null: kept as null (the slot exists, the value does not), counted, excluded from
  screening. ``kw`` NaN, ±infinity or beyond ±1 000 000 kW: absurd, set to null, counted.
* Negative ``kw`` above ``-max(1 % of the account's median kW, 0.5 kW)`` is meter noise around
  zero: clipped to 0 and counted. Larger negatives are export (on-site generation): set to null,
  counted and listed in ``excluded`` — a screening for consumption must not average them in.
* ``kvar`` beyond ±1 000 000 or not finite, and phase currents that are negative, not finite or
  beyond 1 000 000 A are set to null and counted.
* Meter resets: a drop in the cumulative ``kwh`` register; dropouts: a ``kw`` of exactly 0
  between two normal (positive, valid) readings of the same account. Both are counted, values are
  kept.
* Interval: per account, the median step between consecutive readings. It must be a whole number
  of minutes from 1 to 60 and at least 90 % of the steps must be whole multiples of it; accounts
  that fail (or have a single reading) are listed in ``summary.irregular_accounts`` and left out
  of :meth:`LoadedReadings.screenable`. For regular accounts, each step of *k* intervals leaves
  *k* − 1 missing slots; a run of at least one missing slot is a gap.

Everything is vectorised: Arrow readers and compute kernels for parsing, numpy over the sorted
columns for the per-account work; no Python loop runs per row.

Example::

    >>> loaded = load_readings("meters.csv.gz")                  # doctest: +SKIP
    >>> loaded.table.column_names                                # doctest: +SKIP
    ['account_id', 'ts_utc', 'utc_offset_min', 'kw', 'kvar', 'ia', 'ib', 'ic']
    >>> loaded.summary.duplicates_dropped.count                  # doctest: +SKIP
    3
"""

from __future__ import annotations

import csv
import gzip
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from minewatch.errors import InputError
from minewatch.power.emissions import PROVINCES

__all__ = [
    "ABSURD_KW",
    "READINGS_COLUMNS",
    "IngestSummary",
    "IrregularAccount",
    "LoadedReadings",
    "RowCount",
    "load_accounts",
    "load_readings",
]

READINGS_COLUMNS: tuple[str, ...] = (
    "account_id",
    "ts_utc",
    "utc_offset_min",
    "kw",
    "kvar",
    "ia",
    "ib",
    "ic",
)
"""The columns of :attr:`LoadedReadings.table`, in order."""

ABSURD_KW = 1e6
"""|kW| beyond this (1 GW) is no single meter's reading: a unit error or a corrupt value."""

MAX_EXAMPLES = 5
NOISE_SHARE = 0.01
NOISE_FLOOR_KW = 0.5
REGULAR_SHARE = 0.9
MAX_OFFSET_MIN = 14 * 60

_REQUIRED = ("account_id", "ts", "kw")
_OPTIONAL = ("kvar", "ia", "ib", "ic")
_NUMERIC = ("kw", *_OPTIONAL, "kwh")
_NULLS = ["", "NULL", "null", "NA", "N/A", "n/a", "None", "none"]
_US_PER_MIN = 60_000_000
_TS_HELP = "ISO 8601 with a UTC offset, e.g. 2026-03-01T00:15:00+08:00"
_TS_FULL = re.compile(
    r"^(?P<d>\d{4}-\d{2}-\d{2})[T ](?P<hm>\d{2}:\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,9}))?)?"
    r"\s*(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?)$"
)
_TS_NAIVE = (
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?$"  # a clock time, no offset
)
_TZ_SUFFIX = re.compile(r"(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<hh>\d{2})(?::?(?P<mm>\d{2}))?)$")
_NUMBER = r"^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|nan|inf|infinity)$"

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class RowCount:
    """How many rows (or slots) something happened to, with the first example row numbers."""

    count: int = 0
    rows: tuple[int, ...] = ()

    def __str__(self) -> str:
        if not self.rows:
            return str(self.count)
        return f"{self.count} (e.g. rows {', '.join(map(str, self.rows))})"


@dataclass(frozen=True, slots=True)
class IrregularAccount:
    """An account whose readings are not on a regular 1-60 minute grid, and why."""

    account_id: str
    reason: str
    median_step_min: float | None


@dataclass(frozen=True, slots=True)
class IngestSummary:
    """What :func:`load_readings` read, kept, repaired, dropped and excluded.

    ``rows_read`` = ``rows_kept`` + ``duplicates_dropped.count``; of the kept rows,
    ``null_kw`` + ``absurd`` + ``negative_excluded`` have a null ``kw`` and are excluded from
    screening. ``missing_intervals`` counts absent slots (their example rows are the readings
    right after a gap), ``gaps`` counts runs of absent slots.
    """

    path: str
    rows_read: int
    rows_kept: int
    accounts: int
    duplicates_dropped: RowCount
    missing_intervals: RowCount
    gaps: RowCount
    meter_resets: RowCount
    dropouts: RowCount
    negative_clipped: RowCount
    negative_excluded: RowCount
    absurd: RowCount
    null_kw: RowCount
    absurd_optional: RowCount
    irregular_accounts: tuple[IrregularAccount, ...] = ()

    @property
    def rows_excluded(self) -> int:
        """Kept rows whose ``kw`` is null (null, absurd or export) and so not screened."""
        return self.null_kw.count + self.absurd.count + self.negative_excluded.count

    def counts(self) -> dict[str, RowCount]:
        """Every counted condition by name, in a stable order."""
        return {
            "duplicates_dropped": self.duplicates_dropped,
            "missing_intervals": self.missing_intervals,
            "gaps": self.gaps,
            "meter_resets": self.meter_resets,
            "dropouts": self.dropouts,
            "negative_clipped": self.negative_clipped,
            "negative_excluded": self.negative_excluded,
            "absurd": self.absurd,
            "null_kw": self.null_kw,
            "absurd_optional": self.absurd_optional,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the summary."""
        return {
            "path": self.path,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_excluded": self.rows_excluded,
            "accounts": self.accounts,
            **{k: {"count": v.count, "rows": list(v.rows)} for k, v in self.counts().items()},
            "irregular_accounts": [
                {
                    "account_id": a.account_id,
                    "reason": a.reason,
                    "median_step_min": a.median_step_min,
                }
                for a in self.irregular_accounts
            ],
        }

    def lines(self) -> list[str]:
        """One human-readable line per fact, for a run report."""
        out = [
            f"{self.path}: {self.rows_read} rows read, {self.rows_kept} kept, "
            f"{self.rows_excluded} excluded from screening, {self.accounts} accounts",
        ]
        out += [f"  {k.replace('_', ' ')}: {v}" for k, v in self.counts().items() if v.count]
        out += [f"  irregular account {a.account_id}: {a.reason}" for a in self.irregular_accounts]
        return out


@dataclass(frozen=True, slots=True)
class LoadedReadings:
    """Clean readings (``table``), per-account intervals, excluded rows and the run summary.

    ``per_account`` has one row per account (sorted): ``account_id``, ``n_readings``,
    ``first_ts``, ``last_ts``, ``interval_min`` (int16, null when irregular), ``regular``,
    ``reason`` (why not regular), ``expected_slots``, ``missing_intervals``, ``gaps``.
    ``excluded`` lists the rows whose ``kw`` was set to null: ``row`` (file row number),
    ``account_id``, ``ts_utc``, ``reason`` (``null``, ``absurd`` or ``export``), ``kw_raw``.
    """

    table: Any
    per_account: Any
    excluded: Any
    summary: IngestSummary

    def screenable(self) -> Any:
        """``table`` restricted to accounts on a regular interval (rows with null kw included)."""
        regular = self.per_account.filter(self.per_account.column("regular")).column("account_id")
        return self.table.filter(pc.is_in(self.table.column("account_id"), value_set=regular))


# --------------------------------------------------------------------------------------------
# Reading files


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    if name.endswith(".csv") or name.endswith(".csv.gz"):
        return "csv"
    raise InputError(f"{path}: unsupported file type; give a .parquet, .csv or .csv.gz file")


def _csv_header(path: Path) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError, EOFError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read the CSV header: {exc}") from exc
    if not header:
        raise InputError(f"{path}: the file is empty; expected a header line")
    return header


def _column_map(
    path: Path, found: list[str], required: tuple[str, ...], known: tuple[str, ...]
) -> dict[str, str]:
    """Map each known normalised name to the file's own column name; check required ones."""
    mapping: dict[str, str] = {}
    for name in found:
        norm = name.strip().lower()
        if norm in known:
            if norm in mapping:
                raise InputError(
                    f"{path}: columns {mapping[norm]!r} and {name!r} both mean {norm!r}; keep one"
                )
            mapping[norm] = name
    for name in required:
        if name not in mapping:
            raise InputError(
                f"{path}: missing required column {name!r}; columns found: "
                f"{', '.join(found) or '(none)'}; required: {', '.join(required)}"
            )
    return mapping


def _read_csv(path: Path, mapping: dict[str, str], types: dict[str, Any]) -> Any:
    convert = pa_csv.ConvertOptions(
        column_types={mapping[k]: t for k, t in types.items() if k in mapping},
        include_columns=list(mapping.values()),
        null_values=_NULLS,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    table = pa_csv.read_csv(path, convert_options=convert)
    return table.rename_columns([_norm_of(mapping, c) for c in table.column_names])


def _norm_of(mapping: dict[str, str], original: str) -> str:
    for norm, name in mapping.items():
        if name == original:
            return norm
    return original


def _read_table(
    path: Path, required: tuple[str, ...], known: tuple[str, ...], numeric: tuple[str, ...]
) -> tuple[Any, int]:
    """Read the known columns of ``path``; return the table and the row number of its first row.

    Numeric columns come back as float64 where the file allows it; otherwise as strings, so
    :func:`_to_float` can name the bad rows.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    kind = _kind(path)
    if kind == "parquet":
        try:
            schema = pq.read_schema(path)
            mapping = _column_map(path, list(schema.names), required, known)
            table = pq.read_table(path, columns=list(mapping.values()))
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{path}: cannot read Parquet: {exc}") from exc
        return table.rename_columns([_norm_of(mapping, c) for c in table.column_names]), 1
    mapping = _column_map(path, _csv_header(path), required, known)
    strings = {k: pa.string() for k in known}
    try:
        return _read_csv(path, mapping, {**strings, **{k: pa.float64() for k in numeric}}), 2
    except pa.ArrowInvalid:
        pass  # a value that is not a number: read as text below so its rows can be named
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: cannot read CSV: {exc}") from exc
    try:
        return _read_csv(path, mapping, strings), 2
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: cannot read CSV: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Column conversion


def _rows_text(idx: IntArray, base: int, values: list[Any] | None = None) -> str:
    shown = idx[:MAX_EXAMPLES]
    if values is None:
        parts = [str(int(i) + base) for i in shown]
    else:
        parts = [f"{int(i) + base} ({v!r})" for i, v in zip(shown, values, strict=False)]
    more = f" and {len(idx) - len(shown)} more" if len(idx) > len(shown) else ""
    return ", ".join(parts) + more


def _first_rows(mask: Any) -> IntArray:
    """File positions where an Arrow boolean mask is true (nulls count as false)."""
    arr = pc.fill_null(mask, False)
    return np.flatnonzero(np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.bool_))


def _values_at(col: Any, idx: IntArray) -> list[Any]:
    return list(col.take(pa.array(idx[:MAX_EXAMPLES])).to_pylist())


def _to_float(path: Path, name: str, col: Any, base: int) -> Any:
    """A float64 Arrow array from a column of numbers or numeric text; bad text raises."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = col.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t):
        return pc.cast(col, pa.float64())
    if pa.types.is_null(t):
        return pa.nulls(len(col), pa.float64())
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text = pc.utf8_trim_whitespace(col)
        text = pc.if_else(pc.is_in(text, value_set=pa.array(_NULLS)), None, text)
        ok = pc.match_substring_regex(text, _NUMBER, ignore_case=True)
        bad = _first_rows(pc.invert(pc.fill_null(ok, True)))
        if len(bad):
            raise InputError(
                f"{path}: column {name!r} must hold numbers; rows "
                f"{_rows_text(bad, base, _values_at(col, bad))} do not"
            )
        return pc.cast(text, pa.float64())
    raise InputError(f"{path}: column {name!r} has type {t}; expected numbers")


def _to_account(path: Path, col: Any, base: int) -> Any:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        if not (pa.types.is_integer(col.type) or pa.types.is_null(col.type)):
            raise InputError(f"{path}: column 'account_id' has type {col.type}; expected text")
        col = pc.cast(col, pa.string())
    col = pc.cast(col, pa.string())
    blank = pc.or_(pc.equal(pc.utf8_length(col), 0), pc.utf8_is_space(col))
    empty = pc.or_kleene(pc.is_null(col), blank)
    bad = _first_rows(empty)
    if len(bad):
        raise InputError(
            f"{path}: column 'account_id' is empty in rows {_rows_text(bad, base)}; "
            "every reading needs its account"
        )
    return col


def _offsets_from_suffix(text: Any) -> npt.NDArray[np.int16] | None:
    """UTC offsets of timestamps already known to carry one, parsed once per distinct suffix."""
    enc = pc.dictionary_encode(pc.utf8_slice_codeunits(text, start=-6))
    suffixes = enc.dictionary.to_pylist()
    if len(suffixes) > 4096:
        return None
    table = np.empty(len(suffixes), dtype=np.int16)
    for i, s in enumerate(suffixes):  # once per distinct suffix, not per row
        m = _TZ_SUFFIX.search(s or "")
        if m is None:
            return None
        if m.group("z"):
            table[i] = 0
            continue
        minutes = int(m.group("hh")) * 60 + int(m.group("mm") or 0)
        if int(m.group("mm") or 0) >= 60 or minutes > MAX_OFFSET_MIN:
            return None
        table[i] = -minutes if m.group("sign") == "-" else minutes
    return table[np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)]


def _parse_ts_text(path: Path, col: Any, base: int) -> tuple[IntArray, npt.NDArray[np.int16]]:
    """UTC microseconds and reported offsets from ISO 8601 text; bad rows raise."""
    bad_null = _first_rows(pc.is_null(col))
    if len(bad_null):
        raise InputError(
            f"{path}: column 'ts' is empty in rows {_rows_text(bad_null, base)}; "
            f"expected {_TS_HELP}"
        )
    try:  # fast path: Arrow's strict ISO 8601 cast, offsets parsed per distinct suffix
        utc = pc.cast(col, pa.timestamp("us", tz="UTC"))
        offsets = _offsets_from_suffix(col)
        if offsets is not None:
            return np.asarray(utc.cast(pa.int64()).to_numpy(), dtype=np.int64), offsets
    except pa.ArrowInvalid:
        pass
    return _parse_ts_components(path, col, base)


def _parse_ts_components(path: Path, col: Any, base: int) -> tuple[IntArray, npt.NDArray[np.int16]]:
    """The exact parser, used when Arrow's cast refuses a value: accepts every form
    :data:`_TS_FULL` describes and names every row it cannot read."""
    text = pc.utf8_trim_whitespace(col)
    parts = pc.extract_regex(text, _TS_FULL.pattern)
    naive = np.asarray(
        pc.fill_null(
            pc.and_(pc.is_null(parts), pc.match_substring_regex(text, _TS_NAIVE)), False
        ).to_numpy(zero_copy_only=False),
        dtype=np.bool_,
    )
    s = pc.fill_null(parts.field("s"), "")
    s = pc.if_else(pc.equal(s, ""), "00", s)
    clock = pc.binary_join_element_wise(parts.field("d"), "T", parts.field("hm"), ":", s, "")
    local = pc.strptime(clock, format="%Y-%m-%dT%H:%M:%S", unit="s", error_is_null=True)
    back = pc.strftime(local, format="%Y-%m-%dT%H:%M:%S")
    # strptime is lenient (Feb 30 becomes Mar 2): a value is valid only if it prints back as read
    bad = np.asarray(
        pc.invert(pc.fill_null(pc.equal(back, clock), False)).to_numpy(zero_copy_only=False),
        dtype=np.bool_,
    )
    tz = pc.if_else(pc.is_valid(parts), parts.field("tz"), "Z")  # unmatched rows are bad anyway
    sign = pc.if_else(pc.equal(pc.utf8_slice_codeunits(tz, 0, 1), "-"), -1, 1)
    zulu = pc.equal(pc.utf8_upper(tz), "Z")
    hh = pc.if_else(zulu, "00", pc.utf8_slice_codeunits(tz, 1, 3))
    mm = pc.replace_substring(pc.utf8_slice_codeunits(tz, 3), ":", "")
    mm = pc.if_else(pc.or_(zulu, pc.equal(mm, "")), "00", mm)
    hh_i = np.asarray(pc.cast(hh, pa.int64()).to_numpy(), dtype=np.int64)
    mm_i = np.asarray(pc.cast(mm, pa.int64()).to_numpy(), dtype=np.int64)
    minutes = hh_i * 60 + mm_i
    bad |= (mm_i >= 60) | (minutes > MAX_OFFSET_MIN)
    if bad.any():
        if not (bad & ~naive).any():
            rows = np.flatnonzero(naive)
            raise InputError(
                f"{path}: column 'ts' has no UTC offset in rows "
                f"{_rows_text(rows, base, _values_at(col, rows))}; offsets are required, "
                "e.g. 2026-03-01T00:15:00+08:00"
            )
        rows = np.flatnonzero(bad)
        raise InputError(
            f"{path}: column 'ts' cannot be parsed in rows "
            f"{_rows_text(rows, base, _values_at(col, rows))}; expected {_TS_HELP}"
        )
    offsets = (minutes * np.asarray(sign.to_numpy(zero_copy_only=False))).astype(np.int16)
    frac = pc.utf8_slice_codeunits(pc.utf8_rpad(parts.field("f"), width=6, padding="0"), 0, 6)
    frac_us = np.asarray(pc.cast(frac, pa.int64()).to_numpy(), dtype=np.int64)
    local_us = np.asarray(local.cast(pa.int64()).to_numpy(), dtype=np.int64) * 1_000_000
    return local_us + frac_us - offsets.astype(np.int64) * _US_PER_MIN, offsets


def _parse_ts(
    path: Path, col: Any, base: int, offset_col: Any | None
) -> tuple[IntArray, npt.NDArray[np.int16]]:
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _parse_ts_text(path, col, base)
    if pa.types.is_timestamp(t):
        if t.tz is None:
            raise InputError(
                f"{path}: column 'ts' holds timestamps without a time zone; offsets are "
                "required, e.g. 2026-03-01T00:15:00+08:00 (write the column time-zone aware)"
            )
        bad_null = _first_rows(pc.is_null(col))
        if len(bad_null):
            raise InputError(f"{path}: column 'ts' is empty in rows {_rows_text(bad_null, base)}")
        utc = np.asarray(
            pc.cast(col, pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy(),
            dtype=np.int64,
        )
        if offset_col is not None:
            off = _floats(_to_float(path, "utc_offset_min", offset_col, base))
            with np.errstate(invalid="ignore"):
                wrong = ~np.isfinite(off) | (np.abs(off) > MAX_OFFSET_MIN) | (off != np.round(off))
            if wrong.any():
                rows = np.flatnonzero(wrong)
                raise InputError(
                    f"{path}: column 'utc_offset_min' must be whole minutes within "
                    f"±{MAX_OFFSET_MIN}; rows {_rows_text(rows, base)} are not"
                )
            return utc, off.astype(np.int16)
        local = pc.local_timestamp(col).cast(pa.timestamp("us")).cast(pa.int64())
        local_us = np.asarray(local.to_numpy(), dtype=np.int64)
        return utc, ((local_us - utc) // _US_PER_MIN).astype(np.int16)
    raise InputError(f"{path}: column 'ts' has type {t}; expected {_TS_HELP}")


# --------------------------------------------------------------------------------------------
# Per-account work on sorted columns


def _group_lower_median(values: FloatArray, codes: IntArray, n_groups: int) -> FloatArray:
    """Lower median of ``values`` per group code (NaN for empty groups), without a Python loop."""
    out = np.full(n_groups, np.nan)
    if len(values) == 0:
        return out
    order = np.lexsort((values, codes))
    sc = codes[order]
    starts = np.flatnonzero(np.r_[True, sc[1:] != sc[:-1]])
    counts = np.diff(np.r_[starts, len(sc)])
    out[sc[starts]] = values[order][starts + (counts - 1) // 2]
    return out


_STEP_BITS = 31
"""Steps are ranked in whole seconds below 2**31 s (68 years) to share one int64 key with the
account code: one integer sort instead of a two-key lexsort, about 4x faster."""


def _group_lower_median_steps(steps_us: IntArray, codes: IntArray, n_groups: int) -> FloatArray:
    """Lower median step per group in microseconds (to the second), NaN for groups without steps."""
    if n_groups >= 1 << (63 - _STEP_BITS) or len(steps_us) == 0:
        return _group_lower_median(steps_us.astype(np.float64), codes, n_groups)
    secs = np.minimum(steps_us // 1_000_000, (1 << _STEP_BITS) - 1)
    key = np.sort((codes << _STEP_BITS) | secs)
    sc = key >> _STEP_BITS
    starts = np.flatnonzero(np.r_[True, sc[1:] != sc[:-1]])
    counts = np.diff(np.r_[starts, len(sc)])
    out = np.full(n_groups, np.nan)
    out[sc[starts]] = (key[starts + (counts - 1) // 2] & ((1 << _STEP_BITS) - 1)) * 1e6
    return out


def _sort_order(code: IntArray, ts: IntArray) -> IntArray:
    """Order by (account, time), equal pairs in file order (so the first of a duplicate leads).

    Files already in that order skip the sort. Otherwise account and whole second share one
    int64 key where they fit (one fast integer sort instead of a two-key lexsort), and only the
    runs of equal keys are put back in file order.
    """
    n = len(code)
    if n < 2:
        return np.arange(n, dtype=np.int64)
    dc = np.diff(code)
    if (dc >= 0).all() and ((dc > 0) | (np.diff(ts) >= 0)).all():
        return np.arange(n, dtype=np.int64)
    secs = (ts - ts.min()) // 1_000_000
    t_bits = max(int(secs.max()).bit_length(), 1)
    if t_bits + max(int(code.max()).bit_length(), 1) > 63:
        return np.lexsort((ts, code)).astype(np.int64)
    key = (code << t_bits) | secs
    perm = np.argsort(key).astype(np.int64)
    sk, st = key[perm], ts[perm]
    same_key = sk[1:] == sk[:-1]
    if same_key.any():  # inside runs of one account and second: exact time, then file order
        pos = np.flatnonzero(np.r_[same_key, False] | np.r_[False, same_key])
        run = np.cumsum(np.r_[True, ~same_key])[pos]
        within = np.lexsort((perm[pos], st[pos], run))
        perm[pos] = perm[pos][within]
    return perm


def _count(mask: BoolArray, rows: IntArray, base: int, weight: IntArray | None = None) -> RowCount:
    picked = rows[mask]
    total = int(weight[mask].sum()) if weight is not None else len(picked)
    if len(picked) > MAX_EXAMPLES:
        picked = np.partition(picked, MAX_EXAMPLES - 1)[:MAX_EXAMPLES]
    return RowCount(total, tuple(int(r) + base for r in np.sort(picked)))


def _check_offsets(
    path: Path,
    acc_sorted: Any,
    code: IntArray,
    off: npt.NDArray[np.int16],
    rows: IntArray,
    base: int,
) -> None:
    same = code[1:] == code[:-1]
    changed = np.flatnonzero(same & (off[1:] != off[:-1])) + 1
    if not len(changed):
        return
    bad_codes = np.unique(code[changed])
    parts = []
    for c in bad_codes[:3]:  # the message names at most three accounts
        sel = np.flatnonzero(code == c)
        vals, counts = np.unique(off[sel], return_counts=True)
        usual = vals[np.argmax(counts)]
        odd = np.sort(rows[sel][off[sel] != usual])
        name = acc_sorted[int(sel[0])].as_py()
        parts.append(
            f"account {name!r} reports offset {_fmt_offset(int(usual))} but "
            f"{', '.join(_fmt_offset(int(v)) for v in vals if v != usual)} in rows "
            f"{_rows_text(odd, base)}"
        )
    more = f" (and {len(bad_codes) - 3} more accounts)" if len(bad_codes) > 3 else ""
    raise InputError(
        f"{path}: column 'ts' mixes UTC offsets within one account: {'; '.join(parts)}{more}. "
        "A meter's offset never changes (no daylight saving time in China); fix the export"
    )


def _fmt_offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"


def _null_mask(arr: Any) -> BoolArray:
    return np.asarray(pc.is_null(arr).to_numpy(zero_copy_only=False), dtype=np.bool_)


def _floats(arr: Any) -> FloatArray:
    return np.asarray(pc.fill_null(arr, math.nan).to_numpy(zero_copy_only=False), dtype=np.float64)


def load_readings(path: str | Path) -> LoadedReadings:
    """Load, check and clean a meter readings file (see the module docstring for every rule).

    Raises :class:`~minewatch.errors.InputError` for unusable input, naming column and rows.
    """
    path = Path(path)
    known = (*_REQUIRED, *_OPTIONAL, "kwh", "utc_offset_min")
    raw, base = _read_table(path, _REQUIRED, known, _NUMERIC)
    n = raw.num_rows
    if n == 0:
        raise InputError(f"{path}: no readings (the file has a header but no rows)")

    account = _to_account(path, raw.column("account_id"), base)
    offset_col = raw.column("utc_offset_min") if "utc_offset_min" in raw.column_names else None
    ts, off = _parse_ts(path, raw.column("ts"), base, offset_col)
    values = {
        name: _to_float(path, name, raw.column(name), base)
        for name in _NUMERIC
        if name in raw.column_names
    }

    # Account codes in lexicographic order, then one order by (account, time, file row).
    enc = pc.dictionary_encode(account)
    rank = np.empty(len(enc.dictionary), dtype=np.int64)
    order = np.asarray(pc.sort_indices(enc.dictionary).to_numpy(), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    names = enc.dictionary.take(pa.array(order))
    code_file = rank[np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)]
    perm = _sort_order(code_file, ts)
    code, ts, off = code_file[perm], ts[perm], off[perm]
    _check_offsets(path, names, code, off, perm, base)

    same = np.r_[False, code[1:] == code[:-1]]
    dup = same & np.r_[False, ts[1:] == ts[:-1]]
    duplicates = _count(dup, perm, base)
    keep = ~dup
    rows = perm[keep]
    code, ts, off = code[keep], ts[keep], off[keep]
    same = np.r_[False, code[1:] == code[:-1]]
    take = pa.array(rows)
    n_acc = len(names)

    kw_arr = values["kw"].take(take)
    kw_null = _null_mask(kw_arr)
    kw = _floats(kw_arr)
    with np.errstate(invalid="ignore"):
        absurd = ~kw_null & (~np.isfinite(kw) | (np.abs(kw) > ABSURD_KW))
        valid = ~kw_null & ~absurd
        negative = valid & (kw < 0)
        # The account median only matters where an account has negative readings.
        has_neg = np.zeros(n_acc, dtype=np.bool_)
        has_neg[code[negative]] = True
        pick = valid & has_neg[code]
        median = _group_lower_median(kw[pick], code[pick], n_acc)
        floor = np.maximum(NOISE_SHARE * np.nan_to_num(np.maximum(median, 0.0)), NOISE_FLOOR_KW)
        noise = negative & (kw >= -floor[code])
        export = negative & ~noise
    normal = valid & (kw > 0)
    prev_normal = np.r_[False, normal[:-1]] & same
    next_normal = np.r_[normal[1:], False] & np.r_[same[1:], False]
    dropout = valid & (kw == 0) & prev_normal & next_normal
    kw_out = np.where(noise, 0.0, kw)
    kw_excluded = kw_null | absurd | export

    resets = np.zeros(len(rows), dtype=np.bool_)
    if "kwh" in values:
        kwh = _floats(values["kwh"].take(take))
        with np.errstate(invalid="ignore"):
            resets[1:] = same[1:] & (kwh[1:] < kwh[:-1])

    optional_bad = np.zeros(len(rows), dtype=np.bool_)
    columns: dict[str, Any] = {}
    for name in _OPTIONAL:  # four columns, not rows
        if name not in values:
            columns[name] = pa.nulls(len(rows), pa.float64())
            continue
        arr = values[name].take(take)
        vals, nulls = _floats(arr), _null_mask(arr)
        low = -ABSURD_KW if name == "kvar" else 0.0
        with np.errstate(invalid="ignore"):
            bad = ~nulls & (~np.isfinite(vals) | (vals < low) | (vals > ABSURD_KW))
        optional_bad |= bad
        columns[name] = pa.array(vals, mask=nulls | bad, type=pa.float64())

    # Intervals: median step per account; gaps counted in whole intervals.
    step = np.diff(ts, prepend=ts[:1])
    median_step = _group_lower_median_steps(step[same], code[same], n_acc)
    n_steps = np.bincount(code[same], minlength=n_acc)
    interval_us = np.nan_to_num(median_step, nan=0.0).astype(np.int64)
    in_range = (
        (interval_us % _US_PER_MIN == 0)
        & (interval_us >= _US_PER_MIN)
        & (interval_us <= 60 * _US_PER_MIN)
    )
    safe_interval = np.where(in_range, interval_us, 1)
    on_grid = same & (step % safe_interval[code] == 0)
    grid_share = np.bincount(code[on_grid], minlength=n_acc) / np.maximum(n_steps, 1)
    regular = (n_steps > 0) & in_range & (grid_share >= REGULAR_SHARE)
    reasons = np.full(n_acc, None, dtype=object)
    reasons[(n_steps > 0) & ~in_range] = "median step is not a whole number of minutes from 1 to 60"
    off_grid = (n_steps > 0) & in_range & (grid_share < REGULAR_SHARE)
    reasons[off_grid] = "fewer than 90 % of steps are whole multiples of the median step"
    reasons[n_steps == 0] = "a single reading: no interval"
    slots = np.where(same & regular[code], step // safe_interval[code], 0)
    missing_per_row = np.maximum(slots - 1, 0)
    gap_rows = missing_per_row > 0

    first_idx = np.flatnonzero(~same)
    last_idx = np.r_[first_idx[1:] - 1, len(ts) - 1]
    span = ts[last_idx] - ts[first_idx]
    expected = np.where(regular, span // safe_interval + 1, 0)
    missing_acc = np.bincount(code, weights=missing_per_row, minlength=n_acc).astype(np.int64)
    gaps_acc = np.bincount(code, weights=gap_rows, minlength=n_acc).astype(np.int64)

    ts_type = pa.timestamp("us", tz="UTC")
    account_col = names.take(pa.array(code))
    table = pa.table(
        {
            "account_id": account_col,
            "ts_utc": pa.array(ts, type=ts_type),
            "utc_offset_min": pa.array(off, type=pa.int16()),
            "kw": pa.array(kw_out, mask=kw_excluded, type=pa.float64()),
            **columns,
        }
    )
    interval_min = np.where(regular, interval_us // _US_PER_MIN, 0).astype(np.int16)
    per_account = pa.table(
        {
            "account_id": names,
            "n_readings": pa.array(np.bincount(code, minlength=n_acc), type=pa.int64()),
            "first_ts": pa.array(ts[first_idx], type=ts_type),
            "last_ts": pa.array(ts[last_idx], type=ts_type),
            "interval_min": pa.array(interval_min, mask=~regular, type=pa.int16()),
            "regular": pa.array(regular, type=pa.bool_()),
            "reason": pa.array(reasons.tolist(), type=pa.string()),
            "expected_slots": pa.array(expected, type=pa.int64()),
            "missing_intervals": pa.array(missing_acc, type=pa.int64()),
            "gaps": pa.array(gaps_acc, type=pa.int64()),
        }
    )
    ex_idx = np.flatnonzero(kw_excluded)
    reason = np.full(len(ex_idx), "null", dtype=object)
    reason[absurd[ex_idx]] = "absurd"
    reason[export[ex_idx]] = "export"
    excluded = pa.table(
        {
            "row": pa.array(rows[ex_idx] + base, type=pa.int64()),
            "account_id": account_col.take(pa.array(ex_idx)),
            "ts_utc": pa.array(ts[ex_idx], type=ts_type),
            "reason": pa.array(reason.tolist(), type=pa.string()),
            "kw_raw": kw_arr.take(pa.array(ex_idx)),
        }
    )
    med_min = median_step / _US_PER_MIN
    irregular = tuple(
        IrregularAccount(
            str(names[int(i)].as_py()),
            str(reasons[i]),
            None if math.isnan(med_min[i]) else float(med_min[i]),
        )
        for i in np.flatnonzero(~regular)  # one per irregular account, not per row
    )
    summary = IngestSummary(
        path=str(path),
        rows_read=n,
        rows_kept=len(rows),
        accounts=n_acc,
        duplicates_dropped=duplicates,
        missing_intervals=_count(gap_rows, rows, base, missing_per_row),
        gaps=_count(gap_rows, rows, base),
        meter_resets=_count(resets, rows, base),
        dropouts=_count(dropout, rows, base),
        negative_clipped=_count(noise, rows, base),
        negative_excluded=_count(export, rows, base),
        absurd=_count(absurd, rows, base),
        null_kw=_count(kw_null, rows, base),
        absurd_optional=_count(optional_bad, rows, base),
        irregular_accounts=irregular,
    )
    return LoadedReadings(table, per_account, excluded, summary)


# --------------------------------------------------------------------------------------------
# Accounts file


_ACCOUNT_COLUMNS = ("account_id", "contracted_kw", "declared_business", "region_code")


def load_accounts(path: str | Path) -> Any:
    """Load the optional accounts file: ``account_id`` (required, unique), ``contracted_kw``
    (number ≥ 0), ``declared_business`` (text), ``region_code`` (6-digit administrative division
    code whose first two digits are a Chinese province-level code).

    Returns a table with exactly those four columns (absent ones are null), in file order.
    Raises :class:`~minewatch.errors.InputError` naming the column and rows of every bad value.

    Example::

        >>> accounts = load_accounts("accounts.csv")             # doctest: +SKIP
        >>> accounts.column("region_code")[0].as_py()            # doctest: +SKIP
        '650104'
    """
    path = Path(path)
    raw, base = _read_table(path, ("account_id",), _ACCOUNT_COLUMNS, ())
    if raw.num_rows == 0:
        raise InputError(f"{path}: no accounts (the file has a header but no rows)")
    account = _to_account(path, raw.column("account_id"), base)
    n = len(account)

    counts = pc.value_counts(account)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
    if len(repeated):
        dup = _first_rows(pc.is_in(account, value_set=repeated))
        shown = ", ".join(map(repr, repeated.to_pylist()[:MAX_EXAMPLES]))
        raise InputError(
            f"{path}: column 'account_id' repeats {shown} in rows {_rows_text(dup, base)}; "
            "each account must appear once"
        )

    if "contracted_kw" in raw.column_names:
        kw = _to_float(path, "contracted_kw", raw.column("contracted_kw"), base)
        ok = pc.and_(pc.is_finite(kw), pc.greater_equal(kw, 0))
        bad = _first_rows(pc.invert(pc.fill_null(ok, True)))
        if len(bad):
            raise InputError(
                f"{path}: column 'contracted_kw' must be a number ≥ 0; rows "
                f"{_rows_text(bad, base, _values_at(kw, bad))} are not"
            )
    else:
        kw = pa.nulls(n, pa.float64())

    business = (
        pc.cast(raw.column("declared_business"), pa.string()).combine_chunks()
        if "declared_business" in raw.column_names
        else pa.nulls(n, pa.string())
    )

    if "region_code" in raw.column_names:
        region = pc.utf8_trim_whitespace(pc.cast(raw.column("region_code"), pa.string()))
        region = pc.if_else(pc.equal(region, ""), None, region).combine_chunks()
        prefixes = pa.array(sorted(PROVINCES))
        ok = pc.and_(
            pc.match_substring_regex(region, r"^\d{6}$"),
            pc.is_in(pc.utf8_slice_codeunits(region, 0, 2), value_set=prefixes),
        )
        bad = _first_rows(pc.invert(pc.fill_null(ok, True)))
        if len(bad):
            raise InputError(
                f"{path}: column 'region_code' must be a 6-digit code starting with a "
                f"province-level code ({', '.join(sorted(PROVINCES))}); rows "
                f"{_rows_text(bad, base, _values_at(region, bad))} are not"
            )
    else:
        region = pa.nulls(n, pa.string())

    return pa.table(
        {
            "account_id": account,
            "contracted_kw": kw,
            "declared_business": business,
            "region_code": region,
        }
    )
