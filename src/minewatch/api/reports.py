"""``/api/v1/reports/``: the weekly clear-to-zero report and the ledger file.

Both are read-only and scoped like every other read: ``region`` (default: the caller's own)
must lie inside the caller's subtree, else the answer is 404 -- a region outside one's reach
has no report one may see. A malformed region or week is 422.

Example::

    >>> sorted(r.path for r in router.routes)
    ['/api/v1/reports/ledger/', '/api/v1/reports/weekly/']
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel

from minewatch.api.deps import PrincipalDep, SessionDep
from minewatch.errors import InputError
from minewatch.ledger.ledger_export import ledger_bytes
from minewatch.ledger.regions import within
from minewatch.ledger.tokens import Principal
from minewatch.ledger.weekly import IsoWeek, WeeklyRow, weekly_report

__all__ = ["WeeklyReportOut", "WeeklyRowOut", "router"]

router = APIRouter(prefix="/api/v1", tags=["reports"])

_UNPROCESSABLE = 422
_MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class WeeklyRowOut(BaseModel):
    """One region's week: cases open at the week's end, new, confirmed and closed (exited) in
    the week, cases with overdue items, and what the closures retired."""

    region_code: str
    region_name: str | None
    open: int
    new: int
    confirmed: int
    exited: int
    overdue: int
    kwh_unknown: int
    kw_retired: float
    kwh_retired: float
    co2_t: float
    factor_t_per_mwh: float | None


class WeeklyReportOut(BaseModel):
    """A region's week: a row per child region and the total (the sum of the rows)."""

    region_code: str
    region_name: str | None
    week: str
    monday: str
    sunday: str
    factor_year: int
    fell_back: list[str]
    rows: list[WeeklyRowOut]
    total: WeeklyRowOut


def _scope(principal: Principal, region: str | None) -> str:
    if region is None:
        return principal.region_code
    if not within(region, principal.region_code):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no region {region} within your reach")
    return region


def _row(row: WeeklyRow) -> WeeklyRowOut:
    return WeeklyRowOut(**row.to_dict())


@router.get("/reports/weekly/", response_model=WeeklyReportOut)
def get_weekly_report(
    principal: PrincipalDep,
    session: SessionDep,
    region: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    week: Annotated[str | None, Query(pattern=r"^\d{4}-?W\d{2}$")] = None,
) -> WeeklyReportOut:
    """The clear-to-zero report of ``region`` (default: the caller's) for ISO ``week``
    (``2026-W48``; default: this week in China), rolled up from its child regions."""
    scope = _scope(principal, region)
    try:
        chosen = IsoWeek.current() if week is None else IsoWeek.parse(week)
        report = weekly_report(session, scope, chosen)
    except InputError as exc:
        raise HTTPException(_UNPROCESSABLE, str(exc)) from exc
    data = report.to_dict()
    return WeeklyReportOut(
        **{k: v for k, v in data.items() if k not in ("rows", "total")},
        rows=[_row(row) for row in report.rows],
        total=_row(report.total),
    )


@router.get(
    "/reports/ledger/",
    response_class=Response,
    responses={
        200: {
            "content": {media: {} for media in _MEDIA_TYPES.values()},
            "description": "The ledger file (CSV with UTF-8 BOM, or XLSX).",
        }
    },
)
def get_ledger(
    principal: PrincipalDep,
    session: SessionDep,
    file_format: Annotated[Literal["csv", "xlsx"], Query(alias="format")] = "csv",
    region: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
) -> Response:
    """The case ledger (台账) of ``region`` (default: the caller's) as CSV or XLSX, one row per
    case with the notice's fields, state, dates and milestones."""
    scope = _scope(principal, region)
    try:
        data = ledger_bytes(session, scope, file_format)
    except InputError as exc:
        raise HTTPException(_UNPROCESSABLE, str(exc)) from exc
    return Response(
        content=data,
        media_type=_MEDIA_TYPES[file_format],
        headers={"Content-Disposition": f'attachment; filename="ledger-{scope}.{file_format}"'},
    )
