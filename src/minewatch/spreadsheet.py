"""Cells that spreadsheets show as the text they are, never run as formulas.

Names in the ledger come from outside (a hotline report, a registry import, a meter feed); a name
such as ``=HYPERLINK("http://…")`` written as-is into a CSV or XLSX file would run as a formula in
the analyst's Excel or WPS. Every export that a person opens in a spreadsheet passes its cells
through here.

Example::

    >>> csv_cell("=1+1"), csv_cell("浙江"), csv_cell(None)
    ("'=1+1", '浙江', '')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

__all__ = ["FORMULA_STARTS", "csv_cell", "keep_text", "xlsx_value"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""Leading characters that make Excel, LibreOffice or WPS treat a cell as a formula."""


def csv_cell(value: object) -> object:
    """A value for a CSV cell: dates in ISO form, None empty, formula-looking text quoted."""
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value  # the apostrophe makes the spreadsheet show it as text
    return value


def xlsx_value(value: object) -> object:
    """A value for an XLSX cell: text stripped of control characters XML cannot hold."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


def keep_text(cells: Iterable[Any]) -> None:
    """Mark text cells of a written openpyxl row as strings (openpyxl makes "=…" a formula)."""
    for cell in cells:
        if isinstance(cell.value, str):
            cell.data_type = "s"
