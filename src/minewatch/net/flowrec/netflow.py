"""Decode NetFlow v5, NetFlow v9 and IPFIX export datagrams into flow-record tables.

Why batched: a router exports tens of thousands of datagrams a second, each holding a few dozen
records. Python touches each *datagram* once (headers, set boundaries, templates: a handful of
``struct`` reads) and only files the raw bytes of its data sets under their template. Records are
decoded at :meth:`NetflowDecoder.flush`, all the records of one template at once, through a numpy
structured dtype built from that template, so the per-record work is numpy's.

Bad input never raises out of :meth:`NetflowDecoder.feed`: a datagram is either decoded or
counted in :class:`DecoderStats` with a reason (``malformed``, by reason), and a data set whose
template has not arrived yet is held back for a while (templates are typically re-sent every few
seconds or packets) and decoded when it arrives, or counted as ``unknown_template_sets`` when the
hold expires. Sequence numbers are tracked per exporter and observation domain / source id, and
gaps (lost datagrams or records) are reported per exporter.

Example::

    >>> decoder = NetflowDecoder()
    >>> decoder.feed(b"\\x00\\x05", "192.0.2.1", now_ns=0)
    0
    >>> decoder.stats.malformed
    {'datagram shorter than its header': 1}
"""

from __future__ import annotations

import socket
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from numba import njit

from minewatch.net.flowrec.table import (
    INITIATOR_DST,
    INITIATOR_SRC,
    INITIATOR_UNKNOWN,
    assemble_flows,
    empty_flows,
)

__all__ = [
    "DecoderStats",
    "NetflowDecoder",
    "SequenceGap",
    "SequenceTracker",
    "Template",
    "TemplateCache",
    "TemplateField",
    "flows_table",
    "ipv4_text",
    "ipv6_text",
]

_NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01
_VARIABLE = 65535  # IPFIX field length meaning "variable length"
_REVERSE_PEN = 29305  # RFC 5103 reverse information elements

# IANA information element ids (NetFlow v9 uses the same numbers below 128).
IE_OCTETS, IE_PACKETS, IE_PROTOCOL, IE_TCP_FLAGS = 1, 2, 4, 6
IE_SRC_PORT, IE_SRC_V4, IE_DST_PORT, IE_DST_V4 = 7, 8, 11, 12
IE_END_UPTIME, IE_START_UPTIME = 21, 22
IE_OUT_OCTETS, IE_OUT_PACKETS = 23, 24
IE_SRC_V6, IE_DST_V6 = 27, 28
IE_ICMP_V4, IE_ICMP_V6 = 32, 139
IE_OCTETS_TOTAL, IE_PACKETS_TOTAL = 85, 86
IE_START_S, IE_END_S, IE_START_MS, IE_END_MS = 150, 151, 152, 153
IE_START_US, IE_END_US, IE_START_NS, IE_END_NS = 154, 155, 156, 157
IE_START_DELTA_US, IE_END_DELTA_US = 158, 159
IE_SYSTEM_INIT_MS = 160
IE_BIFLOW_DIRECTION = 239

_WANTED = {
    IE_OCTETS, IE_PACKETS, IE_PROTOCOL, IE_TCP_FLAGS, IE_SRC_PORT, IE_SRC_V4, IE_DST_PORT,
    IE_DST_V4, IE_END_UPTIME, IE_START_UPTIME, IE_OUT_OCTETS, IE_OUT_PACKETS, IE_SRC_V6,
    IE_DST_V6, IE_ICMP_V4, IE_ICMP_V6, IE_OCTETS_TOTAL, IE_PACKETS_TOTAL, IE_START_S, IE_END_S,
    IE_START_MS, IE_END_MS, IE_START_US, IE_END_US, IE_START_NS, IE_END_NS, IE_START_DELTA_US,
    IE_END_DELTA_US, IE_SYSTEM_INIT_MS, IE_BIFLOW_DIRECTION,
}  # fmt: skip
_WANTED_REVERSE = {IE_OCTETS, IE_PACKETS, IE_TCP_FLAGS, IE_OCTETS_TOTAL, IE_PACKETS_TOTAL}

_V5_HEADER = struct.Struct(">HHIIIIBBH")
_V9_HEADER = struct.Struct(">HHIIII")
_IPFIX_HEADER = struct.Struct(">HHIII")
_SET_HEADER = struct.Struct(">HH")
_V5_RECORD = np.dtype(
    [
        ("src", ">u4"), ("dst", ">u4"), ("nexthop", ">u4"), ("input", ">u2"), ("output", ">u2"),
        ("packets", ">u4"), ("bytes", ">u4"), ("first", ">u4"), ("last", ">u4"),
        ("sport", ">u2"), ("dport", ">u2"), ("pad1", "u1"), ("flags", "u1"), ("proto", "u1"),
        ("tos", "u1"), ("src_as", ">u2"), ("dst_as", ">u2"), ("src_mask", "u1"),
        ("dst_mask", "u1"), ("pad2", ">u2"),
    ]
)  # fmt: skip
_V5_MAX_COUNT = 30  # Cisco's documented maximum records per v5 datagram


