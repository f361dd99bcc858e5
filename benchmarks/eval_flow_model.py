#!/usr/bin/env python3
"""Evaluate the flow-behaviour model and write docs/flow-model-report.md.

Cross-validated (grouped by recording) on the capture corpus and the loopback recordings, with
the same seed as scripts/train-flow-model, plus the throughput of feature extraction (records/s
on one DuckDB thread) over the corpus's flow records repeated to about a million.

Usage: python benchmarks/eval_flow_model.py [--corpus DIR] [--recordings labels.csv]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from minewatch.net.behaviour.evaluate import (  # noqa: E402
    export_section,
    render_report,
    train_and_evaluate,
)
from minewatch.net.behaviour.features import conversation_features  # noqa: E402
from minewatch.net.flowrec.from_packets import read_capture_flows  # noqa: E402


def throughput(corpus: Path, target: int = 1_000_000) -> list[str]:
    """Records/s of Parquet ingestion + feature extraction on one DuckDB thread, over the
    corpus's flow records repeated (with distinct clients) to about ``target`` records.

    Both wall-clock and CPU time are reported: on a shared machine the wall clock measures the
    neighbours too, while the process's CPU seconds are what one core spent."""
    t = time.perf_counter()
    flows, _ = read_capture_flows([corpus])
    ingest = time.perf_counter() - t
    parts, n, k = [], 0, 0
    while n < target:  # distinct clients per copy, so conversations do not merge
        client = pc.binary_join_element_wise(flows["src_ip"], pa.scalar(f"#{k}"), "")
        parts.append(flows.set_column(flows.schema.get_field_index("src_ip"),
                                      flows.schema.field("src_ip"), client))  # fmt: skip
        n += flows.num_rows
        k += 1
    big = pa.concat_tables(parts).combine_chunks()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "flows.parquet"
        pq.write_table(big, path)
        runs = []
        for _ in range(3):
            wall, cpu = time.perf_counter(), time.process_time()
            table = pq.read_table(path, use_threads=False)
            feats = conversation_features(table, threads=1)
            runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    wall_s, cpu_s = min(r[0] for r in runs), min(r[1] for r in runs)
    return [
        "## Throughput",
        "",
        f"* capture → flow records (corpus, {flows.num_rows} records): {ingest:.1f} s",
        f"* Parquet ingestion + features, one DuckDB thread, best of 3: {big.num_rows} records "
        f"({k} copies of the corpus's records with distinct clients) → {feats.num_rows} "
        f"conversations in {wall_s:.2f} s wall = {big.num_rows / wall_s:,.0f} records/s; "
        f"{cpu_s:.2f} CPU s = {big.num_rows / cpu_s:,.0f} records per CPU second "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores while measuring)",
        "",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--recordings", type=Path, default=ROOT / "data" / "flows" / "labels.csv")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "flow-model-report.md")
    args = parser.parse_args()
    run = train_and_evaluate(args.corpus, args.recordings, seed=args.seed)
    extra = export_section(run)
    if (args.corpus / "LABELS.csv").is_file():
        extra += throughput(args.corpus)
    report = render_report(
        "Flow-behaviour model: evaluation report", run.evaluation, run.fit.summary, run.sources,
        extra=extra,
    )  # fmt: skip
    args.out.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
