"""The authorisation matrix: every role x region x endpoint x method of the API, over a real
ledger (SQLite, and PostgreSQL where configured) holding objects in two provinces.

Objects live in Zhejiang (Hangzhou Xihu district, 330106) and Sichuan (Chengdu Jinjiang
district, 510104). Callers sit at the nation (000000), Zhejiang (330000), Hangzhou (330100) and
Sichuan (510000), in each role plus a read-only token (an admin's role behind a token that may not
write). For every cell the test asserts:

* no cross-region read: an object outside the caller's subtree answers 404 and no list, export,
  assessment or alert page includes it, while the objects inside it are there;
* no cross-region write: a change aimed outside the subtree answers 404 or 403, adds no audit
  entry, and the object read back by a national admin is unchanged;
* viewers and read-only tokens change nothing anywhere: 403 and no audit entry;
* a writer inside its subtree is not refused for region (an admin always succeeds), so each
  write request in the table is one that *would* work -- the refusals above are not a bad body.

Routes are enumerated from ``create_app(...).routes``: a new endpoint fails
:func:`test_every_route_is_in_the_matrix` until it gets a row in :data:`ENDPOINTS`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import Route

from minewatch.api.app import create_app
from minewatch.ledger.cases import LocalOperator, open_case
from minewatch.ledger.db import session_factory
from minewatch.ledger.models import AuditEntry, HostReport, User
from minewatch.ledger.regions import within
from minewatch.ledger.registry_models import (
    DataCentre,
    Evidence,
    IpPrefix,
    PowerAccount,
    Tenant,
    address_key,
)
from minewatch.ledger.tokens import issue_token
from tests.ledger.test_cases import walk

API = "/api/v1"
ROLES = ("viewer", "analyst", "inspector", "admin", "read-only")
"""The four roles, plus a read-only token (an admin's role, ``write_enabled=False``)."""
CALLER_REGIONS = ("000000", "330000", "330100", "510000")
"""National, a province, a city inside it, another province."""
OBJECT_REGIONS = ("330106", "510104")
"""Where the seeded objects lie: Hangzhou Xihu district and Chengdu Jinjiang district."""
ADDRESSES = {"330106": "10.33.1.6", "510104": "10.51.1.4"}
"""The IP address of each region's evidence: exports are searched for it."""
INSPECTORS = {"330106": "inspector-330100", "510104": "inspector-510000"}
"""Who inspects each region's cases (a city inspector in Zhejiang, a provincial one in Sichuan)."""
NATIONAL_ADMIN = "admin-000000"
TODAY = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()

Kind = Literal["public", "self", "list", "read", "write", "create", "own-create", "push"]
Target = Literal["report", "tenant", "case", "lead", "inspecting", "rectifying", "none"]


@dataclass(frozen=True)
class Endpoint:
    """How the matrix exercises one route and method.

    ``kind``: ``public`` (no token, no data), ``self`` (about the caller), ``list`` (a page or
    export that must hold exactly the visible objects), ``read`` (one object: 200 or 404),
    ``write`` (a change to one object), ``create`` (a new object in a chosen region),
    ``own-create`` (a new object always in the caller's own region), ``push`` (an IP list
    naming addresses in every object region: leads only inside the caller's). ``target`` names the
    seeded object the path or body refers to; ``body`` builds the request body for it;
    ``region_param`` sends the object's region as the ``region`` query parameter.
    """

    kind: Kind
    target: Target = "none"
    params: dict[str, str] = field(default_factory=dict)
    body: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    region_param: bool = False


def _report_body(_: dict[str, Any]) -> dict[str, Any]:
    return {
        "report_id": uuid.uuid4().hex,
        "hostname": "matrix-host",
        "agent_version": "0.1.0",
        "scanned_at": "2026-01-05T08:00:00+08:00",
        "findings": [],
    }


ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    ("GET", f"{API}/openapi.json"): Endpoint("public"),
    ("GET", f"{API}/docs"): Endpoint("public"),
    ("GET", "/docs/oauth2-redirect"): Endpoint("public"),
    ("GET", f"{API}/status/"): Endpoint("self"),
    ("GET", f"{API}/host-reports/"): Endpoint("list", "report"),
    ("GET", f"{API}/host-reports/{{pk}}/"): Endpoint("read", "report"),
    ("POST", f"{API}/host-reports/"): Endpoint("own-create", body=_report_body),
    ("GET", f"{API}/assessments/"): Endpoint("list", "tenant"),
    ("GET", f"{API}/assessments/{{tenant_id}}/"): Endpoint("read", "tenant"),
    ("GET", f"{API}/evidence/export/"): Endpoint("list", "tenant", {"format": "ocsf"}),
    ("GET", f"{API}/cases/"): Endpoint("list", "case"),
    ("POST", f"{API}/cases/"): Endpoint(
        "create",
        body=lambda t: {
            "region_code": t["region"],
            "title": "matrix probe",
            "source": "ip-list",
            "ip_addresses": [ADDRESSES[t["region"]]],
            "reason": "matrix",
        },
    ),
    ("GET", f"{API}/cases/{{pk}}/"): Endpoint("read", "case"),
    ("PATCH", f"{API}/cases/{{pk}}/"): Endpoint(
        "write", "lead", body=lambda _: {"enterprise": "matrix probe", "reason": "matrix"}
    ),
    ("GET", f"{API}/cases/{{pk}}/transitions/"): Endpoint("read", "case"),
    ("POST", f"{API}/cases/{{pk}}/transitions/"): Endpoint(
        "write", "lead", body=lambda _: {"to": "verification", "reason": "matrix"}
    ),
    ("GET", f"{API}/cases/{{pk}}/inspections/"): Endpoint("read", "case"),
    ("POST", f"{API}/cases/{{pk}}/inspections/"): Endpoint(
        "write",
        "inspecting",
        body=lambda t: {
            "inspector": INSPECTORS[t["region"]],
            "scheduled_on": TODAY.isoformat(),
            "reason": "matrix",
        },
    ),
    ("PATCH", f"{API}/cases/{{pk}}/inspections/{{item}}/"): Endpoint(
        "write", "inspecting", body=lambda _: {"notes": "matrix probe", "reason": "matrix"}
    ),
    ("GET", f"{API}/cases/{{pk}}/milestones/"): Endpoint("read", "case"),
    ("PATCH", f"{API}/cases/{{pk}}/milestones/{{item}}/"): Endpoint(
        "write", "rectifying", body=lambda _: {"note": "matrix probe", "reason": "matrix"}
    ),
    ("POST", f"{API}/ip-lists/"): Endpoint(
        "push",
        body=lambda _: {
            "name": f"matrix-{uuid.uuid4().hex[:12]}",
            "addresses": list(ADDRESSES.values()),
            "reason": "matrix",
        },
    ),
    ("GET", f"{API}/alerts/"): Endpoint("list", "case"),
    ("GET", f"{API}/reports/ledger/"): Endpoint("list", "case", {"format": "csv"}),
    ("GET", f"{API}/reports/weekly/"): Endpoint("read", "case", region_param=True),
}
"""One row per route and method of the app; :func:`test_every_route_is_in_the_matrix` keeps it
complete."""

