"""``minewatch export ocsf|stix`` and ``minewatch assess`` from the command line.

The ledger is filled as in :mod:`tests.ledger.exports.test_ocsf` (real scan of the sample
capture, real power screen, detector-contract findings in the sample registry).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import stix2  # type: ignore[import-untyped]
from click.testing import CliRunner
from sqlalchemy import func, select

from minewatch.commands.export import assess, export
from minewatch.ledger.db import open_engine, session_factory, upgrade
from minewatch.ledger.registry_models import Evidence
from tests.ledger.exports.test_ocsf import fill_ledger, real_outputs, validate

__all__ = ["real_outputs"]  # the module-scoped fixture, shared

OBJ = {"lang": "en"}


@pytest.fixture
def url(database_url: str, real_outputs: tuple[Path, Path]) -> str:
    engine = open_engine(database_url)
    upgrade(engine)
    fill_ledger(session_factory(engine), real_outputs)
    engine.dispose()
    return database_url


def evidence_count(url: str, *, exported_only: bool = False) -> int:
    """Stored evidence rows; ``exported_only`` leaves out meters' "normal" verdicts, which are
    kept to weigh against accusations but are no finding."""
    engine = open_engine(url)
    query = select(func.count()).select_from(Evidence)
    if exported_only:
        query = query.where(Evidence.verdict != "normal")
    with session_factory(engine)() as session:
        n = session.scalar(query) or 0
    engine.dispose()
    return n


def test_export_ocsf_to_a_file(url: str, tmp_path: Path) -> None:
    out = tmp_path / "findings.json"
    result = CliRunner().invoke(export, ["ocsf", "--db", url, "-o", str(out)], obj=OBJ)
    assert result.exit_code == 0, result.output
    findings = json.loads(out.read_text(encoding="utf-8"))
    assert len(findings) == evidence_count(url, exported_only=True)
    assert f"{len(findings)} OCSF Detection Finding(s) written to {out}" in result.stderr
    for finding in findings:
        validate(finding)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_export_stix_scoped_to_stdout(url: str) -> None:
    result = CliRunner().invoke(
        export, ["stix", "--db", url, "--region", "330100", "--detector", "net", "-o", "-"], obj=OBJ
    )
    assert result.exit_code == 0, result.output
    bundle = stix2.parse(result.stdout, allow_custom=False)
    sightings = [o for o in bundle.objects if o.type == "sighting"]
    assert sightings and all("net detector" in s.description for s in sightings)
    assert all("region 3301" in s.description for s in sightings)
    assert "STIX 2.1 bundle" in result.stderr


def test_bad_input_is_one_clear_line(url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    bad_region = runner.invoke(
        export, ["ocsf", "--db", url, "--region", "33", "-o", str(tmp_path / "x.json")], obj=OBJ
    )
    assert bad_region.exit_code == 1
    assert bad_region.stderr.startswith("error: region code '33' is not valid")
    assert not (tmp_path / "x.json").exists()
    missing = tmp_path / "no" / "such" / "dir" / "x.json"
    unwritable = runner.invoke(export, ["stix", "--db", url, "-o", str(missing)], obj=OBJ)
    assert unwritable.exit_code == 1
    assert unwritable.stderr.startswith(f"error: cannot write {missing}")
    for result in (bad_region, unwritable):
        assert "Traceback" not in result.output


def test_assess_table_and_jsonl(url: str) -> None:
    runner = CliRunner()
    table = runner.invoke(assess, ["--db", url], obj=OBJ)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    heads = [line for line in lines if not line.startswith(" ")]
    assert heads and all(" / " in h for h in heads)
    assert any("杭州星联云计算有限公司 / 余杭云谷数据中心 (330110)" in h for h in heads)
    reasons = [line for line in lines if line.startswith("        - ")]
    assert reasons and all(line.rstrip().endswith("]") for line in reasons)

    rows = [
        json.loads(line)
        for line in runner.invoke(assess, ["--db", url, "-f", "jsonl"], obj=OBJ).stdout.splitlines()
    ]
    assert len(rows) == len(heads)
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert all(set(r) >= {"tenant", "data_centre", "score", "class", "reasons"} for r in rows)

    strong = runner.invoke(assess, ["--db", url, "-f", "jsonl", "--min-score", "0.9"], obj=OBJ)
    assert all(json.loads(line)["score"] >= 0.9 for line in strong.stdout.splitlines())
    per_tenant = runner.invoke(assess, ["--db", url, "-f", "jsonl", "--per", "tenant"], obj=OBJ)
    assert all(
        json.loads(line)["data_centre_id"] is None for line in per_tenant.stdout.splitlines()
    )
    chia = runner.invoke(assess, ["--db", url, "-f", "jsonl", "--class", "storage-chia"], obj=OBJ)
    assert {json.loads(line)["class"] for line in chia.stdout.splitlines()} == {"storage-chia"}
    elsewhere = runner.invoke(assess, ["--db", url, "--region", "440000"], obj=OBJ)
    assert elsewhere.exit_code == 0 and elsewhere.stdout == ""
    assert "no assessments" in elsewhere.stderr


def test_assess_usage_errors(url: str) -> None:
    runner = CliRunner()
    mixed = runner.invoke(assess, ["--db", url, "--per", "tenant", "--data-centre", "1"], obj=OBJ)
    assert mixed.exit_code == 2
    bad = runner.invoke(assess, ["--db", url, "--region", "abc"], obj=OBJ)
    assert bad.exit_code == 1 and bad.stderr.startswith("error: region code")
