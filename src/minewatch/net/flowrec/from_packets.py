"""Turn decoded packets into flow records: the packet path's flow source (captures, live meter).

Why slices: a flow exporter cuts a long connection into records at its active timeout, and the
behaviour model reads those records as a time series. Packets are therefore grouped by
``(5-tuple, floor(ts_ns / slice_ns))`` with slices aligned to absolute time, so a live meter that
converts one batch of packets at a time gets records whose keys line up across batches and can
merge two partial records of one slice by adding them up.

Who is ``src``: the side that opened the connection, when the batch shows it (the SYN sender, or
the receiver of a SYN-ACK, or the sender of a TLS ClientHello), with ``initiator`` = 1; otherwise
the sender of the connection's first packet in the batch, with ``initiator`` = 0 (the feature
pipeline then decides from ports and peers). Orientation is decided per connection, so every slice
of one connection in one batch is oriented the same way.

Who speaks first after a silence (``opens``, ``rev_opens``) and each side's rhythm of doing so
(``open_gaps``, ``open_gap_sum``, ``open_gap_sumsq``) come from one pass over the payload packets
in connection order: a payload packet opens an exchange when the connection carried no payload
for :data:`~minewatch.net.flowrec.table.OPEN_IDLE_S` before it. ``tls`` marks records with a
payload that begins with a TLS record header. A live meter converts one batch at a time and
passes one :class:`OpenState` with every batch, so an open or an interval that straddles two
batches is counted as one pass over all packets counts it.

All grouping and counting is vectorised (one sort of the packets, then ``reduceat``/``bincount``).
Python runs per *TLS connection* (to read its ClientHello: SNI, JA3, JA4) and per *DNS response*
(to learn which name resolved to a server address), never per packet of bulk traffic.

Example::

    >>> from minewatch.net.flowrec.from_packets import read_capture_flows
    >>> flows, problems = read_capture_flows(["capture.pcap"])  # doctest: +SKIP
    >>> flows.column_names[:4]  # doctest: +SKIP
    ['start_ns', 'end_ns', 'src_ip', 'dst_ip']
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from minewatch.errors import CaptureError
from minewatch.net.capture.decode import PROTO_TCP, PROTO_UDP, PacketHeaders, decode_headers
from minewatch.net.capture.reader import read_capture
from minewatch.net.dissect.dns import RecordType, parse_dns
from minewatch.net.dissect.tls import ClientHello, is_grease, parse_client_hello
from minewatch.net.flowrec.table import (
    FLOW_SCHEMA,
    INITIATOR_SRC,
    INITIATOR_UNKNOWN,
    OPEN_IDLE_S,
    empty_flows,
)
from minewatch.net.flows import _collides, _flow_keys
from minewatch.net.scan import FileProblem, collect_capture_files

__all__ = [
    "DEFAULT_SLICE_NS",
    "DNS_ANSWER_SCHEMA",
    "OpenState",
    "attach_dns_names",
    "capture_flows",
    "dns_answers",
    "ja3",
    "ja4",
    "read_capture_flows",
    "records_from_headers",
]

DEFAULT_SLICE_NS = 60_000_000_000
"""One minute: long enough to hold a job push and a share or two of a pool session, short enough
that a ten-minute session gives a time series of ten points."""

DNS_ANSWER_SCHEMA = pa.schema(
    [
        pa.field("ts_ns", pa.int64(), nullable=False),
        pa.field("address", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
    ]
)
"""What :func:`dns_answers` returns: when an answer was seen, the address it gave and the name
that was asked for (the question, not the end of a CNAME chain: the name a user would recognise)."""

_SYN, _ACK = 0x02, 0x10
_TLS_HANDSHAKE, _TLS_CLIENT_HELLO = 0x16, 0x01
_HELLO_SEGMENTS = 8
"""Client segments joined when a ClientHello does not fit one packet (post-quantum key shares
make hellos of 1.5-2 KB, two segments at a 1500-byte MTU)."""
_HELLO_BYTES = 16_384
_DNS_PORT = 53
_DNS_HEADER = 12


def _address_text(hi: int, lo: int) -> str:
    """Text form of a 128-bit address as decode stores it (IPv4 as IPv4-mapped)."""
    if hi == 0 and lo >> 32 == 0xFFFF:
        return socket.inet_ntop(socket.AF_INET, (lo & 0xFFFFFFFF).to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, ((hi << 64) | lo).to_bytes(16, "big"))


def _addresses(hi: np.ndarray, lo: np.ndarray) -> pa.Array:
    """Text of many addresses: each distinct address is formatted once (hosts repeat a lot)."""
    if hi.shape[0] == 0:
        return pa.array([], type=pa.string())
    pairs = np.stack([hi, lo], axis=1)
    uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
    texts = pa.array([_address_text(int(a), int(b)) for a, b in uniq.tolist()], type=pa.string())
    return texts.take(pa.array(inverse.reshape(-1).astype(np.int64)))


def _keys(h: PacketHeaders) -> tuple[np.ndarray, np.ndarray]:
    """Direction-free 5-tuple key of every packet and whether its sender is the lower endpoint."""
    key, src_first = _flow_keys(h.src_hi, h.src_lo, h.dst_hi, h.dst_lo, h.sport, h.dport, h.proto)
    return key, src_first


def _exact_keys(h: PacketHeaders, src_first: np.ndarray) -> np.ndarray:
    """Collision-free keys: the rank of each packet's ordered 5-tuple (slow; rarely needed)."""
    lo_hi = np.where(src_first, h.src_hi, h.dst_hi)
    lo_lo = np.where(src_first, h.src_lo, h.dst_lo)
    hi_hi = np.where(src_first, h.dst_hi, h.src_hi)
    hi_lo = np.where(src_first, h.dst_lo, h.src_lo)
    sport, dport = h.sport.astype(np.uint64), h.dport.astype(np.uint64)
    ports = np.where(src_first, (sport << 16) | dport, (dport << 16) | sport)
    ports = (ports << np.uint64(8)) | h.proto.astype(np.uint64)
    stacked = np.stack([lo_hi, lo_lo, hi_hi, hi_lo, ports], axis=1)
    _, inverse = np.unique(stacked, axis=0, return_inverse=True)
    out: np.ndarray = inverse.reshape(-1).astype(np.uint64)
    return out


