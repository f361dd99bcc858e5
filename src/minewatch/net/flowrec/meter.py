"""An incremental flow meter: partial flow records in, finished flow records out, bounded memory.

Why: a live interface or a collector delivers traffic batch by batch, and one connection's
packets of one time slice are spread over many batches. The meter keeps one partial record per
(5-tuple, slice) — merging what each batch adds — and hands a record on once it is finished:

* its **slice closed**: the clock passed the slice's end (plus ``grace_ns`` for late records);
  long-lived connections therefore leave the meter slice by slice, summarised incrementally;
* it went **idle**: no packet for ``idle_timeout_ns``;
* its TCP connection **ended** (FIN or RST seen) and ``closed_timeout_ns`` passed;
* it was **evicted**: more than ``max_flows`` partial records were open, and it was the least
  recently active. Evicted records are emitted, not dropped, so no packet is lost; the count is
  reported because an evicted flow may be split into more records than needed.

Records of one connection may arrive in either orientation (a batch that saw no SYN orients by
its first packet); the meter matches both and keeps the orientation whose opener is known. What
only one batch can see — who opened the connection (its SYN) and its TLS ClientHello (SNI, JA3,
JA4) — is remembered per connection (bounded like the open records, forgotten when idle) and
given to the connection's later slices, so a long-lived connection keeps its client and its SNI
in every slice. The clock is the traffic's own (the latest ``end_ns`` seen), or the caller's
``now_ns`` when later.

Merging adds up the counters, and the packet-only counts and sums (payload packets, opens,
open intervals with their sums and sums of squares, so each side's rhythm still adds up), which
stay NULL only when no partial record knew them; ``tls`` is OR-ed. Opens and intervals that
straddle two batches are the packet converter's business: pass one
:class:`~minewatch.net.flowrec.from_packets.OpenState` to every
:func:`~minewatch.net.flowrec.from_packets.records_from_headers` call of the stream.

All work per batch is columnar (Arrow group-by and compute over the open records and the new
ones together); no Python runs per record.

Example::

    meter = FlowMeter(max_flows=100_000, idle_timeout_ns=120 * 10**9)
    finished = meter.update(records_from_headers(headers, source="live"))
    ...
    finished = meter.flush()          # at the end: everything still open
    meter.stats.evicted
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from minewatch.net.flowrec.table import (
    FLOW_SCHEMA,
    INITIATOR_DST,
    INITIATOR_SRC,
    INITIATOR_UNKNOWN,
    conform,
    empty_flows,
)

__all__ = ["FlowMeter", "MeterStats"]

_SECOND = 1_000_000_000
_FIN, _RST = 0x01, 0x04
_PAIRED = (("packets", "rev_packets"), ("bytes", "rev_bytes"))
_PAYLOAD = ("payload_packets", "rev_payload_packets")
_NULLABLE_SUMS = (
    _PAYLOAD,
    ("opens", "rev_opens"),
    ("open_gaps", "rev_open_gaps"),
    ("open_gap_sum", "rev_open_gap_sum"),
    ("open_gap_sumsq", "rev_open_gap_sumsq"),
)
"""Counters and sums only packet sources know (NULL elsewhere): added up, NULL only when every
partial record lacked them."""
_FLOAT_SUMS = frozenset({"open_gap_sum", "open_gap_sumsq"})
_FIRST = ("sni", "ja3", "ja4", "dns_name", "source")
_REMEMBERED = ("sni", "ja3", "ja4")
_MEMORY_SCHEMA = pa.schema(
    [
        pa.field("a_ip", pa.string()),
        pa.field("a_port", pa.int32()),
        pa.field("b_ip", pa.string()),
        pa.field("b_port", pa.int32()),
        pa.field("protocol", pa.int16()),
        pa.field("known_opener", pa.int8()),
        pa.field("known_swap", pa.bool_()),
        *(pa.field(f"known_{name}", pa.string()) for name in _REMEMBERED),
        pa.field("last_ns", pa.int64()),
    ]
)


@dataclass(slots=True)
class MeterStats:
    """What the meter did so far; ``active`` is the number of open partial records now."""

    records_in: int = 0
    records_out: int = 0
    active: int = 0
    peak_active: int = 0
    slice_closed: int = 0
    idle: int = 0
    ended: int = 0
    evicted: int = 0
    flushed: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


Frame = dict[str, Any]
"""Columns by name: numpy arrays for numbers, Arrow arrays for text (nullable)."""


def _np(column: pa.Array | pa.ChunkedArray, dtype: type = np.int64) -> np.ndarray:
    out: np.ndarray = column.to_numpy(zero_copy_only=False).astype(dtype)
    return out


def _text(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], pa.string())
    return column.cast(pa.string())


def _codes(arrays: list[pa.Array]) -> list[np.ndarray]:
    """Integer codes for text columns, shared across them (equal text, equal code; null -1)."""
    lengths = [len(a) for a in arrays]
    encoded = pc.dictionary_encode(pa.concat_arrays(arrays)).indices
    codes = _np(pc.fill_null(encoded, -1))
    return np.split(codes, np.cumsum(lengths)[:-1])


def _groups(keys: list[np.ndarray], then: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The order that sorts rows by ``keys`` and then by ``then``, and where each group starts."""
    order = np.lexsort((then, *reversed(keys)))
    change = np.zeros(order.shape[0], dtype=bool)
    if order.shape[0]:
        change[0] = True
        for key in keys:
            k = key[order]
            change[1:] |= k[1:] != k[:-1]
    return order, np.flatnonzero(change)


