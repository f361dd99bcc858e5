"""getwork and getblocktemplate over HTTP end to end, and ordinary blockchain-node RPC."""

from __future__ import annotations

import json
from typing import Any

from minewatch.findings import Finding, Verdict
from minewatch.net.capture.writer import Direction, TcpSession, ethernet

from .conftest import ScanRecords

MINER, POOL = "192.168.40.7", "198.51.100.120"
TO_POOL, TO_MINER = Direction.TO_SERVER, Direction.TO_CLIENT


def post(body: dict[str, Any], *extra: str) -> bytes:
    data = json.dumps(body).encode()
    head = [
        "POST / HTTP/1.1",
        "Host: pool.example:8332",
        "Authorization: Basic d29ya2VyOng=",
        "User-Agent: cgminer/4.10.0",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


def ok(body: dict[str, Any], *extra: str) -> bytes:
    data = json.dumps(body).encode()
    head = [
        "HTTP/1.1 200 OK",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


EXTENSIONS = "X-Mining-Extensions: longpoll midstate rollntime submitold"
GBT = post(
    {
        "id": 0,
        "method": "getblocktemplate",
        "params": [{"capabilities": ["coinbasetxn", "workid", "coinbase/append"]}],
    },
    EXTENSIONS,
)
TEMPLATE = ok(
    {
        "result": {
            "version": 536870912,
            "previousblockhash": "00" * 4 + "ab" * 28,
            "transactions": [],
            "coinbasevalue": 625000000,
            "target": "00000000ffff" + "00" * 26,
            "curtime": 1700000000,
            "bits": "1d00ffff",
            "height": 820000,
        },
        "error": None,
        "id": 0,
    },
    "X-Stratum: stratum+tcp://pool.example:3333",
)
GETWORK = post({"method": "getwork", "params": [], "id": 1}, EXTENSIONS)
WORK = ok(
    {
        "result": {"data": "00000002" + "ab" * 124, "target": "ff" * 28 + "00000000"},
        "error": None,
        "id": 1,
    },
    "X-Long-Polling: /LP",
)
SUBMIT_WORK = post({"method": "getwork", "params": ["00000002" + "cd" * 124], "id": 2})
TRUE = ok({"result": True, "error": None, "id": 2})


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def assert_http_mining(found: Finding, protocol: str, port: int) -> str:
    assert found.verdict is Verdict.MINING
    assert found.protocol == protocol
    assert (found.client_ip, found.server_ip, found.server_port) == (MINER, POOL, port)
    assert found.transport == "tcp"
    assert 0.8 <= found.confidence <= 1.0
    return " ".join(found.evidence)


def test_getblocktemplate_on_https_port(scan: ScanRecords) -> None:
    frames = TcpSession(MINER, 44000, POOL, 443).frames([(TO_POOL, GBT), (TO_MINER, TEMPLATE)])
    found = only(scan(frames))
    text = assert_http_mining(found, "getblocktemplate", 443)
    assert found.confidence == 0.98
    assert "getblocktemplate" in text
    assert "x-mining-extensions: longpoll" in text
    assert "x-stratum: stratum+tcp://pool.example:3333" in text
    assert "server answered with work" in text


def test_getwork(scan: ScanRecords) -> None:
    messages = [(TO_POOL, GETWORK), (TO_MINER, WORK), (TO_POOL, SUBMIT_WORK), (TO_MINER, TRUE)]
    found = only(scan(TcpSession(MINER, 44001, POOL, 80).frames(messages)))
    text = assert_http_mining(found, "getwork", 80)
    assert "HTTP JSON-RPC calls getwork" in text
    assert "x-long-polling" in text


def test_ethereum_getwork_over_http(scan: ScanRecords) -> None:
    request = post({"jsonrpc": "2.0", "id": 1, "method": "eth_getWork", "params": []})
    response = ok({"jsonrpc": "2.0", "id": 1, "result": ["0x" + "1c" * 32, "0x" + "7e" * 32]})
    frames = TcpSession(MINER, 44002, POOL, 8545).frames([(TO_POOL, request), (TO_MINER, response)])
    found = only(scan(frames))
    assert_http_mining(found, "getwork", 8545)
    assert found.coin == "eth"


def test_headers_and_body_in_separate_segments(scan: ScanRecords) -> None:
    header_len = GBT.index(b"\r\n\r\n") + 4
    frames = TcpSession(MINER, 44003, POOL, 8080).frames(
        [(TO_POOL, GBT), (TO_MINER, TEMPLATE)],
        segment_sizes={0: [17, header_len - 17, 20], 1: [30]},
    )
    assert_http_mining(only(scan(frames)), "getblocktemplate", 8080)


def test_body_not_captured(scan: ScanRecords) -> None:
    # Only the request headers made it into the capture (snap length, lost segment).
    headers = GBT[: GBT.index(b"\r\n\r\n") + 4]
    frames = TcpSession(MINER, 44004, POOL, 443).frames([(TO_POOL, headers)])
    found = only(scan(frames))
    text = assert_http_mining(found, "getblocktemplate", 443)
    assert "request body not captured" in text


def test_capture_starting_mid_stream_with_a_response(scan: ScanRecords) -> None:
    # The first packet is the pool's answer; the miner's next request follows.
    messages = [(TO_POOL, GETWORK), (TO_MINER, WORK), (TO_POOL, SUBMIT_WORK), (TO_MINER, TRUE)]
    frames = TcpSession(MINER, 44005, POOL, 3000).frames(messages, mid_stream_from=1)
    assert_http_mining(only(scan(frames)), "getwork", 3000)


def test_ipv6_qinq(scan: ScanRecords) -> None:
    miner, pool = "2001:db8:40::7", "2001:db8:51::120"
    session = TcpSession(miner, 44006, pool, 443)
    frames = [
        (ts, ethernet(p, vlans=(10, 20), outer_tpid=0x88A8))
        for ts, p in session.packets([(TO_POOL, GBT), (TO_MINER, TEMPLATE)])
    ]
    found = only(scan(frames))
    assert found.protocol == "getblocktemplate"
    assert (found.client_ip, found.server_ip, found.server_port) == (miner, pool, 443)


# --- hard negatives -----------------------------------------------------------------------------


def test_bitcoin_node_rpc(scan: ScanRecords) -> None:
    messages = [
        (TO_POOL, post({"jsonrpc": "1.0", "id": "c", "method": "getblockchaininfo", "params": []})),
        (
            TO_MINER,
            ok({"result": {"chain": "main", "blocks": 820000}, "error": None, "id": "c"}),
        ),
        (TO_POOL, post({"jsonrpc": "1.0", "id": "d", "method": "getbestblockhash", "params": []})),
        (TO_MINER, ok({"result": "00" * 32, "error": None, "id": "d"})),
    ]
    assert scan(TcpSession("10.40.0.2", 45000, "10.40.0.3", 8332).frames(messages)) == []


def test_ethereum_node_rpc(scan: ScanRecords) -> None:
    messages = [
        (TO_POOL, post({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []})),
        (TO_MINER, ok({"jsonrpc": "2.0", "id": 1, "result": "0x12a05f2"})),
    ]
    assert scan(TcpSession("10.40.0.4", 45001, "10.40.0.5", 8545).frames(messages)) == []


def test_documentation_page_about_getwork(scan: ScanRecords) -> None:
    page = b'<pre>{"method": "getwork", "params": [], "id": 1}</pre>\n<p>getblocktemplate</p>'
    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
        + f"Content-Length: {len(page)}\r\n\r\n".encode()
        + page
    )
    request = b"GET /wiki/Getwork HTTP/1.1\r\nHost: wiki.example\r\n\r\n"
    frames = TcpSession("10.40.0.6", 45002, "203.0.113.6", 80).frames(
        [(TO_POOL, request), (TO_MINER, response)]
    )
    assert scan(frames) == []
