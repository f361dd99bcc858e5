"""Loading meter readings: formats, intervals, every counted repair and every input error."""

from __future__ import annotations

import datetime as dt
import gzip
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minewatch.errors import InputError, MinewatchError
from minewatch.power.readings import (
    READINGS_COLUMNS,
    IngestSummary,
    LoadedReadings,
    RowCount,
    load_accounts,
    load_readings,
)

CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 3, 1, 0, 0, tzinfo=CST)


def write_csv(path: Path, header: str, lines: list[str]) -> Path:
    text = header + "\n" + "".join(line + "\n" for line in lines)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def write_parquet_from_lines(path: Path, header: str, lines: list[str]) -> Path:
    """The same rows as a CSV would hold, with every column as text (as a lazy export would)."""
    names = header.split(",")
    cols: dict[str, list[str | None]] = {n: [] for n in names}
    for line in lines:
        for n, v in zip(names, line.split(","), strict=True):
            cols[n].append(v if v != "" else None)
    pq.write_table(pa.table({n: pa.array(v, pa.string()) for n, v in cols.items()}), path)
    return path


def write_any(path: Path, header: str, lines: list[str]) -> Path:
    if path.suffix == ".parquet":
        return write_parquet_from_lines(path, header, lines)
    return write_csv(path, header, lines)


def iso(t: dt.datetime) -> str:
    return t.isoformat()


def series(
    account: str, minutes: int, n: int, kw: float = 100.0, start: dt.datetime = T0
) -> list[str]:
    return [f"{account},{iso(start + dt.timedelta(minutes=minutes * i))},{kw}" for i in range(n)]


FORMATS = ["r.csv", "r.csv.gz", "r.parquet"]


# ---------------------------------------------------------------------------------------------
# Clean input


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize("minutes", [1, 5, 15, 60])
def test_clean_input_every_format_and_interval(tmp_path: Path, name: str, minutes: int) -> None:
    lines = series("B", minutes, 30, 50.0) + series("A", minutes, 30, 100.0)
    loaded = load_readings(write_any(tmp_path / name, "account_id,ts,kw", lines))

    t = loaded.table
    assert tuple(t.column_names) == READINGS_COLUMNS
    assert t.schema.field("account_id").type == pa.string()
    assert t.schema.field("ts_utc").type == pa.timestamp("us", tz="UTC")
    assert t.schema.field("utc_offset_min").type == pa.int16()
    for col in ("kw", "kvar", "ia", "ib", "ic"):
        assert t.schema.field(col).type == pa.float64()
    assert t.column("kvar").null_count == 60
    assert t.column("account_id").to_pylist() == ["A"] * 30 + ["B"] * 30
    first = t.column("ts_utc")[0].as_py()
    assert first == T0.astimezone(dt.UTC)
    assert set(t.column("utc_offset_min").to_pylist()) == {480}
    per = loaded.per_account.to_pylist()
    assert [(r["account_id"], r["interval_min"], r["regular"]) for r in per] == [
        ("A", minutes, True),
        ("B", minutes, True),
    ]
    assert per[0]["expected_slots"] == 30
    s = loaded.summary
    assert (s.rows_read, s.rows_kept, s.accounts, s.rows_excluded) == (60, 60, 2, 0)
    assert all(c.count == 0 for c in s.counts().values())
    assert s.irregular_accounts == ()
    assert loaded.screenable().num_rows == 60


def test_output_is_sorted_by_account_then_time(tmp_path: Path) -> None:
    lines = series("b", 15, 4)[::-1] + series("a", 15, 4)[::-1] + series("A10", 15, 2)
    t = load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines)).table
    accounts = t.column("account_id").to_pylist()
    assert accounts == sorted(accounts)
    keys = list(zip(accounts, t.column("ts_utc").to_pylist(), strict=True))
    assert keys == sorted(keys)


