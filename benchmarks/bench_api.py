"""Time the REST API over a ledger of 100,000 cases: list, filter, fetch, weekly report, alerts.

The ledger is seeded in bulk (SQLAlchemy Core, no ORM objects) with cases spread over every
county of Zhejiang (80 %) and Sichuan (20 %) as the bundled region dataset lists them, in every
workflow state, with their opening transition, inspections (some overdue) and rectification
milestones (some overdue). The API then runs in a real ``uvicorn`` process on loopback and is
called over HTTP with ``httpx`` -- the same path a client takes, not the in-process test client.
Each request kind is sent ``--requests`` times (fewer, but at least 20, when they take more than
``--budget`` seconds) after a few warm-up calls, one at a time, and the p50 / p95 / p99 latencies
are printed as a table with the number of timed requests and the ``count`` the page reported.

Usage::

    PYTHONPATH=src python benchmarks/bench_api.py                 # SQLite in a temporary folder
    PYTHONPATH=src python benchmarks/bench_api.py --pg postgresql+psycopg://u:p@127.0.0.1/db

``--pg`` (or ``MINEWATCH_TEST_POSTGRES_URL``) also runs PostgreSQL; its ``public`` schema is
dropped and recreated first, so give it a database of its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, insert, select, text

from minewatch.ledger.case_models import Case, CaseTransition, Inspection, Milestone
from minewatch.ledger.db import open_engine, session_factory, upgrade
from minewatch.ledger.models import Base, User
from minewatch.ledger.region_data import level_of, package_regions
from minewatch.ledger.tokens import issue_token

__all__ = ["main"]

STATES = {
    "lead": 0.20,
    "verification": 0.15,
    "inspection": 0.10,
    "confirmed": 0.05,
    "cleared": 0.15,
    "rectification": 0.15,
    "closed": 0.20,
}
"""Share of cases in each state: a ledger some years into the campaign."""
CHUNK = 5000
MIN_REQUESTS = 20
"""Fewest timed requests per kind, however slow."""
UTC = dt.UTC


@dataclass(frozen=True)
class Probe:
    """One kind of request: who sends it and what it asks."""

    label: str
    who: str
    path: str
    params: dict[str, str]


def _counties(prefix: str) -> list[str]:
    regions, _ = package_regions()
    return [r.code for r in regions if r.code.startswith(prefix) and level_of(r.code) == "county"]


def _rows(count: int, rng: random.Random, inspector_id: int) -> Iterator[dict[str, list[Any]]]:
    """Chunks of rows for the cases, transitions, inspections and milestones tables."""
    zhejiang, sichuan = _counties("33"), _counties("51")
    states, weights = list(STATES), list(STATES.values())
    today = dt.date.today()
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    for first in range(1, count + 1, CHUNK):
        chunk: dict[str, list[Any]] = {"cases": [], "transitions": [], "inspections": [], "ms": []}
        for case_id in range(first, min(first + CHUNK, count + 1)):
            state = rng.choices(states, weights)[0]
            region = rng.choice(zhejiang if rng.random() < 0.8 else sichuan)
            opened = start + dt.timedelta(minutes=case_id * 9 + rng.randrange(9))
            chunk["cases"].append(
                {
                    "id": case_id,
                    "version": 1,
                    "region_code": region,
                    "state": state,
                    "source": rng.choice(("detection", "ip-list", "hotline", "self-report")),
                    "title": f"bench case {case_id}",
                    "mining_class": rng.choice(("pow-asic", "pow-gpu", "storage-chia", "unknown")),
                    "ip_addresses": [f"10.{case_id % 250}.{case_id % 199}.{case_id % 97}"],
                    "enterprise": f"示例矿场 {case_id % 5000} 有限公司",
                    "power_kw": float(rng.randrange(50, 5000)),
                    "project_type": None
                    if state in ("lead", "verification", "inspection", "cleared")
                    else rng.choice(("new", "existing")),
                    "cleared_reason": "lawful node" if state == "cleared" else None,
                    "opened_at": opened,
                    "opened_by": "bench",
                    "updated_at": opened,
                    "confirmed_at": opened + dt.timedelta(days=20)
                    if state in ("confirmed", "rectification", "closed")
                    else None,
                    "cleared_at": opened + dt.timedelta(days=10) if state == "cleared" else None,
                    "closed_at": opened + dt.timedelta(days=90) if state == "closed" else None,
                }
            )
            chunk["transitions"].append(
                {
                    "case_id": case_id,
                    "from_state": None,
                    "to_state": "lead",
                    "at": opened,
                    "actor": "bench",
                    "reason": "seeded",
                }
            )
            if state == "inspection":
                chunk["inspections"].append(
                    {
                        "case_id": case_id,
                        "inspector_id": inspector_id,
                        "scheduled_on": today + dt.timedelta(days=rng.randrange(-30, 30)),
                        "checklist": [],
                        "result": None,
                        "notes": "",
                        "inspected_at": None,
                        "created_at": opened,
                        "created_by": "bench",
                    }
                )
            if state in ("rectification", "closed"):
                for step in ("stop-mining", "remove-equipment", "cut-supply"):
                    due = today + dt.timedelta(days=rng.randrange(-60, 120))
                    chunk["ms"].append(
                        {
                            "case_id": case_id,
                            "kind": step,
                            "due_on": due,
                            "done_on": due if state == "closed" else None,
                            "note": "",
                        }
                    )
        yield chunk


def seed(engine: Engine, count: int, seed_value: int) -> dict[str, str]:
    """Migrate, create the callers and bulk-insert ``count`` cases; returns the callers' tokens."""
    upgrade(engine)
    sessions = session_factory(engine)
    with sessions() as session:
        tokens = {
            "national": issue_token(session, "bench-nat", actor="bench", role="admin"),
            "province": issue_token(
                session, "bench-zj", actor="bench", role="analyst", region_code="330000"
            ),
            "county": issue_token(
                session, "bench-xihu", actor="bench", role="analyst", region_code="330106"
            ),
        }
        inspector = User(
            username="bench-ins",
            role="inspector",
            region_code="330000",
            created_at=dt.datetime.now(UTC),
        )
        session.add(inspector)
        session.commit()
        inspector_id = inspector.id
    rng = random.Random(seed_value)
    tables: dict[str, type[Base]] = {
        "cases": Case,
        "transitions": CaseTransition,
        "inspections": Inspection,
        "ms": Milestone,
    }
    with engine.begin() as conn:
        for chunk in _rows(count, rng, inspector_id):
            for name, rows in chunk.items():
                if rows:
                    conn.execute(insert(tables[name]), rows)
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval('cases_id_seq', (SELECT max(id) FROM cases))"))
            conn.execute(text("ANALYZE"))
        else:
            conn.execute(text("ANALYZE"))
    return tokens


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MINEWATCH_DATABASE_URL": url}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "minewatch.api.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    return subprocess.Popen(command, env=env)  # a fixed argument list, no shell


