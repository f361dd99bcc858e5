"""Build packets and write pcap/pcapng files: the test and benchmark side of the capture reader.

Three layers, each usable alone:

* packets: :func:`ipv4_tcp`, :func:`ipv6_tcp`, :func:`ipv4_udp`, :func:`ipv6_udp` (and the
  lower-level :func:`ipv4_packet`, :func:`ipv6_packet` with :class:`Ipv6Extension` headers) give
  IP packets with correct lengths and checksums;
* link layers: :func:`ethernet` (with VLAN/QinQ tags), :func:`linux_sll`, :func:`linux_sll2`,
  :func:`null_loopback`, :func:`openbsd_loop`, or :func:`frame` to pick one by link type;
* files: :func:`write_pcap` and :func:`write_pcapng` (and ``*_bytes`` twins that return the file
  contents), plus the pcapng block builders for files with several sections or interfaces.

:class:`TcpSession` strings these together into a whole TCP conversation.

Nothing here reads captures, and nothing in the reader depends on this module.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum, IntFlag
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "CaptureRecord",
    "Direction",
    "Ipv6Extension",
    "LinkType",
    "SessionSegment",
    "TcpFlag",
    "TcpSession",
    "ethernet",
    "frame",
    "frame_all",
    "ipv4_packet",
    "ipv4_tcp",
    "ipv4_udp",
    "ipv6_packet",
    "ipv6_tcp",
    "ipv6_udp",
    "linux_sll",
    "linux_sll2",
    "null_loopback",
    "openbsd_loop",
    "pcap_bytes",
    "pcapng_block",
    "pcapng_bytes",
    "pcapng_enhanced_packet",
    "pcapng_interface",
    "pcapng_obsolete_packet",
    "pcapng_section_header",
    "pcapng_simple_packet",
    "tcp_segment",
    "ts_units",
    "udp_datagram",
    "write_pcap",
    "write_pcapng",
]

Address = str | IPv4Address | IPv6Address
CaptureRecord = tuple[int, bytes]
"""One packet to write: ``(timestamp in ns since the epoch, frame bytes)``."""

PROTO_TCP = 6
PROTO_UDP = 17
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD


class LinkType(IntEnum):
    """LINKTYPE_* values of the link layers :func:`frame` can build."""

    NULL = 0
    ETHERNET = 1
    RAW = 101
    LOOP = 108
    LINUX_SLL = 113
    IPV4 = 228
    IPV6 = 229
    LINUX_SLL2 = 276


class TcpFlag(IntFlag):
    """TCP header flag bits."""

    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80


# --- checksums and addresses -------------------------------------------------------------------


def _checksum(data: bytes) -> bytes:
    """RFC 1071 Internet checksum, as the two bytes to store.

    Summing native-order 16-bit words and storing the result in native order gives the right
    bytes on either byte order (RFC 1071 section 2(B)), and lets ``array`` do the sum in C.
    """
    if len(data) % 2:
        data += b"\0"
    total = sum(array("H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return struct.pack("=H", ~total & 0xFFFF)


def _v4(addr: Address) -> bytes:
    parsed = ip_address(addr) if isinstance(addr, str) else addr
    if not isinstance(parsed, IPv4Address):
        raise ValueError(f"expected an IPv4 address such as '192.0.2.1', got {addr!r}")
    return parsed.packed


def _v6(addr: Address) -> bytes:
    parsed = ip_address(addr) if isinstance(addr, str) else addr
    if not isinstance(parsed, IPv6Address):
        raise ValueError(f"expected an IPv6 address such as '2001:db8::1', got {addr!r}")
    return parsed.packed


# --- transport ---------------------------------------------------------------------------------


def tcp_segment(
    sport: int,
    dport: int,
    payload: bytes = b"",
    *,
    seq: int = 0,
    ack: int = 0,
    flags: int = TcpFlag.PSH | TcpFlag.ACK,
    window: int = 65535,
    options: bytes = b"",
    pseudo_header: bytes = b"",
) -> bytes:
    """A TCP header plus payload; the checksum covers ``pseudo_header`` when one is given.

    ``options`` is zero-padded (end-of-option-list bytes) to a multiple of 4.
    """
    options += b"\0" * (-len(options) % 4)
    data_offset = (20 + len(options)) // 4
    if data_offset > 15:
        raise ValueError(f"TCP options may take at most 40 bytes, got {len(options)}")
    header = struct.pack(
        "!HHIIBBHHH",
        sport,
        dport,
        seq & 0xFFFFFFFF,
        ack & 0xFFFFFFFF,
        data_offset << 4,
        flags & 0xFF,
        window,
        0,
        0,
    )
    segment = header + options + payload
    if pseudo_header:
        csum = _checksum(pseudo_header + segment)
        segment = segment[:16] + csum + segment[18:]
    return segment


def udp_datagram(
    sport: int, dport: int, payload: bytes = b"", *, pseudo_header: bytes = b""
) -> bytes:
    """A UDP header plus payload; the checksum covers ``pseudo_header`` when one is given."""
    datagram = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if pseudo_header:
        csum = _checksum(pseudo_header + datagram)
        if csum == b"\0\0":  # 0 means "no checksum" in UDP; all-ones is the same sum
            csum = b"\xff\xff"
        datagram = datagram[:6] + csum + datagram[8:]
    return datagram


def _pseudo4(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    return src + dst + struct.pack("!BBH", 0, proto, length)


def _pseudo6(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    return src + dst + struct.pack("!I3xB", length, proto)


# --- IP ----------------------------------------------------------------------------------------


def ipv4_packet(
    src: Address,
    dst: Address,
    protocol: int,
    body: bytes,
    *,
    ttl: int = 64,
    ident: int = 0,
    options: bytes = b"",
    dont_fragment: bool = False,
    more_fragments: bool = False,
    fragment_offset: int = 0,
    total_length: int | None = None,
) -> bytes:
    """An IPv4 header (with ``options``, zero-padded to a multiple of 4) followed by ``body``.

    ``fragment_offset`` is in bytes and must be a multiple of 8. ``total_length`` overrides the
    length field (0 imitates a capture taken under TCP segmentation offload).
    """
    options += b"\0" * (-len(options) % 4)
    ihl = (20 + len(options)) // 4
    if ihl > 15:
        raise ValueError(f"IPv4 options may take at most 40 bytes, got {len(options)}")
    if fragment_offset % 8:
        raise ValueError(f"fragment_offset must be a multiple of 8 bytes, got {fragment_offset}")
    flags_frag = (fragment_offset // 8) | (0x4000 if dont_fragment else 0)
    flags_frag |= 0x2000 if more_fragments else 0
    length = ihl * 4 + len(body) if total_length is None else total_length
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        length & 0xFFFF,
        ident & 0xFFFF,
        flags_frag,
        ttl,
        protocol,
        0,
        _v4(src),
        _v4(dst),
    )
    header += options
    header = header[:10] + _checksum(header) + header[12:]
    return header + body


@dataclass(frozen=True, slots=True)
class Ipv6Extension:
    """One IPv6 extension header: its protocol number and its body after the two-byte prefix.

    The prefix (next header, length) is filled in by :func:`ipv6_packet`. Use the constructors
    rather than building one by hand::

        ipv6_tcp("2001:db8::1", "2001:db8::2", 1, 2, b"x",
                 extensions=[Ipv6Extension.hop_by_hop(), Ipv6Extension.fragment(0, more=True)])
    """

    kind: int
    body: bytes

    @classmethod
    def hop_by_hop(cls, padding: int = 6) -> Ipv6Extension:
        """Hop-by-hop options holding only PadN (``padding`` + 2 must be a multiple of 8)."""
        return cls(0, cls._padn(padding))

    @classmethod
    def destination_options(cls, padding: int = 6) -> Ipv6Extension:
        """Destination options holding only PadN."""
        return cls(60, cls._padn(padding))

    @classmethod
    def routing(cls, addresses: Sequence[Address] = (), segments_left: int = 0) -> Ipv6Extension:
        """A type-0-style routing header listing ``addresses``."""
        body = struct.pack("!BBI", 0, segments_left, 0) + b"".join(_v6(a) for a in addresses)
        return cls(43, body)

    @classmethod
    def fragment(cls, offset: int = 0, *, more: bool = False, ident: int = 1) -> Ipv6Extension:
        """A fragment header; ``offset`` is in bytes and must be a multiple of 8."""
        if offset % 8:
            raise ValueError(f"fragment offset must be a multiple of 8 bytes, got {offset}")
        return cls(44, struct.pack("!HI", offset | int(more), ident))

    @classmethod
    def authentication(cls, icv: bytes = b"\0" * 12, spi: int = 1, seq: int = 1) -> Ipv6Extension:
        """An authentication header (RFC 4302) with the given integrity check value."""
        return cls(51, struct.pack("!HII", 0, spi, seq) + icv)

    @staticmethod
    def _padn(padding: int) -> bytes:
        if (padding + 2) % 8 or padding < 2:
            raise ValueError(f"options padding + 2 must be a multiple of 8, got {padding}")
        return bytes([1, padding - 2]) + b"\0" * (padding - 2)

    def encode(self, next_header: int) -> bytes:
        """The whole header, given the protocol number of what follows it."""
        size = 2 + len(self.body)
        if self.kind == 44:
            if size != 8:
                raise ValueError("an IPv6 fragment header is 8 bytes long")
            return bytes([next_header, 0]) + self.body
        if self.kind == 51:
            if size % 4:
                raise ValueError("an authentication header is a multiple of 4 bytes long")
            return bytes([next_header, size // 4 - 2]) + self.body
        if size % 8:
            raise ValueError("an IPv6 extension header is a multiple of 8 bytes long")
        return bytes([next_header, size // 8 - 1]) + self.body


def ipv6_packet(
    src: Address,
    dst: Address,
    next_header: int,
    body: bytes,
    *,
    extensions: Sequence[Ipv6Extension] = (),
    hop_limit: int = 64,
    payload_length: int | None = None,
) -> bytes:
    """An IPv6 header, the extension headers in order, then ``body`` (of protocol ``next_header``).

    ``payload_length`` overrides the length field (0 imitates a jumbogram or offloaded segment).
    """
    chain = b""
    kinds = [e.kind for e in extensions] + [next_header]
    for ext, following in zip(extensions, kinds[1:], strict=True):
        chain += ext.encode(following)
    length = len(chain) + len(body) if payload_length is None else payload_length
    header = struct.pack(
        "!IHBB16s16s", 6 << 28, length & 0xFFFF, kinds[0], hop_limit, _v6(src), _v6(dst)
    )
    return header + chain + body


def _padded(tcp_options: bytes) -> bytes:
    """TCP options padded with zero bytes to a multiple of four."""
    return tcp_options + b"\0" * (-len(tcp_options) % 4)


def ipv4_tcp(
    src: Address,
    dst: Address,
    sport: int,
    dport: int,
    payload: bytes = b"",
    *,
    seq: int = 0,
    ack: int = 0,
    flags: int = TcpFlag.PSH | TcpFlag.ACK,
    window: int = 65535,
    tcp_options: bytes = b"",
    ip_options: bytes = b"",
    ident: int = 0,
) -> bytes:
    """An IPv4 TCP packet with correct lengths and checksums."""
    opts = _padded(tcp_options)
    pseudo = _pseudo4(_v4(src), _v4(dst), PROTO_TCP, 20 + len(opts) + len(payload))
    segment = tcp_segment(
        sport, dport, payload, seq=seq, ack=ack, flags=flags, window=window, options=opts,
        pseudo_header=pseudo,
    )  # fmt: skip
    return ipv4_packet(src, dst, PROTO_TCP, segment, options=ip_options, ident=ident)


def ipv6_tcp(
    src: Address,
    dst: Address,
    sport: int,
    dport: int,
    payload: bytes = b"",
    *,
    seq: int = 0,
    ack: int = 0,
    flags: int = TcpFlag.PSH | TcpFlag.ACK,
    window: int = 65535,
    tcp_options: bytes = b"",
    extensions: Sequence[Ipv6Extension] = (),
) -> bytes:
    """An IPv6 TCP packet (after any ``extensions``) with correct lengths and checksum."""
    opts = _padded(tcp_options)
    pseudo = _pseudo6(_v6(src), _v6(dst), PROTO_TCP, 20 + len(opts) + len(payload))
    segment = tcp_segment(
        sport, dport, payload, seq=seq, ack=ack, flags=flags, window=window, options=opts,
        pseudo_header=pseudo,
    )  # fmt: skip
    return ipv6_packet(src, dst, PROTO_TCP, segment, extensions=extensions)


def ipv4_udp(
    src: Address,
    dst: Address,
    sport: int,
    dport: int,
    payload: bytes = b"",
    *,
    ip_options: bytes = b"",
    ident: int = 0,
) -> bytes:
    """An IPv4 UDP packet with correct lengths and checksums."""
    pseudo = _pseudo4(_v4(src), _v4(dst), PROTO_UDP, 8 + len(payload))
    datagram = udp_datagram(sport, dport, payload, pseudo_header=pseudo)
    return ipv4_packet(src, dst, PROTO_UDP, datagram, options=ip_options, ident=ident)


def ipv6_udp(
    src: Address,
    dst: Address,
    sport: int,
    dport: int,
    payload: bytes = b"",
    *,
    extensions: Sequence[Ipv6Extension] = (),
) -> bytes:
    """An IPv6 UDP packet (after any ``extensions``) with correct lengths and checksum."""
    pseudo = _pseudo6(_v6(src), _v6(dst), PROTO_UDP, 8 + len(payload))
    datagram = udp_datagram(sport, dport, payload, pseudo_header=pseudo)
    return ipv6_packet(src, dst, PROTO_UDP, datagram, extensions=extensions)


# --- link layers -------------------------------------------------------------------------------


def _ethertype_of(packet: bytes, ethertype: int | None) -> int:
    if ethertype is not None:
        return ethertype
    version = packet[0] >> 4 if packet else 0
    if version == 4:
        return ETHERTYPE_IPV4
    if version == 6:
        return ETHERTYPE_IPV6
    raise ValueError("not an IP packet: pass ethertype= for other payloads")


def ethernet(
    packet: bytes,
    *,
    vlans: Sequence[int] = (),
    outer_tpid: int = 0x8100,
    src_mac: bytes = b"\x02\x00\x00\x00\x00\x01",
    dst_mac: bytes = b"\x02\x00\x00\x00\x00\x02",
    ethertype: int | None = None,
    pad: bool = True,
) -> bytes:
    """An Ethernet II frame around ``packet``, without FCS.

    ``vlans`` lists VLAN ids from the outermost tag in; every tag but the innermost uses
    ``outer_tpid`` (0x88A8 for 802.1ad QinQ), the innermost 0x8100. With ``pad`` a short frame is
    zero-padded to the 60-byte Ethernet minimum, as a NIC would.
    """
    tags = b""
    for i, vid in enumerate(vlans):
        tpid = 0x8100 if i == len(vlans) - 1 else outer_tpid
        tags += struct.pack("!HH", tpid, vid & 0x0FFF)
    out = dst_mac + src_mac + tags + struct.pack("!H", _ethertype_of(packet, ethertype)) + packet
    if pad and len(out) < 60:
        out += b"\0" * (60 - len(out))
    return out


def linux_sll(packet: bytes, *, packet_type: int = 0, ethertype: int | None = None) -> bytes:
    """A Linux cooked-capture v1 header (16 bytes) around ``packet``."""
    address = b"\x02\x00\x00\x00\x00\x01\0\0"
    header = struct.pack("!HHH8sH", packet_type, 1, 6, address, _ethertype_of(packet, ethertype))
    return header + packet


def linux_sll2(
    packet: bytes, *, ifindex: int = 1, packet_type: int = 0, ethertype: int | None = None
) -> bytes:
    """A Linux cooked-capture v2 header (20 bytes) around ``packet``."""
    address = b"\x02\x00\x00\x00\x00\x01\0\0"
    header = struct.pack(
        "!HHIHBB8s", _ethertype_of(packet, ethertype), 0, ifindex, 1, packet_type, 6, address
    )
    return header + packet


def _family(packet: bytes, ipv6_family: int) -> int:
    return 2 if _ethertype_of(packet, None) == ETHERTYPE_IPV4 else ipv6_family


def null_loopback(packet: bytes, *, big_endian: bool = False, ipv6_family: int = 30) -> bytes:
    """A BSD loopback (LINKTYPE_NULL) header: the address family in the capturing host's order.

    IPv6 family numbers differ by system: 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
    """
    return struct.pack(">I" if big_endian else "<I", _family(packet, ipv6_family)) + packet


def openbsd_loop(packet: bytes, *, ipv6_family: int = 24) -> bytes:
    """An OpenBSD loopback (LINKTYPE_LOOP) header: the address family in network order."""
    return struct.pack(">I", _family(packet, ipv6_family)) + packet


def frame(packet: bytes, linktype: int) -> bytes:
    """``packet`` (an IP packet) wrapped in the default header of link type ``linktype``."""
    match linktype:
        case LinkType.ETHERNET:
            return ethernet(packet)
        case LinkType.LINUX_SLL:
            return linux_sll(packet)
        case LinkType.LINUX_SLL2:
            return linux_sll2(packet)
        case LinkType.NULL:
            return null_loopback(packet)
        case LinkType.LOOP:
            return openbsd_loop(packet)
        case LinkType.RAW | LinkType.IPV4 | LinkType.IPV6:
            return packet
    raise ValueError(f"cannot frame link type {linktype}; known: {[int(t) for t in LinkType]}")


def frame_all(packets: Iterable[CaptureRecord], linktype: int) -> list[CaptureRecord]:
    """:func:`frame` applied to every ``(ts_ns, ip_packet)`` pair."""
    return [(ts, frame(data, linktype)) for ts, data in packets]


# --- pcap --------------------------------------------------------------------------------------


def pcap_bytes(
    packets: Iterable[CaptureRecord],
    linktype: int,
    nanosecond: bool = False,
    big_endian: bool = False,
    snaplen: int = 262_144,
) -> bytes:
    """The contents of a classic pcap file; frames longer than ``snaplen`` are cut to it."""
    order = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    per_second = 1_000_000_000 if nanosecond else 1_000_000
    divisor = 1 if nanosecond else 1000
    parts = [struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)]
    for ts_ns, data in packets:
        sec, frac = divmod(ts_ns // divisor, per_second)
        cut = data[:snaplen]
        parts.append(struct.pack(order + "IIII", sec, frac, len(cut), len(data)))
        parts.append(cut)
    return b"".join(parts)


def write_pcap(
    path: str | Path,
    packets: Iterable[CaptureRecord],
    linktype: int,
    nanosecond: bool = False,
    big_endian: bool = False,
    snaplen: int = 262_144,
) -> Path:
    """Write a classic pcap file (microsecond or nanosecond timestamps); returns its path."""
    path = Path(path)
    path.write_bytes(pcap_bytes(packets, linktype, nanosecond, big_endian, snaplen))
    return path


# --- pcapng ------------------------------------------------------------------------------------


def ts_units(ts_ns: int, tsresol: int = 6, tsoffset_s: int = 0) -> int:
    """``ts_ns`` in the units of an interface with this ``if_tsresol`` byte and ``if_tsoffset``."""
    ts_ns -= tsoffset_s * 1_000_000_000
    if tsresol & 0x80:
        units = (ts_ns << (tsresol & 0x7F)) // 1_000_000_000
    else:
        scale: int = 10 ** abs(9 - tsresol)
        units = ts_ns // scale if tsresol <= 9 else ts_ns * scale
    if not 0 <= units < 1 << 64:
        raise ValueError(f"timestamp {ts_ns} ns does not fit 64 bits at if_tsresol {tsresol}")
    return units


def pcapng_block(block_type: int, body: bytes, *, big_endian: bool = False) -> bytes:
    """Any pcapng block: type, length, ``body`` zero-padded to 4 bytes, length again."""
    body += b"\0" * (-len(body) % 4)
    order = ">" if big_endian else "<"
    length = 12 + len(body)
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def _option(code: int, value: bytes, order: str) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def pcapng_section_header(*, big_endian: bool = False) -> bytes:
    """A section header block (version 1.0, unknown section length)."""
    order = ">" if big_endian else "<"
    body = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)
    return pcapng_block(0x0A0D0D0A, body, big_endian=big_endian)


def pcapng_interface(
    linktype: int,
    *,
    tsresol: int = 6,
    tsoffset_s: int = 0,
    snaplen: int = 0,
    name: str | None = None,
    big_endian: bool = False,
) -> bytes:
    """An interface description block; options are written only where they differ from defaults."""
    order = ">" if big_endian else "<"
    options = b""
    if name is not None:
        options += _option(2, name.encode(), order)
    if tsresol != 6:
        options += _option(9, bytes([tsresol]), order)
    if tsoffset_s:
        options += _option(14, struct.pack(order + "q", tsoffset_s), order)
    if options:
        options += _option(0, b"", order)
    body = struct.pack(order + "HHI", linktype, 0, snaplen) + options
    return pcapng_block(1, body, big_endian=big_endian)


def pcapng_enhanced_packet(
    interface: int,
    ts_ns: int,
    data: bytes,
    *,
    tsresol: int = 6,
    tsoffset_s: int = 0,
    orig_len: int | None = None,
    big_endian: bool = False,
) -> bytes:
    """An enhanced packet block for interface number ``interface`` of the current section."""
    order = ">" if big_endian else "<"
    units = ts_units(ts_ns, tsresol, tsoffset_s)
    original = len(data) if orig_len is None else orig_len
    head = struct.pack(
        order + "IIIII", interface, units >> 32, units & 0xFFFFFFFF, len(data), original
    )
    return pcapng_block(6, head + data, big_endian=big_endian)


def pcapng_obsolete_packet(
    interface: int, ts_ns: int, data: bytes, *, tsresol: int = 6, big_endian: bool = False
) -> bytes:
    """An obsolete (type 2) packet block, which old writers still produce."""
    order = ">" if big_endian else "<"
    units = ts_units(ts_ns, tsresol)
    head = struct.pack(
        order + "HHIIII", interface, 0, units >> 32, units & 0xFFFFFFFF, len(data), len(data)
    )
    return pcapng_block(2, head + data, big_endian=big_endian)


def pcapng_simple_packet(data: bytes, *, big_endian: bool = False) -> bytes:
    """A simple packet block: no interface number (the section's first) and no timestamp."""
    order = ">" if big_endian else "<"
    return pcapng_block(3, struct.pack(order + "I", len(data)) + data, big_endian=big_endian)


def pcapng_bytes(
    packets: Iterable[CaptureRecord],
    linktype: int,
    tsresol: int = 6,
    big_endian: bool = False,
) -> bytes:
    """The contents of a one-section, one-interface pcapng file."""
    parts = [
        pcapng_section_header(big_endian=big_endian),
        pcapng_interface(linktype, tsresol=tsresol, big_endian=big_endian),
    ]
    parts += [
        pcapng_enhanced_packet(0, ts, data, tsresol=tsresol, big_endian=big_endian)
        for ts, data in packets
    ]
    return b"".join(parts)


def write_pcapng(
    path: str | Path,
    packets: Iterable[CaptureRecord],
    linktype: int,
    tsresol: int = 6,
    big_endian: bool = False,
) -> Path:
    """Write a one-section, one-interface pcapng file; returns its path.

    ``tsresol`` is the ``if_tsresol`` byte: 6 for microseconds, 9 for nanoseconds, ``0x80 | n``
    for units of 2**-n seconds. Build files with several sections or interfaces from the
    ``pcapng_*`` block functions instead.
    """
    path = Path(path)
    path.write_bytes(pcapng_bytes(packets, linktype, tsresol, big_endian))
    return path


# --- TCP conversations -------------------------------------------------------------------------


class Direction(Enum):
    """Which way a message of a :class:`TcpSession` travels."""

    TO_SERVER = "to_server"
    TO_CLIENT = "to_client"

    @property
    def reverse(self) -> Direction:
        return Direction.TO_CLIENT if self is Direction.TO_SERVER else Direction.TO_SERVER


class SessionSegment(NamedTuple):
    """One TCP segment of a conversation, before it is turned into packet bytes."""

    ts_ns: int
    direction: Direction
    seq: int
    ack: int
    flags: int
    payload: bytes


@dataclass(slots=True)
class TcpSession:
    """A TCP conversation between one client and one server, as packets.

    Sequence and acknowledgement numbers follow the bytes sent (SYN and FIN count one each); the
    address family follows the addresses given::

        session = TcpSession("10.0.0.5", 50000, "198.51.100.7", 3333)
        records = session.frames(
            [(Direction.TO_SERVER, b'{"method":"login"}\\n'), (Direction.TO_CLIENT, b"{}\\n")],
            LinkType.ETHERNET,
            segment_sizes={0: [5, 5]},  # send message 0 as segments of 5, 5 and the rest
        )
        write_pcap("login.pcap", records, LinkType.ETHERNET)
    """

    client: str
    client_port: int
    server: str
    server_port: int
    client_isn: int = 1_000
    server_isn: int = 500_000
    start_ns: int = 1_700_000_000_000_000_000
    step_ns: int = 1_000_000

    def segments(
        self,
        messages: Sequence[tuple[Direction, bytes]],
        *,
        segment_sizes: Mapping[int, Sequence[int]] | None = None,
        mss: int | None = None,
        mid_stream_from: int | None = None,
        ack_messages: bool = True,
        close: bool = True,
    ) -> list[SessionSegment]:
        """The conversation's segments in the order they are seen.

        * ``segment_sizes[i]``: send message *i* as segments of these sizes (the rest, if any,
          in one more segment); other messages are cut at ``mss`` when one is given.
        * ``mid_stream_from=N``: the capture starts mid-stream: no handshake, and messages
          before *N* are not seen (sequence numbers still count them).
        * ``ack_messages``: the receiver acknowledges each message with an empty ACK.
        * ``close``: the client closes (FIN, FIN, ACK) after the last message.
        """
        sizes = segment_sizes or {}
        nxt = {Direction.TO_SERVER: self.client_isn, Direction.TO_CLIENT: self.server_isn}
        out: list[SessionSegment] = []
        seen = mid_stream_from is None

        def emit(direction: Direction, flags: int, payload: bytes = b"") -> None:
            ack = nxt[direction.reverse] if flags & TcpFlag.ACK else 0
            if seen:
                ts = self.start_ns + len(out) * self.step_ns
                out.append(SessionSegment(ts, direction, nxt[direction], ack, flags, payload))
            nxt[direction] = (nxt[direction] + len(payload)) & 0xFFFFFFFF
            if flags & (TcpFlag.SYN | TcpFlag.FIN):
                nxt[direction] = (nxt[direction] + 1) & 0xFFFFFFFF

        emit(Direction.TO_SERVER, TcpFlag.SYN)
        emit(Direction.TO_CLIENT, TcpFlag.SYN | TcpFlag.ACK)
        emit(Direction.TO_SERVER, TcpFlag.ACK)
        for i, (direction, data) in enumerate(messages):
            seen = seen or i == mid_stream_from
            for piece in _split(data, sizes.get(i), mss):
                emit(direction, TcpFlag.PSH | TcpFlag.ACK, piece)
            if ack_messages:
                emit(direction.reverse, TcpFlag.ACK)
        seen = seen or mid_stream_from == len(messages)
        if close:
            emit(Direction.TO_SERVER, TcpFlag.FIN | TcpFlag.ACK)
            emit(Direction.TO_CLIENT, TcpFlag.FIN | TcpFlag.ACK)
            emit(Direction.TO_SERVER, TcpFlag.ACK)
        return out

    def packet(self, segment: SessionSegment) -> bytes:
        """The IP packet carrying ``segment``."""
        if segment.direction is Direction.TO_SERVER:
            ends = (self.client, self.server, self.client_port, self.server_port)
        else:
            ends = (self.server, self.client, self.server_port, self.client_port)
        build = ipv6_tcp if isinstance(ip_address(self.client), IPv6Address) else ipv4_tcp
        return build(*ends, segment.payload, seq=segment.seq, ack=segment.ack, flags=segment.flags)

    def packets(
        self,
        messages: Sequence[tuple[Direction, bytes]],
        *,
        segment_sizes: Mapping[int, Sequence[int]] | None = None,
        mss: int | None = None,
        mid_stream_from: int | None = None,
        ack_messages: bool = True,
        close: bool = True,
    ) -> list[CaptureRecord]:
        """``(ts_ns, ip_packet)`` for each of :meth:`segments`."""
        segs = self.segments(
            messages,
            segment_sizes=segment_sizes,
            mss=mss,
            mid_stream_from=mid_stream_from,
            ack_messages=ack_messages,
            close=close,
        )
        return [(s.ts_ns, self.packet(s)) for s in segs]

    def frames(
        self,
        messages: Sequence[tuple[Direction, bytes]],
        linktype: int = LinkType.ETHERNET,
        *,
        segment_sizes: Mapping[int, Sequence[int]] | None = None,
        mss: int | None = None,
        mid_stream_from: int | None = None,
        ack_messages: bool = True,
        close: bool = True,
    ) -> list[CaptureRecord]:
        """``(ts_ns, frame)`` for each of :meth:`segments`, framed for ``linktype``."""
        records = self.packets(
            messages,
            segment_sizes=segment_sizes,
            mss=mss,
            mid_stream_from=mid_stream_from,
            ack_messages=ack_messages,
            close=close,
        )
        return frame_all(records, linktype)


def _split(data: bytes, sizes: Sequence[int] | None, mss: int | None) -> list[bytes]:
    """``data`` cut at ``sizes`` (the rest in a last piece), else into ``mss``-sized pieces."""
    if sizes is not None:
        pieces, at = [], 0
        for size in sizes:
            if size <= 0:
                raise ValueError(f"segment sizes must be positive, got {size}")
            pieces.append(data[at : at + size])
            at += size
        if at < len(data):
            pieces.append(data[at:])
        return [p for p in pieces if p]
    if mss is not None and mss > 0 and data:
        return [data[i : i + mss] for i in range(0, len(data), mss)]
    return [data]
