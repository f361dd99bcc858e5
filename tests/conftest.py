"""Shared test fixtures: where the labelled corpus lives (beside the project, never copied)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The labelled capture corpus in ../shared/corpus; tests using it skip where it is absent."""
    if not (CORPUS / "LABELS.csv").is_file():
        pytest.skip(f"labelled corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty ledger database: a SQLite file, and PostgreSQL where CI started one.

    PostgreSQL runs when ``MINEWATCH_TEST_POSTGRES_URL`` names a server (``.ci/run`` starts one on
    loopback with ``scripts/ci-postgres``); every table is dropped first so each test starts empty.
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url = os.environ.get("MINEWATCH_TEST_POSTGRES_URL")
    if not url:
        pytest.skip(
            "PostgreSQL not configured: set MINEWATCH_TEST_POSTGRES_URL (scripts/ci-postgres)"
        )
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url
