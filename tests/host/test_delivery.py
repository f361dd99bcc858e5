"""Delivery of spooled reports to a real HTTPS server on loopback.

The server is real (uvicorn, TLS with a certificate made here by ``cryptography``, real sockets);
its application is a *contract stand-in*: a small FastAPI app in this module that implements
exactly the host-report contract agreed with the minewatch API (201 stored, 200 duplicate
``report_id``, 401 bad token, 403 read-only token, 409 ``report_id`` taken by a different report,
422 rejected report, 503 on demand, and "stored but the answer was lost" on demand). The end-to-end test against the real
``minewatch.api.app.create_app`` lives with the API. The helpers here (the stand-in, the fake
clock, senders and reports) are imported by ``test_agent_loop``; the fixtures both use (``tls``,
``server``, ``spool``) are in ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pickle
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from minewatch.errors import InputError
from minewatch.findings import Verdict
from minewatch.host.delivery import (
    TOKEN_ENV,
    Backoff,
    DeliveryAuthError,
    ReportSender,
    Secret,
    SendStatus,
    load_token,
    validate_server_url,
)
from minewatch.host.model import HostFinding
from minewatch.host.spool import HostReport, Spool
from tests.support.https import LoopbackServer, TlsFiles

# -- the contract stand-in -----------------------------------------------------------------


@dataclass
class ContractState:
    """What the stand-in server stored, and the faults it is told to inject."""

    token: str = field(default_factory=lambda: "mw_" + secrets.token_hex(20))
    readonly_token: str = field(default_factory=lambda: "mw_ro_" + secrets.token_hex(20))
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    store_order: list[str] = field(default_factory=list)
    posts: list[str] = field(default_factory=list)
    """report_id of every authenticated POST, retries included."""
    unavailable: int = 0
    """Answer the next N POSTs with 503 + Retry-After."""
    retry_after_s: int = 30
    store_then_500: int = 0
    """Store the next N reports, then answer 500 as if the answer got lost."""
    store_then_stall_s: float = 0.0
    """Store, then wait this long before answering (the client times out first)."""
    portal: bool = False
    """Answer every request 200 with an HTML page, like a captive portal or a proxy."""
    echo_token_in_errors: bool = False
    """A careless server that quotes the Authorization header in its error messages."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, report_id: str) -> int:
        return self.store_order.count(report_id)


REQUIRED = ("report_id", "hostname", "agent_version", "scanned_at", "findings", "blind_spots")


def contract_app(state: ContractState) -> FastAPI:
    """The host-report contract, nothing more; 'hostname == reject-me' provokes a 422, and a
    known report_id with another hostname or scan time a 409 (as the real API does)."""
    app = FastAPI()

    @app.post("/api/v1/host-reports/")
    async def host_reports(request: Request) -> Response:
        if state.portal:
            return PlainTextResponse("<html>Please log in</html>", media_type="text/html")
        auth = request.headers.get("authorization", "")
        quoted = f" (got {auth!r})" if state.echo_token_in_errors else ""
        if auth == f"Token {state.readonly_token}":
            return JSONResponse({"detail": "read-only token" + quoted}, status_code=403)
        if auth != f"Token {state.token}":
            return JSONResponse({"detail": "invalid token" + quoted}, status_code=401)
        body = await request.json()
        missing = [key for key in REQUIRED if key not in body]
        if missing or body["hostname"] == "reject-me":
            problem = [{"loc": ["body", "hostname"], "msg": "hostname not allowed" + quoted}]
            return JSONResponse({"detail": missing or problem}, status_code=422)
        report_id = body["report_id"]
        with state.lock:
            state.posts.append(report_id)
            if state.unavailable:
                state.unavailable -= 1
                return JSONResponse(
                    {"detail": "maintenance" + quoted},
                    status_code=503,
                    headers={"Retry-After": str(state.retry_after_s)},
                )
            if report_id in state.stored:
                earlier = state.stored[report_id]
                if (earlier["hostname"], earlier["scanned_at"]) != (
                    body["hostname"],
                    body["scanned_at"],
                ):
                    detail = "report_id already used by a different report" + quoted
                    return JSONResponse({"detail": detail}, status_code=409)
                return JSONResponse({"report_id": report_id, "status": "duplicate"}, 200)
            state.stored[report_id] = body
            state.store_order.append(report_id)
            fail = state.store_then_500 > 0
            if fail:
                state.store_then_500 -= 1
        if fail:
            return PlainTextResponse("Internal Server Error" + quoted, status_code=500)
        if state.store_then_stall_s:
            await asyncio.sleep(state.store_then_stall_s)
        return JSONResponse({"report_id": report_id, "status": "stored"}, status_code=201)

    return app


