"""Vectorised decoding of link, IP and transport headers for a whole capture at once.

Every step is a handful of numpy gathers over all packets: no Python code runs per packet. Fields
wider than a byte are read through strided views of the buffer (one ``>u2``/``>u4`` view whose
stride is one byte), so each field is one gather whatever its alignment. Reads beyond a packet's
captured length are masked: a cut-off header makes its packet invalid, never reads a neighbour.

Supported: Ethernet with up to two 802.1Q/802.1ad/QinQ tags, Linux cooked capture v1 and v2, raw
IP (LINKTYPE_RAW, IPV4, IPV6), BSD loopback/null; IPv4 (options, fragments: only first fragments
carry ports) and IPv6 (hop-by-hop, routing, destination-options, fragment and AH extension
headers); TCP and UDP.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minewatch.net.capture.reader import PacketTable

__all__ = ["LINKTYPES", "PacketHeaders", "decode_headers"]

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_BSD = 12
LINKTYPE_RAW_OPENBSD = 14
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
LINKTYPES = {
    LINKTYPE_NULL: "BSD loopback",
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_RAW_BSD: "raw IP",
    LINKTYPE_RAW_OPENBSD: "raw IP",
    LINKTYPE_RAW: "raw IP",
    LINKTYPE_LOOP: "OpenBSD loopback",
    LINKTYPE_LINUX_SLL: "Linux cooked v1",
    LINKTYPE_IPV4: "raw IPv4",
    LINKTYPE_IPV6: "raw IPv6",
    LINKTYPE_LINUX_SLL2: "Linux cooked v2",
}
_VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_IPV6_EXT = (0, 43, 60)
_IPV6_MAX_EXT = 8
PROTO_TCP = 6
PROTO_UDP = 17


@dataclass(slots=True)
class PacketHeaders:
    """Decoded TCP/UDP packets of one capture, as parallel columns.

    Addresses are 128-bit, split in two ``uint64`` halves; IPv4 addresses are stored IPv4-mapped
    (``::ffff:a.b.c.d``) so both families share one key space. ``payload_off`` indexes the
    capture's buffer; ``payload_len`` counts only captured payload bytes. ``ip_len`` is the IP
    packet's length on the wire (header included; the captured length when the header says 0, as
    under segmentation offload), which is what flow exporters count. ``index`` is each
    packet's position in the capture file. Columns are as narrow as their values (ports
    ``uint16``, flags and protocol ``uint8``, sequence numbers ``uint32``): at gigabyte scale the
    pipeline is bound by memory traffic.
    """

    buf: np.ndarray
    index: np.ndarray
    ts_ns: np.ndarray
    src_hi: np.ndarray
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    proto: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    tcp_flags: np.ndarray
    seq: np.ndarray
    payload_off: np.ndarray
    payload_len: np.ndarray
    ip_len: np.ndarray

    def __len__(self) -> int:
        return int(self.index.shape[0])


class _Fields:
    """Big-endian reads at arbitrary offsets of one buffer, without copying it.

    Offsets are clipped into the buffer, so a read that runs past its end returns some other
    bytes instead of failing; callers only use such a value for a packet that its length checks
    already rule out (every read lies below the end that the check compares against).
    """

    def __init__(self, buf: np.ndarray) -> None:
        buf = np.ascontiguousarray(buf, dtype=np.uint8)
        if buf.shape[0] < 8:  # too short for the 8-byte view; pad (a copy of at most 8 bytes)
            buf = np.concatenate([buf, np.zeros(8 - buf.shape[0], dtype=np.uint8)])
        n = buf.shape[0]
        self.buf = buf
        self.u16 = np.ndarray((n - 1,), dtype=">u2", buffer=buf, offset=0, strides=(1,))
        self.u32 = np.ndarray((n - 3,), dtype=">u4", buffer=buf, offset=0, strides=(1,))
        self.u64 = np.ndarray((n - 7,), dtype=">u8", buffer=buf, offset=0, strides=(1,))

    def b(self, at: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.buf[np.clip(at, 0, self.buf.shape[0] - 1)].astype(np.int64)
        return out

    def h(self, at: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.u16[np.clip(at, 0, self.u16.shape[0] - 1)].astype(np.int64)
        return out

    def w(self, at: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.u32[np.clip(at, 0, self.u32.shape[0] - 1)].astype(np.int64)
        return out

    def q(self, at: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.u64[np.clip(at, 0, self.u64.shape[0] - 1)].astype(np.uint64)
        return out


def _link_layer(t: PacketTable, f: _Fields) -> tuple[np.ndarray, np.ndarray]:
    """Network-layer offset and ethertype of each packet (ethertype 0 when unknown)."""
    off, lt = t.offset, t.linktype
    l3 = off.copy()
    etype = np.zeros(off.shape[0], dtype=np.int64)

    eth = lt == LINKTYPE_ETHERNET
    etype[eth] = f.h(off[eth] + 12)
    l3[eth] = off[eth] + 14

    sll = lt == LINKTYPE_LINUX_SLL
    etype[sll] = f.h(off[sll] + 14)
    l3[sll] = off[sll] + 16

    sll2 = lt == LINKTYPE_LINUX_SLL2
    etype[sll2] = f.h(off[sll2])
    l3[sll2] = off[sll2] + 20

    # 802.1Q / 802.1ad / QinQ: at most two stacked tags.
    tagged_capable = eth | sll | sll2
    for _ in range(2):
        tagged = tagged_capable & np.isin(etype, _VLAN_TPIDS)
        etype[tagged] = f.h(l3[tagged] + 2)
        l3[tagged] += 4

    loop = (lt == LINKTYPE_NULL) | (lt == LINKTYPE_LOOP)
    family = f.w(off[loop])
    family = np.where(family > 0xFFFF, family >> 24, family)  # host byte order in NULL
    ipv4_family = family == 2
    ipv6_family = np.isin(family, (10, 23, 24, 26, 28, 30))
    etype[loop] = np.where(ipv4_family, _ETH_IPV4, np.where(ipv6_family, _ETH_IPV6, 0))
    l3[loop] = off[loop] + 4

    raw = np.isin(lt, (LINKTYPE_RAW, LINKTYPE_RAW_BSD, LINKTYPE_RAW_OPENBSD))
    version = f.b(off[raw]) >> 4
    etype[raw] = np.where(version == 4, _ETH_IPV4, np.where(version == 6, _ETH_IPV6, 0))
    etype[lt == LINKTYPE_IPV4] = _ETH_IPV4
    etype[lt == LINKTYPE_IPV6] = _ETH_IPV6
    return l3, etype


CHUNK_BYTES = 16 << 20
"""Packets are decoded in runs spanning at most this much of the buffer, so that every gather of
one run stays within cache-friendly distance (a gather across a whole 1 GB capture is bound by
memory latency, not by work)."""


def decode_headers(t: PacketTable) -> PacketHeaders:
    """Decode every TCP/UDP packet of ``t``; other packets are left out."""
    n = len(t)
    if n == 0 or int(t.offset[-1] - t.offset[0]) <= CHUNK_BYTES:
        return _decode_run(t)
    bounds = np.searchsorted(t.offset, np.arange(t.offset[0], t.offset[-1] + 1, CHUNK_BYTES))
    bounds = np.unique(np.append(bounds, n))
    names = [name for name in PacketHeaders.__slots__ if name != "buf"]
    out: dict[str, np.ndarray] = {}
    filled = 0
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        lo = int(t.offset[a])
        hi = int(t.offset[b - 1] + t.caplen[b - 1])
        part = PacketTable(
            path=t.path,
            buf=t.buf[lo:hi],
            offset=t.offset[a:b] - lo,
            caplen=t.caplen[a:b],
            ts_ns=t.ts_ns[a:b],
            linktype=t.linktype[a:b],
        )
        run = _decode_run(part)
        run.index += a
        run.payload_off += lo
        k = len(run)
        for name in names:
            column = getattr(run, name)
            if name not in out:  # at most one row per packet: fill, then trim once
                out[name] = np.empty(n, dtype=column.dtype)
            out[name][filled : filled + k] = column
        filled += k
    return PacketHeaders(buf=t.buf, **{name: out[name][:filled] for name in names})


def _decode_run(t: PacketTable) -> PacketHeaders:
    f = _Fields(t.buf)
    end = t.offset + t.caplen
    l3, etype = _link_layer(t, f)
    n = l3.shape[0]

    is4 = (etype == _ETH_IPV4) & (f.b(l3) >> 4 == 4) & (l3 + 20 <= end)
    is6 = (etype == _ETH_IPV6) & (f.b(l3) >> 4 == 6) & (l3 + 40 <= end)

    proto = np.zeros(n, dtype=np.int64)
    l4 = np.zeros(n, dtype=np.int64)
    ip_end = end.copy()
    ip_len = np.zeros(n, dtype=np.int64)
    first_fragment = np.ones(n, dtype=bool)
    src_hi = np.zeros(n, dtype=np.uint64)
    src_lo = np.zeros(n, dtype=np.uint64)
    dst_hi = np.zeros(n, dtype=np.uint64)
    dst_lo = np.zeros(n, dtype=np.uint64)

    a = l3[is4]
    ihl = (f.b(a) & 0x0F) * 4
    proto[is4] = f.b(a + 9)
    l4[is4] = a + ihl
    # The IP length drops Ethernet padding and trailers; a length of 0 is what captures taken on
    # a sender with TCP segmentation offload show, and there the captured bytes are the packet.
    total = f.h(a + 2)
    ip_end[is4] = np.where(total == 0, end[is4], np.minimum(end[is4], a + total))
    ip_len[is4] = np.where(total == 0, end[is4] - a, total)
    first_fragment[is4] = (f.h(a + 6) & 0x1FFF) == 0
    mapped = np.uint64(0x0000FFFF00000000)
    src_lo[is4] = mapped | f.w(a + 12).astype(np.uint64)
    dst_lo[is4] = mapped | f.w(a + 16).astype(np.uint64)
    is4[is4] = ihl >= 20

    a = l3[is6]
    nh = f.b(a + 6)
    plen = f.h(a + 4)  # 0: a jumbogram or offloaded segment; the captured bytes are the packet
    ip_end[is6] = np.where(plen == 0, end[is6], np.minimum(end[is6], a + 40 + plen))
    ip_len[is6] = np.where(plen == 0, end[is6] - a, 40 + plen)
    src_hi[is6], src_lo[is6] = f.q(a + 8), f.q(a + 16)
    dst_hi[is6], dst_lo[is6] = f.q(a + 24), f.q(a + 32)
    pos = a + 40
    frag_ok = np.ones(a.shape[0], dtype=bool)
    for _ in range(_IPV6_MAX_EXT):
        ext = np.isin(nh, _IPV6_EXT)
        frag = nh == 44
        ah = nh == 51
        moving = ext | frag | ah
        if not moving.any():
            break
        step = np.where(ext, (f.b(pos + 1) + 1) * 8, np.where(frag, 8, (f.b(pos + 1) + 2) * 4))
        frag_ok &= ~frag | ((f.h(pos + 2) & 0xFFF8) == 0)
        nh = np.where(moving, f.b(pos), nh)
        pos = np.where(moving, pos + step, pos)
    # A chain longer than that is left undecoded rather than misread.
    nh = np.where(np.isin(nh, (*_IPV6_EXT, 44, 51)), 59, nh)
    proto[is6] = nh
    l4[is6] = pos
    first_fragment[is6] = frag_ok

    tcp = (is4 | is6) & (proto == PROTO_TCP) & first_fragment & (l4 + 20 <= ip_end)
    udp = (is4 | is6) & (proto == PROTO_UDP) & first_fragment & (l4 + 8 <= ip_end)
    keep = np.flatnonzero(tcp | udp)
    l4k = l4[keep]
    tcpk = tcp[keep]
    data_off = np.where(tcpk, (f.b(l4k + 12) >> 4) * 4, 8)
    # A header cut short by the snap length leaves no payload; keep the offset inside the packet.
    payload_off = np.minimum(l4k + data_off, ip_end[keep])
    payload_len = ip_end[keep] - payload_off
    tcp_hdr_ok = ~tcpk | (data_off >= 20)
    keep, l4k, tcpk = keep[tcp_hdr_ok], l4k[tcp_hdr_ok], tcpk[tcp_hdr_ok]
    payload_off, payload_len = payload_off[tcp_hdr_ok], payload_len[tcp_hdr_ok]
    return PacketHeaders(
        buf=t.buf,
        index=keep,
        ts_ns=t.ts_ns[keep],
        src_hi=src_hi[keep],
        src_lo=src_lo[keep],
        dst_hi=dst_hi[keep],
        dst_lo=dst_lo[keep],
        proto=np.where(tcpk, PROTO_TCP, PROTO_UDP).astype(np.uint8),
        sport=f.h(l4k).astype(np.uint16),
        dport=f.h(l4k + 2).astype(np.uint16),
        tcp_flags=np.where(tcpk, f.b(l4k + 13), 0).astype(np.uint8),
        seq=np.where(tcpk, f.w(l4k + 4), 0).astype(np.uint32),
        payload_off=payload_off,
        payload_len=payload_len.astype(np.int32),
        ip_len=ip_len[keep].astype(np.int32),
    )
