"""The punitive-tariff list (差别电价名单) handed to the grid company.

The 2021 notice of the NDRC and ten other departments (发改运行〔2021〕1283号) lets provinces
charge mining a differential electricity price but sets no national figure; each province
publishes its own surcharge per kWh, levied on the *whole* consumption of the mining user's
account (户号) from the day mining is established until the day it ends, and asks the local
development-and-reform commission to send the grid company the list of accounts with those
start and end dates. This module builds that list from the ledger:

* every case in the region subtree that was ever confirmed (confirmed, in rectification or
  closed) and names a tenant;
* one row per power account of that tenant -- restricted to the case's data centre when the
  case names one, and always to meters whose data centre lies inside the case's region, so a
  tenant's sites in other regions are not billed by this one;
* start = the confirmation date, end = the closure date (empty while the case is open), both
  calendar dates in China Standard Time;
* one row per account and period: when two cases of the same tenant cover the same meter
  with overlapping periods, the periods are merged (:func:`merge_periods`), so the grid
  company never surcharges the same kWh twice;
* the surcharge in yuan per kWh: the value given, else the figure the case's province published
  (:data:`PROVINCIAL_SURCHARGES`); with neither the list is refused, since a list without a price
  cannot be billed.

Cases that cannot be billed (no tenant, or a tenant without a meter in the region) are reported
in :attr:`TariffList.skipped`, never silently dropped.

The list is written as CSV (UTF-8 with a byte-order mark, so Excel shows the Chinese names) or
XLSX, replacing the destination atomically.

Example::

    >>> PROVINCIAL_SURCHARGES["510000"].cny_per_kwh
    Decimal('2.00')
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from minewatch.atomic import atomic_write_bytes
from minewatch.errors import InputError
from minewatch.ledger.case_models import Case
from minewatch.ledger.cases import CHINA_TZ, PROJECT_TYPES
from minewatch.ledger.regions import scope_prefix, within
from minewatch.ledger.registry_models import PowerAccount
from minewatch.spreadsheet import csv_cell, keep_text, xlsx_value

__all__ = [
    "COLUMNS",
    "PROVINCIAL_SURCHARGES",
    "Surcharge",
    "TariffList",
    "TariffRow",
    "merge_periods",
    "parse_surcharge",
    "tariff_list",
    "write_tariffs",
]


@dataclass(frozen=True, slots=True)
class Surcharge:
    """A surcharge in yuan per kWh and the document it comes from.

    Example::

        >>> Surcharge(Decimal("1.00"), "given by the operator").cny_per_kwh
        Decimal('1.00')
    """

    cny_per_kwh: Decimal
    basis: str


PROVINCIAL_SURCHARGES: dict[str, Surcharge] = {
    "140000": Surcharge(
        Decimal("1.00"),
        "Shanxi DRC 2022 notice on differential prices for mining power (+1 yuan/kWh incl. tax)",
    ),
    "150000": Surcharge(
        Decimal("1.00"),
        "内发改价费字〔2022〕115号 (Inner Mongolia: mining priced as an eliminated industry)",
    ),
    "460000": Surcharge(
        Decimal("0.80"),
        "Hainan DRC 2022 notice: mining listed as an eliminated industry, +0.80 yuan/kWh",
    ),
    "510000": Surcharge(
        Decimal("2.00"),
        "川发改价格规〔2022〕186号 (Sichuan: all consumption of the account, until mining stops)",
    ),
}
"""Surcharges published by provincial development-and-reform commissions (province code ->
figure), as the provinces announced them in 2022. A province not listed here has published none
that minewatch knows of: give the figure. Check the current provincial notice before billing."""

COLUMNS = (
    ("account_id", "户号"),
    ("tenant", "用电户名"),
    ("credit_code", "统一社会信用代码"),
    ("data_centre", "数据中心"),
    ("region_code", "行政区划代码"),
    ("case_ids", "案件编号"),
    ("project_type", "项目类型"),
    ("project_type_label", "项目类型（中文）"),
    ("start", "执行起始日"),
    ("end", "执行截止日"),
    ("surcharge_cny_per_kwh", "加价标准（元/千瓦时）"),
    ("basis", "依据"),
)
"""Column keys of the export (the header row) and what each means in the grid company's terms."""

