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

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from minewatch.net.capture.decode import PROTO_TCP, PacketHeaders
from minewatch.net.ranges import gather_ranges
from minewatch.net.screening import HEAD_WIDTH, HeadView, Screen, screen_heads

__all__ = [
    "HEAD_BYTES",
    "HEAD_PACKETS",
    "Conversation",
    "ConversationTable",
    "HeadView",
    "Screen",
    "conversations",
]

HEAD_PACKETS = 8
"""Payload packets per direction whose bytes are kept for recognition."""
HEAD_BYTES = 4_096
"""Bytes per direction kept for recognition: logins, subscriptions, first jobs and certificate
flights fit."""

_SYN, _ACK = 0x02, 0x10


@dataclass(slots=True)
class Conversation:
    """One TCP connection or UDP flow, oriented from the side that opened it.

    ``initiator`` is the SYN sender, or when no SYN was captured the sender of the first packet.
    ``fwd``/``rev`` are the reassembled heads of what the initiator/responder sent (TCP in
    sequence order); ``fwd_sizes``/``rev_sizes`` the sizes of the payload packets they consist
    of, so ``fwd_segments``/``rev_segments`` give them one by one (datagrams for UDP).
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
    fwd_sizes: list[int] = field(default_factory=list)
    rev_sizes: list[int] = field(default_factory=list)

    @property
    def fwd_segments(self) -> list[bytes]:
        """What the initiator sent, one item per payload packet (datagram for UDP)."""
        return _split(self.fwd, self.fwd_sizes)

    @property
    def rev_segments(self) -> list[bytes]:
        """What the responder sent, one item per payload packet (datagram for UDP)."""
        return _split(self.rev, self.rev_sizes)


def _split(data: bytes, sizes: list[int]) -> list[bytes]:
    out, at = [], 0
    for size in sizes:
        out.append(data[at : at + size])
        at += size
    return out


_V4_MAPPED_HI = 0
_V4_MAPPED_PREFIX = 0x0000FFFF


def _ip_text(hi: int, lo: int) -> str:
    hi, lo = int(hi), int(lo)
    if hi == _V4_MAPPED_HI and lo >> 32 == _V4_MAPPED_PREFIX:
        return socket.inet_ntop(socket.AF_INET, (lo & 0xFFFFFFFF).to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, ((hi << 64) | lo).to_bytes(16, "big"))


@dataclass(slots=True)
class _Groups:
    """Per-packet connection ids (sorted order) and per-connection facts."""

    order: np.ndarray
    conn: np.ndarray
    fwd: np.ndarray
    start: np.ndarray
    count: np.ndarray


@njit(cache=True, nogil=True)
def _flow_keys(
    src_hi: np.ndarray,
    src_lo: np.ndarray,
    dst_hi: np.ndarray,
    dst_lo: np.ndarray,
    sport: np.ndarray,
    dport: np.ndarray,
    proto: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Direction-free 64-bit key of every packet's 5-tuple (splitmix64 steps over its parts,
    lower endpoint first) and whether the sender is the lower endpoint."""
    n = src_hi.shape[0]
    key = np.empty(n, dtype=np.uint64)
    src_first = np.empty(n, dtype=np.bool_)
    for i in range(n):
        a = (src_hi[i], src_lo[i], np.uint64(sport[i]))
        b = (dst_hi[i], dst_lo[i], np.uint64(dport[i]))
        lower = a <= b
        lo, hi = (a, b) if lower else (b, a)
        parts = (lo[0], lo[1], hi[0], hi[1], (lo[2] << 24) | (hi[2] << 8) | np.uint64(proto[i]))
        x = np.uint64(0x9E3779B97F4A7C15)
        for p in parts:
            x ^= p
            x ^= x >> np.uint64(30)
            x *= np.uint64(0xBF58476D1CE4E5B9)
            x ^= x >> np.uint64(27)
            x *= np.uint64(0x94D049BB133111EB)
            x ^= x >> np.uint64(31)
        key[i] = x
        src_first[i] = lower
    return key, src_first


