"""Suricata ``eve.json`` into FLOW_SCHEMA tables: flow events, with tls and dns joined on.

Why: Suricata sensors are common at data-centre edges and their eve log already holds
bidirectional flow records. ``flow`` events give the record (``src`` is the side that sent the
first packet; ``pkts_toserver``/``bytes_toserver`` go src→dst); ``tls`` events add SNI, JA3 and
(Suricata 8) JA4 by ``flow_id``; ``dns`` answers name the addresses that flows go to
(:func:`~minewatch.net.flowrec.zeek.attach_dns_names`).

Suricata counts bytes as captured, link header included; the schema wants IP-layer bytes, so
``link_bytes`` (14, Ethernet, by default) is taken off per packet. Lines that are not JSON are
counted, not fatal. Parsing is columnar, with DuckDB's JSON functions.

Example::

    table, problems = read_eve("/var/log/suricata/eve.json")
"""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pyarrow as pa

from minewatch.errors import InputError
from minewatch.net.flowrec.table import conform, empty_flows
from minewatch.net.flowrec.zeek import attach_dns_names, json_lines

__all__ = ["looks_like_eve", "read_eve"]


def looks_like_eve(head: bytes) -> bool:
    """Whether ``head`` (decompressed first bytes) starts a Suricata eve.json."""
    first = head.lstrip().split(b"\n", 1)[0]
    return first.startswith(b"{") and b'"event_type"' in first


def _ts(expr: str) -> str:
    """Suricata's ``2020-02-23T10:46:32.980209+0000`` as epoch nanoseconds."""
    return f"epoch_ns(strptime({expr}, '%Y-%m-%dT%H:%M:%S.%f%z'))"


def read_eve(path: str | Path, link_bytes: int = 14) -> tuple[pa.Table, list[str]]:
    """Flow records of one eve.json (optionally gzip-compressed) and the problems seen."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from exc
    if data.strip() and not looks_like_eve(data[:65536]):
        raise InputError(f"{path}: not a Suricata eve.json (no event_type on the first line)")
    problems: list[str] = []
    start, end = _ts("j->>'$.flow.start'"), _ts("j->>'$.flow.end'")
    stamp = _ts("j->>'timestamp'")
    con = duckdb.connect()
    try:
        con.register("lines", json_lines(data))
        con.sql(
            "CREATE TABLE ev AS SELECT line::JSON AS j, j->>'event_type' AS kind, "
            "TRY_CAST(j->>'flow_id' AS UBIGINT) AS flow_id FROM lines WHERE json_valid(line)"
        )
        (bad,) = con.sql("SELECT count(*) FROM lines WHERE NOT json_valid(line)").fetchall()[0]
        if bad:
            problems.append(f"{path}: {bad} lines are not JSON and were skipped")
        flows = con.sql(
            f"""
            WITH tls AS (
                SELECT flow_id,
                       first(j->>'$.tls.sni') FILTER (WHERE j->>'$.tls.sni' IS NOT NULL) AS sni,
                       first(coalesce(j->>'$.tls.ja3.hash', j->>'$.tls.ja3'))
                           FILTER (WHERE j->>'$.tls.ja3.hash' IS NOT NULL
                                   OR json_type(j, '$.tls.ja3') = 'VARCHAR') AS ja3,
                       first(j->>'$.tls.ja4') FILTER (WHERE j->>'$.tls.ja4' IS NOT NULL) AS ja4
                FROM ev WHERE kind = 'tls' AND flow_id IS NOT NULL GROUP BY flow_id
            ), f AS (
                SELECT flow_id, j->>'src_ip' AS src_ip, j->>'dest_ip' AS dst_ip,
                       coalesce(TRY_CAST(j->>'src_port' AS INTEGER), 0) AS src_port,
                       coalesce(TRY_CAST(j->>'dest_port' AS INTEGER), 0) AS dst_port,
                       CASE upper(j->>'proto') WHEN 'TCP' THEN 6 WHEN 'UDP' THEN 17
                           WHEN 'ICMP' THEN 1 WHEN 'IPV6-ICMP' THEN 58 WHEN 'SCTP' THEN 132
                           ELSE coalesce(TRY_CAST(j->>'proto' AS INTEGER), 0) END AS protocol,
                       coalesce(TRY_CAST(j->>'$.flow.pkts_toserver' AS BIGINT), 0) AS packets,
                       coalesce(TRY_CAST(j->>'$.flow.bytes_toserver' AS BIGINT), 0) AS raw_bytes,
                       coalesce(TRY_CAST(j->>'$.flow.pkts_toclient' AS BIGINT), 0) AS rev_packets,
                       coalesce(TRY_CAST(j->>'$.flow.bytes_toclient' AS BIGINT), 0)
                           AS raw_rev_bytes,
                       TRY({start}) AS start_ns,
                       TRY({end}) AS end_ns,
                       coalesce(TRY_CAST(('0x' || (j->>'$.tcp.tcp_flags')) AS INTEGER), 0)
                           AS tcp_flags,
                       coalesce(TRY_CAST(('0x' || (j->>'$.tcp.tcp_flags_ts')) AS INTEGER), 0)
                           AS flags_ts
                FROM ev WHERE kind = 'flow'
            )
            SELECT start_ns, coalesce(end_ns, start_ns) AS end_ns, src_ip, dst_ip, src_port,
                   dst_port, protocol, packets,
                   greatest(raw_bytes - packets * {int(link_bytes)}, 0) AS bytes,
                   rev_packets,
                   greatest(raw_rev_bytes - rev_packets * {int(link_bytes)}, 0) AS rev_bytes,
                   tcp_flags,
                   CASE WHEN protocol = 6 AND flags_ts & 2 = 2 THEN 1 ELSE 0 END AS initiator,
                   t.sni, t.ja3, t.ja4, 'suricata' AS source,
                   CASE WHEN t.flow_id IS NOT NULL THEN true END AS tls
            FROM f LEFT JOIN tls t USING (flow_id)
            WHERE src_ip IS NOT NULL AND dst_ip IS NOT NULL AND start_ns IS NOT NULL
            ORDER BY start_ns
            """  # noqa: S608 - only an integer is formatted in
        ).to_arrow_table()
        (skipped,) = con.sql(
            f"SELECT count(*) FROM ev WHERE kind = 'flow' AND (j->>'src_ip' IS NULL "  # noqa: S608
            f"OR j->>'dest_ip' IS NULL OR TRY({start}) IS NULL)"
        ).fetchall()[0]
        if skipped:
            problems.append(f"{path}: {skipped} flow events lack addresses or times")
        answers = con.sql(
            f"""
            SELECT {stamp} AS ts_ns,
                   CASE WHEN TRY_CAST(j->>'src_port' AS INTEGER) = 53 THEN j->>'dest_ip'
                        ELSE j->>'src_ip' END AS client,
                   a->>'rdata' AS address, j->>'$.dns.rrname' AS name
            FROM (SELECT j, unnest(from_json(j->'$.dns.answers', '["JSON"]')) AS a
                  FROM ev WHERE kind = 'dns' AND j->>'$.dns.type' = 'answer'
                        AND json_type(j, '$.dns.answers') = 'ARRAY')
            WHERE a->>'rrtype' IN ('A', 'AAAA') AND a->>'rdata' IS NOT NULL
            """  # noqa: S608 - no user text in the query
        ).to_arrow_table()
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot read as eve.json: {exc}") from exc
    finally:
        con.close()
    if flows.num_rows == 0:
        return empty_flows(), problems
    return attach_dns_names(conform(flows), answers), problems
