"""The weekly "clear-to-zero" report (清零周报) of one region, rolled up from its child regions.

Provinces reported their mining ledgers week by week until every project was shut down or
retired: how many cases are still open, how many were found, confirmed and closed this week, how
much is overdue, and what the closures took off the grid. This module computes that report for
one region's subtree and one ISO week:

* the week runs Monday 00:00 to Sunday 24:00 **China Standard Time** (UTC+8), whatever time zone
  the server runs in, because that is the calendar the officials report in
  (:class:`IsoWeek`);
* one row per child region -- a province's cities, a city's counties, the nation's provinces --
  plus the total, so each level's report is the sum of the reports below it. A case booked at the
  region itself (not at a child) gets a row of its own under the region's code. A county-level
  region that reports straight to its province (e.g. 429004 仙桃市) is its own child when the
  imported region table says so;
* the counts are the cases' own dates, so the report of a past week does not change as the
  cases move on: *open* = opened before the week's end and neither closed nor cleared by then;
  *new* = opened this week; *confirmed* = confirmed this week; *exited* = closed this week;
* *overdue* = cases with an overdue item on the Monday after the week
  (:func:`minewatch.ledger.cases.overdue`, the same rule as the alerts). That rule reads the
  milestones as they stand now, so for a past week it counts what is *still* overdue;
* *kW retired* and *annual kWh retired* sum ``power_kw`` and ``annual_kwh`` of the cases closed
  this week; *CO₂ avoided* multiplies each region's kWh by its province's average grid emission
  factor (:class:`minewatch.power.emissions.EmissionFactors`, one factor year for the whole
  report), to the kilogram. Closed cases with no annual kWh on record add nothing and are counted in
  ``kwh_unknown``, so an understated figure says so.

Everything is counted by the database (one ``GROUP BY region_code`` query); Python only maps the
few distinct region codes onto the child regions.

Example::

    >>> week = IsoWeek.parse("2026-W48")
    >>> week.monday.isoformat(), week.sunday.isoformat(), week.starts_at.isoformat()
    ('2026-11-23', '2026-11-29', '2026-11-22T16:00:00+00:00')
    >>> child_region("330110", "330000"), child_region("330000", "330000")
    ('330100', '330000')
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy import case as when_then
from sqlalchemy.orm import Session

from minewatch.errors import InputError
from minewatch.ledger.case_models import Case
from minewatch.ledger.cases import CHINA_TZ, china_today
from minewatch.ledger.cases import overdue_cases as overdue_cases_in
from minewatch.ledger.models import Region
from minewatch.ledger.regions import NATIONAL, check_code, scope_prefix
from minewatch.power.emissions import EmissionFactor, EmissionFactors

__all__ = [
    "COUNT_FIELDS",
    "REPORT_FIELDS",
    "IsoWeek",
    "WeeklyReport",
    "WeeklyRow",
    "child_region",
    "weekly_report",
]

_WEEK = re.compile(r"^(\d{4})-?W(\d{2})$")
_FIRST_YEAR, _LAST_YEAR = 2000, 2100
"""Weeks a report may cover: the ledger's era, and far from the calendar's ends."""

COUNT_FIELDS = ("open", "new", "confirmed", "exited", "overdue", "kwh_unknown")
"""The whole-number columns of a row."""
REPORT_FIELDS = (
    "region_code",
    "region_name",
    *COUNT_FIELDS,
    "kw_retired",
    "kwh_retired",
    "co2_t",
    "factor_t_per_mwh",
)
"""Every column of a row, in report order (the keys of :meth:`WeeklyRow.to_dict`)."""


@dataclass(frozen=True, slots=True)
class IsoWeek:
    """An ISO 8601 week (Monday to Sunday) read on China's calendar.

    Example::

        >>> IsoWeek.containing(dt.date(2027, 1, 1)).label   # Friday of 2026's last week
        '2026-W53'
    """

    year: int
    week: int

    def __post_init__(self) -> None:
        if not _FIRST_YEAR <= self.year <= _LAST_YEAR:
            raise InputError(f"week year {self.year} is not from {_FIRST_YEAR} to {_LAST_YEAR}")
        try:
            dt.date.fromisocalendar(self.year, self.week, 1)
        except ValueError as exc:
            raise InputError(f"{self.year}-W{self.week:02d} is not an ISO week: {exc}") from None

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        """``2026-W48`` (or ``2026W48``); :class:`InputError` for anything else."""
        match = _WEEK.fullmatch(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise InputError(f"week {text!r} is not an ISO week such as 2026-W48")
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def containing(cls, day: dt.date) -> IsoWeek:
        """The week ``day`` falls in."""
        iso = day.isocalendar()
        return cls(iso.year, iso.week)

    @classmethod
    def current(cls) -> IsoWeek:
        """This week in China."""
        return cls.containing(china_today())

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    @property
    def monday(self) -> dt.date:
        return dt.date.fromisocalendar(self.year, self.week, 1)

    @property
    def sunday(self) -> dt.date:
        return self.monday + dt.timedelta(days=6)

    @property
    def starts_at(self) -> dt.datetime:
        """Monday 00:00 China time, as a UTC instant (inclusive)."""
        return dt.datetime.combine(self.monday, dt.time(), CHINA_TZ).astimezone(dt.UTC)

    @property
    def ends_at(self) -> dt.datetime:
        """The next Monday 00:00 China time, as a UTC instant (exclusive)."""
        return self.starts_at + dt.timedelta(days=7)


@dataclass(frozen=True, slots=True)
class WeeklyRow:
    """One region's figures for the week.

    ``factor_t_per_mwh`` is the emission factor applied (``None`` on a total that mixes
    provinces with different factors).

    Example::

        >>> WeeklyRow("330100", "杭州市", exited=1, kwh_retired=2e6, co2_t=1.0).to_dict()["co2_t"]
        1.0
    """

    region_code: str
    region_name: str | None = None
    open: int = 0
    new: int = 0
    confirmed: int = 0
    exited: int = 0
    overdue: int = 0
    kwh_unknown: int = 0
    """Cases closed this week with no annual kWh on record (their CO₂ is not counted)."""
    kw_retired: float = 0.0
    kwh_retired: float = 0.0
    co2_t: float = 0.0
    factor_t_per_mwh: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The row as plain JSON-ready values, keys in :data:`REPORT_FIELDS` order."""
        return {name: getattr(self, name) for name in REPORT_FIELDS}


