"""Opening the ledger database and bringing its schema up to date.

SQLite (a file, embedded) is the default so minewatch runs with nothing installed;
PostgreSQL is the choice for a shared, multi-user deployment. The URL comes from the caller,
else ``MINEWATCH_DATABASE_URL``, else a SQLite file under the user's data directory. The schema is
created and changed only by the Alembic migrations shipped in the package
(:func:`upgrade`), never by ``create_all``, so every deployment walks the same steps.

Example::

    >>> engine = open_engine("sqlite://")
    >>> upgrade(engine)
    >>> sorted(engine.dialect.get_table_names(engine.connect()))[:2]
    ['alembic_version', 'api_tokens']
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from minewatch.errors import InputError

__all__ = ["default_database_url", "open_engine", "session_factory", "upgrade"]


def default_database_url() -> str:
    """``MINEWATCH_DATABASE_URL``, else ``sqlite:///`` + ``$XDG_DATA_HOME/minewatch/ledger.db``."""
    explicit = os.environ.get("MINEWATCH_DATABASE_URL")
    if explicit:
        return explicit
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return f"sqlite:///{base / 'minewatch' / 'ledger.db'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Foreign keys are off by default in SQLite; WAL lets readers run beside one writer; the
    # busy timeout makes concurrent writers wait for the lock instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def open_engine(url: str | None = None) -> Engine:
    """An engine for ``url`` (default :func:`default_database_url`) with safe SQLite settings."""
    url = url or default_database_url()
    try:
        if url.startswith("sqlite"):
            in_memory = url in ("sqlite://", "sqlite:///:memory:")
            if not in_memory:
                path = url.split("///", 1)[1] if "///" in url else ""
                if path:
                    Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                url,
                connect_args={"check_same_thread": False},
                # One shared connection keeps an in-memory database alive across sessions.
                poolclass=StaticPool if in_memory else None,
            )
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        if url.startswith("postgresql+psycopg"):
            # psycopg turns repeated statements into server-side prepared plans; a plan made while
            # a table was empty stays slow after a bulk load until autovacuum analyses it.
            return create_engine(url, pool_pre_ping=True, connect_args={"prepare_threshold": None})
        return create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise InputError(f"cannot open database {url!r}: {exc}") from exc


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (the API returns them)."""
    return sessionmaker(engine, expire_on_commit=False)


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("minewatch.ledger") / "migrations")
    )
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the shipped migrations up to ``revision``; a no-op when already there."""
    command.upgrade(_alembic_config(engine), revision)
