"""Pool names end to end: TLS server names from real ClientHellos and DNS look-ups.

ClientHellos come from Python's ``ssl`` module over memory BIOs; DNS messages are built here
from RFC 1035's layout.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import struct
from typing import Any

from minewatch.findings import Finding, Verdict
from minewatch.net.capture.writer import (
    CaptureRecord,
    Direction,
    TcpSession,
    ethernet,
    ipv4_udp,
)

from .conftest import ScanRecords

MINER, RESOLVER = "10.110.0.5", "10.110.0.53"
POOL_HOST, POOL_ADDR, CDN_ADDR = "xmr-eu1.nanopool.org", "192.0.2.10", "104.16.0.1"
TO_SERVER, TO_CLIENT = Direction.TO_SERVER, Direction.TO_CLIENT
T0 = 1_700_000_000 * 10**9


def client_hello(server_name: str) -> bytes:
    """The first flight of a real TLS client connecting to ``server_name``."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with contextlib.suppress(ssl.SSLWantReadError):
        client.do_handshake()
    hello = outgoing.read()
    assert hello.startswith(b"\x16\x03")
    return hello


# A server's answer is opaque here: only the client's hello names the server.
SERVER_FLIGHT = b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03" + bytes(range(118))
ENCRYPTED = b"\x17\x03\x03\x00\x40" + bytes(range(64))


def tls_session(server_name: str) -> list[tuple[Direction, bytes]]:
    return [
        (TO_SERVER, client_hello(server_name)),
        (TO_CLIENT, SERVER_FLIGHT),
        (TO_SERVER, ENCRYPTED),
        (TO_CLIENT, ENCRYPTED),
    ]


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def test_sni_of_a_pool(scan: ScanRecords) -> None:
    frames = TcpSession(MINER, 61000, POOL_ADDR, 443).frames(tls_session(POOL_HOST))
    found = only(scan(frames))
    assert found.verdict is Verdict.MINING
    assert found.protocol == "stratum-tls"
    assert found.pool == "Nanopool"
    assert found.coin == "xmr"
    assert found.server_name == POOL_HOST
    assert (found.client_ip, found.server_ip, found.server_port) == (MINER, POOL_ADDR, 443)
    assert 0.8 <= found.confidence <= 1.0
    text = " ".join(found.evidence)
    assert f"TLS server name {POOL_HOST} belongs to mining pool Nanopool" in text
    assert "nanopool.org" in text


def test_sni_split_across_segments_over_ipv6_vlan(scan: ScanRecords) -> None:
    miner, pool = "2001:db8:110::5", "2001:db8:51::10"
    session = TcpSession(miner, 61001, pool, 14433)
    packets = session.packets(tls_session(POOL_HOST), segment_sizes={0: [6, 50, 100]})
    found = only(scan([(ts, ethernet(p, vlans=(3, 4), outer_tpid=0x88A8)) for ts, p in packets]))
    assert (found.protocol, found.pool, found.coin) == ("stratum-tls", "Nanopool", "xmr")
    assert (found.client_ip, found.server_ip, found.server_port) == (miner, pool, 14433)


def test_sni_of_an_ordinary_site(scan: ScanRecords) -> None:
    frames = TcpSession(MINER, 61002, "203.0.113.110", 443).frames(tls_session("www.example.com"))
    assert scan(frames) == []


def test_sni_that_only_ends_like_a_pool(scan: ScanRecords) -> None:
    frames = TcpSession(MINER, 61003, "203.0.113.111", 443).frames(
        tls_session("xmr.evilnanopool.org")
    )
    assert scan(frames) == []


# --- DNS -----------------------------------------------------------------------------------------


def qname(host: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in host.split(".")) + b"\0"


def dns_query(txid: int, host: str) -> bytes:
    return struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + qname(host) + struct.pack("!HH", 1, 1)


def dns_answer(txid: int, host: str, *addresses: str) -> bytes:
    header = struct.pack("!HHHHHH", txid, 0x8180, 1, len(addresses), 0, 0)
    question = qname(host) + struct.pack("!HH", 1, 1)
    answers = b"".join(
        struct.pack("!HHHIH", 0xC00C, 1, 1, 300, 4) + bytes(int(x) for x in addr.split("."))
        for addr in addresses
    )
    return header + question + answers


