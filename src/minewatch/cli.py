"""The ``minewatch`` command: one entry point, one sub-command per job.

Exit status: 0 when the run worked (with or without findings), 1 when some input could not be
read (the other inputs are still scanned and reported), 2 for usage errors.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import click

from minewatch import __version__
from minewatch.atomic import atomic_text
from minewatch.commands import agent as agent_commands
from minewatch.commands import cases as case_commands
from minewatch.commands import collect as collect_commands
from minewatch.commands import export as export_commands
from minewatch.commands import flows as flow_commands
from minewatch.commands import ingest as ingest_commands
from minewatch.commands import ledger_admin
from minewatch.commands import probe as probe_commands
from minewatch.commands import report as report_commands
from minewatch.commands import server as server_commands
from minewatch.commands import train as train_commands
from minewatch.commands import watch as watch_commands
from minewatch.errors import MinewatchError
from minewatch.findings import Verdict
from minewatch.i18n import LANGUAGES, detect_language, message
from minewatch.net.capture.decode import PacketHeaders
from minewatch.net.recognisers import RECOGNISERS, RecogniserSet
from minewatch.net.scan import collect_capture_files, disk_size, scan_paths
from minewatch.output import FORMATS, write_findings
from minewatch.sample import power_sample, sample_capture

__all__ = ["main"]

EXIT_OK, EXIT_INPUT, EXIT_USAGE = 0, 1, 2


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="minewatch")
@click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    default=None,
    help="Language of messages (default: MINEWATCH_LANG or the locale). 界面语言。",
)
@click.pass_context
def cli(ctx: click.Context, lang: str | None) -> None:
    """Find cryptocurrency mining hidden in data-centre traffic, and tell it from lawful
    blockchain nodes.

    发现隐藏在数据中心流量中的虚拟货币挖矿活动，并与合法区块链节点区分。

    \b
    Start with:
      minewatch scan --sample               scan the bundled sample capture
      minewatch scan capture.pcap dir/      scan files and directories
      minewatch scan -f jsonl x.pcap.gz     one JSON finding per line
      minewatch recognisers                 what can be recognised
    """
    ctx.obj = {"lang": detect_language(lang)}


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    """stdout, or a file replaced atomically once everything was written."""
    if path is None:
        yield sys.stdout
        return
    with atomic_text(path) as fh:
        yield fh


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--sample", is_flag=True, help="Also scan the bundled sample capture. 扫描内置样例。")
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table for people; jsonl (one finding per line) or json for programs.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write findings to FILE (atomically) instead of standard output.",
)
@click.option(
    "--verdict",
    type=click.Choice([str(v) for v in Verdict]),
    default=None,
    help="Only report findings with this verdict.",
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Drop findings less sure than this (0-1).",
)
@click.option(
    "--recognisers",
    "recogniser_names",
    default=None,
    metavar="NAME,...",
    help="Run only these recognisers (see `minewatch recognisers`).",
)
@click.option(
    "--behaviour/--no-behaviour",
    default=True,
    show_default=True,
    help="Also judge conversations no recogniser could read (TLS) by their flow behaviour.",
)
@flow_commands.model_option
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary on stderr.")
@click.pass_context
def scan(
    ctx: click.Context,
    paths: tuple[Path, ...],
    sample: bool,
    fmt: str,
    output: Path | None,
    verdict: str | None,
    min_confidence: float,
    recogniser_names: str | None,
    behaviour: bool,
    model_path: Path | None,
    quiet: bool,
) -> None:
    """Scan packet captures (pcap, pcapng, gzip; files or directories) for mining protocols
    and blockchain nodes, on any port.

    扫描抓包文件（pcap、pcapng、gzip；文件或目录），识别任意端口上的挖矿协议与区块链节点。

    \b
    Recognised: Stratum v1 (Bitcoin, Zcash dialects), EthereumStratum/1.0.0, eth-proxy,
    CryptoNote/XMRig stratum, getwork and getblocktemplate over HTTP, Stratum V2 (plain and
    Noise), and as lawful blockchain-node traffic: Bitcoin-family P2P, Ethereum devp2p,
    Monero Levin, libp2p (IPFS/Filecoin), Nano. Conversations no recogniser can read (Stratum
    over TLS) are judged by the flow-behaviour model (detector flow-behaviour, protocol
    stratum-tls), once observed for a few minutes.

    \b
    Each finding names the mining host (client_ip), the pool (server_ip:server_port), the
    protocol, the coin where the traffic shows it, a confidence and the evidence.
    Exit status: 0 when the scan worked, with or without findings; 1 when an input could
    not be read (the others are still scanned); 2 on usage errors.
    """
    lang: str = ctx.obj["lang"]
    inputs = list(paths) + ([sample_capture()] if sample else [])
    if not inputs:
        raise click.UsageError(message("no_input", lang))
    try:
        names = recogniser_names.split(",") if recogniser_names else None
        recognisers = RecogniserSet(names)
    except MinewatchError as exc:
        raise click.BadParameter(str(exc), param_hint="--recognisers") from None
    flow_model = None
    flow_tables: list[Any] = []
    on_headers = None
    if behaviour:
        from minewatch.net.flowrec.from_packets import records_from_headers

        try:
            flow_model = flow_commands.load_model_option(model_path)
        except MinewatchError as exc:
            raise click.BadParameter(str(exc), param_hint="--model") from None

        def on_headers(headers: PacketHeaders) -> None:
            flow_tables.append(records_from_headers(headers))

    show_progress = not quiet and sys.stderr.isatty()
    if show_progress:
        files, _ = collect_capture_files(inputs)
        total = sum(disk_size(f) for f in files)
        with click.progressbar(
            length=total, label=message("scanning", lang), file=sys.stderr, show_eta=True
        ) as bar:
            report = scan_paths(
                inputs, recognisers, lambda _p, size: bar.update(size), on_headers=on_headers
            )
    else:
        report = scan_paths(inputs, recognisers, on_headers=on_headers)
    if flow_model is not None and flow_tables:
        import pyarrow as pa

        from minewatch.net.behaviour.detect import detect_flows
        from minewatch.net.combine import combine_findings

        by_behaviour = detect_flows(pa.concat_tables(flow_tables), flow_model)
        report.findings = combine_findings(report.findings, by_behaviour)

    findings = [
        f
        for f in report.findings
        if f.confidence >= min_confidence and (verdict is None or str(f.verdict) == verdict)
    ]
    try:
        with _output(output) as out:
            write_findings(findings, out, fmt, lang)
            out.flush()
    except BrokenPipeError:
        # `minewatch scan ... | head`: the reader went away; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError as exc:
        click.echo(message("problem", lang, problem=f"{output}: {exc.strerror}"), err=True)
        ctx.exit(EXIT_INPUT)
    for problem in report.problems:
        click.echo(message("problem", lang, problem=problem), err=True)
    if not quiet:
        mining = sum(f.verdict == Verdict.MINING for f in findings)
        click.echo(
            message(
                "summary",
                lang,
                files=report.files,
                packets=report.packets,
                mining=mining,
                nodes=len(findings) - mining,
            ),
            err=True,
        )
    ctx.exit(EXIT_INPUT if report.problems else EXIT_OK)


@cli.group()
def power() -> None:
    """Screen electricity-meter data of large power users for hidden mining.

    筛查大电力用户的电表数据，发现隐藏的挖矿负荷。
    """


@power.command("screen")
@click.argument("readings", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--accounts",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="CSV/Parquet with account_id, contracted_kw, declared_business, region_code.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("power-screen.csv"),
    show_default=True,
    help="Result CSV: one row per account.",
)
@click.option(
    "--inspect-top",
    type=click.IntRange(min=1),
    default=None,
    help="Also write the N accounts to inspect first (by expected mining kW), as CSV and XLSX.",
)
@click.option("--sample", is_flag=True, help="Screen the bundled sample meter data. 使用内置样例。")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
@click.pass_context
def power_screen(
    ctx: click.Context,
    readings: Path | None,
    accounts: Path | None,
    out: Path,
    inspect_top: int | None,
    sample: bool,
    quiet: bool,
) -> None:
    """Screen every account of READINGS (CSV or Parquet, long form: account_id, ts with UTC
    offset, kw; optional kvar, ia, ib, ic) and write one verdict per account.

    按户输出结论（mining 挖矿 / suspect 可疑 / normal 正常）、得分、类型、开始时间、挖矿负荷与依据。

    \b
    Result columns: account_id, verdict (mining|suspect|normal), score (0-1), kind
    (asic|gpu|cpu|storage|unknown|none), onset (ISO-8601, when mining started inside the
    window), mining_kw, equivalent (S19-class units), explanation, mining_kwh, co2_t.
    Exit status: 0 when the screen ran; 1 when the input could not be used; 2 on usage errors.
    """
    from minewatch.power.screen import screen as run_screen
    from minewatch.power.screen import write_inspection_list, write_results

    lang: str = ctx.obj["lang"]
    if sample:
        readings, accounts = power_sample()
    if readings is None:
        raise click.UsageError("give READINGS or --sample")
    try:
        result = run_screen(readings, accounts)
        write_results(result, out)
        if inspect_top:
            listed = write_inspection_list(
                result,
                inspect_top,
                out.with_name(out.stem + "-inspect.csv"),
                out.with_name(out.stem + "-inspect.xlsx"),
            )
    except MinewatchError as exc:
        click.echo(message("problem", lang, problem=exc), err=True)
        ctx.exit(EXIT_INPUT)
    if not quiet:
        counts = result.counts()
        if result.summary is not None:
            for line in result.summary.lines():
                click.echo(line, err=True)
        click.echo(message("power_summary", lang, out=out, **counts), err=True)
        if inspect_top:
            click.echo(
                message("inspection_list", lang, n=listed, out=out.stem + "-inspect.xlsx"), err=True
            )


cli.add_command(server_commands.db)
cli.add_command(server_commands.token)
cli.add_command(server_commands.api)
cli.add_command(agent_commands.agent)
cli.add_command(ledger_admin.audit)
cli.add_command(ledger_admin.regions)
cli.add_command(ingest_commands.registry)
cli.add_command(ingest_commands.ingest)
cli.add_command(case_commands.case)
cli.add_command(export_commands.export)
cli.add_command(export_commands.assess)
cli.add_command(report_commands.report)
cli.add_command(flow_commands.flows)
cli.add_command(collect_commands.collect)
cli.add_command(probe_commands.probe)
cli.add_command(train_commands.train)
cli.add_command(watch_commands.watch)


@cli.command("recognisers")
def list_recognisers() -> None:
    """List the protocol recognisers and the protocols each reports. 列出协议识别器。"""
    for name, cls in RECOGNISERS.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        click.echo(f"{name:<14} {', '.join(cls.protocols):<34} {doc}")


def main() -> None:
    """Console entry point."""
    try:
        cli.main(prog_name="minewatch", standalone_mode=True)
    except MinewatchError as exc:  # pragma: no cover - every command handles its own
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INPUT)
