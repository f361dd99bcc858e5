"""The ledger file (台账) on a real ledger (SQLite, and PostgreSQL where configured), read back
with the csv module and openpyxl as a recipient would."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy.orm import Session, sessionmaker

from minewatch.errors import InputError
from minewatch.ledger.cases import update_case
from minewatch.ledger.ledger_export import (
    COLUMNS,
    export_ledger,
    header,
    ledger_bytes,
    ledger_rows,
)
from tests.ledger.test_weekly import NATIONAL_ADMIN, Week, build_week

KEYS = [key for key, _ in COLUMNS]


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


@pytest.fixture
def week(session: Session) -> Week:
    return build_week(session)


def _read_csv(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "Excel needs the UTF-8 byte-order mark"
    reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig")))
    assert reader.fieldnames == [header(key) for key in KEYS]
    return [{key: row[header(key)] for key in KEYS} for row in reader]


def test_csv_holds_the_notices_fields(session: Session, week: Week, tmp_path: Path) -> None:
    path = tmp_path / "ledger.csv"
    assert export_ledger(session, "330000", path) == 9  # every Zhejiang case, none of Sichuan's
    rows = _read_csv(path)
    assert {row["region_code"][:2] for row in rows} == {"33"}
    by_id = {int(row["case_id"]): row for row in rows}
    assert set(by_id) == {
        week.sunday_close,
        week.monday_close,
        week.monday_lead,
        week.sunday_lead,
        week.confirmed_overdue,
        week.cleared,
        week.ningbo_no_kwh,
        week.ningbo_closed,
        week.province_lead,
    }
    closed = by_id[week.sunday_close]
    assert {k: closed[k] for k in KEYS[:16]} == {
        "enterprise": "杭州星联云计算有限公司",
        "credit_code": "91330110MA2GXL7K37",
        "region_code": "330110",
        "region_name": "余杭区",
        "data_centre": "余杭云谷数据中心",
        "tenant": "杭州星联云计算有限公司",
        "project_type": "new",
        "project_type_label": "增量",
        "mining_class": "unknown",
        "scale_units": "240",
        "hashrate_value": "26.4",
        "hashrate_unit": "PH/s",
        "power_kw": "800.0",
        "annual_kwh": "7008000.0",
        "planned_production_date": "",
        "case_id": str(week.sunday_close),
    }
    assert (closed["state"], closed["opened_on"], closed["confirmed_on"]) == (
        "closed",
        "2026-10-01",
        "2026-10-10",
    )
    # Closed at 23:59:59 China time on 8 November: that is the date on the ledger, not UTC's.
    assert closed["closed_on"] == "2026-11-08"
    assert (closed["shutdown_due"], closed["shutdown_done"]) == ("2026-10-20", "2026-11-08")
    assert closed["stop-mining_due"] == ""
    existing = by_id[week.confirmed_overdue]
    assert (existing["project_type_label"], existing["state"]) == ("存量", "rectification")
    assert (existing["stop-mining_due"], existing["stop-mining_done"]) == ("2026-11-06", "")
    assert existing["shutdown_due"] == ""
    cleared = by_id[week.cleared]
    assert (cleared["state"], cleared["cleared_on"], cleared["closed_on"]) == (
        "cleared",
        "2026-11-03",
        "",
    )


def test_xlsx_keeps_numbers_dates_and_text(session: Session, week: Week, tmp_path: Path) -> None:
    path = tmp_path / "ledger.xlsx"
    assert export_ledger(session, "330100", path) == 6
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    table = list(sheet.iter_rows(values_only=True))
    assert list(table[0]) == [header(key) for key in KEYS]
    rows: dict[int, dict[str, Any]] = {
        int(values[KEYS.index("case_id")]): dict(zip(KEYS, values, strict=True))
        for values in table[1:]
    }
    closed = rows[week.sunday_close]
    assert closed["power_kw"] == 800.0
    assert closed["annual_kwh"] == 7_008_000.0
    assert closed["scale_units"] == 240
    assert closed["credit_code"] == "91330110MA2GXL7K37"
    assert closed["closed_on"] == dt.datetime(2026, 11, 8)  # Excel dates read back as datetimes
    assert closed["project_type_label"] == "增量"
    assert rows[week.monday_lead]["power_kw"] is None
    assert {row["region_code"] for row in rows.values()} == {"330106", "330110"}


def test_rows_and_bytes_agree(session: Session, week: Week) -> None:
    rows = ledger_rows(session, "510000")
    assert [row["case_id"] for row in rows] == [week.sichuan_closed]
    text = ledger_bytes(session, "510000", "csv").decode("utf-8-sig")
    assert len(text.strip().splitlines()) == 2
    assert "锦江区" in text
    assert "杭州" not in text
    nation = ledger_rows(session, "000000")
    assert len(nation) == 10
    # Ordered by region, then case.
    keys = [(row["region_code"], row["case_id"]) for row in nation]
    assert keys == sorted(keys)


def test_wrong_destination_writes_nothing(session: Session, week: Week, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(InputError, match=r"\.csv or an \.xlsx"):
        export_ledger(session, "330000", out / "ledger.txt")
    with pytest.raises(InputError):
        ledger_bytes(session, "330000", "pdf")
    with pytest.raises(InputError):
        export_ledger(session, "33", out / "ledger.csv")
    assert list(out.iterdir()) == []


def test_replaces_the_file_whole(session: Session, week: Week, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    path = out / "ledger.csv"
    path.write_text("old ledger\n", encoding="utf-8")
    export_ledger(session, "510000", path)
    assert len(_read_csv(path)) == 1
    assert [p.name for p in out.iterdir()] == ["ledger.csv"]  # no temporary file left


def test_empty_ledger_has_the_header_only(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with sessions() as session:
        path = tmp_path / "empty.xlsx"
        assert export_ledger(session, "330000", path) == 0
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    assert sheet.max_row == 1
    assert sheet.cell(1, 1).value == header("enterprise") == "enterprise / 企业名称"


def test_formula_text_stays_text(session: Session, week: Week, tmp_path: Path) -> None:
    """A name a spreadsheet would run as a formula is written as inert text, in both formats."""
    hostile = '=HYPERLINK("http://127.0.0.1/x","click")'
    update_case(
        session,
        NATIONAL_ADMIN,
        week.monday_lead,
        {
            "enterprise": hostile,
            "title": "-2+3 lead\x07 with a bell",
            "planned_production_date": "2026-12-01",
        },
    )
    session.commit()
    rows = {int(r["case_id"]): r for r in _read_csv(_export(session, tmp_path / "l.csv"))}
    assert rows[week.monday_lead]["enterprise"] == "'" + hostile
    assert rows[week.monday_lead]["title"].startswith("'-2+3")
    assert rows[week.monday_lead]["planned_production_date"] == "2026-12-01"
    sheet = openpyxl.load_workbook(_export(session, tmp_path / "l.xlsx")).active
    assert sheet is not None
    row = next(
        r for r in sheet.iter_rows(min_row=2) if r[KEYS.index("case_id")].value == week.monday_lead
    )
    cell = row[KEYS.index("enterprise")]
    assert (cell.value, cell.data_type) == (hostile, "s")
    assert row[KEYS.index("title")].value == "-2+3 lead with a bell"  # no control character
    assert row[KEYS.index("planned_production_date")].value == dt.datetime(2026, 12, 1)


def _export(session: Session, path: Path) -> Path:
    export_ledger(session, "330110", path)
    return path
