"""Ethereum devp2p end to end: discovery v4 over UDP and the RLPx handshake over TCP.

Discovery packets are ``keccak256(sig || type || rlp) || sig (65) || type || RLP list``. RLPx
messages carry an ephemeral secp256k1 public key, computed here by scalar multiplication with
plain integers so that it really lies on the curve.
"""

from __future__ import annotations

import random
import struct

import pytest

from minewatch.findings import Finding, Verdict
from minewatch.net.capture.writer import (
    CaptureRecord,
    Direction,
    TcpSession,
    ethernet,
    ipv4_udp,
    ipv6_udp,
)
from minewatch.net.recognisers._keccak import keccak256

from .conftest import ScanRecords

NODE_A, NODE_B = "10.70.0.9", "198.51.100.77"
OUT, BACK = Direction.TO_SERVER, Direction.TO_CLIENT
T0 = 1_700_000_000 * 10**9

# --- secp256k1 -----------------------------------------------------------------------------------

P = 2**256 - 2**32 - 977
G = (
    0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
    0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8,
)
Point = tuple[int, int] | None


def point_add(a: Point, b: Point) -> Point:
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % P == 0:
        return None
    if a == b:
        slope = 3 * a[0] * a[0] * pow(2 * a[1], -1, P) % P
    else:
        slope = (b[1] - a[1]) * pow(b[0] - a[0], -1, P) % P
    x = (slope * slope - a[0] - b[0]) % P
    return x, (slope * (a[0] - x) - a[1]) % P


def public_key(secret: int) -> bytes:
    """The 64-byte uncompressed public key (x || y) of ``secret``, by double-and-add."""
    result: Point = None
    addend: Point = G
    while secret:
        if secret & 1:
            result = point_add(result, addend)
        addend = point_add(addend, addend)
        secret >>= 1
    assert result is not None
    return result[0].to_bytes(32, "big") + result[1].to_bytes(32, "big")


def test_public_key_of_one_is_the_generator() -> None:
    assert public_key(1) == G[0].to_bytes(32, "big") + G[1].to_bytes(32, "big")
    x, y = (int.from_bytes(public_key(12345)[i : i + 32], "big") for i in (0, 32))
    assert (y * y - x**3 - 7) % P == 0


# --- RLP -----------------------------------------------------------------------------------------

Rlp = bytes | int | list["Rlp"]


def rlp(item: Rlp) -> bytes:
    if isinstance(item, int):
        item = item.to_bytes((item.bit_length() + 7) // 8, "big")
    if isinstance(item, bytes):
        if len(item) == 1 and item[0] < 0x80:
            return item
        return _rlp_length(len(item), 0x80) + item
    body = b"".join(rlp(x) for x in item)
    return _rlp_length(len(body), 0xC0) + body


def _rlp_length(size: int, offset: int) -> bytes:
    if size < 56:
        return bytes([offset + size])
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(raw)]) + raw


# --- discovery v4 -------------------------------------------------------------------------------


def endpoint(ip: str, port: int) -> list[Rlp]:
    return [bytes(int(x) for x in ip.split(".")), port, port]


def discv4(packet_type: int, data: list[Rlp], seed: int) -> bytes:
    signature = random.Random(seed).randbytes(65)
    body = signature + bytes([packet_type]) + rlp(data)
    return keccak256(body) + body


def ping(src: tuple[str, int], dst: tuple[str, int]) -> bytes:
    return discv4(1, [4, endpoint(*src), endpoint(*dst), 1_700_000_060], seed=1)


def pong(to: tuple[str, int], ping_hash: bytes) -> bytes:
    return discv4(2, [endpoint(*to), ping_hash, 1_700_000_060], seed=2)


def udp_exchange(a: tuple[str, int], b: tuple[str, int], *datagrams: bytes) -> list[CaptureRecord]:
    """Datagrams alternating a->b, b->a, ..., as Ethernet frames."""
    out = []
    for i, data in enumerate(datagrams):
        src, dst = (a, b) if i % 2 == 0 else (b, a)
        out.append((T0 + i * 1000, ethernet(ipv4_udp(src[0], dst[0], src[1], dst[1], data))))
    return out


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def assert_eth_node(found: Finding, transport: str) -> str:
    assert found.verdict is Verdict.BLOCKCHAIN_NODE
    assert found.protocol == "ethereum-p2p"
    assert found.coin == "eth"
    assert found.transport == transport
    assert 0.85 <= found.confidence <= 1.0
    text = " ".join(found.evidence)
    assert "no mining work" in text
    return text


def test_discovery_ping_pong_on_unusual_ports(scan: ScanRecords) -> None:
    a, b = (NODE_A, 40404), (NODE_B, 30399)
    request = ping(a, b)
    found = only(scan(udp_exchange(a, b, request, pong(a, request[:32]))))
    text = assert_eth_node(found, "udp")
    assert (found.client_ip, found.server_ip, found.server_port) == (NODE_A, NODE_B, 30399)
    assert found.confidence == 0.99
    assert "ping, pong" in text
    assert "valid keccak256 hash" in text


def test_discovery_peer_on_default_port_is_the_server(scan: ScanRecords) -> None:
    # Node A on 30303 pings B on an ephemeral port: A is reported as the server by convention.
    a, b = (NODE_A, 30303), (NODE_B, 41234)
    request = ping(a, b)
    found = only(scan(udp_exchange(a, b, request, pong(a, request[:32]))))
    assert_eth_node(found, "udp")
    assert (found.client_ip, found.server_ip, found.server_port) == (NODE_B, NODE_A, 30303)