def _first_valid(column: pa.Array, order: np.ndarray, starts: np.ndarray, last: bool) -> pa.Array:
    """Per group, the first (or last) non-null value in the sorted order, else null."""
    n = order.shape[0]
    valid = _np(column.is_valid(), bool)[order]
    pos = np.arange(n)
    if last:
        pick = np.maximum.reduceat(np.where(valid, pos, -1), starts)
        missing = pick < 0
    else:
        pick = np.minimum.reduceat(np.where(valid, pos, n), starts)
        missing = pick >= n
    index = pa.array(order[np.clip(pick, 0, max(n - 1, 0))], mask=missing)
    return column.take(index)


def _canonical(t: pa.Table, slice_ns: int) -> Frame:
    """Records keyed direction-free: endpoint ``a`` is the lower (address, port) of the two."""
    src_ip, dst_ip = _text(t.column("src_ip")), _text(t.column("dst_ip"))
    src_port, dst_port = _np(t.column("src_port")), _np(t.column("dst_port"))
    greater = _np(pc.greater(src_ip, dst_ip), bool)
    equal = _np(pc.equal(src_ip, dst_ip), bool)
    swap = greater | (equal & (src_port > dst_port))
    swap_arrow = pa.array(swap)
    init = _np(t.column("initiator"))
    # Opener in canonical terms: 1 = a opened, 2 = b opened, 0 unknown.
    opener = np.where(init == INITIATOR_UNKNOWN, 0, np.where(swap ^ (init == INITIATOR_DST), 2, 1))
    start = _np(t.column("start_ns"))
    f: Frame = {
        "a_ip": pc.if_else(swap_arrow, dst_ip, src_ip),
        "b_ip": pc.if_else(swap_arrow, src_ip, dst_ip),
        "a_port": np.where(swap, dst_port, src_port),
        "b_port": np.where(swap, src_port, dst_port),
        "protocol": _np(t.column("protocol")),
        "slice": start // slice_ns,
        "exporter": _text(t.column("exporter")),
        "start_ns": start,
        "end_ns": _np(t.column("end_ns")),
        "opener": opener,
        "swap": swap,
        "tcp_flags": _np(t.column("tcp_flags")),
    }
    for fwd, rev in _PAIRED:
        a, b = _np(t.column(fwd)), _np(t.column(rev))
        f[f"ab_{fwd}"], f[f"ba_{fwd}"] = np.where(swap, b, a), np.where(swap, a, b)
    for fwd, rev in _NULLABLE_SUMS:
        a, b = t.column(fwd), t.column(rev)
        a_ok, b_ok = _np(a.is_valid(), bool), _np(b.is_valid(), bool)
        dtype = np.float64 if fwd in _FLOAT_SUMS else np.int64
        a_val, b_val = _np(pc.fill_null(a, 0), dtype), _np(pc.fill_null(b, 0), dtype)
        f[f"ab_{fwd}"] = np.where(swap, b_val, a_val)
        f[f"ba_{fwd}"] = np.where(swap, a_val, b_val)
        f[f"ab_{fwd}_ok"] = np.where(swap, b_ok, a_ok)
        f[f"ba_{fwd}_ok"] = np.where(swap, a_ok, b_ok)
    tls = t.column("tls")
    f["tls"] = _np(pc.fill_null(tls, False), bool)
    f["tls_ok"] = _np(tls.is_valid(), bool)
    for name in _FIRST:
        f[name] = _text(t.column(name))
    return f


def _conn_keys(a_code: np.ndarray, b_code: np.ndarray, f: Frame) -> list[np.ndarray]:
    first = (a_code << 16) | f["a_port"]
    second = (((b_code << 16) | f["b_port"]) << 8) | f["protocol"]
    return [first, second]


