#!/usr/bin/env python3
"""A tiny CryptoNote (Monero) stratum pool, for recording and testing against real miners.

It speaks the newline-delimited JSON-RPC dialect that XMRig and Monero pools use:

* ``login``      -> ``{"id": <session>, "job": {...}, "extensions": [...], "status": "OK"}``
* ``submit``     -> ``{"status": "OK"}`` (shares are checked for shape, not for work done)
* ``keepalived`` -> ``{"status": "KEEPALIVED"}``
* ``getjob``     -> the current job

and pushes a fresh ``{"jsonrpc": "2.0", "method": "job", "params": {...}}`` to every logged-in
miner every few seconds, as a pool does when the chain moves on. Jobs carry a plausible 76-byte
Monero hashing blob (major version 0x10), ``algo`` ``rx/0``, a height and a fixed RandomX seed
hash, and an easy target so that one CPU thread finds shares within seconds.

Nothing here is a real pool: no coin is mined and the blobs belong to no chain. Jobs are derived
from ``--seed``, so a run is deterministic apart from timestamps.

Usage::

    python3 scripts/sample/xmr_pool.py --port 14733

The first line on stdout is the port it listens on (useful with ``--port 0``); logs go to stderr.
It stops cleanly on SIGINT or SIGTERM, or after ``--duration`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import ipaddress
import itertools
import json
import logging
import re
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("xmr_pool")

# Monero block hashing blob: major and minor version (varint), timestamp (varint), previous block
# id (32 bytes), nonce (4 bytes), then the Merkle root of the transactions (32 bytes) and their
# count (varint). With a current timestamp (5-byte varint) and under 128 transactions: 76 bytes.
MAJOR_VERSION = 0x10
MINOR_VERSION = 0x10
NONCE_OFFSET = 39
BLOB_BYTES = 76
MAX_LINE = 16 * 1024
EXTENSIONS = ["algo", "keepalive"]
_HEX8 = re.compile(r"[0-9a-f]{8}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def varint(value: int) -> bytes:
    """Encode a non-negative integer as a CryptoNote (LEB128) varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def hashing_blob(prev_id: bytes, merkle_root: bytes, timestamp: int, tx_count: int) -> bytes:
    """A Monero block hashing blob with a zero nonce, as a pool hands to miners."""
    blob = (
        varint(MAJOR_VERSION)
        + varint(MINOR_VERSION)
        + varint(timestamp)
        + prev_id
        + b"\0\0\0\0"
        + merkle_root
        + varint(tx_count)
    )
    return blob


@dataclass(slots=True)
class Job:
    """One unit of work handed to miners."""

    job_id: str
    blob: str
    target: str
    height: int
    seed_hash: str
    algo: str = "rx/0"

    def params(self) -> dict[str, Any]:
        """The job object as it goes on the wire."""
        return {
            "blob": self.blob,
            "job_id": self.job_id,
            "target": self.target,
            "algo": self.algo,
            "height": self.height,
            "seed_hash": self.seed_hash,
        }


class JobSource:
    """Makes a new job for each (pretend) block, deterministically from a seed string."""

    def __init__(self, seed: str, target: str, start_height: int) -> None:
        self._seed = seed
        self._target = target
        self._height = start_height
        self._counter = itertools.count(1)
        # RandomX seed hashes change every 2048 blocks; one fixed seed keeps the miner's cache.
        self.seed_hash = hashlib.sha256(f"{seed}/seed".encode()).hexdigest()
        self.current = self.next()

    def next(self) -> Job:
        """Move to the next block and return its job."""
        n = next(self._counter)
        self._height += 1
        prev_id = hashlib.sha256(f"{self._seed}/prev/{self._height}".encode()).digest()
        merkle = hashlib.sha256(f"{self._seed}/merkle/{self._height}".encode()).digest()
        tx_count = 1 + hashlib.sha256(f"{self._seed}/txs/{n}".encode()).digest()[0] % 100
        blob = hashing_blob(prev_id, merkle, int(time.time()), tx_count)
        if len(blob) != BLOB_BYTES:  # only if the clock is wildly off
            raise ValueError(f"hashing blob is {len(blob)} bytes, expected {BLOB_BYTES}")
        job_id = hashlib.sha256(f"{self._seed}/job/{n}".encode()).hexdigest()[:16]
        self.current = Job(job_id, blob.hex(), self._target, self._height, self.seed_hash)
        return self.current


