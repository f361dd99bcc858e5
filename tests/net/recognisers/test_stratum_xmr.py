"""CryptoNote / XMRig stratum end to end, and JSON-RPC apps that use the same method names."""

from __future__ import annotations

import json
from typing import Any

from minewatch.findings import Finding, Verdict
from minewatch.net.capture.writer import Direction, TcpSession, ethernet

from .conftest import ScanRecords

MINER, POOL = "172.16.5.20", "203.0.113.44"
TO_POOL, TO_MINER = Direction.TO_SERVER, Direction.TO_CLIENT
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
WALLET = "4" + (_B58 * 2)[3:97]  # a 95-character standard Monero address shape
AGENT = "XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/11.3.0"
BLOB = "1010" + "ab" * 74  # 152 hex digits: a 76-byte hashing blob
SEED = "9f" * 32


def line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def job(job_id: str) -> dict[str, Any]:
    return {
        "blob": BLOB,
        "job_id": job_id,
        "target": "b88d0600",
        "algo": "rx/0",
        "height": 3123456,
        "seed_hash": SEED,
    }


LOGIN = line(
    {
        "id": 1,
        "jsonrpc": "2.0",
        "method": "login",
        "params": {"login": WALLET, "pass": "x", "agent": AGENT, "algo": ["rx/0", "cn/r"]},
    }
)
LOGGED_IN = line(
    {
        "id": 1,
        "jsonrpc": "2.0",
        "error": None,
        "result": {"id": "a1b2", "job": job("j1"), "extensions": ["algo"], "status": "OK"},
    }
)
JOB = line({"jsonrpc": "2.0", "method": "job", "params": job("j2")})
SUBMIT = line(
    {
        "id": 2,
        "jsonrpc": "2.0",
        "method": "submit",
        "params": {"id": "a1b2", "job_id": "j2", "nonce": "a1b2c3d4", "result": "5e" * 32},
    }
)
ACCEPTED = line({"id": 2, "jsonrpc": "2.0", "error": None, "result": {"status": "OK"}})
KEEPALIVE = line({"id": 3, "jsonrpc": "2.0", "method": "keepalived", "params": {"id": "a1b2"}})
SESSION = [
    (TO_POOL, LOGIN),
    (TO_MINER, LOGGED_IN),
    (TO_MINER, JOB),
    (TO_POOL, SUBMIT),
    (TO_MINER, ACCEPTED),
    (TO_POOL, KEEPALIVE),
]
FIRST_PUSH = 2


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def assert_xmr(found: Finding, port: int, client: str = MINER, server: str = POOL) -> str:
    assert found.verdict is Verdict.MINING
    assert found.protocol == "stratum-xmr"
    assert found.coin == "xmr"
    assert (found.client_ip, found.server_ip, found.server_port) == (client, server, port)
    assert found.transport == "tcp"
    assert found.confidence >= 0.9
    text = " ".join(found.evidence)
    assert "job" in text and "submitted" in text
    return text


def test_session_on_https_port(scan: ScanRecords) -> None:
    found = only(scan(TcpSession(MINER, 41000, POOL, 443).frames(SESSION)))
    text = assert_xmr(found, 443)
    assert found.confidence == 0.99
    assert f"agent {AGENT!r}" in text
    assert "XMR wallet address" in text
    assert "job algorithm rx/0" in text
    assert "submitted 1 share(s)" in text
    assert "keepalived" in text


def test_messages_split_across_segments(scan: ScanRecords) -> None:
    # the hashing blob and the wallet address are both cut in two
    frames = TcpSession(MINER, 41001, POOL, 80).frames(
        SESSION, segment_sizes={0: [60, 50], 1: [90], 2: [100, 100]}
    )
    assert_xmr(only(scan(frames)), 80)


def test_capture_starting_mid_stream(scan: ScanRecords) -> None:
    # only job pushes and submits are visible; the pool's push is the first packet
    frames = TcpSession(MINER, 41002, POOL, 8080).frames(SESSION, mid_stream_from=FIRST_PUSH)
    found = only(scan(frames))
    text = assert_xmr(found, 8080)
    assert "logged in" not in text


