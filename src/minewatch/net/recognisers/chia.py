"""Chia peer-to-peer traffic: a storage-mining (farming) node, recognised by its certificates.

Chia peers talk WebSocket over mutually authenticated TLS with certificates issued by the
network-wide "Chia CA" that every installation ships. Where the server's certificate flight is
visible (TLS 1.2), its issuer names that CA. Over TLS 1.3 the certificates are encrypted and this
recogniser stays silent rather than guess from port numbers.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from minewatch.findings import Verdict
from minewatch.net.dissect.tls import parse_server_certificate_names
from minewatch.net.flows import Conversation
from minewatch.net.recognisers.base import Recogniser, Recognition, register
from minewatch.net.screening import HeadView

__all__ = ["ChiaRecogniser"]

CHIA_CA = "Chia CA"


@register
class ChiaRecogniser(Recogniser):
    """Chia full-node / farmer peer connections (TLS with the Chia CA)."""

    name = "chia"
    protocols: ClassVar[tuple[str, ...]] = ("chia",)

    def screen(self, view: HeadView) -> np.ndarray:
        c = view.col
        server_hello = ~view.from_initiator & (c(0) == 0x16) & (c(1) == 3) & (c(5) == 2)
        return np.asarray(view.is_tcp & server_hello)

    def recognise(self, conv: Conversation) -> Recognition | None:
        if conv.transport != "tcp" or not conv.rev.startswith(b"\x16\x03"):
            return None
        if CHIA_CA.encode() not in conv.rev:  # the issuer's name is plain text in the DER
            return None
        certificates = parse_server_certificate_names(conv.rev)
        issued = [c for c in certificates if CHIA_CA in c.issuer_cn]
        if not issued:
            return None
        subjects = ", ".join(sorted({cn for c in issued for cn in c.subject_cn})) or "(none)"
        return Recognition(
            protocol="chia",
            verdict=Verdict.BLOCKCHAIN_NODE,
            confidence=0.95,
            evidence=[
                f"server certificate issued by {CHIA_CA!r} (subject {subjects})",
                "Chia peer protocol (WebSocket over mutual TLS); storage farming node",
            ],
            coin="xch",
            answered=True,
        )
