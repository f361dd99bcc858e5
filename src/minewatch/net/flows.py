"""Group decoded packets into conversations and reassemble the head of each direction.

All grouping is vectorised: flow keys are hashed in bulk, packets are sorted once, and TCP
connections inside one 5-tuple are split at each new SYN. Payload is only gathered for the first
:data:`HEAD_PACKETS` payload-carrying packets of each direction (at most :data:`HEAD_BYTES`), which
is where every mining protocol shows itself: logins, subscriptions and the first job pushes. A
cheap vectorised pre-filter then keeps only conversations whose head could belong to a protocol a
recogniser knows, so Python code runs per *candidate conversation*, never per packet.

TCP heads are put in sequence-number order (so messages split over segments, or segments that
arrive out of order, read whole) and retransmissions are dropped; a capture that starts
mid-stream simply starts at the first captured byte.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from minewatch.net.capture.decode import PROTO_TCP, PacketHeaders

__all__ = [
    "HEAD_BYTES",
    "HEAD_PACKETS",
    "HEAD_WIDTH",
    "Conversation",
    "HeadView",
    "Screen",
    "conversations",
]

HEAD_PACKETS = 16
"""Payload packets per direction whose bytes are kept for recognition."""
HEAD_BYTES = 16_384
"""Bytes per direction kept for recognition (text protocols); binary heads keep fewer."""
BINARY_HEAD_BYTES = 4_096

_SYN, _ACK = 0x02, 0x10
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)



@dataclass(slots=True)
class Conversation:
    """One TCP connection or UDP flow, oriented from the side that opened it.

    ``initiator`` is the SYN sender, or when no SYN was captured the sender of the first packet.
    ``fwd``/``rev`` are the reassembled heads of what the initiator/responder sent;
    ``fwd_segments``/``rev_segments`` the same bytes as the individual payload packets in capture
    order (datagrams for UDP).
    """

    transport: str
    initiator_ip: str
    initiator_port: int
    responder_ip: str
    responder_port: int
    saw_syn: bool
    first_ns: int
    last_ns: int
    packets: int
    fwd_bytes: int
    rev_bytes: int
    fwd_payload_packets: int
    rev_payload_packets: int
    fwd: bytes = b""
    rev: bytes = b""
    fwd_segments: list[bytes] = field(default_factory=list)
    rev_segments: list[bytes] = field(default_factory=list)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a fast, well-spread 64-bit hash step (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _ip_text(hi: int, lo: int) -> str:
    value = (int(hi) << 64) | int(lo)
    addr = ipaddress.IPv6Address(value)
    mapped = addr.ipv4_mapped
    return str(mapped) if mapped is not None else str(addr)


def _gather_ranges(buf: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenate ``buf[s:s+l]`` for every (s, l) pair, in one gather."""
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, dtype=np.uint8)
    begin = np.cumsum(lens) - lens
    idx = np.repeat(starts - begin, lens) + np.arange(total, dtype=np.int64)
    return np.asarray(buf[idx])


@dataclass(slots=True)
class _Groups:
    """Per-packet connection ids (sorted order) and per-connection facts."""

    order: np.ndarray
    conn: np.ndarray
    fwd: np.ndarray
    start: np.ndarray
    count: np.ndarray