def test_optional_columns_and_case_insensitive_header(tmp_path: Path) -> None:
    lines = [f"X,{iso(T0 + dt.timedelta(minutes=15 * i))},10,2,1.5,1.6,1.7,9" for i in range(4)]
    path = write_csv(tmp_path / "r.csv", " Account_ID ,TS,KW,kvar,Ia,IB,ic,extra", lines)
    t = load_readings(path).table
    assert t.column("kvar").to_pylist() == [2.0] * 4
    assert t.column("ic").to_pylist() == [1.7] * 4
    assert t.num_columns == len(READINGS_COLUMNS)


@pytest.mark.parametrize(
    ("text", "utc", "offset"),
    [
        ("2026-03-01T08:00:00Z", "2026-03-01T08:00:00", 0),
        ("2026-03-01T08:00:00z", "2026-03-01T08:00:00", 0),
        ("2026-03-01 08:00:00+08:00", "2026-03-01T00:00:00", 480),
        ("2026-03-01T08:00:00+0800", "2026-03-01T00:00:00", 480),
        ("2026-03-01T08:00:00+08", "2026-03-01T00:00:00", 480),
        ("2026-03-01T08:00+08:00", "2026-03-01T00:00:00", 480),
        ("2026-03-01T08:00:00.250+08:00", "2026-03-01T00:00:00.250000", 480),
        ("2026-03-01T08:00:00.123456789+08:00", "2026-03-01T00:00:00.123456", 480),
        ("2026-03-01T08:00:00 +08:00", "2026-03-01T00:00:00", 480),
        ("2026-03-01T01:00:00-05:30", "2026-03-01T06:30:00", -330),
    ],
)
def test_timestamp_forms(tmp_path: Path, text: str, utc: str, offset: int) -> None:
    t = load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", [f"A,{text},1"])).table
    assert t.column("ts_utc")[0].as_py() == dt.datetime.fromisoformat(utc).replace(tzinfo=dt.UTC)
    assert t.column("utc_offset_min")[0].as_py() == offset


def test_different_accounts_may_have_different_offsets(tmp_path: Path) -> None:
    utc = dt.UTC
    lines = series("A", 15, 3) + series("U", 15, 3, start=T0.astimezone(utc))
    t = load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines)).table
    assert t.column("utc_offset_min").to_pylist() == [480] * 3 + [0] * 3
    assert t.column("ts_utc")[0] == t.column("ts_utc")[3]


# ---------------------------------------------------------------------------------------------
# Counting: one file with every condition, exact numbers and rows

COUNT_LINES = [
    # row 2 onwards (CSV); account A, 15-minute interval
    "A,2026-03-01T00:00:00+08:00,100,10,1,1,1,10",  # 2
    "A,2026-03-01T00:15:00+08:00,100,10,1,1,1,35",  # 3
    "A,2026-03-01T00:15:00+08:00,999,10,1,1,1,35",  # 4 duplicate of 3 (dropped)
    "A,2026-03-01T00:30:00+08:00,0,10,1,1,1,60",  # 5 dropout (0 between two normal readings)
    "A,2026-03-01T00:45:00+08:00,100,10,-1,1,1,5",  # 6 kwh reset; ia negative (absurd optional)
    "A,2026-03-01T01:30:00+08:00,-0.3,10,1,1,1,90",  # 7 after a gap of 2 slots; noise -> 0
    "A,2026-03-01T01:45:00+08:00,-50,10,1,1,1,95",  # 8 export (excluded)
    "A,2026-03-01T02:00:00+08:00,nan,10,1,1,1,100",  # 9 absurd
    "A,2026-03-01T02:15:00+08:00,,10,1,1,1,100",  # 10 null kw
    "A,2026-03-01T02:30:00+08:00,2000000,inf,1,1,1,100",  # 11 absurd kw; kvar inf (optional)
    "A,2026-03-01T04:30:00+08:00,100,10,1,1,1,100",  # 12 after a gap of 7 slots
    "B,2026-03-01T00:00:00+08:00,5,,,,,",  # 13
    "B,2026-03-01T00:05:00+08:00,5,,,,,",  # 14
]
COUNT_HEADER = "account_id,ts,kw,kvar,ia,ib,ic,kwh"