def records_from_headers(
    h: PacketHeaders,
    *,
    slice_ns: int = DEFAULT_SLICE_NS,
    source: str = "pcap",
    tls: bool = True,
    dns: bool = True,
    opens_state: OpenState | None = None,
) -> pa.Table:
    """Flow records (:data:`~minewatch.net.flowrec.table.FLOW_SCHEMA`) of decoded packets.

    One record per 5-tuple and time slice ``floor(ts_ns / slice_ns)``; see the module text for
    orientation. ``tls`` reads ClientHellos (SNI, JA3, JA4, and the hello sender as the client);
    ``dns`` names server addresses from DNS answers in the same packets (a live meter that keeps
    answers across batches calls :func:`dns_answers` and :func:`attach_dns_names` itself).
    ``opens_state``: a live meter that converts one batch at a time passes the same
    :class:`OpenState` with every batch, so opens and open intervals that straddle a batch
    boundary are counted as one pass over all packets would count them.
    """
    if slice_ns <= 0:
        raise ValueError(f"slice_ns must be positive, got {slice_ns}")
    n = len(h)
    if n == 0:
        return empty_flows()
    key, src_first = _keys(h)
    ts = h.ts_ns.astype(np.int64)
    order = np.lexsort((ts, key))
    k = key[order]
    new_conn = np.empty(n, dtype=bool)
    new_conn[0] = True
    new_conn[1:] = k[1:] != k[:-1]
    columns = (h.src_hi, h.src_lo, h.dst_hi, h.dst_lo, h.sport, h.dport, h.proto)
    stable_keys = True
    if _collides(order, new_conn, *columns):
        stable_keys = False  # per-batch ranks: not comparable with other batches
        key = _exact_keys(h, src_first)
        order = np.lexsort((ts, key))
        k = key[order]
        new_conn[1:] = k[1:] != k[:-1]

    ts_o = ts[order]
    slot = ts_o // slice_ns
    new_rec = new_conn.copy()
    new_rec[1:] |= slot[1:] != slot[:-1]
    conn = np.cumsum(new_conn) - 1
    conn_start = np.flatnonzero(new_conn)
    rec = np.cumsum(new_rec) - 1
    rec_start = np.flatnonzero(new_rec)
    nconn, nrec = conn_start.shape[0], rec_start.shape[0]

    # Who opened each connection: SYN sender, else SYN-ACK receiver, else the first sender.
    sender_lo = src_first[order]
    flags = h.tcp_flags[order]
    tcp_pkt = h.proto[order] == PROTO_TCP
    syn_only = tcp_pkt & ((flags & (_SYN | _ACK)) == _SYN)
    syn_ack = tcp_pkt & ((flags & (_SYN | _ACK)) == (_SYN | _ACK))
    pos = np.arange(n)
    big = n + 1
    first_syn = np.minimum.reduceat(np.where(syn_only, pos, big), conn_start)
    first_synack = np.minimum.reduceat(np.where(syn_ack, pos, big), conn_start)
    init_lo = sender_lo[conn_start].copy()
    known = np.zeros(nconn, dtype=bool)
    has = first_synack < big
    init_lo[has] = ~sender_lo[first_synack[has]]
    known |= has
    has = first_syn < big
    init_lo[has] = sender_lo[first_syn[has]]
    known |= has

    hellos: dict[int, tuple[ClientHello, int]] = {}
    if tls:
        hellos = _client_hellos(h, order, conn, conn_start, sender_lo, tcp_pkt)
        for c, (_, at) in hellos.items():
            if not known[c]:  # the ClientHello sender is the client
                init_lo[c] = sender_lo[at]
                known[c] = True

    is_fwd = sender_lo == init_lo[conn]
    side = rec * 2 + (~is_fwd).astype(np.int64)
    ip_len = h.ip_len[order].astype(np.float64)
    side_packets = np.bincount(side, minlength=2 * nrec)
    side_bytes = np.bincount(side, weights=ip_len, minlength=2 * nrec).astype(np.int64)
    has_payload = h.payload_len[order] > 0
    side_payload = np.bincount(side[has_payload], minlength=2 * nrec)
    began = (first_syn < big) | (first_synack < big)
    prior = None
    if opens_state is not None and stable_keys:
        prior = opens_state.lookup(k[conn_start])
    opens = _opens(ts_o, has_payload, conn, conn_start, began, side, nrec, sender_lo, prior)
    if opens_state is not None and stable_keys:
        opens_state.update(k[conn_start], opens.last, int(ts_o.max()))
    tls_rec = _tls_records(h, order, has_payload, rec, nrec)

    # Endpoints: the record's first packet, swapped when its sender is not the opener.
    first = order[rec_start]
    rec_conn = conn[rec_start]
    swap = sender_lo[rec_start] != init_lo[rec_conn]
    src_hi = np.where(swap, h.dst_hi[first], h.src_hi[first])
    src_lo = np.where(swap, h.dst_lo[first], h.src_lo[first])
    dst_hi = np.where(swap, h.src_hi[first], h.dst_hi[first])
    dst_lo = np.where(swap, h.src_lo[first], h.dst_lo[first])
    sport = np.where(swap, h.dport[first], h.sport[first]).astype(np.int32)
    dport = np.where(swap, h.sport[first], h.dport[first]).astype(np.int32)
    ip_text = _addresses(np.concatenate([src_hi, dst_hi]), np.concatenate([src_lo, dst_lo]))

    sni: list[str | None] = [None] * nrec
    ja3s: list[str | None] = [None] * nrec
    ja4s: list[str | None] = [None] * nrec
    if hellos:
        conn_first_rec = np.searchsorted(rec_conn, np.arange(nconn))
        conn_rec_end = np.append(conn_first_rec[1:], nrec)
        for c, (hello, _) in hellos.items():
            j3, j4 = ja3(hello), ja4(hello)
            for r in range(int(conn_first_rec[c]), int(conn_rec_end[c])):
                sni[r], ja3s[r], ja4s[r] = hello.sni, j3, j4

    table = pa.Table.from_arrays(
        [
            pa.array(ts_o[rec_start]),
            pa.array(np.maximum.reduceat(ts_o, rec_start)),
            ip_text.slice(0, nrec),
            ip_text.slice(nrec, nrec),
            pa.array(sport),
            pa.array(dport),
            pa.array(h.proto[first].astype(np.int16)),
            pa.array(side_packets[0::2].astype(np.int64)),
            pa.array(side_bytes[0::2]),
            pa.array(side_packets[1::2].astype(np.int64)),
            pa.array(side_bytes[1::2]),
            pa.array(side_payload[0::2].astype(np.int64)),
            pa.array(side_payload[1::2].astype(np.int64)),
            pa.array(opens.count[0::2]),
            pa.array(opens.count[1::2]),
            pa.array(opens.gaps[0::2]),
            pa.array(opens.gap_sum[0::2]),
            pa.array(opens.gap_sumsq[0::2]),
            pa.array(opens.gaps[1::2]),
            pa.array(opens.gap_sum[1::2]),
            pa.array(opens.gap_sumsq[1::2]),
            pa.array(tls_rec),
            pa.array(np.bitwise_or.reduceat(flags, rec_start).astype(np.int16)),
            pa.array(np.where(known[rec_conn], INITIATOR_SRC, INITIATOR_UNKNOWN).astype(np.int8)),
            pa.array(sni, type=pa.string()),
            pa.array(ja3s, type=pa.string()),
            pa.array(ja4s, type=pa.string()),
            pa.nulls(nrec, type=pa.string()),
            pa.array([source] * nrec, type=pa.string()),
            pa.nulls(nrec, type=pa.string()),
        ],
        schema=FLOW_SCHEMA,
    )
    table = table.take(pa.array(np.argsort(ts_o[rec_start], kind="stable")))
    if dns:
        table = attach_dns_names(table, dns_answers(h))
    return table