def test_mid_stream_with_a_job_cut_by_the_capture(scan: ScanRecords) -> None:
    # The capture starts inside a job push: only its tail (with the blob) is seen, then the
    # miner's submit and the pool's answer.
    cut = JOB[JOB.index(b'"blob"') :]
    messages = [(TO_MINER, JOB[:20] + cut), (TO_POOL, SUBMIT), (TO_MINER, ACCEPTED)]
    session = TcpSession(MINER, 41003, POOL, 53)
    segments = session.segments(messages, segment_sizes={0: [20]}, mid_stream_from=0)
    segments = [s for s in segments if s.payload != JOB[:20]]
    assert segments[0].payload == cut
    frames = [(s.ts_ns, ethernet(session.packet(s))) for s in segments]
    found = only(scan(frames))
    assert found.protocol == "stratum-xmr"
    assert (found.client_ip, found.server_ip, found.server_port) == (MINER, POOL, 53)


def test_ipv6(scan: ScanRecords) -> None:
    miner, pool = "2001:db8:5::20", "2001:db8:77::44"
    frames = TcpSession(miner, 41004, pool, 443).frames(SESSION)
    assert_xmr(only(scan(frames)), 443, miner, pool)


def test_qinq_tagged(scan: ScanRecords) -> None:
    session = TcpSession(MINER, 41005, POOL, 443)
    frames = [
        (ts, ethernet(p, vlans=(300, 12), outer_tpid=0x88A8)) for ts, p in session.packets(SESSION)
    ]
    assert_xmr(only(scan(frames)), 443)


def test_coin_from_job_algorithm_when_login_is_not_a_wallet(scan: ScanRecords) -> None:
    login = line(
        {"id": 1, "method": "login", "params": {"login": "worker7", "pass": "x", "agent": AGENT}}
    )
    messages = [(TO_POOL, login), *SESSION[1:]]
    found = only(scan(TcpSession(MINER, 41006, POOL, 3389).frames(messages)))
    assert found.coin == "xmr"
    assert "job algorithm rx/0" in found.evidence


def test_agentless_login_of_a_web_miner_proxy(scan: ScanRecords) -> None:
    login = line({"id": 1, "method": "login", "params": {"login": WALLET, "pass": "x"}})
    messages = [(TO_POOL, login), (TO_MINER, LOGGED_IN)]
    found = only(scan(TcpSession(MINER, 41007, POOL, 443).frames(messages)))
    assert found.protocol == "stratum-xmr"
    assert found.coin == "xmr"
    assert found.confidence == 0.99
    assert (found.client_ip, found.server_ip) == (MINER, POOL)


# --- hard negatives -----------------------------------------------------------------------------


def test_generic_jsonrpc_login_submit_job(scan: ScanRecords) -> None:
    messages = [
        (
            TO_POOL,
            line(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "login",
                    "params": {"username": "alice", "password": "correct horse"},
                }
            ),
        ),
        (TO_MINER, line({"jsonrpc": "2.0", "id": 1, "result": {"token": "eyJhbGciOi"}})),
        (
            TO_POOL,
            line(
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "submit",
                    "params": {"form": "contact", "fields": {"name": "Alice", "msg": "hi"}},
                }
            ),
        ),
        (TO_MINER, line({"jsonrpc": "2.0", "id": 2, "result": {"status": "OK"}})),
        (
            TO_MINER,
            line({"jsonrpc": "2.0", "method": "job", "params": {"id": 42, "state": "queued"}}),
        ),
    ]
    assert scan(TcpSession("10.9.9.9", 42000, "203.0.113.99", 443).frames(messages)) == []


def test_generic_login_with_a_login_field(scan: ScanRecords) -> None:
    # "login" is also a common name for a user name field
    messages = [
        (
            TO_POOL,
            line(
                {
                    "id": 1,
                    "method": "login",
                    "params": {"login": "alice@example.com", "password": "secret"},
                }
            ),
        ),
        (TO_MINER, line({"id": 1, "result": {"session": "5f2c", "expires": 3600}})),
        (
            TO_POOL,
            line({"id": 2, "method": "submit", "params": {"job_id": 7, "document": "report.pdf"}}),
        ),
        (TO_MINER, line({"id": 2, "result": True})),
    ]
    assert scan(TcpSession("10.9.9.8", 42001, "203.0.113.98", 8443).frames(messages)) == []


def test_print_queue_job_with_hex_fields(scan: ScanRecords) -> None:
    # A job-queue API whose job ids are hex, but which carries no hashing blob and target
    messages = [
        (TO_POOL, line({"id": 1, "method": "getjob", "params": []})),
        (
            TO_MINER,
            line({"method": "job", "params": {"job_id": "0a1b2c3d", "printer": "lp0", "pages": 3}}),
        ),
    ]
    assert scan(TcpSession("10.9.9.7", 42002, "203.0.113.97", 631).frames(messages)) == []
