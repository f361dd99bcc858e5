"""conversation_features: orientation, pairing of unidirectional records, nulls where a source
cannot tell, and independence from ports and addresses."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from minewatch.net.behaviour.features import (
    FEATURE_NAMES,
    PACKET_ONLY_COLUMNS,
    conversation_features,
    flow_export_view,
)
from minewatch.net.flowrec.table import flows_from_columns

MIN = 60_000_000_000
T0 = 1_700_000_000 * 10**9


def slices(client: str = "10.0.0.5", server: str = "192.0.2.7", cport: int = 40000,
           sport: int = 443, minutes: int = 10, initiator: int = 1) -> pa.Table:  # fmt: skip
    """A pool-like session as one-minute bidirectional slices (12 up / 10 down packets)."""
    n = minutes
    return flows_from_columns(
        {
            "start_ns": [T0 + i * MIN for i in range(n)],
            "end_ns": [T0 + i * MIN + 55 * 10**9 for i in range(n)],
            "src_ip": [client] * n,
            "dst_ip": [server] * n,
            "src_port": [cport] * n,
            "dst_port": [sport] * n,
            "protocol": [6] * n,
            "packets": [12] * n,
            "bytes": [12 * 100] * n,
            "rev_packets": [10] * n,
            "rev_bytes": [10 * 250] * n,
            "payload_packets": [4] * n,
            "rev_payload_packets": [3] * n,
            "initiator": [initiator] * n,
        },
        source="pcap",
    )


def one(table: pa.Table) -> dict[str, Any]:
    rows: list[dict[str, Any]] = conversation_features(table).to_pylist()
    assert len(rows) == 1
    return rows[0]


def test_pool_like_session_features() -> None:
    row = one(slices())
    assert (row["client_ip"], row["server_ip"], row["server_port"]) == (
        "10.0.0.5",
        "192.0.2.7",
        443,
    )
    assert row["span_s"] == pytest.approx(9 * 60 + 55)
    assert row["connections"] == 1
    assert row["slices"] == 10
    assert row["rate_cv"] == pytest.approx(0.0)
    assert row["mean_pkt_up"] == pytest.approx(100.0)
    assert row["mean_pkt_down"] == pytest.approx(250.0)
    per_min = 60 / (9 * 60 + 55)
    assert row["msgs_up_per_min"] == pytest.approx(40 * per_min)
    assert row["msgs_down_per_min"] == pytest.approx(30 * per_min)
    assert row["coverage"] == pytest.approx(1.0)
    assert row["up_pkt_share"] == pytest.approx(120 / 220)


def test_features_do_not_depend_on_ports_or_addresses() -> None:
    a = one(slices())
    b = one(slices(client="2001:db8::9", server="198.51.100.1", cport=51000, sport=3333))
    for name in FEATURE_NAMES:
        assert a[name] == pytest.approx(b[name], nan_ok=True), name


def test_unidirectional_records_are_paired_and_oriented() -> None:
    bi = slices(initiator=0)
    cols = {name: bi.column(name) for name in bi.column_names}
    fwd = dict(cols, rev_packets=pc.multiply(cols["rev_packets"], 0),
               rev_bytes=pc.multiply(cols["rev_bytes"], 0),
               payload_packets=pa.nulls(bi.num_rows, pa.int64()),
               rev_payload_packets=pa.nulls(bi.num_rows, pa.int64()))  # fmt: skip
    rev = dict(fwd, src_ip=cols["dst_ip"], dst_ip=cols["src_ip"], src_port=cols["dst_port"],
               dst_port=cols["src_port"], packets=cols["rev_packets"], bytes=cols["rev_bytes"])  # fmt: skip
    uni = pa.concat_tables(
        [flows_from_columns(fwd, "netflow-v5"), flows_from_columns(rev, "netflow-v5")]
    )
    # A second client of the same server endpoint makes the server the shared side.
    uni = pa.concat_tables([uni, flows_from_columns(
        {k: v for k, v in fwd.items() if k != "source"} | {
            "src_ip": pa.array(["10.0.0.6"] * bi.num_rows)}, "netflow-v5")])  # fmt: skip
    rows = {r["client_ip"]: r for r in conversation_features(uni).to_pylist()}
    assert set(rows) == {"10.0.0.5", "10.0.0.6"}
    row, ref = rows["10.0.0.5"], one(slices())
    assert row["server_port"] == 443
    for name in ("mean_pkt_up", "mean_pkt_down", "pkts_up_per_min", "up_byte_share"):
        assert row[name] == pytest.approx(ref[name]), name
    assert row["msgs_up_per_min"] is None  # NetFlow has no payload counts
    assert row["msg_share_down"] is None


def test_one_summary_record_leaves_series_features_null() -> None:
    zeek = flows_from_columns(
        {"start_ns": [T0], "end_ns": [T0 + 3600 * 10**9], "src_ip": ["10.0.0.5"],
         "dst_ip": ["192.0.2.7"], "src_port": [40000], "dst_port": [443], "protocol": [6],
         "packets": [500], "bytes": [50_000], "rev_packets": [400], "rev_bytes": [90_000],
         "initiator": [1]},
        source="zeek",
    )  # fmt: skip
    row = one(zeek)
    assert row["rate_cv"] is None and row["open_cv_up"] is None
    assert row["max_conn_s"] == pytest.approx(3600)
    assert row["pkts_up_per_min"] == pytest.approx(500 / 60)


def test_reconnects_and_gaps() -> None:
    first = slices(minutes=3)
    second = slices(cport=40001, minutes=3)
    second = second.set_column(0, second.schema.field(0), pc.add(second["start_ns"], 10 * MIN))
    second = second.set_column(1, second.schema.field(1), pc.add(second["end_ns"], 10 * MIN))
    row = one(pa.concat_tables([first, second]))
    assert row["connections"] == 2
    # 3 + 3 covered minutes of a 12:55 span (2:55 -> 10:00 silent)
    assert row["coverage"] == pytest.approx(6 * 60 / (12 * 60 + 55))
    assert math.isfinite(row["reconnects_per_hour"]) and row["reconnects_per_hour"] > 0


def test_empty() -> None:
    assert conversation_features(slices().slice(0, 0)).num_rows == 0


def with_opens(table: pa.Table, **columns: list[Any]) -> pa.Table:
    for name, values in columns.items():
        at = table.schema.get_field_index(name)
        table = table.set_column(
            at, table.schema.field(name), pa.array(values, table.schema.field(name).type)
        )
    return table


def test_open_rhythm_features_add_up_across_slices() -> None:
    """Per minute: the client opens twice (intervals 20 s and 40 s: CV of the pooled
    intervals from sums), the server once (every 60 s: CV 0)."""
    n = 10
    t = with_opens(
        slices(minutes=n),
        opens=[2] * n, rev_opens=[1] * n,
        open_gaps=[2] * n, open_gap_sum=[60.0] * n, open_gap_sumsq=[20.0**2 + 40.0**2] * n,
        rev_open_gaps=[1] * n, rev_open_gap_sum=[60.0] * n, rev_open_gap_sumsq=[3600.0] * n,
    )  # fmt: skip
    row = one(t)
    per_min = 60 / (9 * 60 + 55)
    assert row["opens_up_per_min"] == pytest.approx(20 * per_min)
    assert row["opens_down_per_min"] == pytest.approx(10 * per_min)
    assert row["server_open_share"] == pytest.approx(1 / 3)
    assert row["both_open"] == 1.0
    assert row["open_gap_up_s"] == pytest.approx(30.0)
    assert row["open_gap_down_s"] == pytest.approx(60.0)
    gaps = [20.0, 40.0] * n
    mean = sum(gaps) / len(gaps)
    sd = math.sqrt(sum((g - mean) ** 2 for g in gaps) / (len(gaps) - 1))
    assert row["open_cv_up"] == pytest.approx(sd / mean)
    assert row["open_cv_down"] == pytest.approx(0.0, abs=1e-6)


def test_open_features_follow_orientation() -> None:
    """Records written server->client (src = server) give the same client/server opens."""
    n = 5
    fwd = with_opens(slices(minutes=n), opens=[3] * n, rev_opens=[1] * n)
    cols = {name: fwd.column(name) for name in fwd.column_names}
    rev = flows_from_columns(
        dict(cols, src_ip=cols["dst_ip"], dst_ip=cols["src_ip"], src_port=cols["dst_port"],
             dst_port=cols["src_port"], packets=cols["rev_packets"], rev_packets=cols["packets"],
             bytes=cols["rev_bytes"], rev_bytes=cols["bytes"], opens=cols["rev_opens"],
             rev_opens=cols["opens"], payload_packets=cols["rev_payload_packets"],
             rev_payload_packets=cols["payload_packets"],
             initiator=pa.array([2] * n, pa.int8())),
        "pcap",
    )  # fmt: skip
    a, b = one(fwd), one(rev)
    assert (b["client_ip"], b["server_port"]) == ("10.0.0.5", 443)
    for name in ("opens_up_per_min", "opens_down_per_min", "server_open_share", "both_open"):
        assert a[name] == pytest.approx(b[name]), name
    assert a["server_open_share"] == pytest.approx(0.25)


def test_sources_without_opens_leave_them_null() -> None:
    row = one(slices())  # no open columns: as NetFlow, Zeek or Suricata
    for name in ("opens_up_per_min", "server_open_share", "both_open", "open_cv_up"):
        assert row[name] is None, name


def test_export_view_is_one_record_per_connection_without_packet_columns() -> None:
    n = 10
    t = with_opens(
        slices(minutes=n), opens=[2] * n, rev_opens=[1] * n, tls=[True] * n,
        open_gaps=[2] * n, open_gap_sum=[60.0] * n, open_gap_sumsq=[2000.0] * n,
    )  # fmt: skip
    view = flow_export_view(t)
    assert view.num_rows == 1
    for name in PACKET_ONLY_COLUMNS:
        assert view[name].null_count == 1, name
    for name in ("packets", "bytes", "rev_packets", "rev_bytes"):
        assert view[name][0].as_py() == pc.sum(t[name]).as_py(), name
    assert view["start_ns"][0].as_py() == T0
    assert view["end_ns"][0].as_py() == pc.max(t["end_ns"]).as_py()
    full, export = one(t), one(view)
    # What only packets show is missing; totals, sizes and timing stay as they were.
    assert export["opens_up_per_min"] is None and export["msgs_up_per_min"] is None
    assert export["slices"] == 1.0 and export["rate_cv"] is None
    for name in ("span_s", "max_conn_s", "pkts_up_per_min", "mean_pkt_down", "up_byte_share"):
        assert export[name] == pytest.approx(full[name]), name
