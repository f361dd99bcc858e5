"""``minewatch db``, ``minewatch token`` and ``minewatch api``: run the ledger and its API.

Example::

    minewatch db upgrade                                    # create/upgrade the SQLite ledger
    minewatch token create --user zj-agent --role analyst --region 330000
    minewatch api serve --ssl-certfile cert.pem --ssl-keyfile key.pem
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from minewatch.commands.common import database_option, fail
from minewatch.errors import MinewatchError
from minewatch.i18n import message

__all__ = ["api", "db", "token"]


@click.group()
def db() -> None:
    """Create or upgrade the ledger database. 创建或升级台账数据库。"""


@db.command("upgrade")
@database_option
@click.pass_context
def db_upgrade(ctx: click.Context, database_url: str | None) -> None:
    """Apply the shipped schema migrations (safe to run again)."""
    from minewatch.ledger.db import open_engine, upgrade

    try:
        engine = open_engine(database_url)
        upgrade(engine)
    except MinewatchError as exc:
        fail(ctx, exc)
    click.echo(message("db_ready", ctx.obj["lang"], url=engine.url.render_as_string()), err=True)


@click.group()
def token() -> None:
    """Issue API tokens. 签发 API 令牌。"""


@token.command("create")
@database_option
@click.option("--user", "username", required=True, help="User the token acts for (created if new).")
@click.option(
    "--role",
    type=click.Choice(["viewer", "analyst", "inspector", "admin"]),
    default="viewer",
    show_default=True,
    help="Role of a NEW user (an existing user keeps its role).",
)
@click.option(
    "--region",
    "region_code",
    default="000000",
    show_default=True,
    help="Six-digit region code of a NEW user; it reads and acts only inside that subtree.",
)
@click.option("--read-only", is_flag=True, help="The token may only read.")
@click.option("--description", default="", help="What the token is for (shown in listings).")
@click.pass_context
def token_create(
    ctx: click.Context,
    database_url: str | None,
    username: str,
    role: str,
    region_code: str,
    read_only: bool,
    description: str,
) -> None:
    """Create a token and print it ONCE on stdout; only its hash is stored."""
    from minewatch.ledger.audit import local_actor
    from minewatch.ledger.db import open_engine, session_factory, upgrade
    from minewatch.ledger.tokens import issue_token

    try:
        engine = open_engine(database_url)
        upgrade(engine)
        with session_factory(engine)() as session:
            value = issue_token(
                session,
                username,
                actor=local_actor(),
                role=role,
                region_code=region_code,
                write_enabled=not read_only,
                description=description,
            )
            session.commit()
    except MinewatchError as exc:
        fail(ctx, exc)
    click.echo(value)
    click.echo(message("token_once", ctx.obj["lang"]), err=True)


@click.group()
def api() -> None:
    """Serve the REST API. 运行 REST API 服务。"""


@api.command("serve")
@database_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8443, show_default=True)
@click.option("--ssl-certfile", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--ssl-keyfile", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.pass_context
def api_serve(
    ctx: click.Context,
    database_url: str | None,
    host: str,
    port: int,
    ssl_certfile: Path | None,
    ssl_keyfile: Path | None,
) -> None:
    """Serve /api/v1 (OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs).

    Without a certificate the server only listens on loopback: tokens must not cross a network
    in clear text (put a TLS-terminating proxy in front, or give --ssl-certfile/--ssl-keyfile).
    """
    import uvicorn

    from minewatch.api.app import create_app

    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise click.UsageError("give both --ssl-certfile and --ssl-keyfile, or neither")
    if ssl_certfile is None and not _is_loopback(host):
        raise click.UsageError(
            f"refusing plain HTTP on {host}: give --ssl-certfile/--ssl-keyfile or listen on "
            "127.0.0.1 behind a TLS proxy"
        )
    try:
        app = create_app(database_url)
    except MinewatchError as exc:
        fail(ctx, exc)
    uvicorn.run(
        app,
        host=host,
        port=port,
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
        log_level="info",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