@pytest.mark.parametrize("name", FORMATS)
def test_every_condition_is_counted_with_rows(tmp_path: Path, name: str) -> None:
    loaded = load_readings(write_any(tmp_path / name, COUNT_HEADER, COUNT_LINES))
    shift = 0 if name.endswith((".csv", ".gz")) else -1  # Parquet rows count from 1, no header
    s = loaded.summary

    def rows(*r: int) -> tuple[int, ...]:
        return tuple(x + shift for x in r)

    assert (s.rows_read, s.rows_kept, s.accounts) == (13, 12, 2)
    assert s.duplicates_dropped == RowCount(1, rows(4))
    assert s.missing_intervals == RowCount(9, rows(7, 12))
    assert s.gaps == RowCount(2, rows(7, 12))
    assert s.meter_resets == RowCount(1, rows(6))
    assert s.dropouts == RowCount(1, rows(5))
    assert s.negative_clipped == RowCount(1, rows(7))
    assert s.negative_excluded == RowCount(1, rows(8))
    assert s.absurd == RowCount(2, rows(9, 11))
    assert s.null_kw == RowCount(1, rows(10))
    assert s.absurd_optional == RowCount(2, rows(6, 11))
    assert s.rows_excluded == 4

    t = loaded.table.filter(pc.equal(loaded.table.column("account_id"), "A"))
    assert t.column("kw").to_pylist() == [100, 100, 0, 100, 0.0, None, None, None, None, 100]
    assert t.column("ia").to_pylist()[3] is None
    assert t.column("kvar").to_pylist()[8] is None
    ex = loaded.excluded.to_pylist()
    assert [(r["row"] - shift, r["reason"]) for r in ex] == [
        (8, "export"),
        (9, "absurd"),
        (10, "null"),
        (11, "absurd"),
    ]
    assert ex[0]["kw_raw"] == -50.0

    per = {r["account_id"]: r for r in loaded.per_account.to_pylist()}
    assert per["A"]["interval_min"] == 15
    assert (per["A"]["expected_slots"], per["A"]["missing_intervals"], per["A"]["gaps"]) == (
        19,
        9,
        2,
    )
    assert per["A"]["n_readings"] + per["A"]["missing_intervals"] == per["A"]["expected_slots"]
    assert per["B"]["interval_min"] == 5


def test_summary_renders(tmp_path: Path) -> None:
    s = load_readings(write_csv(tmp_path / "r.csv", COUNT_HEADER, COUNT_LINES)).summary
    assert isinstance(s, IngestSummary)
    d = s.to_dict()
    assert d["duplicates_dropped"] == {"count": 1, "rows": [4]}
    assert d["rows_excluded"] == 4
    text = "\n".join(s.lines())
    assert "13 rows read, 12 kept, 4 excluded" in text
    assert "missing intervals: 9 (e.g. rows 7, 12)" in text
    assert str(RowCount()) == "0"


def test_duplicates_keep_the_first_row_in_file_order(tmp_path: Path) -> None:
    ts = iso(T0)
    lines = [f"A,{iso(T0 + dt.timedelta(minutes=15))},1", f"A,{ts},7", f"A,{ts},8", f"A,{ts},9"]
    loaded = load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines))
    assert loaded.table.column("kw").to_pylist() == [7.0, 1.0]
    assert loaded.summary.duplicates_dropped == RowCount(2, (4, 5))


def test_same_instant_written_in_two_offsets_is_mixed_not_duplicate(tmp_path: Path) -> None:
    lines = ["A,2026-03-01T08:00:00+08:00,1", "A,2026-03-01T00:00:00Z,2"]
    with pytest.raises(InputError, match="mixes UTC offsets"):
        load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines))


def test_many_duplicates_in_unsorted_file(tmp_path: Path) -> None:
    base = series("A", 15, 50) + series("B", 15, 50)
    lines = base[::-1] + base[:10]  # reversed file, then ten repeats
    loaded = load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines))
    assert loaded.summary.duplicates_dropped == RowCount(10, (102, 103, 104, 105, 106))
    assert loaded.table.num_rows == 100


