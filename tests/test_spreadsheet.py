"""Exports opened in spreadsheets never carry a live formula (tariff list as the example)."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

import openpyxl

from minewatch.ledger.tariffs import Surcharge, TariffRow, write_tariffs
from minewatch.spreadsheet import csv_cell, xlsx_value

EVIL = '=HYPERLINK("http://203.0.113.9/x","click")'


def test_cells() -> None:
    assert csv_cell(EVIL) == "'" + EVIL
    assert [csv_cell(v) for v in ("+1", "-1", "@SUM(A1)", "\tx")] == [
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "'\tx",
    ]
    assert csv_cell(-1.5) == -1.5  # numbers stay numbers
    assert csv_cell(dt.date(2026, 11, 26)) == "2026-11-26"
    assert xlsx_value("a\x00b\x1fc") == "abc"


def _row() -> TariffRow:
    return TariffRow(
        "0063744294",
        EVIL,
        None,
        "=cmd|' /C calc'!A0",
        "330110",
        (4,),
        "existing",
        dt.date(2026, 2, 4),
        None,
        Surcharge(Decimal("1.00"), "given"),
    )


def test_tariff_csv_quotes_formula_text(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    write_tariffs([_row()], path)
    rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[1][0] == "0063744294"  # leading zero kept
    assert rows[1][1] == "'" + EVIL and rows[1][3].startswith("'=")


def test_tariff_xlsx_keeps_formula_text_as_text(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    write_tariffs([_row()], path)
    sheet = openpyxl.load_workbook(path).active
    assert sheet is not None
    cell = sheet.cell(row=2, column=2)
    assert cell.value == EVIL and cell.data_type == "s"
    assert sheet.cell(row=2, column=9).value.date() == dt.date(2026, 2, 4)  # dates stay dates
