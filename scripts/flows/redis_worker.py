#!/usr/bin/env python3
"""A Redis queue worker over TLS: long-polls a list with BLPOP and writes a heartbeat key.

Why: job-queue workers (Celery, RQ, Sidekiq) keep one TLS connection to Redis open for days,
block in ``BLPOP`` for a fixed timeout and refresh a heartbeat after each wake-up: a long-lived
flow with a very regular small request/response rhythm in which the server answers after a
delay, much as a pool answers a miner. Real ``redis-py`` against a real ``redis-server``.

Usage::

    python3 redis_worker.py --host 127.0.27.1 --port 36379 --ca redis.crt --block 10 --seconds 400
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import redis
from rhythm import Pacer

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", type=Path, required=True)
    parser.add_argument("--block", type=float, default=10.0, help="BLPOP timeout in seconds")
    parser.add_argument("--jitter", type=float, default=0.0, help="random pause after each wake-up")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--seed", default="redis")
    args = parser.parse_args(argv)
    client = redis.Redis(
        host=args.host,
        port=args.port,
        ssl=True,
        ssl_ca_certs=str(args.ca),
        ssl_check_hostname=False,
        socket_timeout=args.block + 30,
        single_connection_client=True,
    )
    pacer = Pacer(args.block, 0.0, args.seconds, args.seed)
    worker = f"worker-{args.seed}"
    client.client_setname(worker)
    while pacer.remaining() > args.block:
        item = client.blpop(["jobs:high", "jobs:default"], timeout=args.block)
        if item is not None:
            client.lpush("jobs:done", item[1])
        client.set(f"heartbeat:{worker}", json.dumps({"ts": time.time()}), ex=int(args.block * 3))
        client.incr(f"stats:{worker}:wakeups")
        if args.jitter:
            time.sleep(pacer.uniform(0, args.jitter))
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