@pytest.mark.parametrize(
    ("kw", "median_kw", "clipped", "excluded"),
    [
        (-0.8, 100.0, 1, 0),  # 1 % of 100 kW = 1 kW: noise
        (-2.0, 100.0, 0, 1),
        (-0.4, 10.0, 1, 0),  # 1 % of 10 kW is 0.1 kW, the 0.5 kW floor applies
        (-0.6, 10.0, 0, 1),
        (-50.0, 10_000.0, 1, 0),  # 1 % of 10 MW
        (-150.0, 10_000.0, 0, 1),
    ],
)
def test_negative_thresholds(
    tmp_path: Path, kw: float, median_kw: float, clipped: int, excluded: int
) -> None:
    lines = series("A", 15, 5, median_kw)
    lines[2] = lines[2].rsplit(",", 1)[0] + f",{kw}"
    s = load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines)).summary
    assert (s.negative_clipped.count, s.negative_excluded.count) == (clipped, excluded)


@pytest.mark.parametrize("value", ["2000000", "-2000000", "inf", "-inf", "NaN", "Infinity"])
def test_absurd_kw(tmp_path: Path, value: str) -> None:
    lines = series("A", 15, 3)
    lines[1] = lines[1].rsplit(",", 1)[0] + f",{value}"
    loaded = load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines))
    assert loaded.summary.absurd == RowCount(1, (3,))
    assert loaded.table.column("kw").to_pylist() == [100.0, None, 100.0]


def test_null_kw_keeps_the_slot(tmp_path: Path) -> None:
    lines = series("A", 15, 3)
    lines[1] = lines[1].rsplit(",", 1)[0] + ",NULL"
    loaded = load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines))
    assert loaded.summary.null_kw == RowCount(1, (3,))
    assert loaded.summary.missing_intervals.count == 0


def test_zero_runs_and_edges_are_not_dropouts(tmp_path: Path) -> None:
    kws = [0, 5, 0, 0, 5, 0, 5, 0]  # only the zero at index 5 sits between two normal readings
    lines = [f"A,{iso(T0 + dt.timedelta(minutes=15 * i))},{k}" for i, k in enumerate(kws)]
    s = load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines)).summary
    assert s.dropouts == RowCount(1, (7,))


def test_kwh_resets_only_within_an_account(tmp_path: Path) -> None:
    lines = [
        f"A,{iso(T0)},1,100",
        f"A,{iso(T0 + dt.timedelta(minutes=15))},1,50",
        f"A,{iso(T0 + dt.timedelta(minutes=30))},1,60",
        f"B,{iso(T0)},1,5",  # lower than A's last reading: a new account, not a reset
        f"B,{iso(T0 + dt.timedelta(minutes=15))},1,",
    ]
    s = load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw,kwh", lines)).summary
    assert s.meter_resets == RowCount(1, (3,))


# ---------------------------------------------------------------------------------------------
# Irregular intervals


def test_irregular_accounts_are_named_and_not_screenable(tmp_path: Path) -> None:
    seconds = [f"S,{iso(T0 + dt.timedelta(seconds=7 * i))},1" for i in range(6)]  # 7-second steps
    steps = [15, 20, 15, 15, 20, 15, 15, 20, 15, 15]  # median 15, 30 % of steps off the grid
    jitter = [
        f"J,{iso(T0 + dt.timedelta(minutes=sum(steps[:i])))},1" for i in range(len(steps) + 1)
    ]
    lines = (
        series("OK", 15, 6)
        + seconds
        + series("H", 90, 4)  # 90 minutes: beyond 60
        + ["ONE,2026-03-01T00:00:00+08:00,1"]
        + jitter
    )
    loaded = load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines))
    irregular = {a.account_id: a for a in loaded.summary.irregular_accounts}
    assert set(irregular) == {"S", "H", "ONE", "J"}
    assert "whole number of minutes" in irregular["S"].reason
    assert irregular["H"].median_step_min == 90.0
    assert "single reading" in irregular["ONE"].reason
    assert irregular["ONE"].median_step_min is None
    assert "90 %" in irregular["J"].reason
    per = {r["account_id"]: r for r in loaded.per_account.to_pylist()}
    assert per["H"]["interval_min"] is None and per["H"]["regular"] is False
    assert per["OK"]["interval_min"] == 15
    assert set(loaded.screenable().column("account_id").to_pylist()) == {"OK"}
    assert loaded.table.num_rows == len(lines)


