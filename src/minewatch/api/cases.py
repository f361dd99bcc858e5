"""``/api/v1/cases/`` and ``/api/v1/alerts/``: the case workflow over HTTP.

The routes only translate: bodies into calls of :mod:`minewatch.ledger.cases`, which checks
region, role and rules itself, and its refusals into status codes -- 404 for a case outside the
caller's region (it does not exist for them), 403 for a role or read-only token that may not,
409 for a move the case's state does not allow (or a concurrent change), 422 for bad values.
A refused request is rolled back whole, so it writes nothing, audit entry included.

Example::

    >>> sorted({r.path for r in router.routes if "alerts" in r.path})
    ['/api/v1/alerts/']
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from minewatch.api.case_schemas import (
    AlertOut,
    AttachmentOut,
    CaseBrief,
    CaseIn,
    CaseOut,
    CasePatch,
    ChecklistItem,
    Hashrate,
    InspectionIn,
    InspectionOut,
    InspectionPatch,
    MilestoneOut,
    MilestonePatch,
    TransitionIn,
    TransitionOut,
)
from minewatch.api.deps import (
    MAX_ID,
    MAX_LIMIT,
    IdPath,
    PrincipalDep,
    SessionDep,
    page_links,
    require_write,
)
from minewatch.api.schemas import Page
from minewatch.errors import InputError
from minewatch.ledger import cases as workflow
from minewatch.ledger.case_models import Case, Inspection, Milestone
from minewatch.ledger.regions import check_code, within

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["cases"])

_UNPROCESSABLE = 422
"""Values that cannot be used (Starlette renamed the constant; the number is stable)."""


@contextmanager
def _ledger_call(session: Session) -> Iterator[None]:
    """Run a ledger call; on refusal roll back and answer with the matching status."""
    try:
        yield
    except workflow.CaseNotFoundError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except workflow.NotPermittedError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    except workflow.CaseConflictError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except StaleDataError as exc:
        session.rollback()
        raise HTTPException(
            status.HTTP_409_CONFLICT, "the case was changed meanwhile: reload it and try again"
        ) from exc
    except InputError as exc:
        session.rollback()
        raise HTTPException(_UNPROCESSABLE, str(exc)) from exc
    except BaseException:
        session.rollback()
        raise


def _milestone_out(request: Request, case_id: int, milestone: Milestone) -> MilestoneOut:
    return MilestoneOut(
        id=milestone.id,
        url=str(request.url_for("update_milestone", pk=case_id, item=milestone.id)),
        kind=milestone.kind,  # type: ignore[arg-type]
        label=workflow.MILESTONE_LABELS[milestone.kind],
        due_on=milestone.due_on,
        done_on=milestone.done_on,
        note=milestone.note,
    )


def _brief(request: Request, case: Case) -> CaseBrief:
    return CaseBrief(
        id=case.id,
        url=str(request.url_for("get_case", pk=case.id)),
        title=case.title,
        state=case.state,  # type: ignore[arg-type]
        region_code=case.region_code,
    )


def _case_out(request: Request, case: Case) -> CaseOut:
    hashrate = (
        None
        if case.hashrate_value is None or case.hashrate_unit is None
        else Hashrate(value=case.hashrate_value, unit=case.hashrate_unit)  # type: ignore[arg-type]
    )
    return CaseOut(
        **_brief(request, case).model_dump(),
        source=case.source,  # type: ignore[arg-type]
        source_ref=case.source_ref,
        mining_class=case.mining_class,  # type: ignore[arg-type]
        tenant_id=case.tenant_id,
        data_centre_id=case.data_centre_id,
        enterprise=case.enterprise,
        credit_code=case.credit_code,
        scale_units=case.scale_units,
        hashrate=hashrate,
        power_kw=case.power_kw,
        annual_kwh=case.annual_kwh,
        planned_production_date=case.planned_production_date,
        project_type=case.project_type,  # type: ignore[arg-type]
        project_type_label=workflow.PROJECT_TYPES.get(case.project_type or ""),
        ip_addresses=list(case.ip_addresses),
        evidence_ids=[e.id for e in case.evidence],
        cleared_reason=case.cleared_reason,
        order_ref=case.order_ref,
        opened_at=case.opened_at,
        opened_by=case.opened_by,
        updated_at=case.updated_at,
        confirmed_at=case.confirmed_at,
        cleared_at=case.cleared_at,
        closed_at=case.closed_at,
        allowed_transitions=list(workflow.allowed_transitions(case.state)),  # type: ignore[arg-type]
        milestones=[_milestone_out(request, case.id, m) for m in case.milestones],
        transitions=[
            TransitionOut(
                from_state=t.from_state,  # type: ignore[arg-type]
                to_state=t.to_state,  # type: ignore[arg-type]
                at=t.at,
                actor=t.actor,
                reason=t.reason,
            )
            for t in case.transitions
        ],
        inspections_url=str(request.url_for("list_inspections", pk=case.id)),
    )


def _inspection_out(request: Request, inspection: Inspection) -> InspectionOut:
    return InspectionOut(
        id=inspection.id,
        url=str(request.url_for("update_inspection", pk=inspection.case_id, item=inspection.id)),
        case_id=inspection.case_id,
        inspector=inspection.inspector.username,
        scheduled_on=inspection.scheduled_on,
        checklist=[ChecklistItem(**item) for item in inspection.checklist],
        result=inspection.result,  # type: ignore[arg-type]
        notes=inspection.notes,
        inspected_at=inspection.inspected_at,
        attachments=[
            AttachmentOut(
                id=a.id,
                file_name=a.file_name,
                sha256=a.sha256,
                size_bytes=a.size_bytes,
                content_type=a.content_type,
            )
            for a in inspection.attachments
        ],
        created_at=inspection.created_at,
        created_by=inspection.created_by,
    )


def _ledger_changes(body: CasePatch | CaseIn, fields: set[str]) -> dict[str, Any]:
    """The body's ledger fields as :func:`~minewatch.ledger.cases.update_case` takes them."""
    changes: dict[str, Any] = {}
    for name in fields & set(workflow.LEDGER_FIELDS):
        changes[name] = getattr(body, name)
    if "hashrate" in fields:
        changes["hashrate_value"] = body.hashrate.value if body.hashrate else None
        changes["hashrate_unit"] = body.hashrate.unit if body.hashrate else None
    return changes


