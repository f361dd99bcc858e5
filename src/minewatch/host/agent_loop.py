"""The agent's main loop: scan, spool, deliver, wait; again until told to stop.

Each period the loop

1. **scans** the host (the ``scan`` callable builds a :class:`~minewatch.host.spool.HostReport`);
2. **spools** the report *before* anything is sent, so an agent killed right after a scan loses
   nothing: the report goes out on the next start;
3. **flushes** the spool through the sender (oldest first; see :mod:`minewatch.host.delivery`);
4. **waits** for the next period. While reports are held back by a transient failure, it wakes
   as soon as the sender's backoff allows and tries again, instead of waiting a whole period.

A failing scan is logged and counted and the loop goes on: one unreadable ``/proc`` entry or a
probe bug must not silence the agent for good. A report that cannot be spooled (disk full) is
logged the same way. Only :class:`~minewatch.host.delivery.DeliveryError` (the server refused
the token, 401/403) ends the loop with an exception, since retrying cannot fix it; the spool is
kept for when the token is fixed.

Stopping: SIGTERM (``systemctl stop``) or SIGINT (Ctrl-C) sets a flag; the loop finishes the
step it is in (a scan, a write, the one report being sent) and returns. A second signal raises
:class:`KeyboardInterrupt` at once, which is safe too: spool writes are atomic, and a report
sent but not yet deleted is sent again and answered "duplicate". Signal handlers are installed
only from the main thread, and the previous ones are restored on return.

Log lines go to the ``minewatch.agent`` logger.

Example (two periods, no waiting, against a sender and spool made elsewhere)::

    summary = run_agent(make_report, sender, spool, interval_s=300, iterations=2,
                        sleep=lambda s: None)
    print(summary.scans, summary.delivered, summary.pending)
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Protocol

from minewatch.host.delivery import FlushResult
from minewatch.host.spool import HostReport, Spool, SpoolError

__all__ = ["AgentRunSummary", "Sender", "StopFlag", "run_agent"]

log = logging.getLogger("minewatch.agent")

_SLEEP_SLICE_S = 1.0
"""Longest single sleep: bounds how long a stop request waits for the loop to notice it."""


class Sender(Protocol):
    """What the loop needs from :class:`~minewatch.host.delivery.ReportSender`."""

    def flush(
        self, spool: Spool, *, force: bool = False, should_stop: Callable[[], bool] | None = None
    ) -> FlushResult: ...

    def next_attempt_in(self) -> float: ...


class StopFlag:
    """A thread- and signal-safe "please stop" flag, settable from a signal handler or a test."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: str | None = None

    def set(self, reason: str = "requested") -> None:
        """Ask the loop to stop after its current step."""
        if self.reason is None:
            self.reason = reason
        self._event.set()

    def is_set(self) -> bool:
        """True once a stop was requested."""
        return self._event.is_set()


@dataclass(slots=True)
class AgentRunSummary:
    """What one :func:`run_agent` call did, for the final log line and the CLI's exit."""

    scans: int = 0
    """Reports scanned and spooled."""
    scan_errors: int = 0
    spool_errors: int = 0
    delivered: int = 0
    duplicates: int = 0
    rejected: int = 0
    dropped: int = 0
    """Older reports dropped unsent because the spool was full."""
    pending: int = 0
    """Reports still in the spool when the loop returned."""
    stopped_by: str | None = None
    """``"SIGTERM"``, ``"SIGINT"``, ``"KeyboardInterrupt"``, ... or ``None`` (iterations done)."""

    def add(self, result: FlushResult) -> None:
        """Count one delivery round."""
        self.delivered += result.delivered
        self.duplicates += result.duplicates
        self.rejected += result.rejected
        self.pending = result.pending


