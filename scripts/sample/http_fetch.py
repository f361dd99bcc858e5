#!/usr/bin/env python3
"""Make a few ordinary HTTP requests to a local web server, spread over a time span.

Each request uses its own TCP connection, as a simple client or monitoring probe would. It talks
to the server directly with :mod:`http.client`, so no proxy settings can send it elsewhere.

Usage::

    python3 scripts/sample/http_fetch.py --port 18080 --seconds 50
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import logging
import sys
import time

log = logging.getLogger("http_fetch")

PATHS = ["/", "/api/status.json", "/robots.txt", "/api/status.json", "/missing.html", "/"]


def fetch(host: str, port: int, path: str) -> int:
    """GET ``path`` and return the status code."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", path, headers={"User-Agent": "status-probe/0.9", "Accept": "*/*"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument(
        "--seconds",
        type=float,
        default=50.0,
        help="spread the requests over this many seconds (default 50)",
    )
    args = parser.parse_args(argv)
    if not ipaddress.ip_address(args.host).is_loopback:
        parser.error("--host must be a loopback address")
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    gap = args.seconds / len(PATHS)
    start = time.monotonic()
    for n, path in enumerate(PATHS):
        # Start shortly after the miner, then evenly spaced.
        time.sleep(max(0.0, start + 1.5 + n * gap - time.monotonic()))
        status = fetch(args.host, args.port, path)
        log.info("GET %s -> %d", path, status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
