"""``minewatch watch``: judge live traffic on an interface and report findings as they happen.

Why the pieces: :class:`~minewatch.net.flowrec.live.LiveFlows` turns packets into finished flow
records with bounded memory; the behaviour model, however, judges a *conversation* (client,
server, port) over minutes — at least its ``min_span_s`` — and a record leaves the meter after a
minute's slice. :class:`ConversationHistory` therefore keeps the finished records of the last
``window_s`` seconds, at most ``per_conversation`` of them per conversation and ``max_rows`` in
all (oldest first out), and every ``detect_every_s`` the detector sees that history plus the
meter's open records. :class:`FindingTracker` prints a conversation's finding once, and again only
when its verdict changes or its confidence moves by ``material_change`` or more.

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
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TextIO

import click
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from minewatch.errors import MinewatchError
from minewatch.findings import Finding, iso_utc
from minewatch.net.flowrec.live import LiveFlows
from minewatch.net.flowrec.table import empty_flows
from minewatch.output import write_findings

__all__ = [
    "ConversationHistory",
    "Detector",
    "FindingTracker",
    "WatchSummary",
    "default_detector",
    "run_watch",
    "watch",
    "watch_command",
]

Detector = Callable[[pa.Table], list[Finding]]
"""Judges flow records (FLOW_SCHEMA) and returns findings about their conversations."""

_SECOND = 1_000_000_000
DEFAULT_WINDOW_S = 900.0


def default_detector() -> tuple[Detector, float]:
    """The bundled flow model's detector, and the history window it needs (seconds): three times
    the model's ``min_span_s``, at least :data:`DEFAULT_WINDOW_S`, so a conversation is judged
    on several minutes and keeps being judged while it lasts."""
    from minewatch.net.behaviour.detect import detect_flows
    from minewatch.net.behaviour.model import FlowModel

    model = FlowModel.bundled()

    def detect(records: pa.Table) -> list[Finding]:
        return detect_flows(records, model)

    return detect, max(DEFAULT_WINDOW_S, 3.0 * model.min_span_s)


def _conversation_codes(records: pa.Table) -> np.ndarray:
    """One integer per record naming its conversation: (src_ip, dst_ip, dst_port, protocol)."""
    key = pc.binary_join_element_wise(
        records.column("src_ip"),
        records.column("dst_ip"),
        pc.cast(records.column("dst_port"), pa.string()),
        pc.cast(records.column("protocol"), pa.string()),
        "|",
    )
    encoded = pc.dictionary_encode(key).combine_chunks()
    codes: np.ndarray = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return codes


class ConversationHistory:
    """Finished flow records of the recent past, bounded per conversation and in all.

    A record is kept while it ended within ``window_s`` of the clock; of one conversation only
    the ``per_conversation`` most recent records are kept, and of all at most ``max_rows`` (the
    most recent). Trimming is columnar.

    Example::

        history = ConversationHistory(window_s=900, per_conversation=64, max_rows=200_000)
        history.add(finished_records, now_ns=time.time_ns())
        findings = detect(history.table)
    """

    def __init__(self, window_s: float, per_conversation: int = 64, max_rows: int = 200_000):
        if window_s <= 0 or per_conversation < 1 or max_rows < 1:
            raise ValueError("window_s, per_conversation and max_rows must be positive")
        self.window_ns = int(window_s * _SECOND)
        self.per_conversation = per_conversation
        self.max_rows = max_rows
        self.table = empty_flows()
        self.trimmed = 0
        """Records dropped by the per-conversation and total bounds (not by age)."""

    def add(self, records: pa.Table, now_ns: int) -> None:
        """Add finished records and forget what the window and the bounds no longer hold."""
        both = pa.concat_tables([self.table, records]) if records.num_rows else self.table
        if both.num_rows == 0:
            return
        end = both.column("end_ns").to_numpy()
        fresh = np.flatnonzero(end >= now_ns - self.window_ns)
        end = end[fresh]
        codes = _conversation_codes(both.take(pa.array(fresh)))
        order = np.lexsort((-end, codes))  # by conversation, newest first
        sorted_codes = codes[order]
        starts = np.ones(order.shape[0], dtype=bool)
        starts[1:] = sorted_codes[1:] != sorted_codes[:-1]
        group_start = np.maximum.accumulate(np.where(starts, np.arange(order.shape[0]), 0))
        rank = np.arange(order.shape[0]) - group_start
        keep = order[rank < self.per_conversation]
        if keep.shape[0] > self.max_rows:
            keep = keep[np.argsort(-end[keep], kind="stable")[: self.max_rows]]
        self.trimmed += int(fresh.shape[0] - keep.shape[0])
        self.table = both.take(pa.array(fresh[np.sort(keep)]))


@dataclass(slots=True)
class _Reported:
    verdict: str
    confidence: float


class FindingTracker:
    """Decides which findings to print: new conversations, and changed verdicts or confidences.

    Remembers at most ``max_tracked`` conversations (the least recently reported are forgotten).

    Example::

        tracker = FindingTracker(material_change=0.1)
        for finding, update in tracker.changed(detect(records)):
            print(finding.key, finding.confidence, update)
    """

    def __init__(self, material_change: float = 0.1, max_tracked: int = 100_000) -> None:
        self.material_change = material_change
        self.max_tracked = max_tracked
        self.reported = 0
        self._seen: OrderedDict[tuple[str, str, int, str], _Reported] = OrderedDict()

    def changed(self, findings: list[Finding]) -> list[tuple[Finding, bool]]:
        """The findings that are new or changed materially since they were last reported, each
        with whether it was reported before (an update)."""
        out: list[tuple[Finding, bool]] = []
        for f in findings:
            before = self._seen.get(f.key)
            if (
                before is not None
                and before.verdict == str(f.verdict)
                and abs(before.confidence - f.confidence) < self.material_change
            ):
                continue
            self._seen[f.key] = _Reported(str(f.verdict), f.confidence)
            self._seen.move_to_end(f.key)
            out.append((f, before is not None))
        while len(self._seen) > self.max_tracked:
            self._seen.popitem(last=False)
        self.reported += len(out)
        return out


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


def _table_line(f: Finding, again: bool) -> str:
    server = f"[{f.server_ip}]" if ":" in f.server_ip else f.server_ip
    note = " (updated)" if again else ""
    return (
        f"{iso_utc(f.last_seen_ns)[:19]}Z  {f.verdict}{note}  {f.client_ip} -> "
        f"{server}:{f.server_port}/{f.transport}  {f.protocol}  {f.confidence:.2f}  "
        + "; ".join(f.evidence)
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
    history = ConversationHistory(window_s or DEFAULT_WINDOW_S, per_conversation, max_history_rows)
    tracker = FindingTracker(material_change)
    stop = stop or threading.Event()
    live = live or LiveFlows(
        interface, max_flows=max_flows, idle_timeout_s=idle_timeout_s, batch_seconds=batch_seconds
    )

    def judge(records: pa.Table) -> None:
        findings = [f for f in detect(records) if f.confidence >= min_confidence]
        for f, again in tracker.changed(findings):
            if fmt == "jsonl":
                write_findings([f], out, "jsonl")
            else:
                out.write(_table_line(f, again) + "\n")
            out.flush()

    started = time.monotonic()
    deadline = None if duration is None else started + duration
    with _stop_on_signals(stop), live:
        print(f"watching {interface} (stop with Ctrl-C)", file=err, flush=True)
        next_detect = started + detect_every_s
        while not stop.is_set():
            history.add(live.poll(stop=stop), time.time_ns())
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if now >= next_detect:
                judge(pa.concat_tables([history.table, live.open_records]))
                next_detect = now + detect_every_s
        history.add(live.close(), time.time_ns())
        judge(history.table)
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
        findings=tracker.reported,
    )
    print(summary.line(), file=err, flush=True)
    return summary


def watch_command(detect: Detector | None = None, window_s: float | None = None) -> click.Command:
    """The ``watch`` click command, judging with ``detect`` (default: the bundled flow model)."""

    @click.command(name="watch")
    @click.option(
        "--interface", "-i", required=True, metavar="IFACE", help="Network interface to watch."
    )
    @click.option(
        "--duration",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        metavar="SECONDS",
        help="Stop after this many seconds (default: run until interrupted).",
    )
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "jsonl"]),
        default="table",
        show_default=True,
        help="One line per finding, or one JSON document per finding.",
    )
    @click.option(
        "--min-confidence",
        type=click.FloatRange(0.0, 1.0),
        default=0.0,
        show_default=True,
        help="Report only findings at least this sure.",
    )
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
        """Watch live traffic on an interface and report mining as it is seen (needs root)."""
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
