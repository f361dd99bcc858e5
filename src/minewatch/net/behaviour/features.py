"""Behaviour features of client↔server conversations, from flow records of any source.

Why these features: a pool session is a long, quiet, steady dialogue. The server pushes a job
every ~10-60 s (new block template, vardiff retarget), the client submits a few shares a minute
(vardiff keeps the rate there whatever the hash rate), both as small JSON-RPC messages (~40-300 B,
plus ~22-29 B of TLS record overhead when encrypted), over one connection held for hours and
re-opened at once when it drops. None of that needs payload, so it survives TLS; and none of it
depends on ports or addresses, which the features never use (a pool on 443 looks like any other).

One SQL text (:data:`FEATURE_SQL`), written in the subset that DuckDB and Spark SQL share, turns a
:data:`~minewatch.net.flowrec.table.FLOW_SCHEMA` table (registered as ``flows``) into one row per
conversation ``(client_ip, server_ip, server_port, transport)``:

1. orient every record client→server: the opener when the source knows it, else the endpoint
   that more distinct peers share is the server, else the higher (ephemeral) port is the client;
   unidirectional records of the two directions then fall on one key and are added up;
2. cut the records into one-minute buckets per connection (slices of a capture or a live meter
   already are; NetFlow's active-timeout records and Zeek's per-connection summaries stay whole);
3. aggregate slices into connections and connections into the conversation, each level one
   hash group-by over the level below (no joins, no window functions: sums of values and of
   squares carry the spreads upwards, which keeps the query fast on one core and identical on
   Spark).

Who speaks first after a silence, and how regularly, is the physics that survives TLS: a pool
pushes jobs unsolicited (the server opens, every ~10-60 s, jittered or at block times), a miner
submits shares at Poisson times (the client opens, intervals with a coefficient of variation near
1) and the pool answers each; pollers, scrapers and RPC clients open from the client side only at
a fixed period (variation near 0); heartbeats are periodic from one side; ``top`` over SSH is
server-opened and periodic. ``opens_*``, ``server_open_share``, ``both_open`` and
``open_cv_*`` carry that (packet sources only: NetFlow, Zeek and Suricata cannot see it, and
the model then works from the aggregate features alone).

Features a source cannot provide are NULL (payload-packet counts from NetFlow; slice regularity
from one summary record per connection); the model handles missing values.

Example::

    >>> from minewatch.net.behaviour.features import conversation_features
    >>> from minewatch.net.flowrec.table import empty_flows
    >>> conversation_features(empty_flows()).num_rows
    0
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow as pa

from minewatch.net.flowrec.table import conform

__all__ = [
    "FEATURE_NAMES",
    "FEATURE_SQL",
    "KEY_COLUMNS",
    "PACKET_ONLY_COLUMNS",
    "conversation_features",
    "feature_matrix",
    "flow_export_view",
]

KEY_COLUMNS: tuple[str, ...] = ("client_ip", "server_ip", "server_port", "transport")
"""The conversation key findings and labels use."""

FEATURE_NAMES: tuple[str, ...] = (
    "span_s",
    "max_conn_s",
    "conn_count",
    "reconnects_per_hour",
    "coverage",
    "slices",
    "rate_cv",
    "pkts_up_per_min",
    "pkts_down_per_min",
    "bytes_up_per_min",
    "bytes_down_per_min",
    "msgs_up_per_min",
    "msgs_down_per_min",
    "mean_pkt_up",
    "mean_pkt_down",
    "up_byte_share",
    "up_pkt_share",
    "msg_share_up",
    "msg_share_down",
    "opens_up_per_min",
    "opens_down_per_min",
    "server_open_share",
    "both_open",
    "open_gap_up_s",
    "open_gap_down_s",
    "open_cv_up",
    "open_cv_down",
)
"""Numeric features the model reads, in this order (units in :data:`FEATURE_DOC`)."""

FEATURE_DOC: dict[str, str] = {
    "span_s": "seconds from the first to the last packet of the conversation",
    "max_conn_s": "seconds the longest single connection was held",
    "conn_count": "connections (distinct client ports) in the conversation",
    "reconnects_per_hour": "connections per hour of span beyond the first",
    "coverage": "share of the span that had traffic, in one-minute slices (0-1)",
    "slices": "one-minute slices (or summary records) with traffic",
    "rate_cv": "coefficient of variation of packets per minute across slices (NULL below 3)",
    "pkts_up_per_min": "client→server packets per connection-minute",
    "pkts_down_per_min": "server→client packets per connection-minute",
    "bytes_up_per_min": "client→server IP bytes per connection-minute",
    "bytes_down_per_min": "server→client IP bytes per connection-minute",
    "msgs_up_per_min": "client→server payload packets per connection-minute (packet sources)",
    "msgs_down_per_min": "server→client payload packets per connection-minute (packet sources)",
    "mean_pkt_up": "mean client→server IP packet size, bytes",
    "mean_pkt_down": "mean server→client IP packet size, bytes",
    "up_byte_share": "client's share of the bytes (0-1)",
    "up_pkt_share": "client's share of the packets (0-1)",
    "msg_share_up": "share of client→server packets that carried payload (packet sources)",
    "msg_share_down": "share of server→client packets that carried payload (packet sources)",
    "opens_up_per_min": "exchanges the client opened (spoke first after >= 1 s of silence) per "
    "connection-minute (packet sources)",
    "opens_down_per_min": "exchanges the server opened per connection-minute (packet sources)",
    "server_open_share": "share of the opened exchanges that the server opened (0-1)",
    "both_open": "1 when both sides opened at least two exchanges, else 0 (packet sources)",
    "open_gap_up_s": "mean seconds between the client's consecutive opens",
    "open_gap_down_s": "mean seconds between the server's consecutive opens",
    "open_cv_up": "coefficient of variation of the client's open intervals (NULL below 3)",
    "open_cv_down": "coefficient of variation of the server's open intervals (NULL below 3)",
}

FEATURE_SQL = """
WITH
unknown AS (
    SELECT src_ip, src_port, dst_ip, dst_port, protocol FROM flows WHERE initiator = 0
),
endpoint_peers AS (
    SELECT ip, port, protocol, count(DISTINCT peer) AS peers FROM (
        SELECT src_ip AS ip, src_port AS port, protocol,
               concat(dst_ip, '|', CAST(dst_port AS STRING)) AS peer FROM unknown
        UNION ALL
        SELECT dst_ip AS ip, dst_port AS port, protocol,
               concat(src_ip, '|', CAST(src_port AS STRING)) AS peer FROM unknown
    ) e
    GROUP BY ip, port, protocol
),
oriented AS (
    SELECT
        CASE
            WHEN f.initiator = 1 THEN TRUE
            WHEN f.initiator = 2 THEN FALSE
            WHEN ps.peers < pd.peers THEN TRUE
            WHEN ps.peers > pd.peers THEN FALSE
            WHEN f.src_port > f.dst_port THEN TRUE
            WHEN f.src_port < f.dst_port THEN FALSE
            ELSE TRUE
        END AS fwd,
        f.src_ip, f.dst_ip, f.src_port, f.dst_port, f.protocol, f.start_ns, f.end_ns,
        f.packets, f.rev_packets, f.bytes, f.rev_bytes,
        f.payload_packets, f.rev_payload_packets, f.opens, f.rev_opens,
        f.open_gaps, f.open_gap_sum, f.open_gap_sumsq,
        f.rev_open_gaps, f.rev_open_gap_sum, f.rev_open_gap_sumsq,
        f.tls, f.sni, f.ja3, f.ja4, f.dns_name, f.source
    FROM flows f
    LEFT JOIN endpoint_peers ps
        ON f.initiator = 0 AND ps.ip = f.src_ip AND ps.port = f.src_port
        AND ps.protocol = f.protocol
    LEFT JOIN endpoint_peers pd
        ON f.initiator = 0 AND pd.ip = f.dst_ip AND pd.port = f.dst_port
        AND pd.protocol = f.protocol
),
rec AS (
    SELECT
        CASE WHEN fwd THEN src_ip ELSE dst_ip END AS client_ip,
        CASE WHEN fwd THEN dst_ip ELSE src_ip END AS server_ip,
        CASE WHEN fwd THEN dst_port ELSE src_port END AS server_port,
        CASE WHEN fwd THEN src_port ELSE dst_port END AS client_port,
        protocol,
        start_ns, end_ns,
        start_ns - start_ns % 60000000000 AS bucket,
        CASE WHEN fwd THEN packets ELSE rev_packets END AS pk_up,
        CASE WHEN fwd THEN rev_packets ELSE packets END AS pk_down,
        CASE WHEN fwd THEN bytes ELSE rev_bytes END AS by_up,
        CASE WHEN fwd THEN rev_bytes ELSE bytes END AS by_down,
        CASE WHEN fwd THEN payload_packets ELSE rev_payload_packets END AS pl_up,
        CASE WHEN fwd THEN rev_payload_packets ELSE payload_packets END AS pl_down,
        CASE WHEN fwd THEN opens ELSE rev_opens END AS op_up,
        CASE WHEN fwd THEN rev_opens ELSE opens END AS op_down,
        CASE WHEN fwd THEN open_gaps ELSE rev_open_gaps END AS og_up,
        CASE WHEN fwd THEN open_gap_sum ELSE rev_open_gap_sum END AS ogs_up,
        CASE WHEN fwd THEN open_gap_sumsq ELSE rev_open_gap_sumsq END AS ogq_up,
        CASE WHEN fwd THEN rev_open_gaps ELSE open_gaps END AS og_down,
        CASE WHEN fwd THEN rev_open_gap_sum ELSE open_gap_sum END AS ogs_down,
        CASE WHEN fwd THEN rev_open_gap_sumsq ELSE open_gap_sumsq END AS ogq_down,
        CASE WHEN tls OR sni IS NOT NULL OR ja3 IS NOT NULL OR ja4 IS NOT NULL
            THEN 1 ELSE 0 END AS tls_i,
        sni, ja3, ja4, dns_name, source
    FROM oriented
),
slices AS (
    SELECT client_ip, server_ip, server_port, protocol, client_port, bucket,
        min(start_ns) AS s_start, max(end_ns) AS s_end,
        sum(pk_up) AS pk_up, sum(pk_down) AS pk_down, sum(by_up) AS by_up,
        sum(by_down) AS by_down, sum(pl_up) AS pl_up, sum(pl_down) AS pl_down,
        sum(op_up) AS op_up, sum(op_down) AS op_down,
        sum(og_up) AS og_up, sum(ogs_up) AS ogs_up, sum(ogq_up) AS ogq_up,
        sum(og_down) AS og_down, sum(ogs_down) AS ogs_down, sum(ogq_down) AS ogq_down,
        max(tls_i) AS tls_i, max(sni) AS sni, max(ja3) AS ja3, max(ja4) AS ja4,
        max(dns_name) AS dns_name, min(source) AS source
    FROM rec
    GROUP BY client_ip, server_ip, server_port, protocol, client_port, bucket
),
conns AS (
    SELECT client_ip, server_ip, server_port, protocol, client_port,
        min(s_start) AS c_start, max(s_end) AS c_end,
        count(*) AS c_slices,
        sum(rate) AS c_rate, sum(rate * rate) AS c_rate_sq, sum(covered_ns) AS c_covered,
        sum(pk_up) AS pk_up, sum(pk_down) AS pk_down, sum(by_up) AS by_up,
        sum(by_down) AS by_down, sum(pl_up) AS pl_up, sum(pl_down) AS pl_down,
        sum(op_up) AS op_up, sum(op_down) AS op_down,
        sum(og_up) AS og_up, sum(ogs_up) AS ogs_up, sum(ogq_up) AS ogq_up,
        sum(og_down) AS og_down, sum(ogs_down) AS ogs_down, sum(ogq_down) AS ogq_down,
        max(tls_i) AS tls_i, max(sni) AS sni, max(ja3) AS ja3, max(ja4) AS ja4,
        max(dns_name) AS dns_name, min(source) AS source
    FROM (
        SELECT *,
            CAST(pk_up + pk_down AS DOUBLE) * 60000000000.0
                / CAST(greatest(s_end - s_start, 60000000000) AS DOUBLE) AS rate,
            CAST(greatest(s_end - s_start, 60000000000) AS DOUBLE) AS covered_ns
        FROM slices
    ) r
    GROUP BY client_ip, server_ip, server_port, protocol, client_port
),
joined AS (
    SELECT client_ip, server_ip, server_port, protocol,
        min(c_start) AS first_seen_ns, max(c_end) AS last_seen_ns,
        count(*) AS n_conn, max(c_end - c_start) AS max_conn_ns,
        sum(c_end - c_start) AS sum_conn_ns,
        sum(c_slices) AS n_slices, sum(c_rate) AS rate_sum, sum(c_rate_sq) AS rate_sq,
        sum(c_covered) AS covered_ns,
        sum(pk_up) AS packets_up, sum(pk_down) AS packets_down,
        sum(by_up) AS bytes_up, sum(by_down) AS bytes_down,
        sum(pl_up) AS payload_up, sum(pl_down) AS payload_down,
        sum(op_up) AS opens_up, sum(op_down) AS opens_down,
        CAST(sum(og_up) AS DOUBLE) AS og_up, sum(ogs_up) AS ogs_up, sum(ogq_up) AS ogq_up,
        CAST(sum(og_down) AS DOUBLE) AS og_down, sum(ogs_down) AS ogs_down,
        sum(ogq_down) AS ogq_down,
        max(sni) AS sni, max(ja3) AS ja3, max(ja4) AS ja4, max(dns_name) AS dns_name,
        max(tls_i) AS tls_seen, min(source) AS source,
        CAST(greatest(sum(c_end - c_start), 60000000000) AS DOUBLE) / 60000000000.0 AS conn_min
    FROM conns
    GROUP BY client_ip, server_ip, server_port, protocol
)
SELECT
    client_ip, server_ip, server_port,
    CASE protocol WHEN 6 THEN 'tcp' WHEN 17 THEN 'udp'
        ELSE concat('ip', CAST(protocol AS STRING)) END AS transport,
    first_seen_ns, last_seen_ns,
    n_conn AS connections, sni, ja3, ja4, dns_name, tls_seen, source,
    packets_up, packets_down, bytes_up, bytes_down, opens_up, opens_down,
    CAST(last_seen_ns - first_seen_ns AS DOUBLE) / 1e9 AS span_s,
    CAST(max_conn_ns AS DOUBLE) / 1e9 AS max_conn_s,
    CAST(n_conn AS DOUBLE) AS conn_count,
    CAST(n_conn - 1 AS DOUBLE) * 3600e9
        / CAST(greatest(last_seen_ns - first_seen_ns, 60000000000) AS DOUBLE)
        AS reconnects_per_hour,
    least(1.0, covered_ns
        / CAST(greatest(last_seen_ns - first_seen_ns, 60000000000) AS DOUBLE)) AS coverage,
    CAST(n_slices AS DOUBLE) AS slices,
    CASE WHEN n_slices >= 3 AND rate_sum > 0 THEN
        sqrt(greatest(rate_sq - rate_sum * rate_sum / n_slices, 0.0) / (n_slices - 1.0))
            * n_slices / rate_sum
    END AS rate_cv,
    CAST(packets_up AS DOUBLE) / conn_min AS pkts_up_per_min,
    CAST(packets_down AS DOUBLE) / conn_min AS pkts_down_per_min,
    CAST(bytes_up AS DOUBLE) / conn_min AS bytes_up_per_min,
    CAST(bytes_down AS DOUBLE) / conn_min AS bytes_down_per_min,
    CAST(payload_up AS DOUBLE) / conn_min AS msgs_up_per_min,
    CAST(payload_down AS DOUBLE) / conn_min AS msgs_down_per_min,
    CAST(bytes_up AS DOUBLE) / CAST(nullif(packets_up, 0) AS DOUBLE) AS mean_pkt_up,
    CAST(bytes_down AS DOUBLE) / CAST(nullif(packets_down, 0) AS DOUBLE) AS mean_pkt_down,
    CAST(bytes_up AS DOUBLE) / CAST(nullif(bytes_up + bytes_down, 0) AS DOUBLE) AS up_byte_share,
    CAST(packets_up AS DOUBLE) / CAST(nullif(packets_up + packets_down, 0) AS DOUBLE)
        AS up_pkt_share,
    CAST(payload_up AS DOUBLE) / CAST(nullif(packets_up, 0) AS DOUBLE) AS msg_share_up,
    CAST(payload_down AS DOUBLE) / CAST(nullif(packets_down, 0) AS DOUBLE) AS msg_share_down,
    CAST(opens_up AS DOUBLE) / conn_min AS opens_up_per_min,
    CAST(opens_down AS DOUBLE) / conn_min AS opens_down_per_min,
    CAST(opens_down AS DOUBLE) / CAST(nullif(opens_up + opens_down, 0) AS DOUBLE)
        AS server_open_share,
    CASE WHEN opens_up IS NULL OR opens_down IS NULL THEN NULL
        WHEN opens_up >= 2 AND opens_down >= 2 THEN 1.0 ELSE 0.0 END AS both_open,
    ogs_up / nullif(og_up, 0.0) AS open_gap_up_s,
    ogs_down / nullif(og_down, 0.0) AS open_gap_down_s,
    CASE WHEN og_up >= 3 AND ogs_up > 0 THEN
        sqrt(greatest(ogq_up - ogs_up * ogs_up / og_up, 0.0) / (og_up - 1.0)) * og_up / ogs_up
    END AS open_cv_up,
    CASE WHEN og_down >= 3 AND ogs_down > 0 THEN
        sqrt(greatest(ogq_down - ogs_down * ogs_down / og_down, 0.0) / (og_down - 1.0))
            * og_down / ogs_down
    END AS open_cv_down
