"""The host agent's contract: what a probe sees, what it reports, and how probes are registered.

A host scan takes one :class:`HostSnapshot` (the processes running now, read once) and the
directories to inspect, hands both to every registered :class:`HostProbe`, and collects their
:class:`HostFinding` objects and their *blind spots*: what a probe could not see (another user's
process without root, a directory it may not read, no NVML library). Blind spots are reported, not
hidden, because an agent that silently sees less than it claims would clear a host it never looked
at.

Adding a kind of host evidence is one new module with one :class:`HostProbe` subclass decorated
with :func:`register_probe`.

Example::

    >>> f = HostFinding(verdict=Verdict.MINING, kind="xmrig", entity="pid 42 /usr/bin/xmrig",
    ...                 coin="xmr", confidence=0.97, evidence=["process name is xmrig"], pid=42)
    >>> f.to_dict()["kind"], f.to_dict()["detector"]
    ('xmrig', 'host')
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from minewatch.findings import Verdict

__all__ = [
    "PROBES",
    "HostFinding",
    "HostProbe",
    "HostSnapshot",
    "ProbeOptions",
    "ProbeResult",
    "ProcessInfo",
    "register_probe",
]


@dataclass(slots=True)
class HostFinding:
    """One verdict about one thing on a host: a process, an executable, a directory of plots.

    ``entity`` names the thing the way an inspector would look for it (``pid 4242 /opt/x/xmrig``,
    ``/srv/plots``). Storage findings also carry ``capacity_bytes`` and ``count`` (plots, sectors).
    """

    verdict: Verdict
    kind: str
    entity: str
    coin: str | None
    confidence: float
    evidence: list[str] = field(default_factory=list)
    capacity_bytes: int | None = None
    count: int | None = None
    pid: int | None = None
    path: str | None = None
    hostname: str | None = None
    """The host it was found on (filled by the scan), so JSON lines from many hosts stay apart."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must lie in [0, 1], got {self.confidence}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping; the field order is the documented output contract."""
        return {
            "verdict": str(self.verdict),
            "kind": self.kind,
            "entity": self.entity,
            "coin": self.coin,
            "confidence": round(self.confidence, 3),
            "evidence": list(self.evidence),
            "capacity_bytes": self.capacity_bytes,
            "count": self.count,
            "pid": self.pid,
            "path": self.path,
            "hostname": self.hostname,
            "detector": "host",
        }


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """What the agent could read about one running process.

    Fields the agent was not allowed to read are ``None`` (or empty), never guessed; ``denied``
    lists which ones, so a probe can say what it could not check.
    """

    pid: int
    name: str
    exe: str | None
    cmdline: tuple[str, ...]
    username: str | None = None
    cpu_percent: float | None = None
    """CPU use over the snapshot's sampling window, 100 per fully busy core."""
    rss_bytes: int | None = None
    hugetlb_bytes: int | None = None
    """Huge-page memory mapped by the process (RandomX allocates ~2 GiB of it per NUMA node)."""
    remote_endpoints: tuple[tuple[str, int], ...] = ()
    """(address, port) of the process's established TCP/UDP peers."""
    listen_ports: tuple[int, ...] = ()
    denied: tuple[str, ...] = ()


@dataclass(slots=True)
class HostSnapshot:
    """Everything the probes share about one host at one moment."""

    hostname: str
    processes: list[ProcessInfo]
    cpu_count: int
    paths: list[Path]
    """Directories to inspect for storage mining and binaries."""
    blind_spots: list[str] = field(default_factory=list)
    """What the snapshot itself could not read (e.g. other users' processes without root)."""


@dataclass(slots=True)
class ProbeResult:
    """A probe's answer: its findings and what it could not see."""

    findings: list[HostFinding] = field(default_factory=list)
    blind_spots: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """Settings a scan hands to every probe; each probe reads the ones it understands."""

    sample_seconds: float = 2.0
    """How long CPU use is measured."""
    gpu_seconds: float = 10.0
    """How long GPU telemetry is sampled (a mining kernel's flatness needs several seconds)."""
    pool_addresses: frozenset[str] = frozenset()
    """Known pool IP addresses, e.g. from a list pushed down by national monitoring."""


class HostProbe(ABC):
    """Base class of every host probe; see the module docstring for the contract.

    Probes are read-only: they never write, signal or execute anything on the host, and bound the
    bytes they read (headers, not contents).
    """

    name: ClassVar[str]
    """Registry id, e.g. ``"miner-process"``."""

    @classmethod
    def from_options(cls, options: ProbeOptions) -> HostProbe:
        """The probe configured from a scan's options; the default ignores them."""
        return cls()

    @abstractmethod
    def scan(self, snapshot: HostSnapshot) -> ProbeResult:
        """Inspect the host as captured in ``snapshot`` and report."""


PROBES: dict[str, type[HostProbe]] = {}
"""All known probes by id, in registration order."""


P = TypeVar("P", bound=type[HostProbe])


def register_probe(cls: P) -> P:
    """Class decorator adding a probe to :data:`PROBES`; a duplicate id warns and is ignored."""
    if cls.name in PROBES and PROBES[cls.name] is not cls:
        warnings.warn(
            f"host probe id {cls.name!r} registered twice; keeping the first", stacklevel=2
        )
        return cls
    PROBES[cls.name] = cls
    return cls
