"""``/api/v1/assessments/`` (what the evidence says per tenant and data centre) and
``/api/v1/evidence/export/`` (the evidence as OCSF Detection Findings or a STIX 2.1 bundle).

Both read only inside the caller's region subtree, like every route: an assessment is built
from the evidence attributed inside it, a tenant with nothing there answers 404, and an export
holds only the evidence inside it (unattributed evidence, which has no region, only at national
scope). Exports stream: the response starts with the first batch of rows and never holds the
whole table in memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session, sessionmaker

from minewatch.api.deps import MAX_ID, MAX_LIMIT, IdPath, PrincipalDep, SessionDep, page_links
from minewatch.api.schemas import Page
from minewatch.ledger.assessment import Assessment, assess, assess_tenant
from minewatch.ledger.exports import EvidenceSelection, iter_evidence
from minewatch.ledger.exports.ocsf import stream_ocsf
from minewatch.ledger.exports.stix import stream_stix
from minewatch.ledger.regions import scope_prefix
from minewatch.ledger.registry_models import (
    DataCentre,
    Evidence,
    Host,
    IpPrefix,
    PowerAccount,
    Rack,
    Tenant,
)

__all__ = [
    "AssessmentBrief",
    "AssessmentClass",
    "AssessmentOut",
    "ReasonOut",
    "TenantAssessmentOut",
    "router",
]

router = APIRouter(prefix="/api/v1")

AssessmentClass = Literal[
    "pow-asic",
    "pow-gpu",
    "pow-cpu",
    "pow-unknown",
    "storage-chia",
    "storage-filecoin",
    "blockchain-node",
    "ai-training",
    "big-data",
    "cloud",
    "none",
]
"""The classes of :data:`minewatch.ledger.assessment.CLASSES` (a test keeps them equal)."""


class ReasonOut(BaseModel):
    """One reason and the evidence rows (ids) it rests on."""

    text: str
    evidence_ids: list[int]


class AssessmentBrief(BaseModel):
    """The short form of an assessment (``brief=true``)."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    tenant_id: int | None
    tenant: str | None
    data_centre_id: int | None
    data_centre: str | None
    score: float
    mining_class: AssessmentClass = Field(alias="class")
    url: str | None = None


class AssessmentOut(AssessmentBrief):
    """An assessment: score, class, each detector family's strength and the reasons."""

    declared_business: str | None
    region_code: str | None
    families: dict[str, float]
    evidence_count: int
    first_seen: dt.datetime | None
    last_seen: dt.datetime | None
    reasons: list[ReasonOut]


class TenantAssessmentOut(BaseModel):
    """One tenant: the roll-up over its data centres and one assessment per data centre."""

    tenant_id: int
    tenant: str
    declared_business: str
    overall: AssessmentOut
    sites: list[AssessmentOut]


def _url(request: Request, row: Assessment) -> str | None:
    if row.tenant_id is None:
        return None
    return str(request.url_for("get_tenant_assessment", tenant_id=row.tenant_id))


def _brief_fields(request: Request, row: Assessment) -> dict[str, object]:
    return {
        "tenant_id": row.tenant_id,
        "tenant": row.tenant_name,
        "data_centre_id": row.data_centre_id,
        "data_centre": row.data_centre_name,
        "score": row.score,
        "class": row.mining_class,
        "url": _url(request, row),
    }


def _brief(request: Request, row: Assessment) -> AssessmentBrief:
    return AssessmentBrief.model_validate(_brief_fields(request, row))


def _out(request: Request, row: Assessment) -> AssessmentOut:
    return AssessmentOut.model_validate(
        {
            **_brief_fields(request, row),
            "declared_business": row.declared_business,
            "region_code": row.region_code,
            "families": dict(row.families),
            "evidence_count": row.evidence_count,
            "first_seen": row.first_seen,
            "last_seen": row.last_seen,
            "reasons": [
                {"text": r.text, "evidence_ids": list(r.evidence_ids)} for r in row.reasons
            ],
        }
    )


