"""``/api/v1/cases/`` and ``/api/v1/alerts/`` over a real ledger (SQLite, and PostgreSQL where
configured): whole flows, 409 for illegal moves, roles, regions, alerts, pages, and refusals that
write nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from minewatch.ledger.audit import verify
from minewatch.ledger.cases import china_today, get_case, record_inspection
from minewatch.ledger.db import session_factory
from minewatch.ledger.models import AuditEntry
from minewatch.ledger.tokens import issue_token
from tests.api.conftest import ApiFixture
from tests.ledger.test_cases import ADMIN, SHA, Seed, new_lead, seed, walk

CASES = "/api/v1/cases/"


@dataclass
class World:
    """The API, the seeded registry and a token per seeded user."""

    api: ApiFixture
    sessions: sessionmaker[Session]
    ids: Seed
    tokens: dict[str, str]

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Token {self.tokens[who]}"}

    def get(self, who: str, path: str, **params: Any) -> Any:
        return self.api.client.get(path, headers=self.as_(who), params=params)

    def post(self, who: str, path: str, body: dict[str, Any]) -> Any:
        return self.api.client.post(path, headers=self.as_(who), json=body)

    def patch(self, who: str, path: str, body: dict[str, Any]) -> Any:
        return self.api.client.patch(path, headers=self.as_(who), json=body)

    def audit_count(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(AuditEntry)) or 0


@pytest.fixture
def world(api: ApiFixture) -> Iterator[World]:
    sessions = session_factory(api.client.app.state.engine)  # type: ignore[attr-defined]
    with sessions() as session:
        ids = seed(session)
        tokens = {
            name: issue_token(session, name, actor="test")
            for name in ("adm-zj", "ana-zj", "ana-hz", "ana-sc", "ins-hz", "ins-nb", "view-zj")
        }
        tokens["adm-nat"] = issue_token(session, "adm-nat", actor="test")
        tokens["ro-zj"] = issue_token(session, "ana-zj", actor="test", write_enabled=False)
        session.commit()
    yield World(api, sessions, ids, tokens)


def _lead(world: World, who: str = "ana-zj", region: str = "330110", **extra: Any) -> Any:
    body = {
        "region_code": region,
        "title": "Yuhang stratum traffic",
        "source": "detection",
        "evidence_ids": world.ids.evidence,
        "tenant_id": world.ids.tenant,
        "reason": "two hosts talk stratum",
        **extra,
    }
    return world.post(who, CASES, body)


def _move(world: World, who: str, case_id: int, to: str, **extra: Any) -> Any:
    return world.post(
        who, f"{CASES}{case_id}/transitions/", {"to": to, "reason": f"to {to}", **extra}
    )


@pytest.mark.parametrize("project_type", ["new", "existing"])
def test_whole_flow_through_the_api(world: World, project_type: str) -> None:
    today = china_today()
    created = _lead(world, enterprise="杭州星联云计算有限公司", power_kw=820.0)
    assert created.status_code == 201, created.text
    case = created.json()
    pk = case["id"]
    assert case["state"] == "lead" and case["evidence_ids"] == world.ids.evidence
    assert case["allowed_transitions"] == ["verification"]
    assert case["url"].endswith(f"{CASES}{pk}/")
    assert _move(world, "ana-zj", pk, "verification").status_code == 200
    moved = _move(
        world, "ana-zj", pk, "inspection", inspector="ins-hz", scheduled_on=today.isoformat()
    )
    assert moved.status_code == 200, moved.text
    (inspection,) = world.get("ins-hz", f"{CASES}{pk}/inspections/").json()
    assert inspection["inspector"] == "ins-hz" and inspection["result"] is None
    recorded = world.patch(
        "ins-hz",
        inspection["url"],
        {
            "result": "mining",
            "checklist": [{"item": "miners counted", "done": True}],
            "notes": "312 S19",
            "attachments": [
                {
                    "file_name": "rack.jpg",
                    "sha256": SHA,
                    "size_bytes": 123456,
                    "content_type": "image/jpeg",
                }
            ],
            "inspected_at": f"{today.isoformat()}T00:00:00+08:00",
        },
    )
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["attachments"][0]["sha256"] == SHA
    assert _move(world, "ins-hz", pk, "confirmed").status_code == 200
    patched = world.patch(
        "ana-zj",
        f"{CASES}{pk}/",
        {
            "project_type": project_type,
            "hashrate": {"value": 29.6, "unit": "PH/s"},
            "scale_units": 312,
            "reason": "inspection record",
        },
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["hashrate"] == {"value": 29.6, "unit": "PH/s"}
    assert patched.json()["project_type_label"] == {"new": "增量", "existing": "存量"}[project_type]
    due = [(today + dt.timedelta(days=d)).isoformat() for d in (30, 60, 90)]
    if project_type == "new":
        plan: dict[str, Any] = {"deadline": due[0], "order_ref": "杭发改〔2026〕12号"}
    else:
        plan = {
            "plan": dict(zip(["stop-mining", "remove-equipment", "cut-supply"], due, strict=True))
        }
    rectified = _move(world, "adm-zj", pk, "rectification", **plan)
    assert rectified.status_code == 200, rectified.text
    milestones = world.get("view-zj", f"{CASES}{pk}/milestones/").json()
    assert len(milestones) == (1 if project_type == "new" else 3)
    assert _move(world, "adm-zj", pk, "closed").status_code == 409
    for milestone in milestones:
        done = world.patch("ins-hz", milestone["url"], {"done_on": today.isoformat()})
        assert done.status_code == 200, done.text
        assert done.json()["done_on"] == today.isoformat()
    closed = _move(world, "adm-zj", pk, "closed")
    assert closed.status_code == 200, closed.text
    final = world.get("view-zj", f"{CASES}{pk}/").json()
    assert final["state"] == "closed" and final["allowed_transitions"] == []
    assert final["closed_at"] is not None
    assert [t["to_state"] for t in final["transitions"]] == [
        "lead",
        "verification",
        "inspection",
        "confirmed",
        "rectification",
        "closed",
    ]
    with world.sessions() as session:
        actions = session.scalars(
            select(AuditEntry.actor).where(AuditEntry.action == "case.transition")
        ).all()
        assert actions == ["ana-zj", "ana-zj", "ins-hz", "adm-zj", "adm-zj"]
        assert verify(session).ok


def test_illegal_moves_are_409_and_write_nothing(world: World) -> None:
    pk = _lead(world).json()["id"]
    before = world.audit_count()
    for to in ("lead", "inspection", "confirmed", "cleared", "rectification", "closed"):
        answer = _move(world, "adm-zj", pk, to, inspector="ins-hz", scheduled_on="2026-12-01")
        assert answer.status_code == 409, (to, answer.text)
        assert "cannot go to" in answer.json()["detail"]
    assert _move(world, "ana-zj", pk, "verification").status_code == 200
    after_move = world.audit_count()
    assert after_move == before + 1
    missing = _move(world, "ana-zj", pk, "inspection")
    assert missing.status_code == 422 and "inspector" in missing.json()["detail"]
    wrong_inspector = _move(
        world, "ana-zj", pk, "inspection", inspector="ins-nb", scheduled_on="2026-12-01"
    )
    assert wrong_inspector.status_code == 422 and "cannot reach" in wrong_inspector.text
    assert _move(world, "ana-zj", pk, "bogus").status_code == 422
    blank = world.post("ana-zj", f"{CASES}{pk}/transitions/", {"to": "cleared", "reason": ""})
    assert blank.status_code == 422
    assert world.audit_count() == after_move
    assert world.get("ana-zj", f"{CASES}{pk}/").json()["state"] == "verification"


def test_roles_decide_who_may_do_what(world: World) -> None:
    def fresh(state: str) -> int:
        with world.sessions() as session:
            case = new_lead(session, world.ids)
            walk(session, case.id, state)
            session.commit()
            return case.id

    expected = {
        # action: {who: status}
        "open": {"view-zj": 403, "ana-zj": 201, "ins-hz": 403, "adm-zj": 201, "ro-zj": 403},
        "edit": {"view-zj": 403, "ana-zj": 200, "ins-hz": 200, "adm-zj": 200, "ro-zj": 403},
        "verify": {"view-zj": 403, "ana-zj": 200, "ins-hz": 403, "adm-zj": 200, "ro-zj": 403},
        "confirm": {"view-zj": 403, "ana-zj": 403, "ins-hz": 200, "adm-zj": 200, "ro-zj": 403},
        "rectify": {"view-zj": 403, "ana-zj": 403, "ins-hz": 403, "adm-zj": 200, "ro-zj": 403},
        "record": {"view-zj": 403, "ana-zj": 403, "ins-hz": 200, "adm-zj": 200, "ro-zj": 403},
        "read": {"view-zj": 200, "ana-zj": 200, "ins-hz": 200, "adm-zj": 200, "ro-zj": 200},
    }
    for who in expected["open"]:
        got = {
            "open": _lead(world, who).status_code,
            "edit": world.patch(who, f"{CASES}{fresh('lead')}/", {"power_kw": 5}).status_code,
            "verify": _move(world, who, fresh("lead"), "verification").status_code,
        }
        inspecting = fresh("inspection")
        with world.sessions() as session:
            item = get_case(session, "330000", inspecting).inspections[0].id
            record_inspection(session, ADMIN, inspecting, item, result="mining")
            session.commit()
        got["confirm"] = _move(world, who, inspecting, "confirmed").status_code
        confirmed = fresh("confirmed")
        world.patch("adm-zj", f"{CASES}{confirmed}/", {"project_type": "new"})
        got["rectify"] = _move(
            world, who, confirmed, "rectification", deadline="2026-12-31"
        ).status_code
        inspecting = fresh("inspection")
        item_url = world.get("adm-zj", f"{CASES}{inspecting}/inspections/").json()[0]["url"]
        got["record"] = world.patch(who, item_url, {"notes": "seen"}).status_code
        got["read"] = world.get(who, f"{CASES}{inspecting}/").status_code
        assert got == {action: codes[who] for action, codes in expected.items()}, who


def test_regions_cannot_see_each_other(world: World) -> None:
    yuhang = _lead(world).json()["id"]
    ningbo = world.post(
        "adm-zj",
        CASES,
        {"region_code": "330206", "title": "Beilun", "source": "hotline"},
    ).json()["id"]
    chengdu = world.post(
        "ana-sc",
        CASES,
        {"region_code": "510104", "title": "Chengdu", "source": "hotline"},
    ).json()["id"]

    def ids_seen(who: str) -> set[int]:
        page = world.get(who, CASES, limit=100).json()
        assert page["count"] == len(page["results"])
        return {c["id"] for c in page["results"]}

    assert ids_seen("adm-nat") == {yuhang, ningbo, chengdu}
    assert ids_seen("ana-zj") == {yuhang, ningbo}
    assert ids_seen("ana-hz") == {yuhang}
    assert ids_seen("ana-sc") == {chengdu}
    for who, pk in [("ana-hz", ningbo), ("ana-sc", yuhang), ("ana-zj", chengdu)]:
        for path in ("", "transitions/", "inspections/", "milestones/"):
            assert world.get(who, f"{CASES}{pk}/{path}").status_code == 404, (who, pk, path)
        assert world.patch(who, f"{CASES}{pk}/", {"power_kw": 1}).status_code == 404
        assert _move(world, who, pk, "verification").status_code == 404
    outside = world.post(
        "ana-hz", CASES, {"region_code": "330206", "title": "x", "source": "hotline"}
    )
    assert outside.status_code == 403
    assert world.get("ana-zj", CASES, region="330200").json()["count"] == 1
    assert world.get("ana-hz", CASES, region="330000").json()["count"] == 1  # narrowed to 330100
    assert world.get("ana-hz", CASES, region="510000").json()["count"] == 0


def test_alerts_list_overdue_items_in_the_callers_region(world: World) -> None:
    with world.sessions() as session:
        late = walk(
            session, new_lead(session, world.ids).id, "rectification", project_type="existing"
        )
        visit = walk(session, new_lead(session, world.ids).id, "inspection")
        session.commit()
        late_id, visit_id = late.id, visit.id
    answer = world.get("view-zj", "/api/v1/alerts/", on="2026-03-02")
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert page["count"] == 2
    assert [(a["case_id"], a["kind"], a["days_overdue"]) for a in page["results"]] == [
        (visit_id, "inspection", 28),
        (late_id, "stop-mining", 1),
    ]
    assert page["results"][1]["label"] == "停止挖矿"
    assert page["results"][1]["due_on"] == "2026-03-01"
    assert page["results"][0]["case_url"].endswith(f"{CASES}{visit_id}/")
    first = world.get("view-zj", "/api/v1/alerts/", on="2026-05-02", limit=2).json()
    assert first["count"] == 4 and len(first["results"]) == 2 and first["next"]
    rest = world.api.client.get(first["next"], headers=world.as_("view-zj")).json()
    assert len(rest["results"]) == 2 and rest["previous"] and rest["next"] is None
    assert world.get("ana-sc", "/api/v1/alerts/", on="2026-05-02").json()["count"] == 0
    assert (
        world.get("ana-zj", "/api/v1/alerts/", on="2026-05-02", region="330200").json()["count"]
        == 0
    )
    assert (
        world.get("ana-hz", "/api/v1/alerts/", on="2026-05-02", region="330000").json()["count"]
        == 4
    )
    assert world.get("ana-zj", "/api/v1/alerts/", on="2026-02-02").json()["count"] == 0
    assert world.api.client.get("/api/v1/alerts/").status_code == 401


def test_lists_filter_page_and_go_brief(world: World) -> None:
    with world.sessions() as session:
        for state in ("lead", "verification", "confirmed"):
            walk(session, new_lead(session, world.ids).id, state)
        session.commit()
    hotline = world.post(
        "ana-zj", CASES, {"region_code": "330000", "title": "hotline", "source": "hotline"}
    )
    assert hotline.status_code == 201
    assert world.get("ana-zj", CASES, state="confirmed").json()["count"] == 1
    assert world.get("ana-zj", CASES, source="hotline").json()["count"] == 1
    assert world.get("ana-zj", CASES, state="nonsense").status_code == 422
    brief = world.get("ana-zj", CASES, brief="true", limit=3).json()
    assert brief["count"] == 4 and len(brief["results"]) == 3
    assert set(brief["results"][0]) == {"id", "url", "title", "state", "region_code"}
    assert brief["next"] and brief["previous"] is None
    assert world.get("ana-zj", CASES, limit=0).status_code == 422
    assert world.get("ana-zj", CASES, limit=10_000).status_code == 422


def test_bodies_are_bounded_and_checked(world: World) -> None:
    bodies: list[dict[str, Any]] = [
        {"region_code": "33", "title": "x", "source": "hotline"},
        {"region_code": "330000", "title": "", "source": "hotline"},
        {"region_code": "330000", "title": "x", "source": "email"},
        {"region_code": "330000", "title": "x", "source": "hotline", "power_kw": -1},
        {"region_code": "330000", "title": "x", "source": "hotline", "hashrate": {"value": 1}},
        {"region_code": "330000", "title": "x", "source": "hotline", "unknown": 1},
        {"region_code": "330000", "title": "x" * 201, "source": "hotline"},
        {"region_code": "330000", "title": "x", "source": "detection"},
        {"region_code": "330000", "title": "x", "source": "hotline", "credit_code": "9" * 18},
    ]
    for body in bodies:
        answer = world.post("ana-zj", CASES, body)
        assert answer.status_code == 422, (body, answer.text)
    pk = _lead(world).json()["id"]
    assert world.patch("ana-zj", f"{CASES}{pk}/", {"title": None}).status_code == 422
    cleared = world.patch("ana-zj", f"{CASES}{pk}/", {"enterprise": None, "power_kw": None})
    assert cleared.status_code == 200
    assert world.get("ana-zj", f"{CASES}99999/").status_code == 404
    assert (
        "/api/v1/cases/{pk}/transitions/"
        in world.api.client.get("/api/v1/openapi.json").json()["paths"]
    )
