"""eth-proxy (Ethereum getwork over raw TCP JSON-RPC) end to end, and Ethereum node RPC."""

from __future__ import annotations

import json
from typing import Any

from minewatch.findings import Finding, Verdict
from minewatch.net.capture.writer import Direction, TcpSession, ethernet

from .conftest import ScanRecords

MINER, POOL = "10.20.0.8", "198.51.100.90"
TO_POOL, TO_MINER = Direction.TO_SERVER, Direction.TO_CLIENT
WALLET = "0x" + "5a0b54d5dc17e0aadc383d2db43b0a0d3e029c4c"
HEADER, SEED, TARGET = "0x" + "1c" * 32, "0x" + "7e" * 32, "0x" + "00000000ffff" + "00" * 26


def line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


LOGIN = line({"id": 1, "jsonrpc": "2.0", "method": "eth_submitLogin", "params": [WALLET, "x"]})
LOGGED_IN = line({"id": 1, "jsonrpc": "2.0", "result": True})
GET_WORK = line({"id": 2, "jsonrpc": "2.0", "method": "eth_getWork", "params": []})
WORK = line({"id": 2, "jsonrpc": "2.0", "result": [HEADER, SEED, TARGET]})
PUSHED_WORK = line({"id": 0, "jsonrpc": "2.0", "result": [HEADER, SEED, TARGET]})
HASHRATE = line(
    {
        "id": 3,
        "jsonrpc": "2.0",
        "method": "eth_submitHashrate",
        "params": ["0x" + "0" * 56 + "1dcd6500", "0x" + "ab" * 32],
    }
)
SUBMIT = line(
    {
        "id": 4,
        "jsonrpc": "2.0",
        "method": "eth_submitWork",
        "params": ["0x" + "a1" * 8, HEADER, "0x" + "3f" * 32],
    }
)
TRUE_4 = line({"id": 4, "jsonrpc": "2.0", "result": True})
SESSION = [
    (TO_POOL, LOGIN),
    (TO_MINER, LOGGED_IN),
    (TO_POOL, GET_WORK),
    (TO_MINER, WORK),
    (TO_POOL, HASHRATE),
    (TO_MINER, line({"id": 3, "jsonrpc": "2.0", "result": True})),
    (TO_MINER, PUSHED_WORK),
    (TO_POOL, SUBMIT),
    (TO_MINER, TRUE_4),
]


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def assert_eth_proxy(found: Finding, port: int) -> str:
    assert found.verdict is Verdict.MINING
    assert found.protocol == "eth-proxy"
    assert found.coin == "eth"
    assert (found.client_ip, found.server_ip, found.server_port) == (MINER, POOL, port)
    assert found.transport == "tcp"
    assert 0.85 <= found.confidence <= 1.0
    text = " ".join(found.evidence)
    assert "eth_submitWork" in text
    return text


def test_session_on_https_port(scan: ScanRecords) -> None:
    found = only(scan(TcpSession(MINER, 43000, POOL, 443).frames(SESSION)))
    text = assert_eth_proxy(found, 443)
    assert found.confidence == 0.99
    assert "eth_submitLogin" in text and "eth_getWork" in text
    assert "Ethereum-format wallet address" in text
    assert "work packages" in text


def test_messages_split_across_segments(scan: ScanRecords) -> None:
    frames = TcpSession(MINER, 43001, POOL, 8080).frames(
        SESSION, segment_sizes={0: [10, 10, 10], 3: [50], 7: [33, 44]}
    )
    assert_eth_proxy(only(scan(frames)), 8080)


def test_capture_starting_mid_stream_with_pushed_work(scan: ScanRecords) -> None:
    # The pool's unsolicited work push is the first packet; the miner's submit follows.
    frames = TcpSession(MINER, 43002, POOL, 4444).frames(SESSION, mid_stream_from=6)
    text = assert_eth_proxy(only(scan(frames)), 4444)
    assert "eth_submitLogin" not in text


def test_ipv6_vlan(scan: ScanRecords) -> None:
    miner, pool = "2001:db8:20::8", "2001:db8:51::90"
    session = TcpSession(miner, 43003, pool, 443)
    frames = [(ts, ethernet(p, vlans=(5,))) for ts, p in session.packets(SESSION)]
    found = only(scan(frames))
    assert found.protocol == "eth-proxy"
    assert (found.client_ip, found.server_ip, found.server_port) == (miner, pool, 443)


# --- hard negatives -----------------------------------------------------------------------------


def http_post(host: str, body: bytes) -> bytes:
    return (
        f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def http_ok(body: bytes) -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_node_rpc_over_http(scan: ScanRecords) -> None:
    calls = [
        (b'{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}', b'"0x12a05f2"'),
        (
            b'{"jsonrpc":"2.0","id":2,"method":"eth_getBalance","params":["'
            + WALLET.encode()
            + b'","latest"]}',
            b'"0x1bc16d674ec80000"',
        ),
    ]
    messages = []
    for i, (call, result) in enumerate(calls, 1):
        messages.append((TO_POOL, http_post("node.internal:8545", call)))
        messages.append((TO_MINER, http_ok(b'{"jsonrpc":"2.0","id":%d,"result":%s}' % (i, result))))
    assert scan(TcpSession("10.20.0.50", 43100, "10.20.0.60", 8545).frames(messages)) == []


def test_node_rpc_over_raw_tcp(scan: ScanRecords) -> None:
    messages = [
        (TO_POOL, line({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []})),
        (TO_MINER, line({"jsonrpc": "2.0", "id": 1, "result": "0x12a05f2"})),
        (TO_POOL, line({"jsonrpc": "2.0", "id": 2, "method": "eth_syncing", "params": []})),
        (TO_MINER, line({"jsonrpc": "2.0", "id": 2, "result": False})),
        (
            TO_POOL,
            line(
                {
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "eth_getBlockByNumber",
                    "params": ["latest", False],
                }
            ),
        ),
        (TO_MINER, line({"jsonrpc": "2.0", "id": 3, "result": {"hash": HEADER, "nonce": "0x0"}})),
    ]
    assert scan(TcpSession("10.20.0.51", 43101, "10.20.0.61", 443).frames(messages)) == []