def _group(h: PacketHeaders) -> _Groups:
    src_first = (h.src_hi < h.dst_hi) | (
        (h.src_hi == h.dst_hi)
        & ((h.src_lo < h.dst_lo) | ((h.src_lo == h.dst_lo) & (h.sport <= h.dport)))
    )
    lo_hi = np.where(src_first, h.src_hi, h.dst_hi)
    lo_lo = np.where(src_first, h.src_lo, h.dst_lo)
    hi_hi = np.where(src_first, h.dst_hi, h.src_hi)
    hi_lo = np.where(src_first, h.dst_lo, h.src_lo)
    ports = (
        np.where(src_first, h.sport, h.dport).astype(np.uint64) << np.uint64(24)
        | np.where(src_first, h.dport, h.sport).astype(np.uint64) << np.uint64(8)
        | h.proto.astype(np.uint64)
    )
    key = _mix(lo_hi ^ np.uint64(0x9E3779B97F4A7C15))
    for part in (lo_lo, hi_hi, hi_lo, ports):
        key = _mix(key ^ part)
    order = np.argsort(key, kind="stable")
    k = key[order]
    new_flow = np.empty(k.shape[0], dtype=bool)
    if k.shape[0]:
        new_flow[0] = True
        new_flow[1:] = k[1:] != k[:-1]
    # A hash collision would merge two flows: detect it and fall back to exact sorting.
    flow_first = order[np.maximum.accumulate(np.where(new_flow, np.arange(k.shape[0]), 0))]
    same = (
        (lo_hi[order] == lo_hi[flow_first])
        & (lo_lo[order] == lo_lo[flow_first])
        & (hi_hi[order] == hi_hi[flow_first])
        & (hi_lo[order] == hi_lo[flow_first])
        & (ports[order] == ports[flow_first])
    )
    if not same.all():  # pragma: no cover - astronomically rare
        order = np.lexsort((np.arange(k.shape[0]), ports, hi_lo, hi_hi, lo_lo, lo_hi))
        keys = np.stack([lo_hi[order], lo_lo[order], hi_hi[order], hi_lo[order], ports[order]])
        new_flow[1:] = (keys[:, 1:] != keys[:, :-1]).any(axis=0)

    flags = h.tcp_flags[order]
    pure_syn = (h.proto[order] == PROTO_TCP) & ((flags & (_SYN | _ACK)) == _SYN)
    prev_syn = np.zeros_like(pure_syn)
    prev_syn[1:] = pure_syn[:-1]
    # A new SYN (not a retransmitted one) after other packets of the same 5-tuple opens a new
    # connection that reuses the ports.
    new_conn = new_flow | (pure_syn & ~prev_syn)
    conn = np.cumsum(new_conn) - 1
    start = np.flatnonzero(new_conn)
    count = np.diff(np.append(start, conn.shape[0]))
    return _Groups(order=order, conn=conn, fwd=src_first[order], start=start, count=count)


