"""The flow-record contract: every way of building a table yields exactly FLOW_SCHEMA, and what
a source cannot fill is null, never invented."""

from __future__ import annotations

import pyarrow as pa
import pytest

from minewatch.errors import InputError
from minewatch.net.flowrec.table import (
    FLOW_SCHEMA,
    assemble_flows,
    conform,
    empty_flows,
    flows_from_columns,
)

REQUIRED = {
    "start_ns": [1_000],
    "end_ns": [2_000],
    "src_ip": ["192.0.2.1"],
    "dst_ip": ["198.51.100.7"],
    "src_port": [40_000],
    "dst_port": [3_333],
    "protocol": [6],
    "packets": [4],
    "bytes": [400],
}


def test_columns_fill_defaults_and_nulls() -> None:
    table = flows_from_columns(REQUIRED, source="netflow-v9")
    assert table.schema == FLOW_SCHEMA
    row = table.to_pylist()[0]
    assert (row["rev_packets"], row["tcp_flags"], row["initiator"]) == (0, 0, 0)
    assert row["source"] == "netflow-v9"
    assert row["opens"] is None and row["tls"] is None and row["payload_packets"] is None
    with pytest.raises(InputError, match="src_ip"):
        flows_from_columns({k: v for k, v in REQUIRED.items() if k != "src_ip"}, "x")
    with pytest.raises(InputError, match="differ in length"):
        flows_from_columns({**REQUIRED, "bytes": [1, 2]}, "x")


def test_assemble_leaves_unknown_columns_null_and_refuses_missing_required() -> None:
    arrays = {f.name: pa.array(v, FLOW_SCHEMA.field(f.name).type) for f in FLOW_SCHEMA
              for k, v in REQUIRED.items() if k == f.name}  # fmt: skip
    arrays |= {
        "rev_packets": pa.array([3], pa.int64()),
        "rev_bytes": pa.array([300], pa.int64()),
        "tcp_flags": pa.array([0x1B], pa.int16()),
        "initiator": pa.array([1], pa.int8()),
        "source": pa.array(["nfdump"]),
    }
    table = assemble_flows(arrays, 1)
    assert table.schema == FLOW_SCHEMA
    assert table.column("rev_open_gap_sumsq").null_count == 1
    del arrays["packets"]
    with pytest.raises(InputError, match="packets"):
        assemble_flows(arrays, 1)


def test_conform_orders_casts_and_names_the_bad_column() -> None:
    given = flows_from_columns(REQUIRED, source="zeek")
    shuffled = given.select(list(reversed(given.column_names))).drop_columns(["ja4"])
    assert conform(shuffled).equals(given)
    bad = given.set_column(
        given.schema.get_field_index("src_port"), "src_port", pa.array(["not a port"])
    )
    with pytest.raises(InputError, match="src_port"):
        conform(bad)
    assert conform(empty_flows()).num_rows == 0