MATRIX_ENDPOINTS = sorted(key for key, spec in ENDPOINTS.items() if spec.kind != "public")
MATRIX_SIZE = len(ROLES) * len(CALLER_REGIONS) * len(MATRIX_ENDPOINTS)
"""Role x region x endpoint x method cells (each exercised against objects in both provinces)."""
MATRIX_FLOOR = 300


def _username(role: str, region: str) -> str:
    return f"{'ro' if role == 'read-only' else role}-{region}"


@dataclass
class World:
    """The API, the seeded objects per region, and a token per caller."""

    client: TestClient
    sessions: sessionmaker[Session]
    tokens: dict[str, str]
    targets: dict[tuple[Target, str], dict[str, Any]]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Token {self.tokens[who]}"}

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> Any:
        return self.client.request(method, path, headers=self.headers(who), **kwargs)

    def audit_count(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(AuditEntry)) or 0

    def target(self, kind: Target, region: str) -> dict[str, Any]:
        """The seeded object of ``kind`` in ``region``, made afresh after a write changed it."""
        key = (kind, region)
        if key not in self.targets:
            with self.sessions() as session:
                self.targets[key] = _make_case(session, kind, region)
                session.commit()
        return self.targets[key]

    def spend(self, kind: Target, region: str) -> None:
        """Forget a target a successful write changed, so the next cell gets a fresh one."""
        self.targets.pop((kind, region), None)

    def snapshot(self, target: dict[str, Any]) -> Any:
        """The object as a national admin reads it through the API."""
        if "case" in target:
            tails = ("", "inspections/") if "inspection" in target else ("",)
            return [
                self.call(NATIONAL_ADMIN, "GET", f"{API}/cases/{target['case']}/{t}").json()
                for t in tails
            ]
        listed = self.call(
            NATIONAL_ADMIN,
            "GET",
            f"{API}/cases/",
            params={"region": target["region"], "brief": "true", "limit": "1"},
        )
        return listed.json()["count"]


