"""``minewatch registry import`` and ``minewatch ingest`` from the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from minewatch.cli import cli
from minewatch.commands.ingest import ingest, registry
from minewatch.ledger.db import open_engine, session_factory
from minewatch.ledger.registry import sample_registry_dir
from minewatch.ledger.registry_models import DataCentre, Evidence, IpPrefix
from minewatch.sample import sample_capture

OBJ = {"lang": "en"}


def count(url: str, model: type[Evidence] | type[DataCentre]) -> int:
    engine = open_engine(url)
    with session_factory(engine)() as session:
        n = session.scalar(select(func.count()).select_from(model)) or 0
    engine.dispose()
    return n


def test_registry_import_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    runner = CliRunner()
    first = runner.invoke(registry, ["import", "--db", url, str(sample_registry_dir())], obj=OBJ)
    assert first.exit_code == 0, first.output
    assert "data centres: 3 added" in first.stderr
    again = runner.invoke(registry, ["import", "--db", url, str(sample_registry_dir())], obj=OBJ)
    assert again.exit_code == 0
    assert all(" 0 added, 0 updated" in line for line in again.stderr.splitlines())


def test_registry_import_refuses_a_bad_file_and_writes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    directory = Path(shutil.copytree(sample_registry_dir(), tmp_path / "reg"))
    hosts = directory / "hosts.csv"
    lines = hosts.read_text(encoding="utf-8").splitlines()
    hosts.write_text("\n".join([*lines, "没有的数据中心,h1,"]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(registry, ["import", "--db", url, str(directory)], obj=OBJ)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert f"hosts.csv:{len(lines) + 1}: unknown data centre" in result.stderr
    assert "Traceback" not in result.output
    assert count(url, DataCentre) == 0


def test_real_scan_output_goes_in_once_and_unattributed_is_listed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    runner = CliRunner()
    scanned = runner.invoke(cli, ["scan", str(sample_capture()), "-f", "jsonl", "-q"])
    assert scanned.exit_code == 0, scanned.output
    findings = tmp_path / "net.jsonl"
    findings.write_text(scanned.stdout, encoding="utf-8")
    expected = len(scanned.stdout.splitlines())
    assert expected >= 1
    runner.invoke(registry, ["import", "--db", url, str(sample_registry_dir())], obj=OBJ)
    first = runner.invoke(ingest, ["--db", url, str(findings)], obj=OBJ)
    assert first.exit_code == 0, first.output
    assert f"{expected} added (0 attributed, {expected} unattributed)" in first.stderr
    again = runner.invoke(ingest, ["--db", url, str(findings)], obj=OBJ)
    assert f"0 added (0 attributed, 0 unattributed), {expected} duplicate" in again.stderr
    assert count(url, Evidence) == expected
    listed = runner.invoke(ingest, ["--db", url, "--unattributed", "-f", "jsonl"], obj=OBJ)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    # The sample was recorded on loopback, which no data centre registers.
    assert [r["entity"] for r in rows] == ["127.0.0.1"] * expected
    assert all("no registered prefix contains 127.0.0.1" in r["attribution"] for r in rows)


def test_reattribute_after_the_registry_learns_the_address(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    runner = CliRunner()
    record = {
        "verdict": "mining",
        "client_ip": "10.11.16.40",
        "protocol": "stratum-v1",
        "coin": "btc",
        "confidence": 0.9,
        "first_seen": "2026-01-01T00:00:00Z",
        "last_seen": "2026-01-01T00:10:00Z",
        "detector": "net",
    }
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    first = runner.invoke(ingest, ["--db", url, str(path)], obj=OBJ)
    assert "1 unattributed" in first.stderr
    runner.invoke(registry, ["import", "--db", url, str(sample_registry_dir())], obj=OBJ)
    redo = runner.invoke(ingest, ["--db", url, "--reattribute", "--unattributed"], obj=OBJ)
    assert redo.exit_code == 0, redo.output
    assert "1 evidence row(s) changed" in redo.stderr
    assert "no unattributed evidence" in redo.stderr
    engine = open_engine(url)
    with session_factory(engine)() as session:
        row = session.scalars(select(Evidence)).one()
        prefix = session.scalars(select(IpPrefix).where(IpPrefix.prefix == "10.11.16.0/20")).one()
        assert row.tenant_id == prefix.tenant_id
    engine.dispose()


def test_a_bad_evidence_file_stores_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    good = tmp_path / "good.jsonl"
    good.write_text(
        json.dumps(
            {
                "verdict": "mining",
                "client_ip": "10.0.0.1",
                "protocol": "p",
                "coin": None,
                "confidence": 0.5,
            }
        )
        + "\n",
        encoding="utf-8",
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{\n", encoding="utf-8")
    result = CliRunner().invoke(ingest, ["--db", url, str(good), str(bad)], obj=OBJ)
    assert result.exit_code == 1
    assert f"{bad}:1: not valid JSON" in result.stderr
    assert "Traceback" not in result.output
    assert count(url, Evidence) == 0


def test_nothing_to_do_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(ingest, ["--db", f"sqlite:///{tmp_path / 'l.db'}"], obj=OBJ)
    assert result.exit_code == 2