@dataclass(frozen=True, slots=True)
class WeeklyReport:
    """A region's week: one row per child region and their total.

    ``fell_back`` names the child regions whose province has no published factor for
    ``factor_year``; they were given the national average instead.
    """

    region_code: str
    region_name: str | None
    week: IsoWeek
    rows: tuple[WeeklyRow, ...]
    total: WeeklyRow
    factor_year: int
    fell_back: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {
            "region_code": self.region_code,
            "region_name": self.region_name,
            "week": self.week.label,
            "monday": self.week.monday.isoformat(),
            "sunday": self.week.sunday.isoformat(),
            "factor_year": self.factor_year,
            "fell_back": list(self.fell_back),
            "rows": [row.to_dict() for row in self.rows],
            "total": self.total.to_dict(),
        }


def child_region(code: str, scope: str, known: Collection[str] = ()) -> str:
    """The child of ``scope`` whose subtree holds ``code`` (``scope`` itself when the code is the
    scope's own). ``code`` must lie inside ``scope``.

    The child is read from the code's structure; ``known`` (the imported region codes) corrects
    it for a county-level region under a province with no city between them.
    """
    prefix = scope_prefix(scope)
    if not code.startswith(prefix):
        raise InputError(f"region {code} does not lie inside {scope}")
    if code == scope:
        return scope
    if scope == NATIONAL:
        return code[:2] + "0000"
    if len(prefix) == 2:  # a province: its cities
        if code[2:4] == "00":  # booked at the province under another spelling? keep it apart
            return code
        city = code[:4] + "00"
        if known and city not in known and code in known:
            return code
        return city
    return code  # a city's children are its counties; a county has none


def _bucket(rows: Iterable[Any], scope: str, known: Collection[str]) -> dict[str, list[Any]]:
    children: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        children[child_region(row.region_code, scope, known)].append(row)
    return children