def _make_case(session: Session, kind: Target, region: str) -> dict[str, Any]:
    """A case in ``region`` in the state ``kind`` needs, opened and moved by a national admin."""
    admin = LocalOperator(NATIONAL_ADMIN, role="admin", region_code="000000")
    case = open_case(
        session,
        admin,
        region_code=region,
        title=f"matrix {kind} {region}",
        source="ip-list",
        ip_addresses=[ADDRESSES[region]],
        reason="seeded",
        at=dt.datetime(2026, 1, 10, 9, 0, tzinfo=dt.UTC),
    )
    state = {"lead": "lead", "inspecting": "inspection"}.get(kind, "rectification")
    case = walk(session, case.id, state, actor=admin, inspector=INSPECTORS[region])
    target: dict[str, Any] = {
        "region": region,
        "case": case.id,
        "pk": case.id,
        "title": case.title,
    }
    if kind == "inspecting":
        target["item"] = target["inspection"] = case.inspections[-1].id
    if kind in ("rectifying", "case"):
        target["item"] = case.milestones[0].id
    return target


def _seed_region(session: Session, region: str, submitter: User) -> dict[Target, dict[str, Any]]:
    now = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    centre = DataCentre(
        name=f"matrix centre {region}",
        operator="matrix operator",
        address="matrix road 1",
        region_code=region,
        capacity_kw=1000,
        pue=1.3,
    )
    tenant = Tenant(name=f"matrix tenant {region}", credit_code=None, declared_business="cloud")
    session.add_all([centre, tenant])
    session.flush()
    prefix = ipaddress.ip_network(f"{ADDRESSES[region]}/24", strict=False)
    session.add(
        IpPrefix(
            prefix=str(prefix),
            family=4,
            start_key=address_key(prefix.network_address),
            end_key=address_key(prefix.broadcast_address),
            tenant_id=tenant.id,
            data_centre_id=centre.id,
            description="matrix prefix",
        )
    )
    session.add(
        PowerAccount(
            account_id=f"{region}0001",
            tenant_id=tenant.id,
            data_centre_id=centre.id,
            contracted_kw=500,
        )
    )
    address = ADDRESSES[region]
    evidence = Evidence(
        fingerprint=f"{int(region):064x}",
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
        source=f"matrix-{region}.jsonl:1",
        ingested_at=now,
        region_code=region,
        tenant_id=tenant.id,
        data_centre_id=centre.id,
        attribution="seeded",
    )
    report = HostReport(
        report_id=uuid.uuid4().hex,
        hostname=f"matrix-{region}",
        agent_version="0.1.0",
        scanned_at=now,
        received_at=now,
        region_code=region,
        submitted_by_id=submitter.id,
        blind_spots=[],
        findings=[],
    )
    session.add_all([evidence, report])
    session.flush()
    return {
        "report": {"region": region, "pk": report.id},
        "tenant": {"region": region, "tenant_id": tenant.id, "address": address},
        "case": _make_case(session, "case", region),
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """One seeded ledger for the whole matrix (per database): writes that succeed retire their
    target (:meth:`World.spend`), so the cells do not depend on their order."""
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'ledger.db'}"
    else:
        database_url = _empty_postgres()
    app = create_app(database_url)
    sessions = session_factory(app.state.engine)
    with sessions() as session:
        tokens = {}
        for region in CALLER_REGIONS:
            for role in ROLES:
                name = _username(role, region)
                tokens[name] = issue_token(
                    session,
                    name,
                    actor="matrix",
                    role="admin" if role == "read-only" else role,
                    region_code=region,
                    write_enabled=role != "read-only",
                )
        submitter = session.scalar(select(User).where(User.username == NATIONAL_ADMIN))
        assert submitter is not None
        targets: dict[tuple[Target, str], dict[str, Any]] = {}
        for region in OBJECT_REGIONS:
            for kind, target in _seed_region(session, region, submitter).items():
                targets[(kind, region)] = target
        session.commit()
    with TestClient(app) as client:
        yield World(client, sessions, tokens, targets)
    app.state.engine.dispose()


