#!/usr/bin/env python3
"""Check ``data/flows/labels.csv`` against the pcaps it names, and summarise what is there.

For every row: the pcap exists, the conversation (client_ip, server_ip, server_port, tcp) is in
it, its first-to-last packet time matches ``duration_s`` (within 1 s), its key is unique, the
label is ``mining`` or ``benign``. Every pcap under ``recordings/`` must be labelled, and every
packet of a pcap must belong to a labelled conversation. Reads the pcaps with minewatch's own
reader and decoder (``minewatch.net.capture``), independently of the tshark run that wrote the
rows. Prints counts and durations per label and kind; exits 1 on any problem.

Usage::

    PYTHONPATH=src python3 scripts/flows/check_labels.py data/flows
"""

from __future__ import annotations

import argparse
import csv
import ipaddress
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

from minewatch.net.capture.decode import PROTO_TCP, decode_headers  # noqa: E402
from minewatch.net.capture.reader import read_capture  # noqa: E402

TOLERANCE_S = 1.0
MAPPED_PREFIX = 0xFFFF


def _v4(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """IPv4 addresses as uint32 from IPv4-mapped 128-bit halves; 0 where not IPv4."""
    mapped = (hi == 0) & ((lo >> np.uint64(32)) == MAPPED_PREFIX)
    return np.where(mapped, lo & np.uint64(0xFFFFFFFF), 0).astype(np.uint32)


def check(root: Path) -> tuple[list[str], list[dict[str, str]]]:
    problems: list[str] = []
    labels = root / "labels.csv"
    with labels.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    seen: set[tuple[str, str, str, str]] = set()
    by_file: dict[str, list[dict[str, str]]] = defaultdict(list)
    for n, row in enumerate(rows, start=2):
        key = (row["client_ip"], row["server_ip"], row["server_port"], row["transport"])
        if key in seen:
            problems.append(f"labels.csv:{n}: conversation {key} labelled twice")
        seen.add(key)
        if row["label"] not in ("mining", "benign"):
            problems.append(f"labels.csv:{n}: label {row['label']!r} is not mining/benign")
        if row["transport"] != "tcp":
            problems.append(f"labels.csv:{n}: transport {row['transport']!r} not checked")
        by_file[row["file"]].append(row)
    on_disk = {f"recordings/{p.name}" for p in (root / "recordings").glob("*.pcap")}
    for missing in sorted(on_disk - set(by_file)):
        problems.append(f"{missing}: not in labels.csv")
    for name, file_rows in sorted(by_file.items()):
        path = root / name
        if not path.exists():
            problems.append(f"{name}: missing")
            continue
        h = decode_headers(read_capture(path))
        tcp = h.proto == PROTO_TCP
        src, dst = _v4(h.src_lo, h.src_hi), _v4(h.dst_lo, h.dst_hi)
        claimed = np.zeros(len(h), dtype=bool)
        for row in file_rows:
            client = int(ipaddress.IPv4Address(row["client_ip"]))
            server = int(ipaddress.IPv4Address(row["server_ip"]))
            port = int(row["server_port"])
            up = (src == client) & (dst == server) & (h.dport == port)
            down = (src == server) & (dst == client) & (h.sport == port)
            mask = tcp & (up | down)
            claimed |= mask
            if not mask.any():
                problems.append(
                    f"{name}: no packets of {row['client_ip']} -> {row['server_ip']}:{port}"
                )
                continue
            ts = h.ts_ns[mask]
            duration = (int(ts.max()) - int(ts.min())) / 1e9
            if abs(duration - float(row["duration_s"])) > TOLERANCE_S:
                problems.append(
                    f"{name}: lasts {duration:.1f} s, labels.csv says {row['duration_s']}"
                )
            row["_packets"] = str(int(mask.sum()))
            row["_up"] = str(int(up[mask].sum()))
        if not claimed.all():
            problems.append(f"{name}: {int((~claimed).sum())} packets in no labelled conversation")
    return problems, rows


def summarise(rows: list[dict[str, str]]) -> str:
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        groups[(row["label"], row["kind"])].append(float(row["duration_s"]))
    lines = [f"{'label':8} {'kind':22} {'n':>3} {'min s':>7} {'median s':>8} {'total min':>9}"]
    for (label, kind), d in sorted(groups.items()):
        lines.append(
            f"{label:8} {kind:22} {len(d):3d} {min(d):7.1f} {float(np.median(d)):8.1f} "
            f"{sum(d) / 60:9.1f}"
        )
    for label in ("mining", "benign"):
        d = [float(r["duration_s"]) for r in rows if r["label"] == label]
        lines.append(
            f"{label}: {len(d)} conversations, {sum(d) / 60:.1f} min, "
            f"{sum(x >= 300 for x in d)} of them >= 5 min"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("root", type=Path, nargs="?", default=REPO / "data/flows")
    args = parser.parse_args(argv)
    problems, rows = check(args.root)
    print(summarise(rows))
    for p in problems:
        print(f"problem: {p}", file=sys.stderr)
    print(f"{len(rows)} rows checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
