"""Shared fixture of the recogniser tests: write packets to a pcap file and scan it.

Every recogniser test goes end to end: the capture reader, header decoding, flow grouping, the
bulk screen and the recognisers all run, exactly as ``minewatch scan`` runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from minewatch.findings import Finding
from minewatch.net.capture.writer import CaptureRecord, LinkType, write_pcap
from minewatch.net.scan import scan_paths

ScanRecords = Callable[[Iterable[CaptureRecord]], list[Finding]]
"""Write Ethernet frames (in the order given) to a pcap file and return the scan's findings."""


@pytest.fixture
def scan(tmp_path: Path) -> ScanRecords:
    """A function from Ethernet ``(ts_ns, frame)`` records to the findings of scanning them."""
    written = 0

    def run(records: Iterable[CaptureRecord]) -> list[Finding]:
        nonlocal written
        written += 1
        path = tmp_path / f"capture{written}.pcap"
        write_pcap(path, list(records), LinkType.ETHERNET)
        report = scan_paths([path])
        assert report.problems == [], report.problems
        assert report.files == 1
        return report.findings

    return run
