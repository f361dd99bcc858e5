"""One read-only inspection of the running host: every registered probe over one snapshot.

The snapshot (processes, their CPU over a short window, sockets, huge pages) is taken once and
shared, so probes agree about what was running. A probe that fails is reported as a blind spot and
the others still run: an agent that dies on one unreadable file would report nothing at all.

Example::

    >>> result = scan_host([], probes=[], sample_seconds=0.0)
    >>> result.findings, bool(result.hostname)
    ([], True)
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from minewatch.findings import Verdict
from minewatch.host.model import PROBES, HostFinding, HostProbe

__all__ = [
    "BUILTIN_PROBE_MODULES",
    "HostScanResult",
    "load_builtin_probes",
    "merge_process_findings",
    "scan_host",
]

log = logging.getLogger("minewatch.agent")

BUILTIN_PROBE_MODULES = (
    "minewatch.host.pow_probes",
    "minewatch.host.storage.chia",
    "minewatch.host.storage.filecoin",
    "minewatch.host.gpu.probe",
)
"""Modules whose import registers the shipped probes."""

_VERDICT_ORDER = {Verdict.MINING: 0, Verdict.STORAGE_MINING: 1, Verdict.BLOCKCHAIN_NODE: 2}


@dataclass(slots=True)
class HostScanResult:
    """What one scan found, and what it could not see."""

    hostname: str
    scanned_at: dt.datetime
    findings: list[HostFinding] = field(default_factory=list)
    blind_spots: list[str] = field(default_factory=list)


def merge_process_findings(findings: list[HostFinding]) -> list[HostFinding]:
    """One finding per process and verdict, however many probes saw it.

    A named xmrig is seen by its name, its binary and its pool socket: an inspector wants one
    line with all three reasons, and independent reasons make the verdict surer. Confidence
    combines as independent evidence (1 - prod(1 - c)), capped below certainty.
    """
    merged: dict[tuple[int, str], HostFinding] = {}
    out: list[HostFinding] = []
    for finding in sorted(findings, key=lambda f: -f.confidence):
        if finding.pid is None:
            out.append(finding)
            continue
        key = (finding.pid, str(finding.verdict))
        first = merged.get(key)
        if first is None:
            merged[key] = HostFinding(
                verdict=finding.verdict,
                kind=finding.kind,
                entity=finding.entity,
                coin=finding.coin,
                confidence=finding.confidence,
                evidence=list(finding.evidence),
                capacity_bytes=finding.capacity_bytes,
                count=finding.count,
                pid=finding.pid,
                path=finding.path,
                hostname=finding.hostname,
            )
            out.append(merged[key])
            continue
        first.evidence.extend(e for e in finding.evidence if e not in first.evidence)
        first.coin = first.coin or finding.coin
        first.path = first.path or finding.path
        doubt = (1.0 - first.confidence) * (1.0 - finding.confidence)
        first.confidence = min(1.0 - doubt, 0.999)
    return out


def load_builtin_probes() -> dict[str, type[HostProbe]]:
    """Import the shipped probe modules (registering them) and return the registry."""
    for module in BUILTIN_PROBE_MODULES:
        importlib.import_module(module)
    return PROBES


def scan_host(
    paths: Sequence[Path] = (),
    *,
    probes: Sequence[HostProbe] | None = None,
    sample_seconds: float = 1.0,
    progress: Callable[[str], None] | None = None,
) -> HostScanResult:
    """Snapshot the host, run ``probes`` (default: every registered probe) and collect results.

    ``paths`` are the directories to inspect for stored plots, sectors and binaries; empty means
    the probes' defaults (the mounted block-device file systems).
    """
    from minewatch.host.processes import build_snapshot

    if probes is None:
        probes = [cls() for cls in load_builtin_probes().values()]
    started = dt.datetime.now(dt.UTC)
    snapshot = build_snapshot(list(paths), sample_seconds=sample_seconds)
    result = HostScanResult(snapshot.hostname, started, blind_spots=list(snapshot.blind_spots))
    for probe in probes:
        if progress is not None:
            progress(probe.name)
        try:
            answer = probe.scan(snapshot)
        except Exception as exc:  # one broken probe must not blind the others
            log.warning("probe %s failed: %s", probe.name, exc)
            result.blind_spots.append(f"probe {probe.name} failed: {type(exc).__name__}: {exc}")
            continue
        result.findings.extend(answer.findings)
        result.blind_spots.extend(answer.blind_spots)
    # Probes walking the same roots report the same unreadable places; say each once.
    result.blind_spots = list(dict.fromkeys(result.blind_spots))
    result.findings = merge_process_findings(result.findings)
    for finding in result.findings:
        finding.hostname = finding.hostname or result.hostname
    result.findings.sort(key=lambda f: (_VERDICT_ORDER.get(f.verdict, 9), -f.confidence, f.entity))
    return result