@dataclass(frozen=True, slots=True)
class _Opens:
    """Per record side (index ``2 * record + (0 src, 1 dst)``): opens and their intervals; and
    per connection, the times an :class:`OpenState` carries to the next batch."""

    count: np.ndarray
    gaps: np.ndarray
    gap_sum: np.ndarray
    gap_sumsq: np.ndarray
    last: np.ndarray
    """Per connection: last payload time, last open by the lower / the higher endpoint, and
    since when the connection is known to have carried no payload (0: since it began; ns, -1
    unknown)."""


_NONE = -1
_CARRIED = 4


class OpenState:
    """What one batch of packets tells the next about each connection's exchanges: when its last
    payload was seen, and when each endpoint last opened an exchange.

    A live meter converts packets batch by batch (a second at a time); without this, the first
    payload of every batch could not be judged (was the connection silent before it?) and an
    interval between opens in two batches would be lost, so live records would count far fewer
    opens than a capture of the same traffic. Connections are keyed direction-free; those quiet
    for ``idle_ns`` are forgotten and at most ``max_connections`` (the most recent) are kept.

    Example::

        state = OpenState()
        for batch in batches:
            meter.update(records_from_headers(decode_headers(batch), opens_state=state))
    """

    def __init__(self, *, idle_ns: int = 600 * 10**9, max_connections: int = 200_000) -> None:
        self.idle_ns = idle_ns
        self.max_connections = max_connections
        self._key = np.zeros(0, dtype=np.uint64)
        self._times = np.zeros((0, _CARRIED), dtype=np.int64)
        self._seen = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return int(self._key.shape[0])

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Carried times (rows as :attr:`_Opens.last`) of connections ``keys``; -1 unknown."""
        out = np.full((keys.shape[0], _CARRIED), _NONE, dtype=np.int64)
        if self._key.shape[0] == 0:
            return out
        at = np.minimum(np.searchsorted(self._key, keys), self._key.shape[0] - 1)
        found = self._key[at] == keys
        out[found] = self._times[at[found]]
        return out

    def update(self, keys: np.ndarray, times: np.ndarray, now_ns: int) -> None:
        """Remember ``times`` of connections ``keys`` (seen up to ``now_ns``); forget the idle."""
        keep = ~np.isin(self._key, keys)
        key = np.concatenate([self._key[keep], keys.astype(np.uint64)])
        when = np.concatenate([self._times[keep], times])
        seen = np.concatenate([self._seen[keep], np.full(keys.shape[0], now_ns, np.int64)])
        alive = np.flatnonzero(seen >= now_ns - self.idle_ns)
        if alive.shape[0] > self.max_connections:
            alive = alive[np.argsort(-seen[alive], kind="stable")[: self.max_connections]]
        order = alive[np.argsort(key[alive], kind="stable")]
        self._key, self._times, self._seen = key[order], when[order], seen[order]


def _opens(
    ts: np.ndarray,
    has_payload: np.ndarray,
    conn: np.ndarray,
    conn_start: np.ndarray,
    syn_seen: np.ndarray,
    side: np.ndarray,
    nrec: int,
    sender_lo: np.ndarray,
    prior: np.ndarray | None = None,
) -> _Opens:
    """Count the payload packets that open an exchange, and each side's intervals between them.

    Inputs are in the sorted order (connection, then time). A payload packet opens an exchange
    when the connection's previous payload packet (either side) lies at least
    :data:`~minewatch.net.flowrec.table.OPEN_IDLE_S` before it. For the first payload packet of
    a connection in these packets, "previous" comes from ``prior`` (times carried from earlier
    batches, :class:`OpenState`) when known; otherwise it opens one when the connection began
    here (its SYN is here), or when its first packet here lies that long before: a silence is
    then proven. Otherwise (a batch that starts mid-conversation) it is not counted, since what
    preceded it is unknown. Intervals are taken between consecutive opens of the same side of
    one connection (the first one of a batch measured from the carried open, when known) and
    counted in the record (slice) of the later open.
    """
    idle_ns = int(OPEN_IDLE_S * 1e9)
    nconn = conn_start.shape[0]
    size = 2 * nrec
    if prior is None:
        prior = np.full((nconn, _CARRIED), _NONE, dtype=np.int64)
    last = prior.copy()
    unknown = last[:, 3] < 0
    last[unknown, 3] = np.where(syn_seen[unknown], 0, ts[conn_start[unknown]])
    pl = np.flatnonzero(has_payload)
    if pl.shape[0] == 0:
        zeros = np.zeros(size, dtype=np.int64)
        return _Opens(zeros, zeros, zeros.astype(np.float64), zeros.astype(np.float64), last)
    pl_conn = conn[pl]
    pl_ts = ts[pl]
    first = np.empty(pl.shape[0], dtype=bool)
    first[0] = True
    first[1:] = pl_conn[1:] != pl_conn[:-1]
    since = np.empty(pl.shape[0], dtype=np.int64)
    since[1:] = pl_ts[1:] - pl_ts[:-1]
    first_conn = pl_conn[first]
    carried = prior[first_conn, 0]
    # No payload before: silent since the connection began (0) or since its first packet seen.
    silent_since = last[first_conn, 3]
    since[first] = np.where(
        carried >= 0,
        pl_ts[first] - carried,
        np.where(silent_since == 0, np.iinfo(np.int64).max, pl_ts[first] - silent_since),
    )
    is_open = since >= idle_ns
    np.maximum.at(last[:, 0], pl_conn, pl_ts)
    at = pl[is_open]
    open_side = side[at]
    count = np.bincount(open_side, minlength=size).astype(np.int64)
    # Consecutive opens of one side of one connection: group by (connection, direction).
    direction = open_side & 1
    group = conn[at] * 2 + direction
    seq = np.argsort(group, kind="stable")  # keeps time order inside each group
    g, t, s, lo = group[seq], ts[at][seq], open_side[seq], sender_lo[at][seq]
    c = g // 2
    same = np.empty(g.shape[0], dtype=bool)
    if g.shape[0]:
        same[0] = False
        same[1:] = g[1:] == g[:-1]
    prev_t = np.empty(g.shape[0], dtype=np.int64)
    if g.shape[0]:
        prev_t[1:] = t[:-1]
    head = ~same
    prev_t[head] = np.where(lo[head], prior[c[head], 1], prior[c[head], 2])
    has_prev = same | (prev_t >= 0)
    gap_s = (t - prev_t)[has_prev].astype(np.float64) / 1e9
    where = s[has_prev]
    np.maximum.at(last[:, 1], c[lo], t[lo])
    np.maximum.at(last[:, 2], c[~lo], t[~lo])
    return _Opens(
        count=count,
        gaps=np.bincount(where, minlength=size).astype(np.int64),
        gap_sum=np.bincount(where, weights=gap_s, minlength=size),
        gap_sumsq=np.bincount(where, weights=gap_s * gap_s, minlength=size),
        last=last,
    )


_TLS_MAX_RECORD = (1 << 14) + 2048
"""Largest TLS ciphertext record (RFC 8446 5.2): a header claiming more is not TLS."""


def _tls_records(
    h: PacketHeaders, order: np.ndarray, has_payload: np.ndarray, rec: np.ndarray, nrec: int
) -> np.ndarray:
    """Whether any payload of each record begins with a TLS record header: content type
    20-23, version major 3, minor 0-4, and a length no TLS record exceeds."""
    cand = np.flatnonzero(has_payload & (h.payload_len[order] >= 5))
    out = np.zeros(nrec, dtype=bool)
    if cand.shape[0] == 0:
        return out
    off = h.payload_off[order[cand]].astype(np.int64)
    buf = h.buf
    length = buf[off + 3].astype(np.int64) * 256 + buf[off + 4]
    looks = (
        (buf[off] >= 0x14)
        & (buf[off] <= 0x17)
        & (buf[off + 1] == 3)
        & (buf[off + 2] <= 4)
        & (length > 0)
        & (length <= _TLS_MAX_RECORD)
    )
    out[rec[cand[looks]]] = True
    return out


def _payload(h: PacketHeaders, i: int) -> bytes:
    start = int(h.payload_off[i])
    return bytes(h.buf[start : start + int(h.payload_len[i])])


def _client_hellos(
    h: PacketHeaders,
    order: np.ndarray,
    conn: np.ndarray,
    conn_start: np.ndarray,
    sender_lo: np.ndarray,
    tcp_pkt: np.ndarray,
) -> dict[int, tuple[ClientHello, int]]:
    """The ClientHello of each TCP connection that sent one, by connection number, with the
    sorted position of the packet that began it.

    A vectorised look at three bytes (handshake record, version major 3, ClientHello) picks the
    first hello-looking packet of each connection; only those are parsed, joining the sender's
    next segments in sequence order when the hello spans several.
    """
    plen = h.payload_len[order]
    off = h.payload_off[order]
    cand = np.flatnonzero(tcp_pkt & (plen >= 6))
    if cand.shape[0] == 0:
        return {}
    buf = h.buf
    looks = (
        (buf[off[cand]] == _TLS_HANDSHAKE)
        & (buf[off[cand] + 1] == 3)
        & (buf[off[cand] + 5] == _TLS_CLIENT_HELLO)
    )
    cand = cand[looks]
    if cand.shape[0] == 0:
        return {}
    first_of_conn = np.flatnonzero(np.r_[True, conn[cand][1:] != conn[cand][:-1]])
    out: dict[int, tuple[ClientHello, int]] = {}
    for p in cand[first_of_conn].tolist():
        c = int(conn[p])
        data = _payload(h, int(order[p]))
        hello = parse_client_hello(data)
        if hello is None:
            end = int(conn_start[c + 1]) if c + 1 < conn_start.shape[0] else order.shape[0]
            data = _joined_segments(h, order, p, end, sender_lo)
            hello = parse_client_hello(data)
        if hello is not None:
            out[c] = (hello, p)
    return out


def _joined_segments(
    h: PacketHeaders, order: np.ndarray, p: int, end: int, sender_lo: np.ndarray
) -> bytes:
    """The payload of sorted packet ``p`` and the same sender's next segments, in seq order."""
    span = np.arange(p, end)
    mine = span[(sender_lo[span] == sender_lo[p]) & (h.payload_len[order[span]] > 0)]
    mine = mine[:_HELLO_SEGMENTS]
    idx = order[mine]
    seq = h.seq[idx].astype(np.int64)
    rel = (seq - seq[0]) % (1 << 32)
    rel = np.where(rel >= 1 << 31, rel - (1 << 32), rel)
    parts: list[bytes] = []
    taken: set[int] = set()
    size = 0
    for i in np.argsort(rel, kind="stable").tolist():
        if int(rel[i]) in taken or size >= _HELLO_BYTES:
            continue
        taken.add(int(rel[i]))
        piece = _payload(h, int(idx[i]))
        parts.append(piece)
        size += len(piece)
    return b"".join(parts)


