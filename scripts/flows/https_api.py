#!/usr/bin/env python3
"""HTTPS keep-alive polling, both ends: a small JSON API / blockchain-node JSON-RPC server and a
client that polls it (or any HTTPS endpoint, e.g. a Prometheus exporter) on one kept-alive
connection.

Why: dashboards, health checks, exporters and wallets polling a node are long-lived TLS
connections with a steady small request/response rhythm: the hardest benign look-alikes of a
miner on TLS. The server is Python's ``http.server`` speaking HTTP/1.1 (so connections stay
open) over ``ssl``; the client is ``http.client``.

Server modes:

* ``api``      -- ``GET /api/v1/status`` and friends return small, changing JSON documents;
* ``bitcoind`` -- JSON-RPC 1.0 like Bitcoin Core (``getblockcount``, ``getblockchaininfo``,
  ``getmempoolinfo``, ``getbestblockhash``);
* ``geth``     -- Ethereum JSON-RPC 2.0 (``eth_blockNumber``, ``eth_syncing``, ``net_peerCount``,
  ``eth_gasPrice``);
* ``monerod``  -- ``/json_rpc`` with ``get_info``, ``get_block_count``, ``get_last_block_header``.

These answer like the real nodes in shape and size; there is no node software behind them (none
is installed here) and the chain advances on a timer.

Usage::

    python3 https_api.py serve --host 127.0.20.1 --port 31001 --cert s.crt --key s.key --mode geth
    python3 https_api.py poll --host 127.0.20.1 --port 31001 --ca s.crt --sni rpc.example.test \\
        --rpc eth_blockNumber,eth_syncing --period 6 --seconds 400
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import logging
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rhythm import Pacer, client_tls, server_tls

__all__ = ["main"]

log = logging.getLogger("https_api")
START = time.time()


def _height(mode: str) -> int:
    """A block height that advances with time, at the chain's block rate."""
    base, spacing = {
        "bitcoind": (871_000, 600),
        "geth": (21_300_000, 12),
        "monerod": (3_300_000, 120),
    }.get(mode, (1, 60))
    return base + int((time.time() - START) // spacing)


def _hash(*parts: object) -> str:
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


def rpc_result(mode: str, method: str) -> Any:
    """What the node would answer to ``method``."""
    h = _height(mode)
    if mode == "bitcoind":
        table: dict[str, Any] = {
            "getblockcount": h,
            "getbestblockhash": _hash("btc", h),
            "getmempoolinfo": {
                "loaded": True,
                "size": 4000 + h % 997,
                "bytes": 2_100_000 + h % 7919,
            },
            "getblockchaininfo": {
                "chain": "main",
                "blocks": h,
                "headers": h,
                "bestblockhash": _hash("btc", h),
                "difficulty": 1.1e14,
                "verificationprogress": 0.99999,
                "initialblockdownload": False,
                "pruned": False,
            },
        }
    elif mode == "geth":
        table = {
            "eth_blockNumber": hex(h),
            "eth_syncing": False,
            "net_peerCount": hex(25 + h % 25),
            "eth_gasPrice": hex(12_000_000_000 + (h % 100) * 10_000_000),
        }
    elif mode == "monerod":
        table = {
            "get_block_count": {"count": h, "status": "OK"},
            "get_info": {
                "height": h,
                "target_height": h,
                "difficulty": 330_000_000_000,
                "tx_pool_size": 20 + h % 30,
                "incoming_connections_count": 12,
                "outgoing_connections_count": 12,
                "status": "OK",
                "synchronized": True,
                "top_block_hash": _hash("xmr", h),
            },
            "get_last_block_header": {
                "block_header": {
                    "height": h - 1,
                    "hash": _hash("xmr", h - 1),
                    "reward": 600000000000,
                },
                "status": "OK",
            },
        }
    else:
        table = {}
    return table.get(method)


class Handler(BaseHTTPRequestHandler):
    """Answers GETs (api mode) and JSON-RPC POSTs (node modes) on a kept-alive connection."""

    protocol_version = "HTTP/1.1"
    server_version = "minewatch-recording/1"
    mode = "api"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)

    def _reply(self, status: int, body: dict[str, Any] | list[Any]) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        now = time.time()
        if self.path.startswith("/api/"):
            self._reply(
                200,
                {
                    "service": "inventory",
                    "path": self.path,
                    "time": int(now),
                    "queue_depth": int(now) % 17,
                    "nodes": {"up": 384 - int(now) % 3, "down": int(now) % 3},
                },
            )
        elif self.path == "/healthz":
            self._reply(200, {"status": "ok"})
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"null")
        except json.JSONDecodeError:
            self._reply(400, {"error": "parse error"})
            return
        if not isinstance(request, dict):
            self._reply(400, {"error": "invalid request"})
            return
        result = rpc_result(self.mode, str(request.get("method")))
        reply: dict[str, Any] = {"id": request.get("id"), "result": result}
        if self.mode in ("geth", "monerod"):
            reply["jsonrpc"] = "2.0"
        else:
            reply["error"] = None
        self._reply(200, reply)


