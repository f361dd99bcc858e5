"""The on-disk report queue: durable, ordered, private, bounded, and robust to damaged files.

Everything here runs on real files in a temporary directory; nothing is mocked except the wall
clock in the test that makes it step backwards.
"""

from __future__ import annotations

import json
import logging
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minewatch
from minewatch.findings import Verdict
from minewatch.host import spool as spool_module
from minewatch.host.model import HostFinding
from minewatch.host.spool import (
    HostReport,
    Spool,
    SpoolError,
    SpoolLimits,
    default_spool_dir,
)

NAME = re.compile(r"^\d{20}-[0-9a-f]{32}\.json$")


def make_report(hostname: str = "web-01", evidence: str = "process name is xmrig") -> HostReport:
    finding = HostFinding(
        verdict=Verdict.STORAGE_MINING,
        kind="chia-plot",
        entity="/srv/plots",
        coin="xch",
        confidence=0.99,
        evidence=[evidence],
        capacity_bytes=108_000_000_000,
        count=1,
        path="/srv/plots",
    )
    return HostReport.create(hostname, [finding], ["cannot read /proc/1/exe without root"])


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool") as s:
        yield s


def pending_ids(spool: Spool) -> list[str]:
    return [entry.report.report_id for entry in spool.iter_pending()]


def test_report_envelope() -> None:
    r = make_report()
    data = r.to_dict()
    assert list(data) == [
        "report_id",
        "hostname",
        "agent_version",
        "scanned_at",
        "findings",
        "blind_spots",
    ]
    assert re.fullmatch(r"[0-9a-f]{32}", r.report_id)
    assert data["agent_version"] == minewatch.__version__
    assert data["scanned_at"].endswith("Z")
    assert data["findings"][0]["kind"] == "chia-plot"
    assert data["findings"][0]["verdict"] == "storage-mining"
    assert make_report().report_id != r.report_id
    assert HostReport.from_dict(json.loads(r.to_json_bytes())) == r


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"report_id": "not-hex"}, "report_id"),
        ({"hostname": ""}, "hostname"),
        ({"scanned_at": "yesterday"}, "ISO-8601"),
        ({"scanned_at": "2024-05-01T10:00:00"}, "time zone"),
        ({"findings": {"a": 1}}, "findings"),
        ({"blind_spots": [1]}, "blind_spots"),
    ],
)
def test_envelope_validation(change: dict[str, object], message: str) -> None:
    data = make_report().to_dict() | change
    with pytest.raises(ValueError, match=message):
        HostReport.from_dict(data)


