"""detect_flows with the bundled model on real recordings; the finding contract and reasons."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from minewatch.net.behaviour.detect import DETECTOR, describe, detect_flows
from minewatch.net.behaviour.features import FEATURE_NAMES
from minewatch.net.behaviour.model import FlowModel
from minewatch.net.flowrec.from_packets import capture_flows
from minewatch.net.flowrec.table import empty_flows

RECORDINGS = Path(__file__).resolve().parents[3] / "data" / "flows"


def test_nothing_in_no_flows() -> None:
    assert detect_flows(empty_flows(), FlowModel.bundled()) == []


def test_describe_states_values() -> None:
    row = {"max_conn_s": 42 * 60.0, "msgs_down_per_min": 2.0, "rate_cv": None}
    assert describe("max_conn_s", row) == "one connection held 42 min"
    assert "every ~30 s" in describe("msgs_down_per_min", row)
    assert describe("rate_cv", row) == "rate_cv unknown"


def _rows(kind: str) -> list[dict[str, str]]:
    labels = RECORDINGS / "labels.csv"
    if not labels.is_file():
        pytest.skip("no loopback recordings (data/flows/labels.csv)")
    return [r for r in csv.DictReader(labels.open()) if r["label"] == kind]


def test_findings_follow_the_contract_on_a_mining_recording() -> None:
    found = []
    for row in _rows("mining"):
        flows, _ = capture_flows(RECORDINGS / row["file"])
        found += detect_flows(flows, FlowModel.bundled(), threshold=0.0)
    assert found
    for f in found:
        assert f.detector == DETECTOR
        assert f.protocol in ("stratum", "stratum-tls")
        assert 0.0 <= f.confidence <= 1.0
        assert f.evidence and f.evidence[0].startswith("flow behaviour")
        assert f.last_seen_ns - f.first_seen_ns >= FlowModel.bundled().min_span_s * 1e9


def test_every_feature_has_a_sentence() -> None:
    row = {name: 1.0 for name in FEATURE_NAMES}
    for name in FEATURE_NAMES:
        assert not describe(name, row).startswith(f"{name} ="), name


def test_tls_recordings_are_reported_as_stratum_tls() -> None:
    """Batch-1 recordings were cut at 256 bytes, so their ClientHellos do not parse; the TLS
    record headers of their payloads still mark them as encrypted."""
    rows = [r for r in _rows("mining") if r["kind"] in ("xmrig-tls", "xmrig-stunnel")]
    if not rows:
        pytest.skip("no TLS mining recordings")
    flows, _ = capture_flows(RECORDINGS / rows[0]["file"])
    found = detect_flows(flows, FlowModel.bundled(), threshold=0.0)
    assert found and {f.protocol for f in found} == {"stratum-tls"}