def test_a_few_missing_slots_keep_an_account_regular(tmp_path: Path) -> None:
    lines = series("A", 5, 40)
    del lines[10:13]
    loaded = load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines))
    assert loaded.per_account.column("interval_min").to_pylist() == [5]
    assert loaded.summary.missing_intervals == RowCount(3, (12,))
    assert loaded.summary.gaps == RowCount(1, (12,))


# ---------------------------------------------------------------------------------------------
# Parquet specifics


def test_parquet_typed_columns(tmp_path: Path) -> None:
    ts = pa.array(
        [T0 + dt.timedelta(minutes=15 * i) for i in range(4)], pa.timestamp("ms", tz="+08:00")
    )
    table = pa.table(
        {"account_id": pa.array([7, 7, 7, 7]), "ts": ts, "kw": pa.array([1, 2, 3, 4], pa.int32())}
    )
    pq.write_table(table, tmp_path / "r.parquet")
    t = load_readings(tmp_path / "r.parquet").table
    assert t.column("account_id").to_pylist() == ["7"] * 4
    assert t.column("utc_offset_min").to_pylist() == [480] * 4
    assert t.column("kw").to_pylist() == [1.0, 2.0, 3.0, 4.0]
    assert t.column("ts_utc")[0].as_py() == T0.astimezone(dt.UTC)


def test_parquet_named_zone(tmp_path: Path) -> None:
    ts = pa.array([T0, T0 + dt.timedelta(hours=1)], pa.timestamp("us", tz="Asia/Shanghai"))
    pq.write_table(
        pa.table({"account_id": ["a", "a"], "ts": ts, "kw": [1.0, 1.0]}), tmp_path / "r.parquet"
    )
    t = load_readings(tmp_path / "r.parquet").table
    assert t.column("utc_offset_min").to_pylist() == [480, 480]


def test_parquet_utc_with_offset_column(tmp_path: Path) -> None:
    ts = pa.array([T0, T0 + dt.timedelta(minutes=15)], pa.timestamp("us", tz="UTC"))
    table = pa.table(
        {"account_id": ["a", "a"], "ts": ts, "kw": [1.0, 1.0], "utc_offset_min": [480, 480]}
    )
    pq.write_table(table, tmp_path / "r.parquet")
    t = load_readings(tmp_path / "r.parquet").table
    assert t.column("utc_offset_min").to_pylist() == [480, 480]
    assert t.column("ts_utc")[0].as_py() == T0.astimezone(dt.UTC)
    bad = table.set_column(3, "utc_offset_min", pa.array([480.5, None]))
    pq.write_table(bad, tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=r"'utc_offset_min' must be whole minutes.*rows 1, 2"):
        load_readings(tmp_path / "bad.parquet")


def test_parquet_naive_timestamps_need_an_offset(tmp_path: Path) -> None:
    ts = pa.array([dt.datetime(2026, 3, 1)], pa.timestamp("us"))
    pq.write_table(pa.table({"account_id": ["a"], "ts": ts, "kw": [1.0]}), tmp_path / "r.parquet")
    with pytest.raises(InputError, match="offsets are required"):
        load_readings(tmp_path / "r.parquet")