def _recall(f: Frame, memory: pa.Table) -> None:
    """Fill unknown openers, the first-seen orientation and missing TLS names of canonical
    records from the memory of connections (in place)."""
    n, k = f["start_ns"].shape[0], memory.num_rows
    if n == 0 or k == 0:
        return
    a_code, b_code, ma_code, mb_code = _codes(
        [f["a_ip"], f["b_ip"], _text(memory.column("a_ip")), _text(memory.column("b_ip"))]
    )
    m: Frame = {name: _np(memory.column(name)) for name in ("a_port", "b_port", "protocol")}
    keys = [
        np.concatenate(pair)
        for pair in zip(_conn_keys(a_code, b_code, f), _conn_keys(ma_code, mb_code, m), strict=True)
    ]
    is_memory = np.concatenate([np.zeros(n, dtype=np.int64), np.ones(k, dtype=np.int64)])
    order, starts = _groups(keys, is_memory)
    group = np.cumsum(np.isin(np.arange(n + k), starts)) - 1
    row_of_group = np.full(starts.shape[0], -1, dtype=np.int64)
    in_memory = order >= n
    row_of_group[group[in_memory]] = order[in_memory] - n
    rows = np.empty(n, dtype=np.int64)
    rows[order[~in_memory]] = row_of_group[group[~in_memory]]
    found = rows >= 0
    index = pa.array(np.where(found, rows, 0), mask=~found)
    known_opener = _np(pc.fill_null(memory.column("known_opener").take(index), 0))
    f["opener"] = np.where(f["opener"] == 0, known_opener, f["opener"])
    known_swap = _np(memory.column("known_swap").take(index).fill_null(False), bool)
    f["swap"] = np.where(found, known_swap, f["swap"])
    for name in _REMEMBERED:
        f[name] = pc.coalesce(f[name], _text(memory.column(f"known_{name}").take(index)))


def _merge(f: Frame) -> Frame:
    """One row per (connection, slice, exporter): counters added, first and last packet times,
    flags OR-ed, the opener and names kept; "first" means the earliest partial record."""
    a_code, b_code, e_code = _codes([f["a_ip"], f["b_ip"], f["exporter"]])
    keys = [*_conn_keys(a_code, b_code, f), f["slice"], e_code]
    order, starts = _groups(keys, f["start_ns"])
    lead = order[starts]
    lead_arrow = pa.array(lead)
    m: Frame = {
        "a_ip": f["a_ip"].take(lead_arrow),
        "b_ip": f["b_ip"].take(lead_arrow),
        "exporter": f["exporter"].take(lead_arrow),
    }
    for name in ("a_port", "b_port", "protocol", "slice", "start_ns", "swap"):
        m[name] = f[name][lead]
    if starts.shape[0] == 0:
        empty = np.zeros(0, dtype=np.int64)
        for name in ("end_ns", "opener", "tcp_flags"):
            m[name] = empty
        m["tls"] = m["tls_ok"] = empty.astype(bool)
        for fwd, _ in (*_PAIRED, *_NULLABLE_SUMS):
            for side in ("ab", "ba"):
                m[f"{side}_{fwd}"] = empty.astype(np.float64) if fwd in _FLOAT_SUMS else empty
                m[f"{side}_{fwd}_ok"] = empty.astype(bool)
        for name in _FIRST:
            m[name] = f[name]
        return m
    m["end_ns"] = np.maximum.reduceat(f["end_ns"][order], starts)
    m["opener"] = np.maximum.reduceat(f["opener"][order], starts)
    m["tcp_flags"] = np.bitwise_or.reduceat(f["tcp_flags"][order], starts)
    for fwd, _ in _PAIRED:
        for side in ("ab", "ba"):
            m[f"{side}_{fwd}"] = np.add.reduceat(f[f"{side}_{fwd}"][order], starts)
    for fwd, _ in _NULLABLE_SUMS:
        for side in ("ab", "ba"):
            m[f"{side}_{fwd}"] = np.add.reduceat(f[f"{side}_{fwd}"][order], starts)
            m[f"{side}_{fwd}_ok"] = np.logical_or.reduceat(f[f"{side}_{fwd}_ok"][order], starts)
    m["tls"] = np.logical_or.reduceat(f["tls"][order], starts)
    m["tls_ok"] = np.logical_or.reduceat(f["tls_ok"][order], starts)
    for name in _FIRST:
        m[name] = _first_valid(f[name], order, starts, last=False)
    return m


