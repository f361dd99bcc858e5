"""``minewatch export ocsf|stix`` (evidence for other security tools) and ``minewatch assess``
(what the evidence says per tenant and data centre).

Example::

    minewatch export ocsf -o findings.json --region 330100     # OCSF Detection Findings
    minewatch export stix -o bundle.json --tenant 3             # a STIX 2.1 bundle
    minewatch assess --min-score 0.5                            # strongest first, with reasons
    minewatch assess --per tenant -f jsonl                      # one JSON line per tenant
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

from minewatch.atomic import atomic_text
from minewatch.commands.common import fail
from minewatch.errors import InputError, MinewatchError
from minewatch.ledger.assessment import CLASSES

if TYPE_CHECKING:
    from minewatch.ledger.assessment import Assessment

__all__ = ["assess", "export"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _selection(func: _F) -> _F:
    """The options every command here shares: database and what to read."""
    options = [
        click.option(
            "--db",
            "database_url",
            default=None,
            metavar="URL",
            help="SQLAlchemy URL (default: MINEWATCH_DATABASE_URL, else a SQLite file in the "
            "user's data directory).",
        ),
        click.option(
            "--region",
            default="000000",
            show_default=True,
            metavar="CODE",
            help="Only evidence inside this region's subtree (6-digit code; 000000 = all, "
            "including unattributed evidence).",
        ),
        click.option("--tenant", "tenant_id", type=click.IntRange(min=1), help="Tenant id."),
        click.option(
            "--data-centre", "data_centre_id", type=click.IntRange(min=1), help="Data centre id."
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@contextmanager
def _output(path: Path) -> Iterator[TextIO]:
    """stdout for ``-``, else a file replaced atomically once everything was written."""
    if str(path) == "-":
        yield sys.stdout
        return
    try:
        with atomic_text(path) as handle:
            yield handle
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc


_OUT = click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="File to write (replaced only once complete); - for standard output.",
)
_DETECTOR = click.option(
    "--detector",
    type=click.Choice(["net", "power", "host"]),
    default=None,
    help="Only this detector's evidence.",
)


@click.group("export")
def export() -> None:
    """Export ledger evidence for other security tools: OCSF Detection Findings (class 2004)
    or a STIX 2.1 bundle, mapped to MITRE ATT&CK T1496 Resource Hijacking.

    导出台账证据：OCSF 检测发现（2004 类）或 STIX 2.1 数据包。
    """


def _export(
    ctx: click.Context,
    fmt: str,
    database_url: str | None,
    region: str,
    tenant_id: int | None,
    data_centre_id: int | None,
    detector: str | None,
    out: Path,
) -> None:
    from minewatch.ledger.db import open_engine, session_factory, upgrade
    from minewatch.ledger.exports import EvidenceSelection, iter_evidence
    from minewatch.ledger.exports.ocsf import write_ocsf
    from minewatch.ledger.exports.stix import write_stix

    try:
        selection = EvidenceSelection(
            scope=region, tenant_id=tenant_id, data_centre_id=data_centre_id, detector=detector
        )
        engine = open_engine(database_url)
        try:
            upgrade(engine)
            with session_factory(engine)() as session, _output(out) as handle:
                rows = iter_evidence(session, selection)
                if fmt == "ocsf":
                    done = f"{write_ocsf(rows, handle)} OCSF Detection Finding(s)"
                else:
                    done = f"STIX 2.1 bundle, {write_stix(rows, handle).line()}"
        finally:
            engine.dispose()
    except MinewatchError as exc:
        fail(ctx, exc)
        return
    click.echo(f"{done} written to {out}", err=True)


@export.command("ocsf")
@_selection
@_DETECTOR
@_OUT
@click.pass_context
def export_ocsf(
    ctx: click.Context,
    database_url: str | None,
    region: str,
    tenant_id: int | None,
    data_centre_id: int | None,
    detector: str | None,
    out: Path,
) -> None:
    """Write the evidence as a JSON array of OCSF 1.3.0 Detection Findings, one per row.

    \b
    Each finding: class_uid 2004, activity Create (type_uid 200401), time and first/last
    seen in ms, severity from the verdict, confidence 0-100, finding_info with the evidence
    fingerprint as uid and ATT&CK T1496 / TA0040, the endpoints, process, file or meter
    reading under evidences, and the tenant, data centre and region under resources.
    Exit status: 0 written; 1 bad option value or unwritable file.
    """
    _export(ctx, "ocsf", database_url, region, tenant_id, data_centre_id, detector, out)


@export.command("stix")
@_selection
@_DETECTOR
@_OUT
@click.pass_context
def export_stix(
    ctx: click.Context,
    database_url: str | None,
    region: str,
    tenant_id: int | None,
    data_centre_id: int | None,
    detector: str | None,
    out: Path,
) -> None:
    """Write the evidence as a STIX 2.1 bundle.

    \b
    The bundle holds minewatch's identity, the attack pattern T1496 Resource Hijacking, and
    per evidence row the observables (addresses, domain, network traffic, process, file,
    directory) in an observed-data and, for mining, a sighting of the attack pattern.
    Observable ids are the deterministic UUIDv5 ids of the STIX specification.
    Exit status: 0 written; 1 bad option value or unwritable file.
    """
    _export(ctx, "stix", database_url, region, tenant_id, data_centre_id, detector, out)


def _table_line(row: Assessment) -> str:
    tenant = row.tenant_name or "(no tenant)"
    site = row.data_centre_name or "(all data centres)"
    region = f" ({row.region_code})" if row.region_code else ""
    return (
        f"{row.score:5.3f}  {row.mining_class:<16}  {tenant} / {site}{region}  "
        f"[{row.evidence_count} evidence]"
    )


@click.command("assess")
@_selection
@click.option(
    "--per",
    type=click.Choice(["site", "tenant"]),
    default="site",
    show_default=True,
    help="One assessment per tenant and data centre, or per tenant across its data centres.",
)
@click.option(
    "--min-score",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Leave out weaker assessments.",
)
@click.option("--class", "mining_class", type=click.Choice(CLASSES), help="Only this class.")
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["table", "jsonl"]),
    default="table",
    show_default=True,
    help="A table with the reasons, or one JSON object per line.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Most rows shown.")
@click.pass_context
def assess(
    ctx: click.Context,
    database_url: str | None,
    region: str,
    tenant_id: int | None,
    data_centre_id: int | None,
    per: str,
    min_score: float,
    mining_class: str | None,
    fmt: str,
    limit: int | None,
) -> None:
    """Assess tenants from their attributed evidence: score, class and reasons.

    \b
    Network, power and host evidence corroborate each other: each family counts with its
    strongest finding, families combine as independent evidence, one family alone is capped
    at 0.85, and a power screen that found the load normal lowers an ASIC-farm score.
    Classes: pow-asic, pow-gpu, pow-cpu, pow-unknown, storage-chia, storage-filecoin; lawful
    look-alikes blockchain-node, ai-training, big-data, cloud; none. Every reason names the
    evidence ids it rests on.
    评估租户：得分、类别与依据。
    """
    from minewatch.ledger.assessment import assess as run_assessment
    from minewatch.ledger.db import open_engine, session_factory, upgrade
    from minewatch.ledger.regions import check_code

    if per == "tenant" and data_centre_id is not None:
        raise click.UsageError("--data-centre needs --per site")
    try:
        check_code(region)
        engine = open_engine(database_url)
        try:
            upgrade(engine)
            with session_factory(engine)() as session:
                rows = run_assessment(
                    session,
                    scope=region,
                    tenant_id=tenant_id,
                    data_centre_id=data_centre_id,
                    per_site=per == "site",
                )
        finally:
            engine.dispose()
    except MinewatchError as exc:
        fail(ctx, exc)
        return
    rows = [
        r
        for r in rows
        if r.score >= min_score and (mining_class is None or r.mining_class == mining_class)
    ][:limit]
    for row in rows:
        if fmt == "jsonl":
            sys.stdout.write(json.dumps(row.to_dict(), ensure_ascii=False) + "\n")
            continue
        click.echo(_table_line(row))
        for reason in row.reasons:
            cited = ", ".join(f"#{i}" for i in reason.evidence_ids)
            click.echo(f"        - {reason.text}" + (f" [{cited}]" if cited else ""))
    if fmt == "table" and not rows:
        click.echo("no assessments: no attributed evidence matches", err=True)