def test_parquet_wrong_types(tmp_path: Path) -> None:
    pq.write_table(
        pa.table({"account_id": ["a"], "ts": [1.5], "kw": [1.0]}), tmp_path / "r.parquet"
    )
    with pytest.raises(InputError, match=r"column 'ts' has type double"):
        load_readings(tmp_path / "r.parquet")
    pq.write_table(
        pa.table({"account_id": ["a"], "ts": [iso(T0)], "kw": [True]}), tmp_path / "r.parquet"
    )
    with pytest.raises(InputError, match=r"column 'kw' has type bool"):
        load_readings(tmp_path / "r.parquet")


# ---------------------------------------------------------------------------------------------
# Bad input: clear messages naming file, column and rows


def test_missing_column_names_file_column_and_columns_found(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", "account_id,time,power", ["A,x,1"])
    with pytest.raises(InputError) as err:
        load_readings(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "'ts'" in msg
    assert "columns found: account_id, time, power" in msg


def test_missing_column_in_parquet(tmp_path: Path) -> None:
    pq.write_table(pa.table({"account_id": ["a"], "ts": [iso(T0)]}), tmp_path / "r.parquet")
    with pytest.raises(InputError, match=r"missing required column 'kw'.*account_id, ts"):
        load_readings(tmp_path / "r.parquet")


def test_unparseable_timestamps_name_rows_and_values(tmp_path: Path) -> None:
    lines = [*series("A", 15, 3), "A,yesterday,1", "A,2026-03-01T25:00:00+08:00,1"]
    with pytest.raises(InputError) as err:
        load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines))
    msg = str(err.value)
    assert "column 'ts'" in msg
    assert "5 ('yesterday')" in msg
    assert "6 ('2026-03-01T25:00:00+08:00')" in msg


def test_impossible_calendar_date(tmp_path: Path) -> None:
    lines = ["A,2026-02-28T00:00:00+08:00,1", "A,2026-02-30T00:00:00+08:00,1"]
    with pytest.raises(InputError, match=r"cannot be parsed in rows 3 \('2026-02-30"):
        load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines))


def test_offset_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"rows 2 \('2026-03-01T00:00:00\+15:00'\)"):
        load_readings(
            write_csv(tmp_path / "r.csv", "account_id,ts,kw", ["A,2026-03-01T00:00:00+15:00,1"])
        )


def test_timestamps_without_offset(tmp_path: Path) -> None:
    lines = ["A,2026-03-01T00:00:00+08:00,1", "A,2026-03-01 00:15:00,1", "A,2026-03-01,1"]
    with pytest.raises(InputError) as err:
        load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines))
    msg = str(err.value)
    assert "offsets are required, e.g. 2026-03-01T00:15:00+08:00" in msg
    assert "3 ('2026-03-01 00:15:00')" in msg
    assert "4 ('2026-03-01')" in msg


def test_empty_timestamp(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"column 'ts' is empty in rows 3"):
        load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", [f"A,{iso(T0)},1", "A,,1"]))


def test_mixed_offsets_within_an_account_name_account_and_rows(tmp_path: Path) -> None:
    lines = [
        *series("A", 15, 4),
        "A,2026-03-01T03:00:00+09:00,1",
        "A,2026-03-01T03:15:00+09:00,1",
        *series("B", 15, 2, start=T0.astimezone(dt.UTC)),
    ]
    with pytest.raises(InputError) as err:
        load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines))
    msg = str(err.value)
    assert "account 'A' reports offset +08:00 but +09:00 in rows 6, 7" in msg
    assert "'B'" not in msg


def test_non_numeric_values_name_column_rows_and_values(tmp_path: Path) -> None:
    lines = [*series("A", 15, 2), f"A,{iso(T0 + dt.timedelta(hours=1))},12kW"]
    with pytest.raises(InputError) as err:
        load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines))
    assert "column 'kw' must hold numbers; rows 4 ('12kW') do not" in str(err.value)


def test_non_numeric_optional_column(tmp_path: Path) -> None:
    lines = [f"A,{iso(T0)},1,abc"]
    with pytest.raises(InputError, match=r"column 'ia' must hold numbers; rows 2 \('abc'\)"):
        load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw,ia", lines))


