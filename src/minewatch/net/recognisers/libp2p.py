"""libp2p multistream-select (IPFS, Filecoin and other libp2p nodes): a lawful node.

Both peers open with ``/multistream/1.0.0`` (uvarint-length-prefixed, newline-terminated) and
then propose protocols such as ``/noise``, ``/tls/1.0.0``, ``/yamux/1.0.0`` or ``/ipfs/...``;
Filecoin's own protocols start with ``/fil/``.
"""

from __future__ import annotations

import re
from typing import ClassVar

import numpy as np

from minewatch.findings import Verdict
from minewatch.net.flows import Conversation
from minewatch.net.recognisers.base import Recogniser, Recognition, register
from minewatch.net.screening import HeadView

__all__ = ["Libp2pRecogniser"]

_HELLO = b"\x13/multistream/1.0.0\n"
_PROTOCOL = re.compile(rb"(/[A-Za-z0-9._\-/]{1,80})\n")


@register
class Libp2pRecogniser(Recogniser):
    """libp2p connection setup (multistream-select 1.0)."""

    name = "libp2p"
    protocols: ClassVar[tuple[str, ...]] = ("libp2p",)

    def screen(self, view: HeadView) -> np.ndarray:
        # The length prefix 0x13 makes the head binary-looking, where text tokens are not
        # searched, so the header is matched here.
        hello = np.frombuffer(_HELLO, dtype=np.uint8)
        return np.asarray((view.head[:, : len(_HELLO)] == hello).all(axis=1))

    def recognise(self, conv: Conversation) -> Recognition | None:
        sides = [s for s in (conv.fwd, conv.rev) if s.startswith(_HELLO)]
        if not sides:
            return None
        proposed = []
        for stream in (conv.fwd, conv.rev):
            for m in _PROTOCOL.findall(stream[:512]):
                name = m.decode("ascii")
                if name != "/multistream/1.0.0" and name not in proposed:
                    proposed.append(name)
        filecoin = any(p.startswith("/fil/") for p in proposed)
        peers = "both peers" if len(sides) == 2 else "one peer"
        evidence = [f"multistream 1.0 negotiation header from {peers}"]
        if proposed:
            evidence.append("protocols negotiated: " + ", ".join(proposed[:6]))
        if filecoin:
            evidence.append("Filecoin protocol ids (/fil/...)")
        evidence.append("peer-to-peer content/chain exchange, no mining work exchanged")
        return Recognition(
            protocol="libp2p",
            verdict=Verdict.BLOCKCHAIN_NODE,
            confidence=0.97 if len(sides) == 2 else 0.85,
            evidence=evidence,
            coin="fil" if filecoin else None,
            answered=len(sides) == 2,
        )