@router.get("/cases/", response_model=Page[CaseOut] | Page[CaseBrief])
def list_cases(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    state: Annotated[str | None, Query(max_length=20)] = None,
    source: Annotated[str | None, Query(max_length=20)] = None,
    region: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    project_type: Annotated[str | None, Query(max_length=10)] = None,
    mining_class: Annotated[str | None, Query(max_length=20)] = None,
    tenant_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    brief: bool = False,
) -> Page[CaseOut] | Page[CaseBrief]:
    """Cases inside the caller's region, newest first; ``region`` narrows to a subtree."""
    with _ledger_call(session):
        count, rows = workflow.list_cases(
            session,
            principal.region_code,
            state=state,
            source=source,
            region=region,
            project_type=project_type,
            mining_class=mining_class,
            tenant_id=tenant_id,
            limit=limit,
            offset=offset,
        )
    following, preceding = page_links(request, count, limit, offset)
    if brief:
        return Page[CaseBrief](
            count=count,
            next=following,
            previous=preceding,
            results=[_brief(request, c) for c in rows],
        )
    return Page[CaseOut](
        count=count,
        next=following,
        previous=preceding,
        results=[_case_out(request, c) for c in rows],
    )


@router.post("/cases/", response_model=CaseOut, status_code=status.HTTP_201_CREATED)
def create_case(
    body: CaseIn, request: Request, principal: PrincipalDep, session: SessionDep
) -> CaseOut:
    """Open a lead (analysts and admins) in a region inside the caller's."""
    require_write(principal, workflow.ACTIONS["open"])
    ledger = _ledger_changes(body, set(body.model_fields_set) - {"title"})
    with _ledger_call(session):
        case = workflow.open_case(
            session,
            principal,
            region_code=body.region_code,
            title=body.title,
            source=body.source,
            reason=body.reason,
            evidence_ids=body.evidence_ids,
            ip_addresses=body.ip_addresses,
            ledger={k: v for k, v in ledger.items() if v is not None},
        )
        session.commit()
    return _case_out(request, case)