def _empty_postgres() -> str:
    """The CI PostgreSQL server emptied (as tests/conftest.py does), or skip without one."""
    url = os.environ.get("MINEWATCH_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("PostgreSQL not configured: set MINEWATCH_TEST_POSTGRES_URL")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def _listed(spec: Endpoint, response: Any, target: dict[str, Any]) -> bool:
    """Whether a list-like answer includes ``target``."""
    if spec.params.get("format") == "ocsf":
        return bool(target["address"] in response.text)
    if spec.params.get("format") == "csv":
        return bool(target["title"] in response.text)
    results = response.json()["results"]
    key = {"report": "id", "tenant": "tenant_id", "case": "case_id"}[spec.target]
    if key == "case_id" and response.request.url.path == f"{API}/cases/":
        key = "id"
    wanted = target["pk"] if spec.target in ("report", "case") else target["tenant_id"]
    return any(row.get(key) == wanted for row in results)


def _check_read(world: World, spec: Endpoint, method: str, path: str, who: str, scope: str) -> None:
    for region in OBJECT_REGIONS:
        target = world.target(spec.target, region)
        visible = within(region, scope)
        if spec.kind == "list":
            response = world.call(who, method, path, params=spec.params)
            assert response.status_code == 200, (who, path, response.text)
            assert _listed(spec, response, target) == visible, (who, path, region)
        else:
            url = path.format(**target)
            params = {**spec.params, **({"region": region} if spec.region_param else {})}
            response = world.call(who, method, url, params=params)
            expected = 200 if visible else 404
            assert response.status_code == expected, (who, url, response.text)


def _check_write(
    world: World, spec: Endpoint, method: str, path: str, role: str, who: str, scope: str
) -> None:
    assert spec.body is not None
    for region in OBJECT_REGIONS:
        target = world.target(spec.target, region) if spec.target != "none" else {"region": region}
        url = path.format(**target)
        # The read-back after one cell is the read-back before the next on the same target.
        before = target.get("seen") or world.snapshot(target)
        audit_before = world.audit_count()
        response = world.call(who, method, url, json=spec.body(target))
        status = response.status_code
        target["seen"] = after = world.snapshot(target)
        changed = after != before or world.audit_count() != audit_before
        if role in ("viewer", "read-only"):
            assert status == 403 and not changed, (who, url, status, response.text)
        elif not within(region, scope):
            assert status in (403, 404) and not changed, (who, url, status, response.text)
        else:
            # Inside the subtree a writer is refused at most for its role (e.g. an inspector
            # opening a lead), never for region; an admin may do everything there.
            allowed = (200, 201) if role == "admin" else (200, 201, 403)
            assert status in allowed, (who, url, status, response.text)
            assert changed == (status in (200, 201)), (who, url, status)
        if status in (200, 201) and spec.target != "none":
            world.spend(spec.target, region)


def _check_own_create(world: World, spec: Endpoint, path: str, role: str, who: str) -> None:
    assert spec.body is not None
    audit_before = world.audit_count()
    response = world.call(who, "POST", path, json=spec.body({}))
    if role in ("viewer", "read-only"):
        assert response.status_code == 403, (who, response.text)
        assert world.audit_count() == audit_before
        return
    assert response.status_code == 201, (who, response.text)
    stored = world.call(NATIONAL_ADMIN, "GET", response.json()["url"]).json()
    assert stored["region_code"] == who.rsplit("-", 1)[1]  # stored where the caller sits


def _check_push(world: World, spec: Endpoint, path: str, role: str, who: str, scope: str) -> None:
    assert spec.body is not None
    audit_before = world.audit_count()
    response = world.call(who, "POST", path, json=spec.body({}))
    if role in ("viewer", "read-only", "inspector"):
        assert response.status_code == 403, (who, response.text)
        assert world.audit_count() == audit_before
        return
    assert response.status_code == 201, (who, response.text)
    body = response.json()
    visible = {r for r in OBJECT_REGIONS if within(r, scope)}
    assert {lead["region_code"] for lead in body["leads"]} == visible, (who, body)
    assert sorted(body["outside_region"]) == sorted(
        ADDRESSES[r] for r in OBJECT_REGIONS if r not in visible
    ), (who, body)
    for lead in body["leads"]:  # each lead readable by the caller, stored where it says
        stored = world.call(who, "GET", lead["url"])
        assert stored.status_code == 200 and stored.json()["region_code"] == lead["region_code"]


def _app_routes() -> set[tuple[str, str]]:
    """Every (method, path) the app answers: the flat routes of ``app.routes`` (older FastAPI
    lists every route there; newer ones nest included routers) and every operation of the
    published OpenAPI document (which covers the nested ones)."""
    app = create_app("sqlite://")
    routes = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or ())
        if method != "HEAD"
    }
    for path, operations in app.openapi()["paths"].items():
        routes.update((method.upper(), path) for method in operations)
    app.state.engine.dispose()
    return routes


