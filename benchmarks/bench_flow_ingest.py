"""Flow-record ingestion speed: nfdump files and NetFlow v9/IPFIX datagrams into FLOW_SCHEMA.

The nfdump file is written by the real ``nfcapd`` (Debian package ``nfdump``) receiving NetFlow
v9 on loopback; the flows in it are generated here (random addresses, ports and counters in a
realistic mix: the file format and writer are real, the traffic is synthetic). minewatch's
``read_nfdump`` and ``nfdump -r FILE -q -o csv`` read the same file in the same run, each pinned
to one core (``taskset``) when available; the ratio is records/s of minewatch over nfdump's.
The same generated datagrams are then decoded by ``NetflowDecoder`` (v9 and IPFIX), timing
``feed`` of every datagram plus the ``flush`` into one table. Each timing is the median of
``--runs``. Target (issue 3): >= 500,000 records/s on one core.

    PYTHONPATH=src python benchmarks/bench_flow_ingest.py --records 1000000
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from minewatch.net.flowrec.netflow import NetflowDecoder  # noqa: E402
from minewatch.net.flowrec.nfdump import read_nfdump  # noqa: E402

TARGET = 500_000
PER_DATAGRAM = 30
# v9/IPFIX template: src, dst, first, last (uptime ms), bytes, packets, sport, dport, proto, flags
FIELDS = [(8, 4), (12, 4), (22, 4), (21, 4), (1, 4), (2, 4), (7, 2), (11, 2), (4, 1), (6, 1)]
RECORD = struct.Struct(">IIIIIIHHBB")


def make_records(n: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype = np.dtype(
        [("src", ">u4"), ("dst", ">u4"), ("first", ">u4"), ("last", ">u4"), ("bytes", ">u4"),
         ("packets", ">u4"), ("sport", ">u2"), ("dport", ">u2"), ("proto", "u1"), ("flags", "u1")]
    )  # fmt: skip
    rec = np.zeros(n, dtype=dtype)
    rec["src"] = 0x0A000000 + rng.integers(0, 1 << 16, n)
    rec["dst"] = rng.integers(0x01000000, 0xDF000000, n)
    rec["first"] = rng.integers(0, 3_000_000, n)
    rec["last"] = rec["first"] + rng.integers(0, 60_000, n)
    rec["packets"] = rng.integers(1, 2000, n)
    rec["bytes"] = rec["packets"] * rng.integers(40, 1500, n)
    rec["sport"] = rng.integers(1024, 65535, n)
    rec["dport"] = rng.choice([443, 80, 3333, 4444, 53, 22, 8080], n)
    rec["proto"] = rng.choice([6, 6, 6, 17], n)
    rec["flags"] = np.where(rec["proto"] == 6, 0x1B, 0)
    return rec


def datagrams(rec: np.ndarray, version: int) -> list[bytes]:
    template = struct.pack(">HH", 256, len(FIELDS)) + b"".join(
        struct.pack(">HH", *f) for f in FIELDS
    )
    out = []
    seq = 0
    for i, start in enumerate(range(0, rec.shape[0], PER_DATAGRAM)):
        chunk = rec[start : start + PER_DATAGRAM].tobytes()
        count = min(PER_DATAGRAM, rec.shape[0] - start)
        sets = b""
        if i % 20 == 0:
            sets += struct.pack(">HH", 0 if version == 9 else 2, 4 + len(template)) + template
        sets += struct.pack(">HH", 256, 4 + len(chunk)) + chunk
        now = int(time.time())
        if version == 9:
            head = struct.pack(">HHIIII", 9, count, 3_600_000, now, i, 1)
        else:
            head = struct.pack(">HHIII", 10, 16 + len(sets), now, seq, 1)
            seq += count
        out.append(head + sets)
    return out


def write_nfdump(payloads: list[bytes], folder: Path) -> Path:
    nfcapd = shutil.which("nfcapd")
    if nfcapd is None:
        raise SystemExit("nfcapd not installed (apt-get install nfdump)")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = subprocess.Popen(
        [nfcapd, "-b", "127.0.0.1", "-p", str(port), "-w", str(folder), "-t", "3600", "-B",
         str(64 << 20)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(1.0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i, payload in enumerate(payloads):
                s.sendto(payload, ("127.0.0.1", port))
                if i % 200 == 199:
                    time.sleep(0.004)  # let nfcapd keep up: a dropped datagram is a lost record
        time.sleep(1.0)
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    (path,) = [p for p in folder.iterdir() if p.name.startswith("nfcapd.2")]
    return path


def pinned(argv: list[str], cpu: int | None) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "-c", str(cpu), *argv] if taskset and cpu is not None else argv


def timed(fn: object, runs: int) -> tuple[float, object]:
    assert callable(fn)
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=0, help="core to pin to (-1: no pinning)")
    args = parser.parse_args()
    cpu = None if args.cpu < 0 else args.cpu
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    rec = make_records(args.records)
    v9 = datagrams(rec, 9)
    ipfix = datagrams(rec, 10)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_nfdump(v9, Path(tmp))
        read_nfdump(path)  # compile the numba walkers before timing
        ours_s, result = timed(lambda: read_nfdump(path), args.runs)
        n = result.table.num_rows  # type: ignore[attr-defined]
        nfdump = shutil.which("nfdump")
        theirs_s = None
        if nfdump:
            argv = pinned([nfdump, "-r", str(path), "-q", "-o", "csv"], cpu)

            def run_nfdump() -> None:
                subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=600)

            theirs_s, _ = timed(run_nfdump, args.runs)
        size = path.stat().st_size
    print(f"nfdump file: {n:,} records ({args.records:,} sent), {size / 1e6:.1f} MB, uncompressed")
    print(f"  minewatch read_nfdump : {n / ours_s:>12,.0f} records/s  ({ours_s:.3f} s)")
    if theirs_s is not None:
        print(f"  nfdump -r -q -o csv   : {n / theirs_s:>12,.0f} records/s  ({theirs_s:.3f} s)")
        print(f"  ratio minewatch/nfdump: {theirs_s / ours_s:.2f}")
    for name, payloads in (("NetFlow v9", v9), ("IPFIX", ipfix)):

        def decode(payloads: list[bytes] = payloads) -> int:
            decoder = NetflowDecoder()
            for p in payloads:
                decoder.feed(p, "192.0.2.1", 0)
            return int(decoder.flush().num_rows)

        seconds, got = timed(decode, args.runs)
        rows = int(got)  # type: ignore[call-overload]
        print(f"{name} datagrams ({len(payloads):,}): {rows / seconds:>12,.0f} records/s "
              f"({seconds:.3f} s, {rows:,} records)")  # fmt: skip
    print(f"target: >= {TARGET:,} records/s on one core")


if __name__ == "__main__":
    main()