def serve(args: argparse.Namespace) -> int:
    Handler.mode = args.mode
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    context = server_tls(args.cert, args.key)
    if args.tls12:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker = threading.Thread(target=server.serve_forever, daemon=True)
    worker.start()
    stop.wait()
    server.shutdown()
    return 0


def _request(args: argparse.Namespace, pacer: Pacer, counter: int) -> tuple[str, str, bytes | None]:
    if args.rpc:
        method = pacer.choice(args.rpc.split(","))
        path = "/json_rpc" if args.rpc_style == "monerod" else "/"
        body: dict[str, Any] = {"id": counter, "method": method, "params": []}
        if args.rpc_style in ("geth", "monerod"):
            body["jsonrpc"] = "2.0"
        else:
            body["jsonrpc"] = "1.0"
        return "POST", path, json.dumps(body).encode()
    return "GET", pacer.choice(args.path.split(",")), None


def poll(args: argparse.Namespace) -> int:
    context = client_tls(args.ca)
    pacer = Pacer(args.period, args.jitter, args.seconds, args.seed)
    conn: http.client.HTTPSConnection | None = None
    counter = 0
    failures = 0
    while True:
        counter += 1
        method, path, body = _request(args, pacer, counter)
        headers = {"User-Agent": args.user_agent, "Accept": "*/*"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if args.auth:
            headers["Authorization"] = args.auth
        try:
            if conn is None:
                conn = NamedHTTPSConnection(args.host, args.port, context, args.sni)
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            failures = 0
        except (OSError, http.client.HTTPException) as err:
            failures += 1
            log.warning("request failed (%s); reconnecting", err)
            if conn is not None:
                conn.close()
            conn = None
            if failures > 5:
                return 1
        if not pacer.wait():
            break
    if conn is not None:
        conn.close()
    return 0


class NamedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to an address that names the service (SNI, Host) like DNS would."""

    def __init__(self, address: str, port: int, context: ssl.SSLContext, name: str | None) -> None:
        super().__init__(name or address, port, timeout=30, context=context)
        self._address = address
        self._context = context
        self._name = name or address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self._name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--cert", type=Path, required=True)
    s.add_argument("--key", type=Path, required=True)
    s.add_argument("--mode", choices=["api", "bitcoind", "geth", "monerod"], default="api")
    s.add_argument("--tls12", action="store_true", help="offer at most TLS 1.2")
    p = sub.add_parser("poll")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", type=Path, help="trust this certificate; omit to skip verification")
    p.add_argument("--sni", help="server name for SNI and the Host header")
    p.add_argument("--path", default="/api/v1/status", help="comma-separated paths to GET")
    p.add_argument("--rpc", help="comma-separated JSON-RPC methods to POST instead of GETs")
    p.add_argument("--rpc-style", choices=["bitcoind", "geth", "monerod"], default="bitcoind")
    p.add_argument("--auth", help="Authorization header value")
    p.add_argument("--user-agent", default="python-http.client")
    p.add_argument("--period", type=float, default=5.0)
    p.add_argument("--jitter", type=float, default=0.1)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--seed", default="poll")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    return serve(args) if args.command == "serve" else poll(args)


if __name__ == "__main__":
    sys.exit(main())
