"""The minewatch REST API (FastAPI) under ``/api/v1``.

Conventions follow NetBox so that people and scripts used to a data-centre registry feel at home:
plural resource paths with a trailing slash, ``Authorization: Token <token>``, pages of
``count``/``next``/``previous``/``results`` driven by ``limit`` and ``offset``, ``brief=true`` for
short rows. Every read is filtered to the caller's region subtree *in the query*, and an object
outside it answers 404, not 403, so a user cannot even learn that it exists.

Example::

    >>> app = create_app("sqlite://")
    >>> sorted(r.path for r in app.routes if r.path.startswith("/api/v1/host"))[:2]
    ['/api/v1/host-reports/', '/api/v1/host-reports/']
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response, status
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from minewatch import __version__
from minewatch.api.schemas import (
    HostFindingOut,
    HostReportAck,
    HostReportBrief,
    HostReportIn,
    HostReportOut,
    Page,
    StatusOut,
)
from minewatch.ledger import models
from minewatch.ledger.audit import record
from minewatch.ledger.db import open_engine, session_factory, upgrade
from minewatch.ledger.regions import scope_prefix
from minewatch.ledger.tokens import Principal, authenticate

__all__ = ["WRITE_ROLES", "create_app"]

WRITE_ROLES = frozenset({"analyst", "inspector", "admin"})
"""Roles that may submit evidence; a viewer only reads."""

MAX_LIMIT = 1000


def create_app(database_url: str | None = None, *, migrate: bool = True) -> FastAPI:
    """The API over the ledger at ``database_url`` (default: ``MINEWATCH_DATABASE_URL`` or the
    embedded SQLite file), migrated to the current schema first unless ``migrate`` is False."""
    engine = open_engine(database_url)
    if migrate:
        upgrade(engine)
    sessions = session_factory(engine)
    app = FastAPI(
        title="minewatch API",
        version=__version__,
        description=(
            "Evidence, ledger and cases of hidden cryptocurrency mining. "
            "隐蔽挖矿的证据、台账与案件。Authenticate with `Authorization: Token <token>`."
        ),
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.sessions = sessions
    app.include_router(router)
    return app


def _get_session(request: Request) -> Iterator[Session]:
    sessions: sessionmaker[Session] = request.app.state.sessions
    with sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(_get_session)]


def _principal(request: Request, session: SessionDep) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in ("token", "bearer") or not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "authentication required: send 'Authorization: Token <token>'",
            headers={"WWW-Authenticate": "Token"},
        )
    principal = authenticate(session, token)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid or expired token",
            headers={"WWW-Authenticate": "Token"},
        )
    session.commit()  # persists last_used_at
    return principal


def _page_links(request: Request, count: int, limit: int, offset: int) -> tuple[str | None, ...]:
    def link(new_offset: int) -> str:
        return str(request.url.include_query_params(limit=limit, offset=new_offset))

    following = link(offset + limit) if offset + limit < count else None
    preceding = link(max(offset - limit, 0)) if offset > 0 else None
    return following, preceding


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


PrincipalDep = Annotated[Principal, Depends(_principal)]
router = APIRouter(prefix="/api/v1")


@router.get("/status/", response_model=StatusOut, tags=["status"])
def get_status(principal: PrincipalDep, session: SessionDep) -> StatusOut:
    """Server version, database kind and the caller's identity and reach."""
    return StatusOut(
        minewatch_version=__version__,
        database=session.get_bind().dialect.name,
        user=principal.username,
        role=principal.role,
        region_code=principal.region_code,
        write_enabled=principal.write_enabled,
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
    if not principal.write_enabled or principal.role not in WRITE_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this token may not write")
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
    offset: Annotated[int, Query(ge=0)] = 0,
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
    following, preceding = _page_links(request, count, limit, offset)
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
    pk: int, request: Request, principal: PrincipalDep, session: SessionDep
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
