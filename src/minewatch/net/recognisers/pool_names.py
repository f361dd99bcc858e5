"""Pool identification by name: TLS SNI and DNS look-ups checked against the pool list.

A miner that speaks Stratum over TLS hides its protocol but not, usually, the pool's name: it is
in the ClientHello's server_name and in the DNS query made just before. The names are matched
against :class:`~minewatch.intel.pools.PoolIntel` (a data file with source and date per entry).
Addresses inside CDN or shared-hosting ranges are never tied to a pool, since other sites sit
behind them.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from minewatch.findings import Verdict
from minewatch.intel.pools import PoolEntry, PoolIntel
from minewatch.net.dissect.dns import RecordType, parse_dns, question_name
from minewatch.net.dissect.tls import client_hello_server_name
from minewatch.net.flows import Conversation
from minewatch.net.recognisers.base import Recogniser, Recognition, register
from minewatch.net.recognisers.coins import coin_from_host
from minewatch.net.screening import HeadView

__all__ = ["PoolDnsRecogniser", "PoolSniRecogniser", "coin_of_pool"]

_PROTOCOL_OF_SERVICE = {"stratum": "stratum-tls", "coinhive-websocket": "coinhive-websocket"}


def coin_of_pool(host: str, entry: PoolEntry) -> str | None:
    """The coin a pool host name implies: a ticker label, else the pool's only coin."""
    return coin_from_host(host) or (entry.coins[0] if len(entry.coins) == 1 else None)


@register
class PoolSniRecogniser(Recogniser):
    """TLS connections whose ClientHello names a known mining pool."""

    name = "pool-sni"
    protocols: ClassVar[tuple[str, ...]] = ("stratum-tls", "coinhive-websocket")

    def screen(self, view: HeadView) -> np.ndarray:
        c = view.col
        return np.asarray(
            view.is_tcp & view.from_initiator & (c(0) == 0x16) & (c(1) == 3) & (c(5) == 1)
        )

    def recognise(self, conv: Conversation) -> Recognition | None:
        if conv.transport != "tcp" or not conv.fwd.startswith(b"\x16\x03"):
            return None
        sni = client_hello_server_name(conv.fwd)
        if not sni:
            return None
        entry = PoolIntel.bundled().match_domain(sni)
        if entry is None:
            return None
        protocol = _PROTOCOL_OF_SERVICE.get(entry.protocol, "stratum-tls")
        return Recognition(
            protocol=protocol,
            verdict=Verdict.MINING,
            confidence=0.9,
            evidence=[
                f"TLS server name {sni} belongs to mining pool {entry.pool}",
                f"pool list entry {entry.domain} ({entry.source}, {entry.date.isoformat()})",
                "payload encrypted: protocol taken from the pool's service",
            ],
            coin=coin_of_pool(sni, entry),
            answered=bool(conv.rev),
            server_name=sni,
            pool=entry.pool,
        )


@register
class PoolDnsRecogniser(Recogniser):
    """DNS look-ups of known mining-pool names (reported when no connection to the pool is seen)."""

    name = "pool-dns"
    protocols: ClassVar[tuple[str, ...]] = ("pool-dns",)

    def screen(self, view: HeadView) -> np.ndarray:
        c = view.col
        # DNS header: opcode 0 (query), 1-4 questions; port-independent, so mDNS/LLMNR pass too.
        return np.asarray(
            ~view.is_tcp & ((c(2) & 0x78) == 0) & (c(4) == 0) & (c(5) >= 1) & (c(5) <= 4)
        )

    def recognise(self, conv: Conversation) -> Recognition | None:
        if conv.transport != "udp":
            return None
        intel = PoolIntel.bundled()
        question: str | None = None
        entry: PoolEntry | None = None
        resolved: list[str] = []
        cdn: list[str] = []
        datagrams = conv.fwd_segments[:4] + conv.rev_segments[:4]
        names = (question_name(d) for d in datagrams)
        if not any(name and intel.match_domain(name) for name in names):
            return None  # most look-ups: a first glance at the question is enough
        for datagram in datagrams:
            msg = parse_dns(datagram)
            if msg is None:
                continue
            for name in msg.questions:
                found = intel.match_domain(name)
                if found is not None:
                    question, entry = name, found
            for answer in msg.answers:
                if answer.rtype in (RecordType.A, RecordType.AAAA):
                    target = cdn if intel.is_cdn(answer.value) else resolved
                    if answer.value not in target:
                        target.append(answer.value)
        if entry is None or question is None:
            return None
        evidence = [
            f"looked up {question}, a name of mining pool {entry.pool}",
            f"pool list entry {entry.domain} ({entry.source}, {entry.date.isoformat()})",
        ]
        if resolved:
            evidence.append("resolved to " + ", ".join(resolved[:6]))
        if cdn:
            evidence.append(
                "CDN/shared-hosting answers not tied to the pool: " + ", ".join(cdn[:4])
            )
        return Recognition(
            protocol="pool-dns",
            verdict=Verdict.MINING,
            confidence=0.6,
            evidence=evidence,
            coin=coin_of_pool(question, entry),
            answered=bool(resolved),
            server_name=question,
            pool=entry.pool,
            resolved=tuple(resolved),
        )