def weekly_report(
    session: Session,
    scope: str,
    week: IsoWeek,
    *,
    factors: EmissionFactors | None = None,
    factor_year: int | None = None,
) -> WeeklyReport:
    """The clear-to-zero report of ``scope``'s subtree for ``week``.

    ``factors`` defaults to the bundled grid emission factors and ``factor_year`` to their newest
    year with provincial figures.
    """
    check_code(scope)
    factors = EmissionFactors.bundled() if factors is None else factors
    year = factors.default_year if factor_year is None else factor_year
    factors.factor_for(NATIONAL, year)  # refuses a year with no factors before any query
    start, end = week.starts_at, week.ends_at
    prefix = scope_prefix(scope)

    def counted(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(when_then((condition, 1), else_=0)), 0)

    def summed(condition: ColumnElement[bool], column: Any) -> Any:
        return func.coalesce(
            func.sum(when_then((condition, func.coalesce(column, 0.0)), else_=0.0)), 0.0
        )

    closed_in_week = and_(Case.closed_at >= start, Case.closed_at < end)
    still_open = and_(
        Case.opened_at < end,
        or_(Case.closed_at.is_(None), Case.closed_at >= end),
        or_(Case.cleared_at.is_(None), Case.cleared_at >= end),
    )
    query = select(
        Case.region_code,
        counted(still_open).label("open"),
        counted(and_(Case.opened_at >= start, Case.opened_at < end)).label("new"),
        counted(and_(Case.confirmed_at >= start, Case.confirmed_at < end)).label("confirmed"),
        counted(closed_in_week).label("exited"),
        counted(and_(closed_in_week, Case.annual_kwh.is_(None))).label("kwh_unknown"),
        summed(closed_in_week, Case.power_kw).label("kw_retired"),
        summed(closed_in_week, Case.annual_kwh).label("kwh_retired"),
    ).group_by(Case.region_code)
    if prefix:
        query = query.where(Case.region_code.startswith(prefix))
    grouped = session.execute(query).all()

    region_query = select(Region.code, Region.name, Region.parent_code)
    if prefix:
        region_query = region_query.where(Region.code.startswith(prefix))
    regions = {code: (name, parent) for code, name, parent in session.execute(region_query)}
    scope_name = session.scalar(select(Region.name).where(Region.code == scope))

    # Overdue items as the alerts list has them, as of the Monday after the week.
    overdue_cases: dict[str, set[int]] = defaultdict(set)
    for case_id, region_code in overdue_cases_in(
        session, week.sunday + dt.timedelta(days=1), scope
    ):
        overdue_cases[child_region(region_code, scope, regions)].add(case_id)

    fell_back: set[str] = set()
    rows: dict[str, WeeklyRow] = {}
    children = _bucket(grouped, scope, regions)
    listed = {code for code, (_, parent) in regions.items() if parent == scope}
    if scope == NATIONAL:
        listed = {code for code in regions if code.endswith("0000")}
    for child in sorted(listed | set(children) | set(overdue_cases)):
        factor = _factor(factors, child, year)
        if factor.fell_back:
            fell_back.add(child)
        members = children.get(child, [])
        kwh = sum(float(m.kwh_retired) for m in members)
        rows[child] = WeeklyRow(
            region_code=child,
            region_name=regions.get(child, (None, None))[0],
            open=sum(int(m.open) for m in members),
            new=sum(int(m.new) for m in members),
            confirmed=sum(int(m.confirmed) for m in members),
            exited=sum(int(m.exited) for m in members),
            overdue=len(overdue_cases.get(child, ())),
            kwh_unknown=sum(int(m.kwh_unknown) for m in members),
            kw_retired=_round(sum(float(m.kw_retired) for m in members)),
            kwh_retired=_round(kwh),
            co2_t=_round(kwh / 1000.0 * factor.t_per_mwh),
            factor_t_per_mwh=factor.t_per_mwh,
        )
    ordered = tuple(rows[code] for code in sorted(rows))
    return WeeklyReport(
        region_code=scope,
        region_name=scope_name,
        week=week,
        rows=ordered,
        total=_total(scope, scope_name, ordered),
        factor_year=year,
        fell_back=tuple(sorted(fell_back)),
    )


def _round(value: float) -> float:
    """Three decimals: a kilogram of CO₂, a watt, a watt-hour -- finer is float noise."""
    return round(value, 3)


def _factor(factors: EmissionFactors, code: str, year: int) -> EmissionFactor:
    """The code's provincial factor; the national one, flagged, for a code of no province."""
    try:
        return factors.factor_for(code, year)
    except InputError:  # a well-formed code outside the provinces the factor table knows
        return replace(factors.factor_for(NATIONAL, year), requested=code, fell_back=True)


def _total(scope: str, name: str | None, rows: tuple[WeeklyRow, ...]) -> WeeklyRow:
    used = {row.factor_t_per_mwh for row in rows if row.kwh_retired}
    return WeeklyRow(
        region_code=scope,
        region_name=name,
        open=sum(row.open for row in rows),
        new=sum(row.new for row in rows),
        confirmed=sum(row.confirmed for row in rows),
        exited=sum(row.exited for row in rows),
        overdue=sum(row.overdue for row in rows),
        kwh_unknown=sum(row.kwh_unknown for row in rows),
        kw_retired=_round(sum(row.kw_retired for row in rows)),
        kwh_retired=_round(sum(row.kwh_retired for row in rows)),
        co2_t=_round(sum(row.co2_t for row in rows)),
        factor_t_per_mwh=used.pop() if len(used) == 1 else None,
    )