@router.get("/cases/{pk}/", response_model=CaseOut)
def get_case(pk: IdPath, request: Request, principal: PrincipalDep, session: SessionDep) -> CaseOut:
    """One case with its plan and history (404 also when outside the caller's region)."""
    with _ledger_call(session):
        case = workflow.get_case(session, principal.region_code, pk)
    return _case_out(request, case)


@router.patch("/cases/{pk}/", response_model=CaseOut)
def update_case(
    pk: IdPath, body: CasePatch, request: Request, principal: PrincipalDep, session: SessionDep
) -> CaseOut:
    """Change ledger fields (analysts, inspectors, admins); ``null`` clears a field."""
    require_write(principal, workflow.ACTIONS["update"])
    fields = set(body.model_fields_set) - {"reason", "link_evidence_ids"}
    for required in ("title", "mining_class", "region_code"):
        if required in fields and getattr(body, required) is None:
            raise HTTPException(_UNPROCESSABLE, f"{required} cannot be null")
    with _ledger_call(session):
        case = workflow.update_case(
            session, principal, pk, _ledger_changes(body, fields), reason=body.reason
        )
        if body.link_evidence_ids:
            case = workflow.link_evidence(
                session, principal, pk, body.link_evidence_ids, reason=body.reason
            )
        session.commit()
    return _case_out(request, case)


@router.get("/cases/{pk}/transitions/", response_model=list[TransitionOut])
def list_transitions(
    pk: IdPath, principal: PrincipalDep, session: SessionDep
) -> list[TransitionOut]:
    """The case's changes of state, oldest first."""
    with _ledger_call(session):
        case = workflow.get_case(session, principal.region_code, pk)
    return [
        TransitionOut(
            from_state=t.from_state,  # type: ignore[arg-type]
            to_state=t.to_state,  # type: ignore[arg-type]
            at=t.at,
            actor=t.actor,
            reason=t.reason,
        )
        for t in case.transitions
    ]


@router.post("/cases/{pk}/transitions/", response_model=CaseOut)
def post_transition(
    pk: IdPath, body: TransitionIn, request: Request, principal: PrincipalDep, session: SessionDep
) -> CaseOut:
    """Move the case to ``to`` (409 when its state does not allow that move)."""
    roles = workflow.roles_into(body.to)
    if roles:  # into a state no arrow reaches, the ledger answers 409 for every role
        require_write(principal, roles)
    with _ledger_call(session):
        case = workflow.transition(
            session,
            principal,
            pk,
            body.to,
            body.reason,
            inspector=body.inspector,
            scheduled_on=body.scheduled_on,
            checklist=None
            if body.checklist is None
            else [item.model_dump() for item in body.checklist],
            deadline=body.deadline,
            plan=None if body.plan is None else {str(k): v for k, v in body.plan.items()},
            order_ref=body.order_ref,
        )
        session.commit()
    return _case_out(request, case)


@router.get("/cases/{pk}/inspections/", response_model=list[InspectionOut])
def list_inspections(
    pk: IdPath, request: Request, principal: PrincipalDep, session: SessionDep
) -> list[InspectionOut]:
    """The case's inspections, oldest first."""
    with _ledger_call(session):
        case = workflow.get_case(session, principal.region_code, pk)
    rows = session.scalars(
        select(Inspection)
        .where(Inspection.case_id == case.id)
        .options(selectinload(Inspection.inspector), selectinload(Inspection.attachments))
        .order_by(Inspection.id)
    ).all()
    return [_inspection_out(request, i) for i in rows]