def _wait_ready(client: httpx.Client, token: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            headers = {"Authorization": f"Token {token}"}
            if client.get("/api/v1/status/", headers=headers).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the API server did not come up within 60 s")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(
    url: str, tokens: dict[str, str], requests: int, budget_s: float, case_ids: list[int]
) -> list[str]:
    """Start the server, time every probe, stop the server; returns the table rows.

    Each probe sends ``requests`` requests, or fewer (at least :data:`MIN_REQUESTS`) when they
    take more than ``budget_s`` seconds in all: the table says how many were timed."""
    port = _free_port()
    server = _serve(url, port)
    rows = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            _wait_ready(client, tokens["national"])
            probes = [
                Probe("list page 1, province", "province", "/api/v1/cases/", {"limit": "50"}),
                Probe("list page 1, county", "county", "/api/v1/cases/", {"limit": "50"}),
                Probe(
                    "list brief, province",
                    "province",
                    "/api/v1/cases/",
                    {"limit": "50", "brief": "true"},
                ),
                Probe(
                    "list state=inspection",
                    "province",
                    "/api/v1/cases/",
                    {"limit": "50", "state": "inspection"},
                ),
                Probe("get one case", "province", "/api/v1/cases/{pk}/", {}),
                Probe("weekly report, province", "province", "/api/v1/reports/weekly/", {}),
                Probe("alerts page 1, province", "province", "/api/v1/alerts/", {"limit": "50"}),
                Probe("alerts page 1, county", "county", "/api/v1/alerts/", {"limit": "50"}),
            ]
            rng = random.Random(7)
            for probe in probes:
                headers = {"Authorization": f"Token {tokens[probe.who]}"}
                times: list[float] = []
                status = 0
                count: object = "-"
                probe_began = time.monotonic()
                for n in range(requests + 5):
                    spent = time.monotonic() - probe_began
                    if len(times) >= MIN_REQUESTS and spent > budget_s:
                        break
                    path = probe.path.format(pk=rng.choice(case_ids))
                    began = time.perf_counter()
                    response = client.get(path, params=probe.params, headers=headers)
                    elapsed = (time.perf_counter() - began) * 1000
                    status = response.status_code
                    if status != 200:
                        raise SystemExit(f"{probe.label}: HTTP {status}: {response.text[:200]}")
                    if n >= 5:  # the first calls warm caches and connections
                        times.append(elapsed)
                    if n == 0 and "count" in response.json():
                        count = response.json()["count"]
                rows.append(
                    f"{probe.label:<26} {_percentile(times, 0.5):>8.1f} "
                    f"{_percentile(times, 0.95):>8.1f} {_percentile(times, 0.99):>8.1f} "
                    f"{statistics.fmean(times):>8.1f} {len(times):>5} {count!s:>8}"
                )
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rows


def _empty_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def run(url: str, label: str, args: argparse.Namespace) -> None:
    engine = open_engine(url)
    began = time.perf_counter()
    tokens = seed(engine, args.cases, args.seed)
    seeded = time.perf_counter() - began
    # Cases inside the province user's region, for "get one case".
    with engine.connect() as conn:
        inside = list(conn.scalars(select(Case.id).where(Case.region_code.startswith("33"))))
    engine.dispose()
    case_ids = random.Random(args.seed).sample(inside, min(500, len(inside)))
    rows = measure(url, tokens, args.requests, args.budget, case_ids)
    print(
        f"\n{label}: {args.cases:,} cases seeded in {seeded:.1f} s; {args.requests} requests each"
    )
    print(
        f"{'request':<26} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
        f"{'n':>5} {'count':>8}"
    )
    for row in rows:
        print(row)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--budget", type=float, default=20.0, help="seconds per request kind, at most"
    )
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--pg", default=os.environ.get("MINEWATCH_TEST_POSTGRES_URL"))
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args(argv)
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            run(f"sqlite:///{Path(folder) / 'ledger.db'}", "SQLite", args)
    if args.pg:
        _empty_postgres(args.pg)
        run(args.pg, "PostgreSQL", args)


if __name__ == "__main__":
    main()