def conversations(h: PacketHeaders, screen: Screen) -> Iterator[Conversation]:
    """Yield the candidate conversations of a decoded capture, in order of first packet."""
    n = len(h)
    if n == 0:
        return
    g = _group(h)
    order, conn = g.order, g.conn
    nconn = g.start.shape[0]
    sender_lo = g.fwd  # True when the packet's sender is the lower endpoint
    flags = h.tcp_flags[order]
    is_tcp_pkt = h.proto[order] == PROTO_TCP
    syn_only = is_tcp_pkt & ((flags & (_SYN | _ACK)) == _SYN)
    syn_ack = is_tcp_pkt & ((flags & (_SYN | _ACK)) == (_SYN | _ACK))

    # Who opened each connection: the SYN sender, else the SYN-ACK receiver, else first sender.
    pos = np.arange(n)
    big = n + 1
    first_syn = np.minimum.reduceat(np.where(syn_only, pos, big), g.start)
    first_synack = np.minimum.reduceat(np.where(syn_ack, pos, big), g.start)
    init_lo = sender_lo[g.start].copy()
    has_synack = first_synack < big
    init_lo[has_synack] = ~sender_lo[first_synack[has_synack]]
    has_syn = first_syn < big
    init_lo[has_syn] = sender_lo[first_syn[has_syn]]
    saw_syn = has_syn | has_synack
    is_fwd = sender_lo == init_lo[conn]

    ts = h.ts_ns[order]
    plen = h.payload_len[order]
    first_ns = np.minimum.reduceat(ts, g.start)
    last_ns = np.maximum.reduceat(ts, g.start)
    side = conn * 2 + (~is_fwd).astype(np.int64)  # 2c = initiator's direction, 2c+1 = responder's
    side_bytes = np.bincount(side, weights=plen, minlength=2 * nconn).astype(np.int64)
    has_pl = plen > 0
    side_pkts = np.bincount(side[has_pl], minlength=2 * nconn)

    # Head selection: the first HEAD_PACKETS payload packets of each side, in capture order.
    sel = np.flatnonzero(has_pl)
    sel = sel[np.argsort(side[sel], kind="stable")]
    sside = side[sel]
    side_start = np.searchsorted(sside, np.arange(2 * nconn))
    rank = np.arange(sel.shape[0]) - side_start[sside]
    keep = rank < HEAD_PACKETS
    sel, sside = sel[keep], sside[keep]

    # TCP: order each side's head by sequence number relative to its first packet, drop repeats.
    seq = h.seq[order][sel]
    first_of_side = np.searchsorted(sside, sside)  # index of each side's first kept packet
    rel = ((seq - seq[first_of_side] + (1 << 31)) % (1 << 32)) - (1 << 31)
    tcp_sel = is_tcp_pkt[sel]
    rel = np.where(tcp_sel, rel, np.arange(sel.shape[0]) - first_of_side)
    reorder = np.lexsort((rel, sside))
    sel, sside, rel = sel[reorder], sside[reorder], rel[reorder]
    dup = np.zeros(sel.shape[0], dtype=bool)
    dup[1:] = (sside[1:] == sside[:-1]) & (rel[1:] == rel[:-1]) & tcp_sel[reorder][1:]
    sel, sside = sel[~dup], sside[~dup]

    src_idx = order[sel]
    starts = h.payload_off[src_idx]
    lens = h.payload_len[src_idx]
    # Cap bytes per side: text-looking heads keep HEAD_BYTES, binary ones BINARY_HEAD_BYTES.
    first_byte = h.buf[starts]
    side_first = np.searchsorted(sside, sside)
    head_byte = first_byte[side_first]
    text_like = ((head_byte >= 0x20) & (head_byte < 0x7F)) | np.isin(head_byte, (9, 10, 13))
    cap = np.where(text_like, HEAD_BYTES, BINARY_HEAD_BYTES)
    before = np.cumsum(lens) - lens
    before -= before[side_first]
    lens = np.clip(cap - before, 0, lens)
    nonzero = lens > 0
    src_idx, starts, lens, sside, text_like = (
        src_idx[nonzero],
        starts[nonzero],
        lens[nonzero],
        sside[nonzero],
        text_like[nonzero],
    )
    heads = _gather_ranges(h.buf, starts, lens)
    seg_end = np.cumsum(lens)
    seg_begin = seg_end - lens

    conn_is_tcp = is_tcp_pkt[g.start]
    candidate = _candidates(screen, heads, seg_begin, seg_end, sside, text_like, conn_is_tcp, nconn)
    lo_first = g.order[g.start]
    heads_bytes = heads.tobytes()
    side_bounds = np.searchsorted(sside, np.arange(2 * nconn + 1))
    for c in np.flatnonzero(candidate)[np.argsort(first_ns[candidate], kind="stable")]:
        p = int(lo_first[c])
        lo_is_src = bool(g.fwd[g.start[c]])
        src = (_ip_text(h.src_hi[p], h.src_lo[p]), int(h.sport[p]))
        dst = (_ip_text(h.dst_hi[p], h.dst_lo[p]), int(h.dport[p]))
        lo_ep, hi_ep = (src, dst) if lo_is_src else (dst, src)
        ini, res = (lo_ep, hi_ep) if init_lo[c] else (hi_ep, lo_ep)
        segs: list[list[bytes]] = []
        for s in (2 * c, 2 * c + 1):
            a, b = side_bounds[s], side_bounds[s + 1]
            segs.append(
                [heads_bytes[int(x) : int(y)] for x, y in zip(seg_begin[a:b], seg_end[a:b], strict=True)]
            )
        yield Conversation(
            transport="tcp" if conn_is_tcp[c] else "udp",
            initiator_ip=ini[0],
            initiator_port=ini[1],
            responder_ip=res[0],
            responder_port=res[1],
            saw_syn=bool(saw_syn[c]),
            first_ns=int(first_ns[c]),
            last_ns=int(last_ns[c]),
            packets=int(g.count[c]),
            fwd_bytes=int(side_bytes[2 * c]),
            rev_bytes=int(side_bytes[2 * c + 1]),
            fwd_payload_packets=int(side_pkts[2 * c]),
            rev_payload_packets=int(side_pkts[2 * c + 1]),
            fwd=b"".join(segs[0]),
            rev=b"".join(segs[1]),
            fwd_segments=segs[0],
            rev_segments=segs[1],
        )


