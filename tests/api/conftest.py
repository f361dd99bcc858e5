"""An API over a fresh SQLite ledger and a few tokens at different regions and roles."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from minewatch.api.app import create_app
from minewatch.ledger.db import session_factory
from minewatch.ledger.tokens import issue_token


@dataclass
class ApiFixture:
    client: TestClient
    tokens: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Token {self.tokens[who]}"}


@pytest.fixture
def api(database_url: str) -> Iterator[ApiFixture]:
    app = create_app(database_url)
    sessions = session_factory(app.state.engine)
    with sessions() as session:
        tokens = {
            "national": issue_token(
                session, "nat", actor="test", role="admin", region_code="000000"
            ),
            "zhejiang": issue_token(
                session, "zj", actor="test", role="analyst", region_code="330000"
            ),
            "hangzhou": issue_token(
                session, "hz", actor="test", role="analyst", region_code="330100"
            ),
            "sichuan": issue_token(
                session, "sc", actor="test", role="analyst", region_code="510000"
            ),
            "viewer": issue_token(
                session, "zjv", actor="test", role="viewer", region_code="330000"
            ),
            "readonly": issue_token(
                session,
                "zj",
                actor="test",
                role="analyst",
                region_code="330000",
                write_enabled=False,
            ),
        }
        session.commit()
    with TestClient(app) as client:
        yield ApiFixture(client, tokens)
    app.state.engine.dispose()
