"""Time load-profile feature extraction: DuckDB (minewatch) against plain pandas, in one run.

Builds synthetic 15-minute meter readings with numpy (seeded; by default 7,500 accounts x 28
days = 20,160,000 readings, less 1 % missing, with kvar and phase currents, a mix of flat mining
farms, offices, households, a mining load added on a random day, and peak-hour curtailers),
then times :func:`minewatch.power.features.compute_features` (DuckDB, all cores) and
:func:`minewatch.power.reference.compute_features_pandas` on it: one warm-up run each, then the
median of ``--runs`` timed runs. Each engine gets its natural in-memory input, built before the
clock starts (an Arrow table for DuckDB, a pandas DataFrame for pandas; the conversion time is
printed). The two results are compared value by value and the agreement is printed.

``--spark`` also times :func:`minewatch.power.spark.compute_features_spark` on a local Spark
session (``local[cores]``) over the same readings, cached in Spark's memory before timing.

Target (from the issue): at least 10 million readings per second for feature extraction.

    PYTHONPATH=src python benchmarks/bench_power.py                  # 20.16 M readings
    PYTHONPATH=src python benchmarks/bench_power.py --accounts 750 --runs 1 --spark
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from minewatch.power.features import FEATURE_COLUMNS, compute_features

TARGET = 10_000_000  # readings per second
START_US = 1_772_380_800_000_000  # 2026-03-01 16:00 UTC = Monday 2026-03-02 00:00 at UTC+08:00


def build_readings(accounts: int, days: int, step_min: int = 15, seed: int = 7) -> pa.Table:
    """Synthetic readings in the layout of ``load_readings`` (sorted by account, then time)."""
    rng = np.random.default_rng(seed)
    per = days * 24 * 60 // step_min
    acc = np.repeat(np.arange(accounts, dtype=np.int32), per)
    t_s = np.tile(np.arange(per, dtype=np.int64) * step_min * 60, accounts)
    offset = np.where(np.arange(accounts) % 50 == 0, 330, 480).astype(np.int16)
    local_s = t_s + (offset[acc].astype(np.int64) - 480) * 60
    hour = (local_s // 3600) % 24
    weekday = (local_s // 86400) % 7 < 5
    kind = acc % 5
    scale = rng.lognormal(5.0, 1.0, accounts)[acc]
    n = acc.size

    office = 0.25 + 0.75 * ((hour >= 8) & (hour < 19) & weekday)
    household = 0.3 + 0.7 * ((hour >= 18) & (hour < 23))
    peak = ((hour >= 8) & (hour < 11)) | ((hour >= 18) & (hour < 23))
    onset_day = rng.integers(5, days - 5, accounts)[acc]
    shape = np.select(
        [kind == 0, kind == 1, kind == 2, kind == 3],
        [
            np.ones(n),  # flat mining farm
            office,
            household,
            office + 2.0 * (local_s >= onset_day * 86400),  # hidden mining added on a day
        ],
        default=np.where(peak, 0.01, 1.0),  # curtailing miner
    )
    kw = scale * shape * (1 + rng.normal(0, 0.02, n))
    kvar = kw * 0.25 * (1 + rng.normal(0, 0.05, n))
    amps = kw * 1.5
    ia, ib, ic = (amps * (1 + rng.normal(0, 0.03, n)) for _ in range(3))

    keep = rng.random(n) >= 0.01  # 1 % of readings missing
    kw_valid = rng.random(n) >= 0.005  # 0.5 % present without a value
    names = pa.array([f"acct{i:06d}" for i in range(accounts)], pa.string())
    return pa.table(
        {
            "account_id": names.take(pa.array(acc[keep])),
            "ts_utc": pa.array(START_US + t_s[keep] * 1_000_000, pa.int64()).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "utc_offset_min": pa.array(offset[acc][keep]),
            "kw": pa.array(kw[keep], mask=~kw_valid[keep]),
            "kvar": pa.array(kvar[keep]),
            "ia": pa.array(ia[keep]),
            "ib": pa.array(ib[keep]),
            "ic": pa.array(ic[keep]),
        }
    )


def timed(run: Callable[[], Any], runs: int) -> tuple[float, list[float], Any]:
    """Median wall time of ``runs`` calls after one warm-up call; the last result."""
    result = run()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, result


def disagreement(left: pa.Table, right: pa.Table, rtol: float = 1e-6) -> list[str]:
    """Columns (with counts) where two feature tables differ beyond ``rtol``."""
    if left.column("account_id").to_pylist() != right.column("account_id").to_pylist():
        return ["account_id (different accounts or order)"]
    problems = []
    for name in FEATURE_COLUMNS[1:]:
        a, b = left.column(name), right.column(name)
        if pa.types.is_timestamp(a.type):
            a = a.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
            b = b.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
        x = pc.cast(a, pa.float64()).to_numpy(zero_copy_only=False)
        y = pc.cast(b, pa.float64()).to_numpy(zero_copy_only=False)
        bad = int((~np.isclose(x, y, rtol=rtol, atol=1e-12, equal_nan=True)).sum())
        if bad:
            problems.append(f"{name} ({bad} accounts)")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=7_500)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up")
    parser.add_argument("--spark", action="store_true", help="also time Spark local[cores]")
    parser.add_argument("--spark-cores", type=int, default=2)
    parser.add_argument("--spark-memory", default="8g", help="Spark driver heap")
    parser.add_argument("--no-pandas", action="store_true", help="skip the pandas peer")
    args = parser.parse_args()

    import duckdb

    print(f"machine: {os.cpu_count()} CPUs; duckdb {duckdb.__version__}")
    t0 = time.perf_counter()
    table = build_readings(args.accounts, args.days)
    n = table.num_rows
    print(
        f"readings: {n:,} ({args.accounts:,} accounts x {args.days} days x 15 min, 1 % missing), "
        f"built in {time.perf_counter() - t0:.1f} s"
    )

    rates: dict[str, float] = {}

    def report(engine: str, median: float, times: list[float]) -> None:
        rates[engine] = n / median
        runs = ", ".join(f"{t:.2f}" for t in times)
        print(f"{engine:<8} median {median:7.2f} s  ({runs})  {n / median / 1e6:8.2f} M readings/s")

    median, times, duck = timed(lambda: compute_features(table), args.runs)
    threads = duckdb.connect().sql("SELECT current_setting('threads')").fetchall()[0][0]
    print(f"DuckDB threads: {threads}")
    report("duckdb", median, times)

    if not args.no_pandas:
        from minewatch.power.reference import compute_features_pandas

        t0 = time.perf_counter()
        frame = table.to_pandas()
        print(f"(Arrow -> pandas conversion, not timed below: {time.perf_counter() - t0:.1f} s)")
        median, times, result = timed(lambda: compute_features_pandas(frame), args.runs)
        report("pandas", median, times)
        del frame
        problems = disagreement(duck, pa.Table.from_pandas(result, preserve_index=False))
        print("pandas vs DuckDB:", "all features agree" if not problems else "; ".join(problems))

    if args.spark:
        from minewatch.power.spark import (
            compute_features_spark,
            features_to_arrow,
            readings_to_spark,
            spark_session,
        )

        t0 = time.perf_counter()
        spark = spark_session("minewatch-bench", args.spark_cores, memory=args.spark_memory)
        readings = readings_to_spark(table, spark).cache()
        readings.count()
        print(
            f"(Spark local[{args.spark_cores}] start, load and cache, not timed below: "
            f"{time.perf_counter() - t0:.1f} s)"
        )
        median, times, result = timed(
            lambda: features_to_arrow(compute_features_spark(readings)), args.runs
        )
        report("spark", median, times)
        problems = disagreement(duck, result)
        print("Spark vs DuckDB:", "all features agree" if not problems else "; ".join(problems))
        spark.stop()

    duck_rate = rates["duckdb"]
    for engine, rate in rates.items():
        if engine != "duckdb":
            print(f"DuckDB / {engine}: {duck_rate / rate:.1f}x")
    verdict = "met" if duck_rate >= TARGET else "NOT met"
    print(
        f"target >= {TARGET / 1e6:.0f} M readings/s on DuckDB: {verdict} "
        f"({duck_rate / 1e6:.2f} M/s)"
    )


if __name__ == "__main__":
    main()