class ContractServer(LoopbackServer):
    """The contract stand-in served over HTTPS, with its state at hand for assertions."""

    def __init__(self, tls: TlsFiles, state: ContractState, port: int | None = None) -> None:
        super().__init__(tls, contract_app(state), port)
        self.state = state


class FakeClock:
    """Monotonic seconds that advance only when a test says so (drives the backoff)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def make_sender(url: str, token: str, tls: TlsFiles, **kwargs: Any) -> ReportSender:
    kwargs.setdefault("ca_file", tls.ca_file)
    return ReportSender(url, Secret(token), trust_env=False, **kwargs)


def report(hostname: str = "web-01", n: int = 0) -> HostReport:
    finding = HostFinding(
        verdict=Verdict.MINING,
        kind="xmrig",
        entity=f"pid {4000 + n} /usr/bin/xmrig",
        coin="xmr",
        confidence=0.97,
        evidence=[f"scan {n}: process name is xmrig"],
        pid=4000 + n,
    )
    return HostReport.create(hostname, [finding], ["no NVML library"])


def spooled_ids(spool: Spool) -> list[str]:
    return [entry.report.report_id for entry in spool.iter_pending()]


# -- the token -----------------------------------------------------------------------------


def test_secret_hides_its_value_everywhere() -> None:
    token = Secret("mw_supersecret")
    assert repr(token) == str(token) == f"{token}" == "***"
    assert "mw_supersecret" not in repr([token, {"t": token}])
    assert token.reveal() == "mw_supersecret"
    assert token.scrub("Token mw_supersecret!") == "Token ***!"
    with pytest.raises(TypeError):
        pickle.dumps(token)
    with pytest.raises(InputError) as bad:
        Secret("mw_super secret\n")
    assert "mw_super" not in str(bad.value)
    with pytest.raises(InputError):
        Secret("")


def test_load_token_from_file_env_or_argument(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("mw_fromfile\n")
    token_file.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        assert load_token(token_file=token_file, environ={}).reveal() == "mw_fromfile"
    assert not caplog.records
    assert load_token(environ={TOKEN_ENV: " mw_fromenv\n"}).reveal() == "mw_fromenv"
    # An explicit source wins over the environment.
    assert load_token("mw_arg", environ={TOKEN_ENV: "mw_env"}).reveal() == "mw_arg"
    with pytest.raises(InputError, match="not both"):
        load_token("mw_arg", token_file)
    with pytest.raises(InputError, match=TOKEN_ENV):
        load_token(environ={})
    token_file.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        load_token(token_file=token_file, environ={})
    assert "other users" in caplog.text and "mw_fromfile" not in caplog.text
    token_file.write_text("mw_a\nmw_b\n")
    with pytest.raises(InputError, match="one line"):
        load_token(token_file=token_file)
    with pytest.raises(InputError, match="not a regular file"):
        load_token(token_file=tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        load_token(token_file=fifo)  # must not block waiting for a writer
    with pytest.raises(InputError, match="cannot read"):
        load_token(token_file=tmp_path / "missing")


# -- the URL -------------------------------------------------------------------------------


def test_server_url_must_be_https_unless_loopback_or_allowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert validate_server_url("https://mw.example.org/") == "https://mw.example.org"
    assert validate_server_url("https://mw.example.org/mw/") == "https://mw.example.org/mw"
    for loopback in ("http://127.0.0.1:8000", "http://[::1]:8000", "http://localhost"):
        assert validate_server_url(loopback).startswith("http://")
    with pytest.raises(InputError, match="unencrypted"):
        validate_server_url("http://mw.example.org")
    with caplog.at_level(logging.WARNING):
        assert validate_server_url("http://10.1.2.3", allow_insecure_http=True) == (
            "http://10.1.2.3"
        )
    assert "plain http" in caplog.text
    for bad in ("ftp://mw.example.org", "mw.example.org", "https://"):
        with pytest.raises(InputError):
            validate_server_url(bad)
    with pytest.raises(InputError, match="password"):
        validate_server_url("https://agent:pw@mw.example.org")
    with pytest.raises(InputError, match="query"):
        validate_server_url("https://mw.example.org/?token=x")
    sender = ReportSender("https://mw.example.org/base/", Secret("x"), trust_env=False)
    assert sender.endpoint == "https://mw.example.org/base/api/v1/host-reports/"
    sender.close()


def test_backoff_doubles_with_jitter_within_bounds() -> None:
    low, high = Backoff(5, 600, rng=lambda: 0.0), Backoff(5, 600, rng=lambda: 1.0)
    lows = [low.failure() for _ in range(12)]
    highs = [high.failure() for _ in range(12)]
    assert highs[:8] == [5, 10, 20, 40, 80, 160, 320, 600]
    assert all(h == 600 for h in highs[7:])
    assert lows == [h / 2 for h in highs]
    real = Backoff()
    delays = [real.failure() for _ in range(20)]
    assert all(2.5 <= d <= 600 for d in delays)
    real.reset()
    assert real.failure() <= 5


# -- delivery over real HTTPS --------------------------------------------------------------


def test_delivers_in_order_each_exactly_once(server: ContractServer, spool: Spool) -> None:
    reports = [report(n=n) for n in range(4)]
    for r in reports:
        spool.put(r)
    with make_sender(server.url, server.state.token, server.tls) as sender:
        result = sender.flush(spool)
        again = sender.flush(spool)
    assert (result.delivered, result.duplicates, result.pending, result.error) == (4, 0, 0, None)
    assert server.state.store_order == [r.report_id for r in reports]
    assert server.state.stored[reports[2].report_id] == reports[2].to_dict()
    assert (again.delivered, len(server.state.posts)) == (0, 4)
    assert spool.count() == 0


def test_server_down_keeps_reports_then_delivers_all_when_back(tls: TlsFiles, spool: Spool) -> None:
    state = ContractState()
    down = ContractServer(tls, state)  # port chosen, nothing listening yet
    clock = FakeClock()
    reports = [report(n=n) for n in range(3)]
    for r in reports:
        spool.put(r)
    with make_sender(down.url, state.token, tls, clock=clock) as sender:
        first = sender.flush(spool)
        assert first.pending == 3 and first.delivered == 0
        assert first.error is not None and "ConnectError" in first.error
        assert first.retry_in_s is not None and 2.5 <= first.retry_in_s <= 5
        # Still in backoff: no attempt is made at all.
        assert sender.flush(spool).skipped
        down.start()
        try:
            assert sender.flush(spool).skipped  # the backoff still holds
            clock.sleep(first.retry_in_s)
            second = sender.flush(spool)
        finally:
            down.stop()
    assert (second.delivered, second.pending) == (3, 0)
    assert state.store_order == [r.report_id for r in reports]
    assert state.posts == state.store_order  # no attempt reached the server twice
    assert sender.next_attempt_in() == 0


def test_stored_but_answer_lost_is_resent_and_counted_once(
    server: ContractServer, spool: Spool
) -> None:
    """The server stored the report and then failed (500): the retry must be a 200 duplicate."""
    reports = [report(n=n) for n in range(3)]
    for r in reports:
        spool.put(r)
    server.state.store_then_500 = 1
    with make_sender(server.url, server.state.token, server.tls) as sender:
        first = sender.flush(spool, force=True)
        second = sender.flush(spool, force=True)
    assert first.pending == 3 and "HTTP 500" in (first.error or "")
    assert (second.delivered, second.duplicates, second.pending) == (2, 1, 0)
    assert len(server.state.stored) == 3
    assert all(server.state.count(r.report_id) == 1 for r in reports)
    assert server.state.posts.count(reports[0].report_id) == 2


def test_answer_that_never_arrives_is_resent_and_counted_once(
    server: ContractServer, spool: Spool
) -> None:
    """The server stores, then the answer is too late (read timeout): resend, one record."""
    r = report()
    spool.put(r)
    server.state.store_then_stall_s = 1.5
    timeout = httpx.Timeout(connect=2.0, read=0.4, write=2.0, pool=2.0)
    with make_sender(server.url, server.state.token, server.tls, timeout=timeout) as sender:
        first = sender.flush(spool, force=True)
        server.state.store_then_stall_s = 0.0
        second = sender.flush(spool, force=True)
    assert "no answer in time" in (first.error or "") and first.pending == 1
    assert (second.duplicates, second.pending) == (1, 0)
    assert server.state.count(r.report_id) == 1 and len(server.state.stored) == 1
    assert server.state.posts == [r.report_id, r.report_id]


def test_bad_token_stops_keeps_spool_and_hides_token(server: ContractServer, spool: Spool) -> None:
    spool.put(report())
    server.state.echo_token_in_errors = True
    wrong = "mw_wrong_" + secrets.token_hex(8)
    with (
        make_sender(server.url, wrong, server.tls) as sender,
        pytest.raises(DeliveryAuthError) as refused,
    ):
        sender.flush(spool)
    assert "401" in str(refused.value) and "invalid token" in str(refused.value)
    assert wrong not in str(refused.value) and wrong not in repr(refused.value)
    with (
        make_sender(server.url, server.state.readonly_token, server.tls) as sender,
        pytest.raises(DeliveryAuthError, match="403") as readonly,
    ):
        sender.flush(spool)
    assert server.state.readonly_token not in str(readonly.value)
    assert spool.count() == 1 and not server.state.stored


def test_rejected_report_moves_aside_and_the_rest_is_delivered(
    server: ContractServer, spool: Spool
) -> None:
    good1, bad, good2 = report("a"), report("reject-me"), report("b")
    for r in (good1, bad, good2):
        spool.put(r)
    with make_sender(server.url, server.state.token, server.tls) as sender:
        result = sender.flush(spool)
    assert (result.delivered, result.rejected, result.pending) == (2, 1, 0)
    assert server.state.store_order == [good1.report_id, good2.report_id]
    rejected = spool.directory / "rejected"
    moved = [p for p in rejected.iterdir() if p.name.endswith(".json")]
    assert [p.name.split("-")[1].removesuffix(".json") for p in moved] == [bad.report_id]
    reason = (rejected / (moved[0].name + ".reason.txt")).read_text()
    assert "HTTP 422" in reason and "hostname not allowed" in reason
    assert spool.stats().rejected == 1


def test_report_id_taken_by_another_report_is_rejected_not_retried(
    server: ContractServer, spool: Spool
) -> None:
    original = report("a")
    server.state.stored[original.report_id] = original.to_dict()
    clash = dataclasses.replace(original, hostname="b")  # e.g. a spool copied between hosts
    later = report("c")
    spool.put(clash)
    spool.put(later)
    with make_sender(server.url, server.state.token, server.tls) as sender:
        result = sender.flush(spool)
    assert (result.rejected, result.delivered, result.pending) == (1, 1, 0)
    assert server.state.stored[original.report_id]["hostname"] == "a"
    assert later.report_id in server.state.stored


def test_unavailable_server_is_retried_after_retry_after(
    server: ContractServer, spool: Spool
) -> None:
    spool.put(report())
    server.state.unavailable = 1
    server.state.retry_after_s = 42
    clock = FakeClock()
    with make_sender(server.url, server.state.token, server.tls, clock=clock) as sender:
        first = sender.flush(spool)
        assert first.retry_in_s == 42 and "HTTP 503" in (first.error or "")
        clock.sleep(41)
        assert sender.flush(spool).skipped
        clock.sleep(1)
        second = sender.flush(spool)
    assert second.delivered == 1 and len(server.state.posts) == 2


def test_portal_200_without_json_is_not_taken_as_delivered(
    server: ContractServer, spool: Spool
) -> None:
    spool.put(report())
    server.state.portal = True
    with make_sender(server.url, server.state.token, server.tls) as sender:
        outcome = sender.send(next(spool.iter_pending()).report)
        result = sender.flush(spool)
    assert outcome.status is SendStatus.RETRY and "not the minewatch API" in outcome.detail
    assert result.pending == 1 and spool.count() == 1


def test_untrusted_certificate_keeps_reports(
    server: ContractServer, spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    spool.put(report())
    # No --ca-file: the public CAs do not know the test CA.
    sender = ReportSender(server.url, Secret(server.state.token), trust_env=False)
    with sender, caplog.at_level(logging.ERROR, logger="minewatch.agent"):
        result = sender.flush(spool)
    assert result.pending == 1 and "certificate" in (result.error or "")
    assert "--ca-file" in caplog.text
    assert not server.state.posts


def test_missing_ca_file_is_a_clear_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="CA file"):
        ReportSender("https://mw.example.org", Secret("x"), ca_file=tmp_path / "none.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    with pytest.raises(InputError, match="cannot load CA"):
        ReportSender("https://mw.example.org", Secret("x"), ca_file=junk)


def test_token_never_in_logs_errors_or_spool(
    server: ContractServer, spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    """A careless server quotes the Authorization header in every error; nothing may leak."""
    token = server.state.token
    state = server.state
    state.echo_token_in_errors = True
    caplog.set_level(logging.DEBUG)  # root: httpx and httpcore debug output included
    for name in ("httpx", "httpcore"):  # whatever an earlier CLI run in this process set
        caplog.set_level(logging.DEBUG, logger=name)
    for r in (report("reject-me"), report("a"), report("b")):
        spool.put(r)
    state.unavailable = 1
    clock = FakeClock()
    texts: list[str] = []
    with make_sender(server.url, token, server.tls, clock=clock) as sender:
        texts.append(repr(sender))
        for _ in range(4):
            result = sender.flush(spool, force=True)
            texts.append(repr(result))
        state.store_then_500 = 1
        spool.put(report("c"))
        texts.append(repr(sender.flush(spool, force=True)))
        texts.append(repr(sender.flush(spool, force=True)))
    assert spool.count() == 0 and len(state.stored) == 3  # the scenario ran to the end
    assert "HTTP/1.1 201" in caplog.text  # httpx's own request log was captured
    assert token not in caplog.text
    assert all(token not in text for text in texts)
    secret_bytes = token.encode()
    for path in spool.directory.rglob("*"):
        if path.is_file():
            assert secret_bytes not in path.read_bytes(), path
