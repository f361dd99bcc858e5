"""The capacity summary: decimal TB per storage-mining kind, nothing else counted."""

from __future__ import annotations

from pathlib import Path

from minewatch.findings import Verdict
from minewatch.host.model import HostFinding, HostSnapshot
from minewatch.host.storage import FilecoinStorageProbe, summarise_capacity
from minewatch.host.storage.capacity import TB


def _finding(
    kind: str, capacity: int | None, verdict: Verdict = Verdict.STORAGE_MINING
) -> HostFinding:
    return HostFinding(
        verdict=verdict, kind=kind, entity="/x", coin=None, confidence=0.9, capacity_bytes=capacity
    )


def test_totals_per_kind_in_decimal_terabytes() -> None:
    findings = [
        _finding("chia-plot", 3 * 108_877_420_954),
        _finding("chia-plot", 2 * TB),
        _finding("filecoin-sector", 10 * 32 * 2**30),
        _finding("chia-install", None),
        _finding("chia-full-node", 50 * TB, Verdict.BLOCKCHAIN_NODE),
    ]
    summary = summarise_capacity(findings)
    assert list(summary) == ["chia-plot", "filecoin-sector"]
    assert summary["chia-plot"] * TB == 3 * 108_877_420_954 + 2 * TB
    assert summary["filecoin-sector"] == 10 * 32 * 2**30 / 10**12
    assert summarise_capacity([]) == {}


def test_summary_of_a_real_scan(tmp_path: Path) -> None:
    sealed = tmp_path / "stor" / "sealed"
    sealed.mkdir(parents=True)
    (tmp_path / "stor" / "cache").mkdir()
    for number in range(4):
        with (sealed / f"s-t01000-{number}").open("wb") as handle:
            handle.truncate(32 * 2**30)
    probe = FilecoinStorageProbe(homes=[], environ={"FIL_PROOFS_PARAMETER_CACHE": "/nonexistent"})
    result = probe.scan(HostSnapshot("h", [], 1, [tmp_path]))
    assert summarise_capacity(result.findings) == {"filecoin-sector": 4 * 32 * 2**30 / TB}