@dataclass(slots=True)
class PoolStats:
    """What the pool saw, written as JSON with ``--stats``."""

    port: int = 0
    connections: int = 0
    logins: int = 0
    agents: list[str] = field(default_factory=list)
    jobs_pushed: int = 0
    shares_accepted: int = 0
    shares_rejected: int = 0
    keepalives: int = 0
    methods: dict[str, int] = field(default_factory=dict)


class Miner:
    """One connected miner."""

    def __init__(self, session: str, writer: asyncio.StreamWriter) -> None:
        self.session = session
        self.writer = writer
        self.logged_in = False
        self.known_jobs: set[str] = set()

    async def send(self, message: dict[str, Any]) -> None:
        self.writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        await self.writer.drain()


class StratumPool:
    """The pool: accepts miners, answers their calls and pushes jobs on a timer."""

    def __init__(self, jobs: JobSource, job_interval: float) -> None:
        self.jobs = jobs
        self.job_interval = job_interval
        self.stats = PoolStats()
        self._miners: dict[str, Miner] = {}
        self._sessions = itertools.count(1)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one miner connection until it closes."""
        self.stats.connections += 1
        peer = writer.get_extra_info("peername")
        session = hashlib.sha256(f"session/{next(self._sessions)}".encode()).hexdigest()[:32]
        miner = Miner(session, writer)
        self._miners[session] = miner
        log.info("miner connected from %s", peer)
        try:
            while line := await reader.readline():
                if len(line) > MAX_LINE:
                    log.warning("line too long from %s; closing", peer)
                    break
                if line.strip():
                    await self._dispatch(miner, line)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as err:
            log.info("miner %s went away: %s", peer, err)
        finally:
            self._miners.pop(session, None)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            log.info("miner %s disconnected", peer)

    async def _dispatch(self, miner: Miner, line: bytes) -> None:
        try:
            request = json.loads(line)
        except json.JSONDecodeError:
            await miner.send(_error(None, -32700, "parse error"))
            return
        if not isinstance(request, dict):
            await miner.send(_error(None, -32600, "invalid request"))
            return
        rid = request.get("id")
        method = request.get("method")
        params = request.get("params")
        params = params if isinstance(params, dict) else {}
        name = method if isinstance(method, str) else "?"
        self.stats.methods[name] = self.stats.methods.get(name, 0) + 1
        log.info("<- %s %s", name, json.dumps(params)[:200])
        if method == "login":
            await self._login(miner, rid, params)
        elif not miner.logged_in:
            await miner.send(_error(rid, -1, "Unauthenticated"))
        elif method == "submit":
            await self._submit(miner, rid, params)
        elif method == "keepalived":
            self.stats.keepalives += 1
            await miner.send(_result(rid, {"status": "KEEPALIVED"}))
        elif method == "getjob":
            await miner.send(_result(rid, self._job_for(miner)))
        else:
            await miner.send(_error(rid, -32601, "Method not found"))

    async def _login(self, miner: Miner, rid: Any, params: dict[str, Any]) -> None:
        if not isinstance(params.get("login"), str) or not params["login"]:
            await miner.send(_error(rid, -1, "Missing login"))
            return
        miner.logged_in = True
        self.stats.logins += 1
        agent = params.get("agent")
        if isinstance(agent, str):
            self.stats.agents.append(agent)
        result = {
            "id": miner.session,
            "job": self._job_for(miner),
            "extensions": EXTENSIONS,
            "status": "OK",
        }
        await miner.send(_result(rid, result))

    async def _submit(self, miner: Miner, rid: Any, params: dict[str, Any]) -> None:
        nonce = params.get("nonce")
        result = params.get("result")
        problem = None
        if params.get("job_id") not in miner.known_jobs:
            problem = "Invalid job id"
        elif not (isinstance(nonce, str) and _HEX8.fullmatch(nonce)):
            problem = "Invalid nonce"
        elif not (isinstance(result, str) and _HEX64.fullmatch(result)):
            problem = "Invalid result"
        if problem:
            self.stats.shares_rejected += 1
            await miner.send(_error(rid, -1, problem))
        else:
            self.stats.shares_accepted += 1
            await miner.send(_result(rid, {"status": "OK"}))

    def _job_for(self, miner: Miner) -> dict[str, Any]:
        job = self.jobs.current.params()
        job["id"] = miner.session
        miner.known_jobs.add(job["job_id"])
        return job

    async def push_jobs(self) -> None:
        """Every ``job_interval`` seconds, announce a new job to each logged-in miner."""
        while True:
            await asyncio.sleep(self.job_interval)
            self.jobs.next()
            for miner in list(self._miners.values()):
                if not miner.logged_in:
                    continue
                note = {"jsonrpc": "2.0", "method": "job", "params": self._job_for(miner)}
                with contextlib.suppress(ConnectionError):
                    await miner.send(note)
                    self.stats.jobs_pushed += 1

    async def close_all(self) -> None:
        for miner in list(self._miners.values()):
            miner.writer.close()


def _result(rid: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"id": rid, "jsonrpc": "2.0", "error": None, "result": result}


def _error(rid: Any, code: int, message: str) -> dict[str, Any]:
    return {"id": rid, "jsonrpc": "2.0", "error": {"code": code, "message": message}}


async def serve(args: argparse.Namespace) -> PoolStats:
    jobs = JobSource(args.seed, args.target, args.height)
    pool = StratumPool(jobs, args.job_interval)
    server = await asyncio.start_server(pool.handle, args.host, args.port, limit=MAX_LINE * 2)
    port = int(server.sockets[0].getsockname()[1])
    pool.stats.port = port
    print(port, flush=True)
    log.info(
        "listening on %s:%d, target %s, new job every %.1f s",
        args.host,
        port,
        args.target,
        args.job_interval,
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pusher = asyncio.create_task(pool.push_jobs())
    try:
        if args.duration:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.duration)
        else:
            await stop.wait()
    finally:
        pusher.cancel()
        server.close()
        await pool.close_all()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2)
    log.info("stopped: %s", asdict(pool.stats))
    return pool.stats


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address: this pool never listens beyond the machine."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument(
        "--job-interval", type=float, default=6.0, help="seconds between pushed jobs (default 6)"
    )
    parser.add_argument(
        "--target",
        default="ffffff00",
        help="compact share target, 8 hex digits little-endian; "
        "ffffff00 is difficulty 256 (default)",
    )
    parser.add_argument(
        "--height", type=int, default=3_412_000, help="block height of the first job"
    )
    parser.add_argument("--seed", default="minewatch", help="seed for deterministic jobs")
    parser.add_argument(
        "--duration",
        type=float,
        default=0,
        help="stop after this many seconds (default: run until signalled)",
    )
    parser.add_argument("--stats", type=Path, help="write what the pool saw here as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[0-9a-f]{8}", args.target):
        parser.error("--target must be 8 lower-case hex digits, e.g. ffffff00")
    if args.job_interval <= 0:
        parser.error("--job-interval must be positive")
    if not is_loopback(args.host):
        parser.error("--host must be a loopback address such as 127.0.0.1 or ::1")
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(message)s",
    )
    stats = asyncio.run(serve(args))
    if args.stats:
        args.stats.write_text(json.dumps(asdict(stats), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
