"""Storage-mining capacity in decimal terabytes, per kind, for the scan summary.

Disks and farm dashboards are sold and quoted in decimal units (a "18 TB" disk holds 18·10^12
bytes), so the summary uses TB = 10^12 bytes, not TiB. Only storage-mining findings that carry a
capacity count: a blockchain node's database is not farm capacity.

Example::

    >>> from minewatch.findings import Verdict
    >>> f = HostFinding(verdict=Verdict.STORAGE_MINING, kind="chia-plot", entity="/srv/plots",
    ...                 coin="xch", confidence=0.97, capacity_bytes=3 * 108_877_420_954, count=3)
    >>> summarise_capacity([f])
    {'chia-plot': 0.326632262862}
"""

from __future__ import annotations

from collections.abc import Iterable

from minewatch.findings import Verdict
from minewatch.host.model import HostFinding

__all__ = ["TB", "summarise_capacity"]

TB = 10**12
"""One decimal terabyte in bytes."""


def summarise_capacity(findings: Iterable[HostFinding]) -> dict[str, float]:
    """Total capacity in TB per finding kind (``chia-plot``, ``filecoin-sector``), kinds sorted."""
    totals: dict[str, int] = {}
    for finding in findings:
        if finding.verdict is Verdict.STORAGE_MINING and finding.capacity_bytes is not None:
            totals[finding.kind] = totals.get(finding.kind, 0) + finding.capacity_bytes
    return {kind: totals[kind] / TB for kind in sorted(totals)}