def _remember(memory: pa.Table, m: Frame, limit: int, forget_before_ns: int) -> pa.Table:
    """The memory updated with what merged records ``m`` tell about their connections (opener,
    first orientation, TLS names), the ``limit`` most recently active connections kept."""
    fresh = pa.table(
        {
            "a_ip": m["a_ip"],
            "a_port": pa.array(m["a_port"], pa.int32()),
            "b_ip": m["b_ip"],
            "b_port": pa.array(m["b_port"], pa.int32()),
            "protocol": pa.array(m["protocol"], pa.int16()),
            "known_opener": pa.array(m["opener"], pa.int8()),
            "known_swap": pa.array(m["swap"]),
            **{f"known_{n}": m[n] for n in _REMEMBERED},
            "last_ns": pa.array(m["end_ns"], pa.int64()),
        },
        schema=_MEMORY_SCHEMA,
    )
    both = pa.concat_tables([memory, fresh])
    last = _np(both.column("last_ns"))
    a_code, b_code = _codes([_text(both.column("a_ip")), _text(both.column("b_ip"))])
    ints: Frame = {name: _np(both.column(name)) for name in ("a_port", "b_port", "protocol")}
    order, starts = _groups(_conn_keys(a_code, b_code, ints), last)
    if starts.shape[0] == 0:
        return memory
    lead = pa.array(order[starts])
    columns: dict[str, Any] = {
        name: both.column(name).take(lead) for name in ("a_ip", "a_port", "b_ip", "b_port")
    }
    columns["protocol"] = both.column("protocol").take(lead)
    opener = _np(both.column("known_opener"))[order]
    columns["known_opener"] = pa.array(np.maximum.reduceat(opener, starts), pa.int8())
    columns["known_swap"] = both.column("known_swap").take(lead)
    for name in _REMEMBERED:
        column = _text(both.column(f"known_{name}"))
        columns[f"known_{name}"] = _first_valid(column, order, starts, last=True)
    newest = np.maximum.reduceat(last[order], starts)
    columns["last_ns"] = pa.array(newest, pa.int64())
    merged = pa.table(columns, schema=_MEMORY_SCHEMA)
    keep = np.flatnonzero(newest >= forget_before_ns)
    if keep.shape[0] > limit:
        keep = keep[np.argsort(-newest[keep], kind="stable")[:limit]]
    return merged.take(pa.array(np.sort(keep)))


def _oriented(m: Frame) -> pa.Table:
    """Merged rows back to :data:`FLOW_SCHEMA`: ``src`` is the opener when known, else the side
    the earliest partial record put there."""
    opener = m["opener"]
    swap = np.where(opener == 0, m["swap"], opener == 2)
    swap_arrow = pa.array(swap, pa.bool_())
    cols: dict[str, Any] = {
        "start_ns": pa.array(m["start_ns"], pa.int64()),
        "end_ns": pa.array(m["end_ns"], pa.int64()),
        "src_ip": pc.if_else(swap_arrow, m["b_ip"], m["a_ip"]),
        "dst_ip": pc.if_else(swap_arrow, m["a_ip"], m["b_ip"]),
        "src_port": pa.array(np.where(swap, m["b_port"], m["a_port"]), pa.int32()),
        "dst_port": pa.array(np.where(swap, m["a_port"], m["b_port"]), pa.int32()),
        "protocol": pa.array(m["protocol"], pa.int16()),
    }
    for fwd, rev in (*_PAIRED, *_NULLABLE_SUMS):
        ab, ba = m[f"ab_{fwd}"], m[f"ba_{fwd}"]
        forward, backward = np.where(swap, ba, ab), np.where(swap, ab, ba)
        kind = pa.float64() if fwd in _FLOAT_SUMS else pa.int64()
        if f"ab_{fwd}_ok" in m:
            ab_ok, ba_ok = m[f"ab_{fwd}_ok"], m[f"ba_{fwd}_ok"]
            fwd_missing = np.logical_not(np.where(swap, ba_ok, ab_ok))
            rev_missing = np.logical_not(np.where(swap, ab_ok, ba_ok))
            cols[fwd] = pa.array(forward, kind, mask=fwd_missing)
            cols[rev] = pa.array(backward, kind, mask=rev_missing)
        else:
            cols[fwd] = pa.array(forward, kind)
            cols[rev] = pa.array(backward, kind)
    cols["tls"] = pa.array(m["tls"], pa.bool_(), mask=np.logical_not(m["tls_ok"]))
    cols["tcp_flags"] = pa.array(m["tcp_flags"], pa.int16())
    cols["initiator"] = pa.array(np.where(opener == 0, INITIATOR_UNKNOWN, INITIATOR_SRC), pa.int8())
    for name in ("sni", "ja3", "ja4", "dns_name", "source", "exporter"):
        cols[name] = m[name]
    return pa.table({f.name: cols[f.name] for f in FLOW_SCHEMA}, schema=FLOW_SCHEMA)


