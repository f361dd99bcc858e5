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

Options for recording encrypted mining (``scripts/record-flows``); the defaults keep the plain,
fixed-rhythm behaviour that ``scripts/record-sample`` and the tests rely on:

* ``--tls-cert``/``--tls-key`` wrap every connection in TLS, as pools do on their TLS ports;
* ``--difficulty`` sets the share difficulty instead of ``--target`` (target (2^32-1)/difficulty),
  so shares arrive at the pace a pool's vardiff would hold;
* ``--job-jitter`` varies each gap between pushed jobs by up to that fraction of
  ``--job-interval``, drawn from a generator seeded by ``--seed``: real pools push when the
  chain moves, which is anything but a metronome;
* ``--vardiff SECONDS`` retargets each miner's difficulty, as pools' variable difficulty does,
  so that it submits a share about every SECONDS: every ``max(60, 3 * SECONDS)`` seconds, when
  the observed pace is off by more than 30 %, the difficulty moves (at most 4x per step) and a
  fresh job with the new target is pushed at once.

    python3 scripts/sample/xmr_pool.py --host 127.0.10.1 --port 24001 \\
        --tls-cert pool.crt --tls-key pool.key --difficulty 600 --job-interval 30 --job-jitter 0.5
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
import random
import re
import signal
import ssl
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
    retargets: int = 0
    methods: dict[str, int] = field(default_factory=dict)


class Miner:
    """One connected miner."""

    def __init__(self, session: str, writer: asyncio.StreamWriter) -> None:
        self.session = session
        self.writer = writer
        self.logged_in = False
        self.known_jobs: set[str] = set()
        # Variable difficulty: this miner's current difficulty and the window it is judged on.
        self.difficulty = 0
        self.window_start = time.monotonic()
        self.window_shares = 0

    async def send(self, message: dict[str, Any]) -> None:
        self.writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        await self.writer.drain()


class StratumPool:
    """The pool: accepts miners, answers their calls and pushes jobs on a timer."""

    def __init__(
        self,
        jobs: JobSource,
        job_interval: float,
        job_jitter: float = 0.0,
        seed: str = "",
        vardiff: float = 0.0,
        start_difficulty: int = 256,
    ) -> None:
        self.jobs = jobs
        self.job_interval = job_interval
        self.job_jitter = job_jitter
        self.vardiff = vardiff
        self.start_difficulty = start_difficulty
        # Seeded, so a recording's rhythm can be reproduced; not used for anything secret.
        self._rhythm = random.Random(f"{seed}/rhythm")
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
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, ssl.SSLError) as err:
            log.info("miner %s went away: %s", peer, err)
        finally:
            self._miners.pop(session, None)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
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
            miner.window_shares += 1
            await miner.send(_result(rid, {"status": "OK"}))
            await self._maybe_retarget(miner, push=True)

    async def _maybe_retarget(self, miner: Miner, push: bool) -> None:
        """Vardiff: move the miner's difficulty towards one share every ``vardiff`` seconds.

        With ``push`` a job carrying the new target goes out at once; otherwise the caller is
        about to send one.
        """
        if not self.vardiff or not miner.logged_in:
            return
        elapsed = time.monotonic() - miner.window_start
        if elapsed < max(60.0, 3 * self.vardiff):
            return
        pace = elapsed / max(miner.window_shares, 0.5)
        miner.window_start, miner.window_shares = time.monotonic(), 0
        if abs(pace / self.vardiff - 1) <= 0.3:
            return
        factor = min(4.0, max(0.25, self.vardiff / pace))
        miner.difficulty = max(1, round(miner.difficulty * factor))
        self.stats.retargets += 1
        log.info("vardiff: difficulty %d (a share every %.1f s)", miner.difficulty, pace)
        if not push:
            return
        note = {"jsonrpc": "2.0", "method": "job", "params": self._job_for(miner)}
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await miner.send(note)
            self.stats.jobs_pushed += 1

    def _job_for(self, miner: Miner) -> dict[str, Any]:
        job = self.jobs.current.params()
        job["id"] = miner.session
        if self.vardiff:
            if not miner.difficulty:
                miner.difficulty = self.start_difficulty
            job["target"] = target_for_difficulty(miner.difficulty)
        miner.known_jobs.add(job["job_id"])
        return job

    def next_gap(self) -> float:
        """Seconds until the next job: ``job_interval``, varied by up to ``job_jitter`` of it."""
        if not self.job_jitter:
            return self.job_interval
        spread = self.job_interval * self.job_jitter
        return max(0.5, self.job_interval + self._rhythm.uniform(-spread, spread))

    async def push_jobs(self) -> None:
        """Every ``job_interval`` seconds (give or take the jitter), announce a new job."""
        while True:
            await asyncio.sleep(self.next_gap())
            self.jobs.next()
            for miner in list(self._miners.values()):
                if not miner.logged_in:
                    continue
                await self._maybe_retarget(miner, push=False)
                note = {"jsonrpc": "2.0", "method": "job", "params": self._job_for(miner)}
                with contextlib.suppress(ConnectionError, ssl.SSLError):
                    await miner.send(note)
                    self.stats.jobs_pushed += 1

    async def close_all(self) -> None:
        for miner in list(self._miners.values()):
            miner.writer.close()


