"""``minewatch report`` on a real ledger (SQLite, and PostgreSQL where configured), invoked as
the top-level command would (the language comes in ``obj`` as ``--lang`` puts it there)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner, Result

from minewatch.commands.report import report
from minewatch.i18n import message
from minewatch.ledger.db import open_engine, session_factory, upgrade
from minewatch.ledger.ledger_export import header
from minewatch.ledger.weekly import REPORT_FIELDS
from minewatch.power.emissions import EmissionFactors
from tests.ledger.test_weekly import Week, build_week


def _run(*args: str, lang: str = "en") -> Result:
    return CliRunner().invoke(report, list(args), obj={"lang": lang})


@pytest.fixture
def ledger(database_url: str) -> Week:
    engine = open_engine(database_url)
    upgrade(engine)
    with session_factory(engine)() as session:
        made = build_week(session)
    engine.dispose()
    return made


def test_weekly_table_in_both_languages(database_url: str, ledger: Week) -> None:
    english = _run("weekly", "--db", database_url, "--region", "330000", "--week", "2026-W45")
    assert english.exit_code == 0, english.output
    lines = english.stdout.splitlines()
    assert lines[0].startswith("clear-to-zero report of 330000 浙江省, week 2026-W45")
    assert "2026-11-02 to 2026-11-08" in lines[0]
    assert lines[1].split()[:4] == ["REGION", "NAME", "OPEN", "NEW"]
    body = {line.split()[0]: line.split() for line in lines[2:]}
    assert body["330100"][1:8] == ["杭州市", "4", "1", "1", "1", "1", "0"]
    assert body["330300"][1:8] == ["温州市", "0", "0", "0", "0", "0", "0"]
    assert body["330000"][:2] == ["330000", "TOTAL"]
    assert body["330000"][5] == "3"  # exited in Zhejiang: one in Hangzhou, two in Ningbo
    assert "1,100.0" in body["330000"]  # kW retired
    chinese = _run(
        "weekly", "--db", database_url, "--region", "330000", "--week", "2026-W45", lang="zh"
    )
    assert chinese.exit_code == 0, chinese.output
    assert chinese.stdout.splitlines()[0].startswith("330000 浙江省 清零周报")
    assert chinese.stdout.splitlines()[1].split()[:4] == ["区划代码", "地区", "未清零", "本周新增"]
    assert "合计" in chinese.stdout
    # The lead booked at the province itself is the province's own level, apart from the total.
    assert chinese.stdout.splitlines()[2].split()[:3] == ["330000", "浙江省（本级）", "1"]


def test_weekly_csv_file_and_jsonl(database_url: str, ledger: Week, tmp_path: Path) -> None:
    out = tmp_path / "out" / "week45.csv"
    out.parent.mkdir()
    result = _run(
        "weekly",
        "--db",
        database_url,
        "--region",
        "330000",
        "--week",
        "2026-W45",
        "--format",
        "csv",
        "--out",
        str(out),
        lang="zh",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == [message(f"report_col_{name}", "zh") for name in REPORT_FIELDS]
    assert [row[0] for row in rows[1:]] == ["330000", "330100", "330200", "330300", "330000"]
    assert rows[-1][1] == "合计"
    lines = _run(
        "weekly",
        "--db",
        database_url,
        "--region",
        "000000",
        "--week",
        "2026-W45",
        "--format",
        "jsonl",
    )
    assert lines.exit_code == 0, lines.output
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    assert [(r["region_code"], r["total"]) for r in records] == [
        ("330000", False),
        ("510000", False),
        ("000000", True),
    ]
    factors = EmissionFactors.bundled()
    for record in records[:2]:
        expected = (
            record["kwh_retired"] / 1000 * factors.factor_for(record["region_code"]).t_per_mwh
        )
        assert record["co2_t"] == pytest.approx(expected)
    assert records[2]["exited"] == records[0]["exited"] + records[1]["exited"] == 4
    assert all(r["week"] == "2026-W45" and r["scope"] == "000000" for r in records)


def test_weekly_refuses_bad_input(database_url: str, ledger: Week, tmp_path: Path) -> None:
    for args in (
        ["--region", "33"],
        ["--region", "330000", "--week", "2026-W60"],
        ["--region", "330000", "--week", "last week"],
    ):
        result = _run("weekly", "--db", database_url, *args)
        assert result.exit_code == 1, args
        assert result.stderr.startswith("error: ")
        assert "Traceback" not in result.output
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    result = _run("weekly", "--db", empty, "--region", "330000")
    assert result.exit_code == 1
    assert "minewatch db upgrade" in result.stderr
    missing = _run(
        "weekly", "--db", database_url, "--region", "330000", "--out", str(tmp_path / "no/x.txt")
    )
    assert missing.exit_code == 1
    assert "Traceback" not in missing.output


def test_ledger_writes_csv_and_xlsx(database_url: str, ledger: Week, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = _run("ledger", "--db", database_url, "--region", "330100", "--out", str(out / "l.csv"))
    assert result.exit_code == 0, result.output
    assert "6 case(s) written to" in result.stderr
    rows = list(csv.DictReader(io.StringIO((out / "l.csv").read_text(encoding="utf-8-sig"))))
    assert {int(row[header("case_id")]) for row in rows} == {
        ledger.sunday_close,
        ledger.monday_close,
        ledger.monday_lead,
        ledger.sunday_lead,
        ledger.confirmed_overdue,
        ledger.cleared,
    }
    result = _run(
        "ledger",
        "--db",
        database_url,
        "--region",
        "510000",
        "--out",
        str(out / "l.xlsx"),
        lang="zh",
    )
    assert result.exit_code == 0, result.output
    assert "已写出 1 件案件" in result.stderr
    sheet = openpyxl.load_workbook(out / "l.xlsx").active
    assert sheet is not None
    assert sheet.max_row == 2
    assert sheet.cell(2, 3).value == "510104"
    bad = _run("ledger", "--db", database_url, "--region", "330100", "--out", str(out / "l.pdf"))
    assert bad.exit_code == 1
    assert ".csv or an .xlsx" in bad.stderr
    assert sorted(p.name for p in out.iterdir()) == ["l.csv", "l.xlsx"]
