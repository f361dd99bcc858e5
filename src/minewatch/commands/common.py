"""What every ledger command shares: the ``--db`` option and one way to fail.

A command that cannot do its job prints one line (in the user's language) naming the problem and
exits 1; a database error shows the driver's first line, never a traceback.
"""

from __future__ import annotations

from typing import NoReturn

import click
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from minewatch.errors import InputError, MinewatchError
from minewatch.i18n import message

__all__ = ["database_option", "existing_ledger", "fail", "language"]

database_option = click.option(
    "--db",
    "database_url",
    default=None,
    metavar="URL",
    help="SQLAlchemy URL (default: MINEWATCH_DATABASE_URL, else a SQLite file in the user's "
    "data directory). 数据库地址。",
)
"""``--db URL``, passed to the command as ``database_url``."""


def language(ctx: click.Context) -> str:
    """The language chosen by the top-level ``--lang`` (English when called on its own)."""
    obj = ctx.find_root().obj
    return str(obj.get("lang", "en")) if isinstance(obj, dict) else "en"


def fail(ctx: click.Context, exc: MinewatchError | SQLAlchemyError) -> NoReturn:
    """Print one line for ``exc`` and exit 1."""
    if isinstance(exc, MinewatchError):
        problem = str(exc)
    else:  # the driver's own first line says what the database refused
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        problem = f"database: {exc.__class__.__name__}: {detail}"
    click.echo(message("problem", language(ctx), problem=problem), err=True)
    ctx.exit(1)


def existing_ledger(database_url: str | None, table: str) -> Engine:
    """An engine on a ledger that already has ``table``: commands that only read never migrate,
    so pointing one at the wrong database cannot create tables there."""
    from minewatch.ledger.db import open_engine

    engine = open_engine(database_url)
    try:
        present = inspect(engine).has_table(table)
    except SQLAlchemyError as exc:
        raise InputError(f"cannot read database {engine.url.render_as_string()}: {exc}") from exc
    if not present:
        raise InputError(
            f"{engine.url.render_as_string()} has no {table} table: run 'minewatch db upgrade'"
        )
    return engine
