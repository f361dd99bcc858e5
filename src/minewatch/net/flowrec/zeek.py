"""Zeek ``conn.log``, ``ssl.log`` and ``dns.log`` (TSV or JSON lines) into FLOW_SCHEMA tables.

Why Zeek: many operators already run it and keep its logs for months; its ``conn.log`` is a
bidirectional flow record with the originator known. ``orig_ip_bytes``/``resp_ip_bytes`` are
used (IP-layer bytes, as the schema wants), not ``orig_bytes`` (payload only). TLS metadata from
``ssl.log`` (``server_name``; ``ja3``/``ja4`` when the ja3 or JA4 packages add them) is joined
onto connections by ``uid``; ``dns.log`` answers give each connection the name looked up just
before it (:func:`attach_dns_names`).

Parsing is columnar: TSV bodies go through Arrow's CSV reader with the ``#fields`` header as
column names; JSON lines through DuckDB's JSON functions. Lines that cannot be parsed are
counted, not fatal.

Example::

    logs = [read_zeek_log(p) for p in ("conn.log", "ssl.log", "dns.log")]
    table = zeek_flows(logs)
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from minewatch.errors import InputError
from minewatch.net.flowrec.table import FLOW_SCHEMA, conform, empty_flows

__all__ = [
    "ZeekLog",
    "attach_dns_names",
    "looks_like_zeek",
    "read_zeek_log",
    "zeek_flows",
]

_CONN_FIELDS = (
    "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "duration",
    "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "history",
)  # fmt: skip
_SSL_FIELDS = ("ts", "uid", "server_name", "ja3", "ja4")
_DNS_FIELDS = ("ts", "uid", "id.orig_h", "query", "answers")
_KIND_MARKERS = {
    "conn": ("orig_ip_bytes", "conn_state"),
    "ssl": ("server_name", "cipher"),
    "dns": ("query", "qtype_name"),
}


@dataclass(slots=True)
class ZeekLog:
    """One Zeek log as string columns (the fields we use; absent ones null)."""

    path: str
    kind: str  # conn, ssl or dns
    table: pa.Table
    bad_lines: int = 0


def looks_like_zeek(head: bytes) -> str | None:
    """``conn``/``ssl``/``dns`` when ``head`` (decompressed first bytes) starts such a log."""
    text = head.decode("utf-8", "replace")
    if text.startswith("#separator"):
        for line in text.splitlines():
            if line.startswith("#path"):
                kind = line.split("\t", 1)[-1].strip()
                return kind if kind in _KIND_MARKERS else None
            if line.startswith("#fields"):
                return _kind_from_names(line.split("\t")[1:])
        return None
    first = text.lstrip().split("\n", 1)[0]
    if first.startswith("{") and '"uid"' in first and '"id.orig_h"' in first:
        return _kind_from_names([k.strip('"') for k in first.split(":")])
    return None


def _kind_from_names(names: list[str]) -> str | None:
    joined = " ".join(names)
    for kind, markers in _KIND_MARKERS.items():
        if any(m in joined for m in markers):
            return kind
    return None


def _read_text(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc


def read_zeek_log(path: str | Path) -> ZeekLog:
    """Read one Zeek log (TSV or JSON lines, optionally gzip-compressed)."""
    path = Path(path)
    data = _read_text(path)
    kind = looks_like_zeek(data[:65536])
    if kind is None:
        raise InputError(f"{path}: not a Zeek conn, ssl or dns log")
    wanted = {"conn": _CONN_FIELDS, "ssl": _SSL_FIELDS, "dns": _DNS_FIELDS}[kind]
    try:
        if data.startswith(b"#separator"):
            table, bad = _read_tsv(path, data, wanted)
        else:
            table, bad = _read_json(path, data, wanted)
    except (duckdb.Error, pa.ArrowInvalid) as exc:
        raise InputError(f"{path}: cannot read as a Zeek {kind} log: {exc}") from exc
    return ZeekLog(str(path), kind, table, bad)


def _read_tsv(path: Path, data: bytes, wanted: tuple[str, ...]) -> tuple[pa.Table, int]:
    separator, set_separator, names = "\t", ",", None
    body_lines = []
    for line in data.split(b"\n"):
        if line.startswith(b"#"):
            text = line.decode("utf-8", "replace")
            if text.startswith("#separator"):
                separator = text.split(" ", 1)[1].encode().decode("unicode_escape")
            elif text.startswith("#set_separator"):
                set_separator = text.split(separator, 1)[1]
            elif text.startswith("#fields"):
                names = text.split(separator)[1:]
            continue
        if line:
            body_lines.append(line)
    if names is None:
        raise InputError(f"{path}: Zeek TSV log without a #fields line")
    width = len(names)
    good = [line for line in body_lines if line.count(separator.encode()) == width - 1]
    bad = len(body_lines) - len(good)
    if not good:
        return _nulls(wanted, 0), bad
    parsed = pacsv.read_csv(
        io.BytesIO(b"\n".join(good)),
        read_options=pacsv.ReadOptions(column_names=names),
        parse_options=pacsv.ParseOptions(delimiter=separator, quote_char=False),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            null_values=["-", "(empty)"],
            strings_can_be_null=True,
        ),
    )
    columns = [
        parsed.column(n) if n in names else pa.nulls(parsed.num_rows, pa.string()) for n in wanted
    ]
    table = pa.table(columns, names=list(wanted))
    if set_separator != "," and "answers" in wanted:
        answers = table.column("answers").to_pylist()
        fixed = [None if a is None else a.replace(set_separator, ",") for a in answers]
        table = table.set_column(wanted.index("answers"), "answers", pa.array(fixed, pa.string()))
    return table, bad


def _nulls(wanted: tuple[str, ...], n: int) -> pa.Table:
    return pa.table([pa.nulls(n, pa.string()) for _ in wanted], names=list(wanted))


def json_lines(data: bytes) -> pa.Table:
    """Non-empty lines of a JSON-lines file as a one-column (``line``) Arrow table."""
    lines = [line for line in data.decode("utf-8", "replace").split("\n") if line.strip()]
    return pa.table({"line": pa.array(lines, pa.string())})


def _read_json(path: Path, data: bytes, wanted: tuple[str, ...]) -> tuple[pa.Table, int]:
    lines = json_lines(data)
    selects = []
    for name in wanted:
        if name == "answers":
            selects.append(
                "CASE WHEN json_type(j, '$.answers') = 'ARRAY' THEN array_to_string("
                "from_json(json_extract(j, '$.answers'), '[\"VARCHAR\"]'), ',') "
                "ELSE json_extract_string(j, '$.answers') END AS answers"
            )
        else:
            selects.append(f'json_extract_string(j, \'$."{name}"\') AS "{name}"')
    con = duckdb.connect()
    try:
        con.register("lines", lines)
        (bad,) = con.sql("SELECT count(*) FROM lines WHERE NOT json_valid(line)").fetchall()[0]
        table = con.sql(
            f"SELECT {', '.join(selects)} FROM "  # noqa: S608 - names are our constants
            "(SELECT line::JSON AS j FROM lines WHERE json_valid(line))"
        ).to_arrow_table()
    finally:
        con.close()
    return table, int(bad)


def _epoch_ns_sql(column: str) -> str:
    """Zeek ``ts``: epoch seconds (default) or ISO 8601 (``JSON::TS_ISO8601``)."""
    return (
        f"CASE WHEN TRY_CAST({column} AS DOUBLE) IS NOT NULL "
        f"THEN CAST(round(CAST({column} AS DOUBLE) * 1e6) AS BIGINT) * 1000 "
        f"ELSE epoch_ns(TRY_CAST({column} AS TIMESTAMPTZ)) END"
    )


def zeek_flows(logs: list[ZeekLog]) -> tuple[pa.Table, list[str]]:
    """Flow records from the conn logs among ``logs``, with ssl and dns joined on.

    Returns the table and problems (counted bad lines or rows, per file).
    """
    problems = [
        f"{log.path}: {log.bad_lines} lines could not be parsed" for log in logs if log.bad_lines
    ]
    conns = [log.table for log in logs if log.kind == "conn"]
    if not conns:
        return empty_flows(), problems
    ssl = [log.table for log in logs if log.kind == "ssl"]
    dns = [log.table for log in logs if log.kind == "dns"]
    con = duckdb.connect()
    try:
        con.register("conn", pa.concat_tables(conns))
        con.register("ssl", pa.concat_tables(ssl) if ssl else _nulls(_SSL_FIELDS, 0))
        con.register("dns", pa.concat_tables(dns) if dns else _nulls(_DNS_FIELDS, 0))
        ts = _epoch_ns_sql("c.ts")
        flows = con.sql(
            f"""
            WITH tls AS (
                SELECT uid, first(server_name) FILTER (WHERE server_name IS NOT NULL) AS sni,
                       first(ja3) FILTER (WHERE ja3 IS NOT NULL) AS ja3,
                       first(ja4) FILTER (WHERE ja4 IS NOT NULL) AS ja4
                FROM ssl GROUP BY uid
            )
            SELECT {ts} AS start_ns,
                   {ts} + CAST(round(coalesce(TRY_CAST(c.duration AS DOUBLE), 0) * 1e9) AS BIGINT)
                       AS end_ns,
                   c."id.orig_h" AS src_ip, c."id.resp_h" AS dst_ip,
                   TRY_CAST(c."id.orig_p" AS INTEGER) AS src_port,
                   TRY_CAST(c."id.resp_p" AS INTEGER) AS dst_port,
                   CASE lower(c.proto) WHEN 'tcp' THEN 6 WHEN 'udp' THEN 17 WHEN 'icmp' THEN 1
                       ELSE 0 END AS protocol,
                   coalesce(TRY_CAST(c.orig_pkts AS BIGINT), 0) AS packets,
                   coalesce(TRY_CAST(c.orig_ip_bytes AS BIGINT), 0) AS bytes,
                   coalesce(TRY_CAST(c.resp_pkts AS BIGINT), 0) AS rev_packets,
                   coalesce(TRY_CAST(c.resp_ip_bytes AS BIGINT), 0) AS rev_bytes,
                   CASE WHEN lower(c.proto) <> 'tcp' THEN 0 ELSE
                   (CASE WHEN regexp_matches(coalesce(c.history, ''), '[SsHh]') THEN 2 ELSE 0 END
                    | CASE WHEN regexp_matches(coalesce(c.history, ''), '[AaHhDd]') THEN 16
                           ELSE 0 END
                    | CASE WHEN regexp_matches(coalesce(c.history, ''), '[Ff]') THEN 1 ELSE 0 END
                    | CASE WHEN regexp_matches(coalesce(c.history, ''), '[Rr]') THEN 4 ELSE 0 END
                   ) END AS tcp_flags,
                   1 AS initiator,
                   t.sni, t.ja3, t.ja4, 'zeek' AS source,
                   CASE WHEN t.uid IS NOT NULL THEN true END AS tls
            FROM conn c LEFT JOIN tls t ON c.uid = t.uid
            WHERE c."id.orig_h" IS NOT NULL AND c."id.resp_h" IS NOT NULL
              AND c.ts IS NOT NULL AND {ts} IS NOT NULL
            ORDER BY start_ns
            """  # noqa: S608 - no user text in the query
        ).to_arrow_table()
        (skipped,) = con.sql(
            f'SELECT count(*) FROM conn c WHERE c."id.orig_h" IS NULL OR c."id.resp_h" IS NULL '  # noqa: S608
            f"OR c.ts IS NULL OR {ts} IS NULL"
        ).fetchall()[0]
        answers = con.sql(
            f"""
            SELECT {_epoch_ns_sql("ts")} AS ts_ns, "id.orig_h" AS client,
                   trim(a) AS address, query AS name
            FROM (SELECT *, unnest(string_split(answers, ',')) AS a FROM dns
                  WHERE answers IS NOT NULL AND query IS NOT NULL)
            """  # noqa: S608
        ).to_arrow_table()
    except duckdb.Error as exc:
        raise InputError(f"Zeek logs cannot be joined: {exc}") from exc
    finally:
        con.close()
    if skipped:
        problems.append(f"{skipped} conn.log rows lack addresses or a timestamp and were skipped")
    table = conform(flows)
    return attach_dns_names(table, answers), problems


def attach_dns_names(flows: pa.Table, answers: pa.Table) -> pa.Table:
    """Fill ``dns_name`` with the name whose DNS answer (at or before the flow's start) held
    the flow's ``dst_ip``: the same client's look-up first, else anyone's.

    ``answers`` has ``ts_ns`` (int64), ``client``, ``address`` and ``name`` (strings). Names
    already present in ``flows`` are kept.
    """
    if answers.num_rows == 0 or flows.num_rows == 0:
        return flows
    con = duckdb.connect()
    try:
        con.register(
            "f",
            flows.select(["start_ns", "src_ip", "dst_ip"]).append_column(
                "row_", pa.array(range(flows.num_rows), pa.int64())
            ),
        )
        con.register("d", answers)
        names = (
            con.sql(
                """
            WITH own AS (
                SELECT f.row_, d.name FROM f ASOF LEFT JOIN d
                ON f.dst_ip = d.address AND f.src_ip = d.client AND f.start_ns >= d.ts_ns
            ), anyone AS (
                SELECT f.row_, d.name FROM f ASOF LEFT JOIN d
                ON f.dst_ip = d.address AND f.start_ns >= d.ts_ns
            )
            SELECT coalesce(own.name, anyone.name) AS name
            FROM own JOIN anyone USING (row_) ORDER BY row_
            """
            )
            .to_arrow_table()
            .column("name")
        )
    finally:
        con.close()
    index = FLOW_SCHEMA.get_field_index("dns_name")
    merged = pc.coalesce(flows.column("dns_name"), names.cast(pa.string()))
    return flows.set_column(index, FLOW_SCHEMA.field("dns_name"), merged)
