"""Delivering agent reports: idempotent, authenticated, region-scoped, paginated."""

from __future__ import annotations

import uuid
from typing import Any

from tests.api.conftest import ApiFixture


def report(hostname: str = "rack7-n03", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "report_id": uuid.uuid4().hex,
        "hostname": hostname,
        "agent_version": "0.1.0",
        "scanned_at": "2026-11-26T21:00:00+08:00",
        "findings": [
            {
                "verdict": "mining",
                "kind": "xmrig",
                "entity": "pid 4242 /usr/bin/xmrig",
                "coin": "xmr",
                "confidence": 0.97,
                "evidence": ["process name is xmrig"],
                "capacity_bytes": None,
                "count": None,
                "pid": 4242,
                "path": "/usr/bin/xmrig",
                "detector": "host",
            },
            {
                "verdict": "storage-mining",
                "kind": "chia-plot",
                "entity": "/srv/plots",
                "coin": "xch",
                "confidence": 0.99,
                "evidence": ["3 plot headers k=32"],
                "capacity_bytes": 3 * 108_836_000_000,
                "count": 3,
            },
        ],
        "blind_spots": ["12 processes of other users not readable"],
    }
    body.update(extra)
    return body


def test_post_then_duplicate_stores_once(api: ApiFixture) -> None:
    body = report()
    first = api.client.post("/api/v1/host-reports/", json=body, headers=api.headers("zhejiang"))
    assert first.status_code == 201, first.text
    assert first.json()["created"] is True
    again = api.client.post("/api/v1/host-reports/", json=body, headers=api.headers("zhejiang"))
    assert again.status_code == 200
    assert again.json() == {**first.json(), "created": False}
    listed = api.client.get("/api/v1/host-reports/", headers=api.headers("zhejiang")).json()
    assert listed["count"] == 1
    stored = listed["results"][0]
    assert stored["region_code"] == "330000"
    assert stored["submitted_by"] == "zj"
    assert stored["scanned_at"].startswith("2026-11-26T13:00:00")
    assert [f["kind"] for f in stored["findings"]] == ["xmrig", "chia-plot"]
    assert stored["findings"][1]["capacity_bytes"] == 3 * 108_836_000_000


def test_each_stored_report_is_audited_once(api: ApiFixture) -> None:
    from minewatch.ledger.audit import verify
    from minewatch.ledger.db import session_factory
    from minewatch.ledger.models import AuditEntry

    body = report()
    for _ in range(3):
        api.client.post("/api/v1/host-reports/", json=body, headers=api.headers("zhejiang"))
    app = api.client.app
    with session_factory(app.state.engine)() as session:  # type: ignore[attr-defined]
        entries = session.query(AuditEntry).filter_by(action="host-report.create").all()
        assert len(entries) == 1
        assert entries[0].actor == "zj"
        assert entries[0].data["after"]["report_id"] == body["report_id"]
        assert verify(session).ok


def test_reused_report_id_with_other_content_conflicts(api: ApiFixture) -> None:
    body = report()
    api.client.post("/api/v1/host-reports/", json=body, headers=api.headers("zhejiang"))
    clash = {**body, "hostname": "another-host"}
    answer = api.client.post("/api/v1/host-reports/", json=clash, headers=api.headers("zhejiang"))
    assert answer.status_code == 409


def test_authentication_and_write_permission(api: ApiFixture) -> None:
    url = "/api/v1/host-reports/"
    assert api.client.post(url, json=report()).status_code == 401
    bad = {"Authorization": "Token mw_000000000000_" + "0" * 40}
    assert api.client.post(url, json=report(), headers=bad).status_code == 401
    assert api.client.post(url, json=report(), headers=api.headers("viewer")).status_code == 403
    assert api.client.post(url, json=report(), headers=api.headers("readonly")).status_code == 403
    assert api.client.get(url, headers=api.headers("viewer")).status_code == 200


