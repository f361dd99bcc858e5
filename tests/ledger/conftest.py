"""Ledger fixtures: a migrated database on every backend, empty or holding the sample registry.

Each builds on ``database_url`` (tests/conftest.py), so every test that uses them runs on SQLite
and, where configured, on PostgreSQL. A test module may still define its own fixture of the same
name where it needs a different ledger; pytest then uses the module's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from minewatch.ledger.db import open_engine, session_factory, upgrade
from minewatch.ledger.registry import import_registry, sample_registry_dir


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on an empty ledger migrated to the newest schema; disposed afterwards."""
    engine = open_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions on the empty, migrated ledger."""
    return session_factory(engine)


@pytest.fixture
def sample_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions on a ledger holding the bundled sample registry (sites, tenants, prefixes...)."""
    with sessions() as session:
        import_registry(session, [sample_registry_dir()])
        session.commit()
    return sessions
