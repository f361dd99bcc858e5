#!/usr/bin/env python3
"""Print the XMRig configuration used to record the sample, as JSON on stdout.

A config file rather than command-line flags, because only the file can set the keepalive
interval in seconds (``--keepalive`` on the command line means a fixed 60 s), and we want the
miner to send ``keepalived`` within a short recording.

Settings, and why:

* one CPU thread, RandomX light mode (256 MiB cache, no 2 GiB dataset), no huge pages: starts in
  seconds on any machine and is plenty against the pool's easy target;
* no donation, no MSR tweaks (xmrig would otherwise try to load the ``msr`` module as root),
  no HTTP API: the capture must hold only the one pool conversation;
* ``keepalive``: seconds of silence after which xmrig sends ``keepalived``.

Usage::

    python3 scripts/sample/xmrig_config.py --port 14733 --wallet 44AFF... > xmrig.json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def xmrig_config(host: str, port: int, wallet: str, keepalive: int) -> dict[str, Any]:
    """The XMRig config as a JSON-ready dict."""
    return {
        "autosave": False,
        "background": False,
        "colors": False,
        "donate-level": 0,
        "donate-over-proxy": 0,
        "print-time": 10,
        "health-print-time": 0,
        "retries": 5,
        "retry-pause": 2,
        "syslog": False,
        "http": {"enabled": False},
        "randomx": {
            "init": 1,
            "init-avx2": -1,
            "mode": "light",
            "1gb-pages": False,
            "rdmsr": False,
            "wrmsr": False,
            "cache_qos": False,
            "numa": False,
            "scratchpad_prefetch_mode": 1,
        },
        "cpu": {
            "enabled": True,
            "huge-pages": False,
            "huge-pages-jit": False,
            "hw-aes": None,
            "priority": None,
            "memory-pool": False,
            "yield": True,
            "asm": True,
            # One thread, no CPU pinning.
            "rx": [-1],
        },
        "opencl": {"enabled": False},
        "cuda": {"enabled": False},
        "pools": [
            {
                "algo": "rx/0",
                "url": f"{host}:{port}",
                "user": wallet,
                "pass": "x",
                "keepalive": keepalive,
                "enabled": True,
                "tls": False,
                "nicehash": False,
                "daemon": False,
            }
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--wallet", required=True)
    parser.add_argument(
        "--keepalive",
        type=int,
        default=8,
        help="seconds of silence before xmrig sends keepalived (default 8)",
    )
    args = parser.parse_args(argv)
    json.dump(xmrig_config(args.host, args.port, args.wallet, args.keepalive), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