_JA4_VERSIONS = {
    0x0304: "13",
    0x0303: "12",
    0x0302: "11",
    0x0301: "10",
    0x0300: "s3",
    0x0002: "s2",
    0xFEFF: "d1",
    0xFEFD: "d2",
    0xFEFC: "d3",
}


def ja3(hello: ClientHello) -> str:
    """The JA3 fingerprint (Salesforce, 2017) of a ClientHello: MD5 of version, cipher suites,
    extensions, groups and point formats in decimal, GREASE values left out."""
    parts = [
        str(hello.legacy_version),
        "-".join(str(v) for v in hello.cipher_suites if not is_grease(v)),
        "-".join(str(v) for v in hello.extensions if not is_grease(v)),
        "-".join(str(v) for v in hello.supported_groups if not is_grease(v)),
        "-".join(str(v) for v in hello.ec_point_formats),
    ]
    return hashlib.md5(",".join(parts).encode(), usedforsecurity=False).hexdigest()


def _sha12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12] if text else "0" * 12


def ja4(hello: ClientHello, transport: str = "t") -> str:
    """The JA4 TLS-client fingerprint (FoxIO, BSD-3-Clause) of a ClientHello.

    ``<t|q><version><d|i><ciphers:02><extensions:02><alpn first+last>_<sha256[:12] of the sorted
    cipher list>_<sha256[:12] of the sorted extensions (without SNI and ALPN), "_", the
    signature algorithms in order>``.
    """
    ciphers = [v for v in hello.cipher_suites if not is_grease(v)]
    extensions = [v for v in hello.extensions if not is_grease(v)]
    version = _JA4_VERSIONS.get(hello.max_version, "00")
    alpn = "00"
    if hello.alpn and hello.alpn[0]:
        value = hello.alpn[0]
        if (
            value[0].isascii()
            and value[0].isalnum()
            and value[-1].isascii()
            and value[-1].isalnum()
        ):
            alpn = value[0] + value[-1]
        else:
            raw = value.encode("utf-8", "surrogateescape").hex()
            alpn = raw[0] + raw[-1]
    head = (
        f"{transport}{version}{'d' if hello.sni else 'i'}"
        f"{min(len(ciphers), 99):02d}{min(len(extensions), 99):02d}{alpn}"
    )
    cipher_text = ",".join(sorted(f"{v:04x}" for v in ciphers))
    ext_text = ",".join(sorted(f"{v:04x}" for v in extensions if v not in (0x0000, 0x0010)))
    sigs = ",".join(f"{v:04x}" for v in hello.signature_algorithms)
    ext_part = _sha12(f"{ext_text}_{sigs}" if sigs else ext_text) if ext_text else "0" * 12
    return f"{head}_{_sha12(cipher_text)}_{ext_part}"


