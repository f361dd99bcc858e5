"""The sample-province demo (scripts/sample/province_demo.py) end to end, on SQLite and PostgreSQL.

The script drives the real CLI (child processes) and the real API (uvicorn on loopback); this
test then reads the ledger it left behind directly, so what is checked is the stored state, not
what the script says it did.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from minewatch.ledger.audit import verify
from minewatch.ledger.case_models import Case, Inspection
from minewatch.ledger.cases import CHINA_TZ, EXIT_PLAN_STEPS
from minewatch.ledger.db import open_engine, session_factory
from minewatch.ledger.models import AuditEntry
from minewatch.ledger.registry_models import PowerAccount

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "sample" / "province_demo.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("province_demo", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_sample_province_goes_from_detector_output_to_closed_cases(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    status = _load_script().main(["--db", database_url, "--out", str(out)])
    printed = capsys.readouterr()
    assert status == 0, printed.err[-2000:]
    assert "存量" in printed.out and "增量" in printed.out  # the narrative is bilingual

    engine = open_engine(database_url)
    try:
        with session_factory(engine)() as session:
            cases = session.scalars(
                select(Case)
                .options(
                    selectinload(Case.evidence),
                    selectinload(Case.milestones),
                    selectinload(Case.transitions),
                    selectinload(Case.inspections).selectinload(Inspection.attachments),
                )
                .order_by(Case.id)
            ).all()
            by_type = {c.project_type: c for c in cases}
            assert len(cases) == 2 and set(by_type) == {"existing", "new"}
            for case in cases:
                assert case.state == "closed" and case.closed_at is not None
                assert case.confirmed_at is not None
                assert case.milestones and all(m.done_on is not None for m in case.milestones)
                assert case.region_code.startswith("33")  # inside the sample province
                (inspection,) = case.inspections
                assert inspection.result == "mining" and inspection.inspected_at is not None
                assert inspection.checklist and all(i["done"] for i in inspection.checklist)
                (attachment,) = inspection.attachments
                written = (out / attachment.file_name).read_bytes()
                assert attachment.sha256 == hashlib.sha256(written).hexdigest()
                assert attachment.size_bytes == len(written)

            existing, new = by_type["existing"], by_type["new"]
            # 存量: the exit plan's three steps; 增量: one shutdown order.
            assert sorted(m.kind for m in existing.milestones) == sorted(EXIT_PLAN_STEPS)
            assert [m.kind for m in new.milestones] == ["shutdown"]
            # Case A rests on evidence the registry attributed to its tenant; case B on the
            # network evidence no prefix contains (loopback), linked by id.
            assert existing.source == "detection" and existing.tenant_id is not None
            assert existing.evidence
            assert all(e.tenant_id == existing.tenant_id for e in existing.evidence)
            assert new.source == "ip-list" and new.evidence
            assert all(e.detector == "net" and e.region_code is None for e in new.evidence)
            assert new.ip_addresses == [e.entity for e in new.evidence]

            report = verify(session)
            assert report.ok, [str(p) for p in report.problems]
            for case in cases:  # every move of each case is in the chain, by who made it
                moves = session.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.action == "case.transition")
                    .where(AuditEntry.object_id == str(case.id))
                    .order_by(AuditEntry.id)
                ).all()
                later = [t for t in case.transitions if t.from_state is not None]
                assert [(e.data["to"], e.actor) for e in moves] == [
                    (t.to_state, t.actor) for t in later
                ]

            accounts = {
                a.account_id
                for a in session.scalars(
                    select(PowerAccount).where(PowerAccount.tenant_id == existing.tenant_id)
                )
            }
            assert existing.closed_at is not None
            closed_on = existing.closed_at.astimezone(CHINA_TZ).date().isoformat()
    finally:
        engine.dispose()

    with (out / "punitive-tariffs.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    # The tenant's meters are billed for case A; case B names no tenant and is not billed.
    assert rows and {r["account_id"] for r in rows} == accounts
    for row in rows:
        assert row["case_ids"] == str(existing.id)
        assert row["end"] == closed_on and row["surcharge_cny_per_kwh"] == "1.0"


def test_bad_database_url_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = _load_script().main(["--db", "nosuchdb://x", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 1
    assert "province demo failed" in err and "Traceback" not in err
