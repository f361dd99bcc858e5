"""``minewatch case``: read cases, move them, list what is overdue, export the tariff list.

The command line acts as a local operator with the admin role (whoever can open the database is
trusted with it), limited to the subtree of ``--region``; every change is audited under
``cli:<login name>`` with the reason given.

Example::

    minewatch case list --region 330000 --state rectification
    minewatch case show 42
    minewatch case move 42 inspection --reason "site visit" --inspector ins-hz --on 2026-03-02
    minewatch case move 42 rectification --reason "exit plan agreed" \\
        --plan stop-mining=2026-04-01 --plan remove-equipment=2026-05-01 \\
        --plan cut-supply=2026-06-01
    minewatch case overdue --region 330000              # exit 0; one line per overdue item
    minewatch case tariffs --region 510000 --out tariffs-sc.csv
    minewatch case tariffs --region 330000 --surcharge 1.00 --out tariffs-zj.xlsx
    minewatch case push-ip-list ndrc-w48.csv --name NDRC-2026-W48   # national list, pushed down
    minewatch case labels --region 330000 --out labels.csv   # inspections teach the flow model
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from minewatch.commands.common import database_option, existing_ledger, fail
from minewatch.errors import InputError, MinewatchError

__all__ = ["case"]

_REGION_OPTION = click.option(
    "--region",
    "region_code",
    default="000000",
    show_default=True,
    metavar="CODE",
    help="Six-digit region code: only cases inside its subtree. 行政区划代码。",
)


def _date(value: str | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"{name} {value!r} is not a date (YYYY-MM-DD)") from exc


@click.group()
def case() -> None:
    """Cases from lead to closure: read, move, overdue items, tariff list.

    案件：从线索到办结；查看、流转、逾期提醒、差别电价名单。
    """


@case.command("list")
@database_option
@_REGION_OPTION
@click.option("--state", default=None, help="Only cases in this state (lead ... closed).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.pass_context
def case_list(
    ctx: click.Context, database_url: str | None, region_code: str, state: str | None, limit: int
) -> None:
    """One line per case, newest first: id, state, region, project type, title."""
    from minewatch.ledger.cases import PROJECT_TYPES, list_cases
    from minewatch.ledger.db import session_factory

    try:
        engine = existing_ledger(database_url, "cases")
        with session_factory(engine)() as session:
            count, rows = list_cases(session, region_code, state=state, limit=limit)
    except (MinewatchError, SQLAlchemyError) as exc:
        fail(ctx, exc)
    for row in rows:
        kind = PROJECT_TYPES.get(row.project_type or "", "-")
        click.echo(f"{row.id}\t{row.state}\t{row.region_code}\t{kind}\t{row.title}")
    click.echo(f"{len(rows)} of {count} case(s)", err=True)


@case.command("show")
@click.argument("case_id", type=click.IntRange(min=1))
@database_option
@_REGION_OPTION
@click.pass_context
def case_show(ctx: click.Context, case_id: int, database_url: str | None, region_code: str) -> None:
    """A case as JSON: ledger fields, milestones and history."""
    from minewatch.ledger.cases import PROJECT_TYPES, case_snapshot, get_case
    from minewatch.ledger.db import session_factory

    try:
        engine = existing_ledger(database_url, "cases")
        with session_factory(engine)() as session:
            row = get_case(session, region_code, case_id)
            shown = {
                "id": row.id,
                **case_snapshot(row),
                "project_type_label": PROJECT_TYPES.get(row.project_type or ""),
                "evidence_ids": [e.id for e in row.evidence],
                "ip_addresses": list(row.ip_addresses),
                "milestones": [
                    {
                        "id": m.id,
                        "kind": m.kind,
                        "due_on": m.due_on.isoformat(),
                        "done_on": m.done_on.isoformat() if m.done_on else None,
                    }
                    for m in row.milestones
                ],
                "transitions": [
                    {
                        "from": t.from_state,
                        "to": t.to_state,
                        "at": t.at.isoformat(),
                        "actor": t.actor,
                        "reason": t.reason,
                    }
                    for t in row.transitions
                ],
            }
    except (MinewatchError, SQLAlchemyError) as exc:
        fail(ctx, exc)
    click.echo(json.dumps(shown, ensure_ascii=False, indent=2))


@case.command("move")
@click.argument("case_id", type=click.IntRange(min=1))
@click.argument("to")
@database_option
@_REGION_OPTION
@click.option("--reason", required=True, help="Why (goes to the audit log).")
@click.option("--inspector", default=None, help="To inspection: the inspector's username.")
@click.option("--on", "scheduled_on", default=None, help="To inspection: date (YYYY-MM-DD).")
@click.option("--deadline", default=None, help="To rectification, new project: shutdown date.")
@click.option(
    "--plan",
    multiple=True,
    metavar="STEP=DATE",
    help="To rectification, existing project: stop-mining=, remove-equipment=, cut-supply=.",
)
@click.option("--order-ref", default=None, help="Number of the order or plan document.")
@click.pass_context
def case_move(
    ctx: click.Context,
    case_id: int,
    to: str,
    database_url: str | None,
    region_code: str,
    reason: str,
    inspector: str | None,
    scheduled_on: str | None,
    deadline: str | None,
    plan: tuple[str, ...],
    order_ref: str | None,
) -> None:
    """Move case CASE_ID to state TO (verification, inspection, confirmed, cleared,
    rectification, closed). Exit 1 with the reason when the move is not allowed."""
    from minewatch.ledger.audit import local_actor
    from minewatch.ledger.cases import LocalOperator, transition
    from minewatch.ledger.db import session_factory

    try:
        steps: dict[str, dt.date | str] = {}
        for item in plan:
            step, sep, value = item.partition("=")
            if not sep:
                raise InputError(f"--plan {item!r}: write STEP=YYYY-MM-DD")
            steps[step.strip()] = value.strip()
        actor = LocalOperator(local_actor(), role="admin", region_code=region_code)
        engine = existing_ledger(database_url, "cases")
        with session_factory(engine)() as session:
            moved = transition(
                session,
                actor,
                case_id,
                to,
                reason,
                inspector=inspector,
                scheduled_on=scheduled_on,
                deadline=deadline,
                plan=steps or None,
                order_ref=order_ref,
            )
            session.commit()
            state = moved.state
    except (MinewatchError, SQLAlchemyError) as exc:
        fail(ctx, exc)
    click.echo(f"case {case_id}: {state}")


@case.command("overdue")
@database_option
@_REGION_OPTION
@click.option(
    "--today",
    default=None,
    metavar="YYYY-MM-DD",
    help="Date to judge by (default: today in China Standard Time).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "jsonl"]),
    default="text",
    show_default=True,
)
@click.pass_context
def case_overdue(
    ctx: click.Context, database_url: str | None, region_code: str, today: str | None, fmt: str
) -> None:
    """Overdue rectification steps, shutdown deadlines and inspections, most overdue first.

    Text lines: due date, days overdue, case id, region, item (with its Chinese name), title.
    Exit 0 whether or not anything is overdue (the count goes to stderr).
    """
    from minewatch.ledger.cases import china_today, overdue
    from minewatch.ledger.db import session_factory
    from minewatch.ledger.regions import check_code

    try:
        check_code(region_code)
        day = _date(today, "--today") or china_today()
        engine = existing_ledger(database_url, "cases")
        with session_factory(engine)() as session:
            alerts = overdue(session, day, region_code)
    except (MinewatchError, SQLAlchemyError) as exc:
        fail(ctx, exc)
    for alert in alerts:
        if fmt == "jsonl":
            click.echo(json.dumps(alert.to_dict(), ensure_ascii=False))
        else:
            click.echo(
                f"{alert.due_on.isoformat()}\t{alert.days_overdue}d\t{alert.case_id}\t"
                f"{alert.region_code}\t{alert.kind} ({alert.label})\t{alert.title}"
            )
    click.echo(f"{len(alerts)} overdue item(s) in {region_code} on {day.isoformat()}", err=True)


@case.command("tariffs")
@database_option
@click.option(
    "--region",
    "region_code",
    required=True,
    metavar="CODE",
    help="Six-digit region code whose confirmed cases are listed.",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write: .csv (UTF-8 with BOM, for Excel) or .xlsx.",
)
@click.option(
    "--surcharge",
    default=None,
    metavar="YUAN",
    help="Surcharge in yuan per kWh (default: the figure the province published; required "
    "where minewatch knows none).",
)
@click.pass_context
def case_tariffs(
    ctx: click.Context,
    database_url: str | None,
    region_code: str,
    out: Path,
    surcharge: str | None,
) -> None:
    """Write the punitive-tariff list for the grid company: one row per power account of each
    confirmed case's tenant, with start (confirmation) and end (closure) dates and the surcharge.

    The file is replaced only once complete. Cases that cannot be billed are named on stderr.
    """
    from minewatch.ledger.db import session_factory
    from minewatch.ledger.regions import check_code
    from minewatch.ledger.tariffs import tariff_list, write_tariffs

    try:
        check_code(region_code)
        engine = existing_ledger(database_url, "cases")
        with session_factory(engine)() as session:
            result = tariff_list(session, region_code, surcharge=surcharge)
        write_tariffs(result.rows, out)
    except (MinewatchError, SQLAlchemyError) as exc:
        fail(ctx, exc)
    except OSError as exc:  # the destination cannot be written (no folder, no permission)
        fail(ctx, InputError(f"{out}: {exc.strerror or exc}"))
    for case_id, why in result.skipped:
        click.echo(f"case {case_id} not billed: {why}", err=True)
    cases = len({case_id for row in result.rows for case_id in row.case_ids})
    click.echo(f"{len(result.rows)} account(s) from {cases} case(s) written to {out}", err=True)


@case.command("push-ip-list")
@click.argument("list_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", "list_name", required=True, help="The list's name, e.g. NDRC-2026-W48.")
@database_option
@_REGION_OPTION
@click.option("--reason", default="", help="Why (goes to the audit log; default: the name).")
@click.pass_context
def case_push_ip_list(
    ctx: click.Context,
    list_file: Path,
    list_name: str,
    database_url: str | None,
    region_code: str,
    reason: str,
) -> None:
    """Push an IP list down: one ip-list lead per tenant/data centre in its own region.

    下发IP清单：按登记的地址段归属到租户、数据中心和所在区县，每个租户立一条线索。

    LIST_FILE is a CSV with an ``ip`` column or one address per line. Addresses the registry
    cannot place stay in one lead at --region; addresses outside --region are refused and
    listed. All or nothing; importing the same list again adds nothing.
    """
    from minewatch.ledger.audit import local_actor
    from minewatch.ledger.cases import LocalOperator
    from minewatch.ledger.db import session_factory
    from minewatch.ledger.ip_lists import push_down_ip_list, read_ip_list
    from minewatch.ledger.regions import check_code

    try:
        check_code(region_code)
        try:
            with list_file.open(encoding="utf-8-sig") as stream:
                addresses = read_ip_list(stream, str(list_file))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{list_file}: cannot read: {exc}") from exc
        actor = LocalOperator(local_actor(), role="admin", region_code=region_code)
        engine = existing_ledger(database_url, "cases")
        with session_factory(engine)() as session:
            result = push_down_ip_list(session, actor, list_name, addresses, reason=reason)
            session.commit()
    except (MinewatchError, SQLAlchemyError) as exc:
        fail(ctx, exc)
    for lead in result.leads:
        state = "new" if lead.created else "exists"
        click.echo(f"{lead.case_id}\t{lead.region_code}\t{lead.addresses}\t{state}\t{lead.title}")
    for address in result.outside_region:
        click.echo(f"refused (outside {region_code}): {address}", err=True)
    click.echo(
        f"{result.created} new lead(s), {len(result.leads) - result.created} already open; "
        f"{result.unplaced} address(es) not in the registry, "
        f"{len(result.outside_region)} outside {region_code}, {result.duplicates} repeated",
        err=True,
    )


@case.command("labels")
@database_option
@_REGION_OPTION
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="CSV file to write, for `minewatch train --labels`.",
)
@click.pass_context
def case_labels_command(
    ctx: click.Context, database_url: str | None, region_code: str, out: Path
) -> None:
    """Write flow labels from decided cases: confirmed → mining, cleared → benign.

    从已办结案件导出流量标签（核实为挖矿 → mining，排除 → benign），用于重新训练模型。

    Retrain the flow-behaviour model on them so a false alarm an inspection cleared is not
    raised again: minewatch train --flows CAPTURES... --labels labels.csv --out model.json
    """
    import csv

    from minewatch.atomic import atomic_text
    from minewatch.ledger.db import session_factory
    from minewatch.ledger.regions import check_code
    from minewatch.ledger.training_labels import LABEL_COLUMNS, case_labels
    from minewatch.spreadsheet import csv_cell

    try:
        check_code(region_code)
        engine = existing_ledger(database_url, "cases")
        with session_factory(engine)() as session:
            result = case_labels(session, region_code)
        try:
            with atomic_text(out) as stream:
                writer = csv.writer(stream)
                writer.writerow(LABEL_COLUMNS)
                writer.writerows([csv_cell(v) for v in label.row()] for label in result.labels)
        except OSError as exc:
            raise InputError(f"{out}: cannot write: {exc.strerror}") from exc
    except (MinewatchError, SQLAlchemyError) as exc:
        fail(ctx, exc)
    mining = sum(1 for label in result.labels if label.label == "mining")
    click.echo(
        f"{len(result.labels)} label(s) ({mining} mining, {len(result.labels) - mining} benign) "
        f"to {out}; {result.contradictory} contradictory left out, "
        f"{result.without_network_evidence} decided case(s) without network evidence",
        err=True,
    )
