"""libp2p multistream-select end to end (IPFS, Filecoin): a lawful node, never a miner.

Every multistream message is a uvarint length, the text and a newline; both peers open with
``/multistream/1.0.0`` and then propose protocols.
"""

from __future__ import annotations

import random

from minewatch.findings import Finding, Verdict
from minewatch.net.capture.writer import Direction, TcpSession, ethernet

from .conftest import ScanRecords

PEER_A, PEER_B = "10.80.0.3", "198.51.100.180"
OUT, BACK = Direction.TO_SERVER, Direction.TO_CLIENT


def ms(*protocols: str) -> bytes:
    """Multistream messages: each one uvarint-length-prefixed and newline-terminated."""
    out = b""
    for name in protocols:
        data = name.encode() + b"\n"
        assert len(data) < 128  # one-byte uvarint
        out += bytes([len(data)]) + data
    return out


HELLO = "/multistream/1.0.0"


def session(security: str = "/noise", muxer: str = "/yamux/1.0.0") -> list[tuple[Direction, bytes]]:
    rng = random.Random(3)
    return [
        (OUT, ms(HELLO, security)),
        (BACK, ms(HELLO, security)),
        (OUT, rng.randbytes(80)),  # Noise handshake, then everything is encrypted
        (BACK, rng.randbytes(200)),
        (OUT, rng.randbytes(120)),
        (OUT, ms(muxer)),  # not visible in practice; harmless here
    ]


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def assert_libp2p(found: Finding, port: int, client: str = PEER_A, server: str = PEER_B) -> str:
    assert found.verdict is Verdict.BLOCKCHAIN_NODE
    assert found.protocol == "libp2p"
    assert found.transport == "tcp"
    assert (found.client_ip, found.server_ip, found.server_port) == (client, server, port)
    assert 0.85 <= found.confidence <= 1.0
    text = " ".join(found.evidence)
    assert "multistream 1.0" in text
    assert "no mining work" in text
    return text


def test_ipfs_negotiation_on_https_port(scan: ScanRecords) -> None:
    found = only(scan(TcpSession(PEER_A, 55000, PEER_B, 443).frames(session())))
    text = assert_libp2p(found, 443)
    assert found.confidence == 0.97
    assert "both peers" in text
    assert "/noise" in text
    assert found.coin is None


def test_filecoin_protocols(scan: ScanRecords) -> None:
    messages = [
        (OUT, ms(HELLO, "/fil/hello/1.0.0")),
        (BACK, ms(HELLO, "/fil/hello/1.0.0")),
    ]
    found = only(scan(TcpSession(PEER_A, 55001, PEER_B, 1347).frames(messages)))
    text = assert_libp2p(found, 1347)
    assert found.coin == "fil"
    assert "Filecoin protocol ids" in text


def test_header_split_across_segments(scan: ScanRecords) -> None:
    frames = TcpSession(PEER_A, 55002, PEER_B, 8080).frames(
        session("/tls/1.0.0"), segment_sizes={0: [1, 8], 1: [12]}
    )
    assert "/tls/1.0.0" in assert_libp2p(only(scan(frames)), 8080)


def test_only_the_initiator_visible(scan: ScanRecords) -> None:
    frames = TcpSession(PEER_A, 55003, PEER_B, 4001).frames([(OUT, ms(HELLO, "/noise"))])
    found = only(scan(frames))
    assert "one peer" in assert_libp2p(found, 4001)
    assert found.confidence == 0.85


def test_ipv6_vlan(scan: ScanRecords) -> None:
    a, b = "2001:db8:80::3", "2001:db8:51::180"
    tcp = TcpSession(a, 55004, b, 443)
    frames = [
        (ts, ethernet(p, vlans=(1, 2), outer_tpid=0x88A8)) for ts, p in tcp.packets(session())
    ]
    assert_libp2p(only(scan(frames)), 443, a, b)


# --- hard negatives -----------------------------------------------------------------------------


def test_text_mentioning_multistream(scan: ScanRecords) -> None:
    # a chat message about libp2p is not a multistream header
    messages = [
        (OUT, b"PRIVMSG #ipfs :peers open with /multistream/1.0.0\n then /noise\n"),
        (BACK, b":server 421 PRIVMSG :ok\r\n"),
    ]
    assert scan(TcpSession("10.80.9.1", 56000, "203.0.113.80", 6667).frames(messages)) == []


def test_random_binary_tcp(scan: ScanRecords) -> None:
    rng = random.Random(21)
    messages = [(OUT, b"\x13" + rng.randbytes(300)), (BACK, rng.randbytes(300))]
    assert scan(TcpSession("10.80.9.2", 56001, "203.0.113.81", 4001).frames(messages)) == []
