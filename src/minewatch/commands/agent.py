"""``minewatch agent``: inspect this host once, or keep reporting to a minewatch server.

Example::

    minewatch agent scan                          # processes, sockets, GPUs, mounted disks
    minewatch agent scan --path /srv --format jsonl
    MINEWATCH_TOKEN=mw_... minewatch agent run --server https://minewatch.example:8443
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from minewatch.errors import InputError, MinewatchError
from minewatch.findings import Verdict
from minewatch.host.model import HostProbe, ProbeOptions
from minewatch.host.scan import HostScanResult, load_builtin_probes, scan_host
from minewatch.i18n import message
from minewatch.output import FORMATS, write_host_findings

__all__ = ["agent"]


@click.group()
def agent() -> None:
    """Inspect hosts for miners, renamed miners, GPU mining and storage mining.

    检查主机上的挖矿进程、改名的挖矿程序、GPU 挖矿与存储挖矿（Chia、Filecoin）。
    Read-only; runs without root and says what it could not see.
    """


F = TypeVar("F", bound=Callable[..., Any])


def _probe_options(func: F) -> F:
    options = [
        click.option(
            "--path",
            "paths",
            multiple=True,
            type=click.Path(file_okay=False, path_type=Path),
            help="Directory to inspect for plots, sectors and miner files (repeatable; "
            "default: the mounted disk file systems). 要检查的目录。",
        ),
        click.option(
            "--probe",
            "probe_names",
            multiple=True,
            metavar="NAME",
            help="Run only these probes (repeatable; see `minewatch agent probes`).",
        ),
        click.option(
            "--sample-seconds",
            type=click.FloatRange(0, 60),
            default=2.0,
            show_default=True,
            help="How long CPU use is measured.",
        ),
        click.option(
            "--gpu-seconds",
            type=click.FloatRange(2, 600),
            default=10.0,
            show_default=True,
            help="How long GPU telemetry is sampled (only where NVIDIA GPUs exist).",
        ),
        click.option(
            "--pool-ips",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            default=None,
            help="File of known pool IP addresses (one a line, # comments), e.g. a list pushed "
            "down by national monitoring; connections to them are evidence. 已知矿池地址清单。",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def read_pool_ips(path: Path | None) -> frozenset[str]:
    """The addresses listed in ``path`` (one a line, ``#`` comments), normalised."""
    if path is None:
        return frozenset()
    addresses = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read pool address list: {exc}") from exc
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            addresses.add(str(ipaddress.ip_address(text)))
        except ValueError:
            raise InputError(
                f"{path}:{number}: {text!r} is not an IP address (one IPv4/IPv6 address a line)"
            ) from None
    return frozenset(addresses)


def _probes(names: tuple[str, ...], options: ProbeOptions) -> list[HostProbe]:
    registry = load_builtin_probes()
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise click.BadParameter(
            f"unknown probe(s) {', '.join(unknown)}; known: {', '.join(registry)}",
            param_hint="--probe",
        )
    return [registry[name].from_options(options) for name in names or tuple(registry)]


def run_scan(
    paths: tuple[Path, ...],
    probe_names: tuple[str, ...],
    sample_seconds: float,
    gpu_seconds: float = 10.0,
    pool_ips: Path | None = None,
) -> HostScanResult:
    """One scan with the CLI's options (shared by ``agent scan`` and ``agent run``)."""
    return scan_host(
        list(paths),
        probes=_probes(
            probe_names,
            ProbeOptions(
                sample_seconds=sample_seconds,
                gpu_seconds=gpu_seconds,
                pool_addresses=read_pool_ips(pool_ips),
            ),
        ),
        sample_seconds=sample_seconds,
    )


@agent.command("scan")
@_probe_options
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table for people, jsonl/json for tools.",
)
@click.option("-q", "--quiet", is_flag=True, help="No summary and no blind spots on stderr.")
@click.pass_context
def agent_scan(
    ctx: click.Context,
    paths: tuple[Path, ...],
    probe_names: tuple[str, ...],
    sample_seconds: float,
    gpu_seconds: float,
    pool_ips: Path | None,
    fmt: str,
    quiet: bool,
) -> None:
    """Inspect this host once and print the findings.

    \b
    Each finding: verdict (mining | storage-mining | blockchain-node), kind (e.g. xmrig,
    chia-plot, filecoin-sector), entity (pid and executable, or path), coin, confidence,
    evidence; storage findings add capacity_bytes and count.
    Exit status: 0 when the scan ran (with or without findings), 1 when it could not run.
    """
    lang: str = ctx.obj["lang"]
    try:
        result = run_scan(paths, probe_names, sample_seconds, gpu_seconds, pool_ips)
    except MinewatchError as exc:
        click.echo(message("problem", lang, problem=exc), err=True)
        ctx.exit(1)
    write_host_findings(result.findings, sys.stdout, fmt, lang)
    if not quiet:
        for spot in result.blind_spots:
            click.echo(message("blind_spot", lang, what=spot), err=True)
        verdicts = [f.verdict for f in result.findings]
        click.echo(
            message(
                "host_summary",
                lang,
                host=result.hostname,
                mining=verdicts.count(Verdict.MINING),
                storage=verdicts.count(Verdict.STORAGE_MINING),
                nodes=verdicts.count(Verdict.BLOCKCHAIN_NODE),
                blind=len(result.blind_spots),
            ),
            err=True,
        )


