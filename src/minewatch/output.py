"""Render findings (network and host) as JSON lines, one JSON document, or a terminal table."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from typing import Any, Protocol, TextIO

from minewatch.findings import Finding, iso_utc
from minewatch.host.model import HostFinding
from minewatch.i18n import message

__all__ = ["FORMATS", "write_findings", "write_host_findings"]

FORMATS = ("table", "jsonl", "json")


class _Record(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def _jsonl(records: Iterable[_Record], out: TextIO) -> None:
    for r in records:
        out.write(json.dumps(r.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n")


def _json(records: Iterable[_Record], out: TextIO) -> None:
    json.dump([r.to_dict() for r in records], out, ensure_ascii=False, indent=2)
    out.write("\n")


def _layout(keys: list[str], rows: list[list[str]], out: TextIO, lang: str) -> None:
    """Aligned columns; the last column (evidence) is cut to the terminal width."""
    width = shutil.get_terminal_size((160, 24)).columns
    header = [message(f"col_{k}", lang) for k in keys]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    used = sum(widths) + 2 * len(widths)
    room = max(width - used, 30)
    for r in [header, *rows]:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)]
        evidence = r[-1] if len(r[-1]) <= room else r[-1][: room - 1] + "…"
        out.write("  ".join([*cells, evidence]).rstrip() + "\n")


def _table(findings: list[Finding], out: TextIO, lang: str) -> None:
    if not findings:
        out.write(message("no_findings", lang) + "\n")
        return
    rows = []
    for f in findings:
        server = (
            f"[{f.server_ip}]:{f.server_port}"
            if ":" in f.server_ip
            else f"{f.server_ip}:{f.server_port}"
        )
        rows.append(
            [
                message(f"verdict_{f.verdict}", lang),
                f.client_ip,
                f"{server}/{f.transport}",
                f.protocol,
                f.coin or "-",
                f"{f.confidence:.2f}",
                f"{iso_utc(f.first_seen_ns)[:19]} / {iso_utc(f.last_seen_ns)[11:19]}",
                "; ".join(f.evidence),
            ]
        )
    keys = ["verdict", "client", "server", "protocol", "coin", "confidence", "seen", "evidence"]
    _layout(keys, rows, out, lang)


def _host_table(findings: list[HostFinding], out: TextIO, lang: str) -> None:
    if not findings:
        out.write(message("no_host_findings", lang) + "\n")
        return
    rows = [
        [
            message(f"verdict_{f.verdict}", lang),
            f.kind,
            f.entity,
            f.coin or "-",
            f"{f.confidence:.2f}",
            _capacity(f),
            "; ".join(f.evidence),
        ]
        for f in findings
    ]
    keys = ["verdict", "kind", "entity", "coin", "confidence", "capacity", "evidence"]
    _layout(keys, rows, out, lang)


def _capacity(f: HostFinding) -> str:
    if f.capacity_bytes is None:
        return "-"
    count = f" / {f.count}" if f.count is not None else ""
    return f"{f.capacity_bytes / 1e12:.3f} TB{count}"


def write_findings(findings: list[Finding], out: TextIO, fmt: str, lang: str = "en") -> None:
    """Write ``findings`` to ``out`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "jsonl":
        _jsonl(findings, out)
    elif fmt == "json":
        _json(findings, out)
    elif fmt == "table":
        _table(findings, out, lang)
    else:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def write_host_findings(
    findings: list[HostFinding], out: TextIO, fmt: str, lang: str = "en"
) -> None:
    """Write host-agent ``findings`` to ``out`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "jsonl":
        _jsonl(findings, out)
    elif fmt == "json":
        _json(findings, out)
    elif fmt == "table":
        _host_table(findings, out, lang)
    else:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