def lookup(
    host: str, *addresses: str, client: str = MINER, txid: int = 0x4D2
) -> list[CaptureRecord]:
    return [
        (T0, ethernet(ipv4_udp(client, RESOLVER, 53001, 53, dns_query(txid, host)))),
        (
            T0 + 2_000_000,
            ethernet(ipv4_udp(RESOLVER, client, 53, 53001, dns_answer(txid, host, *addresses))),
        ),
    ]


def line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


STRATUM = [
    (TO_SERVER, line({"id": 1, "method": "mining.subscribe", "params": ["XMRig/6.21.0"]})),
    (TO_CLIENT, line({"id": 1, "result": [[["mining.notify", "ae68"]], "08000002", 4]})),
    (TO_SERVER, line({"id": 2, "method": "mining.authorize", "params": ["worker1", "x"]})),
    (TO_CLIENT, line({"id": 2, "result": True, "error": None})),
]


def stratum_to(server: str, client: str = MINER) -> list[CaptureRecord]:
    return TcpSession(client, 61100, server, 14444, start_ns=T0 + 10**9).frames(STRATUM)


def test_lookup_then_connection_names_the_pool(scan: ScanRecords) -> None:
    found = only(scan(lookup(POOL_HOST, POOL_ADDR) + stratum_to(POOL_ADDR)))
    assert found.protocol == "stratum-v1"
    assert found.verdict is Verdict.MINING
    assert (found.client_ip, found.server_ip, found.server_port) == (MINER, POOL_ADDR, 14444)
    assert found.server_name == POOL_HOST
    assert found.pool == "Nanopool"
    assert found.coin == "xmr"  # from the host name; the traffic named none
    assert f"resolved from pool name {POOL_HOST} (Nanopool)" in " ".join(found.evidence)


def test_lookup_without_a_connection(scan: ScanRecords) -> None:
    found = only(scan(lookup(POOL_HOST, POOL_ADDR, "192.0.2.11")))
    assert found.protocol == "pool-dns"
    assert found.verdict is Verdict.MINING
    assert (found.client_ip, found.server_ip, found.server_port) == (MINER, RESOLVER, 53)
    assert found.transport == "udp"
    assert (found.server_name, found.pool, found.coin) == (POOL_HOST, "Nanopool", "xmr")
    assert 0.5 <= found.confidence <= 0.7
    text = " ".join(found.evidence)
    assert f"looked up {POOL_HOST}, a name of mining pool Nanopool" in text
    assert "resolved to 192.0.2.10, 192.0.2.11" in text


def test_lookup_by_another_host_is_kept(scan: ScanRecords) -> None:
    # The connection still gains the pool's name, but the look-up was someone else's.
    other = "10.110.0.6"
    findings = scan(lookup(POOL_HOST, POOL_ADDR, client=other) + stratum_to(POOL_ADDR))
    assert len(findings) == 2, findings
    by_protocol = {f.protocol: f for f in findings}
    assert by_protocol["stratum-v1"].pool == "Nanopool"
    assert by_protocol["pool-dns"].client_ip == other


def test_pool_name_resolving_into_a_cdn(scan: ScanRecords) -> None:
    findings = scan(lookup(POOL_HOST, CDN_ADDR) + stratum_to(CDN_ADDR))
    assert len(findings) == 2, findings
    by_protocol = {f.protocol: f for f in findings}
    stratum = by_protocol["stratum-v1"]
    assert stratum.server_ip == CDN_ADDR
    assert stratum.server_name is None and stratum.pool is None
    assert not any("resolved from pool name" in e for e in stratum.evidence)
    dns = by_protocol["pool-dns"]
    assert "resolved to" not in " ".join(dns.evidence)
    assert f"not tied to the pool: {CDN_ADDR}" in " ".join(dns.evidence)


def test_cdn_address_of_a_pool_is_not_a_pool_for_other_traffic(scan: ScanRecords) -> None:
    # An ordinary HTTPS visit to the same CDN address stays unflagged.
    visit = TcpSession(MINER, 61200, CDN_ADDR, 443, start_ns=T0 + 10**9).frames(
        tls_session("www.example.com")
    )
    findings = scan(lookup(POOL_HOST, CDN_ADDR) + visit)
    assert [f.protocol for f in findings] == ["pool-dns"]


def test_lookup_of_an_ordinary_name(scan: ScanRecords) -> None:
    found = only(scan(lookup("www.example.com", "192.0.2.80") + stratum_to("192.0.2.80")))
    assert found.protocol == "stratum-v1"
    assert found.server_name is None and found.pool is None
