"""``minewatch flows``: judge flow records (nfdump, Zeek, Suricata eve.json, Parquet, captures)
by their behaviour, with the flow-behaviour model.

Routers export flows, not packets; Zeek and Suricata summarise connections. None of these carry
payload, so mining in them can only be seen from how a conversation moves: one long, quiet,
steady dialogue of small messages, jobs pushed by the server and shares submitted by the client.

Example::

    minewatch flows /var/cache/nfdump/ -f jsonl
    minewatch flows conn.log ssl.log dns.log --model my-model.json
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from minewatch.errors import MinewatchError
from minewatch.output import FORMATS, write_findings

if TYPE_CHECKING:
    from minewatch.net.behaviour.model import FlowModel

__all__ = ["flows", "load_model_option", "model_option"]

model_option = click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Flow-behaviour model file from `minewatch train` (default: the bundled model).",
)


def load_model_option(path: Path | None) -> FlowModel:
    """The model a ``--model`` option names, or the bundled one."""
    from minewatch.net.behaviour.model import FlowModel

    return FlowModel.bundled() if path is None else FlowModel.load(path)


@click.command("flows")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table for people; jsonl or json for programs.",
)
@model_option
@click.option(
    "--min-confidence",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Report conversations at least this likely to be mining (default: the model's cut).",
)
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
@click.pass_context
def flows(
    ctx: click.Context,
    paths: tuple[Path, ...],
    fmt: str,
    model_path: Path | None,
    min_confidence: float | None,
    quiet: bool,
) -> None:
    """Find mining in flow records by behaviour alone (works on encrypted traffic).

    仅凭流量行为（无需载荷，适用于加密流量）从流记录中发现挖矿。

    \b
    PATHS: nfdump files, Zeek conn/ssl/dns logs (TSV or JSON), Suricata eve.json, FLOW_SCHEMA
    Parquet, packet captures; files or directories, gzip accepted.
    Exit status: 0 when the run worked, with or without findings; 1 when an input could not
    be read (the others are still judged); 2 on usage errors.
    """
    from minewatch.net.behaviour.detect import detect_flows
    from minewatch.net.flowrec.files import read_flow_files

    lang: str = ctx.obj["lang"] if ctx.obj else "en"
    try:
        model = load_model_option(model_path)
        records, problems = read_flow_files(paths)
        findings = detect_flows(records, model, threshold=min_confidence)
    except MinewatchError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    write_findings(findings, sys.stdout, fmt, lang)
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    if not quiet:
        click.echo(
            f"{records.num_rows} flow record(s): {len(findings)} mining conversation(s) "
            f"(model {model.model_id})",
            err=True,
        )
    ctx.exit(1 if problems else 0)
