"""The finding contract shared by every detector.

A :class:`Finding` says what was seen (verdict, protocol, coin), about which entity (for the network
detectors a client/server conversation), when (first/last seen, UTC), how sure we are (confidence
0-1) and why (evidence strings a person can check against the capture). Detectors of every kind
(network, power, host) emit this one type so attribution, assessment and the ledger need no
per-detector code.

Example::

    >>> f = Finding(verdict=Verdict.MINING, protocol="stratum-v1", client_ip="10.0.0.5",
    ...             server_ip="192.0.2.7", server_port=3333, transport="tcp", coin="btc",
    ...             confidence=0.99, first_seen_ns=0, last_seen_ns=10**9,
    ...             evidence=["client sent mining.subscribe"])
    >>> f.to_dict()["first_seen"]
    '1970-01-01T00:00:00.000000Z'
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["Finding", "Verdict", "iso_utc"]


class Verdict(enum.StrEnum):
    """What a finding asserts about its entity."""

    MINING = "mining"
    """The entity mines (or relays mining work for) a cryptocurrency."""
    BLOCKCHAIN_NODE = "blockchain-node"
    """The entity runs a lawful blockchain node: crypto-related, but not mining."""
    STORAGE_MINING = "storage-mining"
    """The entity farms a proof-of-space/-storage coin (Chia plots, Filecoin sectors)."""


def iso_utc(ns: int) -> str:
    """Render nanoseconds since the Unix epoch as ISO-8601 UTC with microseconds and ``Z``."""
    seconds, rest = divmod(int(ns), 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rest // 1000)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class Finding:
    """One verdict about one conversation (network) or entity (other detectors)."""

    verdict: Verdict
    protocol: str
    client_ip: str
    server_ip: str
    server_port: int
    transport: str
    coin: str | None
    confidence: float
    first_seen_ns: int
    last_seen_ns: int
    evidence: list[str] = field(default_factory=list)
    detector: str = "net"
    pool: str | None = None
    server_name: str | None = None
    connections: int = 1
    packets: int = 0
    bytes_to_server: int = 0
    bytes_to_client: int = 0
    other_protocols: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must lie in [0, 1], got {self.confidence}")

    @property
    def key(self) -> tuple[str, str, int, str]:
        """The conversation key findings are merged and labelled by."""
        return (self.client_ip, self.server_ip, self.server_port, self.transport)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping; the field order is the documented output contract."""
        return {
            "verdict": str(self.verdict),
            "client_ip": self.client_ip,
            "server_ip": self.server_ip,
            "server_port": self.server_port,
            "transport": self.transport,
            "protocol": self.protocol,
            "coin": self.coin,
            "confidence": round(self.confidence, 3),
            "first_seen": iso_utc(self.first_seen_ns),
            "last_seen": iso_utc(self.last_seen_ns),
            "evidence": list(self.evidence),
            "pool": self.pool,
            "server_name": self.server_name,
            "connections": self.connections,
            "packets": self.packets,
            "bytes_to_server": self.bytes_to_server,
            "bytes_to_client": self.bytes_to_client,
            "other_protocols": list(self.other_protocols),
            "detector": self.detector,
            "sources": list(self.sources),
        }
