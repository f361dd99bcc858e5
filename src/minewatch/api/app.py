"""The minewatch REST API (FastAPI) under ``/api/v1``.

Conventions follow NetBox so that people and scripts used to a data-centre registry feel at home:
plural resource paths with a trailing slash, ``Authorization: Token <token>``, pages of
``count``/``next``/``previous``/``results`` driven by ``limit`` and ``offset``, ``brief=true`` for
short rows. Every read is filtered to the caller's region subtree *in the query*, and an object
outside it answers 404, not 403, so a user cannot even learn that it exists.

Example::

    >>> app = create_app("sqlite://")
    >>> [p for p in app.openapi()["paths"] if p.startswith("/api/v1/host")]
    ['/api/v1/host-reports/', '/api/v1/host-reports/{pk}/']
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from minewatch import __version__
from minewatch.api import assessments, cases, host_reports, ip_lists, reports
from minewatch.api.deps import PrincipalDep, SessionDep
from minewatch.api.schemas import StatusOut
from minewatch.ledger.db import open_engine, session_factory, upgrade

__all__ = ["create_app"]


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
    for router in ROUTERS:
        app.include_router(router)
    return app


status_router = APIRouter(prefix="/api/v1", tags=["status"])


@status_router.get("/status/", response_model=StatusOut)
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


ROUTERS: tuple[APIRouter, ...] = (
    status_router,
    host_reports.router,
    assessments.router,
    cases.router,
    ip_lists.router,
    reports.router,
)
"""Every resource module's router; a new resource is one module plus one entry here."""