def test_discovery_findnode_over_ipv6(scan: ScanRecords) -> None:
    a, b = "2001:db8:70::9", "2001:db8:51::77"
    findnode = discv4(3, [public_key(777), 1_700_000_060], seed=3)
    records = [(T0, ethernet(ipv6_udp(a, b, 50000, 50001, findnode), vlans=(12,)))]
    found = only(scan(records))
    assert "findnode" in assert_eth_node(found, "udp")
    assert (found.client_ip, found.server_ip, found.server_port) == (a, b, 50001)


def test_discovery_with_a_wrong_hash(scan: ScanRecords) -> None:
    a, b = (NODE_A, 40405), (NODE_B, 30399)
    request = bytearray(ping(a, b))
    request[5] ^= 0x01
    reply = bytearray(pong(a, bytes(request[:32])))
    reply[-1] ^= 0x01  # the body no longer matches its hash
    assert scan(udp_exchange(a, b, bytes(request), bytes(reply))) == []


def test_random_udp_with_discovery_layout(scan: ScanRecords) -> None:
    rng = random.Random(5)
    datagram = rng.randbytes(97) + b"\x01" + rlp([4, b"\x00" * 6, 1])
    assert scan(udp_exchange((NODE_A, 40406), (NODE_B, 30303), datagram)) == []


# --- RLPx ----------------------------------------------------------------------------------------


def eip8_message(secret: int, size: int, seed: int) -> bytes:
    """An EIP-8 auth/ack: size prefix, then 0x04 || ephemeral key || IV || ciphertext || MAC."""
    rest = random.Random(seed).randbytes(size - 65)
    body = b"\x04" + public_key(secret) + rest
    return struct.pack(">H", len(body)) + body


def legacy_message(secret: int, size: int, seed: int) -> bytes:
    return b"\x04" + public_key(secret) + random.Random(seed).randbytes(size - 65)


def encrypted_frames(seed: int) -> list[tuple[Direction, bytes]]:
    rng = random.Random(seed)
    return [(OUT if i % 2 == 0 else BACK, rng.randbytes(rng.randrange(32, 400))) for i in range(4)]


def rlpx_session(auth: bytes, ack: bytes) -> list[tuple[Direction, bytes]]:
    return [(OUT, auth), (BACK, ack), *encrypted_frames(9)]


def test_eip8_handshake_on_https_port(scan: ScanRecords) -> None:
    messages = rlpx_session(eip8_message(0xA11CE, 350, 1), eip8_message(0xB0B, 260, 2))
    found = only(scan(TcpSession(NODE_A, 53000, NODE_B, 443).frames(messages)))
    text = assert_eth_node(found, "tcp")
    assert (found.client_ip, found.server_ip, found.server_port) == (NODE_A, NODE_B, 443)
    assert found.confidence == 0.97
    assert "RLPx EIP-8 auth" in text and "valid secp256k1" in text
    assert "ack" in text


def test_eip8_auth_split_across_segments(scan: ScanRecords) -> None:
    messages = rlpx_session(eip8_message(0xA11CE, 350, 1), eip8_message(0xB0B, 260, 2))
    frames = TcpSession(NODE_A, 53001, NODE_B, 8080).frames(
        messages, segment_sizes={0: [1, 2, 30, 100], 1: [40]}
    )
    found = only(scan(frames))
    assert "RLPx EIP-8 auth" in assert_eth_node(found, "tcp")
    assert (found.client_ip, found.server_ip, found.server_port) == (NODE_A, NODE_B, 8080)


@pytest.mark.parametrize("then_frames", [False, True], ids=["handshake-only", "with-frames"])
def test_legacy_handshake(scan: ScanRecords, then_frames: bool) -> None:
    auth, ack = legacy_message(0xC0FFEE, 307, 3), legacy_message(0xD00D, 210, 4)
    messages = rlpx_session(auth, ack) if then_frames else [(OUT, auth), (BACK, ack)]
    found = only(scan(TcpSession(NODE_A, 53002, NODE_B, 443).frames(messages)))
    text = assert_eth_node(found, "tcp")
    assert "RLPx legacy auth" in text and "legacy ack" in text
    assert (found.client_ip, found.server_ip, found.server_port) == (NODE_A, NODE_B, 443)


def test_eip8_over_ipv6_qinq(scan: ScanRecords) -> None:
    a, b = "2001:db8:70::9", "2001:db8:51::77"
    session = TcpSession(a, 53003, b, 30304)
    messages = rlpx_session(eip8_message(0xA11CE, 350, 1), eip8_message(0xB0B, 260, 2))
    frames = [
        (ts, ethernet(p, vlans=(2, 3), outer_tpid=0x88A8)) for ts, p in session.packets(messages)
    ]
    found = only(scan(frames))
    assert_eth_node(found, "tcp")
    assert (found.client_ip, found.server_ip, found.server_port) == (a, b, 30304)


def test_point_not_on_the_curve(scan: ScanRecords) -> None:
    def off_curve(message: bytes) -> bytes:
        return message[:10] + bytes([message[10] ^ 0x40]) + message[11:]

    auth = off_curve(eip8_message(0xA11CE, 350, 1))
    ack = off_curve(eip8_message(0xB0B, 260, 2))
    messages = rlpx_session(auth, ack)
    assert scan(TcpSession("10.70.9.1", 54000, "203.0.113.70", 30303).frames(messages)) == []
    legacy = off_curve(legacy_message(0xC0FFEE, 307, 3))
    assert scan(TcpSession("10.70.9.2", 54001, "203.0.113.71", 443).frames([(OUT, legacy)])) == []


def test_random_binary_tcp(scan: ScanRecords) -> None:
    rng = random.Random(13)
    messages = [(OUT, b"\x01\x5e\x04" + rng.randbytes(350)), (BACK, rng.randbytes(307))]
    messages += encrypted_frames(14)
    assert scan(TcpSession("10.70.9.3", 54002, "203.0.113.72", 30303).frames(messages)) == []