def dns_answers(h: PacketHeaders) -> pa.Table:
    """Addresses that DNS responses in these packets gave, with the name asked for and when.

    Only UDP packets from port 53 that are long enough for a DNS header are parsed (one Python
    call per DNS response); answers of type A and AAAA are kept.
    """
    cand = np.flatnonzero(
        (h.proto == PROTO_UDP) & (h.sport == _DNS_PORT) & (h.payload_len >= _DNS_HEADER)
    )
    ts: list[int] = []
    addresses: list[str] = []
    names: list[str] = []
    for i in cand.tolist():
        msg = parse_dns(_payload(h, i))
        if msg is None or not msg.is_response or not msg.questions:
            continue
        asked = msg.questions[0]
        for answer in msg.answers:
            if answer.rtype in (RecordType.A, RecordType.AAAA):
                ts.append(int(h.ts_ns[i]))
                addresses.append(answer.value)
                names.append(asked)
    return pa.Table.from_arrays(
        [pa.array(ts, type=pa.int64()), pa.array(addresses), pa.array(names)],
        schema=DNS_ANSWER_SCHEMA,
    )


_ATTACH_SQL = """
WITH r AS (SELECT *, row_number() OVER () AS rid FROM flows),
dst AS (
    SELECT r.rid, a.name FROM r ASOF JOIN answers a
    ON r.dst_ip = a.address AND r.end_ns >= a.ts_ns
),
src AS (
    SELECT r.rid, a.name FROM r ASOF JOIN answers a
    ON r.src_ip = a.address AND r.end_ns >= a.ts_ns
    WHERE r.initiator = 0
)
SELECT coalesce(r.dns_name, dst.name, src.name) AS dns_name
FROM r LEFT JOIN dst USING (rid) LEFT JOIN src USING (rid)
ORDER BY r.rid
"""


