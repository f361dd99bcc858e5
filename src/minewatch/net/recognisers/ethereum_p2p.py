"""Ethereum devp2p: node discovery v4 over UDP and the RLPx handshake over TCP. A lawful node.

Discovery v4 datagrams are ``keccak256(rest) || signature(65) || type || RLP list``; the hash is
checked, so random datagrams never match. RLPx opens with an ECIES ``auth`` message (EIP-8:
2-byte size prefix, then an uncompressed secp256k1 point ``0x04 || x || y``; legacy: exactly
307 bytes) answered by an ``ack`` of the same shape; the point is checked to lie on the curve.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from minewatch.findings import Verdict
from minewatch.net.flows import Conversation
from minewatch.net.recognisers._keccak import keccak256
from minewatch.net.recognisers.base import Recogniser, Recognition, register
from minewatch.net.screening import HeadView

__all__ = ["EthereumP2PRecogniser"]

_DISCV4_TYPES = {
    1: "ping",
    2: "pong",
    3: "findnode",
    4: "neighbors",
    5: "enrRequest",
    6: "enrResponse",
}
DISCOVERY_PORT = 30303
_SECP256K1_P = 2**256 - 2**32 - 977
_LEGACY_AUTH, _LEGACY_ACK = 307, 210


def _discv4_type(datagram: bytes) -> int | None:
    if len(datagram) < 99 or datagram[97] not in _DISCV4_TYPES or datagram[98] < 0xC0:
        return None
    return datagram[97] if keccak256(datagram[32:]) == datagram[:32] else None


def _on_curve(point: bytes) -> bool:
    """Whether 64 bytes are the x, y coordinates of a point of secp256k1."""
    x, y = int.from_bytes(point[:32], "big"), int.from_bytes(point[32:64], "big")
    if x >= _SECP256K1_P or y >= _SECP256K1_P:
        return False
    return (y * y - x * x * x - 7) % _SECP256K1_P == 0


def _rlpx_message(stream: bytes) -> str | None:
    if len(stream) >= 2 + 65 + 16 + 32 and stream[2] == 0x04:
        size = int.from_bytes(stream[:2], "big")
        if size + 2 >= 2 + 65 + 16 + 32 and _on_curve(stream[3:67]):
            return "EIP-8"
    # Legacy messages have fixed sizes (auth 307, ack 210 bytes) but encrypted frames follow at
    # once, so the head is longer; the on-curve check is what rules out other data.
    if len(stream) >= _LEGACY_ACK and stream[0] == 0x04 and _on_curve(stream[1:65]):
        return "legacy"
    return None


@register
class EthereumP2PRecogniser(Recogniser):
    """Ethereum execution-layer node traffic (geth, Nethermind, Erigon, ...)."""

    name = "ethereum-p2p"
    protocols: ClassVar[tuple[str, ...]] = ("ethereum-p2p",)

    def screen(self, view: HeadView) -> np.ndarray:
        c = view.col
        discv4 = ~view.is_tcp & (view.first_len >= 99) & (c(97) >= 1) & (c(97) <= 6)
        discv4 &= c(98) >= 0xC0
        # EIP-8: the size prefix counts the rest of the auth message, which is in the head.
        auth_size = (c(0) << 8 | c(1)) + 2
        eip8 = view.is_tcp & (c(2) == 0x04) & (auth_size >= 115) & (auth_size <= view.total_len)
        sizes = (_LEGACY_AUTH, _LEGACY_ACK)
        legacy_size = np.isin(view.first_len, sizes) | np.isin(view.total_len, sizes)
        legacy = view.is_tcp & (c(0) == 0x04) & legacy_size
        return np.asarray(discv4 | eip8 | legacy)

    def recognise(self, conv: Conversation) -> Recognition | None:
        if conv.transport == "udp":
            return self._discovery(conv)
        auth, ack = _rlpx_message(conv.fwd), _rlpx_message(conv.rev)
        if auth is None:
            return None
        evidence = [f"RLPx {auth} auth: ECIES message with a valid secp256k1 ephemeral key"]
        if ack:
            evidence.append(f"RLPx {ack} ack of the same form; the rest is encrypted frames")
        evidence.append("node-to-node sync, no mining work exchanged")
        return Recognition(
            protocol="ethereum-p2p",
            verdict=Verdict.BLOCKCHAIN_NODE,
            confidence=0.97 if ack else 0.85,
            evidence=evidence,
            coin="eth",
            answered=ack is not None,
        )

    def _discovery(self, conv: Conversation) -> Recognition | None:
        types = [
            t
            for t in (_discv4_type(d) for d in conv.fwd_segments[:4] + conv.rev_segments[:4])
            if t is not None
        ]
        if not types:
            return None
        names = ", ".join(dict.fromkeys(_DISCV4_TYPES[t] for t in types))
        return Recognition(
            protocol="ethereum-p2p",
            verdict=Verdict.BLOCKCHAIN_NODE,
            confidence=0.99,
            evidence=[
                f"discovery v4 packets ({names}) with valid keccak256 hash",
                "node discovery, no mining work exchanged",
            ],
            coin="eth",
            answered=bool(conv.rev_segments),
            # Discovery is symmetric; by convention the peer on the default discovery port is
            # reported as the server, whichever side sent first.
            client_is_initiator=not (
                conv.initiator_port == DISCOVERY_PORT and conv.responder_port != DISCOVERY_PORT
            ),
        )
