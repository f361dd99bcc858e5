"""Stratum v1 end to end: Bitcoin, Equihash and EthereumStratum dialects, and look-alikes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from minewatch.findings import Finding, Verdict
from minewatch.net.capture.writer import Direction, TcpSession, ethernet

from .conftest import ScanRecords

MINER, POOL = "10.1.2.3", "198.51.100.7"
MINER6, POOL6 = "2001:db8:10::3", "2001:db8:99::7"
TO_POOL, TO_MINER = Direction.TO_SERVER, Direction.TO_CLIENT
WALLET = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
PREV_HASH = "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000"


def line(obj: dict[str, Any]) -> bytes:
    """One newline-terminated JSON-RPC message, as miners and pools send them."""
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


SUBSCRIBE = line({"id": 1, "method": "mining.subscribe", "params": ["cgminer/4.10.0"]})
SUBSCRIBED = line(
    {
        "id": 1,
        "result": [[["mining.set_difficulty", "b4b6"], ["mining.notify", "ae68"]], "08000002", 4],
        "error": None,
    }
)
AUTHORIZE = line({"id": 2, "method": "mining.authorize", "params": [f"{WALLET}.rig1", "x"]})
AUTHORIZED = line({"id": 2, "result": True, "error": None})
DIFFICULTY = line({"id": None, "method": "mining.set_difficulty", "params": [16384]})
NOTIFY = line(
    {
        "id": None,
        "method": "mining.notify",
        "params": [
            "bf",
            PREV_HASH,
            "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20"
            "020862062f503253482f04b8864e5008",
            "072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327"
            "048ed988ac00000000",
            [
                "3ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a",
                "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",
            ],
            "20000000",
            "1a0ffff0",
            "504e86b9",
            True,
        ],
    }
)
SUBMIT = line(
    {
        "id": 4,
        "method": "mining.submit",
        "params": ["rig1", "bf", "00000001", "504e86ed", "b2957c02"],
    }
)
ACCEPTED = line({"id": 4, "result": True, "error": None})

SESSION = [
    (TO_POOL, SUBSCRIBE),
    (TO_MINER, SUBSCRIBED),
    (TO_POOL, AUTHORIZE),
    (TO_MINER, AUTHORIZED),
    (TO_MINER, DIFFICULTY),
    (TO_MINER, NOTIFY),
    (TO_POOL, SUBMIT),
    (TO_MINER, ACCEPTED),
]
FIRST_NOTIFY = 5  # index of the first job push in SESSION


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def assert_bitcoin_stratum(found: Finding, miner: str, pool: str, port: int) -> None:
    assert found.verdict is Verdict.MINING
    assert found.protocol == "stratum-v1"
    assert found.coin == "btc"
    assert (found.client_ip, found.server_ip, found.server_port) == (miner, pool, port)
    assert found.transport == "tcp"
    assert 0.95 <= found.confidence <= 1.0
    text = " ".join(found.evidence)
    assert "mining.submit" in text
    assert "mining.notify" in text
    assert "Bitcoin-style job" in text


def test_session_on_https_port(scan: ScanRecords) -> None:
    session = TcpSession(MINER, 50123, POOL, 443)
    found = only(scan(session.frames(SESSION)))
    assert_bitcoin_stratum(found, MINER, POOL, 443)
    text = " ".join(found.evidence)
    assert "mining.subscribe" in text and "mining.authorize" in text
    assert "'cgminer/4.10.0'" in text
    assert "BTC wallet address" in text
    assert found.confidence == pytest.approx(0.99)
    assert found.bytes_to_server == sum(len(m) for d, m in SESSION if d is TO_POOL)
    assert found.bytes_to_client == sum(len(m) for d, m in SESSION if d is TO_MINER)


def test_messages_split_across_segments(scan: ScanRecords) -> None:
    session = TcpSession(MINER, 50124, POOL, 8080)
    frames = session.frames(SESSION, segment_sizes={0: [9, 20], 2: [30], 5: [40, 100, 150]})
    assert_bitcoin_stratum(only(scan(frames)), MINER, POOL, 8080)


def test_segments_out_of_order(scan: ScanRecords) -> None:
    session = TcpSession(MINER, 50125, POOL, 8080)
    segments = session.segments(SESSION, segment_sizes={5: [120, 200]})
    notify = [i for i, s in enumerate(segments) if s.payload and s.payload in NOTIFY]
    assert len(notify) == 3
    a, b = notify[0], notify[1]
    segments[a], segments[b] = segments[b], segments[a]  # the second piece arrives first
    frames = [(s.ts_ns, ethernet(session.packet(s))) for s in segments]
    assert_bitcoin_stratum(only(scan(frames)), MINER, POOL, 8080)


def test_capture_starting_mid_stream_with_a_pool_push(scan: ScanRecords) -> None:
    # No handshake, no login: the first packet is the pool's job push, so the pool is the
    # conversation's initiator; the miner (who submits) must still be reported as the client.
    session = TcpSession(MINER, 50126, POOL, 3357)
    found = only(scan(session.frames(SESSION, mid_stream_from=FIRST_NOTIFY)))
    assert_bitcoin_stratum(found, MINER, POOL, 3357)
    assert "mining.subscribe" not in " ".join(found.evidence)


def test_capture_starting_mid_stream_with_difficulty_then_job(scan: ScanRecords) -> None:
    session = TcpSession(MINER, 50127, POOL, 25)
    found = only(scan(session.frames(SESSION, mid_stream_from=FIRST_NOTIFY - 1)))
    assert_bitcoin_stratum(found, MINER, POOL, 25)
    assert "mining.set_difficulty" in " ".join(found.evidence)


def test_ipv6(scan: ScanRecords) -> None:
    session = TcpSession(MINER6, 50128, POOL6, 443)
    assert_bitcoin_stratum(only(scan(session.frames(SESSION))), MINER6, POOL6, 443)


@pytest.mark.parametrize(
    ("vlans", "outer_tpid"),
    [((42,), 0x8100), ((100, 200), 0x88A8), ((100, 200), 0x8100)],
    ids=["802.1Q", "QinQ-802.1ad", "QinQ-double-8100"],
)
def test_vlan_tagged(scan: ScanRecords, vlans: tuple[int, ...], outer_tpid: int) -> None:
    session = TcpSession(MINER, 50129, POOL, 80)
    frames = [
        (ts, ethernet(packet, vlans=vlans, outer_tpid=outer_tpid))
        for ts, packet in session.packets(SESSION)
    ]
    assert_bitcoin_stratum(only(scan(frames)), MINER, POOL, 80)


def test_ipv6_in_qinq(scan: ScanRecords) -> None:
    session = TcpSession(MINER6, 50130, POOL6, 993)
    frames = [
        (ts, ethernet(packet, vlans=(7, 8), outer_tpid=0x88A8))
        for ts, packet in session.packets(SESSION, mid_stream_from=FIRST_NOTIFY)
    ]
    assert_bitcoin_stratum(only(scan(frames)), MINER6, POOL6, 993)


def test_pool_that_speaks_first_after_handshake(scan: ScanRecords) -> None:
    # Some pools push a difficulty as soon as the connection opens, before the subscribe.
    session = TcpSession(MINER, 50131, POOL, 443)
    messages = [(TO_MINER, DIFFICULTY), *SESSION]
    assert_bitcoin_stratum(only(scan(session.frames(messages))), MINER, POOL, 443)


def test_reconnections_are_one_finding(scan: ScanRecords) -> None:
    frames = []
    for i in range(3):
        session = TcpSession(
            MINER, 50200 + i, POOL, 443, start_ns=1_700_000_000 * 10**9 + i * 10**10
        )
        frames += session.frames(SESSION)
    found = only(scan(frames))
    assert_bitcoin_stratum(found, MINER, POOL, 443)
    assert found.connections == 3
    assert "3 connections" in found.evidence


def test_equihash_dialect(scan: ScanRecords) -> None:
    messages = [
        (TO_POOL, line({"id": 1, "method": "mining.subscribe", "params": ["nheqminer/0.5c"]})),
        (TO_MINER, line({"id": 1, "result": [None, "81000001"], "error": None})),
        (TO_POOL, line({"id": 2, "method": "mining.authorize", "params": ["t1" + "a" * 33, ""]})),
        (TO_MINER, line({"id": 2, "result": True, "error": None})),
        (TO_MINER, line({"id": None, "method": "mining.set_target", "params": ["00" * 32]})),
        (
            TO_MINER,
            line(
                {
                    "id": None,
                    "method": "mining.notify",
                    "params": [
                        "1",
                        "04000000",
                        PREV_HASH,
                        "ab" * 32,
                        "00" * 32,
                        "5a0e8c0b",
                        "1d00ffff",
                        True,
                    ],
                }
            ),
        ),
    ]
    found = only(scan(TcpSession(MINER, 50140, POOL, 443).frames(messages)))
    assert found.protocol == "stratum-v1"
    assert found.coin == "zec"
    assert (found.client_ip, found.server_ip, found.server_port) == (MINER, POOL, 443)
    assert "Equihash job" in " ".join(found.evidence)


def test_ethereum_stratum_dialect(scan: ScanRecords) -> None:
    messages = [
        (
            TO_POOL,
            line(
                {
                    "id": 1,
                    "method": "mining.subscribe",
                    "params": ["EthMiner/0.19.0", "EthereumStratum/1.0.0"],
                }
            ),
        ),
        (
            TO_MINER,
            line(
                {
                    "id": 1,
                    "result": [["mining.notify", "ae6812eb", "EthereumStratum/1.0.0"], "0801"],
                    "error": None,
                }
            ),
        ),
        (TO_POOL, line({"id": 2, "method": "mining.authorize", "params": ["0x" + "ab" * 20]})),
        (TO_MINER, line({"id": 2, "result": True, "error": None})),
        (TO_MINER, line({"id": None, "method": "mining.notify", "params": ["bf0488", "cd" * 32]})),
    ]
    # the last notify misses the header hash: the dialect still comes from the subscribe
    found = only(scan(TcpSession(MINER, 50141, POOL, 8443).frames(messages)))
    assert found.protocol == "ethereum-stratum"
    assert found.coin == "eth"
    assert found.verdict is Verdict.MINING
    assert (found.client_ip, found.server_ip, found.server_port) == (MINER, POOL, 8443)
    assert "EthereumStratum/1.0.0 dialect" in found.evidence


def test_ethash_job_shape(scan: ScanRecords) -> None:
    notify = line(
        {"id": None, "method": "mining.notify", "params": ["bf0488", "cd" * 32, "ef" * 32, True]}
    )
    messages = [(TO_MINER, notify), (TO_POOL, SUBMIT)]
    found = only(scan(TcpSession(MINER, 50142, POOL, 9999).frames(messages, mid_stream_from=0)))
    assert found.coin == "eth"
    assert "Ethash job" in " ".join(found.evidence)
    assert (found.client_ip, found.server_ip) == (MINER, POOL)


def test_through_an_http_connect_proxy(scan: ScanRecords) -> None:
    proxy = "10.1.0.1"
    messages = [
        (TO_POOL, b"CONNECT pool.example:3333 HTTP/1.1\r\nHost: pool.example:3333\r\n\r\n"),
        (TO_MINER, b"HTTP/1.1 200 Connection established\r\n\r\n"),
        *SESSION,
    ]
    found = only(scan(TcpSession(MINER, 50150, proxy, 3128).frames(messages)))
    assert_bitcoin_stratum(found, MINER, proxy, 3128)


def websocket_frame(payload: bytes, mask: bytes | None = None) -> bytes:
    """One unfragmented WebSocket text frame (RFC 6455), masked when sent by a client."""
    size = bytes([len(payload)]) if len(payload) < 126 else b"\x7e" + len(payload).to_bytes(2)
    if mask is None:
        return b"\x81" + size + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return b"\x81" + bytes([size[0] | 0x80]) + size[1:] + mask + masked


def test_over_websocket(scan: ScanRecords) -> None:
    # Browser miners reach Stratum through a WebSocket: the client's frames are masked, the
    # pool's pushes are readable.
    upgrade = (
        b"GET /stratum HTTP/1.1\r\nHost: ws.pool.example\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    switched = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    )
    mask = b"\x12\x34\x56\x78"
    messages = [
        (TO_POOL, upgrade),
        (TO_MINER, switched),
        (TO_POOL, websocket_frame(SUBSCRIBE, mask)),
        (TO_MINER, websocket_frame(SUBSCRIBED)),
        (TO_MINER, websocket_frame(DIFFICULTY)),
        (TO_MINER, websocket_frame(NOTIFY)),
        (TO_POOL, websocket_frame(SUBMIT, mask)),
    ]
    found = only(scan(TcpSession(MINER, 50151, POOL, 443).frames(messages)))
    assert found.protocol == "stratum-v1"
    assert found.verdict is Verdict.MINING
    assert (found.client_ip, found.server_ip, found.server_port) == (MINER, POOL, 443)
    assert "pool pushed mining.set_difficulty, mining.notify" in found.evidence


# --- hard negatives -----------------------------------------------------------------------------


def test_json_api_mentioning_mining_in_strings(scan: ScanRecords) -> None:
    request = line({"id": 1, "method": "search", "params": {"q": "mining.subscribe mining.notify"}})
    response = line(
        {
            "id": 1,
            "result": [
                {"title": "How mining.notify works", "body": '{"method": "mining.submit"}'},
                {"tags": ["mining.authorize", "mining.set_difficulty"]},
            ],
            "error": None,
        }
    )
    frames = TcpSession("10.1.2.50", 40000, "203.0.113.80", 443).frames(
        [(TO_POOL, request), (TO_MINER, response)]
    )
    assert scan(frames) == []


def test_http_json_api_mentioning_mining(scan: ScanRecords) -> None:
    body = json.dumps(
        {"article": "Stratum sends mining.notify; miners answer with mining.submit."}
    ).encode()
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    request = b"GET /api/articles/42 HTTP/1.1\r\nHost: news.example\r\nAccept: */*\r\n\r\n"
    frames = TcpSession("10.1.2.51", 40001, "203.0.113.81", 80).frames(
        [(TO_POOL, request), (TO_MINER, response)]
    )
    assert scan(frames) == []


def test_documentation_page_quoting_stratum_messages(scan: ScanRecords) -> None:
    # A person reading the protocol's documentation: the page shows raw Stratum lines.
    page = (
        b"<html><body><h1>Stratum</h1><p>The miner first sends</p>\n<pre>\n"
        + SUBSCRIBE
        + AUTHORIZE
        + b"</pre><p>and the pool pushes jobs:</p>\n<pre>\n"
        + NOTIFY
        + b"</pre></body></html>\n"
    )
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
        + f"Content-Length: {len(page)}\r\n\r\n".encode()
        + page
    )
    request = b"GET /wiki/Stratum HTTP/1.1\r\nHost: docs.example\r\n\r\n"
    frames = TcpSession("10.1.2.52", 40002, "203.0.113.82", 80).frames(
        [(TO_POOL, request), (TO_MINER, response)]
    )
    assert scan(frames) == []


def test_jsonrpc_app_with_mining_namespace_method(scan: ScanRecords) -> None:
    # A dashboard API whose own methods happen to live under "mining." but are not Stratum.
    messages = [
        (TO_POOL, line({"jsonrpc": "2.0", "id": 1, "method": "mining.getStats", "params": []})),
        (TO_MINER, line({"jsonrpc": "2.0", "id": 1, "result": {"rigs": 0}})),
    ]
    frames = TcpSession("10.1.2.53", 40003, "203.0.113.83", 8545).frames(messages)
    assert scan(frames) == []
