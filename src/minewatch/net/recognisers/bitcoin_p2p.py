"""Bitcoin-family peer-to-peer protocol: a lawful full node, not a miner.

Every message starts with the network's 4-byte magic and a NUL-padded ASCII command; a
connection opens with ``version``. The magic also names the chain.
"""

from __future__ import annotations

import re
from typing import ClassVar

import numpy as np

from minewatch.findings import Verdict
from minewatch.net.flows import Conversation
from minewatch.net.recognisers._orientation import ordered_unique
from minewatch.net.recognisers.base import Recogniser, Recognition, register
from minewatch.net.screening import HeadView

__all__ = ["NETWORK_MAGICS", "BitcoinP2PRecogniser"]

NETWORK_MAGICS: dict[bytes, tuple[str, str]] = {
    bytes.fromhex("f9beb4d9"): ("btc", "Bitcoin mainnet"),
    bytes.fromhex("0b110907"): ("btc", "Bitcoin testnet3"),
    bytes.fromhex("1c163f28"): ("btc", "Bitcoin testnet4"),
    bytes.fromhex("0a03cf40"): ("btc", "Bitcoin signet"),
    bytes.fromhex("fabfb5da"): ("btc", "Bitcoin regtest"),
    bytes.fromhex("e3e1f3e8"): ("bch", "Bitcoin Cash mainnet"),
    bytes.fromhex("fbc0b6db"): ("ltc", "Litecoin mainnet"),
    bytes.fromhex("c0c0c0c0"): ("doge", "Dogecoin mainnet"),
    bytes.fromhex("bf0c6bbd"): ("dash", "Dash mainnet"),
    bytes.fromhex("24e92764"): ("zec", "Zcash mainnet"),
}
_MAGIC_INTS = np.array([int.from_bytes(m, "big") for m in NETWORK_MAGICS], dtype=np.int64)
_COMMAND = re.compile(rb"([a-z]{2,12})\x00*")


def _commands(stream: bytes, magic: bytes) -> list[str]:
    out: list[str] = []
    pos = stream.find(magic)
    while pos >= 0 and len(out) < 64:
        m = _COMMAND.fullmatch(stream[pos + 4 : pos + 16])
        if m:
            out.append(m.group(1).decode())
        pos = stream.find(magic, pos + 4)
    return out


@register
class BitcoinP2PRecogniser(Recogniser):
    """Bitcoin, Bitcoin Cash, Litecoin, Dogecoin, Dash and Zcash node-to-node traffic."""

    name = "bitcoin-p2p"
    protocols: ClassVar[tuple[str, ...]] = ("bitcoin-p2p",)

    def screen(self, view: HeadView) -> np.ndarray:
        c = view.col
        magic = (c(0) << 24) | (c(1) << 16) | (c(2) << 8) | c(3)
        lower = (c(4) >= 0x61) & (c(4) <= 0x7A)
        return np.asarray(np.isin(magic, _MAGIC_INTS) & lower & (c(15) == 0))

    def recognise(self, conv: Conversation) -> Recognition | None:
        for stream in (conv.fwd, conv.rev):
            magic = stream[:4]
            if magic in NETWORK_MAGICS and _COMMAND.fullmatch(stream[4:16]):
                break
        else:
            return None
        coin, network = NETWORK_MAGICS[magic]
        commands = ordered_unique(_commands(conv.fwd, magic) + _commands(conv.rev, magic))
        both = conv.fwd[:4] == magic and conv.rev[:4] == magic
        return Recognition(
            protocol="bitcoin-p2p",
            verdict=Verdict.BLOCKCHAIN_NODE,
            confidence=0.99 if both and "version" in commands else 0.9,
            evidence=[
                f"network magic {magic.hex()} ({network})",
                "node messages " + ", ".join(commands[:10]),
                "peer-to-peer block/transaction relay, no mining work exchanged",
            ],
            coin=coin,
            answered=both,
        )
