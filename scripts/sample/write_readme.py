#!/usr/bin/env python3
"""Write README.md for the bundled sample capture, from the capture itself and the recorder's notes.

Called by ``scripts/record-sample`` after a recording; everything the README states about the
file's contents (packets, conversations, methods) is read back out of the pcap, so the two
cannot drift apart.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from summarise_capture import conversations

_MAX_EXAMPLE = 400


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).astimezone().isoformat(timespec="seconds")


def _example(message: dict[str, Any]) -> str:
    text = json.dumps(message, separators=(",", ":"))
    return text if len(text) <= _MAX_EXAMPLE else text[:_MAX_EXAMPLE] + "…"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _methods(counts: dict[str, int]) -> str:
    return ", ".join(f"`{m}` ×{n}" for m, n in sorted(counts.items())) or "none"


def render(args: argparse.Namespace) -> str:
    count, convs = conversations(args.pcap)
    summaries = [c.describe() for c in convs]
    data = args.pcap.read_bytes()
    first = min(c.first_ts for c in convs)
    last = max(c.last_ts for c in convs)
    chroot_info = (
        dict(
            line.split("=", 1) for line in args.chroot_info.read_text().splitlines() if "=" in line
        )
        if args.chroot_info
        else {}
    )
    pool = next(s for s in summaries if s["server_port"] == args.pool_port)
    sensor = [s for s in summaries if s["server_port"] == args.sensor_port]
    http = [s for s in summaries if s["server_port"] == args.http_port]

    rows = []
    for n, s in enumerate(summaries, 1):
        if s["server_port"] == args.pool_port:
            what, label = "XMRig ↔ our stratum pool (Monero/CryptoNote JSON-RPC)", "**mining**"
            methods = (
                f"client: {_methods(s['client_methods'])}; server: {_methods(s['server_methods'])}"
            )
        elif s["server_port"] == args.sensor_port:
            what, label = "temperature-sensor JSON-RPC session", "benign"
            methods = (
                f"client: {_methods(s['client_methods'])}; server: {_methods(s['server_methods'])}"
            )
        elif s["server_port"] == args.http_port:
            what, label = "HTTP via python3 -m http.server", "benign"
            methods = "; ".join(f"`{r}`" for r in s.get("requests", []))
        else:
            what, label, methods = "unexpected", "?", ""
        rows.append(
            f"| {n} | {s['client']} | {s['server']} | {s['packets']} | "
            f"{s['payload_up']}/{s['payload_down']} | {s['seconds']:.1f} | {label} | {what}: "
            f"{methods} |"
        )

    first_msgs = pool["first_message"]
    submit_reply = next(
        (
            r
            for r in pool["replies"]
            if r.get("result", {}).get("status") == "OK" and "job" not in r.get("result", {})
        ),
        None,
    )
    examples = []
    for method in ("login", "job", "submit", "keepalived"):
        if method in first_msgs:
            examples.append(
                f"* first `{method}`:\n\n  ```json\n  {_example(first_msgs[method])}\n  ```"
            )
    login_reply = next((r for r in pool["replies"] if "job" in (r.get("result") or {})), None)
    if login_reply:
        examples.insert(
            1, f"* pool's answer to `login`:\n\n  ```json\n  {_example(login_reply)}\n  ```"
        )
    if submit_reply:
        examples.append(
            f"* pool's answer to a share:\n\n  ```json\n  {_example(submit_reply)}\n  ```"
        )
    stats = json.loads(args.pool_stats.read_text()) if args.pool_stats else {}
    config = json.loads(args.xmrig_config)
    pool_cfg = config["pools"][0]

    file_format = (
        "classic pcap (tcpdump `-w`), link type Ethernet (Linux `lo`), "
        "microsecond timestamps, snaplen 262144"
    )
    mirror = chroot_info.get("mirror", "http://deb.debian.org/debian")
    debootstrap = (
        f"`debootstrap --variant=minbase --include=xmrig trixie DIR {mirror}` "
        f"(debootstrap {chroot_info.get('debootstrap', '?')}, "
        f"built {chroot_info.get('built', '?')} in {chroot_info.get('seconds', '?')} s)"
    )
    pool_cmd = (
        f"`scripts/sample/xmr_pool.py --port {args.pool_port} "
        f"--job-interval {args.job_interval:g} --target {args.target}`"
    )
    tcpdump_cmd = f"`tcpdump -i lo -n -s 0 -U -Z root -w FILE '{args.capture_filter}'`"
    return f"""\
# minewatch sample capture

