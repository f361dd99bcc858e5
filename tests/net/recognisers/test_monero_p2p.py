"""Monero peer-to-peer (Levin) traffic end to end: a lawful node, never a miner.

A Levin header is ``signature u64 | body size u64 | have_to_return u8 | command u32 |
return code i32 | flags u32 | protocol version u32`` (little endian, 33 bytes); the handshake body
is a portable-storage section holding ``node_data.network_id``.
"""

from __future__ import annotations

import random
import struct

from minewatch.findings import Finding, Verdict
from minewatch.net.capture.writer import Direction, TcpSession, ethernet

from .conftest import ScanRecords

NODE_A, NODE_B = "10.60.0.4", "198.51.100.144"
OUT, BACK = Direction.TO_SERVER, Direction.TO_CLIENT
SIGNATURE = 0x0101010101012101
MAINNET_ID = bytes.fromhex("1230f171610441611731008216a1a110")
REQUEST, RESPONSE = 1, 2
HANDSHAKE, TIMED_SYNC, PING = 1001, 1002, 1003


def levin(command: int, body: bytes, *, flags: int, expect_answer: bool) -> bytes:
    return_code = 1 if flags == RESPONSE else 0
    header = struct.pack(
        "<QQ?IiII", SIGNATURE, len(body), expect_answer, command, return_code, flags, 1
    )
    return header + body


def storage_name(name: str) -> bytes:
    return bytes([len(name)]) + name.encode()


def storage_section(entries: list[bytes]) -> bytes:
    return bytes([len(entries) << 2]) + b"".join(entries)  # one-byte varint count


def node_data(network_id: bytes, port: int) -> bytes:
    section = storage_section(
        [
            storage_name("network_id") + b"\x0a" + bytes([len(network_id) << 2]) + network_id,
            storage_name("my_port") + b"\x06" + struct.pack("<I", port),
            storage_name("peer_id") + b"\x05" + struct.pack("<Q", 0x1122334455667788),
        ]
    )
    header = struct.pack("<IIB", 0x01011101, 0x01020101, 1)
    return header + storage_section([storage_name("node_data") + b"\x0c" + section])


def session(network_id: bytes = MAINNET_ID) -> list[tuple[Direction, bytes]]:
    sync = struct.pack("<IIB", 0x01011101, 0x01020101, 1) + storage_section([])
    return [
        (OUT, levin(HANDSHAKE, node_data(network_id, 18080), flags=REQUEST, expect_answer=True)),
        (BACK, levin(HANDSHAKE, node_data(network_id, 0), flags=RESPONSE, expect_answer=False)),
        (OUT, levin(TIMED_SYNC, sync, flags=REQUEST, expect_answer=True)),
        (BACK, levin(TIMED_SYNC, sync, flags=RESPONSE, expect_answer=False)),
        (BACK, levin(PING, sync, flags=REQUEST, expect_answer=True)),
    ]


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def assert_node(found: Finding, port: int) -> str:
    assert found.verdict is Verdict.BLOCKCHAIN_NODE
    assert found.protocol == "monero-p2p"
    assert found.transport == "tcp"
    assert found.server_port == port
    assert 0.9 <= found.confidence <= 1.0
    text = " ".join(found.evidence)
    assert "Levin frame signature" in text
    assert "no mining work" in text
    return text


def test_handshake_on_https_port(scan: ScanRecords) -> None:
    found = only(scan(TcpSession(NODE_A, 51000, NODE_B, 443).frames(session())))
    text = assert_node(found, 443)
    assert (found.client_ip, found.server_ip) == (NODE_A, NODE_B)
    assert found.coin == "xmr"
    assert found.confidence == 0.99
    assert "command 1001 (handshake)" in text
    assert "Monero mainnet network_id" in text


def test_other_cryptonote_network(scan: ScanRecords) -> None:
    found = only(scan(TcpSession(NODE_A, 51001, NODE_B, 8080).frames(session(b"\x42" * 16))))
    assert_node(found, 8080)
    assert found.coin is None


def test_messages_split_across_segments(scan: ScanRecords) -> None:
    frames = TcpSession(NODE_A, 51002, NODE_B, 8080).frames(
        session(), segment_sizes={0: [5, 14, 20], 1: [1, 40]}
    )
    found = only(scan(frames))
    assert "Monero mainnet network_id" in assert_node(found, 8080)
    assert found.coin == "xmr"


def test_capture_starting_mid_stream(scan: ScanRecords) -> None:
    # only timed syncs and a ping: no network id, but both sides speak Levin
    frames = TcpSession(NODE_A, 51003, NODE_B, 18080).frames(session(), mid_stream_from=2)
    found = only(scan(frames))
    assert "timed sync" in assert_node(found, 18080)
    assert found.confidence == 0.99
    assert {found.client_ip, found.server_ip} == {NODE_A, NODE_B}


def test_ipv6_qinq(scan: ScanRecords) -> None:
    a, b = "2001:db8:60::4", "2001:db8:51::144"
    tcp = TcpSession(a, 51004, b, 443)
    frames = [
        (ts, ethernet(p, vlans=(8, 9), outer_tpid=0x88A8)) for ts, p in tcp.packets(session())
    ]
    found = only(scan(frames))
    assert_node(found, 443)
    assert (found.client_ip, found.server_ip, found.coin) == (a, b, "xmr")


# --- hard negatives -----------------------------------------------------------------------------


def test_random_binary_tcp(scan: ScanRecords) -> None:
    rng = random.Random(11)
    messages = [(OUT if i % 2 else BACK, rng.randbytes(rng.randrange(33, 700))) for i in range(6)]
    assert scan(TcpSession("10.60.9.1", 52000, "203.0.113.60", 18080).frames(messages)) == []


def test_short_blob_with_the_signature(scan: ScanRecords) -> None:
    # eight signature bytes are not a whole Levin header
    blob = struct.pack("<Q", SIGNATURE) + b"\x00" * 8
    assert scan(TcpSession("10.60.9.2", 52001, "203.0.113.61", 443).frames([(OUT, blob)])) == []