def test_invalid_bodies_are_422_and_store_nothing(api: ApiFixture) -> None:
    url = "/api/v1/host-reports/"
    bad_bodies = [
        report(scanned_at="2026-11-26T21:00:00"),  # no time zone
        report(report_id="not-a-uuid"),
        report(findings=[{"verdict": "maybe", "kind": "x", "entity": "e", "confidence": 0.5}]),
        report(findings=[{"verdict": "mining", "kind": "x", "entity": "e", "confidence": 1.5}]),
        {"hostname": "h"},
    ]
    for body in bad_bodies:
        answer = api.client.post(url, json=body, headers=api.headers("zhejiang"))
        assert answer.status_code == 422, body
    assert api.client.get(url, headers=api.headers("national")).json()["count"] == 0


def test_reads_stay_inside_the_region_subtree(api: ApiFixture) -> None:
    url = "/api/v1/host-reports/"
    hz = api.client.post(url, json=report("hz-1"), headers=api.headers("hangzhou")).json()
    zj = api.client.post(url, json=report("zj-1"), headers=api.headers("zhejiang")).json()
    sc = api.client.post(url, json=report("sc-1"), headers=api.headers("sichuan")).json()

    def hosts(who: str) -> set[str]:
        rows = api.client.get(url, headers=api.headers(who)).json()["results"]
        return {r["hostname"] for r in rows}

    assert hosts("national") == {"hz-1", "zj-1", "sc-1"}
    assert hosts("zhejiang") == {"hz-1", "zj-1"}
    assert hosts("hangzhou") == {"hz-1"}
    assert hosts("sichuan") == {"sc-1"}
    # Outside the subtree an object does not exist, for reads by id too.
    assert api.client.get(f"{url}{sc['id']}/", headers=api.headers("zhejiang")).status_code == 404
    assert api.client.get(f"{url}{zj['id']}/", headers=api.headers("hangzhou")).status_code == 404
    assert api.client.get(f"{url}{hz['id']}/", headers=api.headers("zhejiang")).status_code == 200


def test_pagination_filters_and_brief(api: ApiFixture) -> None:
    url = "/api/v1/host-reports/"
    for i in range(5):
        api.client.post(url, json=report(f"h{i}"), headers=api.headers("zhejiang"))
    page = api.client.get(url, params={"limit": 2}, headers=api.headers("zhejiang")).json()
    assert page["count"] == 5 and len(page["results"]) == 2 and page["previous"] is None
    seen = [r["hostname"] for r in page["results"]]
    while page["next"]:
        page = api.client.get(page["next"], headers=api.headers("zhejiang")).json()
        seen += [r["hostname"] for r in page["results"]]
    assert sorted(seen) == [f"h{i}" for i in range(5)]
    assert page["previous"] is not None
    one = api.client.get(url, params={"hostname": "h3"}, headers=api.headers("zhejiang")).json()
    assert [r["hostname"] for r in one["results"]] == ["h3"]
    brief = api.client.get(url, params={"brief": True}, headers=api.headers("zhejiang")).json()
    assert set(brief["results"][0]) == {"id", "url", "report_id", "hostname"}
    storage = api.client.get(
        url, params={"verdict": "storage-mining"}, headers=api.headers("zhejiang")
    ).json()
    assert storage["count"] == 5
    none = api.client.get(
        url, params={"verdict": "blockchain-node"}, headers=api.headers("zhejiang")
    )
    assert none.json()["count"] == 0
    assert (
        api.client.get(url, params={"limit": 0}, headers=api.headers("zhejiang")).status_code == 422
    )


def test_status_and_openapi(api: ApiFixture, database_url: str) -> None:
    status = api.client.get("/api/v1/status/", headers=api.headers("hangzhou")).json()
    assert status["region_code"] == "330100"
    assert database_url.startswith(status["database"])
    spec = api.client.get("/api/v1/openapi.json").json()
    assert "/api/v1/host-reports/" in spec["paths"]