@njit(cache=True, nogil=True)
def _collides(
    order: np.ndarray,
    new_flow: np.ndarray,
    src_hi: np.ndarray,
    src_lo: np.ndarray,
    dst_hi: np.ndarray,
    dst_lo: np.ndarray,
    sport: np.ndarray,
    dport: np.ndarray,
    proto: np.ndarray,
) -> bool:
    """Whether two different 5-tuples share a key (then grouping falls back to exact sorting)."""
    for j in range(1, order.shape[0]):
        if new_flow[j]:
            continue
        i, k = order[j - 1], order[j]
        same = (
            src_hi[i] == src_hi[k]
            and src_lo[i] == src_lo[k]
            and sport[i] == sport[k]
            and dst_hi[i] == dst_hi[k]
            and dst_lo[i] == dst_lo[k]
            and dport[i] == dport[k]
        )
        swapped = (
            src_hi[i] == dst_hi[k]
            and src_lo[i] == dst_lo[k]
            and sport[i] == dport[k]
            and dst_hi[i] == src_hi[k]
            and dst_lo[i] == src_lo[k]
            and dport[i] == sport[k]
        )
        if proto[i] != proto[k] or not (same or swapped):
            return True
    return False  # fmt: skip


def _group(h: PacketHeaders) -> _Groups:
    columns = (h.src_hi, h.src_lo, h.dst_hi, h.dst_lo, h.sport, h.dport, h.proto)
    key, src_first = _flow_keys(*columns)
    order = np.argsort(key, kind="stable")
    k = key[order]
    new_flow = np.empty(k.shape[0], dtype=bool)
    if k.shape[0]:
        new_flow[0] = True
        new_flow[1:] = k[1:] != k[:-1]
    if _collides(order, new_flow, *columns):  # astronomically rare; tested by forcing it
        lo = np.where(src_first, 0, 1)
        ends = [np.where(lo == 0, a, b) for a, b in ((h.src_hi, h.dst_hi), (h.src_lo, h.dst_lo))]
        ends += [np.where(lo == 0, b, a) for a, b in ((h.src_hi, h.dst_hi), (h.src_lo, h.dst_lo))]
        sport, dport = h.sport.astype(np.int64), h.dport.astype(np.int64)
        ports = np.where(lo == 0, sport * 65536 + dport, dport * 65536 + sport)
        order = np.lexsort((np.arange(k.shape[0]), h.proto, ports, *ends[::-1]))
        keys = np.stack([c[order] for c in (*ends, ports, h.proto)])
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