@agent.command("probes")
def agent_probes() -> None:
    """List the host probes. 列出主机检查项。"""
    for name, cls in load_builtin_probes().items():
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        click.echo(f"{name:<18} {doc}")


@agent.command("run")
@_probe_options
@click.option("--server", required=True, metavar="URL", help="minewatch API, e.g. https://mw:8443")
@click.option(
    "--token",
    "token_value",
    default=None,
    help="API token. Visible to local users in `ps`: prefer MINEWATCH_TOKEN or --token-file.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File holding the API token (one line, readable only by the agent's user).",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=10),
    default=900.0,
    show_default=True,
    help="Seconds between scans.",
)
@click.option(
    "--iterations",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after this many scans (default: run until stopped).",
)
@click.option(
    "--spool",
    "spool_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where reports wait while the server is unreachable (default: /var/lib/minewatch/spool "
    "as root, else ~/.local/state/minewatch/spool).",
)
@click.option(
    "--ca-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="CA bundle that signed the server's certificate (replaces the system trust store).",
)
@click.option(
    "--allow-insecure-http",
    is_flag=True,
    help="Allow http:// to a non-loopback server (token and findings travel in clear text).",
)
@click.pass_context
def agent_run(
    ctx: click.Context,
    paths: tuple[Path, ...],
    probe_names: tuple[str, ...],
    sample_seconds: float,
    gpu_seconds: float,
    pool_ips: Path | None,
    server: str,
    token_value: str | None,
    token_file: Path | None,
    interval: float,
    iterations: int | None,
    spool_dir: Path | None,
    ca_file: Path | None,
    allow_insecure_http: bool,
) -> None:
    """Scan this host every --interval seconds and deliver the reports to --server.

    定期检查本机并将结果上报服务器；服务器不可达时结果保存在本地，恢复后补发，不丢失、不重复。

    Reports are written to the spool before they are sent and deleted only once the server
    confirmed them; each carries an id the server uses to store it exactly once.
    Exit status: 0 when stopped normally, 1 on a configuration or authentication problem.
    """
    import logging

    from minewatch.host.agent_loop import run_agent
    from minewatch.host.delivery import ReportSender, load_token
    from minewatch.host.spool import HostReport, Spool

    lang: str = ctx.obj["lang"]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if token_value is not None:
        click.echo(message("token_in_argv", lang), err=True)

    def scan() -> HostReport:
        result = run_scan(paths, probe_names, sample_seconds, gpu_seconds, pool_ips)
        return HostReport.create(
            result.hostname,
            result.findings,
            result.blind_spots,
            scanned_at_ns=int(result.scanned_at.timestamp() * 1e9),
        )

    try:
        token = load_token(token_value, token_file)
        with (
            Spool(spool_dir) as spool,
            ReportSender(
                server, token, ca_file=ca_file, allow_insecure_http=allow_insecure_http
            ) as sender,
        ):
            summary = run_agent(scan, sender, spool, interval, iterations)
    except MinewatchError as exc:
        click.echo(message("problem", lang, problem=exc), err=True)
        ctx.exit(1)
    click.echo(
        message(
            "agent_summary",
            lang,
            scans=summary.scans,
            delivered=summary.delivered,
            pending=summary.pending,
        ),
        err=True,
    )
