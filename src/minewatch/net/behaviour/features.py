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
3. aggregate connections, slices and the conversation.

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
    "conversation_features",
    "feature_matrix",
]

KEY_COLUMNS: tuple[str, ...] = ("client_ip", "server_ip", "server_port", "transport")
"""The conversation key findings and labels use."""

FEATURE_NAMES: tuple[str, ...] = (
    "span_s",
    "max_conn_s",
    "conn_count",
    "reconnects_per_hour",
    "coverage",
    "max_gap_s",
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
)
"""Numeric features the model reads, in this order (units in :data:`FEATURE_DOC`)."""

FEATURE_DOC: dict[str, str] = {
    "span_s": "seconds from the first to the last packet of the conversation",
    "max_conn_s": "seconds the longest single connection was held",
    "conn_count": "connections (distinct client ports) in the conversation",
    "reconnects_per_hour": "connections per hour of span beyond the first",
    "coverage": "share of the span that had traffic, in one-minute slices (0-1)",
    "max_gap_s": "longest silence between slices, seconds (NULL with one slice)",
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
    SELECT f.*,
        CASE
            WHEN f.initiator = 1 THEN TRUE
            WHEN f.initiator = 2 THEN FALSE
            WHEN ps.peers < pd.peers THEN TRUE
            WHEN ps.peers > pd.peers THEN FALSE
            WHEN f.src_port > f.dst_port THEN TRUE
            WHEN f.src_port < f.dst_port THEN FALSE
            ELSE TRUE
        END AS fwd
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
        CASE protocol WHEN 6 THEN 'tcp' WHEN 17 THEN 'udp'
            ELSE concat('ip', CAST(protocol AS STRING)) END AS transport,
        start_ns, end_ns,
        start_ns - start_ns % 60000000000 AS bucket,
        CASE WHEN fwd THEN packets ELSE rev_packets END AS pk_up,
        CASE WHEN fwd THEN rev_packets ELSE packets END AS pk_down,
        CASE WHEN fwd THEN bytes ELSE rev_bytes END AS by_up,
        CASE WHEN fwd THEN rev_bytes ELSE bytes END AS by_down,
        CASE WHEN fwd THEN payload_packets ELSE rev_payload_packets END AS pl_up,
        CASE WHEN fwd THEN rev_payload_packets ELSE payload_packets END AS pl_down,
        sni, ja3, ja4, dns_name, source
    FROM oriented
),
slices AS (
    SELECT client_ip, server_ip, server_port, transport, client_port, bucket,
        min(start_ns) AS s_start, max(end_ns) AS s_end,
        sum(pk_up + pk_down) AS s_packets
    FROM rec
    GROUP BY client_ip, server_ip, server_port, transport, client_port, bucket
),
slice_rates AS (
    SELECT client_ip, server_ip, server_port, transport, s_start, s_end,
        CAST(s_packets AS DOUBLE) * 60000000000.0
            / CAST(greatest(s_end - s_start, 60000000000) AS DOUBLE) AS rate,
        CAST(greatest(s_end - s_start, 60000000000) AS DOUBLE) AS covered_ns,
        s_start - max(s_end) OVER (
            PARTITION BY client_ip, server_ip, server_port, transport
            ORDER BY s_start, s_end
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS gap_ns
    FROM slices
),
slice_stats AS (
    SELECT client_ip, server_ip, server_port, transport,
        count(*) AS n_slices,
        avg(rate) AS rate_mean,
        stddev_samp(rate) AS rate_sd,
        sum(covered_ns) AS covered_ns,
        max(greatest(gap_ns, 0)) AS max_gap_ns
    FROM slice_rates
    GROUP BY client_ip, server_ip, server_port, transport
),
conns AS (
    SELECT client_ip, server_ip, server_port, transport, client_port,
        max(end_ns) - min(start_ns) AS conn_ns
    FROM rec
    GROUP BY client_ip, server_ip, server_port, transport, client_port
),
conn_stats AS (
    SELECT client_ip, server_ip, server_port, transport,
        count(*) AS n_conn, max(conn_ns) AS max_conn_ns, sum(conn_ns) AS sum_conn_ns
    FROM conns
    GROUP BY client_ip, server_ip, server_port, transport
),
conv AS (
    SELECT client_ip, server_ip, server_port, transport,
        min(start_ns) AS first_seen_ns, max(end_ns) AS last_seen_ns,
        sum(pk_up) AS packets_up, sum(pk_down) AS packets_down,
        sum(by_up) AS bytes_up, sum(by_down) AS bytes_down,
        sum(pl_up) AS payload_up, sum(pl_down) AS payload_down,
        max(sni) AS sni, max(ja3) AS ja3, max(ja4) AS ja4, max(dns_name) AS dns_name,
        max(CASE WHEN sni IS NOT NULL OR ja3 IS NOT NULL OR ja4 IS NOT NULL
            THEN 1 ELSE 0 END) AS tls_seen,
        min(source) AS source
    FROM rec
    GROUP BY client_ip, server_ip, server_port, transport
),
joined AS (
    SELECT c.*, k.n_conn, k.max_conn_ns, k.sum_conn_ns,
        s.n_slices, s.rate_mean, s.rate_sd, s.covered_ns, s.max_gap_ns,
        CAST(greatest(k.sum_conn_ns, 60000000000) AS DOUBLE) / 60000000000.0 AS conn_min
    FROM conv c
    JOIN conn_stats k USING (client_ip, server_ip, server_port, transport)
    JOIN slice_stats s USING (client_ip, server_ip, server_port, transport)
)
SELECT
    client_ip, server_ip, server_port, transport, first_seen_ns, last_seen_ns,
    n_conn AS connections, sni, ja3, ja4, dns_name, tls_seen, source,
    packets_up, packets_down, bytes_up, bytes_down,
    CAST(last_seen_ns - first_seen_ns AS DOUBLE) / 1e9 AS span_s,
    CAST(max_conn_ns AS DOUBLE) / 1e9 AS max_conn_s,
    CAST(n_conn AS DOUBLE) AS conn_count,
    CAST(n_conn - 1 AS DOUBLE) * 3600e9
        / CAST(greatest(last_seen_ns - first_seen_ns, 60000000000) AS DOUBLE)
        AS reconnects_per_hour,
    least(1.0, covered_ns
        / CAST(greatest(last_seen_ns - first_seen_ns, 60000000000) AS DOUBLE)) AS coverage,
    CASE WHEN n_slices > 1 THEN CAST(max_gap_ns AS DOUBLE) / 1e9 END AS max_gap_s,
    CAST(n_slices AS DOUBLE) AS slices,
    CASE WHEN n_slices >= 3 AND rate_mean > 0 THEN rate_sd / rate_mean END AS rate_cv,
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
    CAST(payload_down AS DOUBLE) / CAST(nullif(packets_down, 0) AS DOUBLE) AS msg_share_down
FROM joined
ORDER BY first_seen_ns, client_ip, server_ip, server_port, transport
"""
"""The feature query over a table named ``flows``; see the module text."""


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
