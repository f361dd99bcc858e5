"""Property-based requests against the published OpenAPI document: no operation answers 5xx.

Schemathesis reads ``/api/v1/openapi.json`` from the ASGI app itself (no server, no network),
generates requests for every operation -- valid ones from the schemas and, in the negative
phase, ones that break them -- and sends them as a national admin, who reaches every object.
The ledger is a real SQLite file seeded with objects in two provinces (the authorisation
matrix's seed), so generated ids sometimes hit real cases, inspections and milestones.

The run is bounded and repeatable: ``max_examples`` per operation, a derandomised generator,
no deadline and no example database, so CI sees the same requests every time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from sqlalchemy import select

from minewatch.api.app import create_app
from minewatch.ledger.db import session_factory
from minewatch.ledger.models import User
from minewatch.ledger.tokens import issue_token
from tests.api.test_authorization_matrix import ENDPOINTS, INSPECTORS, OBJECT_REGIONS, _seed_region

MAX_EXAMPLES = 15
"""Generated requests per operation (and per generation mode)."""


@pytest.fixture
def seeded_app(tmp_path: Path) -> Iterator[tuple[FastAPI, dict[str, str]]]:
    """The API over a seeded ledger and the headers of a national admin."""
    app = create_app(f"sqlite:///{tmp_path / 'ledger.db'}")
    sessions = session_factory(app.state.engine)
    with sessions() as session:
        token = issue_token(session, "admin-000000", actor="test", role="admin")
        for name in INSPECTORS.values():
            issue_token(
                session,
                name,
                actor="test",
                role="inspector",
                region_code=name.rsplit("-", 1)[1],
            )
        admin = session.scalar(select(User).where(User.username == "admin-000000"))
        assert admin is not None
        for region in OBJECT_REGIONS:
            _seed_region(session, region, admin)
        session.commit()
    yield app, {"Authorization": f"Token {token}"}
    app.state.engine.dispose()


def _operation(app: FastAPI, method: str, path: str) -> Any:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the OpenAPI document is invalid: {result.err()}"
        operation = result.ok()
        if (operation.method.upper(), operation.path) == (method, path):
            return operation
    raise AssertionError(f"{method} {path} is not in the OpenAPI document")


OPERATIONS = sorted(
    key
    for key, spec in ENDPOINTS.items()
    if spec.kind != "public" and key != ("GET", "/api/v1/openapi.json")
)


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_operation_answers_5xx(
    seeded_app: tuple[FastAPI, dict[str, str]], method: str, path: str, mode: GenerationMode
) -> None:
    """Schemathesis's pytest plugin (``from_fixture``) does not run under pytest 9, so the
    operations are parametrised here and each runs as a plain Hypothesis test."""
    app, headers = seeded_app
    operation = _operation(app, method, path)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report what was found
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    try:
        run()
    except Unsatisfiable:
        # Negative mode needs something to break; an operation without parameters or body
        # (GET /status/) has nothing, and its positive run above already covered it.
        assert mode is GenerationMode.NEGATIVE
        pytest.skip(f"{method} {path} has no input to make invalid")


HUGE = 2**100
"""Larger than any integer column: the database driver cannot even bind it."""


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", f"/api/v1/cases/{HUGE}/", None),
        ("PATCH", f"/api/v1/cases/1/milestones/{HUGE}/", {"note": "x"}),
        ("GET", f"/api/v1/host-reports/?offset={HUGE}", None),
        ("GET", f"/api/v1/evidence/export/?format=stix&tenant_id={HUGE}", None),
        ("GET", f"/api/v1/assessments/{HUGE}/", None),
        ("PATCH", "/api/v1/cases/1/", {"link_evidence_ids": [HUGE], "reason": "x"}),
    ],
)
def test_numbers_beyond_the_columns_are_refused_not_500(
    seeded_app: tuple[FastAPI, dict[str, str]], method: str, url: str, body: Any
) -> None:
    """What schemathesis found first: ids, offsets and evidence ids beyond 32 bits reached the
    SQLite driver (OverflowError, a 500); now the request is refused before any query."""
    app, headers = seeded_app
    with TestClient(app) as client:
        response = client.request(method, url, headers=headers, json=body)
    assert response.status_code == 422, response.text


def test_an_oversized_pid_in_a_host_report_is_refused(
    seeded_app: tuple[FastAPI, dict[str, str]],
) -> None:
    app, headers = seeded_app
    report = {
        "report_id": "0" * 32,
        "hostname": "h",
        "agent_version": "1",
        "scanned_at": "2026-01-05T08:00:00+08:00",
        "findings": [
            {"verdict": "mining", "kind": "k", "entity": "e", "confidence": 1.0, "pid": HUGE}
        ],
    }
    with TestClient(app) as client:
        response = client.post("/api/v1/host-reports/", headers=headers, json=report)
    assert response.status_code == 422, response.text
