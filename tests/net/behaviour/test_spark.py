"""The flow feature query gives the same conversations on Spark as on DuckDB.

Two datasets: flow records of real corpus captures (``read_capture_flows``: bidirectional
one-minute slices with payload counts, TLS names and DNS names; mining over plain and TLS
Stratum, MQTT/CoAP, DNS, HTTPS), and a NetFlow-like export derived from the same records (one
unidirectional record per direction, ``rev_*`` zero, payload counts and TLS names NULL, who
opened unknown), which the Spark side reads back from Parquet files with narrower integer types
and optional columns left out. Both engines must give the same rows in the same order, integers
and strings exactly and floats to a relative 1e-9.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from minewatch.errors import InputError
from minewatch.net.behaviour.features import FEATURE_NAMES, conversation_features
from minewatch.net.flowrec.from_packets import read_capture_flows
from minewatch.net.flowrec.table import FLOW_SCHEMA, INITIATOR_UNKNOWN, conform, empty_flows

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.corpus]

RTOL = 1e-9
ATOL = 1e-12  # for values that are zero in exact arithmetic (a spread of identical rates)
CAPTURES = (
    "mining/local_xmrig_stratum_tls_loopback.pcap",
    "mining/local_cpuminer_vs_npm_stratum_pool.pcap",
    "mining/nesfit_cgminer.s0.pcapng",
    "mining/peafowl_stratum.pcap",
    "mining/zeek-cm_coinhive-stratum.pcap",
    "benign/ndpi_coap_mqtt.pcap",
    "benign/ndpi_tls-appdata.pcap",
    "benign/ndpi_443-firefox.pcap",
    "benign/ndpi_dns.pcap",
)


def _spark_missing() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'minewatch[spark]')"
    if shutil.which("java") is None:
        return "Spark needs a Java runtime (java is not on PATH)"
    return None


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    reason = _spark_missing()
    if reason:
        pytest.skip(reason)
    from minewatch.net.behaviour.spark import spark_session

    session = spark_session("minewatch-flow-tests", cores=2)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def capture_records(corpus: Path) -> pa.Table:
    paths = [corpus / name for name in CAPTURES if (corpus / name).is_file()]
    if len(paths) < len(CAPTURES) // 2:
        pytest.skip("too few of the chosen corpus captures are present")
    table, problems = read_capture_flows(paths)
    assert problems == [], [str(p) for p in problems]
    return table


def _unidirectional(records: pa.Table) -> pa.Table:
    """What a NetFlow v5/v9 exporter would have sent for the same traffic: one record per
    direction that carried packets, counters of the other direction zero, no payload counts,
    no TLS names, and the opener unknown."""
    fwd = records.filter(pc.greater(records["packets"], 0))
    rev = records.filter(pc.greater(records["rev_packets"], 0))
    n_fwd, n_rev = fwd.num_rows, rev.num_rows

    def both(fwd_col: str, rev_col: str) -> pa.ChunkedArray:
        return pa.chunked_array([*fwd[fwd_col].chunks, *rev[rev_col].chunks], type=None)

    zeros = pa.array([0] * (n_fwd + n_rev), pa.int64())
    columns: dict[str, Any] = {
        "start_ns": both("start_ns", "start_ns"),
        "end_ns": both("end_ns", "end_ns"),
        "src_ip": both("src_ip", "dst_ip"),
        "dst_ip": both("dst_ip", "src_ip"),
        "src_port": both("src_port", "dst_port"),
        "dst_port": both("dst_port", "src_port"),
        "protocol": both("protocol", "protocol"),
        "packets": both("packets", "rev_packets"),
        "bytes": both("bytes", "rev_bytes"),
        "rev_packets": zeros,
        "rev_bytes": zeros,
        "tcp_flags": both("tcp_flags", "tcp_flags"),
        "initiator": pa.array([INITIATOR_UNKNOWN] * (n_fwd + n_rev), pa.int8()),
        "dns_name": both("dns_name", "dns_name"),
        "source": pa.array(["netflow-v9"] * (n_fwd + n_rev)),
        "exporter": pa.array(["192.0.2.1"] * (n_fwd + n_rev)),
    }
    return conform(pa.table(columns))


@pytest.fixture(scope="module")
def netflow_records(capture_records: pa.Table) -> pa.Table:
    return _unidirectional(capture_records)


def _assert_same(duck: pa.Table, spark: pa.Table) -> None:
    assert spark.column_names == duck.column_names
    assert spark.num_rows == duck.num_rows
    for name in duck.column_names:
        left, right = duck[name].to_pylist(), spark[name].to_pylist()
        floating = pa.types.is_floating(duck.schema.field(name).type)
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            if a is None or b is None:
                assert a is None and b is None, f"{name} row {i}: DuckDB {a!r}, Spark {b!r}"
            elif floating:
                assert math.isclose(a, b, rel_tol=RTOL, abs_tol=ATOL), (
                    f"{name} row {i}: DuckDB {a!r}, Spark {b!r}"
                )
            else:
                assert a == b, f"{name} row {i}: DuckDB {a!r}, Spark {b!r}"


def _non_null(table: pa.Table, name: str) -> int:
    return int(table.num_rows - table[name].null_count)


@pytest.fixture(scope="module")
def capture_features(spark: SparkSession, capture_records: pa.Table) -> pa.Table:
    from minewatch.net.behaviour.spark import conversation_features_spark, features_to_arrow

    return features_to_arrow(conversation_features_spark(capture_records, spark))


@pytest.fixture(scope="module")
def netflow_parquet(netflow_records: pa.Table, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The NetFlow-like records as two Parquet files, ports and protocol stored as int64 and
    the optional columns a NetFlow archive lacks left out."""
    folder = tmp_path_factory.mktemp("flows")
    absent = {"payload_packets", "rev_payload_packets", "sni", "ja3", "ja4", "tls"}
    kept = [n for n in netflow_records.column_names if n not in absent]
    table = netflow_records.select(kept)
    for name in ("src_port", "dst_port", "protocol"):
        i = table.column_names.index(name)
        table = table.set_column(i, name, table[name].cast(pa.int64()))
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), folder / "part-0.parquet")
    pq.write_table(table.slice(half), folder / "part-1.parquet")
    return folder