@router.get(
    "/assessments/",
    response_model=Page[AssessmentOut] | Page[AssessmentBrief],
    tags=["assessments"],
)
def list_assessments(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    tenant_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    data_centre_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    mining_class: Annotated[AssessmentClass | None, Query(alias="class")] = None,
    min_score: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
    per: Literal["site", "tenant"] = "site",
    brief: bool = False,
) -> Page[AssessmentOut] | Page[AssessmentBrief]:
    """Assessments inside the caller's region, highest score first: one per tenant and data
    centre (``per=site``), or one per tenant across its data centres (``per=tenant``)."""
    if per == "tenant" and data_centre_id is not None:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, "data_centre_id filters per=site assessments only"
        )
    rows = assess(
        session,
        scope=principal.region_code,
        tenant_id=tenant_id,
        data_centre_id=data_centre_id,
        per_site=per == "site",
    )
    rows = [
        r
        for r in rows
        if r.score >= min_score and (mining_class is None or r.mining_class == mining_class)
    ]
    page = rows[offset : offset + limit]
    following, preceding = page_links(request, len(rows), limit, offset)
    if brief:
        return Page[AssessmentBrief](
            count=len(rows),
            next=following,
            previous=preceding,
            results=[_brief(request, r) for r in page],
        )
    return Page[AssessmentOut](
        count=len(rows),
        next=following,
        previous=preceding,
        results=[_out(request, r) for r in page],
    )


def _tenant_visible(session: Session, tenant_id: int, region: str) -> bool:
    """Whether the tenant has evidence or anything registered inside the region's subtree."""
    prefix = scope_prefix(region)
    if not prefix:
        return session.get(Tenant, tenant_id) is not None
    in_scope = DataCentre.region_code.startswith(prefix)
    placed = [
        exists().where(Evidence.tenant_id == tenant_id, Evidence.region_code.startswith(prefix)),
        *(
            exists().where(
                model.tenant_id == tenant_id,
                model.data_centre_id == DataCentre.id,
                in_scope,
            )
            for model in (IpPrefix, PowerAccount, Host, Rack)
        ),
    ]
    return bool(session.scalar(select(or_(*placed))))


@router.get(
    "/assessments/{tenant_id}/",
    response_model=TenantAssessmentOut,
    tags=["assessments"],
)
def get_tenant_assessment(
    tenant_id: IdPath, request: Request, principal: PrincipalDep, session: SessionDep
) -> TenantAssessmentOut:
    """One tenant inside the caller's region: its roll-up and one assessment per data centre
    (404 when the tenant has nothing inside the region)."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None or not _tenant_visible(session, tenant_id, principal.region_code):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such tenant")
    overall, sites = assess_tenant(session, tenant_id, scope=principal.region_code)
    return TenantAssessmentOut(
        tenant_id=tenant.id,
        tenant=tenant.name,
        declared_business=tenant.declared_business,
        overall=_out(request, overall),
        sites=[_out(request, s) for s in sites],
    )


@router.get(
    "/evidence/export/",
    response_class=StreamingResponse,
    tags=["evidence"],
    responses={
        200: {
            "content": {"application/json": {}},
            "description": "format=ocsf: a JSON array of OCSF 1.3.0 Detection Findings (class "
            "2004), one per evidence row; format=stix: a STIX 2.1 bundle",
        }
    },
)
def export_evidence(
    request: Request,
    principal: PrincipalDep,
    fmt: Annotated[Literal["ocsf", "stix"], Query(alias="format")],
    tenant_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    data_centre_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    detector: Literal["net", "power", "host"] | None = None,
) -> StreamingResponse:
    """The evidence inside the caller's region as OCSF Detection Findings or a STIX 2.1 bundle,
    streamed in evidence-id order."""
    selection = EvidenceSelection(
        scope=principal.region_code,
        tenant_id=tenant_id,
        data_centre_id=data_centre_id,
        detector=detector,
    )
    sessions: sessionmaker[Session] = request.app.state.sessions

    def body() -> Iterator[bytes]:
        # The request's own session closes when the route returns, before the body is sent;
        # the stream reads through a session of its own.
        with sessions() as session:
            rows = iter_evidence(session, selection)
            pieces = stream_ocsf(rows) if fmt == "ocsf" else stream_stix(rows)
            for piece in pieces:
                yield piece.encode("utf-8")

    name = f"minewatch-evidence-{fmt}.json"
    return StreamingResponse(
        body(),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
