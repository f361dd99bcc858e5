"""The streaming judge's parts: the bounded history per conversation, the finding tracker, and
the judge that runs a detector over the history and reports changes."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from minewatch.findings import Finding, Verdict
from minewatch.net.behaviour.streaming import (
    ConversationHistory,
    FindingTracker,
    StreamingJudge,
)
from minewatch.net.flowrec.table import flows_from_columns


def test_history_keeps_window_and_bounds() -> None:
    second = 1_000_000_000
    now = 10_000 * second
    rows = 40
    # Two conversations: 30 records to port 1000, 10 to port 2000, one a minute, plus one stale.
    ports = [1000] * 30 + [2000] * 10
    ends = [now - i * 10 * second for i in range(30)] + [now - i * second for i in range(10)]
    table = flows_from_columns(
        {
            "start_ns": [e - second for e in ends] + [now - 5000 * second],
            "end_ns": [*ends, now - 4000 * second],
            "src_ip": ["10.0.0.1"] * (rows + 1),
            "dst_ip": ["10.0.0.2"] * (rows + 1),
            "src_port": list(range(rows + 1)),
            "dst_port": [*ports, 1000],
            "protocol": [6] * (rows + 1),
            "packets": [1] * (rows + 1),
            "bytes": [60] * (rows + 1),
        },
        source="live",
    )
    history = ConversationHistory(window_s=1000, per_conversation=12, max_rows=20)
    history.add(table, now)
    kept = history.table
    assert kept.num_rows == 20
    by_port = pc.value_counts(kept["dst_port"]).to_pylist()
    assert {d["values"]: d["counts"] for d in by_port} == {1000: 10, 2000: 10}
    # The newest of each conversation stay; the stale record is gone.
    assert int(pc.min(kept["end_ns"]).as_py()) >= now - 1000 * second
    assert now in kept["end_ns"].to_pylist()


def test_tracker_reports_new_and_changed_only() -> None:
    def finding(port: int, confidence: float, verdict: Verdict = Verdict.MINING) -> Finding:
        return Finding(
            verdict, "stratum", "10.0.0.1", "10.0.0.2", port, "tcp", None, confidence, 0, 1
        )

    tracker = FindingTracker(material_change=0.1, max_tracked=2)
    assert [u for _, u in tracker.changed([finding(1, 0.5), finding(2, 0.5)])] == [False, False]
    assert tracker.changed([finding(1, 0.55), finding(2, 0.5)]) == []
    again = tracker.changed([finding(1, 0.7), finding(2, 0.5, Verdict.BLOCKCHAIN_NODE)])
    assert [(f.server_port, u) for f, u in again] == [(1, True), (2, True)]
    tracker.changed([finding(3, 0.5)])  # the least recently reported (port 1) is forgotten
    assert [u for _, u in tracker.changed([finding(1, 0.7)])] == [False]
    assert tracker.reported == 6


def test_the_judge_sees_history_and_open_records_and_reports_changes() -> None:
    second = 1_000_000_000
    seen: list[int] = []

    def detect(records: pa.Table) -> list[Finding]:
        seen.append(records.num_rows)
        return [
            Finding(Verdict.MINING, "stratum", "10.0.0.1", "10.0.0.2", 9, "tcp", None, 0.9, 0, 1)
        ]

    def record(port: int, end: int) -> pa.Table:
        return flows_from_columns(
            {
                "start_ns": [end - second], "end_ns": [end], "src_ip": ["10.0.0.1"],
                "dst_ip": ["10.0.0.2"], "src_port": [port], "dst_port": [9], "protocol": [6],
                "packets": [3], "bytes": [180],
            },
            source="live",
        )  # fmt: skip

    emitted: list[tuple[int, bool]] = []
    judge = StreamingJudge(
        detect, 600.0, emit=lambda f, again: emitted.append((f.server_port, again))
    )
    now = 1_000 * second
    judge.add(record(40000, now), now)
    judge.judge(record(40001, now + second))
    judge.judge()
    assert seen == [2, 1]  # history plus the open record, then the history alone
    assert emitted == [(9, False)]  # the same finding is reported once
    assert judge.reported == 1
