"""``/api/v1/host-reports/``: reports delivered by host agents, stored once per ``report_id``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from minewatch.api.deps import (
    MAX_ID,
    MAX_LIMIT,
    IdPath,
    PrincipalDep,
    SessionDep,
    page_links,
    require_write,
)
from minewatch.api.schemas import (
    HostFindingOut,
    HostReportAck,
    HostReportBrief,
    HostReportIn,
    HostReportOut,
    Page,
)
from minewatch.ledger import models
from minewatch.ledger.audit import record
from minewatch.ledger.regions import scope_prefix

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["evidence"])


def _report_out(request: Request, row: models.HostReport, submitter: str) -> HostReportOut:
    return HostReportOut(
        id=row.id,
        url=str(request.url_for("get_host_report", pk=row.id)),
        report_id=row.report_id,
        hostname=row.hostname,
        agent_version=row.agent_version,
        scanned_at=row.scanned_at,
        received_at=row.received_at,
        region_code=row.region_code,
        submitted_by=submitter,
        blind_spots=list(row.blind_spots),
        findings=[
            HostFindingOut(
                id=f.id,
                verdict=f.verdict,  # type: ignore[arg-type]
                kind=f.kind,
                entity=f.entity,
                coin=f.coin,
                confidence=f.confidence,
                evidence=list(f.evidence),
                capacity_bytes=f.capacity_bytes,
                count=f.count,
                pid=f.pid,
                path=f.path,
            )
            for f in row.findings
        ],
    )


@router.post(
    "/host-reports/",
    response_model=HostReportAck,
    status_code=status.HTTP_201_CREATED,
    tags=["evidence"],
    responses={200: {"model": HostReportAck, "description": "already stored earlier"}},
)
def post_host_report(
    body: HostReportIn,
    request: Request,
    response: Response,
    principal: PrincipalDep,
    session: SessionDep,
) -> HostReportAck:
    """Store one agent report; delivering the same ``report_id`` again stores nothing."""
    require_write(principal)
    existing = session.scalar(
        select(models.HostReport).where(models.HostReport.report_id == body.report_id)
    )
    if existing is None:
        row = models.HostReport(
            report_id=body.report_id,
            hostname=body.hostname,
            agent_version=body.agent_version,
            scanned_at=body.scanned_at,
            received_at=dt.datetime.now(dt.UTC),
            region_code=principal.region_code,
            submitted_by_id=principal.user_id,
            blind_spots=list(body.blind_spots),
            findings=[models.HostFinding(**f.model_dump()) for f in body.findings],
        )
        try:
            session.add(row)
            session.flush()
            record(
                session,
                principal.username,
                "host-report.create",
                "host_report",
                row.id,
                {
                    "after": {
                        "report_id": row.report_id,
                        "hostname": row.hostname,
                        "scanned_at": row.scanned_at.isoformat(),
                        "region_code": row.region_code,
                        "findings": len(row.findings),
                    }
                },
            )
            session.commit()
        except IntegrityError:
            # A concurrent delivery of the same report won the race; answer as a duplicate.
            session.rollback()
            existing = session.scalar(
                select(models.HostReport).where(models.HostReport.report_id == body.report_id)
            )
            if existing is None:
                raise
        else:
            return HostReportAck(
                id=row.id,
                report_id=row.report_id,
                created=True,
                url=str(request.url_for("get_host_report", pk=row.id)),
            )
    if existing.hostname != body.hostname or existing.scanned_at != body.scanned_at:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "report_id already used by a different report (other host or scan time)",
        )
    response.status_code = status.HTTP_200_OK
    return HostReportAck(
        id=existing.id,
        report_id=existing.report_id,
        created=False,
        url=str(request.url_for("get_host_report", pk=existing.id)),
    )


@router.get(
    "/host-reports/",
    response_model=Page[HostReportOut] | Page[HostReportBrief],
    tags=["evidence"],
)
def list_host_reports(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    hostname: str | None = None,
    verdict: str | None = None,
    brief: bool = False,
) -> Page[HostReportOut] | Page[HostReportBrief]:
    """Reports inside the caller's region, newest first."""
    query = select(models.HostReport).where(
        models.HostReport.region_code.startswith(scope_prefix(principal.region_code))
    )
    if hostname is not None:
        query = query.where(models.HostReport.hostname == hostname)
    if verdict is not None:
        query = query.where(models.HostReport.findings.any(models.HostFinding.verdict == verdict))
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.options(selectinload(models.HostReport.findings))
        .order_by(models.HostReport.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    following, preceding = page_links(request, count, limit, offset)
    if brief:
        return Page[HostReportBrief](
            count=count,
            next=following,
            previous=preceding,
            results=[
                HostReportBrief(
                    id=r.id,
                    url=str(request.url_for("get_host_report", pk=r.id)),
                    report_id=r.report_id,
                    hostname=r.hostname,
                )
                for r in rows
            ],
        )
    names = _usernames(session, {r.submitted_by_id for r in rows})
    return Page[HostReportOut](
        count=count,
        next=following,
        previous=preceding,
        results=[_report_out(request, r, names[r.submitted_by_id]) for r in rows],
    )


@router.get("/host-reports/{pk}/", response_model=HostReportOut, tags=["evidence"])
def get_host_report(
    pk: IdPath, request: Request, principal: PrincipalDep, session: SessionDep
) -> HostReportOut:
    """One report with its findings (404 also when it lies outside the caller's region)."""
    row = session.scalar(
        select(models.HostReport)
        .where(models.HostReport.id == pk)
        .where(models.HostReport.region_code.startswith(scope_prefix(principal.region_code)))
        .options(selectinload(models.HostReport.findings))
    )
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such host report")
    return _report_out(
        request, row, _usernames(session, {row.submitted_by_id})[row.submitted_by_id]
    )


def _usernames(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(
        select(models.User.id, models.User.username).where(models.User.id.in_(ids))
    )
    return {user_id: name for user_id, name in rows}
