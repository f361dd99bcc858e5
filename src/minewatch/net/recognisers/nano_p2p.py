"""Nano node protocol: 8-byte header ``'R'``, network id, three version bytes, message type."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from minewatch.findings import Verdict
from minewatch.net.flows import Conversation
from minewatch.net.recognisers.base import Recogniser, Recognition, register
from minewatch.net.screening import HeadView

__all__ = ["NanoP2PRecogniser"]

_NETWORKS = {ord("A"): "test", ord("B"): "beta", ord("C"): "live", ord("X"): "dev"}
_MAX_MESSAGE_TYPE = 0x20


def _header_ok(b: bytes) -> bool:
    return (
        len(b) >= 8
        and b[0] == ord("R")
        and b[1] in _NETWORKS
        and b[2] >= b[3] >= b[4] > 0
        and b[2] < 64
        and 2 <= b[5] <= _MAX_MESSAGE_TYPE
    )


@register
class NanoP2PRecogniser(Recogniser):
    """Nano (formerly RaiBlocks) node-to-node traffic."""

    name = "nano-p2p"
    protocols: ClassVar[tuple[str, ...]] = ("nano-p2p",)

    def screen(self, view: HeadView) -> np.ndarray:
        c = view.col
        return np.asarray(
            (c(0) == ord("R"))
            & np.isin(c(1), list(_NETWORKS))
            & (c(2) >= c(3))
            & (c(3) >= c(4))
            & (c(4) > 0)
            & (c(2) < 64)
            & (c(5) >= 2)
            & (c(5) <= _MAX_MESSAGE_TYPE)
        )

    def recognise(self, conv: Conversation) -> Recognition | None:
        if not _header_ok(conv.fwd):
            return None
        both = _header_ok(conv.rev)
        if not both and conv.rev:
            return None
        network = _NETWORKS[conv.fwd[1]]
        return Recognition(
            protocol="nano-p2p",
            verdict=Verdict.BLOCKCHAIN_NODE,
            confidence=0.95 if both else 0.8,
            evidence=[
                f"Nano header 'R{chr(conv.fwd[1])}' ({network} network), versions "
                f"{conv.fwd[2]}/{conv.fwd[3]}/{conv.fwd[4]}, message type {conv.fwd[5]:#04x}",
                "Nano has no mining: peer-to-peer block relay",
            ],
            coin="nano",
            answered=both,
        )