def test_non_numeric_text_in_parquet(tmp_path: Path) -> None:
    path = write_parquet_from_lines(tmp_path / "r.parquet", "account_id,ts,kw", [f"A,{iso(T0)},x"])
    with pytest.raises(InputError, match=r"column 'kw' must hold numbers; rows 1 \('x'\)"):
        load_readings(path)


def test_empty_account_ids(tmp_path: Path) -> None:
    lines = [f"A,{iso(T0)},1", f",{iso(T0)},1", f"  ,{iso(T0)},1"]
    with pytest.raises(InputError, match=r"'account_id' is empty in rows 3, 4"):
        load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines))


def test_many_bad_rows_are_summarised(tmp_path: Path) -> None:
    lines = [f"A,bad{i},1" for i in range(12)]
    with pytest.raises(InputError, match=r"and 7 more"):
        load_readings(write_csv(tmp_path / "r.csv", "account_id,ts,kw", lines))


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_readings(tmp_path / "absent.csv")
    (tmp_path / "r.json").write_text("{}")
    with pytest.raises(InputError, match=r"\.parquet, \.csv or \.csv\.gz"):
        load_readings(tmp_path / "r.json")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty"):
        load_readings(tmp_path / "empty.csv")
    write_csv(tmp_path / "header.csv", "account_id,ts,kw", [])
    with pytest.raises(InputError, match="no readings"):
        load_readings(tmp_path / "header.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="cannot read Parquet"):
        load_readings(tmp_path / "bad.parquet")
    (tmp_path / "bad.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(InputError):
        load_readings(tmp_path / "bad.csv.gz")
    write_csv(tmp_path / "ragged.csv", "account_id,ts,kw", [f"A,{iso(T0)},1,extra"])
    with pytest.raises(InputError, match="cannot read CSV"):
        load_readings(tmp_path / "ragged.csv")
    write_csv(tmp_path / "twice.csv", "account_id,ts,kw,KW", [f"A,{iso(T0)},1,2"])
    with pytest.raises(InputError, match="both mean 'kw'"):
        load_readings(tmp_path / "twice.csv")


# ---------------------------------------------------------------------------------------------
# Random input never escapes as anything but InputError

_cell = st.one_of(
    st.sampled_from(["", "x", "NaN", "-inf", "1e400", "0", "-0.3", "5", "-2000000", " 7 ", "NULL"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet="0123456789:-+TZ. ae", max_size=12),
)
_ts = st.one_of(
    st.integers(0, 400).map(lambda i: iso(T0 + dt.timedelta(minutes=15 * i))),
    st.integers(0, 400).map(lambda i: iso((T0 + dt.timedelta(minutes=5 * i)).astimezone(dt.UTC))),
    st.sampled_from(
        ["", "2026-03-01", "2026-02-30T00:00:00+08:00", "garbage", "2026-03-01T00:00Z"]
    ),
    st.text(alphabet="0123456789:-+TZ ", max_size=26),
)
_row = st.tuples(st.sampled_from(["A", "B", "C", "", " "]), _ts, _cell, _cell, _cell)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=st.lists(_row, min_size=1, max_size=40))
def test_random_rows_load_or_raise_input_error(tmp_path: Path, rows: list[Any]) -> None:
    lines = [",".join(r) for r in rows]
    path = write_csv(tmp_path / "h.csv", "account_id,ts,kw,kvar,kwh", lines)
    try:
        loaded = load_readings(path)
    except InputError:
        return
    check_invariants(loaded)


def check_invariants(loaded: LoadedReadings) -> None:
    s, t = loaded.summary, loaded.table
    assert s.rows_kept == t.num_rows == s.rows_read - s.duplicates_dropped.count
    keys = list(
        zip(t.column("account_id").to_pylist(), t.column("ts_utc").to_pylist(), strict=True)
    )
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    kw = [v for v in t.column("kw").to_pylist() if v is not None]
    assert all(math.isfinite(v) and 0 <= v <= 1e6 for v in kw)
    assert t.column("kw").null_count == s.rows_excluded == loaded.excluded.num_rows
    ids = t.column("account_id").to_pylist()
    per = loaded.per_account
    assert per.column("account_id").to_pylist() == sorted(set(ids))
    assert per.column("n_readings").to_pylist() == [ids.count(a) for a in sorted(set(ids))]


# ---------------------------------------------------------------------------------------------
# Accounts file

ACC_HEADER = "account_id,contracted_kw,declared_business,region_code"


@pytest.mark.parametrize("name", ["a.csv", "a.csv.gz", "a.parquet"])
def test_accounts_file(tmp_path: Path, name: str) -> None:
    lines = ["A,1000,data centre,650104", "B,,cold store,110105", "C,0,,"]
    t = load_accounts(write_any(tmp_path / name, ACC_HEADER, lines))
    assert t.column_names == ["account_id", "contracted_kw", "declared_business", "region_code"]
    assert t.column("contracted_kw").to_pylist() == [1000.0, None, 0.0]
    assert t.column("region_code").to_pylist() == ["650104", "110105", None]
    assert t.column("declared_business").to_pylist()[:2] == ["data centre", "cold store"]


def test_accounts_optional_columns_absent(tmp_path: Path) -> None:
    t = load_accounts(write_csv(tmp_path / "a.csv", "account_id", ["A", "B"]))
    assert t.column("region_code").null_count == 2
    assert t.schema.field("contracted_kw").type == pa.float64()


def test_accounts_parquet_integer_region(tmp_path: Path) -> None:
    pq.write_table(pa.table({"account_id": ["A"], "region_code": [510104]}), tmp_path / "a.parquet")
    assert load_accounts(tmp_path / "a.parquet").column("region_code").to_pylist() == ["510104"]


@pytest.mark.parametrize(
    ("lines", "pattern"),
    [
        (
            ["A,1,x,650104", "B,1,x,990101", "C,1,x,65010", "D,1,x,6501O4"],
            r"'region_code'.*rows 3 \('990101'\), 4 \('65010'\), 5 \('6501O4'\)",
        ),
        (["A,1,x,160101"], r"'region_code'.*rows 2 \('160101'\)"),
        (["A,-5,x,650104"], r"'contracted_kw' must be a number ≥ 0; rows 2 \(-5.0\)"),
        (["A,lots,x,650104"], r"'contracted_kw' must hold numbers; rows 2 \('lots'\)"),
        (["A,inf,x,650104"], r"'contracted_kw' must be a number ≥ 0"),
        (["A,1,x,650104", "A,2,y,650104"], r"repeats 'A' in rows 2, 3"),
        ([",1,x,650104"], r"'account_id' is empty in rows 2"),
    ],
)
def test_accounts_errors_name_rows(tmp_path: Path, lines: list[str], pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        load_accounts(write_csv(tmp_path / "a.csv", ACC_HEADER, lines))


def test_accounts_every_province_prefix_is_accepted(tmp_path: Path) -> None:
    prefixes = "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82"
    lines = [f"A{p},1,x,{p}0101" for p in prefixes.split()]
    assert load_accounts(write_csv(tmp_path / "a.csv", ACC_HEADER, lines)).num_rows == 34
    for bad in (
        "10",
        "16",
        "20",
        "24",
        "30",
        "38",
        "40",
        "47",
        "49",
        "55",
        "60",
        "66",
        "70",
        "72",
        "80",
        "83",
        "00",
    ):
        with pytest.raises(InputError):
            load_accounts(write_csv(tmp_path / "b.csv", ACC_HEADER, [f"A,1,x,{bad}0101"]))


def test_accounts_missing_account_column(tmp_path: Path) -> None:
    with pytest.raises(
        InputError, match=r"missing required column 'account_id'; columns found: id, region_code"
    ):
        load_accounts(write_csv(tmp_path / "a.csv", "id,region_code", ["A,650104"]))


def test_errors_are_minewatch_errors() -> None:
    assert issubclass(InputError, MinewatchError)
