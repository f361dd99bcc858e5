"""Stratum V2: binary frames in clear, or the Noise NX handshake that encrypts them.

A frame header is ``extension_type u16 | msg_type u8 | msg_length u24`` (little endian). The
first message of a plain connection is ``SetupConnection`` (type 0x00: protocol 0-2, min and max
version 2, flags, then six length-prefixed strings: endpoint host, port, vendor, hardware,
firmware, device id), answered by ``SetupConnection.Success`` (0x01) or ``.Error`` (0x02).
Encrypted connections start with the Noise NX handshake: a 64-byte first client message (an
ElligatorSwift-encoded ephemeral key) and a 234-byte server reply (ephemeral key, encrypted
static key and certificate); both look random. Stratum V2 is specified for Bitcoin mining.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from minewatch.findings import Verdict
from minewatch.net.flows import Conversation
from minewatch.net.recognisers.base import Recogniser, Recognition, register
from minewatch.net.screening import HeadView

__all__ = ["StratumV2Recogniser"]

NOISE_CLIENT_HELLO = 64
NOISE_SERVER_REPLY = 234
_SUBPROTOCOLS = {0: "mining", 1: "job declaration", 2: "template distribution"}
_RESPONSES = {0x01: "SetupConnection.Success", 0x02: "SetupConnection.Error"}


def _setup_connection(stream: bytes) -> tuple[int, list[str]] | None:
    """(sub-protocol, strings) of a well-formed SetupConnection frame at ``stream`` start."""
    if len(stream) < 6 + 10 or stream[2] != 0x00:
        return None
    length = int.from_bytes(stream[3:6], "little")
    body = stream[6 : 6 + length]
    if len(body) != length or length < 10 + 6 + 2:
        return None
    protocol, min_v, max_v = (
        body[0],
        int.from_bytes(body[1:3], "little"),
        int.from_bytes(body[3:5], "little"),
    )
    if protocol not in _SUBPROTOCOLS or not 2 <= min_v <= max_v <= 16:
        return None
    pos, strings = 9, []
    for i in range(6):
        if i == 1:  # endpoint_port u16 sits between host and vendor
            pos += 2
            continue
        if pos >= len(body):
            return None
        size = body[pos]
        strings.append(body[pos + 1 : pos + 1 + size].decode("utf-8", "replace"))
        pos += 1 + size
    return (protocol, strings) if pos == len(body) else None


def _random_looking(data: bytes) -> bool:
    """Random bytes use most byte values; headers, text and padding do not."""
    return len(set(data)) >= min(len(data), 256) * 0.6


@register
class StratumV2Recogniser(Recogniser):
    """Stratum V2 mining connections, plain or Noise-encrypted, on any port."""

    name = "stratum-v2"
    protocols: ClassVar[tuple[str, ...]] = ("stratum-v2",)

    def screen(self, view: HeadView) -> np.ndarray:
        c = view.col
        noise = (view.first_len == NOISE_CLIENT_HELLO) & (view.peer_first_len == NOISE_SERVER_REPLY)
        plain = (c(2) == 0) & (c(6) <= 2) & (c(7) == 2) & (c(8) == 0)
        return np.asarray(view.is_tcp & view.from_initiator & (noise | plain))

    def recognise(self, conv: Conversation) -> Recognition | None:
        if conv.transport != "tcp":
            return None
        setup = _setup_connection(conv.fwd)
        if setup is not None:
            protocol, strings = setup
            evidence = [
                f"SetupConnection for the {_SUBPROTOCOLS[protocol]} sub-protocol, version 2",
            ]
            vendor = ", ".join(s for s in strings[1:4] if s)
            if vendor:
                evidence.append(f"device reports {vendor}")
            answer = _RESPONSES.get(conv.rev[2]) if len(conv.rev) >= 6 else None
            if answer:
                evidence.append(f"pool answered {answer}")
            return Recognition(
                protocol="stratum-v2",
                verdict=Verdict.MINING,
                confidence=0.99 if answer else 0.95,
                evidence=evidence,
                coin="btc",
                answered=answer == "SetupConnection.Success",
            )
        first_c = conv.fwd_segments[0] if conv.fwd_segments else b""
        first_s = conv.rev_segments[0] if conv.rev_segments else b""
        if (
            len(first_c) == NOISE_CLIENT_HELLO
            and len(first_s) == NOISE_SERVER_REPLY
            and _random_looking(first_c)
            and _random_looking(first_s)
        ):
            return Recognition(
                protocol="stratum-v2",
                verdict=Verdict.MINING,
                confidence=0.8,
                evidence=[
                    "Noise NX handshake of Stratum V2: 64-byte client key, 234-byte server reply",
                    "then encrypted frames",
                ],
                coin="btc",
                answered=True,
            )
        return None
