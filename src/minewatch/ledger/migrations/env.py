"""Alembic environment: runs migrations on the engine handed over by ``minewatch.ledger.db``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from minewatch.ledger.models import Base

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through minewatch.ledger.db.upgrade(engine)")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