def attach_dns_names(flows: pa.Table, answers: pa.Table) -> pa.Table:
    """Fill ``dns_name`` of records whose server address a DNS answer gave before (or during)
    the record: the latest such answer wins. The server is ``dst_ip``; when the opener is
    unknown, ``src_ip`` is tried too. Names already present are kept."""
    if flows.num_rows == 0 or answers.num_rows == 0:
        return flows
    con = duckdb.connect()
    try:
        con.register("flows", flows)
        con.register("answers", answers)
        names = con.sql(_ATTACH_SQL).to_arrow_table()
    finally:
        con.close()
    column = names.column("dns_name").cast(pa.string())
    at = flows.schema.get_field_index("dns_name")
    return flows.set_column(at, FLOW_SCHEMA.field("dns_name"), column)


def capture_flows(
    path: str | Path, *, slice_ns: int = DEFAULT_SLICE_NS
) -> tuple[pa.Table, str | None]:
    """Flow records of one capture file and the reader's problem with it (``None`` if clean).

    Raises :class:`~minewatch.errors.CaptureError` for a file that cannot be read at all.
    """
    table = read_capture(path)
    records = records_from_headers(decode_headers(table), slice_ns=slice_ns, source="pcap")
    return records, table.problem


def read_capture_flows(
    paths: Iterable[str | Path], *, slice_ns: int = DEFAULT_SLICE_NS
) -> tuple[pa.Table, list[FileProblem]]:
    """Flow records of capture files and directories, and the files that could not be (fully)
    read. Unreadable files are problems, never exceptions."""
    files, problems = collect_capture_files(paths)
    tables: list[pa.Table] = []
    for path in files:
        try:
            records, problem = capture_flows(path, slice_ns=slice_ns)
        except CaptureError as exc:
            problems.append(FileProblem(exc.path, exc.reason))
            continue
        tables.append(records)
        if problem:
            problems.append(FileProblem(str(path), problem))
    if not tables:
        return empty_flows(), problems
    return pa.concat_tables(tables), problems
