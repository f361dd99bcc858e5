"""The capture writer: header fields, checksums and TCP conversations."""

from __future__ import annotations

import struct
from array import array

import pytest

from minewatch.net.capture import writer as w
from minewatch.net.capture.writer import Direction, Ipv6Extension, LinkType, TcpFlag, TcpSession

V4 = ("192.0.2.1", "192.0.2.2")
V6 = ("2001:db8::1", "2001:db8::2")


def _sum_ok(data: bytes) -> bool:
    """Whether ``data`` (with its checksum field filled) sums to all ones."""
    if len(data) % 2:
        data += b"\0"
    total = sum(array("H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def test_ipv4_tcp_lengths_and_checksums() -> None:
    packet = w.ipv4_tcp(*V4, 1234, 80, b"hello", seq=5, ip_options=b"\x01\x01\x01")
    ihl = (packet[0] & 0x0F) * 4
    assert ihl == 24
    assert struct.unpack("!H", packet[2:4])[0] == len(packet)
    assert _sum_ok(packet[:ihl])
    pseudo = packet[12:20] + struct.pack("!BBH", 0, 6, len(packet) - ihl)
    assert _sum_ok(pseudo + packet[ihl:])
    assert packet[-5:] == b"hello"


def test_ipv6_udp_lengths_and_checksums() -> None:
    packet = w.ipv6_udp(*V6, 53, 5353, b"query!")
    assert struct.unpack("!H", packet[4:6])[0] == len(packet) - 40
    udp = packet[40:]
    assert struct.unpack("!H", udp[4:6])[0] == len(udp)
    pseudo = packet[8:40] + struct.pack("!I3xB", len(udp), 17)
    assert _sum_ok(pseudo + udp)


def test_ipv6_extension_chain_links_next_headers() -> None:
    exts = [Ipv6Extension.hop_by_hop(), Ipv6Extension.fragment(0, more=True)]
    packet = w.ipv6_tcp(*V6, 1, 2, extensions=exts)
    assert packet[6] == 0  # hop-by-hop first
    assert packet[40] == 44  # then the fragment header
    assert packet[48] == 6  # then TCP
    assert struct.unpack("!H", packet[4:6])[0] == 16 + 20


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: w.ipv4_udp("2001:db8::1", "192.0.2.1", 1, 2), "IPv4 address"),
        (lambda: w.ipv6_udp("192.0.2.1", "2001:db8::1", 1, 2), "IPv6 address"),
        (lambda: w.ipv4_packet(*V4, 6, b"", fragment_offset=3), "multiple of 8"),
        (lambda: w.ipv4_packet(*V4, 6, b"", options=b"\1" * 44), "at most 40"),
        (lambda: w.ethernet(b"\x00\x01"), "ethertype"),
        (lambda: w.frame(b"E", 147), "cannot frame"),
        (lambda: w.ts_units(2**70, 9), "64 bits"),
    ],
)
def test_bad_arguments_say_what_is_expected(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(ValueError, match=message):
        call()


def test_ethernet_vlan_tags_and_padding() -> None:
    frame = w.ethernet(w.ipv4_udp(*V4, 1, 2), vlans=[5, 6], outer_tpid=0x88A8)
    assert frame[12:22] == bytes.fromhex("88a80005810000060800")
    assert len(frame) == 60


@pytest.mark.parametrize("linktype", list(LinkType), ids=lambda lt: lt.name)
def test_frame_header_sizes(linktype: LinkType) -> None:
    packet = w.ipv6_tcp(*V6, 1, 2, b"z" * 100)
    sizes = {
        LinkType.ETHERNET: 14,
        LinkType.LINUX_SLL: 16,
        LinkType.LINUX_SLL2: 20,
        LinkType.NULL: 4,
        LinkType.LOOP: 4,
    }
    framed = w.frame(packet, linktype)
    assert framed[sizes.get(linktype, 0) :] == packet


def test_pcap_header() -> None:
    data = w.pcap_bytes([(1_500_000_000_123_456_789, b"abc")], 113, nanosecond=True)
    assert data[:4] == b"\x4d\x3c\xb2\xa1"
    assert struct.unpack("<IIII", data[24:40]) == (1_500_000_000, 123_456_789, 3, 3)
    assert struct.unpack("<I", data[20:24]) == (113,)


def test_session_sequence_numbers() -> None:
    session = TcpSession(*V4[:1], 40000, V4[1], 3333, client_isn=100, server_isn=900)
    msgs = [(Direction.TO_SERVER, b"abcdef"), (Direction.TO_CLIENT, b"xyz")]
    segs = session.segments(msgs, segment_sizes={0: [2, 2]})
    got = [(s.direction, s.seq, s.ack, TcpFlag(s.flags), s.payload) for s in segs]
    c, s = Direction.TO_SERVER, Direction.TO_CLIENT
    pa = TcpFlag.PSH | TcpFlag.ACK
    fa = TcpFlag.FIN | TcpFlag.ACK
    assert got == [
        (c, 100, 0, TcpFlag.SYN, b""),
        (s, 900, 101, TcpFlag.SYN | TcpFlag.ACK, b""),
        (c, 101, 901, TcpFlag.ACK, b""),
        (c, 101, 901, pa, b"ab"),
        (c, 103, 901, pa, b"cd"),
        (c, 105, 901, pa, b"ef"),
        (s, 901, 107, TcpFlag.ACK, b""),
        (s, 901, 107, pa, b"xyz"),
        (c, 107, 904, TcpFlag.ACK, b""),
        (c, 107, 904, fa, b""),
        (s, 904, 108, fa, b""),
        (c, 108, 905, TcpFlag.ACK, b""),
    ]
    assert [x.ts_ns for x in segs] == [session.start_ns + i * session.step_ns for i in range(12)]


def test_session_mss_and_mid_stream() -> None:
    session = TcpSession("2001:db8::5", 40000, "2001:db8::6", 443)
    msgs = [(Direction.TO_SERVER, b"a" * 10), (Direction.TO_CLIENT, b"b" * 25)]
    segs = session.segments(msgs, mss=10, mid_stream_from=1, ack_messages=False, close=False)
    assert [x.payload for x in segs] == [b"b" * 10, b"b" * 10, b"b" * 5]
    assert segs[0].ack == session.client_isn + 1 + 10
    assert segs[0].ts_ns == session.start_ns
    packets = session.packets(msgs, mid_stream_from=1)
    assert all(p[0] >> 4 == 6 for _, p in packets)
