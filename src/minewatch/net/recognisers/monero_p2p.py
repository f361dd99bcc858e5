"""Monero (CryptoNote) peer-to-peer protocol over Levin: a lawful node, not a miner.

Levin frames open with the 8-byte signature ``0x0101010101012101`` (little endian); the
handshake's ``network_id`` tells Monero mainnet from other CryptoNote chains.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from minewatch.findings import Verdict
from minewatch.net.flows import Conversation
from minewatch.net.recognisers.base import Recogniser, Recognition, register
from minewatch.net.screening import HeadView

__all__ = ["MoneroP2PRecogniser"]

LEVIN_SIGNATURE = bytes.fromhex("0121010101010101")
MONERO_MAINNET_ID = bytes.fromhex("1230f171610441611731008216a1a110")
_COMMANDS = {
    1001: "handshake",
    1002: "timed sync",
    1003: "ping",
    1007: "support flags",
    2002: "new transactions",
    2003: "request objects",
    2004: "response objects",
    2006: "request chain",
    2007: "response chain entry",
    2008: "new fluffy block",
}


@register
class MoneroP2PRecogniser(Recogniser):
    """Levin-framed CryptoNote node traffic (monerod and relatives)."""

    name = "monero-p2p"
    protocols: ClassVar[tuple[str, ...]] = ("monero-p2p",)

    def screen(self, view: HeadView) -> np.ndarray:
        sig = np.frombuffer(LEVIN_SIGNATURE, dtype=np.uint8)
        return np.asarray((view.head[:, :8] == sig).all(axis=1))

    def recognise(self, conv: Conversation) -> Recognition | None:
        heads = [s for s in (conv.fwd, conv.rev) if s.startswith(LEVIN_SIGNATURE)]
        if not heads or len(heads[0]) < 33:
            return None
        command = int.from_bytes(heads[0][17:21], "little")
        evidence = ["Levin frame signature 01 21 01 01 01 01 01 01"]
        evidence.append(f"command {command} ({_COMMANDS.get(command, 'unknown')})")
        coin = None
        if any(MONERO_MAINNET_ID in s for s in (conv.fwd, conv.rev)):
            coin = "xmr"
            evidence.append("handshake carries the Monero mainnet network_id")
        evidence.append("peer-to-peer block/transaction relay, no mining work exchanged")
        return Recognition(
            protocol="monero-p2p",
            verdict=Verdict.BLOCKCHAIN_NODE,
            confidence=0.99 if len(heads) == 2 or coin else 0.9,
            evidence=evidence,
            coin=coin,
            answered=len(heads) == 2,
        )
