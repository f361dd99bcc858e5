"""``minewatch report``: the weekly clear-to-zero report and the ledger file of a region.

Both only read the ledger. Column headers follow ``--lang`` (English or Chinese); files are
replaced only once complete.

Example::

    minewatch report weekly --region 330000 --week 2026-W48           # a table per city
    minewatch --lang zh report weekly --region 330100 --format csv --out week48.csv
    minewatch report weekly --region 000000 --format jsonl             # one line per province
    minewatch report ledger --region 330000 --out ledger-zj.xlsx       # the 台账 for Excel
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from minewatch.atomic import atomic_write_bytes
from minewatch.commands.common import database_option, existing_ledger, fail, language
from minewatch.errors import InputError, MinewatchError
from minewatch.i18n import message

__all__ = ["report"]

_FORMATS = ("table", "csv", "jsonl")


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, *, right: bool) -> str:
    gap = " " * max(width - _width(text), 0)
    return gap + text if right else text + gap


def _cells(values: dict[str, object]) -> list[str]:
    from minewatch.ledger.weekly import REPORT_FIELDS

    formats = {"kw_retired": "{:,.1f}", "kwh_retired": "{:,.0f}", "co2_t": "{:,.2f}"}
    formats["factor_t_per_mwh"] = "{:.4f}"
    out = []
    for name in REPORT_FIELDS:
        value = values[name]
        if value is None:
            out.append("")
        elif name in formats:
            out.append(formats[name].format(value))
        else:
            out.append(str(value))
    return out


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(_width(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = []
    for row in [headers, *rows]:
        cells = [
            _pad(cell, width, right=index >= 2)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


@click.group()
def report() -> None:
    """Reports of a region: the weekly clear-to-zero report and the ledger file.

    报表：清零周报与台账导出。
    """


@report.command("weekly")
@database_option
@click.option(
    "--region",
    "region_code",
    required=True,
    metavar="CODE",
    help="Six-digit region code: the report covers its subtree, a row per child region. "
    "行政区划代码。",
)
@click.option(
    "--week",
    default=None,
    metavar="YYYY-Www",
    help="ISO week, e.g. 2026-W48 (Monday to Sunday, China time; default: this week). 周次。",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(_FORMATS),
    default="table",
    show_default=True,
    help="table (for people), csv (headers in the chosen language) or jsonl (stable keys).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file (replaced once complete) instead of standard output.",
)
@click.pass_context
def report_weekly(
    ctx: click.Context,
    database_url: str | None,
    region_code: str,
    week: str | None,
    output_format: str,
    out: Path | None,
) -> None:
    """The clear-to-zero report of a region for one week: cases open at the week's end, new,
    confirmed and exited (closed) in the week, cases with overdue items, and the kW, annual kWh
    and estimated CO₂ the closures retired -- a row per child region and the total.
    """
    from minewatch.ledger.db import session_factory
    from minewatch.ledger.regions import check_code
    from minewatch.ledger.weekly import REPORT_FIELDS, IsoWeek, weekly_report

    lang = language(ctx)
    try:
        check_code(region_code)
        chosen = IsoWeek.current() if week is None else IsoWeek.parse(week)
        engine = existing_ledger(database_url, "cases")
        with session_factory(engine)() as session:
            result = weekly_report(session, region_code, chosen)
        engine.dispose()
    except (MinewatchError, SQLAlchemyError) as exc:
        fail(ctx, exc)
    headers = [message(f"report_col_{name}", lang) for name in REPORT_FIELDS]
    total = {**result.total.to_dict(), "region_name": message("report_total", lang)}
    records = [row.to_dict() for row in result.rows]
    for record in records:  # cases booked at the region itself, not at a child region
        if record["region_code"] == region_code:
            own = message("report_own_level", lang, name=record["region_name"] or "")
            record["region_name"] = own.strip()
    if output_format == "table":
        title = message(
            "report_weekly_title",
            lang,
            region=" ".join(filter(None, [result.region_code, result.region_name])),
            week=chosen.label,
            monday=chosen.monday.isoformat(),
            sunday=chosen.sunday.isoformat(),
            year=result.factor_year,
        )
        body = title + "\n" + _table(headers, [_cells(r) for r in [*records, total]])
    elif output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(headers)
        for record in [*records, total]:
            writer.writerow("" if record[name] is None else record[name] for name in REPORT_FIELDS)
        body = buffer.getvalue()
    else:
        lines = [
            json.dumps(
                {"week": chosen.label, "scope": region_code, "total": False, **record},
                ensure_ascii=False,
            )
            for record in records
        ]
        lines.append(
            json.dumps(
                {
                    "week": chosen.label,
                    "scope": region_code,
                    "total": True,
                    **result.total.to_dict(),
                },
                ensure_ascii=False,
            )
        )
        body = "\n".join(lines) + "\n"
    if result.fell_back:
        click.echo(message("report_fell_back", lang, regions=", ".join(result.fell_back)), err=True)
    if out is None:
        click.echo(body, nl=False)
        return
    # In a file, CSV gets the byte-order mark that makes Excel read UTF-8 rather than GBK.
    data = body.encode("utf-8-sig" if output_format == "csv" else "utf-8")
    try:
        atomic_write_bytes(out, data)
    except OSError as exc:
        fail(ctx, InputError(f"{out}: {exc.strerror or exc}"))


@report.command("ledger")
@database_option
@click.option(
    "--region",
    "region_code",
    required=True,
    metavar="CODE",
    help="Six-digit region code whose cases are written. 行政区划代码。",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write: .csv (UTF-8 with BOM, for Excel) or .xlsx.",
)
@click.pass_context
def report_ledger(
    ctx: click.Context, database_url: str | None, region_code: str, out: Path
) -> None:
    """Write the case ledger (台账) of a region: enterprise, credit code, region, data centre,
    project type (增量/存量), class, scale, hashrate, power, annual energy, planned production
    date, state, dates and milestones -- one row per case, headers in English and Chinese.
    """
    from minewatch.ledger.db import session_factory
    from minewatch.ledger.ledger_export import export_ledger
    from minewatch.ledger.regions import check_code

    try:
        check_code(region_code)
        engine = existing_ledger(database_url, "cases")
        with session_factory(engine)() as session:
            written = export_ledger(session, region_code, out)
        engine.dispose()
    except (MinewatchError, SQLAlchemyError) as exc:
        fail(ctx, exc)
    except OSError as exc:  # the destination cannot be written (no folder, no permission)
        fail(ctx, InputError(f"{out}: {exc.strerror or exc}"))
    click.echo(message("report_ledger_written", language(ctx), n=written, out=out), err=True)
