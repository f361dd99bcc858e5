"""The one flow-record type every source produces, as an Arrow table.

Why one type: the behaviour model must judge a connection the same way whether its numbers came
from a capture, a router's NetFlow export, Zeek or Suricata. Every source therefore writes the
columns of :data:`FLOW_SCHEMA`, in the units stated here, and the feature pipeline never asks
where a record came from.

A record covers one direction pair of one 5-tuple over one time slice. Sources that export
bidirectional flows (captures, IPFIX biflows, Zeek, Suricata) fill ``rev_*``; unidirectional
exports (NetFlow v5/v9, most IPFIX) write one record per direction with ``rev_*`` zero, and the
feature pipeline pairs them. A long-lived connection may be cut into several records (active
timeout); the pipeline adds them up and uses the slices as a time series.

Units: times are nanoseconds since the Unix epoch, UTC; bytes are IP-layer bytes (IP header
included, link header excluded), as NetFlow counts them.

Example::

    >>> from minewatch.net.flowrec.table import empty_flows, FLOW_SCHEMA
    >>> empty_flows().schema == FLOW_SCHEMA
    True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from minewatch.errors import InputError

__all__ = [
    "FLOW_COLUMNS",
    "FLOW_SCHEMA",
    "INITIATOR_DST",
    "INITIATOR_SRC",
    "INITIATOR_UNKNOWN",
    "OPEN_IDLE_S",
    "assemble_flows",
    "conform",
    "empty_flows",
    "flows_from_columns",
]

INITIATOR_UNKNOWN, INITIATOR_SRC, INITIATOR_DST = 0, 1, 2
"""Values of ``initiator``: who opened the connection, when the source knows (a SYN was seen,
a biflow's direction, Zeek's ``orig``); unknown lets the pipeline decide from ports and peers."""

FLOW_SCHEMA = pa.schema(
    [
        pa.field("start_ns", pa.int64(), nullable=False),
        pa.field("end_ns", pa.int64(), nullable=False),
        pa.field("src_ip", pa.string(), nullable=False),
        pa.field("dst_ip", pa.string(), nullable=False),
        pa.field("src_port", pa.int32(), nullable=False),
        pa.field("dst_port", pa.int32(), nullable=False),
        pa.field("protocol", pa.int16(), nullable=False),
        pa.field("packets", pa.int64(), nullable=False),
        pa.field("bytes", pa.int64(), nullable=False),
        pa.field("rev_packets", pa.int64(), nullable=False),
        pa.field("rev_bytes", pa.int64(), nullable=False),
        pa.field("payload_packets", pa.int64()),
        pa.field("rev_payload_packets", pa.int64()),
        pa.field("opens", pa.int64()),
        pa.field("rev_opens", pa.int64()),
        pa.field("open_gaps", pa.int64()),
        pa.field("open_gap_sum", pa.float64()),
        pa.field("open_gap_sumsq", pa.float64()),
        pa.field("rev_open_gaps", pa.int64()),
        pa.field("rev_open_gap_sum", pa.float64()),
        pa.field("rev_open_gap_sumsq", pa.float64()),
        pa.field("tls", pa.bool_()),
        pa.field("tcp_flags", pa.int16(), nullable=False),
        pa.field("initiator", pa.int8(), nullable=False),
        pa.field("sni", pa.string()),
        pa.field("ja3", pa.string()),
        pa.field("ja4", pa.string()),
        pa.field("dns_name", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("exporter", pa.string()),
    ]
)
"""Columns of a flow-record table.

