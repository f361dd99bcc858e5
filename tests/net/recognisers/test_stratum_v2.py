"""Stratum V2 end to end: plain SetupConnection frames and the Noise NX handshake.

Frames are built from the specification's layout: ``extension_type u16 | msg_type u8 |
msg_length u24`` (little endian), then the payload.
"""

from __future__ import annotations

import base64
import random
import struct

from minewatch.findings import Finding, Verdict
from minewatch.net.capture.writer import Direction, TcpSession, ethernet

from .conftest import ScanRecords

MINER, POOL = "10.30.1.5", "198.51.100.33"
TO_POOL, TO_MINER = Direction.TO_SERVER, Direction.TO_CLIENT
CHANNEL_BIT = 0x8000


def frame(msg_type: int, payload: bytes, *, channel: bool = False) -> bytes:
    extension = CHANNEL_BIT if channel else 0
    return struct.pack("<HB", extension, msg_type) + len(payload).to_bytes(3, "little") + payload


def str0_255(text: str) -> bytes:
    data = text.encode()
    return bytes([len(data)]) + data


def setup_connection(protocol: int = 0, *, min_version: int = 2, max_version: int = 2) -> bytes:
    payload = (
        struct.pack("<BHHI", protocol, min_version, max_version, 0b001)
        + str0_255("pool.example")
        + struct.pack("<H", 34255)
        + str0_255("Bitmain")
        + str0_255("S19j Pro")
        + str0_255("braiins-os-23.03")
        + str0_255("rig-0042")
    )
    return frame(0x00, payload)


SUCCESS = frame(0x01, struct.pack("<HI", 2, 0))
ERROR = frame(0x02, struct.pack("<I", 0) + str0_255("unsupported-protocol"))
OPEN_CHANNEL = frame(
    0x10, struct.pack("<I", 1) + str0_255("rig-0042") + struct.pack("<f", 1.0e14) + b"\xff" * 32
)
NEW_JOB = frame(0x15, struct.pack("<IIB", 7, 1, 1) + struct.pack("<I", 0x20000000) + b"\x11" * 32,
                channel=True)  # fmt: skip
SUBMIT = frame(0x1A, struct.pack("<IIIII", 7, 1, 1, 0x12345678, 1700000000) + b"\x00" * 4,
               channel=True)  # fmt: skip
SESSION = [
    (TO_POOL, setup_connection()),
    (TO_MINER, SUCCESS),
    (TO_POOL, OPEN_CHANNEL),
    (TO_MINER, NEW_JOB),
    (TO_POOL, SUBMIT),
]


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def assert_sv2(found: Finding, port: int, client: str = MINER, server: str = POOL) -> str:
    assert found.verdict is Verdict.MINING
    assert found.protocol == "stratum-v2"
    assert found.coin == "btc"
    assert (found.client_ip, found.server_ip, found.server_port) == (client, server, port)
    assert found.transport == "tcp"
    assert 0.8 <= found.confidence <= 1.0
    return " ".join(found.evidence)


def test_plain_setup_connection_on_https_port(scan: ScanRecords) -> None:
    found = only(scan(TcpSession(MINER, 46000, POOL, 443).frames(SESSION)))
    text = assert_sv2(found, 443)
    assert found.confidence == 0.99
    assert "SetupConnection for the mining sub-protocol" in text
    assert "Bitmain, S19j Pro, braiins-os-23.03" in text
    assert "SetupConnection.Success" in text


def test_job_declaration_refused(scan: ScanRecords) -> None:
    messages = [(TO_POOL, setup_connection(protocol=1)), (TO_MINER, ERROR)]
    found = only(scan(TcpSession(MINER, 46001, POOL, 80).frames(messages)))
    text = assert_sv2(found, 80)
    assert "job declaration" in text
    assert "SetupConnection.Error" in text


def test_setup_connection_split_across_segments(scan: ScanRecords) -> None:
    frames = TcpSession(MINER, 46002, POOL, 8080).frames(
        SESSION, segment_sizes={0: [3, 4, 20], 1: [2]}
    )
    assert "SetupConnection.Success" in assert_sv2(only(scan(frames)), 8080)