def conversations(h: PacketHeaders, screen: Screen) -> ConversationTable:
    """The candidate conversations of a decoded capture, in order of first packet."""
    n = len(h)
    if n == 0:
        return _empty_table()
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
    seq = h.seq[order][sel].astype(np.int64)
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
    lens = h.payload_len[src_idx].astype(np.int64)
    # Cap bytes per side; note which heads look like text (where text tokens are searched).
    side_first = np.searchsorted(sside, sside)
    head_byte = h.buf[starts[side_first]]
    text_like = ((head_byte >= 0x20) & (head_byte < 0x7F)) | np.isin(head_byte, (9, 10, 13))
    before = np.cumsum(lens) - lens
    before -= before[side_first]
    lens = np.clip(HEAD_BYTES - before, 0, lens)
    # Lay text-looking heads first in the buffer (each side's segments stay together and in
    # order), so that text tokens are searched in that prefix only.
    keep = np.flatnonzero(lens > 0)
    keep = keep[np.argsort(~text_like[keep], kind="stable")]
    starts, lens, sside = starts[keep], lens[keep], sside[keep]
    text_like, before = text_like[keep], before[keep]
    # Screening reads text heads whole but only the first HEAD_WIDTH bytes of binary ones
    # (bulk downloads and TLS records are most of the bytes and need no more).
    screen_lens = np.where(text_like, lens, np.clip(HEAD_WIDTH - before, 0, lens))
    heads = gather_ranges(h.buf, starts, screen_lens)
    seg_end = np.cumsum(screen_lens)
    seg_begin = seg_end - screen_lens

    conn_is_tcp = is_tcp_pkt[g.start]
    heads_bytes = heads.tobytes()
    tokens, screened = screen_heads(
        screen,
        heads,
        heads_bytes,
        seg_begin,
        seg_end,
        sside,
        lens,
        text_like,
        conn_is_tcp,
        nconn,
    )
    candidate = (tokens[0::2] != 0) | (tokens[1::2] != 0) | (screened != 0)
    # Whole heads, for the candidates only.
    chosen = candidate[sside // 2]
    starts, lens, sside = starts[chosen], lens[chosen], sside[chosen]
    heads_bytes = gather_ranges(h.buf, starts, lens).tobytes()
    seg_end = np.cumsum(lens)
    seg_begin = seg_end - lens
    rows = np.flatnonzero(candidate)
    rows = rows[np.argsort(first_ns[rows], kind="stable")]

    # Endpoints of each candidate, oriented initiator -> responder.
    p = g.order[g.start[rows]]  # first packet of the connection
    lo_is_src = g.fwd[g.start[rows]]
    src_is_ini = lo_is_src == init_lo[rows]
    ini_hi = np.where(src_is_ini, h.src_hi[p], h.dst_hi[p])
    ini_lo = np.where(src_is_ini, h.src_lo[p], h.dst_lo[p])
    res_hi = np.where(src_is_ini, h.dst_hi[p], h.src_hi[p])
    res_lo = np.where(src_is_ini, h.dst_lo[p], h.src_lo[p])
    ini_port = np.where(src_is_ini, h.sport[p], h.dport[p])
    res_port = np.where(src_is_ini, h.dport[p], h.sport[p])
    side_lo = np.zeros(2 * nconn, dtype=np.int64)
    side_hi = np.zeros(2 * nconn, dtype=np.int64)
    firsts = np.flatnonzero(np.r_[True, sside[1:] != sside[:-1]]) if sside.shape[0] else rows[:0]
    side_lo[sside[firsts]] = firsts
    side_hi[sside[firsts]] = np.r_[firsts[1:], sside.shape[0]]
    return ConversationTable(
        is_tcp=conn_is_tcp[rows],
        ini_hi=ini_hi,
        ini_lo=ini_lo,
        ini_port=ini_port,
        res_hi=res_hi,
        res_lo=res_lo,
        res_port=res_port,
        saw_syn=saw_syn[rows],
        first_ns=first_ns[rows],
        last_ns=last_ns[rows],
        packets=g.count[rows],
        fwd_bytes=side_bytes[2 * rows],
        rev_bytes=side_bytes[2 * rows + 1],
        fwd_payload_packets=side_pkts[2 * rows],
        rev_payload_packets=side_pkts[2 * rows + 1],
        fwd_tokens=tokens[2 * rows],
        rev_tokens=tokens[2 * rows + 1],
        screened=screened[rows],
        heads=heads_bytes,
        seg_begin=seg_begin,
        seg_end=seg_end,
        fwd_segments=np.stack([side_lo[2 * rows], side_hi[2 * rows]], axis=1),
        rev_segments=np.stack([side_lo[2 * rows + 1], side_hi[2 * rows + 1]], axis=1),
    )


@dataclass(slots=True)
class ConversationTable:
    """Candidate conversations of one capture, as columns, oriented initiator -> responder.

    ``fwd_tokens``/``rev_tokens`` are bit sets of the screen's text tokens found in what the
    initiator/responder sent (bit *i* = token *i*); ``screened`` is the bit set of recognisers
    (by index) whose binary screen claimed the conversation. Heads stay in one buffer until
    :meth:`conversations` builds Python objects, which only happens for the rows a recogniser
    must look at.
    """

    is_tcp: np.ndarray
    ini_hi: np.ndarray
    ini_lo: np.ndarray
    ini_port: np.ndarray
    res_hi: np.ndarray
    res_lo: np.ndarray
    res_port: np.ndarray
    saw_syn: np.ndarray
    first_ns: np.ndarray
    last_ns: np.ndarray
    packets: np.ndarray
    fwd_bytes: np.ndarray
    rev_bytes: np.ndarray
    fwd_payload_packets: np.ndarray
    rev_payload_packets: np.ndarray
    fwd_tokens: np.ndarray
    rev_tokens: np.ndarray
    screened: np.ndarray
    heads: bytes
    seg_begin: np.ndarray
    seg_end: np.ndarray
    fwd_segments: np.ndarray
    rev_segments: np.ndarray

    def __len__(self) -> int:
        return int(self.first_ns.shape[0])

    def conversation(self, i: int) -> Conversation:
        """The Python view of row ``i``, with its reassembled heads."""
        return self.conversations(np.array([i]))[0]

    def conversations(self, rows: np.ndarray) -> list[Conversation]:
        """Python views of several rows at once (column values are fetched in bulk)."""
        cols = [
            getattr(self, name)[rows].tolist()
            for name in (
                "is_tcp", "ini_hi", "ini_lo", "ini_port", "res_hi", "res_lo", "res_port",
                "saw_syn", "first_ns", "last_ns", "packets", "fwd_bytes", "rev_bytes",
                "fwd_payload_packets", "rev_payload_packets",
            )
        ]  # fmt: skip
        fwd_bounds = self.fwd_segments[rows].tolist()
        rev_bounds = self.rev_segments[rows].tolist()
        begin, end, heads = self.seg_begin, self.seg_end, self.heads
        out = []
        for k, values in enumerate(zip(*cols, strict=True)):
            (tcp, ihi, ilo, iport, rhi, rlo, rport, syn, first, last, pkts, fb, rb, fp, rp) = values
            sides = []
            for a, b in (fwd_bounds[k], rev_bounds[k]):
                # A side's segments lie next to each other in the head buffer: one slice.
                if b > a:
                    lo, hi = int(begin[a]), int(end[b - 1])
                    sides.append((heads[lo:hi], (end[a:b] - begin[a:b]).tolist()))
                else:
                    sides.append((b"", []))
            out.append(
                Conversation(
                    transport="tcp" if tcp else "udp",
                    initiator_ip=_ip_text(ihi, ilo),
                    initiator_port=iport,
                    responder_ip=_ip_text(rhi, rlo),
                    responder_port=rport,
                    saw_syn=syn,
                    first_ns=first,
                    last_ns=last,
                    packets=pkts,
                    fwd_bytes=fb,
                    rev_bytes=rb,
                    fwd_payload_packets=fp,
                    rev_payload_packets=rp,
                    fwd=sides[0][0],
                    rev=sides[1][0],
                    fwd_sizes=sides[0][1],
                    rev_sizes=sides[1][1],
                )
            )
        return out

    def __iter__(self) -> Iterator[Conversation]:
        return iter(self.conversations(np.arange(len(self))))


def _empty_table() -> ConversationTable:
    i = np.zeros(0, dtype=np.int64)
    u = np.zeros(0, dtype=np.uint64)
    b = np.zeros(0, dtype=bool)
    pairs = np.zeros((0, 2), dtype=np.int64)
    return ConversationTable(
        is_tcp=b, ini_hi=u, ini_lo=u, ini_port=i, res_hi=u, res_lo=u, res_port=i, saw_syn=b,
        first_ns=i, last_ns=i, packets=i, fwd_bytes=i, rev_bytes=i, fwd_payload_packets=i,
        rev_payload_packets=i, fwd_tokens=u, rev_tokens=u, screened=u, heads=b"", seg_begin=i,
        seg_end=i, fwd_segments=pairs, rev_segments=pairs,
    )  # fmt: skip
