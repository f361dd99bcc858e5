"""``minewatch case`` on a real ledger (SQLite, and PostgreSQL where configured), invoked as the
top-level command would."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from minewatch.commands.cases import case
from minewatch.ledger.audit import verify
from minewatch.ledger.db import open_engine, session_factory, upgrade
from minewatch.ledger.models import AuditEntry
from tests.ledger.test_cases import new_lead, seed, walk


def _run(*args: str) -> Result:
    return CliRunner().invoke(case, list(args), obj={"lang": "en"})


@pytest.fixture
def ledger(database_url: str) -> dict[str, int]:
    """A ledger with a closed new project, an existing one in rectification, a late inspection
    and a fresh lead; returns their ids."""
    engine = open_engine(database_url)
    upgrade(engine)
    with session_factory(engine)() as session:
        ids = seed(session)
        made = {
            "closed": walk(session, new_lead(session, ids).id, "closed").id,
            "existing": walk(
                session, new_lead(session, ids).id, "rectification", project_type="existing"
            ).id,
            "visit": walk(session, new_lead(session, ids).id, "inspection").id,
            "lead": new_lead(session, ids).id,
        }
        session.commit()
    engine.dispose()
    return made


def test_overdue_lists_items_as_text_and_json(database_url: str, ledger: dict[str, int]) -> None:
    text = _run("overdue", "--db", database_url, "--region", "330000", "--today", "2026-03-02")
    assert text.exit_code == 0, text.output
    lines = text.stdout.strip().splitlines()
    assert [line.split("\t")[:3] for line in lines] == [
        ["2026-02-02", "28d", str(ledger["visit"])],
        ["2026-03-01", "1d", str(ledger["existing"])],
    ]
    assert "stop-mining (停止挖矿)" in lines[1]
    assert "2 overdue item(s) in 330000 on 2026-03-02" in text.stderr
    as_json = _run("overdue", "--db", database_url, "--today", "2026-05-02", "--format", "jsonl")
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert {(r["case_id"], r["kind"]) for r in records} == {
        (ledger["visit"], "inspection"),
        (ledger["existing"], "stop-mining"),
        (ledger["existing"], "remove-equipment"),
        (ledger["existing"], "cut-supply"),
    }
    other = _run("overdue", "--db", database_url, "--region", "510000", "--today", "2026-05-02")
    assert other.exit_code == 0 and other.stdout == ""
    bad = _run("overdue", "--db", database_url, "--today", "2 March")
    assert bad.exit_code == 1 and "not a date" in bad.stderr and "Traceback" not in bad.output


def test_tariffs_export_csv_and_xlsx(
    database_url: str, ledger: dict[str, int], tmp_path: Path
) -> None:
    out = tmp_path / "tariffs.csv"
    refused = _run("tariffs", "--db", database_url, "--region", "330000", "--out", str(out))
    assert refused.exit_code == 1
    assert "no published surcharge known for province 330000" in refused.stderr
    assert not out.exists()
    done = _run(
        "tariffs",
        "--db",
        database_url,
        "--region",
        "330000",
        "--surcharge",
        "1.2",
        "--out",
        str(out),
    )
    assert done.exit_code == 0, done.output
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    # Two confirmed cases of one tenant at one site: its two meters there, periods merged.
    both = f"{ledger['closed']};{ledger['existing']}"
    assert sorted((r["case_ids"], r["account_id"], r["start"], r["end"]) for r in rows) == [
        (both, "0063744294", "2026-02-03", ""),
        (both, "6374429440", "2026-02-03", ""),
    ]
    assert "2 account(s) from 2 case(s)" in done.stderr
    xlsx = tmp_path / "tariffs.xlsx"
    again = _run(
        "tariffs",
        "--db",
        database_url,
        "--region",
        "330100",
        "--surcharge",
        "1.2",
        "--out",
        str(xlsx),
    )
    assert again.exit_code == 0, again.output
    sheet = openpyxl.load_workbook(xlsx).active
    assert sheet is not None
    assert sheet.max_row == 1 + len(rows)
    for bad_out, message in [
        (tmp_path / "tariffs.txt", ".csv or an .xlsx"),
        (tmp_path / "missing" / "t.csv", "No such file"),
    ]:
        failed = _run(
            "tariffs",
            "--db",
            database_url,
            "--region",
            "330000",
            "--surcharge",
            "1",
            "--out",
            str(bad_out),
        )
        assert failed.exit_code == 1 and message in failed.stderr, failed.output
        assert "Traceback" not in failed.output


def test_move_show_and_list(database_url: str, ledger: dict[str, int]) -> None:
    lead = str(ledger["lead"])
    illegal = _run("move", lead, "closed", "--db", database_url, "--reason", "skip ahead")
    assert illegal.exit_code == 1 and "cannot go to closed" in illegal.stderr
    moved = _run("move", lead, "verification", "--db", database_url, "--reason", "desk check")
    assert moved.exit_code == 0, moved.output
    assert moved.stdout.strip() == f"case {lead}: verification"
    visit = _run(
        "move",
        lead,
        "inspection",
        "--db",
        database_url,
        "--reason",
        "visit",
        "--inspector",
        "ins-hz",
        "--on",
        "2026-12-01",
    )
    assert visit.exit_code == 0, visit.output
    shown = json.loads(_run("show", lead, "--db", database_url).stdout)
    assert shown["state"] == "inspection"
    assert [t["to"] for t in shown["transitions"]] == ["lead", "verification", "inspection"]
    assert shown["transitions"][-1]["actor"].startswith("cli:")
    elsewhere = _run("show", lead, "--db", database_url, "--region", "510000")
    assert elsewhere.exit_code == 1 and f"no case {lead}" in elsewhere.stderr
    listed = _run("list", "--db", database_url, "--region", "330000", "--state", "rectification")
    assert listed.stdout.split("\t")[:2] == [str(ledger["existing"]), "rectification"]
    assert "\t存量\t" in listed.stdout
    engine = open_engine(database_url)
    with session_factory(engine)() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
        assert entry.actor.startswith("cli:") and entry.reason == "visit"
        assert verify(session).ok
    engine.dispose()


def test_a_ledger_without_case_tables_is_one_clear_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = open_engine(url)
    upgrade(engine, "0003")
    engine.dispose()
    result = _run("overdue", "--db", url)
    assert result.exit_code == 1
    assert "run 'minewatch db upgrade'" in result.stderr
    assert "Traceback" not in result.output


def test_push_ip_list_opens_leads_once_and_refuses_a_bad_file(
    database_url: str, tmp_path: Path
) -> None:
    from minewatch.ledger.registry import import_registry, sample_registry_dir

    engine = open_engine(database_url)
    upgrade(engine)
    with session_factory(engine)() as session:
        import_registry(session, [sample_registry_dir()])
        session.commit()
    engine.dispose()
    good = tmp_path / "w48.csv"
    good.write_text("ip\n10.11.16.25\n10.12.32.9\n192.0.2.1\n", encoding="utf-8")
    first = _run("push-ip-list", str(good), "--name", "W48", "--db", database_url)
    assert first.exit_code == 0, first.output
    assert first.output.count("\tnew\t") == 3
    again = _run("push-ip-list", str(good), "--name", "W48", "--db", database_url)
    assert again.exit_code == 0 and again.output.count("\texists\t") == 3
    bad = tmp_path / "bad.csv"
    bad.write_text("ip\n10.11.16.25\nnot-an-ip\n", encoding="utf-8")
    refused = _run("push-ip-list", str(bad), "--name", "BAD", "--db", database_url)
    assert refused.exit_code == 1
    assert "bad.csv:3" in refused.output and "Traceback" not in refused.output
    listed = _run("list", "--db", database_url)
    assert listed.output.count("IP list W48") == 3
    assert "IP list BAD" not in listed.output  # the refused list wrote nothing