def test_ipv6_vlan(scan: ScanRecords) -> None:
    miner, pool = "2001:db8:30::5", "2001:db8:51::33"
    session = TcpSession(miner, 46003, pool, 443)
    frames = [(ts, ethernet(p, vlans=(30,))) for ts, p in session.packets(SESSION)]
    assert_sv2(only(scan(frames)), 443, miner, pool)


def random_bytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def noise_session() -> list[tuple[Direction, bytes]]:
    # Noise NX: a 64-byte ElligatorSwift key from the miner, a 234-byte reply from the pool,
    # then encrypted frames (random-looking bytes throughout).
    return [
        (TO_POOL, random_bytes(1, 64)),
        (TO_MINER, random_bytes(2, 234)),
        (TO_POOL, random_bytes(3, 130)),
        (TO_MINER, random_bytes(4, 190)),
        (TO_POOL, random_bytes(5, 90)),
    ]


def test_noise_handshake_on_https_port(scan: ScanRecords) -> None:
    found = only(scan(TcpSession(MINER, 46004, POOL, 443).frames(noise_session())))
    text = assert_sv2(found, 443)
    assert "Noise NX handshake" in text
    assert "64-byte" in text and "234-byte" in text


def test_noise_handshake_over_ipv6(scan: ScanRecords) -> None:
    miner, pool = "2001:db8:30::6", "2001:db8:51::34"
    frames = TcpSession(miner, 46005, pool, 3336).frames(noise_session())
    assert_sv2(only(scan(frames)), 3336, miner, pool)


# --- hard negatives -----------------------------------------------------------------------------


def test_ascii_exchange_of_noise_sizes(scan: ScanRecords) -> None:
    question = (b"HELO relay.example ready to exchange status lines please " * 2)[:63] + b"\n"
    answer = (b"250 relay.example at your service; status nominal; queue empty. " * 4)[:233]
    messages = [(TO_POOL, question), (TO_MINER, answer + b"\n")]
    assert len(messages[0][1]) == 64 and len(messages[1][1]) == 234
    assert scan(TcpSession("10.30.9.1", 47000, "203.0.113.30", 443).frames(messages)) == []


def test_zero_padded_binary_of_noise_sizes(scan: ScanRecords) -> None:
    # a fixed-layout binary protocol whose records happen to be 64 and 234 bytes long
    messages = [
        (TO_POOL, b"\x01\x00\x00\x40" + b"\x00" * 60),
        (TO_MINER, b"\x02\x00\x00\xea" + bytes(range(10)) * 23),
    ]
    assert len(messages[1][1]) == 234
    assert scan(TcpSession("10.30.9.2", 47001, "203.0.113.31", 443).frames(messages)) == []


def test_base64_exchange_of_noise_sizes(scan: ScanRecords) -> None:
    # Base64 of random bytes uses many byte values, but never enough for a 234-byte reply.
    token = base64.b64encode(random_bytes(20, 48))
    reply = base64.b64encode(random_bytes(21, 180))[:233] + b"\n"
    messages = [(TO_POOL, token), (TO_MINER, reply)]
    assert len(token) == 64 and len(reply) == 234
    assert scan(TcpSession("10.30.9.5", 47004, "203.0.113.34", 443).frames(messages)) == []


def test_random_exchange_of_other_sizes(scan: ScanRecords) -> None:
    messages = [(TO_POOL, random_bytes(10, 65)), (TO_MINER, random_bytes(11, 234))]
    assert scan(TcpSession("10.30.9.3", 47002, "203.0.113.32", 443).frames(messages)) == []


def test_setup_connection_with_a_wrong_version(scan: ScanRecords) -> None:
    # Version 1 does not exist in Stratum V2; the frame header alone is not enough.
    messages = [(TO_POOL, setup_connection(min_version=1, max_version=1)), (TO_MINER, SUCCESS)]
    assert scan(TcpSession("10.30.9.4", 47003, "203.0.113.33", 443).frames(messages)) == []