_MAX_SURCHARGE = Decimal("100")


@dataclass(frozen=True, slots=True)
class TariffRow:
    """One account to surcharge, from ``start`` until ``end`` (``None``: until further notice).

    Example::

        >>> row = TariffRow("0063744294", "某公司", None, None, "330110", (4,), "existing",
        ...                 dt.date(2026, 2, 4), None, Surcharge(Decimal("1.00"), "given"))
        >>> row.project_type_label, row.values()[8]
        ('存量', datetime.date(2026, 2, 4))
    """

    account_id: str
    tenant: str
    credit_code: str | None
    data_centre: str | None
    region_code: str
    case_ids: tuple[int, ...]
    """The case(s) the period comes from (several when their periods overlapped)."""
    project_type: str | None
    start: dt.date
    end: dt.date | None
    surcharge: Surcharge

    @property
    def project_type_label(self) -> str:
        """增量 or 存量 (empty when the case has no project type)."""
        return PROJECT_TYPES.get(self.project_type or "", "")

    def values(self) -> tuple[object, ...]:
        """The row in :data:`COLUMNS` order (dates as dates, the surcharge as a Decimal)."""
        return (
            self.account_id,
            self.tenant,
            self.credit_code or "",
            self.data_centre or "",
            self.region_code,
            ";".join(str(case_id) for case_id in self.case_ids),
            self.project_type or "",
            self.project_type_label,
            self.start,
            self.end,
            self.surcharge.cny_per_kwh,
            self.surcharge.basis,
        )


@dataclass(slots=True)
class TariffList:
    """The rows to bill and the confirmed cases that could not be billed, with why.

    Example::

        >>> TariffList(scope="330000").rows
        []
    """

    scope: str
    rows: list[TariffRow] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


def parse_surcharge(value: str | Decimal) -> Decimal:
    """A surcharge in yuan per kWh: a positive decimal below 100, kept exactly (no float)."""
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise InputError(f"surcharge {value!r} is not a number of yuan per kWh") from exc
    if not amount.is_finite() or amount <= 0 or amount >= _MAX_SURCHARGE:
        raise InputError(f"surcharge {value!r} must lie between 0 and 100 yuan per kWh")
    return amount


def _surcharge_for(region_code: str, given: Decimal | None) -> Surcharge | None:
    if given is not None:
        return Surcharge(given, "given by the operator")
    return PROVINCIAL_SURCHARGES.get(region_code[:2] + "0000")


def _local(at: dt.datetime | None) -> dt.date | None:
    return None if at is None else at.astimezone(CHINA_TZ).date()


def tariff_list(
    session: Session, scope: str, *, surcharge: Decimal | str | None = None
) -> TariffList:
    """The surcharge list for confirmed cases in ``scope``'s subtree (see the module notes).

    ``surcharge`` (yuan per kWh) applies to every row; without it each case's province must
    have a figure in :data:`PROVINCIAL_SURCHARGES`, else :class:`InputError` names the
    provinces lacking one.
    """
    given = None if surcharge is None else parse_surcharge(surcharge)
    prefix = scope_prefix(scope)
    cases = session.scalars(
        select(Case)
        .where(Case.region_code.startswith(prefix))
        .where(Case.confirmed_at.is_not(None))
        .where(Case.state.in_(("confirmed", "rectification", "closed")))
        .options(selectinload(Case.tenant))
        .order_by(Case.region_code, Case.id)
    ).all()
    prices = {case.id: _surcharge_for(case.region_code, given) for case in cases}
    lacking = sorted({c.region_code[:2] + "0000" for c in cases if prices[c.id] is None})
    if lacking:
        raise InputError(
            f"no published surcharge known for province {', '.join(lacking)}: give one "
            "(yuan per kWh, from the provincial notice)"
        )
    result = TariffList(scope=scope)
    for case in cases:
        if case.tenant_id is None or case.tenant is None:
            result.skipped.append((case.id, "no tenant: cannot find its power accounts"))
            continue
        query = (
            select(PowerAccount)
            .where(PowerAccount.tenant_id == case.tenant_id)
            .options(selectinload(PowerAccount.data_centre))
            .order_by(PowerAccount.account_id)
        )
        if case.data_centre_id is not None:
            query = query.where(
                or_(
                    PowerAccount.data_centre_id == case.data_centre_id,
                    PowerAccount.data_centre_id.is_(None),
                )
            )
        accounts = [
            account
            for account in session.scalars(query).all()
            if account.data_centre is None
            or within(account.data_centre.region_code, case.region_code)
        ]
        if not accounts:
            result.skipped.append(
                (case.id, f"tenant {case.tenant.name} has no power account in the region")
            )
            continue
        start, price = _local(case.confirmed_at), prices[case.id]
        if start is None or price is None:  # excluded by the query and the check above
            continue
        result.rows.extend(
            TariffRow(
                account_id=account.account_id,
                tenant=case.tenant.name,
                credit_code=case.tenant.credit_code or case.credit_code,
                data_centre=account.data_centre.name if account.data_centre else None,
                region_code=case.region_code,
                case_ids=(case.id,),
                project_type=case.project_type,
                start=start,
                end=_local(case.closed_at) if case.state == "closed" else None,
                surcharge=price,
            )
            for account in accounts
        )
    result.rows = merge_periods(result.rows)
    return result


