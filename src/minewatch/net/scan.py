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

from minewatch.errors import CaptureError
from minewatch.findings import Finding, Verdict
from minewatch.net.capture.decode import decode_headers
from minewatch.net.capture.reader import PacketTable, looks_like_capture, read_capture
from minewatch.net.flows import Conversation, conversations
from minewatch.net.recognisers import Recognition, RecogniserSet

__all__ = ["FileProblem", "ScanReport", "collect_capture_files", "scan_paths"]

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
"""Called with (file path, bytes) after each file, for progress bars."""


def collect_capture_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileProblem]]:
    """Expand directories (recursively, capture-looking files only) and keep files as given."""
    files: list[Path] = []
    problems: list[FileProblem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    child = Path(root) / name
                    if name.lower().endswith(_CAPTURE_SUFFIXES) or _has_capture_magic(child):
                        files.append(child)
        elif path.exists():
            files.append(path)
        else:
            problems.append(FileProblem(str(path), "no such file or directory"))
    return files, problems


def _has_capture_magic(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return looks_like_capture(fh.read(4))
    except OSError:
        return False


@dataclass(slots=True)
class _Seen:
    conv: Conversation
    found: Recognition
    source: str


def _recognised(
    table: PacketTable, recognisers: RecogniserSet
) -> Iterator[tuple[Conversation, Recognition]]:
    headers = decode_headers(table)
    for conv in conversations(headers, recognisers):
        found = recognisers.recognise(conv)
        if found is not None:
            yield conv, found


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
            -s.conv.last_ns if s.found.answered else s.conv.first_ns,
        ),
    )
    client_ip, server_ip, server_port, transport = _key(best)
    mine = [s for s in group if s.found.protocol == best.found.protocol]
    to_server = sum(
        s.conv.fwd_bytes if s.found.client_is_initiator else s.conv.rev_bytes for s in group
    )
    to_client = sum(
        s.conv.rev_bytes if s.found.client_is_initiator else s.conv.fwd_bytes for s in group
    )
    coin = best.found.coin or next((s.found.coin for s in group if s.found.coin), None)
    evidence = list(best.found.evidence)
    if len(group) > 1:
        evidence.append(f"{len(group)} connections")
    return Finding(
        verdict=best.found.verdict,
        protocol=best.found.protocol,
        client_ip=client_ip,
        server_ip=server_ip,
        server_port=server_port,
        transport=transport,
        coin=coin,
        confidence=max(s.found.confidence for s in mine),
        first_seen_ns=min(s.conv.first_ns for s in group),
        last_seen_ns=max(s.conv.last_ns for s in group),
        evidence=evidence,
        server_name=best.found.server_name,
        connections=len(group),
        packets=sum(s.conv.packets for s in group),
        bytes_to_server=to_server,
        bytes_to_client=to_client,
        other_protocols=sorted({s.found.protocol for s in group} - {best.found.protocol}),
        sources=sorted({s.source for s in group}),
    )


def scan_paths(
    paths: Iterable[str | Path],
    recognisers: RecogniserSet | None = None,
    progress: ProgressCallback | None = None,
) -> ScanReport:
    """Scan capture files and directories; unreadable files become problems, not exceptions."""
    recognisers = recognisers or RecogniserSet()
    files, problems = collect_capture_files(paths)
    report = ScanReport(problems=problems)
    groups: dict[tuple[str, str, int, str], list[_Seen]] = {}
    for path in files:
        size = 0
        try:
            table = read_capture(path)
            size = int(table.buf.shape[0])
            for conv, found in _recognised(table, recognisers):
                seen = _Seen(conv, found, str(path))
                groups.setdefault(_key(seen), []).append(seen)
            report.files += 1
            report.packets += len(table)
            report.bytes += size
            if table.problem:
                report.problems.append(FileProblem(str(path), table.problem))
        except CaptureError as exc:
            report.problems.append(FileProblem(exc.path, exc.reason))
        if progress is not None:
            progress(str(path), size)
    report.findings = sorted(
        (_merge(g) for g in groups.values()),
        key=lambda f: (f.first_seen_ns, f.client_ip, f.server_ip, f.server_port),
    )
    return report