@dataclass(slots=True)
class HeadView:
    """The first bytes of every direction of every connection, for vectorised screening.

    Row *i* describes one side (one direction of one connection). ``head`` holds the first
    :data:`HEAD_WIDTH` bytes of the side's reassembled head, zero-padded; ``first_len`` is the
    size of its first payload packet and ``peer_first_len`` that of the opposite direction (0 when
    it sent nothing); ``total_len`` is how many head bytes were kept.
    """

    head: np.ndarray
    first_len: np.ndarray
    peer_first_len: np.ndarray
    total_len: np.ndarray
    is_tcp: np.ndarray
    from_initiator: np.ndarray


HEAD_WIDTH = 128


class Screen(Protocol):
    """What :func:`conversations` needs to know about the recognisers: cheap bulk checks."""

    text_tokens: re.Pattern[bytes]

    def __call__(self, view: HeadView) -> np.ndarray:
        """Boolean mask over the view's rows: True where a recogniser may claim the side."""
        ...


def _candidates(
    screen: Screen,
    heads: np.ndarray,
    seg_begin: np.ndarray,
    seg_end: np.ndarray,
    sside: np.ndarray,
    text_like: np.ndarray,
    side_is_tcp: np.ndarray,
    nconn: int,
) -> np.ndarray:
    """Which connections any recogniser could claim, decided in bulk."""
    candidate = np.zeros(nconn, dtype=bool)
    if heads.shape[0] == 0:
        return candidate
    lens = seg_end - seg_begin
    # Text protocols: one regex pass over the concatenated text-looking heads.
    text_segments = np.flatnonzero(text_like)
    if text_segments.shape[0]:
        text = _gather_ranges(heads, seg_begin[text_segments], lens[text_segments]).tobytes()
        ends = np.cumsum(lens[text_segments])
        hits = np.fromiter(
            (m.start() for m in screen.text_tokens.finditer(text)), dtype=np.int64
        )
        if hits.shape[0]:
            seg = text_segments[np.searchsorted(ends, hits, side="right")]
            candidate[sside[seg] // 2] = True
    # Binary protocols: the recognisers' own bulk checks over each side's first bytes.
    first = np.flatnonzero(np.r_[True, sside[1:] != sside[:-1]])
    sides = sside[first]
    side_end = np.r_[first[1:], sside.shape[0]]
    total = seg_end[side_end - 1] - seg_begin[first]
    idx = np.minimum(seg_begin[first][:, None] + np.arange(HEAD_WIDTH), heads.shape[0] - 1)
    avail = total[:, None] > np.arange(HEAD_WIDTH)
    head = np.where(avail, heads[idx], 0).astype(np.int64)
    first_len_all = np.zeros(2 * nconn, dtype=np.int64)
    first_len_all[sides] = lens[first]
    view = HeadView(
        head=head,
        first_len=lens[first],
        peer_first_len=first_len_all[sides ^ 1],
        total_len=total,
        is_tcp=side_is_tcp[sides // 2],
        from_initiator=(sides % 2) == 0,
    )
    candidate[sides[screen(view)] // 2] = True
    return candidate
