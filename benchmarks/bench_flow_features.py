"""End-to-end flow path on one core: nfdump file -> FLOW_SCHEMA -> conversation features.

The nfdump file is written by the real ``nfcapd`` (Debian package ``nfdump``) receiving NetFlow
v9 on loopback (the exporter side of ``bench_flow_ingest.py`` is reused). The traffic is
synthetic but shaped like a data centre's export, because feature extraction costs depend on
how records group into conversations, not only on their number: client hosts hold
conversations with a smaller set of servers (a few popular ones), each conversation lasts from
seconds to the whole hour, is cut by the exporter's 60 s active timeout into one record per
minute and direction (unidirectional NetFlow v9: ``rev_*`` zero, the opener unknown, so the query
pairs both directions and orients them itself), and some clients reconnect to the same service.

Timed, each the median of ``--runs`` after one warm-up, all on one core (the process is pinned
with ``sched_setaffinity``, nfdump with ``taskset``; DuckDB gets one thread):

* ingest: :func:`minewatch.net.flowrec.nfdump.read_nfdump` of the file;
* features: :func:`minewatch.net.behaviour.features.conversation_features` of that table;
* both: the two in sequence (what ``minewatch`` does with an nfdump file);
* ``nfdump -r FILE -q -o csv > /dev/null`` reading the same records in the same run.

Target (issue 3, item 7): >= 500,000 records/s on one core for ingestion and feature
extraction; the ratio printed is minewatch's records/s over nfdump's (> 1: faster than nfdump
merely printing the records).

    PYTHONPATH=src python benchmarks/bench_flow_features.py                 # ~1.2 M records
    PYTHONPATH=src python benchmarks/bench_flow_features.py --records 200000 --runs 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_flow_ingest import datagrams, make_records, pinned, write_nfdump  # noqa: E402
from minewatch.net.behaviour.features import conversation_features  # noqa: E402
from minewatch.net.flowrec.nfdump import read_nfdump  # noqa: E402

TARGET = 500_000
SLICE_MS = 60_000  # the exporter's active timeout
HOUR_MS = 3_300_000  # record times stay below the v9 header's sysUptime (3,600,000 ms)
SERVICES = np.array([443, 443, 443, 80, 53, 22, 8080, 3333, 4444, 5432, 1883, 9090])


def conversation_records(n_records: int, seed: int = 11) -> np.ndarray:
    """At least ``n_records`` unidirectional records of conversations (the record layout of
    ``bench_flow_ingest.make_records``), built with numpy only."""
    rng = np.random.default_rng(seed)
    # slices per conversation: most are short, a tail lasts the whole hour (log-uniform 1..55)
    mean_records = 2 * float(np.mean(np.exp(rng.uniform(0, np.log(55), 100_000))))
    n_conv = int(n_records / mean_records * 1.05) + 1
    slices = np.minimum(np.exp(rng.uniform(0, np.log(55), n_conv)).astype(np.int64), 55)
    n_clients = max(n_conv // 20, 1)
    client = 0x0A000000 + rng.integers(0, n_clients, n_conv)  # 10.0.0.0/8 hosts
    popular = rng.integers(0x01000000, 0xDF000000, 200)
    server = np.where(
        rng.random(n_conv) < 0.6,
        popular[rng.zipf(1.6, n_conv) % popular.size],
        rng.integers(0x01000000, 0xDF000000, n_conv),
    )
    sport = SERVICES[rng.integers(0, SERVICES.size, n_conv)]
    cport = rng.integers(32768, 61000, n_conv)
    proto = np.where(sport == 53, 17, 6)
    start = rng.integers(0, HOUR_MS - slices * SLICE_MS + 1)
    pkts_per_min = np.exp(rng.uniform(0, np.log(5000), n_conv)).astype(np.int64) + 1
    pkt_size = rng.integers(52, 1500, n_conv)
    answered = rng.random(n_conv) < 0.97  # a few scans and timeouts get no reply

    conv = np.repeat(np.arange(n_conv), slices)
    offset = np.arange(conv.size) - np.repeat(np.cumsum(slices) - slices, slices)
    first = start[conv] + offset * SLICE_MS + rng.integers(0, 2000, conv.size)
    last = np.minimum(first + rng.integers(1000, SLICE_MS, conv.size), HOUR_MS)
    packets = np.maximum(pkts_per_min[conv] * rng.uniform(0.5, 1.5, conv.size), 1).astype(np.int64)
    up_bytes = packets * pkt_size[conv]
    down_packets = np.maximum(packets * rng.uniform(0.6, 1.2, conv.size), 1).astype(np.int64)
    down_bytes = down_packets * rng.integers(52, 1500, conv.size)

    reply = answered[conv]
    n_up, n_down = conv.size, int(reply.sum())
    rec = make_records(n_up + n_down)  # for the dtype; every field is overwritten below
    up, down = rec[:n_up], rec[n_up:]
    up["src"], up["dst"] = client[conv], server[conv]
    up["sport"], up["dport"] = cport[conv], sport[conv]
    up["packets"], up["bytes"] = packets, np.minimum(up_bytes, 0xFFFFFFFF)
    down["src"], down["dst"] = server[conv][reply], client[conv][reply]
    down["sport"], down["dport"] = sport[conv][reply], cport[conv][reply]
    down["packets"] = down_packets[reply]
    down["bytes"] = np.minimum(down_bytes[reply], 0xFFFFFFFF)
    for part, mask in ((up, slice(None)), (down, reply)):
        part["first"], part["last"] = first[mask], last[mask]
        part["proto"] = proto[conv][mask]
        part["flags"] = np.where(part["proto"] == 6, 0x18, 0)
    order = np.argsort(rec["last"], kind="stable")  # an exporter sends records as they expire
    return rec[order][: max(n_records, 1)]


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median seconds of ``runs`` calls after one warm-up call, and the last result."""
    result = fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=0, help="core to pin to (-1: no pinning)")
    args = parser.parse_args()
    cpu = None if args.cpu < 0 else args.cpu
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    rec = conversation_records(args.records)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_nfdump(datagrams(rec, 9), Path(tmp))
        size = path.stat().st_size
        ingest_s, result = timed(lambda: read_nfdump(path), args.runs)
        table = result.table
        n = table.num_rows
        features_s, features = timed(lambda: conversation_features(table, threads=1), args.runs)
        both_s, _ = timed(
            lambda: conversation_features(read_nfdump(path).table, threads=1), args.runs
        )
        theirs_s = None
        nfdump = shutil.which("nfdump")
        if nfdump:
            argv = pinned([nfdump, "-r", str(path), "-q", "-o", "csv"], cpu)

            def run_nfdump() -> None:
                subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=600)

            theirs_s, _ = timed(run_nfdump, args.runs)
    print(
        f"nfdump file: {n:,} records ({rec.shape[0]:,} sent), {size / 1e6:.1f} MB, "
        f"{features.num_rows:,} conversations; one core, DuckDB threads = 1"
    )
    rows = [("ingest  (read_nfdump)", ingest_s), ("features (DuckDB)", features_s)]
    rows.append(("both    (end to end)", both_s))
    for label, seconds in rows:
        print(f"  {label:<22}: {n / seconds:>12,.0f} records/s  ({seconds:.3f} s)")
    if theirs_s is not None:
        print(
            f"  {'nfdump -r -q -o csv':<22}: {n / theirs_s:>12,.0f} records/s  ({theirs_s:.3f} s)"
        )
        print(f"  ratio minewatch end to end / nfdump: {theirs_s / both_s:.2f}")
    else:
        print("  nfdump not installed (apt-get install nfdump): no ratio")
    verdict = "met" if n / both_s >= TARGET else "NOT met"
    print(f"target: >= {TARGET:,} records/s on one core end to end: {verdict}")


if __name__ == "__main__":
    main()