def _result(rid: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"id": rid, "jsonrpc": "2.0", "error": None, "result": result}


def _error(rid: Any, code: int, message: str) -> dict[str, Any]:
    return {"id": rid, "jsonrpc": "2.0", "error": {"code": code, "message": message}}


def target_for_difficulty(difficulty: int) -> str:
    """The compact share target (32 bits, little-endian hex) a pool sends for a difficulty.

    >>> target_for_difficulty(256)
    'ffffff00'
    """
    if difficulty < 1:
        raise ValueError("difficulty must be at least 1")
    value = 0xFFFFFFFF // difficulty
    return value.to_bytes(4, "little").hex()


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side TLS context from a PEM certificate chain and key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def serve(args: argparse.Namespace) -> PoolStats:
    jobs = JobSource(args.seed, args.target, args.height)
    start = args.difficulty or 0xFFFFFFFF // int.from_bytes(bytes.fromhex(args.target), "little")
    pool = StratumPool(jobs, args.job_interval, args.job_jitter, args.seed, args.vardiff, start)
    context = tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    server = await asyncio.start_server(
        pool.handle, args.host, args.port, limit=MAX_LINE * 2, ssl=context
    )
    port = int(server.sockets[0].getsockname()[1])
    pool.stats.port = port
    print(port, flush=True)
    log.info(
        "listening on %s:%d%s, target %s, new job every %.1f s (jitter %.0f %%)",
        args.host,
        port,
        " (TLS)" if context else "",
        args.target,
        args.job_interval,
        args.job_jitter * 100,
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
    if args.stats:
        # Written here rather than after asyncio.run(): closing a TLS connection whose peer never
        # answers close_notify can hold up the loop's shutdown until we are killed.
        args.stats.write_text(json.dumps(asdict(pool.stats), indent=2) + "\n")
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
    parser.add_argument(
        "--difficulty",
        type=int,
        help="share difficulty; sets --target to (2^32-1)/difficulty (e.g. 256 -> ffffff00)",
    )
    parser.add_argument(
        "--job-jitter",
        type=float,
        default=0.0,
        help="vary each gap between jobs by up to this fraction of --job-interval, "
        "0 to 0.9 (default 0: a fixed rhythm)",
    )
    parser.add_argument(
        "--vardiff",
        type=float,
        default=0.0,
        help="retarget each miner to a share about every this many seconds "
        "(default 0: fixed difficulty)",
    )
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate (chain): serve over TLS")
    parser.add_argument("--tls-key", type=Path, help="PEM private key for --tls-cert")
    parser.add_argument("--stats", type=Path, help="write what the pool saw here as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    args = parser.parse_args(argv)
    if args.difficulty is not None:
        if args.difficulty < 1:
            parser.error("--difficulty must be at least 1")
        args.target = target_for_difficulty(args.difficulty)
    if not re.fullmatch(r"[0-9a-f]{8}", args.target):
        parser.error("--target must be 8 lower-case hex digits, e.g. ffffff00")
    if args.job_interval <= 0:
        parser.error("--job-interval must be positive")
    if not 0 <= args.job_jitter <= 0.9:
        parser.error("--job-jitter must be between 0 and 0.9")
    if args.vardiff < 0:
        parser.error("--vardiff must not be negative")
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if not is_loopback(args.host):
        parser.error("--host must be a loopback address such as 127.0.0.1 or ::1")
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(message)s",
    )
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