def merge_periods(rows: Sequence[TariffRow]) -> list[TariffRow]:
    """One row per account and period: overlapping periods of the same account (two cases of
    one tenant, say) become one, so no kWh is surcharged twice; separate periods stay apart.

    The merged row keeps the earliest period's details and lists every case it covers.
    """
    by_account: dict[str, list[TariffRow]] = {}
    for row in rows:
        by_account.setdefault(row.account_id, []).append(row)
    merged: list[TariffRow] = []
    for periods in by_account.values():
        periods.sort(key=lambda r: (r.start, r.case_ids))
        current = periods[0]
        for row in periods[1:]:
            if current.end is None or row.start <= current.end:
                end = None if current.end is None or row.end is None else max(current.end, row.end)
                current = replace(current, end=end, case_ids=current.case_ids + row.case_ids)
            else:
                merged.append(current)
                current = row
        merged.append(current)
    merged.sort(key=lambda r: (r.region_code, r.account_id, r.start))
    return merged


def _csv_bytes(rows: Sequence[TariffRow]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(key for key, _ in COLUMNS)
    for row in rows:
        writer.writerow(csv_cell(value) for value in row.values())
    # The byte-order mark is what makes Excel read the file as UTF-8 rather than the locale's
    # code page (GBK on Chinese Windows), so names are not garbled.
    return buffer.getvalue().encode("utf-8-sig")


def _xlsx_bytes(rows: Sequence[TariffRow]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.comments import Comment

    book = Workbook()
    sheet = book.active
    sheet.title = "差别电价"
    sheet.append([key for key, _ in COLUMNS])
    for cell, (_, label) in zip(sheet[1], COLUMNS, strict=True):
        cell.comment = Comment(label, "minewatch")
    keys = [key for key, _ in COLUMNS]
    price_at = keys.index("surcharge_cny_per_kwh")
    formats = {
        keys.index("start"): "yyyy-mm-dd",
        keys.index("end"): "yyyy-mm-dd",
        price_at: "0.00",
        keys.index("account_id"): "@",  # meter numbers are text: keep leading zeros
    }
    for row in rows:
        values = list(row.values())
        values[price_at] = float(row.surcharge.cny_per_kwh)  # a number Excel can sum
        sheet.append([xlsx_value(v) for v in values])
        keep_text(sheet[sheet.max_row])
        for index, number_format in formats.items():
            sheet.cell(row=sheet.max_row, column=index + 1).number_format = number_format
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def write_tariffs(rows: Sequence[TariffRow], path: Path) -> None:
    """Write the list to ``path`` as CSV or XLSX (by its suffix), replacing it atomically."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        data = _csv_bytes(rows)
    elif suffix == ".xlsx":
        data = _xlsx_bytes(rows)
    else:
        raise InputError(f"{path}: write the tariff list to a .csv or an .xlsx file")
    atomic_write_bytes(path, data)
