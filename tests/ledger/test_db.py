"""The ledger schema: migrations create exactly what the models describe, on every backend."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from minewatch.errors import InputError
from minewatch.ledger.db import default_database_url, open_engine, session_factory, upgrade
from minewatch.ledger.models import Base, User


def test_migrations_match_models(database_url: str) -> None:
    engine = open_engine(database_url)
    upgrade(engine)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    engine.dispose()


def test_upgrade_is_idempotent_and_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "ledger.db"
    engine = open_engine(f"sqlite:///{path}")
    upgrade(engine)
    upgrade(engine)
    assert path.exists()
    assert "host_reports" in inspect(engine).get_table_names()


def test_naive_datetimes_are_refused_and_aware_ones_come_back_in_utc(database_url: str) -> None:
    engine = open_engine(database_url)
    upgrade(engine)
    sessions = session_factory(engine)
    beijing = dt.timezone(dt.timedelta(hours=8))
    with sessions() as session:
        session.add(
            User(
                username="a",
                role="viewer",
                region_code="110000",
                created_at=dt.datetime(2026, 1, 1, 8, 0, tzinfo=beijing),
            )
        )
        session.commit()
    with sessions() as session:
        user = session.query(User).one()
        assert user.created_at == dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.UTC)
        assert user.created_at.tzinfo is not None
    with sessions() as session:
        session.add(
            User(
                username="b",
                role="viewer",
                region_code="110000",
                created_at=dt.datetime(2026, 1, 1, 8, 0),
            )
        )
        with pytest.raises(Exception, match="naive datetime"):
            session.commit()


def test_default_url_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MINEWATCH_DATABASE_URL", "postgresql+psycopg://x@127.0.0.1/y")
    assert default_database_url().startswith("postgresql")
    monkeypatch.delenv("MINEWATCH_DATABASE_URL")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_database_url() == f"sqlite:///{tmp_path}/minewatch/ledger.db"


def test_unusable_url_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="cannot open database"):
        open_engine("nosuchdialect://x")
