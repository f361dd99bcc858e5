"""``minewatch registry import`` and ``minewatch ingest``: fill the ledger from files.

Example::

    minewatch registry import src/minewatch/data/sample/registry/    # a directory of CSVs
    minewatch registry netbox --url https://netbox.example --token-file ~/.netbox-token
    minewatch scan capture.pcap -f jsonl > net.jsonl
    minewatch power screen readings.csv --accounts accounts.csv --out power.csv
    minewatch ingest net.jsonl power.csv
    minewatch agent scan -f jsonl > host.jsonl
    minewatch ingest --hostname xs-r12-n03 host.jsonl
    minewatch ingest --unattributed                    # what the registry could not place
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from minewatch.commands.common import database_option, fail
from minewatch.errors import MinewatchError
from minewatch.ledger.audit import local_actor
from minewatch.ledger.audit import record as audit_record

__all__ = ["ingest", "registry"]


@click.group()
def registry() -> None:
    """Load the data-centre registry (sites, tenants, prefixes, meters, hosts).

    导入数据中心登记信息（机房、租户、IP 地址段、电表、主机）。
    """


@registry.command("import")
@database_option
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.pass_context
def registry_import(ctx: click.Context, database_url: str | None, paths: tuple[Path, ...]) -> None:
    """Import registry CSV files (or directories of them) in one transaction.

    \b
    The kind of each file is read from its header (* required):
      data centres    name*, operator*, address*, region_code*, capacity_kw, pue
      tenants         name*, declared_business*, credit_code
      racks           data_centre*, name*, tenant
      prefixes        prefix*, data_centre, tenant, description
      power accounts  account_id*, data_centre*, tenant*, contracted_kw
      hosts           data_centre*, hostname*, tenant
    A power account needs a data_centre or a tenant (or both); declared_business may be empty.
    Every row is checked before anything is written; a bad row stops the import with
    file:line and nothing is stored. Rows are matched on their names (prefix, account id), so
    importing again updates what changed and adds nothing twice.
    Exit status: 0 imported; 1 a file was refused.
    """
    from minewatch.ledger.db import open_engine, session_factory, upgrade
    from minewatch.ledger.registry import import_registry

    try:
        engine = open_engine(database_url)
        upgrade(engine)
        with session_factory(engine)() as session:
            summary = import_registry(session, list(paths))
            if any(c.added or c.updated for c in summary.counts.values()):
                audit_record(
                    session,
                    local_actor(),
                    "registry.import",
                    "registry",
                    None,
                    {"files": summary.files, "changes": summary.lines()},
                )
            session.commit()
    except MinewatchError as exc:
        fail(ctx, exc)
    for line in summary.lines():
        click.echo(line, err=True)


@registry.command("netbox")
@database_option
@click.option(
    "--url", required=True, metavar="URL", help="NetBox web root, e.g. https://netbox.example"
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File holding the NetBox API token (default: MINEWATCH_NETBOX_TOKEN; none: anonymous).",
)
@click.option(
    "--ca-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="PEM CA bundle to verify NetBox's certificate (default: the system's).",
)
@click.option(
    "--mapping",
    "mapping_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="TOML file naming the custom fields (region_field, meter_account_field, ...).",
)
@click.pass_context
def registry_netbox(
    ctx: click.Context,
    database_url: str | None,
    url: str,
    token_file: Path | None,
    ca_file: Path | None,
    mapping_file: Path | None,
) -> None:
    """Import the registry from NetBox's API in one transaction (needs pynetbox).

    \b
    Reads sites, regions, locations, tenants, racks, prefixes, devices, virtual machines,
    power panels and power feeds, and maps them as minewatch.ledger.netbox_import describes:
      site        -> data centre (region code from custom field region_code, or a 6-digit
                     code in the slug or description of the site's region)
      tenant      -> tenant        rack -> rack        prefix -> IP prefix
      device, VM  -> host          power feed with custom field meter_account -> power account
    Everything is read before anything is written, and every row passes the same checks as
    `registry import`; an HTTP error, a bad token or an unreachable NetBox writes nothing.
    Importing again adds nothing. The token is never printed.
    Exit status: 0 imported; 1 NetBox or a row was refused.
    """
    from minewatch.errors import InputError
    from minewatch.ledger.db import open_engine, session_factory, upgrade
    from minewatch.ledger.netbox_import import NetboxMapping, import_netbox

    try:
        if token_file is not None:
            try:
                token: str | None = token_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise InputError(f"{token_file}: cannot read the token file") from exc
            if not token:
                raise InputError(f"{token_file}: the token file is empty")
        else:
            token = os.environ.get("MINEWATCH_NETBOX_TOKEN", "").strip() or None
        mapping = NetboxMapping.from_toml(mapping_file) if mapping_file else NetboxMapping()
        engine = open_engine(database_url)
        upgrade(engine)
        with session_factory(engine)() as session:
            result = import_netbox(session, url, token, mapping, ca_file=ca_file)
            if any(c.added or c.updated for c in result.summary.counts.values()):
                audit_record(
                    session,
                    local_actor(),
                    "registry.import",
                    "registry",
                    None,
                    {"netbox": result.summary.files, "changes": result.summary.lines()},
                )
            session.commit()
    except MinewatchError as exc:
        fail(ctx, exc)
    for line in result.lines():
        click.echo(line, err=True)


@click.command("ingest")
@database_option
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--kind",
    type=click.Choice(["net", "power", "host"]),
    default=None,
    help="Detector that wrote the files (default: recognised per record).",
)
@click.option(
    "--hostname",
    default=None,
    help="Host that plain host-agent findings (agent scan -f jsonl) came from.",
)
@click.option(
    "--reattribute",
    is_flag=True,
    help="Attribute stored unattributed evidence again (after a registry import).",
)
@click.option(
    "--unattributed",
    "list_unattributed",
    is_flag=True,
    help="List evidence that no tenant or data centre was found for.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Most rows --unattributed lists.",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["table", "jsonl"]),
    default="table",
    show_default=True,
    help="Format of the --unattributed list.",
)
@click.pass_context
def ingest(
    ctx: click.Context,
    database_url: str | None,
    files: tuple[Path, ...],
    kind: str | None,
    hostname: str | None,
    reattribute: bool,
    list_unattributed: bool,
    limit: int,
    fmt: str,
) -> None:
    """Store detector findings in the ledger, attributed to tenant, data centre and region.

    \b
    FILES: network findings (minewatch scan -f jsonl/json), power screening results
    (minewatch power screen --out, CSV; "normal" kept only for registered accounts), host-agent
    findings (minewatch agent scan -f jsonl, with --hostname; or the agent's report files).
    Attribution: client IP -> most specific IP prefix; power account id -> power account;
    hostname -> host; each then -> tenant, data centre -> region. Evidence the registry cannot
    place is kept and listed by --unattributed. The same finding is stored once however often
    it is ingested. All files are checked before anything is written.
    Exit status: 0 done; 1 a file was refused (nothing stored).
    """
    from minewatch.ledger.db import open_engine, session_factory, upgrade
    from minewatch.ledger.ingest import ingest_files, unattributed_evidence
    from minewatch.ledger.ingest import reattribute as redo

    if not (files or reattribute or list_unattributed):
        raise click.UsageError("give FILES to ingest, or --reattribute / --unattributed")
    try:
        engine = open_engine(database_url)
        upgrade(engine)
        with session_factory(engine)() as session:
            if files:
                summary = ingest_files(session, list(files), kind=kind, hostname=hostname)
                if summary.added:
                    audit_record(
                        session,
                        local_actor(),
                        "evidence.ingest",
                        "evidence",
                        None,
                        {"files": [str(f) for f in files], "summary": summary.line()},
                    )
                session.commit()
                click.echo(summary.line(), err=True)
            if reattribute:
                changed = redo(session)
                session.commit()
                click.echo(f"re-attributed: {changed} evidence row(s) changed", err=True)
            if list_unattributed:
                rows = unattributed_evidence(session, limit=limit)
                for row in rows:
                    if fmt == "jsonl":
                        record = {
                            "id": row.id,
                            "detector": row.detector,
                            "verdict": row.verdict,
                            "kind": row.kind,
                            "entity": row.entity,
                            "region_code": row.region_code,
                            "attribution": row.attribution,
                            "source": row.source,
                        }
                        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
                    else:
                        click.echo(
                            f"{row.id:>8}  {row.detector:<5}  {row.verdict:<15}  "
                            f"{row.entity}  ({row.attribution})"
                        )
                if fmt == "table" and not rows:
                    click.echo("no unattributed evidence", err=True)
    except MinewatchError as exc:
        fail(ctx, exc)