def test_put_writes_private_durable_files(spool: Spool) -> None:
    r = make_report()
    result = spool.put(r)
    path = result.entry.path
    assert path.parent == spool.directory and NAME.match(path.name)
    assert path.name.endswith(f"-{r.report_id}.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (spool.directory, spool.directory / "bad", spool.directory / "rejected"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert json.loads(path.read_bytes()) == r.to_dict()
    assert [p.name for p in spool.directory.iterdir() if p.name.startswith(".tmp-")] == []
    assert result.dropped == ()
    assert spool.stats().pending == 1 and spool.stats().pending_bytes == path.stat().st_size


def test_loose_directory_permissions_are_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    with Spool(directory):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_order_is_creation_order_even_if_the_clock_steps_back(tmp_path: Path) -> None:
    reports = [make_report(evidence=f"scan {n}") for n in range(5)]
    stamps = iter([5_000, 4_000, 3_000, 2_000, 1_000])  # NTP stepped the clock back each time
    with Spool(tmp_path / "spool", clock_ns=lambda: next(stamps)) as s:
        for r in reports:
            s.put(r)
        assert pending_ids(s) == [r.report_id for r in reports]


def test_spool_survives_a_restart_and_allows_one_agent_at_a_time(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    first = Spool(directory)
    reports = [make_report(evidence=f"scan {n}") for n in range(3)]
    for r in reports:
        first.put(r)
    with pytest.raises(SpoolError, match="in use"):
        Spool(directory)
    first.close()
    with Spool(directory) as again:
        entries = list(again.iter_pending())
        assert [e.report for e in entries] == reports
        again.ack(entries[0])
        again.put(make_report(evidence="after restart"))
    with Spool(directory) as third:
        ids = pending_ids(third)
    assert ids[:2] == [reports[1].report_id, reports[2].report_id] and len(ids) == 3
    with pytest.raises(SpoolError, match="closed"):
        first.put(make_report())


def test_damaged_files_move_to_bad_and_do_not_block_the_queue(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    oldest = make_report(evidence="will be truncated")
    truncated = spool.put(oldest).entry.path
    truncated.write_bytes(truncated.read_bytes()[:40])  # a disk that lost the tail
    mismatched = spool.put(make_report(evidence="id changed")).entry.path
    data = json.loads(mismatched.read_bytes())
    data["report_id"] = "0" * 32
    mismatched.write_text(json.dumps(data))
    not_utf8 = spool.put(make_report(evidence="binary garbage")).entry.path
    not_utf8.write_bytes(b"\xff\xfe\x00garbage")
    good = make_report(evidence="intact")
    spool.put(good)
    (spool.directory / "notes.txt").write_text("left by a person")
    with caplog.at_level(logging.WARNING, logger="minewatch.agent"):
        assert pending_ids(spool) == [good.report_id]
    bad = spool.directory / "bad"
    moved = sorted(p.name for p in bad.iterdir() if not p.name.endswith(".reason.txt"))
    assert moved == sorted([truncated.name, mismatched.name, not_utf8.name, "notes.txt"])
    reason = (bad / (mismatched.name + ".reason.txt")).read_text()
    assert "does not match the file name" in reason
    assert "not a valid report" in (bad / (truncated.name + ".reason.txt")).read_text()
    assert caplog.text.count("moved to") == 4
    assert spool.stats().bad == 4 and spool.count() == 1


def test_incomplete_temporary_files_are_removed_on_open(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    with Spool(directory) as s:
        s.put(make_report())
    leftover = directory / ".tmp-abc123"
    leftover.write_bytes(b'{"report_id": "trunc')  # a crash between write and rename
    with Spool(directory) as s:
        assert not leftover.exists()
        assert s.count() == 1


def test_count_bound_drops_oldest_counts_and_announces(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    reports = [make_report(evidence=f"scan {n}") for n in range(5)]
    with Spool(directory, SpoolLimits(max_reports=3)) as s:
        results = [s.put(r) for r in reports]
        assert [res.dropped for res in results] == [
            (),
            (),
            (),
            (reports[0].report_id,),
            (reports[1].report_id,),
        ]
        assert pending_ids(s) == [r.report_id for r in reports[2:]]
        assert s.stats().dropped_total == 2
        notice = results[3].entry.report.blind_spots[-1]
        assert "1 earlier report(s)" in notice and "dropped unsent" in notice
        stored = next(s.iter_pending()).report  # reports[2] was stored before any drop
        assert not any("dropped" in b for b in stored.blind_spots)
    with Spool(directory, SpoolLimits(max_reports=3)) as s:
        assert s.stats().dropped_total == 2  # counted across restarts


def test_byte_bound_drops_oldest_and_refuses_oversized(tmp_path: Path) -> None:
    one = len(make_report().to_json_bytes())
    limits = SpoolLimits(max_reports=100, max_bytes=3 * one + one // 2)
    with Spool(tmp_path / "spool", limits) as s:
        reports = [make_report() for _ in range(4)]
        dropped = [s.put(r).dropped for r in reports]
        assert dropped[:3] == [(), (), ()]
        assert reports[0].report_id in dropped[3]
        assert s.stats().pending_bytes <= limits.max_bytes
        assert reports[-1].report_id in pending_ids(s)
        huge = make_report(evidence="x" * limits.max_bytes)
        with pytest.raises(SpoolError, match="more than the spool bound"):
            s.put(huge)
        assert huge.report_id not in pending_ids(s)


def test_unannounced_drop_survives_a_failed_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drops made for a report that then could not be written are announced by the next one."""
    directory = tmp_path / "spool"
    with Spool(directory, SpoolLimits(max_reports=1)) as s:
        s.put(make_report())

        def full_disk(directory: Path, name: str, data: bytes) -> Path:
            raise OSError(28, "No space left on device")

        original = spool_module._write_durably
        monkeypatch.setattr(spool_module, "_write_durably", full_disk)
        with pytest.raises(SpoolError, match="No space left"):
            s.put(make_report())
        monkeypatch.setattr(spool_module, "_write_durably", original)
        assert s.count() == 0  # the old report was dropped, the new one never written
        stored = s.put(make_report()).entry.report
        assert "1 earlier report(s)" in stored.blind_spots[-1]
        again = s.put(make_report()).entry.report  # drops the previous one, announces only it
        assert "1 earlier report(s)" in again.blind_spots[-1]
    with Spool(directory, SpoolLimits(max_reports=1)) as s:
        assert s.stats().dropped_total == 2


def test_reject_moves_report_with_reason(spool: Spool) -> None:
    entry = spool.put(make_report()).entry
    target = spool.reject(entry, "HTTP 422: hostname not allowed")
    assert target.exists() and not entry.path.exists()
    assert json.loads(target.read_bytes())["report_id"] == entry.report.report_id
    reason = target.with_name(target.name + ".reason.txt").read_text()
    assert "hostname not allowed" in reason
    assert spool.count() == 0 and spool.stats().rejected == 1


def test_quarantine_keeps_the_newest_files_only(tmp_path: Path) -> None:
    with Spool(tmp_path / "spool", SpoolLimits(max_quarantined=2)) as s:
        entries = [s.put(make_report()).entry for _ in range(3)]
        for entry in entries:
            s.reject(entry, "no")
        kept = sorted(p.name for p in (s.directory / "rejected").iterdir())
    newest = sorted(e.name for e in entries)[1:]
    assert kept == sorted([*newest, *(n + ".reason.txt" for n in newest)])


def test_default_spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_spool_dir({}, euid=0) == Path("/var/lib/minewatch/spool")
    assert default_spool_dir({"XDG_STATE_HOME": "/srv/state"}, euid=1000) == Path(
        "/srv/state/minewatch/spool"
    )
    home_default = tmp_path / ".local" / "state" / "minewatch" / "spool"
    assert default_spool_dir({"XDG_STATE_HOME": "relative/x"}, euid=1000) == home_default
    assert default_spool_dir({}, euid=1000) == home_default


def test_spool_path_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "spool"
    blocker.write_text("")
    with pytest.raises(SpoolError, match="spool"):
        Spool(blocker)


texts = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(hostname=texts.filter(bool), evidence=texts, blind=st.lists(texts, max_size=3))
def test_any_text_survives_the_round_trip(
    tmp_path: Path, hostname: str, evidence: str, blind: list[str]
) -> None:
    finding = HostFinding(Verdict.MINING, "xmrig", "pid 1", None, 0.5, [evidence])
    r = HostReport.create(hostname, [finding], blind)
    with Spool(tmp_path / "prop") as s:
        entry = s.put(r).entry
        assert [e.report for e in s.iter_pending()] == [r]
        s.ack(entry)