FROM joined
ORDER BY first_seen_ns, client_ip, server_ip, server_port, protocol
"""
"""The feature query over a table named ``flows``; see the module text."""


PACKET_ONLY_COLUMNS: tuple[str, ...] = (
    "payload_packets",
    "rev_payload_packets",
    "opens",
    "rev_opens",
    "open_gaps",
    "open_gap_sum",
    "open_gap_sumsq",
    "rev_open_gaps",
    "rev_open_gap_sum",
    "rev_open_gap_sumsq",
    "tls",
)
"""FLOW_SCHEMA columns only packet sources fill; NetFlow/IPFIX, nfdump, Zeek conn.log and
Suricata flow events leave them NULL (Zeek and Suricata may set ``tls`` from their TLS logs)."""

_EXPORT_VIEW_SQL = """
SELECT min(start_ns) AS start_ns, max(end_ns) AS end_ns,
    src_ip, dst_ip, src_port, dst_port, protocol,
    CAST(sum(packets) AS BIGINT) AS packets, CAST(sum(bytes) AS BIGINT) AS bytes,
    CAST(sum(rev_packets) AS BIGINT) AS rev_packets,
    CAST(sum(rev_bytes) AS BIGINT) AS rev_bytes,
    max(tcp_flags) AS tcp_flags, max(initiator) AS initiator,
    max(sni) AS sni, max(ja3) AS ja3, max(ja4) AS ja4, max(dns_name) AS dns_name,
    min(source) AS source, max(exporter) AS exporter
