"""Scan capture files: read, decode, group, recognise, and merge into findings.

One finding per conversation key ``(client_ip, server_ip, server_port, transport)``: a miner that
reconnects to its pool fifty times is one finding with ``connections=50``. When one client tried
several protocols on one server (cgminer tries getblocktemplate, then getwork, then Stratum), the
finding reports the protocol the server answered, the others in ``other_protocols``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minewatch.errors import CaptureError
from minewatch.findings import Finding, Verdict
from minewatch.net.capture.decode import PacketHeaders, decode_headers
from minewatch.net.capture.reader import PacketTable, looks_like_capture, read_capture
from minewatch.net.flows import Conversation, conversations
from minewatch.net.recognisers import RecogniserSet, Recognition

__all__ = [
    "FileProblem",
    "HeadersCallback",
    "ProgressCallback",
    "ScanReport",
    "collect_capture_files",
    "disk_size",
    "expand_inputs",
    "scan_paths",
]

_CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".dmp", ".pcap.gz", ".pcapng.gz", ".gz")


@dataclass(slots=True, frozen=True)
class FileProblem:
    """A file that could not be (fully) scanned, with the reason in plain words."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(slots=True)
class ScanReport:
    """What one scan produced."""

    findings: list[Finding] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    files: int = 0
    packets: int = 0
    bytes: int = 0


ProgressCallback = Callable[[str, int], None]
"""Called with (file path, bytes of it newly done) as a scan advances, for progress bars; the
bytes of one file add up to its size on disk."""
HeadersCallback = Callable[[PacketHeaders], None]
"""Called with each capture's decoded packets (see :func:`scan_paths`)."""


def expand_inputs(
    paths: Iterable[str | Path], wanted: Callable[[Path], bool]
) -> tuple[list[Path], list[FileProblem]]:
    """Files named as given, and the files of named directories (recursively, in name order)
    that ``wanted`` accepts; a path that does not exist is a problem, not an exception."""
    files: list[Path] = []
    problems: list[FileProblem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs.sort()
                files.extend(
                    child for child in (Path(root) / n for n in sorted(names)) if wanted(child)
                )
        elif path.exists():
            files.append(path)
        else:
            problems.append(FileProblem(str(path), "no such file or directory"))
    return files, problems


def collect_capture_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileProblem]]:
    """Expand directories (recursively, capture-looking files only) and keep files as given."""
    return expand_inputs(
        paths, lambda f: f.name.lower().endswith(_CAPTURE_SUFFIXES) or _has_capture_magic(f)
    )


