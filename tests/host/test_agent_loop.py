"""The agent loop: scan, spool first, deliver, wait, stop cleanly.

Deliveries go to the real HTTPS contract stand-in of ``test_delivery`` on loopback; time between
periods is a fake clock advanced by the injected ``sleep`` (the loop would otherwise wait minutes).
One test kills a real agent process with SIGKILL to show that what it scanned is not lost.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from minewatch.host.agent_loop import StopFlag, run_agent
from minewatch.host.delivery import Backoff, DeliveryAuthError
from minewatch.host.spool import HostReport, Spool
from tests.host.test_delivery import (
    ContractServer,
    ContractState,
    FakeClock,
    make_sender,
    report,
)
from tests.support.https import TlsFiles

SRC = Path(__file__).resolve().parents[2] / "src"


def scanner(
    made: list[HostReport], hook: Callable[[int], None] | None = None
) -> Callable[[], HostReport]:
    """A scan that records each report it makes; ``hook(n)`` runs before the n-th (1-based)."""

    def scan() -> HostReport:
        if hook is not None:
            hook(len(made) + 1)
        r = report(n=len(made))
        made.append(r)
        return r

    return scan


def test_reports_made_while_server_is_down_are_delivered_later_exactly_once(
    tls: TlsFiles, spool: Spool
) -> None:
    state = ContractState()
    srv = ContractServer(tls, state)  # nothing listens on its port yet
    clock = FakeClock()
    made: list[HostReport] = []
    with make_sender(srv.url, state.token, tls, clock=clock) as sender:
        down = run_agent(
            scanner(made), sender, spool, 60, iterations=3, sleep=clock.sleep, clock=clock
        )
        assert (down.scans, down.delivered, down.pending) == (3, 0, 3)
        assert spool.count() == 3
        srv.start()
        try:
            clock.sleep(600)  # past any backoff
            up = run_agent(
                scanner(made), sender, spool, 60, iterations=2, sleep=clock.sleep, clock=clock
            )
        finally:
            srv.stop()
    assert (up.scans, up.delivered, up.duplicates, up.pending) == (2, 5, 0, 0)
    assert state.store_order == [r.report_id for r in made]  # all five, in scan order
    assert len(state.stored) == len(made) == 5
    assert sorted(state.posts) == sorted(state.store_order)  # none sent twice


def test_held_back_reports_are_retried_before_the_next_scan(
    server: ContractServer, spool: Spool
) -> None:
    """The backoff (5 s) is much shorter than the period (300 s): do not wait for the next scan."""
    server.state.unavailable = 1
    server.state.retry_after_s = 0
    clock = FakeClock()
    stored_before_scan: list[int] = []
    made: list[HostReport] = []
    scan = scanner(made, hook=lambda n: stored_before_scan.append(len(server.state.stored)))
    sender = make_sender(
        server.url, server.state.token, server.tls, clock=clock, backoff=Backoff(rng=lambda: 1.0)
    )
    with sender:
        t0 = clock()
        summary = run_agent(scan, sender, spool, 300, iterations=2, sleep=clock.sleep, clock=clock)
    assert stored_before_scan == [0, 1]  # report 1 arrived during the first wait
    assert summary.delivered == 2 and summary.pending == 0
    assert server.state.posts.count(made[0].report_id) == 2  # the 503, then the retry
    assert clock() - t0 == pytest.approx(300)  # the period was kept


def test_failing_scan_is_logged_and_the_loop_goes_on(
    server: ContractServer, spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def hook(n: int) -> None:
        calls.append(n)
        if len(calls) == 2:
            raise PermissionError("cannot read /proc/1/environ")

    made: list[HostReport] = []
    clock = FakeClock()
    with (
        make_sender(server.url, server.state.token, server.tls, clock=clock) as sender,
        caplog.at_level(logging.INFO, logger="minewatch.agent"),
    ):
        summary = run_agent(
            scanner(made, hook), sender, spool, 10, iterations=3, sleep=clock.sleep, clock=clock
        )
    assert (summary.scans, summary.scan_errors, summary.delivered) == (2, 1, 2)
    assert "scan failed" in caplog.text and "PermissionError" in caplog.text
    assert "agent stopped" in caplog.text
    assert [r.report_id for r in made] == server.state.store_order


def test_sigterm_stops_after_the_current_step(server: ContractServer, spool: Spool) -> None:
    def hook(n: int) -> None:
        if n == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while the third scan runs

    before = signal.getsignal(signal.SIGTERM)
    made: list[HostReport] = []
    clock = FakeClock()
    with make_sender(server.url, server.state.token, server.tls, clock=clock) as sender:
        summary = run_agent(scanner(made, hook), sender, spool, 10, sleep=clock.sleep, clock=clock)
    assert summary.stopped_by == "SIGTERM"
    assert summary.scans == 3  # the scan in progress was finished and spooled ...
    assert summary.pending == 1 and spool.count() == 1  # ... but not sent: the agent stops
    assert next(spool.iter_pending()).report.report_id == made[2].report_id
    assert len(server.state.stored) == 2
    assert signal.getsignal(signal.SIGTERM) is before


def test_stop_flag_and_keyboard_interrupt_end_the_loop(
    server: ContractServer, spool: Spool
) -> None:
    clock = FakeClock()
    flag = StopFlag()
    made: list[HostReport] = []

    def sleep_then_stop(seconds: float) -> None:
        clock.sleep(seconds)
        if clock() > 1100:
            flag.set("test")

    with make_sender(server.url, server.state.token, server.tls, clock=clock) as sender:
        by_flag = run_agent(
            scanner(made), sender, spool, 30, sleep=sleep_then_stop, clock=clock, stop=flag
        )

        def interrupted(seconds: float) -> None:
            raise KeyboardInterrupt

        by_ctrl_c = run_agent(scanner(made), sender, spool, 30, sleep=interrupted, clock=clock)
    assert by_flag.stopped_by == "test" and by_flag.scans == 4  # scans at 1000, 1030, 1060, 1090
    assert by_ctrl_c.stopped_by == "KeyboardInterrupt" and by_ctrl_c.scans == 1
    assert len(server.state.stored) == 5 and spool.count() == 0


def test_refused_token_ends_the_loop_and_keeps_the_spool(
    server: ContractServer, spool: Spool
) -> None:
    made: list[HostReport] = []
    clock = FakeClock()
    with (
        make_sender(server.url, "mw_wrong", server.tls, clock=clock) as sender,
        pytest.raises(DeliveryAuthError),
    ):
        run_agent(scanner(made), sender, spool, 10, iterations=3, sleep=clock.sleep, clock=clock)
    assert len(made) == 1 and spool.count() == 1 and not server.state.stored


def test_bad_arguments(spool: Spool, server: ContractServer) -> None:
    with make_sender(server.url, server.state.token, server.tls) as sender:
        with pytest.raises(ValueError, match="interval"):
            run_agent(scanner([]), sender, spool, 0)
        with pytest.raises(ValueError, match="iterations"):
            run_agent(scanner([]), sender, spool, 5, iterations=0)


AGENT_PROCESS = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from minewatch.host.agent_loop import run_agent
    from minewatch.host.delivery import ReportSender, Secret
    from minewatch.host.spool import HostReport, Spool

    spool_dir, url, ca_file = sys.argv[1:4]
    with Spool(Path(spool_dir)) as spool, ReportSender(
        url, Secret("mw_child"), ca_file=Path(ca_file), trust_env=False
    ) as sender:
        run_agent(lambda: HostReport.create("child", []), sender, spool, 0.05)
    """
)


def test_reports_of_a_killed_agent_are_delivered_by_the_next_one(
    tls: TlsFiles, tmp_path: Path
) -> None:
    """A real agent process scans against a server that is down and is killed with SIGKILL."""
    state = ContractState(token="mw_child")
    srv = ContractServer(tls, state)
    spool_dir = tmp_path / "spool"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    child = subprocess.Popen(
        [sys.executable, "-c", AGENT_PROCESS, str(spool_dir), srv.url, str(tls.ca_file)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while len(list(spool_dir.glob("*.json"))) < 3:
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "the agent process spooled nothing"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    on_disk = sorted(p.name for p in spool_dir.glob("*.json") if not p.name.startswith("."))
    srv.start()
    try:
        with Spool(spool_dir) as spool, make_sender(srv.url, state.token, tls) as sender:
            result = sender.flush(spool)
    finally:
        srv.stop()
    assert result.pending == 0 and result.delivered == len(on_disk) >= 3
    assert state.store_order == [name.split("-")[1].removesuffix(".json") for name in on_disk]
