"""The case workflow on a real ledger (SQLite, and PostgreSQL where configured): whole flows,
illegal moves, roles, regions, overdue alerts, audit, and refusals that write nothing.

``seed``, ``walk`` and ``new_lead`` are shared with the tariff, API and CLI tests; the ledger
itself comes from the ``sessions`` fixture of tests/ledger/conftest.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from minewatch.errors import InputError
from minewatch.ledger.audit import verify
from minewatch.ledger.case_models import Case, CaseTransition, Inspection, Milestone
from minewatch.ledger.cases import (
    DEFAULT_CHECKLIST,
    EXIT_PLAN_STEPS,
    STATES,
    TRANSITIONS,
    AttachmentMeta,
    CaseConflictError,
    CaseNotFoundError,
    LocalOperator,
    NotPermittedError,
    allowed_transitions,
    cleared_examples,
    get_case,
    link_evidence,
    list_cases,
    open_case,
    overdue,
    overdue_cases,
    overdue_count,
    record_inspection,
    roles_into,
    schedule_inspection,
    transition,
    update_case,
    update_milestone,
)
from minewatch.ledger.models import AuditEntry, User
from minewatch.ledger.registry_models import DataCentre, Evidence, PowerAccount, Tenant

UTC = dt.UTC
CST = dt.timezone(dt.timedelta(hours=8))
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

AT = {
    "lead": dt.datetime(2026, 1, 10, 9, 0, tzinfo=CST),
    "verification": dt.datetime(2026, 1, 12, 9, 0, tzinfo=CST),
    "inspection": dt.datetime(2026, 1, 15, 9, 0, tzinfo=CST),
    "cleared": dt.datetime(2026, 2, 4, 9, 0, tzinfo=CST),
    "confirmed": dt.datetime(2026, 2, 3, 10, 0, tzinfo=CST),
    "rectification": dt.datetime(2026, 2, 5, 9, 0, tzinfo=CST),
    "closed": dt.datetime(2026, 5, 2, 9, 0, tzinfo=CST),
}
"""When :func:`walk` makes each move: a fixed past timeline, so dates in the tests are known."""

ADMIN = LocalOperator("adm-zj", role="admin", region_code="330000")
ANALYST = LocalOperator("ana-zj", role="analyst", region_code="330000")
INSPECTOR = LocalOperator("ins-hz", role="inspector", region_code="330100")
VIEWER = LocalOperator("view-zj", role="viewer", region_code="330000")


@dataclass
class Seed:
    """Ids of the rows :func:`seed` made."""

    tenant: int
    other_tenant: int
    centre: int
    ningbo_centre: int
    evidence: list[int]
    sichuan_evidence: int


def seed(session: Session) -> Seed:
    """Users at several regions and roles, a tenant with meters in two cities, evidence."""
    now = dt.datetime(2026, 1, 5, tzinfo=UTC)
    for name, role, region in [
        ("adm-zj", "admin", "330000"),
        ("ana-zj", "analyst", "330000"),
        ("ana-hz", "analyst", "330100"),
        ("ana-sc", "analyst", "510000"),
        ("ins-hz", "inspector", "330100"),
        ("ins-nb", "inspector", "330200"),
        ("ins-sc", "inspector", "510000"),
        ("view-zj", "viewer", "330000"),
        ("adm-nat", "admin", "000000"),
    ]:
        session.add(User(username=name, role=role, region_code=region, created_at=now))
    centre = DataCentre(
        name="余杭云谷数据中心",
        operator="杭州云谷数据科技有限公司",
        address="杭州市余杭区示例路 1 号",
        region_code="330110",
        capacity_kw=12000,
        pue=1.32,
    )
    ningbo = DataCentre(
        name="宁波北仑数据中心",
        operator="宁波示例数据有限公司",
        address="宁波市北仑区示例路 2 号",
        region_code="330206",
        capacity_kw=4000,
        pue=1.4,
    )
    tenant = Tenant(
        name="杭州星联云计算有限公司",
        credit_code="91330110MA2GXL7K37",
        declared_business="cloud computing",
    )
    other = Tenant(name="衢州数智人工智能有限公司", credit_code=None, declared_business="AI")
    session.add_all([centre, ningbo, tenant, other])
    session.flush()
    session.add_all(
        [
            PowerAccount(
                account_id="0063744294",
                tenant_id=tenant.id,
                data_centre_id=centre.id,
                contracted_kw=800,
            ),
            PowerAccount(
                account_id="6374429440",
                tenant_id=tenant.id,
                data_centre_id=centre.id,
                contracted_kw=400,
            ),
            PowerAccount(
                account_id="5501000001",
                tenant_id=tenant.id,
                data_centre_id=ningbo.id,
                contracted_kw=200,
            ),
            PowerAccount(
                account_id="3308020417",
                tenant_id=other.id,
                data_centre_id=centre.id,
                contracted_kw=3000,
            ),
        ]
    )
    evidence = []
    for n, (region, address) in enumerate(
        [("330110", "10.11.16.25"), ("330110", "10.11.16.26"), ("510104", "10.51.0.9")]
    ):
        row = Evidence(
            fingerprint=f"{n:064x}",
            detector="net",
            verdict="mining",
            kind="stratum-v1",
            coin="btc",
            confidence=0.99,
            entity=address,
            subject=address,
            first_seen=now,
            last_seen=now,
            raw={"client_ip": address},
            source=f"net.jsonl:{n + 1}",
            ingested_at=now,
            region_code=region,
            tenant_id=tenant.id if region == "330110" else None,
            data_centre_id=centre.id if region == "330110" else None,
            attribution="prefix 10.11.16.0/20",
        )
        session.add(row)
        evidence.append(row)
    session.flush()
    return Seed(
        tenant=tenant.id,
        other_tenant=other.id,
        centre=centre.id,
        ningbo_centre=ningbo.id,
        evidence=[e.id for e in evidence[:2]],
        sichuan_evidence=evidence[2].id,
    )


def walk(
    session: Session,
    case_id: int,
    to: str,
    *,
    project_type: str = "new",
    confirmed_at: dt.datetime | None = None,
    actor: LocalOperator | None = None,
    inspector: str = "ins-hz",
) -> Case:
    """Take a case from wherever it is to state ``to`` along the main path, as an admin."""
    admin = ADMIN if actor is None else actor
    path = ["lead", "verification", "inspection", "confirmed", "rectification", "closed"]
    case = get_case(session, admin.region_code, case_id)
    if to == "cleared":
        if case.state == "lead":
            transition(session, admin, case_id, "verification", "desk check", at=AT["verification"])
        return transition(
            session, admin, case_id, "cleared", "lawful blockchain node", at=AT["cleared"]
        )
    while case.state != to:
        nxt = path[path.index(case.state) + 1]
        if nxt == "inspection":
            case = transition(
                session,
                admin,
                case_id,
                "inspection",
                "site visit needed",
                inspector=inspector,
                scheduled_on=dt.date(2026, 2, 2),
                at=AT["inspection"],
            )
        elif nxt == "confirmed":
            inspection = case.inspections[-1]
            record_inspection(session, admin, case_id, inspection.id, result="mining")
            case = transition(
                session, admin, case_id, "confirmed", "miners found", at=confirmed_at or AT[nxt]
            )
        elif nxt == "rectification":
            update_case(session, admin, case_id, {"project_type": project_type})
            if project_type == "new":
                case = transition(
                    session,
                    admin,
                    case_id,
                    "rectification",
                    "order",
                    deadline=dt.date(2026, 3, 1),
                    at=AT[nxt],
                )
            else:
                plan = dict(
                    zip(
                        EXIT_PLAN_STEPS,
                        [dt.date(2026, 3, 1), dt.date(2026, 4, 1), dt.date(2026, 5, 1)],
                        strict=True,
                    )
                )
                case = transition(
                    session, admin, case_id, "rectification", "plan", plan=plan, at=AT[nxt]
                )
        elif nxt == "closed":
            for milestone in case.milestones:
                update_milestone(
                    session,
                    admin,
                    case_id,
                    milestone.id,
                    {"done_on": milestone.due_on},
                    today=dt.date(2026, 12, 31),
                )
            case = transition(session, admin, case_id, "closed", "all done", at=AT[nxt])
        else:
            case = transition(session, admin, case_id, nxt, "next step", at=AT[nxt])
    return case


def new_lead(session: Session, ids: Seed, region: str = "330110", **extra: object) -> Case:
    return open_case(
        session,
        ANALYST,
        region_code=region,
        title="Yuhang stratum traffic",
        source="detection",
        evidence_ids=ids.evidence,
        reason="two hosts talk stratum to a BTC pool",
        at=AT["lead"],
        ledger={"tenant_id": ids.tenant, "data_centre_id": ids.centre, **extra},
    )


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


@pytest.fixture
def ids(session: Session) -> Seed:
    result = seed(session)
    session.commit()
    return result


def _counts(session: Session) -> tuple[int, ...]:
    return tuple(
        session.scalar(select(func.count()).select_from(model)) or 0
        for model in (AuditEntry, CaseTransition, Inspection, Milestone, Case)
    )


def test_new_project_goes_from_lead_to_closed(session: Session, ids: Seed) -> None:
    case = new_lead(session, ids, enterprise="杭州星联云计算有限公司", power_kw=820.5)
    session.commit()
    assert (case.state, case.source, case.region_code) == ("lead", "detection", "330110")
    assert [e.id for e in case.evidence] == ids.evidence
    transition(session, ANALYST, case.id, "verification", "flat 800 kW load", at=AT["verification"])
    transition(
        session,
        ANALYST,
        case.id,
        "inspection",
        "visit the site",
        inspector="ins-hz",
        scheduled_on="2026-02-02",
        at=AT["inspection"],
    )
    inspection = case.inspections[0]
    assert inspection.inspector.username == "ins-hz"
    assert inspection.scheduled_on == dt.date(2026, 2, 2)
    assert [i["item"] for i in inspection.checklist] == list(DEFAULT_CHECKLIST)
    assert not any(i["done"] for i in inspection.checklist)
    photo = AttachmentMeta("rack-a01.jpg", SHA, 2_345_678, "image/jpeg")
    record_inspection(
        session,
        INSPECTOR,
        case.id,
        inspection.id,
        checklist=[{"item": "ASIC miners counted", "done": True}],
        result="mining",
        notes="312 Antminer S19 in racks A01-A02",
        attachments=[photo],
        inspected_at=dt.datetime(2026, 2, 2, 10, 30, tzinfo=CST),
    )
    transition(
        session, INSPECTOR, case.id, "confirmed", "312 ASIC miners on site", at=AT["confirmed"]
    )
    update_case(
        session,
        ANALYST,
        case.id,
        {
            "project_type": "new",
            "scale_units": 312,
            "hashrate_value": 29.6,
            "hashrate_unit": "PH/s",
        },
        reason="inspection record",
    )
    transition(
        session,
        ADMIN,
        case.id,
        "rectification",
        "shutdown order issued",
        deadline=dt.date(2026, 3, 1),
        order_ref="杭发改〔2026〕12号",
        at=AT["rectification"],
    )
    (shutdown,) = case.milestones
    assert (shutdown.kind, shutdown.due_on, shutdown.done_on) == (
        "shutdown",
        dt.date(2026, 3, 1),
        None,
    )
    with pytest.raises(CaseConflictError, match="not done yet: shutdown"):
        transition(session, ADMIN, case.id, "closed", "too early")
    update_milestone(
        session,
        INSPECTOR,
        case.id,
        shutdown.id,
        {"done_on": "2026-02-27"},
        today=dt.date(2026, 3, 3),
    )
    transition(session, ADMIN, case.id, "closed", "miners removed, power cut", at=AT["closed"])
    session.commit()

    assert case.state == "closed"
    assert case.order_ref == "杭发改〔2026〕12号"
    assert case.confirmed_at is not None and case.closed_at is not None
    assert case.closed_at >= case.confirmed_at
    assert [(t.from_state, t.to_state) for t in case.transitions] == [
        (None, "lead"),
        ("lead", "verification"),
        ("verification", "inspection"),
        ("inspection", "confirmed"),
        ("confirmed", "rectification"),
        ("rectification", "closed"),
    ]
    assert case.inspections[0].attachments[0].sha256 == SHA
    assert case.inspections[0].inspected_at == dt.datetime(2026, 2, 2, 2, 30, tzinfo=UTC)
    moves = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "case.transition").order_by(AuditEntry.id)
    ).all()
    assert [(m.data["from"], m.data["to"]) for m in moves] == [
        (t.from_state, t.to_state) for t in case.transitions[1:]
    ]
    assert [m.actor for m in moves] == ["ana-zj", "ana-zj", "ins-hz", "adm-zj", "adm-zj"]
    assert moves[-1].reason == "miners removed, power cut"
    assert moves[3].data["milestones"] == {"shutdown": "2026-03-01"}
    assert {"case.create", "case.update", "inspection.update", "milestone.update"} <= set(
        session.scalars(select(AuditEntry.action)).all()
    )
    assert verify(session).ok


def test_existing_project_closes_only_when_every_exit_step_is_done(
    session: Session, ids: Seed
) -> None:
    case = walk(session, new_lead(session, ids).id, "confirmed")
    update_case(session, ADMIN, case.id, {"project_type": "existing"})
    with pytest.raises(InputError, match="exit plan with a due date for each"):
        transition(
            session, ADMIN, case.id, "rectification", "plan", plan={"stop-mining": "2026-03-01"}
        )
    with pytest.raises(InputError, match="not one deadline"):
        transition(session, ADMIN, case.id, "rectification", "plan", deadline=dt.date(2026, 3, 1))
    plan = {
        "stop-mining": "2026-03-01",
        "remove-equipment": "2026-04-01",
        "cut-supply": "2026-05-01",
    }
    transition(session, ADMIN, case.id, "rectification", "exit plan agreed", plan=plan)
    session.commit()
    assert {m.kind: m.due_on.isoformat() for m in case.milestones} == plan
    for step in EXIT_PLAN_STEPS:
        with pytest.raises(CaseConflictError, match="not done yet"):
            transition(session, ADMIN, case.id, "closed", "early")
        milestone = next(m for m in case.milestones if m.kind == step)
        update_milestone(
            session,
            INSPECTOR,
            case.id,
            milestone.id,
            {"done_on": plan[step], "note": "checked on site"},
            today=dt.date(2026, 6, 1),
        )
    with pytest.raises(NotPermittedError):
        transition(session, ANALYST, case.id, "closed", "analyst may not close")
    transition(session, ADMIN, case.id, "closed", "exit complete")
    session.commit()
    assert case.state == "closed"
    assert all(m.done_on is not None for m in case.milestones)
    assert verify(session).ok


def test_every_illegal_move_is_refused_and_writes_nothing(session: Session, ids: Seed) -> None:
    reached: dict[str, int] = {}
    for state in STATES:
        reached[state] = walk(session, new_lead(session, ids).id, state).id
    session.commit()
    before = _counts(session)
    tried = 0
    for state, case_id in reached.items():
        for target in STATES:
            if (state, target) in TRANSITIONS:
                continue
            with pytest.raises(CaseConflictError, match=f"is {state}: it cannot go to {target}"):
                transition(session, ADMIN, case_id, target, "try")
            tried += 1
    assert tried == len(STATES) ** 2 - len(TRANSITIONS)
    session.commit()
    assert _counts(session) == before
    assert {s: get_case(session, "330000", i).state for s, i in reached.items()} == {
        s: s for s in STATES
    }
    assert allowed_transitions("cleared") == allowed_transitions("closed") == ()


def test_failed_transitions_leave_no_trace(session: Session, ids: Seed) -> None:
    case = walk(session, new_lead(session, ids).id, "inspection")
    session.commit()
    before = _counts(session)
    with pytest.raises(CaseConflictError, match="needs one that found mining"):
        transition(session, ADMIN, case.id, "confirmed", "no inspection result yet")
    with pytest.raises(InputError, match="reason must not be empty"):
        transition(session, ADMIN, case.id, "cleared", "   ")
    record_inspection(session, ADMIN, case.id, case.inspections[0].id, result="mining")
    transition(
        session, ADMIN, case.id, "confirmed", "found", at=dt.datetime(2026, 2, 3, tzinfo=UTC)
    )
    session.commit()
    before = _counts(session)
    with pytest.raises(CaseConflictError, match="no project type"):
        transition(session, ADMIN, case.id, "rectification", "x", deadline=dt.date(2026, 3, 1))
    update_case(session, ADMIN, case.id, {"project_type": "existing"})
    session.commit()
    before = _counts(session)
    bad_plan = {"stop-mining": "2026-03-01", "remove-equipment": "2026-01-01", "cut-supply": "x"}
    with pytest.raises(InputError):
        transition(session, ADMIN, case.id, "rectification", "plan", plan=bad_plan)
    bad_plan["cut-supply"] = "2026-05-01"
    with pytest.raises(InputError, match="before the case was confirmed"):
        transition(session, ADMIN, case.id, "rectification", "plan", plan=bad_plan)
    session.commit()
    assert _counts(session) == before
    assert get_case(session, "330000", case.id).state == "confirmed"
    assert verify(session).ok


def test_clearing_keeps_reason_and_evidence_for_learning(session: Session, ids: Seed) -> None:
    case = walk(session, new_lead(session, ids).id, "inspection")
    record_inspection(session, INSPECTOR, case.id, case.inspections[0].id, result="no-mining")
    transition(session, INSPECTOR, case.id, "cleared", "Ethereum archive node, no mining")
    session.commit()
    assert case.cleared_reason == "Ethereum archive node, no mining"
    assert case.cleared_at is not None
    (example,) = cleared_examples(session, "330000")
    assert example.case_id == case.id
    assert example.reason == case.cleared_reason
    assert list(example.evidence_ids) == ids.evidence
    assert cleared_examples(session, "510000") == []
    entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
    assert entry.data["to"] == "cleared" and entry.data["evidence_ids"] == ids.evidence


def test_roles_for_every_move(session: Session, ids: Seed) -> None:
    actors = {
        "viewer": VIEWER,
        "analyst": ANALYST,
        "inspector": INSPECTOR,
        "admin": ADMIN,
    }
    for (frm, to), allowed in TRANSITIONS.items():
        for role, actor in actors.items():
            case = walk(session, new_lead(session, ids).id, frm, project_type="existing")
            if to == "confirmed":
                record_inspection(session, ADMIN, case.id, case.inspections[-1].id, result="mining")
            if frm == "rectification":
                for m in case.milestones:
                    update_milestone(
                        session,
                        ADMIN,
                        case.id,
                        m.id,
                        {"done_on": m.due_on},
                        today=dt.date(2027, 1, 1),
                    )
            plan = {
                "stop-mining": "2026-03-01",
                "remove-equipment": "2026-04-01",
                "cut-supply": "2026-05-01",
            }
            kwargs: dict[str, Any] = {}
            if to == "inspection":
                kwargs = {"inspector": "ins-hz", "scheduled_on": "2026-02-02"}
            elif to == "rectification":
                kwargs = {"plan": plan}
                update_case(session, ADMIN, case.id, {"project_type": "existing"})
            session.commit()
            if role in allowed:
                moved = transition(session, actor, case.id, to, "ok", **kwargs)
                assert moved.state == to
            else:
                with pytest.raises(NotPermittedError, match=f"role '{role}' may not"):
                    transition(session, actor, case.id, to, "no", **kwargs)
                session.rollback()
            session.commit()
    assert roles_into("confirmed") == {"inspector", "admin"}
    assert roles_into("lead") == set()
    with pytest.raises(NotPermittedError, match="may not open"):
        open_case(session, VIEWER, region_code="330000", title="x", source="hotline")
    with pytest.raises(NotPermittedError, match="may not open"):
        open_case(session, INSPECTOR, region_code="330100", title="x", source="hotline")
    read_only = LocalOperator("ana-zj", role="analyst", region_code="330000", write_enabled=False)
    with pytest.raises(NotPermittedError, match="read-only"):
        open_case(session, read_only, region_code="330000", title="x", source="hotline")
    case = walk(session, new_lead(session, ids).id, "inspection")
    with pytest.raises(NotPermittedError, match="only the assigned inspector"):
        record_inspection(
            session,
            LocalOperator("ins-zj-other", role="inspector", region_code="330000"),
            case.id,
            case.inspections[0].id,
            result="mining",
        )
    with pytest.raises(NotPermittedError, match="may not record an inspection"):
        record_inspection(session, ANALYST, case.id, case.inspections[0].id, result="mining")
    with pytest.raises(NotPermittedError, match="may not schedule"):
        schedule_inspection(session, INSPECTOR, case.id, "ins-hz", "2026-02-10")


def test_region_subtrees_isolate_cases(session: Session, ids: Seed) -> None:
    national = LocalOperator("adm-nat", role="admin", region_code="000000")
    yuhang = new_lead(session, ids).id
    province = open_case(
        session,
        ADMIN,
        region_code="330000",
        title="province-wide IP list",
        source="ip-list",
        ip_addresses=["203.0.113.9", "2001:db8::1", "203.0.113.9"],
    ).id
    ningbo = open_case(
        session, ADMIN, region_code="330206", title="Beilun hotline", source="hotline"
    ).id
    sichuan = open_case(
        session,
        national,
        region_code="510104",
        title="Chengdu",
        source="detection",
        evidence_ids=[ids.sichuan_evidence],
    ).id
    session.commit()
    assert get_case(session, "330000", province).ip_addresses == ["203.0.113.9", "2001:db8::1"]

    def visible(scope: str) -> set[int]:
        return {c.id for c in list_cases(session, scope, limit=100)[1]}

    assert visible("000000") == {yuhang, province, ningbo, sichuan}
    assert visible("330000") == {yuhang, province, ningbo}
    assert visible("330100") == {yuhang}
    assert visible("330110") == {yuhang}
    assert visible("330200") == {ningbo}
    assert visible("510000") == {sichuan}
    assert visible("120000") == set()
    assert list_cases(session, "330100", region="330000")[0] == 1  # narrowing cannot widen
    assert list_cases(session, "330000", region="330200")[0] == 1
    hangzhou = LocalOperator("ana-hz", role="analyst", region_code="330100")
    sc = LocalOperator("ana-sc", role="analyst", region_code="510000")
    for actor, case_id in [(hangzhou, province), (hangzhou, ningbo), (sc, yuhang)]:
        with pytest.raises(CaseNotFoundError):
            get_case(session, actor.region_code, case_id)
        with pytest.raises(CaseNotFoundError):
            transition(session, actor, case_id, "verification", "not mine")
        with pytest.raises(CaseNotFoundError):
            update_case(session, actor, case_id, {"title": "x"})
    with pytest.raises(NotPermittedError, match="outside your region"):
        open_case(session, hangzhou, region_code="330200", title="x", source="hotline")
    with pytest.raises(NotPermittedError, match="outside your region"):
        update_case(session, hangzhou, yuhang, {"region_code": "330000"})
    with pytest.raises(InputError, match="no evidence with id"):
        open_case(
            session,
            ANALYST,
            region_code="330000",
            title="x",
            source="detection",
            evidence_ids=[ids.sichuan_evidence],
        )
    with pytest.raises(InputError, match="no data centre"):
        update_case(
            session, LocalOperator("a", "analyst", "330200"), ningbo, {"data_centre_id": ids.centre}
        )
    # Inspectors: in the assigner's subtree, and able to reach the case.
    transition(session, ADMIN, ningbo, "verification", "check")
    for name, why in [
        ("ins-hz", "cannot reach case"),
        ("ins-sc", "no user 'ins-sc' in region 330000"),
        ("ana-zj", "not an inspector"),
        ("nobody", "no user 'nobody'"),
    ]:
        with pytest.raises(InputError, match=why):
            transition(
                session,
                ADMIN,
                ningbo,
                "inspection",
                "visit",
                inspector=name,
                scheduled_on="2026-02-02",
            )
    transition(
        session, ADMIN, ningbo, "inspection", "visit", inspector="ins-nb", scheduled_on="2026-02-02"
    )
    # Pushing a province case down to a city puts it out of the province-level inspector's...
    update_case(session, ADMIN, province, {"region_code": "330100"}, reason="assigned to Hangzhou")
    session.commit()
    assert visible("330100") == {yuhang, province}


def test_overdue_alerts_on_fixed_dates(session: Session, ids: Seed) -> None:
    new = walk(session, new_lead(session, ids).id, "rectification", project_type="new")
    existing = walk(session, new_lead(session, ids).id, "rectification", project_type="existing")
    late_visit = walk(session, new_lead(session, ids).id, "inspection")  # scheduled 2026-02-02
    chengdu = open_case(
        session,
        LocalOperator("adm-nat", "admin", "000000"),
        region_code="510104",
        title="Chengdu",
        source="hotline",
    )
    session.commit()
    assert overdue(session, dt.date(2026, 2, 2), "330000") == []  # due today is not late
    on_feb_3 = overdue(session, dt.date(2026, 2, 3), "330000")
    assert [(a.case_id, a.kind, a.days_overdue) for a in on_feb_3] == [
        (late_visit.id, "inspection", 1)
    ]
    assert overdue(session, dt.date(2026, 3, 1), "330000")[0].days_overdue == 27
    on_mar_2 = overdue(session, dt.date(2026, 3, 2), "330000")
    assert {(a.case_id, a.kind, a.days_overdue) for a in on_mar_2} == {
        (late_visit.id, "inspection", 28),
        (new.id, "shutdown", 1),
        (existing.id, "stop-mining", 1),
    }
    assert on_mar_2[0].kind == "inspection"  # most overdue first
    # The counting form agrees with the alerts, one row per case.
    assert sorted(overdue_cases(session, dt.date(2026, 3, 2), "330000")) == sorted(
        {(a.case_id, a.region_code) for a in on_mar_2}
    )
    assert overdue_cases(session, dt.date(2026, 3, 2), "510000") == []
    assert on_mar_2[1].label in ("关停", "停止挖矿")
    stop = next(m for m in existing.milestones if m.kind == "stop-mining")
    update_milestone(
        session,
        INSPECTOR,
        existing.id,
        stop.id,
        {"done_on": "2026-03-05"},
        today=dt.date(2026, 3, 6),
    )
    session.commit()
    on_may_2 = overdue(session, dt.date(2026, 5, 2), "330000")
    assert {(a.case_id, a.kind, a.days_overdue) for a in on_may_2} == {
        (late_visit.id, "inspection", 89),
        (new.id, "shutdown", 62),
        (existing.id, "remove-equipment", 31),
        (existing.id, "cut-supply", 1),
    }
    # Pages come from the database in the same order as the whole list, and the count agrees.
    assert [a.days_overdue for a in on_may_2] == [89, 62, 31, 1]
    assert overdue_count(session, dt.date(2026, 5, 2), "330000") == 4
    pages = [overdue(session, dt.date(2026, 5, 2), "330000", limit=3, offset=o) for o in (0, 3)]
    assert pages[0] + pages[1] == on_may_2
    assert len(pages[0]) == 3
    assert overdue(session, dt.date(2026, 5, 2), "330000", limit=3, offset=4) == []
    assert overdue_count(session, dt.date(2026, 5, 2), "510000") == 0
    assert overdue(session, dt.date(2026, 5, 2), "510000") == []
    assert overdue(session, dt.date(2026, 5, 2), "330200") == []
    assert {a.case_id for a in overdue(session, dt.date(2026, 5, 2), "000000")} == {
        late_visit.id,
        new.id,
        existing.id,
    }
    assert chengdu.id not in {a.case_id for a in on_may_2}
    # An extension moves the date (admins only, with a reason); done items stop alerting.
    shutdown = new.milestones[0]
    with pytest.raises(NotPermittedError):
        update_milestone(session, INSPECTOR, new.id, shutdown.id, {"due_on": "2026-06-01"}, "ext")
    with pytest.raises(InputError, match="reason"):
        update_milestone(session, ADMIN, new.id, shutdown.id, {"due_on": "2026-06-01"})
    update_milestone(session, ADMIN, new.id, shutdown.id, {"due_on": "2026-06-01"}, "flood delay")
    with pytest.raises(InputError, match="in the future"):
        update_milestone(
            session,
            ADMIN,
            new.id,
            shutdown.id,
            {"done_on": "2026-05-03"},
            today=dt.date(2026, 5, 2),
        )
    session.commit()
    assert new.id not in {a.case_id for a in overdue(session, dt.date(2026, 5, 2), "330000")}


def test_ledger_fields_are_checked_and_audited(session: Session, ids: Seed) -> None:
    case = new_lead(session, ids)
    session.commit()
    refused: list[tuple[dict[str, object], str]] = [
        ({"hashrate_value": 110.0}, "with its unit"),
        ({"hashrate_unit": "TH/h"}, "not one of"),
        ({"power_kw": -1}, ">= 0"),
        ({"power_kw": float("nan")}, "finite"),
        ({"scale_units": 2.5}, "whole number"),
        ({"credit_code": "91330110MA2GXL7K38"}, "check character"),
        ({"project_type": "增量"}, "not one of"),
        ({"planned_production_date": "2026-13-01"}, "not a date"),
        ({"state": "closed"}, "cannot set state"),
        ({"tenant_id": 9999}, "no tenant"),
        ({"title": ""}, "must not be empty"),
    ]
    for changes, message in refused:
        with pytest.raises(InputError, match=message):
            update_case(session, ANALYST, case.id, changes)
    before = _counts(session)
    update_case(
        session,
        INSPECTOR,
        case.id,
        {
            "enterprise": "杭州星联云计算有限公司",
            "credit_code": "91330110ma2gxl7k37",
            "hashrate_value": 110.0,
            "hashrate_unit": "TH/s",
            "power_kw": 3.25,
            "annual_kwh": 28470.0,
            "planned_production_date": dt.date(2026, 9, 1),
            "mining_class": "pow-asic",
        },
        reason="site survey",
    )
    session.commit()
    assert case.credit_code == "91330110MA2GXL7K37"
    assert (case.hashrate_value, case.hashrate_unit) == (110.0, "TH/s")
    entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
    assert (
        entry.action == "case.update" and entry.actor == "ins-hz" and entry.reason == "site survey"
    )
    assert entry.data["before"]["power_kw"] is None and entry.data["after"]["power_kw"] == 3.25
    assert entry.data["after"]["planned_production_date"] == "2026-09-01"
    update_case(session, ANALYST, case.id, {"power_kw": 3.25})  # no change: no entry
    assert _counts(session)[0] == before[0] + 1
    link_evidence(session, ANALYST, case.id, [*ids.evidence], "again")  # already linked
    assert _counts(session)[0] == before[0] + 1
    walk(session, case.id, "rectification")
    with pytest.raises(CaseConflictError, match="fixed"):
        update_case(session, ADMIN, case.id, {"project_type": "existing"})


def test_inspection_records_and_attachments(session: Session, ids: Seed) -> None:
    case = walk(session, new_lead(session, ids).id, "inspection")
    inspection = case.inspections[0]
    photo = AttachmentMeta("meter.jpg", SHA, 1000, "image/jpeg")
    record_inspection(session, INSPECTOR, case.id, inspection.id, attachments=[photo])
    record_inspection(session, INSPECTOR, case.id, inspection.id, attachments=[photo])  # retry
    assert len(inspection.attachments) == 1
    for bad, message in [
        (AttachmentMeta("other.jpg", SHA, 1000, "image/jpeg"), "already recorded"),
        (AttachmentMeta("../x.jpg", "a" * 64, 1, "image/jpeg"), "bare name"),
        (AttachmentMeta("x.jpg", "A" * 64, 1, "image/jpeg"), "lower-case hex"),
        (AttachmentMeta("x.jpg", "a" * 64, -1, "image/jpeg"), ">= 0"),
        (AttachmentMeta("x.jpg", "a" * 64, 1, "jpeg"), "content type"),
    ]:
        with pytest.raises(InputError, match=message):
            record_inspection(session, INSPECTOR, case.id, inspection.id, attachments=[bad])
    with pytest.raises(InputError, match="appears twice"):
        record_inspection(session, INSPECTOR, case.id, inspection.id, checklist=["a", "a"])
    with pytest.raises(InputError, match="not one of"):
        record_inspection(session, INSPECTOR, case.id, inspection.id, result="maybe")
    second = schedule_inspection(
        session, ANALYST, case.id, "ins-hz", "2026-02-09", ["meter"], "again"
    )
    assert [i.id for i in case.inspections] == [inspection.id, second.id]
    record_inspection(session, INSPECTOR, case.id, inspection.id, result="mining")
    record_inspection(session, INSPECTOR, case.id, second.id, result="inconclusive")
    with pytest.raises(CaseConflictError, match="latest inspection shows inconclusive"):
        transition(session, INSPECTOR, case.id, "confirmed", "?")
    record_inspection(session, INSPECTOR, case.id, second.id, result="mining")
    transition(session, INSPECTOR, case.id, "confirmed", "second visit confirms")
    with pytest.raises(CaseConflictError, match="can no longer be changed"):
        record_inspection(session, INSPECTOR, case.id, second.id, notes="late")
    with pytest.raises(CaseNotFoundError):
        record_inspection(session, INSPECTOR, case.id, 99999, notes="x")
    session.commit()
    assert verify(session).ok


def test_a_stale_session_cannot_move_a_case_twice(
    sessions: sessionmaker[Session], ids: Seed
) -> None:
    with sessions() as first:
        case_id = new_lead(first, ids).id
        first.commit()
    with sessions() as first, sessions() as second:
        get_case(second, "330000", case_id)  # second has read it as a lead
        transition(first, ANALYST, case_id, "verification", "first")
        first.commit()
        with pytest.raises(CaseConflictError, match="is verification"):
            transition(second, ANALYST, case_id, "verification", "second")
        second.rollback()
    with sessions() as session:
        assert [t.to_state for t in get_case(session, "330000", case_id).transitions] == [
            "lead",
            "verification",
        ]
        assert verify(session).ok


def test_open_case_checks_its_source(session: Session, ids: Seed) -> None:
    with pytest.raises(InputError, match="at least one evidence"):
        open_case(session, ANALYST, region_code="330000", title="x", source="detection")
    with pytest.raises(InputError, match="at least one IP"):
        open_case(session, ANALYST, region_code="330000", title="x", source="ip-list")
    with pytest.raises(InputError, match="not an IPv4"):
        open_case(
            session,
            ANALYST,
            region_code="330000",
            title="x",
            source="ip-list",
            ip_addresses=["203.0.113.300"],
        )
    with pytest.raises(InputError, match="not one of"):
        open_case(session, ANALYST, region_code="330000", title="x", source="email")
    with pytest.raises(InputError, match="six digits"):
        open_case(session, ANALYST, region_code="33", title="x", source="hotline")
    case = open_case(
        session,
        ANALYST,
        region_code="330000",
        title="self report",
        source="self-report",
        ledger={"source_ref": "letter 2026-7", "mining_class": "storage-chia"},
    )
    assert (case.mining_class, case.source_ref, case.version) == (
        "storage-chia",
        "letter 2026-7",
        1,
    )
