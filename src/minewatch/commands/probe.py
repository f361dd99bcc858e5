"""``minewatch probe HOST:PORT...``: ask suspected servers whether they speak a mining protocol.

Off unless the operator turned probing on (``--enable-probing``, ``MINEWATCH_PROBING=1`` or the
configuration file); see :mod:`minewatch.net.probe.policy`. Every answer is cached, so asking
again within the TTL sends nothing.

Example::

    minewatch probe --enable-probing 203.0.113.7:3333 [2001:db8::7]:443
    minewatch probe --enable-probing --no-tls -f jsonl pool.example:14444
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any, TextIO

import click

from minewatch.commands.common import fail
from minewatch.errors import MinewatchError
from minewatch.net.probe.cache import ProbeCache
from minewatch.net.probe.client import ProbeResult, parse_target
from minewatch.net.probe.policy import load_policy
from minewatch.net.probe.protocols import PROTOCOL_ORDER
from minewatch.net.probe.session import ProbeSession

__all__ = ["probe", "write_results"]

FORMATS = ("table", "jsonl", "json")
_TRANSPORTS = {"both": ("plain", "tls"), "tls": ("tls",), "plain": ("plain",)}


def _table(results: list[ProbeResult], out: TextIO) -> None:
    header = ["target", "answered", "strength", "over", "cache", "evidence"]
    rows = []
    for r in results:
        d = r.to_dict()
        rows.append(
            [
                r.target if not r.address or r.address in r.target else f"{r.target} ({r.address})",
                d["answered"] or "-",
                "refused" if r.refused else d["strength"],
                d["transport"] or "-",
                "hit" if r.cached else "-",
                "; ".join(d["evidence"]) or "-",
            ]
        )
    width = shutil.get_terminal_size((160, 24)).columns
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    room = max(width - sum(widths) - 2 * len(widths), 40)
    for row in [header, *rows]:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)]
        evidence = row[-1] if len(row[-1]) <= room else row[-1][: room - 1] + "…"
        out.write("  ".join([*cells, evidence]).rstrip() + "\n")


def write_results(results: list[ProbeResult], fmt: str, out: TextIO) -> None:
    """Render probe results as a table for people, or JSON lines / one JSON array for programs."""
    if fmt == "table":
        _table(results, out)
        return
    docs: list[dict[str, Any]] = [r.to_dict() for r in results]
    if fmt == "jsonl":
        for doc in docs:
            out.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
    else:
        json.dump(docs, out, ensure_ascii=False, indent=2)
        out.write("\n")


@click.command()
@click.argument("targets", nargs=-1, required=True, metavar="HOST:PORT...")
@click.option("--tls", "transport", flag_value="tls", help="Probe inside TLS only.")
@click.option("--no-tls", "transport", flag_value="plain", help="Probe plain TCP only.")
@click.option(
    "--both",
    "transport",
    flag_value="both",
    default=True,
    help="Probe plain TCP, then TLS (the default).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 300),
    default=None,
    help="Seconds per connection (default: the configuration's, else 5).",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="table for people; jsonl or json for programs.",
)
@click.option(
    "--enable-probing",
    is_flag=True,
    help="Allow active probing for this run (it contacts the servers named).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Probing configuration (TOML, [probing] table; default: MINEWATCH_PROBE_CONFIG, "
    "else ~/.config/minewatch/probe.toml).",
)
@click.option(
    "--cache",
    "cache_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Answer cache file (default: the configuration's, else ~/.cache/minewatch/"
    "probe-cache.json).",
)
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache file.")
@click.option("--refresh", is_flag=True, help="Ask again even when a cached answer is fresh.")
@click.option("--sni", default=None, metavar="NAME", help="TLS server name to send.")
@click.option(
    "--allow",
    multiple=True,
    metavar="NETWORK",
    help="Probe only addresses in NETWORK (repeatable; replaces the configuration's list).",
)
@click.option(
    "--deny",
    multiple=True,
    metavar="NETWORK",
    help="Never probe addresses in NETWORK (repeatable; replaces the configuration's list).",
)
@click.option(
    "--protocol",
    "protocols",
    multiple=True,
    type=click.Choice(PROTOCOL_ORDER),
    help="Try only these protocols (repeatable; default: all).",
)
@click.pass_context
def probe(
    ctx: click.Context,
    targets: tuple[str, ...],
    transport: str,
    timeout: float | None,
    fmt: str,
    enable_probing: bool,
    config_path: Path | None,
    cache_path: Path | None,
    no_cache: bool,
    refresh: bool,
    sni: str | None,
    allow: tuple[str, ...],
    deny: tuple[str, ...],
    protocols: tuple[str, ...],
) -> None:
    """Ask servers whether they speak Stratum v1, XMRig (CryptoNote) stratum or Stratum V2, in
    plain text or TLS.

    主动核验（默认关闭）：询问可疑服务器是否使用矿池协议（明文或TLS），限速并缓存结果。

    Probing is off unless enabled (--enable-probing, MINEWATCH_PROBING=1, or the configuration
    file), rate-limited, and cached: the same server is not asked twice within the TTL.
    """
    try:
        parsed = [parse_target(t) for t in targets]
        overrides: dict[str, Any] = {
            "timeout_s": timeout,
            "allow": allow or None,
            "deny": deny or None,
        }
        policy = load_policy(config_path, enable=enable_probing, overrides=overrides)
        policy.require_enabled()
        path = None if no_cache else (cache_path or policy.cache_path)
        cache = ProbeCache(path, policy.ttl_s)
        if cache.problem:
            click.echo(f"warning: {cache.problem}", err=True)
        session = ProbeSession(
            policy,
            cache=cache,
            refresh=refresh,
            protocols=tuple(p for p in PROTOCOL_ORDER if not protocols or p in protocols),
        )
        results = session.run(parsed, transports=_TRANSPORTS[transport], server_name=sni)
    except MinewatchError as exc:
        fail(ctx, exc)
    write_results(results, fmt, sys.stdout)