`minewatch-sample.pcap` is minewatch's own small, bundled example capture. It was recorded by
`scripts/record-sample` from real software on one machine's loopback interface: a real XMRig
miner working for a small stratum pool we wrote, with ordinary traffic beside it. Nothing in it
left the machine, no coin was mined, and the wallet address is a placeholder.

## The file

| | |
|---|---|
| format | {file_format} |
| size | {len(data)} bytes |
| packets | {count} (all TCP, all between 127.0.0.1 and 127.0.0.1) |
| SHA-256 | `{hashlib.sha256(data).hexdigest()}` |
| recorded | {_when(first)} to {_when(last)} ({last - first:.1f} s) |
| capture filter | `{args.capture_filter}` |

## Conversations

| # | client | server | packets | payload bytes up/down | seconds | label | what |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Ports were chosen so that a detector cannot lean on them: the pool listens on
{args.pool_port}, not one of the ports mining pools customarily use, and the benign JSON-RPC
service on {args.sensor_port}. Client ports are ephemeral.

### The mining conversation

XMRig connects, calls `login` (with its `agent` string), receives a first job in the answer,
then gets a new `job` pushed every {args.job_interval:g} s, answers with `submit` whenever a hash
meets the target, and sends `keepalived` after {pool_cfg["keepalive"]} s without hearing from the
pool. The pool accepted every share (it checks their form, not the work:
{stats.get("shares_accepted", "?")} accepted, {stats.get("shares_rejected", "?")} rejected).
Jobs carry a made-up but well-formed 76-byte Monero hashing blob (major version 0x10),
`algo` `rx/0`, a height, a fixed RandomX `seed_hash` and target `{args.target}` (difficulty 256,
so one CPU thread in RandomX light mode, at 10 to 30 H/s, finds a share every 8 to 25 s on
average). Hashes in `result` are real RandomX hashes of those blobs.

{chr(10).join(examples)}

### The benign conversations

* **HTTP** ({len(http)} connections): `python3 -m http.server` bound to 127.0.0.1:{args.http_port},
  fetched by `scripts/sample/http_fetch.py` (`User-Agent: status-probe/0.9`), one connection per
  request, including one 404.
* **Sensor JSON-RPC** ({len(sensor)} connection): `scripts/sample/sensor_rpc.py`, a long-lived,
  newline-delimited JSON-RPC 2.0 session that looks like stratum on the surface (a hello with an
  `agent`, periodic client calls, server-pushed notifications) but carries temperature readings,
  not work. It is the hard negative: a detector must not call it mining.

## How it was made

| tool | version |
|---|---|
| XMRig | {args.xmrig_version} (Debian trixie package `xmrig` {args.xmrig_package}) |
| chroot | Debian trixie, {debootstrap} |
| pool | {pool_cmd} (Python {args.python_version}) |
| capture | {args.tcpdump_version}: {tcpdump_cmd} |
| host | {_os_name()}, Linux {platform.release()} |

XMRig ran as `chroot DIR /usr/bin/xmrig --config=/tmp/minewatch-xmrig.json --no-color` for
{args.seconds} s (stopped with SIGINT), with this configuration (from
`scripts/sample/xmrig_config.py`; a file because only it can set a short keepalive):

```json
{json.dumps(config, indent=2)}
```

## Re-recording

As root, from the repository root:

```sh
scripts/record-sample
```

It installs tcpdump and debootstrap if missing, builds the chroot once (cached in
`$MINEWATCH_CHROOT`, default `/var/cache/minewatch/trixie-xmrig`), records for
`$MINEWATCH_SAMPLE_SECONDS` (default 55) seconds, checks that the mining conversation has a
login with an XMRig agent, pushed jobs and a submitted share, and rewrites this file and the
pcap. A new recording differs in timestamps, client ports, nonces and share count; it is not
byte-for-byte reproducible.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pcap", type=Path, required=True)
    parser.add_argument("--readme", type=Path, required=True)
    parser.add_argument("--xmrig-version", required=True)
    parser.add_argument("--xmrig-package", required=True)
    parser.add_argument("--tcpdump-version", required=True)
    parser.add_argument("--python-version", required=True)
    parser.add_argument("--pool-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--sensor-port", type=int, required=True)
    parser.add_argument("--job-interval", type=float, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--seconds", type=int, required=True)
    parser.add_argument("--capture-filter", required=True)
    parser.add_argument("--xmrig-config", required=True, help="the config JSON text")
    parser.add_argument("--pool-stats", type=Path, help="JSON written by xmr_pool.py --stats")
    parser.add_argument("--chroot-info", type=Path, help="the chroot's .minewatch-ready file")
    args = parser.parse_args(argv)
    args.readme.write_text(render(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
