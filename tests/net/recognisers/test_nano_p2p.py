"""Nano node traffic end to end: a lawful node (Nano has no mining at all).

Every message opens with an 8-byte header: ``'R'``, the network id (``'C'`` live), the maximum,
used and minimum protocol versions, the message type and two bytes of extensions.
"""

from __future__ import annotations

import random
import struct

from minewatch.findings import Finding, Verdict
from minewatch.net.capture.writer import Direction, TcpSession, ethernet

from .conftest import ScanRecords

NODE_A, NODE_B = "10.90.0.6", "198.51.100.66"
OUT, BACK = Direction.TO_SERVER, Direction.TO_CLIENT
KEEPALIVE, NODE_ID_HANDSHAKE = 0x02, 0x0A


def nano(message_type: int, payload: bytes, *, network: bytes = b"C", extensions: int = 0) -> bytes:
    return (
        b"R"
        + network
        + bytes([0x13, 0x13, 0x12, message_type])
        + struct.pack("<H", extensions)
        + payload
    )


def session(network: bytes = b"C") -> list[tuple[Direction, bytes]]:
    rng = random.Random(17)
    query = nano(NODE_ID_HANDSHAKE, rng.randbytes(32), network=network, extensions=0x0001)
    answer = nano(NODE_ID_HANDSHAKE, rng.randbytes(96), network=network, extensions=0x0002)
    peers = b"".join(b"\x00" * 10 + b"\xff\xff" + rng.randbytes(4) + b"\xd3\x1b" for _ in range(8))
    return [
        (OUT, query),
        (BACK, answer),
        (OUT, nano(KEEPALIVE, peers, network=network)),
        (BACK, nano(KEEPALIVE, peers, network=network)),
    ]


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def assert_nano(found: Finding, port: int) -> str:
    assert found.verdict is Verdict.BLOCKCHAIN_NODE
    assert found.protocol == "nano-p2p"
    assert found.coin == "nano"
    assert found.transport == "tcp"
    assert found.server_port == port
    assert 0.8 <= found.confidence <= 1.0
    text = " ".join(found.evidence)
    assert "Nano has no mining" in text
    return text


def test_handshake_on_https_port(scan: ScanRecords) -> None:
    found = only(scan(TcpSession(NODE_A, 57000, NODE_B, 443).frames(session())))
    text = assert_nano(found, 443)
    assert (found.client_ip, found.server_ip) == (NODE_A, NODE_B)
    assert found.confidence == 0.95
    assert "'RC' (live network)" in text
    assert "versions 19/19/18" in text


def test_beta_network(scan: ScanRecords) -> None:
    found = only(scan(TcpSession(NODE_A, 57001, NODE_B, 54000).frames(session(b"B"))))
    assert "beta network" in assert_nano(found, 54000)


def test_header_split_across_segments(scan: ScanRecords) -> None:
    frames = TcpSession(NODE_A, 57002, NODE_B, 8080).frames(
        session(), segment_sizes={0: [1, 2, 3], 1: [4, 4]}
    )
    found = only(scan(frames))
    assert_nano(found, 8080)
    assert found.confidence == 0.95


def test_capture_starting_mid_stream(scan: ScanRecords) -> None:
    # only keepalives: the responder's could come first; still a node
    frames = TcpSession(NODE_A, 57003, NODE_B, 7075).frames(session(), mid_stream_from=2)
    found = only(scan(frames))
    assert "message type 0x02" in assert_nano(found, 7075)
    assert {found.client_ip, found.server_ip} == {NODE_A, NODE_B}


def test_ipv6_vlan(scan: ScanRecords) -> None:
    a, b = "2001:db8:90::6", "2001:db8:51::66"
    tcp = TcpSession(a, 57004, b, 443)
    frames = [(ts, ethernet(p, vlans=(77,))) for ts, p in tcp.packets(session())]
    found = only(scan(frames))
    assert_nano(found, 443)
    assert (found.client_ip, found.server_ip) == (a, b)


# --- hard negatives -----------------------------------------------------------------------------


def test_answer_that_is_not_nano(scan: ScanRecords) -> None:
    # a header-like first message, but the peer answers with something else entirely
    messages = [(OUT, nano(KEEPALIVE, b"\x00" * 24)), (BACK, b"HTTP/1.1 400 Bad Request\r\n\r\n")]
    assert scan(TcpSession("10.90.9.1", 58000, "203.0.113.90", 7075).frames(messages)) == []


def test_text_starting_with_r(scan: ScanRecords) -> None:
    messages = [(OUT, b"RCPT TO:<bob@example.org>\r\n"), (BACK, b"250 2.1.5 Ok\r\n")]
    assert scan(TcpSession("10.90.9.2", 58001, "203.0.113.91", 25).frames(messages)) == []


def test_random_binary_tcp(scan: ScanRecords) -> None:
    rng = random.Random(23)
    messages = [(OUT, rng.randbytes(200)), (BACK, rng.randbytes(200))]
    assert scan(TcpSession("10.90.9.3", 58002, "203.0.113.92", 7075).frames(messages)) == []
