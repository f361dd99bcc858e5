#!/usr/bin/env python3
"""Record long-lived TLS conversations of real miners and real benign software on loopback.

Run by ``scripts/record-flows`` (which checks the tools and the xmrig chroot first). Every
session gets its own server address in 127.0.0.0/8 and its own port, its own tcpdump writing its
own pcap (cut to 256 bytes a packet, except each connection's first 10 payload
packets, which hold the TLS/SSH handshakes: sizes and times stay real), and one row per
conversation in ``labels.csv`` once the pcap has been checked.

Everything runs inside a network namespace created for the run, whose loopback has an MTU of
1500 and segmentation offloads turned off: packets then have the sizes a data-centre link would
carry instead of the up-to-64 KiB segments of the host's loopback. Nothing can leave it.

Session kinds (``label``):

* ``xmrig-tls`` (mining): XMRig from the trixie chroot, ``tls: true``, against
  ``scripts/sample/xmr_pool.py --tls-cert`` (Python ``ssl``);
* ``xmrig-stunnel`` (mining): XMRig in plain text through a local stunnel client, TLS between
  two stunnel instances, pool in plain text behind the server-side stunnel (a common way to
  add TLS to a pool that lacks it); only the TLS leg is labelled;
* ``xmrig-tls-proxy`` (mining): XMRig's own TLS to a stunnel4 TLS front of a plain pool;
* ``mqtt-tls``, ``ssh-interactive``, ``ssh-top``, ``https-poll``, ``jsonrpc-node-poll``,
  ``prometheus-scrape``, ``websocket``, ``postgres-tls``, ``redis-tls-worker``,
  ``sensor-rpc-stunnel`` (benign).

The plan of each batch (which sessions, with which parameters) is in ``plan.py``; how each kind
is started is in ``runners.py``.

Usage::

    python3 record.py --repo /work/main --batch 1 --only mining --seconds 400
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pcapcut import cut_pcap
from plan import plan
from runners import RUNNERS
from session import Context, Session, stop, wait_for

__all__ = ["main"]

log = logging.getLogger("record-flows")
HERE = Path(__file__).resolve().parent
LABEL_FIELDS = [
    "file",
    "client_ip",
    "server_ip",
    "server_port",
    "transport",
    "label",
    "kind",
    "software",
    "duration_s",
    "notes",
]
SNAPLEN = 256
# Payload-carrying packets at the start of each TCP connection kept whole (TLS/SSH handshakes).
KEEP_WHOLE = 10

# ---------------------------------------------------------------------------------------------
# Recording and checking
# ---------------------------------------------------------------------------------------------


def conversations(pcap: Path, server_ip: str, port: int) -> list[dict[str, Any]]:
    """TCP conversations with the server at server_ip:port in ``pcap``, from tshark."""
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-q", "-z", f"conv,tcp,ip.addr=={server_ip}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    convs: dict[str, dict[str, Any]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 11 or "<->" not in parts:
            continue
        a, b = parts[0], parts[2]
        start, dur = float(parts[-2]), float(parts[-1])
        ip_b, port_b = b.rsplit(":", 1)
        ip_a, port_a = a.rsplit(":", 1)
        if (ip_b, int(port_b)) == (server_ip, port):
            client = ip_a
        elif (ip_a, int(port_a)) == (server_ip, port):
            client = ip_b
        else:
            continue
        c = convs.setdefault(
            client, {"client_ip": client, "start": start, "end": start + dur, "connections": 0}
        )
        c["start"] = min(c["start"], start)
        c["end"] = max(c["end"], start + dur)
        c["connections"] += 1
    return list(convs.values())


def append_labels(ctx: Context, rows: list[dict[str, Any]]) -> None:
    with ctx.lock:
        new = not ctx.labels.exists()
        with ctx.labels.open("a", newline="") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            writer = csv.DictWriter(fh, fieldnames=LABEL_FIELDS)
            if new:
                writer.writeheader()
            writer.writerows(rows)
            fcntl.flock(fh, fcntl.LOCK_UN)


def record_session(ctx: Context, s: Session) -> str:
    sd = ctx.work / s.name
    sd.mkdir()
    pcap_tmp = sd / "capture.pcap"
    dump = ctx.spawn(
        [
            "tcpdump",
            "-i",
            "lo",
            "-n",
            "-s",
            "0",
            "-U",
            "-Z",
            "root",
            "-w",
            str(pcap_tmp),
            f"host {s.server_ip} and tcp port {s.port}",
        ],
        sd / "tcpdump.log",
    )
    wait_for(sd / "tcpdump.log", "listening on", 15)
    clients: list[subprocess.Popen[bytes]] = []
    servers: list[subprocess.Popen[bytes]] = []
    try:
        clients, servers = RUNNERS[s.kind](ctx, s, sd)
        main_client = clients[-1]
        # Miners run until stopped; benign clients end by themselves after ctx.seconds.
        with contextlib.suppress(subprocess.TimeoutExpired):
            main_client.wait(ctx.seconds + (0 if s.label == "mining" else 20))
        for c in clients:
            stop(c, signal.SIGINT if s.label == "mining" else signal.SIGTERM)
        time.sleep(2)
    finally:
        for c in clients:
            stop(c)
        for srv in servers:
            stop(srv)
        time.sleep(1)
        stop(dump)
    xlog = ctx.chroot / f"tmp/minewatch-flows-{ctx.netns}-{s.name}.log"
    if xlog.exists():
        shutil.move(xlog, sd / "xmrig-file.log")
    pcap = ctx.out_dir / f"{s.name}.pcap"
    cut_pcap(pcap_tmp, pcap, SNAPLEN, KEEP_WHOLE)
    pcap.chmod(0o644)
    convs = conversations(pcap, s.server_ip, s.port)
    if not convs:
        raise RuntimeError(f"{s.name}: no conversation with {s.server_ip}:{s.port} in the pcap")
    rows = []
    for conv in convs:
        dur = conv["end"] - conv["start"]
        extra = ""
        all_stats = [json.loads(f.read_text()) for f in sorted(sd.glob("pool-stats*.json"))]
        if all_stats:
            st = {
                k: sum(x[k] for x in all_stats)
                for k in ("logins", "jobs_pushed", "shares_accepted", "keepalives")
            }
            extra = (
                f"; pool saw {st['logins']} login(s), {st['jobs_pushed']} jobs, "
                f"{st['shares_accepted']} shares accepted, {st['keepalives']} keepalives"
            )
        if conv["connections"] > 1:
            extra += f"; {conv['connections']} TCP connections"
        rows.append(
            {
                "file": f"recordings/{pcap.name}",
                "client_ip": conv["client_ip"],
                "server_ip": s.server_ip,
                "server_port": s.port,
                "transport": "tcp",
                "label": s.label,
                "kind": s.kind,
                "software": s.software,
                "duration_s": f"{dur:.1f}",
                "notes": s.notes + extra,
            }
        )
    append_labels(ctx, rows)
    return f"{s.name}: {len(convs)} conversation(s), {max(r['duration_s'] for r in rows)} s"


def versions_now(chroot: Path, python: str) -> dict[str, str]:
    def out(argv: list[str]) -> str:
        r = subprocess.run(argv, capture_output=True, text=True, check=False)
        return (r.stdout + r.stderr).strip()

    def pkg(name: str) -> str:
        return out(["dpkg-query", "-W", "-f", "${Version}", name])

    def pymod(name: str) -> str:
        return out([python, "-c", f"import importlib.metadata as m; print(m.version('{name}'))"])

    xmrig_pkg = out(["chroot", str(chroot), "dpkg-query", "-W", "-f", "${Version}", "xmrig"])
    return {
        "xmrig": f"XMRig 6.22.2 (Debian trixie xmrig {xmrig_pkg})",
        "python": out([python, "-c", "import platform; print(platform.python_version())"]),
        "stunnel": f"stunnel4 {pkg('stunnel4')}",
        "mosquitto": f"mosquitto {pkg('mosquitto')}",
        "paho": pymod("paho-mqtt"),
        "openssh": f"OpenSSH sshd+ssh {pkg('openssh-server')}",
        "node_exporter": f"prometheus-node-exporter {pkg('prometheus-node-exporter')}",
        "websockets": pymod("websockets"),
        "postgres": f"PostgreSQL {pkg('postgresql-15') or '15'}",
        "psycopg": pymod("psycopg"),
        "redis": f"redis-server {pkg('redis-server')}",
        "redis_py": pymod("redis"),
    }


def setup_netns(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True)
    for argv in (
        ["ip", "link", "set", "lo", "up", "mtu", "1500"],
        ["ethtool", "-K", "lo", "tso", "off", "gso", "off", "gro", "off"],
    ):
        subprocess.run(["ip", "netns", "exec", name, *argv], check=True, capture_output=True)


def mount_chroot(chroot: Path) -> list[Path]:
    mounted = []
    for fs, kind in (("proc", "proc"), ("sys", "sysfs")):
        target = chroot / fs
        if subprocess.run(["mountpoint", "-q", str(target)], check=False).returncode != 0:
            subprocess.run(["mount", "-t", kind, fs, str(target)], check=True)
            mounted.append(target)
    return mounted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repo", type=Path, default=HERE.parent.parent)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--only", choices=["mining", "benign", "all"], default="all")
    parser.add_argument("--kinds", help="comma-separated kinds to keep from the plan")
    parser.add_argument("--seconds", type=float, default=400)
    parser.add_argument("--chroot", type=Path, default=Path("/var/cache/minewatch/trixie-xmrig"))
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    parser.add_argument("--keep-work", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[record-flows] %(asctime)s %(message)s")
    versions = versions_now(args.chroot, args.python)
    sessions = plan(args.batch, args.only, versions)
    if args.kinds:
        keep = set(args.kinds.split(","))
        sessions = [s for s in sessions if s.kind in keep]
    if args.dry_run:
        for s in sessions:
            print(s)
        return 0
    out_dir = args.repo / "data/flows/recordings"
    out_dir.mkdir(parents=True, exist_ok=True)
    existing = [s.name for s in sessions if (out_dir / f"{s.name}.pcap").exists()]
    if existing:
        print(
            f"error: already recorded: {', '.join(existing)}; delete those pcaps and their "
            "rows in labels.csv to record them again",
            file=sys.stderr,
        )
        return 2
    netns = f"mwflows-{args.batch}-{args.only}-{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix=f"minewatch-{netns}-"))
    work.chmod(0o755)  # daemons that drop privileges (mosquitto, postgres) read their files here
    (work / "certs").mkdir(mode=0o755)
    ctx = Context(
        netns,
        work,
        out_dir,
        args.repo / "data/flows/labels.csv",
        args.chroot,
        args.python,
        args.seconds,
        versions,
    )
    mounted: list[Path] = []
    failures = 0
    setup_netns(netns)
    try:
        mounted = mount_chroot(args.chroot)
        results: dict[str, str] = {}

        def one(s: Session) -> None:
            try:
                results[s.name] = record_session(ctx, s)
            except Exception as err:
                results[s.name] = f"{s.name}: FAILED: {err}"

        threads = [threading.Thread(target=one, args=(s,)) for s in sessions]
        for t in threads:
            t.start()
            time.sleep(1.5)
        for t in threads:
            t.join()
        for name in sorted(results):
            log.info("%s", results[name])
            failures += "FAILED" in results[name]
    finally:
        for proc in reversed(ctx.procs):
            stop(proc, wait=5)
        for m in mounted:
            subprocess.run(["umount", "-l", str(m)], check=False)
        for s in sessions:
            with contextlib.suppress(FileNotFoundError):
                (args.chroot / f"tmp/minewatch-flows-{netns}-{s.name}.json").unlink()
        subprocess.run(["ip", "netns", "del", netns], check=False)
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log.info("work dir kept: %s", work)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