@router.post(
    "/cases/{pk}/inspections/", response_model=InspectionOut, status_code=status.HTTP_201_CREATED
)
def create_inspection(
    pk: IdPath, body: InspectionIn, request: Request, principal: PrincipalDep, session: SessionDep
) -> InspectionOut:
    """Schedule a further inspection of a case in inspection (analysts and admins)."""
    require_write(principal, workflow.ACTIONS["schedule-inspection"])
    with _ledger_call(session):
        inspection = workflow.schedule_inspection(
            session,
            principal,
            pk,
            body.inspector,
            body.scheduled_on,
            None if body.checklist is None else [i.model_dump() for i in body.checklist],
            reason=body.reason,
        )
        session.commit()
    return _inspection_out(request, inspection)


@router.patch("/cases/{pk}/inspections/{item}/", response_model=InspectionOut)
def update_inspection(
    pk: IdPath,
    item: IdPath,
    body: InspectionPatch,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
) -> InspectionOut:
    """Record checklist, result, notes and attachment metadata (the assigned inspector or an
    admin, while the case is in inspection)."""
    require_write(principal, workflow.ACTIONS["record-inspection"])
    with _ledger_call(session):
        inspection = workflow.record_inspection(
            session,
            principal,
            pk,
            item,
            checklist=None if body.checklist is None else [i.model_dump() for i in body.checklist],
            result=body.result,
            notes=body.notes,
            attachments=[workflow.AttachmentMeta(**a.model_dump()) for a in body.attachments],
            inspected_at=body.inspected_at,
            reason=body.reason,
        )
        session.commit()
    return _inspection_out(request, inspection)


@router.get("/cases/{pk}/milestones/", response_model=list[MilestoneOut])
def list_milestones(
    pk: IdPath, request: Request, principal: PrincipalDep, session: SessionDep
) -> list[MilestoneOut]:
    """The rectification steps of the case (empty before rectification)."""
    with _ledger_call(session):
        case = workflow.get_case(session, principal.region_code, pk)
    return [_milestone_out(request, case.id, m) for m in case.milestones]


@router.patch("/cases/{pk}/milestones/{item}/", response_model=MilestoneOut)
def update_milestone(
    pk: IdPath,
    item: IdPath,
    body: MilestonePatch,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
) -> MilestoneOut:
    """Mark a step done or note it (inspectors, admins); move its due date (admins)."""
    fields = set(body.model_fields_set) - {"reason"}
    action = "reschedule-milestone" if "due_on" in fields else "complete-milestone"
    require_write(principal, workflow.ACTIONS[action])
    if "due_on" in fields and body.due_on is None:
        raise HTTPException(_UNPROCESSABLE, "due_on cannot be null")
    with _ledger_call(session):
        milestone = workflow.update_milestone(
            session,
            principal,
            pk,
            item,
            {name: getattr(body, name) for name in fields},
            reason=body.reason,
        )
        session.commit()
    return _milestone_out(request, pk, milestone)


@router.get("/alerts/", response_model=Page[AlertOut], tags=["cases"])
def list_alerts(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    on: dt.date | None = None,
    region: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
) -> Page[AlertOut]:
    """Overdue rectification steps, shutdown deadlines and inspections in the caller's region,
    most overdue first, as of ``on`` (default: today in China)."""
    scope = principal.region_code
    if region is not None:
        try:
            check_code(region)
        except InputError as exc:
            raise HTTPException(_UNPROCESSABLE, str(exc)) from exc
        if within(region, principal.region_code):
            scope = region
        elif not within(principal.region_code, region):
            scope = ""  # disjoint subtrees: nothing of the caller's lies there
    day = on or workflow.china_today()
    count = workflow.overdue_count(session, day, scope) if scope else 0
    alerts = (
        workflow.overdue(session, day, scope, limit=limit, offset=offset)
        if scope and offset < count
        else []
    )
    following, preceding = page_links(request, count, limit, offset)
    return Page[AlertOut](
        count=count,
        next=following,
        previous=preceding,
        results=[
            AlertOut(
                **a.to_dict(),
                case_url=str(request.url_for("get_case", pk=a.case_id)),
            )
            for a in alerts
        ],
    )
