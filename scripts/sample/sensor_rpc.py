#!/usr/bin/env python3
"""A pretend temperature-sensor service over line-delimited JSON-RPC: a benign look-alike.

Its traffic is built to resemble a mining stratum session on the surface, so that detectors must
look past "long-lived TCP carrying newline-delimited JSON-RPC with periodic server pushes":

* the client says hello once (``sensor.hello``, with an ``agent`` string), then calls
  ``sensor.read`` every couple of seconds and ``sensor.ping`` now and then;
* the server pushes ``sensor.threshold`` notifications on a timer.

What it lacks is everything that makes mining mining: no job blobs, targets, nonces or results.

Usage::

    python3 scripts/sample/sensor_rpc.py serve --port 17021
    python3 scripts/sample/sensor_rpc.py poll --port 17021 --seconds 60

``serve`` prints the port it listens on as the first line of stdout; both log to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import itertools
import json
import logging
import math
import signal
import sys
import time
from typing import Any

log = logging.getLogger("sensor_rpc")

SENSORS = ["rack07-inlet", "rack07-outlet", "rack12-inlet", "pdu-3b"]
MAX_LINE = 16 * 1024


def reading(sensor: str, now: float) -> float:
    """A smooth, deterministic temperature for ``sensor`` at time ``now`` (degrees Celsius)."""
    base = 21.0 + 3.0 * SENSORS.index(sensor)
    return round(base + 1.5 * math.sin(now / 20.0 + len(sensor)), 2)


def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")


class SensorServer:
    """Answers sensor calls and pushes threshold notices to every connected client."""

    def __init__(self, push_interval: float) -> None:
        self.push_interval = push_interval
        self._clients: set[asyncio.StreamWriter] = set()

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        rid = request.get("id")
        method = request.get("method")
        params = request.get("params") or {}
        now = time.time()
        if method == "sensor.hello":
            result: Any = {"service": "thermo", "version": "2.4.1", "sensors": SENSORS}
        elif method == "sensor.read" and params.get("sensor") in SENSORS:
            sensor = params["sensor"]
            result = {"sensor": sensor, "celsius": reading(sensor, now), "ts": int(now)}
        elif method == "sensor.ping":
            result = "pong"
        else:
            return {
                "jsonrpc": "2.0",
                "id": rid,
                "error": {"code": -32601, "message": f"no such method: {method}"},
            }
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            while line := await reader.readline():
                if len(line) > MAX_LINE:
                    break
                try:
                    request = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(request, dict):
                    _send(writer, self.answer(request))
                    await writer.drain()
        except (ConnectionError, ValueError) as err:
            log.info("client went away: %s", err)
        finally:
            self._clients.discard(writer)
            writer.close()

    async def push(self) -> None:
        for n in itertools.count():
            await asyncio.sleep(self.push_interval)
            sensor = SENSORS[n % len(SENSORS)]
            note = {
                "jsonrpc": "2.0",
                "method": "sensor.threshold",
                "params": {"sensor": sensor, "warn_celsius": 32.0 + n % 3, "crit_celsius": 38.0},
            }
            for writer in list(self._clients):
                with contextlib.suppress(ConnectionError):
                    _send(writer, note)
                    await writer.drain()

    def close_all(self) -> None:
        for writer in list(self._clients):
            writer.close()


async def serve(host: str, port: int, push_interval: float) -> None:
    sensors = SensorServer(push_interval)
    server = await asyncio.start_server(sensors.handle, host, port, limit=MAX_LINE * 2)
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pusher = asyncio.create_task(sensors.push())
    await stop.wait()
    pusher.cancel()
    server.close()
    sensors.close_all()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.wait_closed(), 2)


async def poll(host: str, port: int, seconds: float, interval: float) -> int:
    """Hold one session for ``seconds``: hello, then periodic reads and pings."""
    reader, writer = await asyncio.open_connection(host, port, limit=MAX_LINE * 2)
    ids = itertools.count(1)
    pending: dict[int, str] = {}
    answered = 0

    async def call(method: str, params: dict[str, Any]) -> None:
        rid = next(ids)
        pending[rid] = method
        _send(writer, {"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        await writer.drain()

    async def listen() -> None:
        nonlocal answered
        while line := await reader.readline():
            message = json.loads(line)
            if "id" in message and message["id"] in pending:
                pending.pop(message["id"])
                answered += 1
            else:
                log.info("notice: %s", message.get("method"))

    listener = asyncio.create_task(listen())
    await call("sensor.hello", {"agent": "thermo-poller/1.3.0", "site": "dc-north"})
    deadline = time.monotonic() + seconds
    for n in itertools.count():
        if time.monotonic() >= deadline:
            break
        await call("sensor.read", {"sensor": SENSORS[n % len(SENSORS)]})
        if n % 7 == 6:
            await call("sensor.ping", {})
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    await asyncio.sleep(0.3)  # let the last answers arrive
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    listener.cancel()
    log.info("%d calls answered, %d unanswered", answered, len(pending))
    return 0 if answered else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "poll"):
        p = sub.add_parser(name)
        p.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
        p.add_argument("--port", type=int, default=0 if name == "serve" else 17021)
    sub.choices["serve"].add_argument(
        "--push-interval",
        type=float,
        default=9.0,
        help="seconds between threshold notices (default 9)",
    )
    sub.choices["poll"].add_argument(
        "--seconds", type=float, default=60.0, help="how long to keep the session (default 60)"
    )
    sub.choices["poll"].add_argument(
        "--interval", type=float, default=2.5, help="seconds between reads (default 2.5)"
    )
    args = parser.parse_args(argv)
    if not ipaddress.ip_address(args.host).is_loopback:
        parser.error("--host must be a loopback address")
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
    )
    if args.command == "serve":
        asyncio.run(serve(args.host, args.port, args.push_interval))
        return 0
    return asyncio.run(poll(args.host, args.port, args.seconds, args.interval))


if __name__ == "__main__":
    sys.exit(main())