``start_ns``/``end_ns``: first and last packet of the slice. ``src_*``/``dst_*``: as the source
wrote them (not necessarily client/server). ``protocol``: IP protocol number (6 TCP, 17 UDP).
``packets``/``bytes``: src→dst; ``rev_packets``/``rev_bytes``: dst→src (0 when the source is
unidirectional). ``payload_packets``/``rev_payload_packets``: packets that carried transport
payload, known only from packet sources (null otherwise) — it separates messages from bare ACKs.
``opens``/``rev_opens`` (packet sources only): payload packets by src/dst that *open an
exchange* — the connection carried no payload either way for at least :data:`OPEN_IDLE_S` before
them. Who speaks first after a silence tells a pool's pushed jobs and a miner's Poisson-timed
shares from polling and heartbeats, and it stays visible when TLS hides the bytes.
``open_gaps``/``open_gap_sum``/``open_gap_sumsq`` (and ``rev_*``): count, sum and sum of squares,
in seconds, of the intervals between consecutive opens by the same side within one connection
(each interval counted in the slice of its later open), so each side's rhythm (mean, coefficient
of variation) adds up across slices and batches. ``tls``: a payload began with a TLS record
header, or the source's TLS log matched the flow; null when the source cannot tell.
``tcp_flags``: OR of the TCP flags seen (0 when unknown). ``initiator``: see
:data:`INITIATOR_UNKNOWN`. ``sni``, ``ja3``, ``ja4``: from the TLS ClientHello when seen.
``dns_name``: the name whose DNS answer (seen just before) held ``dst_ip``. ``source``: the format
the record came from (``pcap``, ``live``, ``netflow-v5``, ``netflow-v9``, ``ipfix``, ``nfdump``,
``zeek``, ``suricata``). ``exporter``: the exporting device's address, for collected flows.
"""

FLOW_COLUMNS: tuple[str, ...] = tuple(FLOW_SCHEMA.names)

OPEN_IDLE_S = 1.0
"""Silence (no payload either way) after which a payload packet opens an exchange, in seconds:
longer than a reply takes inside a data centre or across a country, shorter than the seconds
between a pool's jobs, a miner's shares or a poller's requests."""


def empty_flows() -> pa.Table:
    """A flow table with no rows."""
    return FLOW_SCHEMA.empty_table()


def flows_from_columns(columns: Mapping[str, Sequence[Any] | pa.Array], source: str) -> pa.Table:
    """Build a flow table from column data, filling absent optional columns with nulls/defaults.

    ``source`` fills the ``source`` column when it is not given. Required numeric columns that are
    absent default to 0 (``rev_*``, ``tcp_flags``, ``initiator``); the rest must be present.
    """
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise InputError(f"flow columns differ in length: {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    defaults: dict[str, Any] = {"rev_packets": 0, "rev_bytes": 0, "tcp_flags": 0, "initiator": 0}
    arrays = []
    for field in FLOW_SCHEMA:
        if field.name in columns:
            arrays.append(pa.array(columns[field.name], type=field.type))
        elif field.name == "source":
            arrays.append(pa.array([source] * n, type=field.type))
        elif field.name in defaults:
            arrays.append(pa.array([defaults[field.name]] * n, type=field.type))
        elif field.nullable:
            arrays.append(pa.nulls(n, type=field.type))
        else:
            raise InputError(f"flow records need the column {field.name!r}")
    return pa.Table.from_arrays(arrays, schema=FLOW_SCHEMA)


def conform(table: pa.Table) -> pa.Table:
    """Return ``table`` with exactly :data:`FLOW_SCHEMA` (columns ordered, types cast).

    Raises :class:`InputError` naming the column when one is missing or cannot be cast, so a
    source that drifts from the contract fails loudly at its edge, not deep in the pipeline.
    """
    missing = [f.name for f in FLOW_SCHEMA if f.name not in table.column_names and not f.nullable]
    if missing:
        raise InputError(f"flow records lack the columns {', '.join(missing)}")
    arrays = []
    for field in FLOW_SCHEMA:
        if field.name not in table.column_names:
            arrays.append(pa.nulls(table.num_rows, type=field.type))
            continue
        column = table.column(field.name)
        try:
            arrays.append(column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(f"flow column {field.name!r}: {exc}") from exc
    return pa.Table.from_arrays(arrays, schema=FLOW_SCHEMA)


def assemble_flows(arrays: Mapping[str, pa.Array], n: int) -> pa.Table:
    """A flow table from ready Arrow arrays of ``n`` rows (the fast path of columnar sources):
    nullable columns a source cannot fill may be left out and become nulls, so a source need not
    change when the schema gains a column only other sources know."""
    columns = []
    for field in FLOW_SCHEMA:
        array = arrays.get(field.name)
        if array is None:
            if not field.nullable:
                raise InputError(f"flow records need the column {field.name!r}")
            array = pa.nulls(n, type=field.type)
        columns.append(array)
    return pa.Table.from_arrays(columns, schema=FLOW_SCHEMA)