def test_every_route_is_in_the_matrix() -> None:
    routes = _app_routes()
    missing = routes - set(ENDPOINTS)
    assert not missing, f"routes without a row in ENDPOINTS: {sorted(missing)}"
    assert not set(ENDPOINTS) - routes, "ENDPOINTS names routes the app no longer has"


def test_matrix_size_stays_above_the_floor() -> None:
    print(f"authorisation matrix: {MATRIX_SIZE} role x region x endpoint x method cells")
    assert MATRIX_SIZE > MATRIX_FLOOR


@pytest.mark.parametrize(("method", "path"), MATRIX_ENDPOINTS)
def test_matrix(world: World, method: str, path: str) -> None:
    spec = ENDPOINTS[(method, path)]
    cells = 0
    for scope in CALLER_REGIONS:
        for role in ROLES:
            who = _username(role, scope)
            cells += 1
            if spec.kind == "self":
                body = world.call(who, method, path).json()
                assert (body["role"], body["region_code"]) == (
                    "admin" if role == "read-only" else role,
                    scope,
                )
                assert body["write_enabled"] == (role != "read-only")
            elif spec.kind in ("list", "read"):
                _check_read(world, spec, method, path, who, scope)
            elif spec.kind in ("write", "create"):
                _check_write(world, spec, method, path, role, who, scope)
            elif spec.kind == "push":
                _check_push(world, spec, path, role, who, scope)
            else:
                _check_own_create(world, spec, path, role, who)
    assert cells == len(ROLES) * len(CALLER_REGIONS)


def test_every_endpoint_wants_a_token_and_public_pages_hold_no_data(tmp_path: Path) -> None:
    app = create_app(f"sqlite:///{tmp_path / 'ledger.db'}")
    with TestClient(app) as client:
        for method, path in MATRIX_ENDPOINTS:
            url = path.format(pk=1, item=1, tenant_id=1)
            assert client.request(method, url, json={}).status_code == 401, (method, url)
        for (_, path), spec in ENDPOINTS.items():
            if spec.kind == "public":
                response = client.get(path)
                assert response.status_code == 200, path
                assert "Token" not in response.headers.get("www-authenticate", "")
    app.state.engine.dispose()