def run_agent(
    scan: Callable[[], HostReport],
    sender: Sender,
    spool: Spool,
    interval_s: float,
    iterations: int | None = None,
    sleep: Callable[[float], object] = time.sleep,
    *,
    stop: StopFlag | None = None,
    install_signal_handlers: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> AgentRunSummary:
    """Scan every ``interval_s`` seconds, spool, deliver; see the module docstring.

    ``iterations`` bounds the number of periods, i.e. scan attempts, failed ones included
    (``None``: until stopped); after the last one the spool is flushed once and the loop returns
    without waiting. ``sleep`` and ``clock``
    exist for tests; the wait between periods is counted from what was asked of ``sleep``, so a
    ``sleep`` that returns at once makes the whole run return at once. :class:`DeliveryError`
    (401/403) propagates; everything else a scan or a write raises is logged and survived.
    """
    if interval_s <= 0:
        raise ValueError(f"interval_s must be positive, got {interval_s}")
    if iterations is not None and iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    flag = StopFlag() if stop is None else stop
    summary = AgentRunSummary(pending=spool.count())
    log.info(
        "agent started: scan every %g s, spool %s (%d report(s) pending)",
        interval_s,
        spool.directory,
        summary.pending,
    )
    with _signals_set(flag, install_signal_handlers):
        try:
            _loop(scan, sender, spool, interval_s, iterations, sleep, clock, flag, summary)
        except KeyboardInterrupt:
            flag.set("KeyboardInterrupt")
    summary.stopped_by = flag.reason
    summary.pending = spool.count()
    log.info(
        "agent stopped%s: %d scan(s), %d delivered, %d duplicate(s), %d rejected, "
        "%d dropped, %d scan error(s), %d pending",
        f" ({summary.stopped_by})" if summary.stopped_by else "",
        summary.scans,
        summary.delivered,
        summary.duplicates,
        summary.rejected,
        summary.dropped,
        summary.scan_errors,
        summary.pending,
    )
    return summary


def _loop(
    scan: Callable[[], HostReport],
    sender: Sender,
    spool: Spool,
    interval_s: float,
    iterations: int | None,
    sleep: Callable[[float], object],
    clock: Callable[[], float],
    flag: StopFlag,
    summary: AgentRunSummary,
) -> None:
    done = 0
    while not flag.is_set():
        started = clock()
        _scan_and_spool(scan, spool, summary)
        done += 1
        if flag.is_set():
            break
        _flush(sender, spool, flag, summary)
        if iterations is not None and done >= iterations:
            break
        # Wait out the rest of the period, waking early whenever a held-back retry is due.
        remaining = interval_s - max(0.0, clock() - started)
        while remaining > 0 and not flag.is_set():
            step = min(remaining, _SLEEP_SLICE_S)
            retry_due = summary.pending > 0
            if retry_due and sender.next_attempt_in() > 0:
                step = min(step, sender.next_attempt_in())
            sleep(step)
            remaining -= step
            if retry_due and not flag.is_set() and sender.next_attempt_in() <= 0:
                _flush(sender, spool, flag, summary)


def _scan_and_spool(scan: Callable[[], HostReport], spool: Spool, summary: AgentRunSummary) -> None:
    try:
        report = scan()
    except Exception:
        # A probe bug or an unreadable host must not stop the agent; the traceback is logged
        # for whoever debugs it, and the next period scans again.
        summary.scan_errors += 1
        log.exception("scan failed; trying again next period")
        return
    try:
        stored = spool.put(report)
    except (SpoolError, OSError) as exc:
        summary.spool_errors += 1
        log.error("cannot spool report %s: %s", report.report_id, exc)
        return
    summary.scans += 1
    summary.dropped += len(stored.dropped)
    log.info(
        "scan %s: %d finding(s), %d blind spot(s); spooled",
        report.report_id,
        len(stored.entry.report.findings),
        len(stored.entry.report.blind_spots),
    )


def _flush(sender: Sender, spool: Spool, flag: StopFlag, summary: AgentRunSummary) -> None:
    result = sender.flush(spool, should_stop=flag.is_set)
    summary.add(result)
    if result.delivered or result.duplicates or result.rejected:
        log.info(
            "delivered %d report(s) (%d already stored earlier, %d rejected); %d pending",
            result.delivered + result.duplicates,
            result.duplicates,
            result.rejected,
            result.pending,
        )


@contextmanager
def _signals_set(flag: StopFlag, install: bool) -> Iterator[None]:
    """SIGTERM/SIGINT set ``flag``; a second one raises :class:`KeyboardInterrupt`."""
    if not install or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if flag.is_set():
            raise KeyboardInterrupt(f"second {name}")
        log.info("%s received: stopping after the current step", name)
        flag.set(name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
