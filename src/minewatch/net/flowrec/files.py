"""Read flow-record files of any supported format into one FLOW_SCHEMA table.

Why sniffing: operators hand over a directory of whatever their sensors wrote (nfdump's
``nfcapd.*`` without suffixes, rotated ``conn.log.gz``, ``eve.json``); the format is read from
each file's first bytes, not its name. Packet captures (pcap, pcapng) become flow records through
the packet path, and FLOW_SCHEMA Parquet files (``minewatch collect --out x.parquet``) are read as
they are. Zeek's ssl and dns logs are joined onto the conn logs of
the same run, so all Zeek logs among the inputs are read first and joined once. A file that
cannot be read is a problem in the list, never the end of the whole read.

Example::

    table, problems = read_flow_files(["/data/nfcapd/", "zeek/conn.log", "eve.json.gz"])
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from minewatch.errors import CaptureError, InputError
from minewatch.net.capture.reader import looks_like_capture
from minewatch.net.flowrec.nfdump import looks_like_nfdump, read_nfdump
from minewatch.net.flowrec.suricata import looks_like_eve, read_eve
from minewatch.net.flowrec.table import FLOW_SCHEMA, conform, empty_flows
from minewatch.net.flowrec.zeek import ZeekLog, looks_like_zeek, read_zeek_log, zeek_flows
from minewatch.net.scan import FileProblem, expand_inputs

__all__ = ["collect_flow_files", "read_flow_files", "sniff_flow_format"]


def sniff_flow_format(path: Path) -> str | None:
    """``capture``, ``parquet``, ``nfdump``, ``zeek`` or ``suricata`` from the file's first
    bytes (gzip looked into)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(65536)
        if head[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as gz:
                head = gz.read(65536)
    except (OSError, EOFError):
        return None
    if looks_like_capture(head[:4]):
        return "capture"
    if head[:4] == b"PAR1":
        return "parquet"
    if looks_like_nfdump(head):
        return "nfdump"
    if looks_like_zeek(head) is not None:
        return "zeek"
    if looks_like_eve(head):
        return "suricata"
    return None


def collect_flow_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileProblem]]:
    """Expand directories (recursively; files whose format is recognised) and keep files as
    given (an unrecognised one named explicitly becomes a problem when read)."""
    return expand_inputs(paths, lambda f: sniff_flow_format(f) is not None)


def read_flow_files(paths: Iterable[str | Path]) -> tuple[pa.Table, list[FileProblem]]:
    """All flow records in ``paths`` (files or directories) as one FLOW_SCHEMA table."""
    files, problems = collect_flow_files(paths)
    tables: list[pa.Table] = []
    zeek_logs: list[ZeekLog] = []
    for path in files:
        kind = sniff_flow_format(path)
        try:
            if kind == "capture":
                from minewatch.net.flowrec.from_packets import capture_flows

                records, problem = capture_flows(path)
                tables.append(records)
                if problem:
                    problems.append(FileProblem(str(path), problem))
            elif kind == "parquet":
                tables.append(_parquet(path))
            elif kind == "nfdump":
                result = read_nfdump(path)
                tables.append(result.table)
                if result.problem:
                    problems.append(FileProblem(str(path), result.problem))
            elif kind == "zeek":
                zeek_logs.append(read_zeek_log(path))
            elif kind == "suricata":
                table, notes = read_eve(path)
                tables.append(table)
                problems.extend(FileProblem(str(path), n.split(": ", 1)[-1]) for n in notes)
            else:
                problems.append(
                    FileProblem(
                        str(path),
                        "not a flow file (expected nfdump, Zeek conn/ssl/dns log, Suricata "
                        "eve.json, flow-record Parquet or a packet capture)",
                    )
                )
        except CaptureError as exc:
            problems.append(FileProblem(exc.path, exc.reason))
        except InputError as exc:
            problems.append(FileProblem(str(path), str(exc).removeprefix(f"{path}: ")))
    if zeek_logs:
        try:
            table, notes = zeek_flows(zeek_logs)
        except InputError as exc:
            problems.append(FileProblem("zeek logs", str(exc)))
        else:
            tables.append(table)
            problems.extend(
                FileProblem(*n.split(": ", 1)) if ": " in n else FileProblem("zeek logs", n)
                for n in notes
            )
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return empty_flows(), problems
    combined = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    assert combined.schema == FLOW_SCHEMA
    return combined, problems


def _parquet(path: Path) -> pa.Table:
    """A FLOW_SCHEMA Parquet file, checked against the contract (a clear error otherwise)."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: not a readable Parquet file: {exc}") from exc
    try:
        return conform(table)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