FROM flows
GROUP BY src_ip, dst_ip, src_port, dst_port, protocol
"""


def flow_export_view(flows: pa.Table) -> pa.Table:
    """``flows`` as a flow exporter would have delivered them: no packet-only columns
    (:data:`PACKET_ONLY_COLUMNS` NULL) and one record per connection (no one-minute slices, as
    an exporter whose active timeout outlasts the connection writes it).

    Why: the bundled model is trained on captures, where every feature is known; training it
    on this view of the same conversations as well teaches its trees where a missing packet
    feature goes, so one model serves captures and NetFlow/IPFIX/Zeek/Suricata alike.
    Who opened the connection (``initiator``) is kept: it orients the training labels.
    """
    table = conform(flows)
    con = duckdb.connect()
    try:
        con.register("flows", table)
        merged = con.sql(_EXPORT_VIEW_SQL).to_arrow_table()
    finally:
        con.close()
    return conform(merged)


def conversation_features(flows: pa.Table, *, threads: int | None = None) -> pa.Table:
    """Run :data:`FEATURE_SQL` on DuckDB over ``flows`` (any table :func:`conform` accepts).

    Returns one row per conversation: the key, ``first_seen_ns``/``last_seen_ns``,
    ``connections``, TLS/DNS names, totals per direction, and :data:`FEATURE_NAMES`.
    ``threads`` limits DuckDB's threads (benchmarks use 1).
    """
    table = conform(flows)
    con = duckdb.connect()
    try:
        if threads is not None:
            con.execute(f"SET threads = {int(threads)}")
        con.register("flows", table)
        return con.sql(FEATURE_SQL).to_arrow_table()
    finally:
        con.close()


def feature_matrix(features: pa.Table, names: Sequence[str] = FEATURE_NAMES) -> np.ndarray:
    """The model's input: the named feature columns as float64, NULL as NaN."""
    if features.num_rows == 0:
        return np.zeros((0, len(names)))
    cols = [
        features.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False) for name in names
    ]
    return np.column_stack(cols).astype(np.float64)
