"""The flow meter: batch by batch it gives the records one pass over the whole capture gives,
and with little memory it splits flows but never loses a packet."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from minewatch.net.capture.decode import decode_headers
from minewatch.net.capture.reader import PacketTable, read_capture
from minewatch.net.flowrec.from_packets import OpenState, records_from_headers
from minewatch.net.flowrec.meter import FlowMeter
from minewatch.net.flowrec.table import FLOW_SCHEMA, empty_flows, flows_from_columns

SAMPLE = Path(__file__).resolve().parents[3] / "src/minewatch/data/sample/minewatch-sample.pcap"
SECOND = 1_000_000_000
CORPUS_FILES = [
    "mining/local_xmrig_stratum_tls_loopback.pcap",
    "mining/zeek-cm_coinhive.pcap",
    "benign/ndpi_tls-appdata.pcap",
    "benign/ndpi_443-chrome.pcap",
]
COUNTERS = [
    "packets",
    "rev_packets",
    "bytes",
    "rev_bytes",
    "payload_packets",
    "rev_payload_packets",
]


def batches(table: PacketTable, size: int) -> list[PacketTable]:
    return [
        PacketTable(
            path=table.path,
            buf=table.buf,
            offset=table.offset[a : a + size],
            caplen=table.caplen[a : a + size],
            ts_ns=table.ts_ns[a : a + size],
            linktype=table.linktype[a : a + size],
        )
        for a in range(0, len(table), size)
    ]


def records(table: PacketTable, slice_ns: int) -> pa.Table:
    return records_from_headers(decode_headers(table), slice_ns=slice_ns, source="live", dns=False)


def metered(table: PacketTable, size: int, meter: FlowMeter) -> pa.Table:
    out = [meter.update(records(part, meter.slice_ns)) for part in batches(table, size)]
    out.append(meter.flush())
    return pa.concat_tables(out)


OPEN_COLUMNS = [
    "opens",
    "rev_opens",
    "open_gaps",
    "open_gap_sum",
    "open_gap_sumsq",
    "rev_open_gaps",
    "rev_open_gap_sum",
    "rev_open_gap_sumsq",
]
"""What a batch cannot know in full: whether its first payload packet follows a silence, and
the interval to an open in an earlier batch."""

SORT_KEYS = [
    ("start_ns", "ascending"),
    ("src_ip", "ascending"),
    ("src_port", "ascending"),
    ("dst_port", "ascending"),
]


def canonical(t: pa.Table) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = t.drop_columns(OPEN_COLUMNS).sort_by(SORT_KEYS).to_pylist()
    return rows


def assert_opens_at_most(got: pa.Table, whole: pa.Table) -> None:
    """Batches never invent an open or an interval: each record holds at most what one pass
    over all packets finds (and the same when nothing crossed a batch boundary)."""
    a, b = got.sort_by(SORT_KEYS), whole.sort_by(SORT_KEYS)
    for name in ("opens", "rev_opens", "open_gaps", "rev_open_gaps"):
        mine = a.column(name).to_numpy(zero_copy_only=False)
        full = b.column(name).to_numpy(zero_copy_only=False)
        assert (mine <= full).all(), name


def per_flow_slice(t: pa.Table, slice_ns: int) -> pa.Table:
    """Counters per connection (either orientation) and slice: what splitting must preserve."""
    lo = pc.less_equal(t["src_port"], t["dst_port"])
    t = pa.table(
        {
            "p1": pc.if_else(lo, t["src_port"], t["dst_port"]),
            "p2": pc.if_else(lo, t["dst_port"], t["src_port"]),
            "slice": pc.divide(t["start_ns"], slice_ns),
            "all_packets": pc.add(t["packets"], t["rev_packets"]),
            "all_bytes": pc.add(t["bytes"], t["rev_bytes"]),
            "start_ns": t["start_ns"],
            "end_ns": t["end_ns"],
        }
    )
    agg = t.group_by(["p1", "p2", "slice"]).aggregate(
        [("all_packets", "sum"), ("all_bytes", "sum"), ("start_ns", "min"), ("end_ns", "max")]
    )
    return agg.sort_by([("p1", "ascending"), ("p2", "ascending"), ("slice", "ascending")])


@pytest.mark.parametrize("size", [3, 37, 500])
def test_batches_give_the_records_of_one_pass(size: int) -> None:
    table = read_capture(SAMPLE)
    slice_ns = 10 * SECOND
    whole = records(table, slice_ns)
    meter = FlowMeter(slice_ns=slice_ns, idle_timeout_ns=3600 * SECOND, max_flows=10_000)
    got = metered(table, size, meter)
    assert got.schema == FLOW_SCHEMA
    assert canonical(got) == canonical(whole)
    assert_opens_at_most(got, whole)
    assert meter.stats.evicted == 0 and meter.stats.records_out == whole.num_rows


@pytest.mark.corpus
@pytest.mark.parametrize("name", CORPUS_FILES)
def test_batches_match_one_pass_on_tls_captures(corpus: Path, name: str) -> None:
    table = read_capture(corpus / name)
    slice_ns = 5 * SECOND
    whole = records(table, slice_ns)
    # A second of grace: captures hold the odd packet stamped before its predecessor.
    meter = FlowMeter(slice_ns=slice_ns, idle_timeout_ns=10**6 * SECOND, grace_ns=SECOND)
    got = metered(table, 41, meter)
    assert per_flow_slice(got, slice_ns).equals(per_flow_slice(whole, slice_ns))
    if (np.diff(table.ts_ns) >= -meter.grace_ns).all():
        assert canonical(got) == canonical(whole)
    else:  # a packet stamped far before its predecessor may arrive after its slice left
        assert got.num_rows >= whole.num_rows
    # The SNI read from one batch's ClientHello reaches the connection's later slices.
    assert sorted(filter(None, got["sni"].to_pylist())) == sorted(
        filter(None, whole["sni"].to_pylist())
    )


def test_long_flows_leave_slice_by_slice() -> None:
    table = read_capture(SAMPLE)
    slice_ns = 5 * SECOND
    meter = FlowMeter(slice_ns=slice_ns, idle_timeout_ns=3600 * SECOND)
    before_flush = 0
    for part in batches(table, 20):
        out = meter.update(records(part, slice_ns))
        before_flush += out.num_rows
        if out.num_rows:  # only slices that ended before the meter's clock leave early
            ends = (out["start_ns"].to_numpy() // slice_ns + 1) * slice_ns
            assert (ends <= meter.clock_ns).all()
    assert before_flush > 0 and meter.stats.slice_closed == before_flush
    assert meter.stats.peak_active < meter.stats.records_out


@pytest.mark.parametrize("max_flows", [1, 2])
def test_small_memory_splits_but_loses_nothing(max_flows: int) -> None:
    table = read_capture(SAMPLE)
    slice_ns = 10 * SECOND
    whole = records(table, slice_ns)
    meter = FlowMeter(slice_ns=slice_ns, idle_timeout_ns=3600 * SECOND, max_flows=max_flows)
    got = metered(table, 5, meter)
    assert meter.stats.evicted > 0
    assert meter.stats.peak_active <= max_flows
    assert got.num_rows > whole.num_rows
    assert per_flow_slice(got, slice_ns).equals(per_flow_slice(whole, slice_ns))
    assert meter.stats.records_out == got.num_rows


def test_idle_flows_expire() -> None:
    table = read_capture(SAMPLE)
    slice_ns = 3600 * SECOND
    whole = records(table, slice_ns)
    meter = FlowMeter(slice_ns=slice_ns, idle_timeout_ns=SECOND, max_flows=1000)
    got = metered(table, 5, meter)
    assert meter.stats.idle > 0
    assert per_flow_slice(got, slice_ns).equals(per_flow_slice(whole, slice_ns))


def _rec(**kw: object) -> pa.Table:
    base: dict[str, object] = {
        "start_ns": 1_000,
        "end_ns": 2_000,
        "src_ip": "10.0.0.1",
        "dst_ip": "10.0.0.2",
        "src_port": 40000,
        "dst_port": 3333,
        "protocol": 6,
        "packets": 3,
        "bytes": 300,
        "rev_packets": 2,
        "rev_bytes": 200,
        "tcp_flags": 0x18,
        "initiator": 0,
    }
    base.update(kw)
    return flows_from_columns({k: [v] for k, v in base.items()}, source="live")


def test_reversed_partial_merges_and_the_known_opener_orients() -> None:
    meter = FlowMeter(slice_ns=60 * SECOND)
    meter.update(_rec())
    meter.update(
        _rec(
            src_ip="10.0.0.2",
            dst_ip="10.0.0.1",
            src_port=3333,
            dst_port=40000,
            start_ns=3_000,
            end_ns=4_000,
            packets=1,
            bytes=50,
            rev_packets=4,
            rev_bytes=400,
            initiator=1,
            tcp_flags=0x02,
        )
    )
    (row,) = meter.flush().to_pylist()
    assert (row["src_ip"], row["src_port"], row["initiator"]) == ("10.0.0.2", 3333, 1)
    assert (row["packets"], row["rev_packets"], row["bytes"], row["rev_bytes"]) == (3, 7, 250, 700)
    assert (row["start_ns"], row["end_ns"], row["tcp_flags"]) == (1_000, 4_000, 0x1A)


def test_opener_and_sni_carry_to_later_slices() -> None:
    meter = FlowMeter(slice_ns=10 * SECOND)
    first = meter.update(_rec(initiator=2, sni="pool.example", ja3="a" * 32))
    later = _rec(start_ns=25 * SECOND, end_ns=26 * SECOND, initiator=0)
    second = meter.update(later)
    assert (first.num_rows, second.num_rows) == (0, 1)  # slice 0 left once the clock passed it
    rows = canonical(pa.concat_tables([second, meter.flush()]))
    assert [r["src_ip"] for r in rows] == ["10.0.0.2", "10.0.0.2"]
    assert [r["sni"] for r in rows] == ["pool.example", "pool.example"]


def test_ended_tcp_flows_leave_after_the_closing_timeout() -> None:
    meter = FlowMeter(
        slice_ns=3600 * SECOND, idle_timeout_ns=600 * SECOND, closed_timeout_ns=2 * SECOND
    )
    meter.update(_rec(tcp_flags=0x11, end_ns=SECOND))
    assert meter.advance(2 * SECOND).num_rows == 0
    assert meter.advance(3 * SECOND).num_rows == 1
    assert meter.stats.ended == 1 and meter.stats.active == 0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        FlowMeter(max_flows=0)
    with pytest.raises(ValueError):
        FlowMeter(slice_ns=0)


def test_empty_batches_are_harmless() -> None:
    meter = FlowMeter()
    assert meter.update(empty_flows()).num_rows == 0
    assert meter.flush().num_rows == 0
    assert np.int64(meter.stats.records_in) == 0


def test_open_counts_and_sums_add_up_and_tls_is_ored() -> None:
    meter = FlowMeter(slice_ns=60 * SECOND)
    meter.update(_rec(opens=2, rev_opens=1, open_gaps=1, open_gap_sum=20.0,
                      open_gap_sumsq=400.0, tls=False))  # fmt: skip
    # The same connection, reversed, later in the slice: its rev_* are the first record's src.
    meter.update(
        _rec(
            src_ip="10.0.0.2",
            dst_ip="10.0.0.1",
            src_port=3333,
            dst_port=40000,
            start_ns=3_000,
            end_ns=4_000,
            opens=3,
            rev_opens=4,
            rev_open_gaps=2,
            rev_open_gap_sum=50.0,
            rev_open_gap_sumsq=1300.0,
            tls=True,
        )
    )
    (row,) = meter.flush().to_pylist()
    assert (row["src_ip"], row["opens"], row["rev_opens"]) == ("10.0.0.1", 6, 4)
    assert (row["open_gaps"], row["open_gap_sum"], row["open_gap_sumsq"]) == (3, 70.0, 1700.0)
    # No partial record knew 10.0.0.2's intervals: still unknown, not zero.
    assert row["rev_open_gaps"] is None and row["rev_open_gap_sum"] is None
    assert row["tls"] is True


def test_open_columns_stay_null_when_no_source_knew_them() -> None:
    meter = FlowMeter(slice_ns=60 * SECOND)
    meter.update(_rec())
    meter.update(_rec(start_ns=3_000, end_ns=4_000))
    (row,) = meter.flush().to_pylist()
    assert row["packets"] == 6
    assert all(row[name] is None for name in ("opens", "open_gap_sum", "rev_opens", "tls"))


def metered_with_state(table: PacketTable, size: int, meter: FlowMeter) -> pa.Table:
    state = OpenState()
    out = []
    for part in batches(table, size):
        h = decode_headers(part)
        recs = records_from_headers(
            h, slice_ns=meter.slice_ns, source="live", dns=False, opens_state=state
        )
        out.append(meter.update(recs))
    out.append(meter.flush())
    return pa.concat_tables(out)


def open_rows(t: pa.Table) -> list[dict[str, object]]:
    cols = [*OPEN_COLUMNS, "src_port", "dst_port", "start_ns"]
    rows: list[dict[str, object]] = (
        t.select(cols).sort_by(SORT_KEYS[:1] + SORT_KEYS[2:]).to_pylist()
    )
    for row in rows:  # sums of seconds may differ in the last bits with the order of addition
        for name in ("open_gap_sum", "open_gap_sumsq", "rev_open_gap_sum", "rev_open_gap_sumsq"):
            row[name] = round(float(cast(float, row[name]) or 0.0), 6)
    return rows


@pytest.mark.corpus
@pytest.mark.parametrize("size", [2, 5, 41])
@pytest.mark.parametrize(
    "name",
    ["mining/local_xmrig_stratum_loopback.pcap", "mining/local_xmrig_stratum_tls_loopback.pcap"],
)
def test_open_state_carries_opens_across_batches(corpus: Path, name: str, size: int) -> None:
    """With an OpenState, a live meter fed small batches counts every open and interval as one
    pass over the whole capture does, including those that straddle batch boundaries."""
    table = read_capture(corpus / name)
    slice_ns = 10 * SECOND
    whole = records(table, slice_ns)
    assert pc.sum(whole["opens"]).as_py() >= 2  # the capture has exchanges to count
    meter = FlowMeter(slice_ns=slice_ns, idle_timeout_ns=3600 * SECOND, max_flows=10_000)
    got = metered_with_state(table, size, meter)
    assert open_rows(got) == open_rows(whole)
    # Without the state, batches of two packets lose intervals (the check above is not vacuous).
    plain = metered(table, size, FlowMeter(slice_ns=slice_ns, idle_timeout_ns=3600 * SECOND))
    lost = pc.sum(plain["open_gaps"]).as_py() < pc.sum(whole["open_gaps"]).as_py()
    assert lost or size > 2


def test_open_state_forgets_idle_connections() -> None:
    state = OpenState(idle_ns=10 * SECOND, max_connections=2)
    keys = np.array([5, 7], dtype=np.uint64)
    state.update(keys, np.array([[1, 1, -1, 0], [2, -1, 2, 0]], dtype=np.int64), now_ns=SECOND)
    assert state.lookup(np.array([7, 9], dtype=np.uint64)).tolist() == [
        [2, -1, 2, 0],
        [-1, -1, -1, -1],
    ]
    state.update(np.array([9], dtype=np.uint64), np.array([[3, 3, 3, 0]]), now_ns=20 * SECOND)
    assert len(state) == 1  # 5 and 7 were quiet for longer than idle_ns