def _has_capture_magic(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return looks_like_capture(fh.read(4))
    except OSError:
        return False


@dataclass(slots=True)
class _Seen:
    """One recognised group of alike conversations (see :func:`_recognised`)."""

    conv: Conversation
    found: Recognition
    source: str
    connections: int
    packets: int
    fwd_bytes: int
    rev_bytes: int
    first_ns: int
    last_ns: int


def _recognised(
    table: PacketTable,
    recognisers: RecogniserSet,
    done: Callable[[float], None],
    on_headers: HeadersCallback | None = None,
) -> Iterator[_Seen]:
    """Recognise the candidate conversations of one capture.

    Conversations between the same two hosts and server port whose heads hold the same protocol
    tokens each way (a miner reconnecting, a prober retrying) speak the same protocol, so the
    recognisers look at the earliest of each such group and the group is counted as a whole.
    Conversations claimed by a binary screen are always looked at one by one. ``done`` is told
    the fraction of the work finished: half once the bulk stages ran, the rest as groups are
    looked at.
    """
    headers = decode_headers(table)
    if on_headers is not None:
        on_headers(headers)
    convs = conversations(headers, recognisers)
    done(0.5)
    n = len(convs)
    if n == 0:
        return
    rows = np.arange(n)
    alone = np.where(convs.screened != 0, rows, -1)
    order = np.lexsort(
        (
            rows,
            alone,
            convs.rev_tokens,
            convs.fwd_tokens,
            convs.is_tcp,
            convs.res_port,
            convs.res_lo,
            convs.res_hi,
            convs.ini_lo,
            convs.ini_hi,
        )
    )
    columns = (
        convs.ini_hi, convs.ini_lo, convs.res_hi, convs.res_lo, convs.res_port, convs.is_tcp,
        convs.fwd_tokens, convs.rev_tokens, alone,
    )  # fmt: skip
    new = np.zeros(n, dtype=bool)
    new[0] = True
    for col in columns:
        c = col[order]
        new[1:] |= c[1:] != c[:-1]
    starts = np.flatnonzero(new)
    reps = order[starts]  # lexsort is stable and rows are in time order: the earliest
    count = np.diff(np.append(starts, n))
    sums = {
        name: np.add.reduceat(getattr(convs, name)[order], starts)
        for name in ("packets", "fwd_bytes", "rev_bytes")
    }
    first = np.minimum.reduceat(convs.first_ns[order], starts)
    last = np.maximum.reduceat(convs.last_ns[order], starts)
    token_bits = (convs.fwd_tokens[reps] | convs.rev_tokens[reps]).tolist()
    screen_bits = convs.screened[reps].tolist()
    step = max(1, reps.shape[0] // 20)
    for g, conv in enumerate(convs.conversations(reps)):
        if g % step == step - 1:
            done(0.5 + 0.5 * g / reps.shape[0])
        found = recognisers.recognise(conv, token_bits[g], screen_bits[g])
        if found is None:
            continue
        yield _Seen(
            conv=conv,
            found=found,
            source=table.path,
            connections=int(count[g]),
            packets=int(sums["packets"][g]),
            fwd_bytes=int(sums["fwd_bytes"][g]),
            rev_bytes=int(sums["rev_bytes"][g]),
            first_ns=int(first[g]),
            last_ns=int(last[g]),
        )


def _key(seen: _Seen) -> tuple[str, str, int, str]:
    c, r = seen.conv, seen.found
    if r.client_is_initiator:
        return (c.initiator_ip, c.responder_ip, c.responder_port, c.transport)
    return (c.responder_ip, c.initiator_ip, c.initiator_port, c.transport)


def _merge(group: list[_Seen]) -> Finding:
    # What the client settled on: the protocol the server answered, the latest such when a pool
    # answered several (p2pool answers getwork and points to its Stratum port); failing any
    # answer, the protocol tried first. Mining outranks node traffic under the same key.
    best = min(
        group,
        key=lambda s: (
            not s.found.answered,
            s.found.verdict != Verdict.MINING,
            -s.last_ns if s.found.answered else s.first_ns,
        ),
    )
    client_ip, server_ip, server_port, transport = _key(best)
    mine = [s for s in group if s.found.protocol == best.found.protocol]
    to_server = sum(s.fwd_bytes if s.found.client_is_initiator else s.rev_bytes for s in group)
    to_client = sum(s.rev_bytes if s.found.client_is_initiator else s.fwd_bytes for s in group)
    coin = best.found.coin or next((s.found.coin for s in group if s.found.coin), None)
    connections = sum(s.connections for s in group)
    evidence = list(best.found.evidence)
    if connections > 1:
        evidence.append(f"{connections} connections")
    return Finding(
        verdict=best.found.verdict,
        protocol=best.found.protocol,
        client_ip=client_ip,
        server_ip=server_ip,
        server_port=server_port,
        transport=transport,
        coin=coin,
        confidence=max(s.found.confidence for s in mine),
        first_seen_ns=min(s.first_ns for s in group),
        last_seen_ns=max(s.last_ns for s in group),
        evidence=evidence,
        server_name=best.found.server_name,
        pool=best.found.pool,
        connections=connections,
        packets=sum(s.packets for s in group),
        bytes_to_server=to_server,
        bytes_to_client=to_client,
        other_protocols=sorted({s.found.protocol for s in group} - {best.found.protocol}),
        sources=sorted({s.source for s in group}),
    )


def disk_size(path: Path) -> int:
    """Size of a file on disk (0 when it cannot be read): the unit of scan progress."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _resolved(group: list[_Seen]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(a for s in group for a in s.found.resolved))


def _attach_pool_lookups(merged: list[tuple[Finding, tuple[str, ...]]]) -> list[Finding]:
    """Tie DNS look-ups of pool names to the connections made to the addresses they returned.

    A connection to such an address gains the pool's name (and coin, if nothing else said it);
    a look-up whose client then connected to the pool is folded into that finding, and only
    look-ups without a visible connection remain findings of their own (``pool-dns``).
    """
    lookups = [(f, addrs) for f, addrs in merged if f.protocol == "pool-dns"]
    others = [f for f, _ in merged if f.protocol != "pool-dns"]
    by_address: dict[str, Finding] = {}
    for found, addrs in lookups:
        for addr in addrs:
            by_address.setdefault(addr, found)
    consumed: set[int] = set()
    for f in others:
        lookup = by_address.get(f.server_ip)
        if lookup is None:
            continue
        if lookup.client_ip == f.client_ip:
            consumed.add(id(lookup))
        if f.server_name is None:
            f.server_name = lookup.server_name
            f.pool = f.pool or lookup.pool
            f.coin = f.coin or lookup.coin
            f.evidence.append(
                f"server address was resolved from pool name {lookup.server_name} ({lookup.pool})"
            )
    return others + [f for f, _ in lookups if id(f) not in consumed]


def scan_paths(
    paths: Iterable[str | Path],
    recognisers: RecogniserSet | None = None,
    progress: ProgressCallback | None = None,
    on_headers: HeadersCallback | None = None,
) -> ScanReport:
    """Scan capture files and directories; unreadable files become problems, not exceptions.

    ``on_headers`` is given each file's decoded packets, so another detector (the flow-behaviour
    model) can work from the same read instead of reading every capture twice.
    """
    recognisers = recognisers or RecogniserSet()
    files, problems = collect_capture_files(paths)
    report = ScanReport(problems=problems)
    groups: dict[tuple[str, str, int, str], list[_Seen]] = {}
    for path in files:
        budget = disk_size(path)
        reported = 0

        def done(fraction: float, path: Path = path, budget: int = budget) -> None:
            nonlocal reported
            now = int(budget * min(fraction, 1.0))
            if progress is not None and now > reported:
                progress(str(path), now - reported)
            reported = max(reported, now)

        try:
            table = read_capture(path)
            for seen in _recognised(table, recognisers, done, on_headers):
                groups.setdefault(_key(seen), []).append(seen)
            report.files += 1
            report.packets += len(table)
            report.bytes += int(table.buf.shape[0])
            if table.problem:
                report.problems.append(FileProblem(str(path), table.problem))
        except CaptureError as exc:
            report.problems.append(FileProblem(exc.path, exc.reason))
        done(1.0)
    merged = [(_merge(g), _resolved(g)) for g in groups.values()]
    report.findings = sorted(
        _attach_pool_lookups(merged),
        key=lambda f: (f.first_seen_ns, f.client_ip, f.server_ip, f.server_port),
    )
    return report