class FlowMeter:
    """Merges partial flow records batch by batch and emits finished ones (see module text)."""

    def __init__(
        self,
        *,
        slice_ns: int = 60 * _SECOND,
        idle_timeout_ns: int = 120 * _SECOND,
        closed_timeout_ns: int = 5 * _SECOND,
        grace_ns: int = 0,
        max_flows: int = 100_000,
    ) -> None:
        if slice_ns <= 0 or idle_timeout_ns <= 0 or closed_timeout_ns < 0 or grace_ns < 0:
            raise ValueError("slice and timeouts must be positive (grace and closed: >= 0)")
        if max_flows < 1:
            raise ValueError("max_flows must be at least 1")
        self.slice_ns = slice_ns
        self.idle_timeout_ns = idle_timeout_ns
        self.closed_timeout_ns = closed_timeout_ns
        self.grace_ns = grace_ns
        self.max_flows = max_flows
        self.stats = MeterStats()
        self.clock_ns = 0
        """The meter's clock: the latest packet time (or ``now_ns``) it was given."""
        self._open = empty_flows()
        self._memory = _MEMORY_SCHEMA.empty_table()

    @property
    def open_records(self) -> pa.Table:
        """The partial records still open (a detector may look at them before they finish)."""
        return self._open

    def update(self, records: pa.Table, now_ns: int | None = None) -> pa.Table:
        """Add ``records`` (FLOW_SCHEMA) and return the records that finished, oldest first."""
        records = conform(records)
        self.stats.records_in += records.num_rows
        if records.num_rows:
            self.clock_ns = max(self.clock_ns, int(pc.max(records.column("end_ns")).as_py()))
        if now_ns is not None:
            self.clock_ns = max(self.clock_ns, int(now_ns))
        if records.num_rows:
            both = pa.concat_tables([self._open, records])
            frame = _canonical(both, self.slice_ns)
            _recall(frame, self._memory)
            merged = _merge(frame)
            self._memory = _remember(
                self._memory, merged, self.max_flows, self.clock_ns - self.idle_timeout_ns
            )
            self._open = _oriented(merged)
        return self._expire()

    def advance(self, now_ns: int) -> pa.Table:
        """Move the clock on without new records (quiet traffic) and return what finished."""
        return self.update(empty_flows(), now_ns)

    def flush(self) -> pa.Table:
        """Emit every open record (end of capture or shutdown)."""
        out = self._open
        self.stats.flushed += out.num_rows
        self.stats.records_out += out.num_rows
        self._open = empty_flows()
        self.stats.active = 0
        return out.sort_by([("start_ns", "ascending")])

    def _expire(self) -> pa.Table:
        t = self._open
        now = self.clock_ns
        start = t.column("start_ns").to_numpy()
        end = t.column("end_ns").to_numpy()
        slice_end = (start // self.slice_ns + 1) * self.slice_ns
        closed = slice_end + self.grace_ns <= now
        idle = ~closed & (end + self.idle_timeout_ns <= now)
        flags = t.column("tcp_flags").to_numpy()
        tcp = t.column("protocol").to_numpy() == 6
        ended = (
            ~closed
            & ~idle
            & tcp
            & ((flags & (_FIN | _RST)) != 0)
            & (end + self.closed_timeout_ns <= now)
        )
        done = closed | idle | ended
        self.stats.slice_closed += int(closed.sum())
        self.stats.idle += int(idle.sum())
        self.stats.ended += int(ended.sum())
        keep = np.flatnonzero(~done)
        evict = np.empty(0, dtype=np.int64)
        if keep.shape[0] > self.max_flows:
            # Least recently active first; ties by start for a stable choice.
            by_age = keep[np.lexsort((start[keep], end[keep]))]
            cut = keep.shape[0] - self.max_flows
            evict, keep = by_age[:cut], np.sort(by_age[cut:])
            self.stats.evicted += int(cut)
        out_rows = np.sort(np.concatenate([np.flatnonzero(done), evict]))
        out = t.take(pa.array(out_rows, type=pa.int64()))
        self._open = t.take(pa.array(keep, type=pa.int64()))
        self.stats.records_out += out.num_rows
        self.stats.active = self._open.num_rows
        self.stats.peak_active = max(self.stats.peak_active, self.stats.active)
        if out.num_rows == 0:
            return empty_flows()
        return out.sort_by([("start_ns", "ascending")])
