"""Load-profile features on profiles whose answer is known by construction."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from minewatch.power.features import FEATURE_COLUMNS, compute_features

T0 = np.datetime64("2026-03-01T00:00:00") - np.timedelta64(8, "h")  # local midnight, +08:00
STEP_S = 900
DAYS = 21


def readings(profiles: dict[str, np.ndarray], offset_min: int = 480) -> pa.Table:
    n = len(next(iter(profiles.values())))
    ts = (T0 + (np.arange(n) * STEP_S).astype("timedelta64[s]")).astype("datetime64[us]")
    ids, times, kws = [], [], []
    for name, kw in profiles.items():
        ids += [name] * n
        times.append(ts)
        kws.append(kw)
    return pa.table(
        {
            "account_id": pa.array(ids),
            "ts_utc": pa.array(np.concatenate(times), type=pa.timestamp("us", tz="UTC")),
            "utc_offset_min": pa.array(np.full(len(ids), offset_min, dtype=np.int16)),
            "kw": np.concatenate(kws),
        }
    )


def grid() -> np.ndarray:
    return np.arange(DAYS * 86400 // STEP_S) * STEP_S


def local_hour(t: np.ndarray) -> np.ndarray:
    return (t / 3600) % 24


@pytest.fixture(scope="module")
def feats() -> dict[str, dict[str, Any]]:
    rng = np.random.default_rng(7)
    t = grid()
    hour = local_hour(t)
    office = 100 + 300 * ((hour >= 8) & (hour < 19)) * (((t // 86400 + 6) % 7) < 5)
    flat = 650 * (1 + 0.01 * np.sin(2 * np.pi * t / 86400)) + rng.normal(0, 1.5, t.size)
    stepped = office + rng.normal(0, 5, t.size)
    onset = 10 * 86400 + 14 * 3600  # day 10, 14:00 local
    stepped = stepped + 200.0 * (t >= onset)
    curtailed = np.where(((hour >= 8) & (hour < 11)) | ((hour >= 18) & (hour < 23)), 0.5, 400.0)
    table = readings(
        {
            "flat": flat,
            "office": office + rng.normal(0, 5, t.size),
            "stepped": stepped,
            "curtailed": curtailed,
        }
    )
    return {r["account_id"]: r for r in compute_features(table).to_pylist()}


def test_columns_are_the_documented_ones(feats: dict[str, dict[str, Any]]) -> None:
    assert set(feats["flat"]) == set(FEATURE_COLUMNS)


def test_flat_load_has_no_cycle_and_full_load_factor(feats: dict[str, dict[str, Any]]) -> None:
    f = feats["flat"]
    assert f["load_factor"] > 0.97
    assert f["cv_hourly"] < 0.02
    assert f["spectral_24h"] < 0.02
    assert abs(f["day_night"] - 1) < 0.03
    assert f["dip_share"] == 0.0
    assert f["interval_min"] == pytest.approx(15.0)
    assert f["days"] == pytest.approx(DAYS - 1 / 96, abs=1e-6)


def test_office_follows_clock_and_calendar(feats: dict[str, dict[str, Any]]) -> None:
    f = feats["office"]
    assert f["spectral_24h"] > 0.3
    assert f["day_night"] > 2.0
    assert f["weekday_weekend"] > 1.5
    assert f["load_factor"] < 0.6
    assert f["flatness_residual"] > 0.3


def test_step_onset_is_found_to_the_day(feats: dict[str, dict[str, Any]]) -> None:
    f = feats["stepped"]
    onset = datetime(2026, 3, 11, 14, tzinfo=UTC).replace(hour=6)  # 14:00 local is 06:00 UTC
    found = f["step_onset"]
    assert isinstance(found, datetime)
    assert abs((found - onset).total_seconds()) <= 86400
    assert f["step_kw"] == pytest.approx(200 * (1 - 14 / 24 / 11), rel=0.25)
    assert f["step_t"] > 8
    # The added load is flat: spread around each day's mean stays as it was.
    assert f["resid_std_after"] == pytest.approx(f["resid_std_before"], rel=0.1)


def test_peak_curtailment_is_visible(feats: dict[str, dict[str, Any]]) -> None:
    f = feats["curtailed"]
    assert f["peak_share"] < 0.01
    assert f["cv_offpeak"] < 0.01


def test_local_clock_follows_the_meter_offset() -> None:
    t = grid()
    # Heavy from 16:00 to 22:00 UTC, which is 00:00-06:00 on a +08:00 meter's clock.
    heavy = np.where(local_hour(t) < 6, 500.0, 100.0)
    at_china = compute_features(readings({"a": heavy}, offset_min=480)).to_pylist()[0]
    at_utc = compute_features(readings({"a": heavy}, offset_min=0)).to_pylist()[0]
    assert at_china["day_night"] < 0.3  # a night load in China
    assert at_utc["day_night"] > 1.5  # the same instants are afternoon and evening in UTC


def test_power_factor_and_phase_imbalance_when_given() -> None:
    t = grid()
    kw = np.full(t.size, 400.0)
    table = readings({"a": kw})
    n = table.num_rows
    pf = 0.99
    kvar = kw * math.tan(math.acos(pf))
    table = table.append_column("kvar", pa.array(np.tile(kvar, 1)[:n]))
    for name, amps in (("ia", 600.0), ("ib", 600.0), ("ic", 480.0)):
        table = table.append_column(name, pa.array(np.full(n, amps)))
    f = compute_features(table).to_pylist()[0]
    assert f["power_factor"] == pytest.approx(pf, abs=1e-9)
    assert f["phase_imbalance"] == pytest.approx(120 / 560, rel=1e-9)
    assert compute_features(readings({"a": kw})).to_pylist()[0]["power_factor"] is None
