"""Probing real pools and real non-pool servers on loopback."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from minewatch.errors import InputError
from minewatch.net.probe.client import Prober, ProbeResult, Target, parse_target
from minewatch.net.probe.protocols import MAX_REPLY, PROTOCOL_ORDER, Strength
from tests.net.probe.servers import (
    ServerThread,
    flood,
    garbage,
    jsonrpc_service,
    noise_nx_responder,
    server_tls,
    silent,
    tls_proxy,
)


def probe(port: int, transports: tuple[str, ...] = ("plain", "tls"), **kw: object) -> ProbeResult:
    prober = Prober(timeout_s=float(kw.pop("timeout_s", 3.0)), **kw)  # type: ignore[arg-type]
    return asyncio.run(prober.probe("127.0.0.1", port, transports=transports))


def test_cryptonote_pool_answers_login_with_a_job(xmr_pool: int) -> None:
    result = probe(xmr_pool, ("plain",))
    assert result.answered == "stratum-xmr"
    assert result.strength is Strength.CONFIRMED
    assert "mining job" in result.evidence[0] and "algo rx/0" in result.evidence[0]
    assert result.best is not None and result.best.coin == "xmr"
    # Stratum v1 was asked first and refused: the pool wants a login first.
    assert result.attempts[0].protocol == "stratum-v1"
    assert result.attempts[0].strength is Strength.NO


def test_cryptonote_pool_inside_tls(xmr_tls_pool: int) -> None:
    result = probe(xmr_tls_pool, ("tls",))
    assert (result.answered, result.strength) == ("stratum-xmr", Strength.CONFIRMED)
    best = result.best
    assert best is not None and best.transport == "tls" and best.tls is not None
    assert len(best.tls["certificate_sha256"]) == 64
    # The plain attempt on the same TLS port finds TLS, not a pool.
    both = probe(xmr_tls_pool)
    plain = [a for a in both.attempts if a.transport == "plain"]
    assert plain and all(a.strength is Strength.NO for a in plain)
    assert both.answered == "stratum-xmr" and both.best is not None
    assert both.best.transport == "tls"


def test_stratum_v1_pool_from_npm(stratum_pool: int) -> None:
    result = probe(stratum_pool, ("plain",))
    assert (result.answered, result.strength) == ("stratum-v1", Strength.CONFIRMED)
    assert "extranonce1 08000002" in result.evidence[0]
    assert len(result.attempts) == 1  # confirmed at once: nothing else was asked


def test_stratum_v1_pool_inside_tls(
    stratum_pool: int, servers: ServerThread, certificate: tuple[Path, Path]
) -> None:
    front = servers.serve(tls_proxy(stratum_pool), tls=server_tls(*certificate))
    result = probe(front.port, ("tls",))
    assert (result.answered, result.strength) == ("stratum-v1", Strength.CONFIRMED)


def test_stratum_v2_noise_responder_is_likely(servers: ServerThread) -> None:
    # SYNTHETIC responder: the reply has the SV2 Noise NX shape only.
    sv2 = servers.serve(noise_nx_responder)
    result = probe(sv2.port, ("plain",))
    assert (result.answered, result.strength) == ("stratum-v2", Strength.LIKELY)
    v2 = [a for a in result.attempts if a.protocol == "stratum-v2"]
    assert v2[0].reply_bytes == 234


def test_https_server_is_not_a_pool(https_server: int) -> None:
    result = probe(https_server)
    assert result.answered is None and result.strength is Strength.NO
    tls_attempts = [a for a in result.attempts if a.transport == "tls"]
    # http.server answers a line it cannot parse with an HTML error page.
    assert any("HTML page" in a.evidence or "HTTP response" in a.evidence for a in tls_attempts)


def test_ssh_server_is_not_a_pool(sshd: int) -> None:
    result = probe(sshd)
    assert result.answered is None
    assert any("SSH banner" in a.evidence for a in result.attempts)
    # TLS cannot be negotiated with sshd: one failed TLS attempt, not one per protocol.
    assert sum(a.transport == "tls" for a in result.attempts) == 1


def test_mqtt_broker_is_not_a_pool(mosquitto: int) -> None:
    result = probe(mosquitto)
    assert result.answered is None and result.strength is Strength.NO
    assert len(result.attempts) >= 3


def test_jsonrpc_service_without_mining_methods(servers: ServerThread) -> None:
    service = servers.serve(jsonrpc_service)
    result = probe(service.port, ("plain",))
    assert result.answered is None
    assert any("Method not found" in a.evidence for a in result.attempts)


def test_closed_port_is_one_attempt() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = probe(port)
    assert result.answered is None
    assert [a.transport for a in result.attempts] == ["plain", "tls"]
    assert all("refused" in a.evidence for a in result.attempts)


def test_silent_server_times_out(servers: ServerThread) -> None:
    quiet = servers.serve(silent)
    result = probe(quiet.port, ("plain",), timeout_s=0.5)
    assert result.answered is None
    assert len(result.attempts) == len(PROTOCOL_ORDER)
    assert all("nothing more within" in a.evidence for a in result.attempts)


def test_garbage_is_not_a_pool(servers: ServerThread) -> None:
    noisy = servers.serve(garbage)
    result = probe(noisy.port, ("plain",), timeout_s=1.0)
    assert result.answered is None


def test_ten_megabytes_are_cut_off(servers: ServerThread) -> None:
    flooding = servers.serve(flood)
    result = probe(flooding.port, ("plain",), timeout_s=3.0)
    assert result.answered is None
    assert all(a.reply_bytes <= MAX_REPLY for a in result.attempts)
    assert any(a.reply_bytes == MAX_REPLY and "cut off" in a.evidence for a in result.attempts)


def test_result_round_trips_through_its_dict(xmr_pool: int) -> None:
    result = probe(xmr_pool, ("plain",))
    again = ProbeResult.from_dict(result.to_dict())
    assert again.to_dict() == result.to_dict()


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("127.0.0.1:3333", Target("127.0.0.1", 3333)),
        ("pool.example:443", Target("pool.example", 443)),
        ("[::1]:14444", Target("::1", 14444)),
    ],
)
def test_parse_target(text: str, target: Target) -> None:
    assert parse_target(text) == target


@pytest.mark.parametrize("text", ["pool.example", "::1:3333", "host:0", "host:70000", "[::1]3"])
def test_parse_target_rejects(text: str) -> None:
    with pytest.raises(InputError):
        parse_target(text)
