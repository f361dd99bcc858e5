#!/usr/bin/env python3
"""A websocket service over TLS, both ends: heartbeat pings and occasional messages.

Why: dashboards, chat and trading feeds keep a websocket open for hours; the client pings every
10-30 s (RFC 6455 ping/pong) and the server now and then pushes a small JSON event: a long-lived
TLS flow with small periodic messages both ways. Both ends are the real ``websockets`` library.

Usage::

    python3 ws_heartbeat.py serve --host 127.0.22.1 --port 32001 --cert s.crt --key s.key \\
        --push-every 45
    python3 ws_heartbeat.py client --host 127.0.22.1 --port 32001 --ca s.crt \\
        --sni ws.example.test --ping 20 --send-every 60 --seconds 400
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import time
from pathlib import Path

from rhythm import client_tls, server_tls
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = ["main"]


async def _serve(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)

    async def handler(ws: ServerConnection) -> None:
        async def pusher() -> None:
            n = 0
            while True:
                await asyncio.sleep(args.push_every * rng.uniform(0.3, 1.7))
                n += 1
                event = {"type": "event", "n": n, "ts": time.time(), "load": rng.random()}
                await ws.send(json.dumps(event))

        task = asyncio.create_task(pusher())
        try:
            async for message in ws:
                await ws.send(json.dumps({"type": "ack", "len": len(message)}))
        except ConnectionClosed:
            pass
        finally:
            task.cancel()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    context = server_tls(args.cert, args.key)
    async with serve(handler, args.host, args.port, ssl=context, ping_interval=None):
        print(args.port, flush=True)
        await stop.wait()
    return 0


async def _client(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    context = client_tls(args.ca)
    uri = f"wss://{args.sni or args.host}:{args.port}/stream"
    deadline = time.monotonic() + args.seconds
    sock_args = {"host": args.host, "port": args.port, "server_hostname": args.sni or args.host}
    async with connect(
        uri, ssl=context, ping_interval=args.ping, ping_timeout=args.ping, **sock_args
    ) as ws:
        await ws.send(json.dumps({"type": "subscribe", "channels": ["alerts", "status"]}))

        async def reader() -> None:
            async for _ in ws:
                pass

        task = asyncio.create_task(reader())
        while (left := deadline - time.monotonic()) > 0:
            gap = args.send_every * rng.uniform(0.5, 1.5) if args.send_every else left
            await asyncio.sleep(min(gap, left))
            if args.send_every and deadline - time.monotonic() > 0:
                await ws.send(json.dumps({"type": "status", "ts": time.time(), "ok": True}))
        task.cancel()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--cert", type=Path, required=True)
    s.add_argument("--key", type=Path, required=True)
    s.add_argument("--push-every", type=float, default=45.0)
    s.add_argument("--seed", default="ws-server")
    c = sub.add_parser("client")
    c.add_argument("--host", required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--ca", type=Path)
    c.add_argument("--sni")
    c.add_argument("--ping", type=float, default=20.0, help="seconds between pings")
    c.add_argument("--send-every", type=float, default=0.0, help="mean gap between messages")
    c.add_argument("--seconds", type=float, required=True)
    c.add_argument("--seed", default="ws-client")
    args = parser.parse_args(argv)
    return asyncio.run(_serve(args) if args.command == "serve" else _client(args))


if __name__ == "__main__":
    sys.exit(main())
