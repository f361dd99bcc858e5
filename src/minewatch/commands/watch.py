"""``minewatch watch``: judge live traffic on an interface and report findings as they happen.

Why the pieces: :class:`~minewatch.net.flowrec.live.LiveFlows` turns packets into finished flow
records with bounded memory; a :class:`~minewatch.net.behaviour.streaming.StreamingJudge` keeps
a bounded recent history per conversation (the model judges minutes, records finish every
minute), runs the detector every ``detect_every_s`` over it plus the meter's open records, and
prints a conversation's finding once, and again only when it changes materially.

The command stops cleanly on SIGINT, SIGTERM or ``--duration``: it flushes the meter, judges one
last time and writes a summary line (frames, packets, drops, records, flows, findings) to stderr.

Example::

    minewatch watch --interface eth0 --format jsonl --min-confidence 0.8
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TextIO

import click

from minewatch.commands.stream_options import (
    duration_option,
    min_confidence_option,
    stream_format_option,
)
from minewatch.errors import MinewatchError
from minewatch.net.behaviour.streaming import (
    DEFAULT_WINDOW_S,
    Detector,
    StreamingJudge,
    default_detector,
    printer,
)
from minewatch.net.flowrec.live import LiveFlows

__all__ = ["WatchSummary", "run_watch", "watch", "watch_command"]


@dataclass(slots=True)
class WatchSummary:
    """What a watch did; :meth:`line` is the summary printed at the end."""

    interface: str
    seconds: float
    frames: int
    packets: int
    drops: int
    records: int
    peak_flows: int
    evicted: int
    findings: int

    def line(self) -> str:
        return (
            f"watch {self.interface}: {self.seconds:.0f} s, {self.frames} packets captured "
            f"({self.packets} TCP/UDP), {self.drops} dropped by the kernel, "
            f"{self.records} flow records, {self.peak_flows} flows open at most "
            f"({self.evicted} evicted), {self.findings} findings reported"
        )


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` while the block runs (main thread only; elsewhere no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    saved = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in saved.items():
            signal.signal(sig, previous)


def run_watch(
    interface: str,
    *,
    detect: Detector | None = None,
    window_s: float | None = None,
    duration: float | None = None,
    fmt: str = "table",
    min_confidence: float = 0.0,
    max_flows: int = 100_000,
    idle_timeout_s: float = 120.0,
    detect_every_s: float = 10.0,
    batch_seconds: float = 1.0,
    per_conversation: int = 64,
    max_history_rows: int = 200_000,
    material_change: float = 0.1,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stop: threading.Event | None = None,
    live: LiveFlows | None = None,
) -> WatchSummary:
    """Watch ``interface`` until ``duration`` passes, ``stop`` is set or SIGINT/SIGTERM arrives.

    ``detect`` defaults to the bundled flow model (and ``window_s`` to what it needs). Findings go
    to ``out`` (``table``: one line each; ``jsonl``: one JSON document each) as they change; the
    summary line goes to ``err``. Raises :class:`MinewatchError` when capture cannot start.
    """
    if fmt not in ("table", "jsonl"):
        raise ValueError(f"unknown format {fmt!r}; use table or jsonl")
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    if detect is None:
        detect, needed = default_detector()
        window_s = window_s or needed

    judge = StreamingJudge(
        detect,
        window_s or DEFAULT_WINDOW_S,
        emit=printer(out, fmt),
        min_confidence=min_confidence,
        per_conversation=per_conversation,
        max_rows=max_history_rows,
        material_change=material_change,
    )
    stop = stop or threading.Event()
    live = live or LiveFlows(
        interface, max_flows=max_flows, idle_timeout_s=idle_timeout_s, batch_seconds=batch_seconds
    )

    started = time.monotonic()
    deadline = None if duration is None else started + duration
    with _stop_on_signals(stop), live:
        print(f"watching {interface} (stop with Ctrl-C)", file=err, flush=True)
        next_detect = started + detect_every_s
        while not stop.is_set():
            judge.add(live.poll(stop=stop), time.time_ns())
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if now >= next_detect:
                judge.judge(live.open_records)
                next_detect = now + detect_every_s
        judge.add(live.close(), time.time_ns())
        judge.judge()
    stats = live.stats
    summary = WatchSummary(
        interface=interface,
        seconds=time.monotonic() - started,
        frames=stats.capture.frames,
        packets=stats.packets,
        drops=stats.capture.drops,
        records=stats.meter.records_out,
        peak_flows=stats.meter.peak_active,
        evicted=stats.meter.evicted,
        findings=judge.reported,
    )
    print(summary.line(), file=err, flush=True)
    return summary


def watch_command(detect: Detector | None = None, window_s: float | None = None) -> click.Command:
    """The ``watch`` click command, judging with ``detect`` (default: the bundled flow model)."""

    @click.command(name="watch")
    @click.option(
        "--interface", "-i", required=True, metavar="IFACE", help="Network interface to watch."
    )
    @duration_option
    @stream_format_option
    @min_confidence_option
    @click.option(
        "--max-flows",
        type=click.IntRange(min=1),
        default=100_000,
        show_default=True,
        help="Most flows held open at once; beyond it the least recently active are emitted.",
    )
    @click.option(
        "--idle-timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=120.0,
        show_default=True,
        metavar="SECONDS",
        help="A flow with no packet for this long is finished.",
    )
    @click.pass_context
    def command(
        ctx: click.Context,
        interface: str,
        duration: float | None,
        fmt: str,
        min_confidence: float,
        max_flows: int,
        idle_timeout: float,
    ) -> None:
        """Watch live traffic on an interface and report mining as it is seen (needs root).

        实时监听网卡流量，按流量行为发现挖矿（需要root或CAP_NET_RAW权限）。
        """
        try:
            run_watch(
                interface,
                detect=detect,
                window_s=window_s,
                duration=duration,
                fmt=fmt,
                min_confidence=min_confidence,
                max_flows=max_flows,
                idle_timeout_s=idle_timeout,
            )
        except MinewatchError as exc:
            click.echo(f"minewatch watch: {exc}", err=True)
            ctx.exit(1)

    return command


watch = watch_command()
"""The ``minewatch watch`` command with the bundled flow model."""
