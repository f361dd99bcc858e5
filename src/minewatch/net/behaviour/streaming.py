"""Judging a stream of flow records: a bounded recent history per conversation, a detector run
every few seconds over it, and findings reported once and again only when they change.

Why: the behaviour model judges a *conversation* (client, server, port) over minutes — at least
its ``min_span_s`` — while live sources hand over records a minute's slice (a flow meter) or an
active timeout (a NetFlow exporter) at a time. :class:`ConversationHistory` keeps the finished
records of the last ``window_s`` seconds, at most ``per_conversation`` of them per conversation
and ``max_rows`` in all (oldest first out); :class:`FindingTracker` reports a conversation's
finding once, and again only when its verdict changes or its confidence moves by
``material_change`` or more; :class:`StreamingJudge` puts the two around a detector. ``minewatch
watch`` (packets) and ``minewatch collect`` (NetFlow/IPFIX) both judge through it.

Example::

    detect, window_s = default_detector()
    judge = StreamingJudge(detect, window_s, emit=lambda f, again: print(f.key, again))
    judge.add(records, now_ns=time.time_ns())
    judge.judge()
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from minewatch.findings import Finding, iso_utc
from minewatch.net.flowrec.table import empty_flows
from minewatch.output import write_findings

__all__ = [
    "DEFAULT_WINDOW_S",
    "ConversationHistory",
    "Detector",
    "FindingTracker",
    "StreamingJudge",
    "default_detector",
    "finding_line",
    "printer",
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


Emit = Callable[[Finding, bool], None]
"""Receives a finding to report and whether it was reported before (an update)."""


class StreamingJudge:
    """A detector over a stream of flow records: :meth:`add` records as they finish,
    :meth:`judge` now and then; changed findings at least ``min_confidence`` sure go to ``emit``.

    Example::

        judge = StreamingJudge(detect, 900.0, emit=print_finding, min_confidence=0.8)
    """

    def __init__(
        self,
        detect: Detector,
        window_s: float,
        *,
        emit: Emit,
        min_confidence: float = 0.0,
        per_conversation: int = 64,
        max_rows: int = 200_000,
        material_change: float = 0.1,
    ) -> None:
        self.detect = detect
        self.emit = emit
        self.min_confidence = min_confidence
        self.history = ConversationHistory(window_s, per_conversation, max_rows)
        self.tracker = FindingTracker(material_change)

    def add(self, records: pa.Table, now_ns: int) -> None:
        """Remember finished records (bounded: see :class:`ConversationHistory`)."""
        self.history.add(records, now_ns)

    def judge(self, open_records: pa.Table | None = None) -> None:
        """Run the detector over the history (plus records still open at the source)."""
        records = self.history.table
        if open_records is not None and open_records.num_rows:
            records = pa.concat_tables([records, open_records])
        findings = [f for f in self.detect(records) if f.confidence >= self.min_confidence]
        for finding, again in self.tracker.changed(findings):
            self.emit(finding, again)

    @property
    def reported(self) -> int:
        """Findings reported so far, updates included."""
        return self.tracker.reported


def finding_line(f: Finding, again: bool) -> str:
    """One line for a person: when, verdict, who to whom, protocol, confidence, evidence."""
    server = f"[{f.server_ip}]" if ":" in f.server_ip else f.server_ip
    note = " (updated)" if again else ""
    return (
        f"{iso_utc(f.last_seen_ns)[:19]}Z  {f.verdict}{note}  {f.client_ip} -> "
        f"{server}:{f.server_port}/{f.transport}  {f.protocol}  {f.confidence:.2f}  "
        + "; ".join(f.evidence)
    )


def printer(out: TextIO, fmt: str) -> Emit:
    """An :data:`Emit` that prints to ``out``: ``table`` (one :func:`finding_line` each) or
    ``jsonl`` (the output contract, one JSON document each), flushed at once."""
    if fmt not in ("table", "jsonl"):
        raise ValueError(f"unknown format {fmt!r}; use table or jsonl")

    def emit(finding: Finding, again: bool) -> None:
        if fmt == "jsonl":
            write_findings([finding], out, "jsonl")
        else:
            out.write(finding_line(finding, again) + "\n")
        out.flush()

    return emit
