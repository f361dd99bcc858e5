"""DuckDB, Spark and plain pandas compute the same load-profile features.

One small synthetic dataset holds the load shapes the features are about (flat mining farms, an
office, a household, a level step on a known day, kvar and phase currents, a meter on another
UTC offset, missing readings, null kW, curtailment, AI-training dips, a cold store, an account
too short for a step search). All three engines must agree on every column of
:data:`~minewatch.power.features.FEATURE_COLUMNS` to a relative 1e-6, timestamps exactly.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from minewatch.power.features import FEATURE_COLUMNS, compute_features
from minewatch.power.reference import compute_features_pandas

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

STEP_S = 900  # 15-minute readings
DAYS = 28
START = datetime(2026, 3, 1, 16, tzinfo=UTC)  # Monday 2026-03-02 00:00 at UTC+08:00
STEP_DAY = 15  # local day (0-based) on which the stepped account's extra load starts, at 02:00
STEP_KW = 600.0
RTOL = 1e-6
ATOL = 1e-12  # for values that are zero in exact arithmetic (e.g. no spread at all)
PROFILES = (
    "asic_flat",
    "asic_reboots",
    "office",
    "household",
    "stepped",
    "reactive_phases",
    "offset_0530",
    "gappy",
    "kw_nulls",
    "curtailer",
    "ai_training",
    "cold_store",
    "short",
)
# Meters idle (0 kW) for the first IDLE_DAYS, then on: the step search meets a zero level before
# the onset (step_rel has no level to relate to) and, when the load after it is exactly
# constant, a zero spread on both sides (t = +inf, as DuckDB divides doubles).
IDLE_PROFILES = ("idle_then_flat", "idle_then_noisy")
IDLE_DAYS = 10


def _profile(
    name: str, t: np.ndarray, offset_min: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Columns for one account; ``t`` is seconds since START (UTC)."""
    local = t + (offset_min - 480) * 60  # seconds since Monday 00:00 on the meter's clock
    hour = (local // 3600) % 24
    weekday = (local // 86400) % 7 < 5
    n = t.size
    kw: np.ndarray
    cols: dict[str, np.ndarray] = {}
    if name == "asic_flat":
        kw = 1200 + 8 * np.sin(2 * np.pi * (hour - 9) / 24) + rng.normal(0, 4, n)
    elif name == "asic_reboots":
        kw = 480 + rng.normal(0, 2, n)
        kw[rng.choice(n, 6, replace=False)] = 0.0
    elif name in ("office", "offset_0530", "kw_nulls"):
        kw = 80 + 320 * ((hour >= 8) & (hour < 19) & weekday) + rng.normal(0, 5, n)
    elif name == "household":
        kw = np.maximum(2 + 3 * ((hour >= 18) & (hour < 23)) + rng.normal(0, 0.5, n), 0.0)
    elif name == "stepped":
        base = 150 + 100 * np.sin(2 * np.pi * (hour - 6) / 24) + rng.normal(0, 6, n)
        onset = STEP_DAY * 86400 + 2 * 3600  # 02:00 local on STEP_DAY
        kw = base + STEP_KW * (local >= onset)
    elif name == "reactive_phases":
        kw = 900 + rng.normal(0, 6, n)
        kvar = kw * math.tan(math.acos(0.96)) + rng.normal(0, 3, n)
        kvar[rng.choice(n, n // 20, replace=False)] = np.nan  # some kvar missing
        cols["kvar"] = kvar
        cols["ia"] = 1300 + rng.normal(0, 10, n)
        cols["ib"] = 1250 + rng.normal(0, 10, n)
        cols["ic"] = 1350 + rng.normal(0, 10, n)
    elif name == "gappy":
        kw = 640 + rng.normal(0, 3, n)
    elif name == "curtailer":
        peak = ((hour >= 8) & (hour < 11)) | ((hour >= 18) & (hour < 23))
        kw = np.where(peak, 0.5, 800.0) + rng.normal(0, 1, n)
    elif name == "ai_training":
        kw = 700 + rng.normal(0, 5, n)
        kw[::8] *= 0.55  # a checkpoint stall every two hours
    elif name == "cold_store":
        kw = np.where(rng.random(n) < 0.4, 220.0, 15.0) + rng.normal(0, 2, n)
    elif name == "short":
        kw = 300 + rng.normal(0, 3, n)
    elif name == "idle_then_flat":
        kw = np.where(local >= IDLE_DAYS * 86400, 500.0, 0.0)
    elif name == "idle_then_noisy":
        kw = np.where(local >= IDLE_DAYS * 86400, 500.0 + rng.normal(0, 5, n), 0.0)
    else:  # pragma: no cover
        raise AssertionError(name)
    cols["kw"] = kw
    return cols


def build_readings(profiles: tuple[str, ...] = PROFILES, seed: int = 11) -> pa.Table:
    """The synthetic readings table (layout of ``load_readings``)."""
    rng = np.random.default_rng(seed)
    grid = np.arange(DAYS * 86400 // STEP_S, dtype=np.int64) * STEP_S
    start_us = int(START.timestamp()) * 1_000_000
    parts = []
    for name in profiles:
        offset = 330 if name == "offset_0530" else 480
        t = grid
        if name == "short":
            t = grid[: 36 * 4]  # 36 hours: no two-day segments, no step search
        cols = _profile(name, t, offset, rng)
        keep = np.ones(t.size, dtype=bool)
        if name == "gappy":
            keep &= rng.random(t.size) > 0.15  # 15 % of readings missing
            keep &= ~((t >= 9 * 86400) & (t < 9 * 86400 + 30 * 3600))  # a 30-hour outage
        kw = cols["kw"]
        if name == "kw_nulls":
            kw = kw.copy()
            kw[rng.random(t.size) < 0.05] = np.nan  # slots without a value
        n = int(keep.sum())
        table = {
            "account_id": pa.array([name] * n, pa.string()),
            "ts_utc": pa.array(start_us + t[keep] * 1_000_000, pa.int64()).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "utc_offset_min": pa.array(np.full(n, offset, dtype=np.int16)),
            "kw": pa.array(kw[keep], pa.float64(), from_pandas=True),
        }
        for c in ("kvar", "ia", "ib", "ic"):
            table[c] = (
                pa.array(cols[c][keep], pa.float64(), from_pandas=True)
                if c in cols
                else pa.nulls(n, pa.float64())
            )
        parts.append(pa.table(table))
    return pa.concat_tables(parts).sort_by([("account_id", "ascending"), ("ts_utc", "ascending")])


def _as_numpy(table: pa.Table) -> dict[str, np.ndarray]:
    """Every feature column as float64 (timestamps as µs since the epoch), nulls as NaN."""
    out: dict[str, np.ndarray] = {"account_id": np.array(table.column("account_id").to_pylist())}
    for name in FEATURE_COLUMNS[1:]:
        column = table.column(name)
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        column = pc.cast(column, pa.float64())
        out[name] = column.to_numpy(zero_copy_only=False).astype(np.float64)
    return out


def _assert_same(left: pa.Table, right: pa.Table, what: str, skip: tuple[str, ...] = ()) -> None:
    assert tuple(left.column_names) == FEATURE_COLUMNS
    assert tuple(right.column_names) == FEATURE_COLUMNS
    a, b = _as_numpy(left), _as_numpy(right)
    assert a["account_id"].tolist() == b["account_id"].tolist(), what
    for name in FEATURE_COLUMNS[1:]:
        if name in skip:
            continue
        timestamp = name in ("first_ts", "last_ts", "step_onset")
        np.testing.assert_allclose(
            a[name],
            b[name],
            rtol=0 if timestamp else RTOL,
            atol=0 if timestamp else ATOL,
            equal_nan=True,
            err_msg=f"{what}: column {name}",
        )


def _accounts(features: pa.Table, accounts: tuple[str, ...]) -> pa.Table:
    return features.filter(pc.is_in(features.column("account_id"), pa.array(accounts)))


def _row(features: pa.Table, account: str) -> dict[str, Any]:
    rows = _accounts(features, (account,)).to_pylist()
    assert len(rows) == 1
    row: dict[str, Any] = rows[0]
    return row


@pytest.fixture(scope="module")
def readings() -> pa.Table:
    return build_readings()


@pytest.fixture(scope="module")
def idle_readings() -> pa.Table:
    return build_readings(IDLE_PROFILES)


@pytest.fixture(scope="module")
def duck(readings: pa.Table) -> pa.Table:
    return compute_features(readings)


@pytest.fixture(scope="module")
def idle_pandas(idle_readings: pa.Table) -> pa.Table:
    frame = compute_features_pandas(idle_readings.to_pandas())
    return pa.Table.from_pandas(frame, preserve_index=False)


def test_dataset_has_what_the_engines_must_handle(readings: pa.Table) -> None:
    assert set(readings.column("account_id").to_pylist()) == set(PROFILES)
    assert readings.column("kw").null_count > 0
    assert readings.column("kvar").null_count < readings.num_rows
    offsets = pc.unique(readings.column("utc_offset_min")).to_pylist()
    assert sorted(offsets) == [330, 480]


def test_pandas_reference_matches_duckdb(readings: pa.Table, duck: pa.Table) -> None:
    frame = compute_features_pandas(readings.to_pandas())
    _assert_same(duck, pa.Table.from_pandas(frame, preserve_index=False), "pandas vs DuckDB")


def test_step_onset_is_the_known_day(duck: pa.Table) -> None:
    f = _row(duck, "stepped")
    assert f["step_onset"] == START + timedelta(days=STEP_DAY)  # local midnight, in UTC
    assert f["step_kw"] == pytest.approx(STEP_KW, rel=0.05)
    assert f["step_t"] > 10
    # The short account has no two-day segments on both sides: no step at all.
    short = _row(duck, "short")
    assert short["step_onset"] is None and short["step_t"] is None


def test_idle_meters_agree_with_pandas(idle_readings: pa.Table, idle_pandas: pa.Table) -> None:
    duck = compute_features(idle_readings)
    _assert_same(duck, idle_pandas, "pandas vs DuckDB, idle meters")
    flat = _row(duck, "idle_then_flat")
    assert flat["step_t"] == math.inf
    assert flat["step_onset"] == START + timedelta(days=IDLE_DAYS)
    assert _row(duck, "idle_then_noisy")["step_onset"] == START + timedelta(days=IDLE_DAYS)
    # Nothing ran before the onset: no relative step (and none borrowed from another split).
    assert flat["step_rel"] is None


# --- Spark -------------------------------------------------------------------------------------


def _spark_missing() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'minewatch[spark]')"
    if shutil.which("java") is None:
        return "Spark needs a Java runtime (java is not on PATH)"
    return None


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    reason = _spark_missing()
    if reason:
        pytest.skip(reason)
    from minewatch.power.spark import spark_session

    session = spark_session("minewatch-tests", cores=2)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def spark_features(spark: SparkSession, readings: pa.Table, idle_readings: pa.Table) -> pa.Table:
    """Spark's features of both datasets, in one Spark job (a job costs seconds here)."""
    from minewatch.power.spark import features_from_arrow, features_to_arrow

    both = pa.concat_tables([readings, idle_readings])
    return features_to_arrow(features_from_arrow(both, spark))


@pytest.mark.spark
def test_spark_matches_duckdb(spark_features: pa.Table, duck: pa.Table) -> None:
    _assert_same(duck, _accounts(spark_features, PROFILES), "Spark vs DuckDB")
    assert spark_features.schema.field("n_readings").type == pa.int64()
    for name in ("first_ts", "last_ts", "step_onset"):
        assert spark_features.schema.field(name).type == pa.timestamp("us", tz="UTC")


@pytest.mark.spark
def test_spark_matches_pandas_on_idle_meters(
    spark_features: pa.Table, idle_pandas: pa.Table
) -> None:
    _assert_same(idle_pandas, _accounts(spark_features, IDLE_PROFILES), "Spark vs pandas")