# --------------------------------------------------------------------------------------------
# Address text, vectorised


# numba ships type hints only in recent releases; older ones make the decorator untyped.
@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator,unused-ignore]
def _dotted_quads(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Offsets and UTF-8 bytes of the dotted-quad texts of ``values`` (uint32)."""
    n = values.shape[0]
    offsets = np.zeros(n + 1, dtype=np.int64)
    data = np.empty(n * 15, dtype=np.uint8)
    at = 0
    for i in range(n):
        v = values[i]
        for k in range(4):
            octet = (v >> (24 - 8 * k)) & 0xFF
            if octet >= 100:
                data[at] = 48 + octet // 100
                data[at + 1] = 48 + (octet // 10) % 10
                data[at + 2] = 48 + octet % 10
                at += 3
            elif octet >= 10:
                data[at] = 48 + octet // 10
                data[at + 1] = 48 + octet % 10
                at += 2
            else:
                data[at] = 48 + octet
                at += 1
            if k < 3:
                data[at] = 46
                at += 1
        offsets[i + 1] = at
    return offsets, data[:at]


def ipv4_text(addresses: np.ndarray) -> pa.Array:
    """Dotted-quad strings for an array of IPv4 addresses held as integers.

    Written straight into one Arrow string buffer by a compiled loop: tens of millions of
    addresses a second, which per-address ``inet_ntoa`` cannot approach.
    """
    values = np.ascontiguousarray(addresses).astype(np.uint32)
    n = values.shape[0]
    offsets, data = _dotted_quads(values)
    if n == 0 or offsets[-1] < 2**31:
        return pa.StringArray.from_buffers(
            n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)
        )
    large = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    return large.cast(pa.string())


def ipv6_text(addresses: np.ndarray) -> pa.Array:
    """RFC 5952 text for an ``(n, 16)`` uint8 array of IPv6 addresses.

    Each distinct address is formatted once with ``inet_ntop`` (flows repeat their hosts a lot),
    then spread to the rows by an Arrow ``take``.
    """
    raw = np.ascontiguousarray(addresses, dtype=np.uint8).reshape(-1, 16)
    if raw.shape[0] == 0:
        return pa.array([], type=pa.string())
    keys = raw.view("V16").ravel()
    unique, inverse = np.unique(keys, return_inverse=True)
    texts = [socket.inet_ntop(socket.AF_INET6, item.tobytes()) for item in unique]
    return pa.array(texts, type=pa.string()).take(pa.array(inverse.astype(np.int64)))


# --------------------------------------------------------------------------------------------
# Templates


@dataclass(slots=True, frozen=True)
class TemplateField:
    """One field of a template: information element id, length in bytes, enterprise number."""

    element: int
    length: int
    enterprise: int = 0


@dataclass(slots=True)
class Template:
    """A v9/IPFIX (options) template and the numpy dtype that views its fixed-length records.

    ``record_length`` is ``None`` when a field has variable length (IPFIX length 65535); such
    records are walked one by one and repacked into ``fixed``, the same template without its
    variable fields, before the bulk decode.
    """

    template_id: int
    fields: tuple[TemplateField, ...]
    options: bool = False
    scope_count: int = 0
    record_length: int | None = field(init=False)
    dtype: np.dtype[np.void] = field(init=False)
    fixed: tuple[TemplateField, ...] = field(init=False)

    def __post_init__(self) -> None:
        variable = any(f.length == _VARIABLE for f in self.fields)
        self.fixed = tuple(f for f in self.fields if f.length != _VARIABLE)
        self.record_length = None if variable else sum(f.length for f in self.fields)
        self.dtype = _template_dtype(self.fixed)

    @property
    def min_record_length(self) -> int:
        """Bytes of the shortest possible record (variable fields empty, 1-byte length)."""
        return sum(f.length if f.length != _VARIABLE else 1 for f in self.fields)


def _field_name(f: TemplateField) -> str | None:
    if f.enterprise == 0 and f.element in _WANTED:
        return f"e{f.element}"
    if f.enterprise == _REVERSE_PEN and f.element in _WANTED_REVERSE:
        return f"r{f.element}"
    return None


def _template_dtype(fields: tuple[TemplateField, ...]) -> np.dtype[np.void]:
    names: list[str] = []
    formats: list[str] = []
    offsets: list[int] = []
    at = 0
    for f in fields:
        name = _field_name(f)
        if name is not None and name not in names and f.length > 0:
            names.append(name)
            if f.length in (1, 2, 4, 8):
                formats.append(f">u{f.length}")
            else:
                formats.append(f"({f.length},)u1")
            offsets.append(at)
        at += f.length
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": at})


class TemplateCache:
    """Templates by exporter and observation domain (IPFIX) / source id (v9).

    Bounded: at most ``max_templates`` in all; the oldest-defined is dropped first when full
    (an exporter re-sends its templates, so a dropped one comes back).

    Example::

        >>> cache = TemplateCache()
        >>> fields = (TemplateField(8, 4), TemplateField(12, 4))
        >>> _ = cache.put("192.0.2.1", 0, Template(256, fields))
        >>> cache.get("192.0.2.1", 0, 256).record_length
        8
    """

    def __init__(self, max_templates: int = 65536) -> None:
        self.max_templates = max_templates
        self._templates: dict[tuple[str, int, int], Template] = {}
        self.system_init_ms: dict[tuple[str, int], int] = {}

    def put(self, exporter: str, domain: int, template: Template) -> Template:
        """Store ``template``; returns the cached object (the existing one when an exporter
        re-sends an unchanged template, so records filed under it stay in one batch)."""
        key = (exporter, domain, template.template_id)
        known = self._templates.get(key)
        if (
            known is not None
            and known.fields == template.fields
            and (
                known.options,
                known.scope_count,
            )
            == (template.options, template.scope_count)
        ):
            return known
        self._templates.pop(key, None)
        while len(self._templates) >= self.max_templates:
            del self._templates[next(iter(self._templates))]
        self._templates[key] = template
        return template

    def get(self, exporter: str, domain: int, template_id: int) -> Template | None:
        return self._templates.get((exporter, domain, template_id))

    def withdraw(self, exporter: str, domain: int, template_id: int | None = None) -> None:
        """Forget one template, or (``None``) every template of the exporter and domain."""
        if template_id is not None:
            self._templates.pop((exporter, domain, template_id), None)
            return
        for key in [k for k in self._templates if k[0] == exporter and k[1] == domain]:
            del self._templates[key]

    def __len__(self) -> int:
        return len(self._templates)


# --------------------------------------------------------------------------------------------
# Sequence numbers


@dataclass(slots=True)
class SequenceGap:
    """Sequence trouble seen from one exporter stream.

    ``gaps``: times the sequence jumped ahead; ``missing``: how many it skipped in all, in
    ``unit`` (``records`` for v5 and IPFIX, ``datagrams`` for v9); ``backwards``: times it went
    back (reordering, duplicates or an exporter restart).
    """

    exporter: str
    domain: int
    version: int
    unit: str
    gaps: int = 0
    missing: int = 0
    backwards: int = 0


@dataclass(slots=True)
class _SeqState:
    last: int
    counts: tuple[int, int] | None  # (all data records, flow records only) of the last message
    modes: set[int] = field(default_factory=lambda: {0, 1, 2, 3})  # conventions still possible


class SequenceTracker:
    """Checks each stream's sequence numbers and counts the gaps.

    RFC 3954/7011 say the number counts what was sent *before* this message (v9: datagrams;
    v5 and IPFIX: data records). Some exporters count *including* this message, or leave options
    records out (softflowd's IPFIX does both); the tracker learns which of these conventions a
    stream follows from the first step only one of them explains, so none reads as loss. A step
    it cannot predict (a data set whose template is unknown, so its record count is unknown)
    resynchronises without reporting a gap.

    Example::

        >>> t = SequenceTracker()
        >>> t.observe("192.0.2.1", 0, 5, sequence=0, count=30)
        >>> t.observe("192.0.2.1", 0, 5, sequence=60, count=30)
        >>> t.gaps()[0].missing
        30
    """

    def __init__(self, max_streams: int = 65536) -> None:
        self.max_streams = max_streams
        self._state: dict[tuple[str, int, int], _SeqState] = {}
        self._gaps: dict[tuple[str, int, int], SequenceGap] = {}

    def observe(
        self,
        exporter: str,
        domain: int,
        version: int,
        sequence: int,
        count: int | None,
        flow_count: int | None = None,
    ) -> None:
        """Note one message's ``sequence`` and how many units it carried (``count``: all data
        records, or 1 datagram for v9; ``flow_count``: without options records)."""
        key = (exporter, domain, version)
        counts = None if count is None else (count, count if flow_count is None else flow_count)
        state = self._state.get(key)
        if state is None:
            if len(self._state) >= self.max_streams:
                del self._state[next(iter(self._state))]
            self._state[key] = _SeqState(sequence, counts)
            return
        if state.counts is not None and counts is not None:
            candidates = [
                (state.last + state.counts[0]) & 0xFFFFFFFF,  # RFC: records before this one
                (state.last + state.counts[1]) & 0xFFFFFFFF,  # ... without options records
                (state.last + counts[0]) & 0xFFFFFFFF,  # including this message
                (state.last + counts[1]) & 0xFFFFFFFF,  # ... without options records
            ]
            matches = state.modes & {i for i, value in enumerate(candidates) if value == sequence}
            if matches:
                state.modes = matches
                expected = sequence
            else:
                expected = candidates[min(state.modes)]
            step = (sequence - expected) & 0xFFFFFFFF
            if step:
                self._note(key, step)
        state.last = sequence
        state.counts = counts

    def _note(self, key: tuple[str, int, int], step: int) -> None:
        gap = self._gaps.get(key)
        if gap is None:
            unit = "datagrams" if key[2] == 9 else "records"
            gap = self._gaps[key] = SequenceGap(key[0], key[1], key[2], unit)
        if step < 2**31:
            gap.gaps += 1
            gap.missing += step
        else:
            gap.backwards += 1

    def gaps(self) -> list[SequenceGap]:
        """Every stream that had a gap or went backwards, in order of first trouble."""
        return list(self._gaps.values())


# --------------------------------------------------------------------------------------------
# Statistics


@dataclass(slots=True)
class DecoderStats:
    """What the decoder has seen, for the collector's stats line and final report."""

    datagrams: int = 0
    records: int = 0
    templates: int = 0
    option_records: int = 0
    non_ip_records: int = 0
    unknown_template_sets: int = 0
    unknown_template_bytes: int = 0
    malformed: dict[str, int] = field(default_factory=dict)
    by_version: dict[int, int] = field(default_factory=dict)

    @property
    def malformed_total(self) -> int:
        return sum(self.malformed.values())

    def bad(self, reason: str) -> None:
        self.malformed[reason] = self.malformed.get(reason, 0) + 1


# --------------------------------------------------------------------------------------------
# Decoder


@dataclass(slots=True)
class _Pending:
    """A data set held back until its template arrives."""

    exporter: str
    domain: int
    template_id: int
    body: bytes
    meta: tuple[int, int, int, int]  # version, export seconds, uptime ms, received ns
    received_ns: int


@dataclass(slots=True)
class _Batch:
    """Raw record bytes of one template (or of v5), waiting for the bulk decode."""

    template: Template | None
    chunks: list[bytes] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    meta: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    # meta per chunk: exporter index, version, export seconds (+ns for v5), uptime ms, domain


class NetflowDecoder:
    """Turns export datagrams into FLOW_SCHEMA tables; see the module docstring.

    ``hold_seconds``/``hold_sets`` bound the data sets kept while their template is unknown.
    ``feed`` returns how many records the datagram added (including held sets decoded because
    its templates arrived); ``flush`` decodes everything fed since the last flush.

    Example::

        >>> decoder = NetflowDecoder()
        >>> decoder.flush().num_rows
        0
    """

    def __init__(
        self,
        templates: TemplateCache | None = None,
        hold_seconds: float = 30.0,
        hold_sets: int = 4096,
    ) -> None:
        self.templates = templates if templates is not None else TemplateCache()
        self.sequences = SequenceTracker()
        self.stats = DecoderStats()
        self.hold_ns = int(hold_seconds * 1e9)
        self.hold_sets = hold_sets
        self._pending: deque[_Pending] = deque()
        self._batches: dict[object, _Batch] = {}
        self._exporters: dict[str, int] = {}
        self._memo: dict[tuple[int, tuple[TemplateField, ...], bool, int], Template] = {}
        self.buffered_records = 0

    # -- public -----------------------------------------------------------------------------

    def feed(self, data: bytes, exporter: str, now_ns: int) -> int:
        """Decode one datagram from ``exporter`` received at ``now_ns``; never raises on bad
        data (it is counted in :attr:`stats`)."""
        self.stats.datagrams += 1
        before = self.buffered_records
        try:
            self._feed(bytes(data), exporter, now_ns)
        except (struct.error, ValueError, IndexError) as exc:  # defensive: counted, not raised
            self.stats.bad(f"undecodable datagram ({exc.__class__.__name__})")
        self.expire(now_ns)
        return self.buffered_records - before

    def expire(self, now_ns: int) -> None:
        """Give up on held data sets older than the hold time (counted as unknown template)."""
        while self._pending and (
            now_ns - self._pending[0].received_ns > self.hold_ns
            or len(self._pending) > self.hold_sets
        ):
            gone = self._pending.popleft()
            self.stats.unknown_template_sets += 1
            self.stats.unknown_template_bytes += len(gone.body)

    def drop_pending(self) -> None:
        """Count every held data set as unknown-template (at shutdown)."""
        self.expire(2**62)

    @property
    def pending_sets(self) -> int:
        return len(self._pending)

    def flush(self) -> pa.Table:
        """Decode the records fed since the last flush into one FLOW_SCHEMA table."""
        batches, self._batches = self._batches, {}
        self.buffered_records = 0
        names = list(self._exporters)
        self._exporters = {}
        tables = []
        for key, batch in batches.items():
            decoded: tuple[dict[str, np.ndarray], int] | None
            if key == "v5":
                decoded = _decode_v5(batch)
            else:
                assert batch.template is not None
                decoded = _decode_template(batch, self.templates, names)
            if decoded is None:
                continue
            columns, dropped = decoded
            self.stats.non_ip_records += dropped
            if columns:
                tables.append(flows_table(columns, names))
        if not tables:
            return empty_flows()
        return pa.concat_tables(tables) if len(tables) > 1 else tables[0]

    # -- datagrams --------------------------------------------------------------------------

    def _exporter_index(self, exporter: str) -> int:
        index = self._exporters.get(exporter)
        if index is None:
            index = self._exporters[exporter] = len(self._exporters)
        return index

    def _feed(self, data: bytes, exporter: str, now_ns: int) -> None:
        if len(data) < 4:
            self.stats.bad("datagram shorter than its header")
            return
        version = (data[0] << 8) | data[1]
        if version == 5:
            self._feed_v5(data, exporter)
        elif version == 9:
            self._feed_v9(data, exporter, now_ns)
        elif version == 10:
            self._feed_ipfix(data, exporter, now_ns)
        else:
            self.stats.bad(f"unsupported export version {version}")

    def _count_version(self, version: int) -> None:
        self.stats.by_version[version] = self.stats.by_version.get(version, 0) + 1

    def _feed_v5(self, data: bytes, exporter: str) -> None:
        if len(data) < _V5_HEADER.size:
            self.stats.bad("datagram shorter than its header")
            return
        _, count, uptime, secs, nsecs, sequence, engine_type, engine_id, _ = _V5_HEADER.unpack_from(
            data
        )
        if count == 0 or count > _V5_MAX_COUNT:
            self.stats.bad("v5 record count out of range (1-30)")
            return
        end = _V5_HEADER.size + count * _V5_RECORD.itemsize
        if len(data) < end:
            self.stats.bad("v5 datagram shorter than its record count")
            return
        self._count_version(5)
        self.sequences.observe(exporter, (engine_type << 8) | engine_id, 5, sequence, count)
        batch = self._batches.get("v5")
        if batch is None:
            batch = self._batches["v5"] = _Batch(None)
        batch.chunks.append(data[_V5_HEADER.size : end])
        batch.counts.append(count)
        export_ms = secs * 1000 + nsecs // 1_000_000
        batch.meta.append((self._exporter_index(exporter), 5, export_ms, uptime, 0))
        self.buffered_records += count
        self.stats.records += count

    def _feed_v9(self, data: bytes, exporter: str, now_ns: int) -> None:
        if len(data) < _V9_HEADER.size:
            self.stats.bad("datagram shorter than its header")
            return
        _, _, uptime, secs, sequence, source_id = _V9_HEADER.unpack_from(data)
        meta = (9, secs, uptime, now_ns)
        sets = self._walk_sets(data, _V9_HEADER.size, len(data), 9)
        if sets is None:
            return
        self._count_version(9)
        self.sequences.observe(exporter, source_id, 9, sequence, 1)
        for set_id, body in sets:
            if set_id == 0:
                self._templates_v9(body, exporter, source_id, options=False)
            elif set_id == 1:
                self._templates_v9(body, exporter, source_id, options=True)
            elif set_id >= 256:
                self._data_set(exporter, source_id, set_id, body, meta)
            # ids 2-255 are reserved in v9: skipped

    def _feed_ipfix(self, data: bytes, exporter: str, now_ns: int) -> None:
        if len(data) < _IPFIX_HEADER.size:
            self.stats.bad("datagram shorter than its header")
            return
        _, length, export_time, sequence, domain = _IPFIX_HEADER.unpack_from(data)
        if length < _IPFIX_HEADER.size or length > len(data):
            self.stats.bad("IPFIX message length disagrees with the datagram")
            return
        sets = self._walk_sets(data, _IPFIX_HEADER.size, length, 10)
        if sets is None:
            return
        self._count_version(10)
        meta = (10, export_time, 0, now_ns)
        records: int | None = 0
        for set_id, body in sets:
            if set_id == 2:
                self._templates_ipfix(body, exporter, domain, options=False)
            elif set_id == 3:
                self._templates_ipfix(body, exporter, domain, options=True)
            elif set_id >= 256:
                added = self._data_set(exporter, domain, set_id, body, meta)
                records = None if added is None or records is None else records + added
            # ids 0-1 and 4-255 are not data: skipped
        self.sequences.observe(exporter, domain, 10, sequence, records)

    def _walk_sets(
        self, data: bytes, start: int, end: int, version: int
    ) -> list[tuple[int, bytes]] | None:
        """Split a message into (set id, body); the whole datagram is refused if a set header
        is impossible, because everything after it would be read at the wrong offsets."""
        sets: list[tuple[int, bytes]] = []
        at = start
        while at + 4 <= end:
            set_id, length = _SET_HEADER.unpack_from(data, at)
            if length < 4:
                if version == 9 and length == 0 and not any(data[at:end]):
                    break  # zero padding after the last flowset
                self.stats.bad("set length shorter than its header")
                return None
            if at + length > end:
                self.stats.bad("set runs past the end of the datagram")
                return None
            sets.append((set_id, data[at + 4 : at + length]))
            at += length
        if not sets:
            self.stats.bad("message holds no sets")
            return None
        return sets

    # -- templates --------------------------------------------------------------------------

    def _template(
        self, tid: int, fields: tuple[TemplateField, ...], options: bool, scope_count: int
    ) -> Template:
        """A Template, built once per distinct definition (exporters re-send them often and
        building the numpy dtype is the costly part)."""
        key = (tid, fields, options, scope_count)
        known = self._memo.get(key)
        if known is None:
            if len(self._memo) >= 4096:
                self._memo.clear()
            known = self._memo[key] = Template(tid, fields, options, scope_count)
        return known

    def _store_template(self, exporter: str, domain: int, template: Template) -> None:
        if template.min_record_length == 0:
            self.stats.bad("template with zero-length records")
            return
        self.templates.put(exporter, domain, template)
        self.stats.templates += 1
        self._release(exporter, domain, template.template_id)

    def _templates_v9(self, body: bytes, exporter: str, domain: int, options: bool) -> None:
        at, end = 0, len(body)
        while at + 4 <= end:
            if options:
                if at + 6 > end:
                    break
                tid, scope_len, option_len = struct.unpack_from(">HHH", body, at)
                at += 6
                if scope_len % 4 or option_len % 4 or at + scope_len + option_len > end:
                    self.stats.bad("v9 options template runs past its flowset")
                    return
                count = (scope_len + option_len) // 4
                scope_count = scope_len // 4
            else:
                tid, count = struct.unpack_from(">HH", body, at)
                at += 4
                scope_count = 0
                if at + 4 * count > end:
                    self.stats.bad("v9 template runs past its flowset")
                    return
            if tid < 256:
                if tid == 0 and count == 0:
                    break  # padding
                self.stats.bad("template id below 256")
                return
            fields = []
            for i in range(count):
                element, length = struct.unpack_from(">HH", body, at + 4 * i)
                if scope_count and i < scope_count:
                    element = 0x10000 | element  # v9 scope types are their own number space
                fields.append(TemplateField(element, length))
            at += 4 * count
            self._store_template(
                exporter, domain, self._template(tid, tuple(fields), options, scope_count)
            )

    def _templates_ipfix(self, body: bytes, exporter: str, domain: int, options: bool) -> None:
        at, end = 0, len(body)
        while at + 4 <= end:
            tid, count = struct.unpack_from(">HH", body, at)
            at += 4
            if tid < 256:
                if tid == 0 and count == 0:
                    break  # padding
                if tid == 2 + options and count == 0:
                    self.templates.withdraw(exporter, domain)  # withdraw all (RFC 7011 8.1)
                    continue
                self.stats.bad("template id below 256")
                return
            if count == 0:
                self.templates.withdraw(exporter, domain, tid)
                continue
            scope_count = 0
            if options:
                if at + 2 > end:
                    self.stats.bad("IPFIX options template runs past its set")
                    return
                (scope_count,) = struct.unpack_from(">H", body, at)
                at += 2
                if scope_count == 0 or scope_count > count:
                    self.stats.bad("IPFIX options template scope count out of range")
                    return
            fields = []
            for _ in range(count):
                if at + 4 > end:
                    self.stats.bad("IPFIX template runs past its set")
                    return
                element, length = struct.unpack_from(">HH", body, at)
                at += 4
                enterprise = 0
                if element & 0x8000:
                    if at + 4 > end:
                        self.stats.bad("IPFIX template runs past its set")
                        return
                    (enterprise,) = struct.unpack_from(">I", body, at)
                    at += 4
                    element &= 0x7FFF
                fields.append(TemplateField(element, length, enterprise))
            self._store_template(
                exporter, domain, self._template(tid, tuple(fields), options, scope_count)
            )

    # -- data sets --------------------------------------------------------------------------

    def _data_set(
        self,
        exporter: str,
        domain: int,
        template_id: int,
        body: bytes,
        meta: tuple[int, int, int, int],
    ) -> int | None:
        """File a data set under its template; the number of records, or None when held."""
        template = self.templates.get(exporter, domain, template_id)
        if template is None:
            self._pending.append(_Pending(exporter, domain, template_id, body, meta, meta[3]))
            return None
        return self._file(exporter, domain, template, body, meta)

    def _file(
        self,
        exporter: str,
        domain: int,
        template: Template,
        body: bytes,
        meta: tuple[int, int, int, int],
    ) -> int:
        if template.record_length is None:
            body, count = self._repack_variable(template, body)
        else:
            count = len(body) // template.record_length
            body = body[: count * template.record_length]
        if count == 0:
            return 0
        if template.options:
            self.stats.option_records += count
            self._options(exporter, domain, template, body, count)
            return count
        key = (exporter, domain, template.template_id, id(template))
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = _Batch(template)
        version, secs, uptime, _ = meta
        batch.chunks.append(body)
        batch.counts.append(count)
        batch.meta.append((self._exporter_index(exporter), version, secs, uptime, domain))
        self.buffered_records += count
        self.stats.records += count
        return count

    def _repack_variable(self, template: Template, body: bytes) -> tuple[bytes, int]:
        """Walk variable-length records one by one and keep only their fixed fields."""
        out = bytearray()
        at, end, count = 0, len(body), 0
        minimum = template.min_record_length
        while end - at >= minimum:
            record = bytearray()
            ok = True
            for f in template.fields:
                length = f.length
                if length == _VARIABLE:
                    if at >= end:
                        ok = False
                        break
                    length = body[at]
                    at += 1
                    if length == 255:
                        if at + 2 > end:
                            ok = False
                            break
                        length = (body[at] << 8) | body[at + 1]
                        at += 2
                    at += length
                    continue
                record += body[at : at + length]
                at += length
            if not ok or at > end:
                self.stats.bad("variable-length record runs past its set")
                break
            out += record
            count += 1
        return bytes(out), count

    def _options(
        self, exporter: str, domain: int, template: Template, body: bytes, count: int
    ) -> None:
        """Keep what the flow records need from options data: the exporter's boot time."""
        if "e160" not in (template.dtype.names or ()):
            return
        view = np.frombuffer(body, dtype=template.dtype, count=count)
        value = _unsigned(view["e160"])
        self.templates.system_init_ms[(exporter, domain)] = int(value[-1])

    def _release(self, exporter: str, domain: int, template_id: int) -> None:
        if not self._pending:
            return
        keep: deque[_Pending] = deque()
        template = self.templates.get(exporter, domain, template_id)
        for held in self._pending:
            if (held.exporter, held.domain, held.template_id) == (exporter, domain, template_id):
                assert template is not None
                self._file(exporter, domain, template, held.body, held.meta)
            else:
                keep.append(held)
        self._pending = keep


# --------------------------------------------------------------------------------------------
# Bulk decode


def _unsigned(column: np.ndarray) -> np.ndarray:
    """A template field as uint64, whatever its (possibly reduced-size) length."""
    if column.ndim == 1:
        return column.astype(np.uint64)
    value = np.zeros(column.shape[0], dtype=np.uint64)
    for i in range(column.shape[1]):
        value = (value << np.uint64(8)) | column[:, i].astype(np.uint64)
    return value


def _signed_delta_ms(switched: np.ndarray, uptime: np.ndarray) -> np.ndarray:
    """``switched - uptime`` for 32-bit millisecond uptimes, across a wrap of the counter."""
    diff = (switched.astype(np.int64) - uptime.astype(np.int64)) & 0xFFFFFFFF
    return np.where(diff >= 2**31, diff - 2**32, diff)


def _decode_v5(batch: _Batch) -> tuple[dict[str, np.ndarray], int]:
    counts = np.asarray(batch.counts, dtype=np.int64)
    rec = np.frombuffer(b"".join(batch.chunks), dtype=_V5_RECORD)
    meta = np.asarray(batch.meta, dtype=np.int64)
    exporter = np.repeat(meta[:, 0], counts)
    export_ms = np.repeat(meta[:, 2], counts)
    uptime = np.repeat(meta[:, 3], counts)
    start_ms = export_ms + _signed_delta_ms(rec["first"], uptime)
    end_ms = export_ms + _signed_delta_ms(rec["last"], uptime)
    return {
        "start_ns": start_ms * 1_000_000,
        "end_ns": end_ms * 1_000_000,
        "src4": rec["src"],
        "dst4": rec["dst"],
        "src_port": rec["sport"],
        "dst_port": rec["dport"],
        "protocol": rec["proto"],
        "packets": rec["packets"],
        "bytes": rec["bytes"],
        "tcp_flags": rec["flags"],
        "exporter": exporter,
        "version": np.full(rec.shape[0], 5, dtype=np.int8),
    }, 0


def _decode_template(
    batch: _Batch, cache: TemplateCache, exporters: list[str]
) -> tuple[dict[str, np.ndarray], int] | None:
    template = batch.template
    assert template is not None
    counts = np.asarray(batch.counts, dtype=np.int64)
    rec = np.frombuffer(b"".join(batch.chunks), dtype=template.dtype)
    n = rec.shape[0]
    names = set(template.dtype.names or ())
    meta = np.asarray(batch.meta, dtype=np.int64)
    version = int(meta[0, 1])

    def get(name: str) -> np.ndarray | None:
        return _unsigned(rec[name]) if name in names else None

    def pick(*choices: str) -> np.ndarray:
        for name in choices:
            value = get(name)
            if value is not None:
                return value
        return np.zeros(n, dtype=np.uint64)

    if "e8" in names and "e12" in names:
        src: dict[str, np.ndarray] = {"src4": rec["e8"], "dst4": rec["e12"]}
    elif "e27" in names and "e28" in names:
        src = {"src6": rec["e27"], "dst6": rec["e28"]}
    else:
        return {}, n  # not an IP flow (layer 2, MPLS-only, ...)

    export_s = np.repeat(meta[:, 2], counts)
    start_ns, end_ns = _times(get, names, export_s, np.repeat(meta[:, 3], counts), version)
    if version == 10 and ("e22" in names or "e21" in names) and not names & _ABSOLUTE:
        exporter_name = exporters[int(meta[0, 0])]
        init = cache.system_init_ms.get((exporter_name, int(meta[0, 4])))
        if init is not None:
            start_ns = (np.int64(init) + pick("e22").astype(np.int64)) * 1_000_000
            end_ns = (np.int64(init) + pick("e21").astype(np.int64)) * 1_000_000
    dst_port = pick("e11")
    icmp = get("e32") if "e32" in names else get("e139")
    if icmp is not None and "e11" not in names:
        dst_port = icmp
    flags = pick("e6") | pick("r6")
    direction = get("e239")
    initiator = np.full(n, INITIATOR_UNKNOWN, dtype=np.int8)
    if direction is not None:
        initiator[direction == 1] = INITIATOR_SRC
        initiator[direction == 2] = INITIATOR_DST
    return {
        "start_ns": start_ns,
        "end_ns": end_ns,
        **src,
        "src_port": pick("e7"),
        "dst_port": dst_port,
        "protocol": pick("e4"),
        "packets": pick("e2", "e86"),
        "bytes": pick("e1", "e85"),
        "rev_packets": pick("r2", "r86", "e24"),
        "rev_bytes": pick("r1", "r85", "e23"),
        "tcp_flags": flags & np.uint64(0x0FFF),
        "initiator": initiator,
        "exporter": np.repeat(meta[:, 0], counts),
        "version": np.full(n, version, dtype=np.int8),
    }, 0


_ABSOLUTE = {"e150", "e151", "e152", "e153", "e154", "e155", "e156", "e157", "e158", "e159"}


def _ntp_ns(value: np.ndarray) -> np.ndarray:
    seconds = (value >> np.uint64(32)).astype(np.int64) - _NTP_EPOCH_OFFSET
    fraction = (value & np.uint64(0xFFFFFFFF)).astype(np.float64)
    return seconds * 1_000_000_000 + (fraction * 1e9 / 2**32).astype(np.int64)


def _times(
    read: Callable[[str], np.ndarray | None],
    names: set[str],
    export_s: np.ndarray,
    uptime: np.ndarray,
    version: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Start and end in ns from whichever time elements the template carries."""

    def need(name: str) -> np.ndarray:
        value = read(name)
        assert value is not None
        return value

    export_ns = export_s * 1_000_000_000
    out = []
    for ms, s, us, ns, delta, rel in (
        ("e152", "e150", "e154", "e156", "e158", "e22"),
        ("e153", "e151", "e155", "e157", "e159", "e21"),
    ):
        if ms in names:
            out.append(need(ms).astype(np.int64) * 1_000_000)
        elif ns in names:
            out.append(_ntp_ns(need(ns)))
        elif us in names:
            out.append(_ntp_ns(need(us)))
        elif s in names:
            out.append(need(s).astype(np.int64) * 1_000_000_000)
        elif delta in names:
            out.append(export_ns - need(delta).astype(np.int64) * 1000)
        elif rel in names and version == 9:
            out.append(export_ns + _signed_delta_ms(need(rel), uptime) * 1_000_000)
        else:
            out.append(export_ns.copy())
    return out[0], out[1]


_SOURCE_NAMES = {5: "netflow-v5", 9: "netflow-v9", 10: "ipfix"}


def flows_table(columns: dict[str, np.ndarray], exporters: list[str]) -> pa.Table:
    """Assemble decoded columns into a FLOW_SCHEMA table.

    ``src4``/``dst4`` (integers) or ``src6``/``dst6`` (``(n, 16)`` bytes) hold the addresses;
    ``exporter`` indexes ``exporters``; ``version`` picks the ``source`` name.
    """
    n = columns["start_ns"].shape[0]
    if "src4" in columns:
        src, dst = ipv4_text(columns["src4"]), ipv4_text(columns["dst4"])
    else:
        src, dst = ipv6_text(columns["src6"]), ipv6_text(columns["dst6"])
    version = int(columns["version"][0]) if n else 9
    zeros = np.zeros(n, dtype=np.int64)

    def col(name: str, dtype: type) -> pa.Array:
        value = columns.get(name)
        return pa.array(zeros if value is None else np.asarray(value).astype(dtype))

    exporter_names = pa.array(exporters, type=pa.string())
    arrays = {
        "start_ns": col("start_ns", np.int64),
        "end_ns": col("end_ns", np.int64),
        "src_ip": src,
        "dst_ip": dst,
        "src_port": col("src_port", np.int32),
        "dst_port": col("dst_port", np.int32),
        "protocol": col("protocol", np.int16),
        "packets": col("packets", np.int64),
        "bytes": col("bytes", np.int64),
        "rev_packets": col("rev_packets", np.int64),
        "rev_bytes": col("rev_bytes", np.int64),
        "tcp_flags": col("tcp_flags", np.int16),
        "initiator": col("initiator", np.int8),
        "source": pa.array([_SOURCE_NAMES.get(version, "netflow")]).take(pa.array(zeros)),
        "exporter": exporter_names.take(pa.array(np.asarray(columns["exporter"], np.int64))),
    }
    return assemble_flows(arrays, n)
