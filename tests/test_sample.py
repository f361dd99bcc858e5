"""The bundled sample: recorded by the project from a real XMRig, so `scripts/demo` shows it."""

from __future__ import annotations

from minewatch.findings import Verdict
from minewatch.net.scan import scan_paths
from minewatch.sample import sample_capture


def test_sample_shows_exactly_the_real_miner() -> None:
    report = scan_paths([sample_capture()])
    assert report.problems == []
    [finding] = report.findings  # the sensor JSON-RPC and HTTP conversations stay clean
    assert finding.verdict == Verdict.MINING
    assert finding.protocol == "stratum-xmr"
    assert finding.server_port == 14733
    assert finding.coin == "xmr"
    assert any("XMRig/" in e for e in finding.evidence)
    assert any("submitted" in e for e in finding.evidence)
