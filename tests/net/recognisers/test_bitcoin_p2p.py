"""Bitcoin-family peer-to-peer traffic end to end: a lawful node, never a miner.

Messages are ``magic | command (12 bytes, NUL padded) | length u32 | checksum | payload`` with
the checksum the first four bytes of the payload's double SHA-256.
"""

from __future__ import annotations

import hashlib
import random
import struct

import pytest

from minewatch.findings import Finding, Verdict
from minewatch.net.capture.writer import Direction, TcpSession, ethernet

from .conftest import ScanRecords

NODE_A, NODE_B = "10.50.0.11", "198.51.100.201"
OUT, BACK = Direction.TO_SERVER, Direction.TO_CLIENT
MAINNET = bytes.fromhex("f9beb4d9")
LITECOIN = bytes.fromhex("fbc0b6db")


def message(magic: bytes, command: str, payload: bytes = b"") -> bytes:
    checksum = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    name = command.encode().ljust(12, b"\0")
    return magic + name + struct.pack("<I", len(payload)) + checksum + payload


def net_addr(ip: str, port: int) -> bytes:
    mapped = b"\0" * 10 + b"\xff\xff" + bytes(int(x) for x in ip.split("."))
    return struct.pack("<Q", 1033) + mapped + struct.pack(">H", port)


def version(magic: bytes, agent: str, nonce: int) -> bytes:
    ua = agent.encode()
    payload = (
        struct.pack("<iQq", 70016, 1033, 1_700_000_000)
        + net_addr(NODE_B, 8333)
        + net_addr(NODE_A, 0)
        + struct.pack("<Q", nonce)
        + bytes([len(ua)])
        + ua
        + struct.pack("<i?", 820_000, True)
    )
    return message(magic, "version", payload)


def handshake(magic: bytes) -> list[tuple[Direction, bytes]]:
    return [
        (OUT, version(magic, "/Satoshi:27.0.0/", 0x1234)),
        (BACK, version(magic, "/Satoshi:26.1.0/", 0x5678)),
        (OUT, message(magic, "verack")),
        (BACK, message(magic, "verack")),
        (OUT, message(magic, "sendcmpct", b"\x00" + struct.pack("<Q", 2))),
        (BACK, message(magic, "ping", struct.pack("<Q", 99))),
        (OUT, message(magic, "pong", struct.pack("<Q", 99))),
        (BACK, message(magic, "inv", b"\x01" + struct.pack("<I", 1) + b"\x5a" * 32)),
    ]


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def assert_node(found: Finding, coin: str, port: int) -> str:
    assert found.verdict is Verdict.BLOCKCHAIN_NODE
    assert found.protocol == "bitcoin-p2p"
    assert found.coin == coin
    assert found.transport == "tcp"
    assert found.server_port == port
    assert 0.9 <= found.confidence <= 1.0
    text = " ".join(found.evidence)
    assert "no mining work" in text
    return text


def test_handshake_on_https_port(scan: ScanRecords) -> None:
    found = only(scan(TcpSession(NODE_A, 48000, NODE_B, 443).frames(handshake(MAINNET))))
    text = assert_node(found, "btc", 443)
    assert (found.client_ip, found.server_ip) == (NODE_A, NODE_B)
    assert found.confidence == 0.99
    assert "f9beb4d9 (Bitcoin mainnet)" in text
    assert "version, verack" in text


def test_litecoin(scan: ScanRecords) -> None:
    found = only(scan(TcpSession(NODE_A, 48001, NODE_B, 9333).frames(handshake(LITECOIN))))
    assert "Litecoin mainnet" in assert_node(found, "ltc", 9333)


def test_messages_split_across_segments(scan: ScanRecords) -> None:
    # the magic itself and the command name are cut
    frames = TcpSession(NODE_A, 48002, NODE_B, 8080).frames(
        handshake(MAINNET), segment_sizes={0: [2, 7, 30], 1: [5, 11]}
    )
    found = only(scan(frames))
    assert assert_node(found, "btc", 8080)
    assert (found.client_ip, found.server_ip) == (NODE_A, NODE_B)


def test_capture_starting_mid_stream(scan: ScanRecords) -> None:
    # Only ping/pong/inv relay is visible and the responder speaks first: still a node.
    frames = TcpSession(NODE_A, 48003, NODE_B, 8333).frames(handshake(MAINNET), mid_stream_from=5)
    found = only(scan(frames))
    text = assert_node(found, "btc", found.server_port)
    assert {found.client_ip, found.server_ip} == {NODE_A, NODE_B}
    assert "ping" in text and "pong" in text


@pytest.mark.parametrize("vlans", [(), (4,), (100, 200)])
def test_ipv6_and_tagged(scan: ScanRecords, vlans: tuple[int, ...]) -> None:
    a, b = "2001:db8:50::11", "2001:db8:51::201"
    session = TcpSession(a, 48004, b, 443)
    frames = [
        (ts, ethernet(p, vlans=vlans, outer_tpid=0x88A8))
        for ts, p in session.packets(handshake(MAINNET))
    ]
    found = only(scan(frames))
    assert_node(found, "btc", 443)
    assert (found.client_ip, found.server_ip) == (a, b)


# --- hard negatives -----------------------------------------------------------------------------


def test_random_binary_tcp(scan: ScanRecords) -> None:
    rng = random.Random(7)
    messages = [
        (OUT if i % 2 == 0 else BACK, rng.randbytes(rng.randrange(40, 900))) for i in range(8)
    ]
    assert scan(TcpSession("10.50.9.1", 49000, "203.0.113.50", 8333).frames(messages)) == []


def test_magic_followed_by_no_command(scan: ScanRecords) -> None:
    blob = MAINNET + b"\x00\x01\x02\x03" + bytes(range(40))
    messages = [(OUT, blob), (BACK, bytes(reversed(blob)))]
    assert scan(TcpSession("10.50.9.2", 49001, "203.0.113.51", 8333).frames(messages)) == []
