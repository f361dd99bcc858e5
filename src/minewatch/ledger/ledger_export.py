"""The case ledger (台账) of a region, as a CSV or XLSX file for the people who report it upward.

The 2021 notice asks every region for a complete inventory of mining projects: the enterprise,
its unified social credit code, where it runs, whether it is a new (增量) or an existing (存量)
project, its scale in machines, its hashrate, its power and annual energy use, and -- for a
project under construction -- when it was to start producing. This module writes one row per case
in a region's subtree with those fields, the case's state and dates, and the due and done dates
of each rectification milestone.

Headers carry both languages (``enterprise / 企业名称``) so one file serves a script and an
official; :data:`COLUMNS` maps each key to its Chinese label. CSV is UTF-8 with a byte-order
mark (what makes Excel read it as UTF-8 instead of GBK); XLSX keeps numbers as numbers, dates
as dates and the credit code as text. Text that a spreadsheet would run as a formula (``=...``)
stays text: an XLSX cell is typed as a string, a CSV cell gets a leading apostrophe. The
destination is replaced atomically, so a reader never sees half a ledger.

Example::

    >>> header("enterprise"), COLUMNS[0]
    ('enterprise / 企业名称', ('enterprise', '企业名称'))
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from minewatch.atomic import atomic_write_bytes
from minewatch.errors import InputError
from minewatch.ledger.case_models import Case, Milestone
from minewatch.ledger.cases import CHINA_TZ, MILESTONE_KINDS, MILESTONE_LABELS, PROJECT_TYPES
from minewatch.ledger.models import Region
from minewatch.ledger.regions import check_code, scope_prefix
from minewatch.ledger.registry_models import DataCentre, Tenant
from minewatch.spreadsheet import csv_cell, keep_text, xlsx_value

__all__ = [
    "COLUMNS",
    "FORMATS",
    "export_ledger",
    "header",
    "ledger_bytes",
    "ledger_rows",
]

FORMATS = ("csv", "xlsx")

_BASE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("enterprise", "企业名称"),
    ("credit_code", "统一社会信用代码"),
    ("region_code", "行政区划代码"),
    ("region_name", "行政区划"),
    ("data_centre", "数据中心"),
    ("tenant", "租户"),
    ("project_type", "项目类型"),
    ("project_type_label", "项目类型（增量/存量）"),
    ("mining_class", "挖矿类别"),
    ("scale_units", "规模（台）"),
    ("hashrate_value", "算力"),
    ("hashrate_unit", "算力单位"),
    ("power_kw", "用电负荷（千瓦）"),
    ("annual_kwh", "年用电量（千瓦时）"),
    ("planned_production_date", "计划投产日期"),
    ("case_id", "案件编号"),
    ("title", "案件名称"),
    ("source", "线索来源"),
    ("state", "办理状态"),
    ("order_ref", "整改文书编号"),
    ("opened_on", "立案日期"),
    ("confirmed_on", "认定日期"),
    ("cleared_on", "排除日期"),
    ("closed_on", "办结日期"),
)
_MILESTONE_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    column
    for kind in MILESTONE_KINDS
    for column in (
        (f"{kind}_due", f"{MILESTONE_LABELS[kind]}期限"),
        (f"{kind}_done", f"{MILESTONE_LABELS[kind]}完成日期"),
    )
)
COLUMNS: tuple[tuple[str, str], ...] = _BASE_COLUMNS + _MILESTONE_COLUMNS
"""Every column as (key, Chinese label), in file order."""

_DATE_KEYS = frozenset(
    {"planned_production_date", "opened_on", "confirmed_on", "cleared_on", "closed_on"}
    | {key for key, _ in _MILESTONE_COLUMNS}
)
_NUMBER_FORMATS = {"power_kw": "#,##0.0", "annual_kwh": "#,##0", "scale_units": "0"}


def header(key: str) -> str:
    """The bilingual header of column ``key``: ``key / 中文``."""
    labels = dict(COLUMNS)
    return f"{key} / {labels[key]}"


def _local(at: dt.datetime | None) -> dt.date | None:
    return None if at is None else at.astimezone(CHINA_TZ).date()


def ledger_rows(session: Session, scope: str) -> list[dict[str, Any]]:
    """The ledger of ``scope``'s subtree, one dict per case (keys of :data:`COLUMNS`), ordered
    by region and case id. Dates are :class:`datetime.date` (China's calendar), absent values
    ``None``."""
    prefix = scope_prefix(check_code(scope))
    region = aliased(Region)
    query = (
        select(Case, region.name, DataCentre.name, Tenant.name)
        .outerjoin(region, region.code == Case.region_code)
        .outerjoin(DataCentre, DataCentre.id == Case.data_centre_id)
        .outerjoin(Tenant, Tenant.id == Case.tenant_id)
        .order_by(Case.region_code, Case.id)
    )
    milestone_query = select(Milestone.case_id, Milestone.kind, Milestone.due_on, Milestone.done_on)
    if prefix:
        query = query.where(Case.region_code.startswith(prefix))
        milestone_query = milestone_query.join(Case, Case.id == Milestone.case_id).where(
            Case.region_code.startswith(prefix)
        )
    plans: dict[int, dict[str, Any]] = defaultdict(dict)
    for case_id, kind, due_on, done_on in session.execute(milestone_query):
        plans[case_id][f"{kind}_due"] = due_on
        plans[case_id][f"{kind}_done"] = done_on
    rows: list[dict[str, Any]] = []
    for case, region_name, centre_name, tenant_name in session.execute(query):
        row: dict[str, Any] = {
            "enterprise": case.enterprise,
            "credit_code": case.credit_code,
            "region_code": case.region_code,
            "region_name": region_name,
            "data_centre": centre_name,
            "tenant": tenant_name,
            "project_type": case.project_type,
            "project_type_label": PROJECT_TYPES.get(case.project_type or ""),
            "mining_class": case.mining_class,
            "scale_units": case.scale_units,
            "hashrate_value": case.hashrate_value,
            "hashrate_unit": case.hashrate_unit,
            "power_kw": case.power_kw,
            "annual_kwh": case.annual_kwh,
            "planned_production_date": case.planned_production_date,
            "case_id": case.id,
            "title": case.title,
            "source": case.source,
            "state": case.state,
            "order_ref": case.order_ref,
            "opened_on": _local(case.opened_at),
            "confirmed_on": _local(case.confirmed_at),
            "cleared_on": _local(case.cleared_at),
            "closed_on": _local(case.closed_at),
        }
        plan = plans.get(case.id, {})
        row.update({key: plan.get(key) for key, _ in _MILESTONE_COLUMNS})
        rows.append(row)
    return rows


def _csv_bytes(rows: Sequence[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header(key) for key, _ in COLUMNS)
    for row in rows:
        writer.writerow(csv_cell(row[key]) for key, _ in COLUMNS)
    # The byte-order mark makes Excel read UTF-8 rather than the locale's code page (GBK).
    return buffer.getvalue().encode("utf-8-sig")


def _xlsx_bytes(rows: Sequence[dict[str, Any]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "台账"
    sheet.append([header(key) for key, _ in COLUMNS])
    keys = [key for key, _ in COLUMNS]
    formats = {index: "yyyy-mm-dd" for index, key in enumerate(keys) if key in _DATE_KEYS}
    formats.update({keys.index(key): fmt for key, fmt in _NUMBER_FORMATS.items()})
    formats[keys.index("credit_code")] = "@"  # text: an 18-character code, never a number
    formats[keys.index("region_code")] = "@"
    for row in rows:
        sheet.append([xlsx_value(row[key]) for key in keys])
        line = sheet.max_row
        for index, number_format in formats.items():
            sheet.cell(row=line, column=index + 1).number_format = number_format
        keep_text(sheet[line])
    sheet.freeze_panes = "B2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def ledger_bytes(session: Session, scope: str, file_format: str) -> bytes:
    """The ledger of ``scope``'s subtree as the bytes of a ``csv`` or ``xlsx`` file."""
    if file_format not in FORMATS:
        raise InputError(f"ledger format {file_format!r} is not one of: {', '.join(FORMATS)}")
    rows = ledger_rows(session, scope)
    return _csv_bytes(rows) if file_format == "csv" else _xlsx_bytes(rows)


def export_ledger(session: Session, scope: str, path: Path) -> int:
    """Write the ledger of ``scope``'s subtree to ``path`` (``.csv`` or ``.xlsx``, by suffix),
    replacing it atomically; returns the number of cases written."""
    file_format = path.suffix.lower().lstrip(".")
    if file_format not in FORMATS:
        raise InputError(f"{path}: write the ledger to a .csv or an .xlsx file")
    rows = ledger_rows(session, scope)
    data = _csv_bytes(rows) if file_format == "csv" else _xlsx_bytes(rows)
    atomic_write_bytes(path, data)
    return len(rows)