@pytest.fixture(scope="module")
def netflow_features(spark: SparkSession, netflow_parquet: Path) -> pa.Table:
    from minewatch.net.behaviour.spark import (
        conversation_features_spark,
        features_to_arrow,
        read_flow_parquet,
    )

    frame = read_flow_parquet([netflow_parquet], spark)
    return features_to_arrow(conversation_features_spark(frame))


def test_capture_records_exercise_the_query(capture_records: pa.Table) -> None:
    # connections cut into several one-minute records (the slice time series is used)
    per_connection = capture_records.group_by(
        ["src_ip", "dst_ip", "src_port", "dst_port", "protocol"]
    ).aggregate([("start_ns", "count")])
    assert pc.max(per_connection["start_ns_count"]).as_py() >= 3
    duck = conversation_features(capture_records)
    assert duck.num_rows >= 20
    assert _non_null(duck, "sni") > 0  # TLS ClientHellos were seen
    assert pc.sum(pc.greater(duck["connections"], 1)).as_py() > 0  # reconnects
    assert set(duck["transport"].to_pylist()) >= {"tcp", "udp"}
    # most features take values here, and some are NULL where the records cannot tell
    valued = [name for name in FEATURE_NAMES if _non_null(duck, name) > 0]
    assert len(valued) >= 0.8 * len(FEATURE_NAMES), set(FEATURE_NAMES) - set(valued)
    assert any(duck[name].null_count > 0 for name in FEATURE_NAMES)


def test_spark_matches_duckdb_on_capture_records(
    capture_records: pa.Table, capture_features: pa.Table
) -> None:
    duck = conversation_features(capture_records)
    _assert_same(duck, capture_features)
    assert set(FEATURE_NAMES) <= set(capture_features.column_names)


def test_netflow_records_are_unidirectional_with_nulls(netflow_records: pa.Table) -> None:
    assert pc.max(netflow_records["rev_packets"]).as_py() == 0
    assert netflow_records["payload_packets"].null_count == netflow_records.num_rows
    assert set(netflow_records["initiator"].to_pylist()) == {INITIATOR_UNKNOWN}
    duck = conversation_features(netflow_records)
    assert duck["msgs_up_per_min"].null_count == duck.num_rows  # no payload counts in NetFlow
    assert _non_null(duck, "mean_pkt_down") > 0  # the two directions were paired again


def test_spark_matches_duckdb_on_netflow_parquet(
    netflow_records: pa.Table, netflow_features: pa.Table
) -> None:
    _assert_same(conversation_features(netflow_records), netflow_features)


def test_empty_records_give_no_rows(spark: SparkSession) -> None:
    from minewatch.net.behaviour.spark import conversation_features_spark, features_to_arrow

    result = features_to_arrow(conversation_features_spark(empty_flows(), spark))
    assert result.num_rows == 0
    assert result.column_names == conversation_features(empty_flows()).column_names


def test_the_flows_view_is_not_left_behind(spark: SparkSession, capture_records: pa.Table) -> None:
    from minewatch.net.behaviour.spark import FLOWS_VIEW, conversation_features_spark

    frame = conversation_features_spark(capture_records.slice(0, 5), spark)
    assert not spark.catalog.tableExists(FLOWS_VIEW)
    assert frame.count() >= 1  # the plan does not need the view any more


def test_parquet_without_a_required_column_is_an_input_error(
    spark: SparkSession, netflow_records: pa.Table, tmp_path: Path
) -> None:
    from minewatch.net.behaviour.spark import read_flow_parquet

    pq.write_table(netflow_records.drop_columns(["bytes"]), tmp_path / "f.parquet")
    with pytest.raises(InputError, match="bytes"):
        read_flow_parquet([tmp_path / "f.parquet"], spark)


def test_missing_parquet_path_is_an_input_error(spark: SparkSession, tmp_path: Path) -> None:
    from minewatch.net.behaviour.spark import read_flow_parquet

    with pytest.raises(InputError, match="cannot read Parquet"):
        read_flow_parquet([tmp_path / "absent"], spark)


def test_spark_schema_follows_the_flow_contract(spark: SparkSession) -> None:
    from minewatch.net.behaviour.spark import flow_spark_schema

    schema = flow_spark_schema()
    assert schema.fieldNames() == FLOW_SCHEMA.names
    assert [f.nullable for f in schema.fields] == [f.nullable for f in FLOW_SCHEMA]
