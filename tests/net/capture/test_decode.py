"""decode_headers: link layers, IP variants, transport fields and payload bounds."""

from __future__ import annotations

import csv
import os
import struct
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import numpy as np
import pytest

from minewatch.net.capture import writer as w
from minewatch.net.capture.decode import PROTO_TCP, PROTO_UDP, PacketHeaders, decode_headers
from minewatch.net.capture.reader import PacketTable, read_capture
from minewatch.net.capture.writer import Direction, Ipv6Extension, LinkType, TcpFlag, TcpSession

CORPUS = Path(os.environ.get("MINEWATCH_CORPUS", Path(__file__).parents[4] / "shared" / "corpus"))
TS0 = 1_700_000_000_000_000_000
V4 = ("198.51.100.10", "203.0.113.20")
V6 = ("2001:db8::10", "2001:db8:ffff::20")


def _capture(tmp_path: Path, frames: list[bytes], linktype: int) -> PacketTable:
    records = [(TS0 + i * 1000, f) for i, f in enumerate(frames)]
    return read_capture(w.write_pcap(tmp_path / "t.pcap", records, linktype, nanosecond=True))


def _decode(tmp_path: Path, frames: list[bytes], linktype: int) -> PacketHeaders:
    return decode_headers(_capture(tmp_path, frames, linktype))


def _payload(h: PacketHeaders, i: int) -> bytes:
    start = int(h.payload_off[i])
    return bytes(h.buf[start : start + int(h.payload_len[i])])


def _address(hi: np.uint64, lo: np.uint64) -> IPv4Address | IPv6Address:
    v6 = IPv6Address((int(hi) << 64) | int(lo))
    return v6.ipv4_mapped or v6


def _endpoints(h: PacketHeaders, i: int) -> tuple[str, str, int, int]:
    return (
        str(_address(h.src_hi[i], h.src_lo[i])),
        str(_address(h.dst_hi[i], h.dst_lo[i])),
        int(h.sport[i]),
        int(h.dport[i]),
    )


def _assert_inside_packets(t: PacketTable, h: PacketHeaders) -> None:
    """Every decoded payload lies within its own packet's captured bytes."""
    start = t.offset[h.index]
    end = start + t.caplen[h.index]
    assert (h.payload_off >= start).all()
    assert (h.payload_len >= 0).all()
    assert (h.payload_off + h.payload_len <= end).all()
    assert (np.diff(h.index) > 0).all()


PacketBuilder = Callable[[str, str, int, int, bytes], bytes]
BUILDERS: dict[str, tuple[PacketBuilder, tuple[str, str], int]] = {
    "ipv4-tcp": (w.ipv4_tcp, V4, PROTO_TCP),
    "ipv6-tcp": (w.ipv6_tcp, V6, PROTO_TCP),
    "ipv4-udp": (w.ipv4_udp, V4, PROTO_UDP),
    "ipv6-udp": (w.ipv6_udp, V6, PROTO_UDP),
}


LINK_CASES = [
    pytest.param(LinkType.ETHERNET, w.ethernet, id="ethernet"),
    pytest.param(LinkType.LINUX_SLL, w.linux_sll, id="sll"),
    pytest.param(LinkType.LINUX_SLL2, w.linux_sll2, id="sll2"),
    pytest.param(LinkType.NULL, w.null_loopback, id="null-le"),
    pytest.param(LinkType.NULL, lambda p: w.null_loopback(p, big_endian=True), id="null-be"),
    pytest.param(LinkType.NULL, lambda p: w.null_loopback(p, ipv6_family=28), id="null-freebsd"),
    pytest.param(LinkType.NULL, lambda p: w.null_loopback(p, ipv6_family=24), id="null-netbsd"),
    pytest.param(LinkType.LOOP, w.openbsd_loop, id="loop"),
    pytest.param(LinkType.RAW, lambda p: p, id="raw"),
    pytest.param(12, lambda p: p, id="raw-bsd"),
    pytest.param(14, lambda p: p, id="raw-openbsd"),
]


@pytest.mark.parametrize(("linktype", "wrap"), LINK_CASES)
@pytest.mark.parametrize("kind", list(BUILDERS))
def test_every_link_type(
    tmp_path: Path, linktype: int, wrap: Callable[[bytes], bytes], kind: str
) -> None:
    build, (src, dst), proto = BUILDERS[kind]
    payloads = [b"", b"x", b"hello " * 50]
    frames = [wrap(build(src, dst, 40000 + i, 3333, p)) for i, p in enumerate(payloads)]
    t = _capture(tmp_path, frames, linktype)
    h = decode_headers(t)
    assert h.index.tolist() == [0, 1, 2]
    assert h.proto.tolist() == [proto] * 3
    assert [_endpoints(h, i) for i in range(3)] == [(src, dst, 40000 + i, 3333) for i in range(3)]
    assert [_payload(h, i) for i in range(3)] == payloads
    assert h.ts_ns.tolist() == t.ts_ns.tolist()
    if proto == PROTO_TCP:
        assert h.tcp_flags.tolist() == [TcpFlag.PSH | TcpFlag.ACK] * 3
    _assert_inside_packets(t, h)


@pytest.mark.parametrize(("linktype", "family"), [(LinkType.IPV4, "ipv4"), (LinkType.IPV6, "ipv6")])
def test_raw_ipv4_and_ipv6_link_types(tmp_path: Path, linktype: int, family: str) -> None:
    src, dst = V4 if family == "ipv4" else V6
    tcp = w.ipv4_tcp if family == "ipv4" else w.ipv6_tcp
    other = w.ipv6_udp(*V6, 1, 2, b"z") if family == "ipv4" else w.ipv4_udp(*V4, 1, 2, b"z")
    h = _decode(tmp_path, [tcp(src, dst, 1, 2, b"abc"), other], linktype)
    # The link type fixes the IP version; a packet of the other version is not misread.
    assert h.index.tolist() == [0]
    assert _payload(h, 0) == b"abc"


def test_tcp_fields(tmp_path: Path) -> None:
    packet = w.ipv4_tcp(
        *V4, 443, 51000, b"data", seq=0xFFFFFFF0, ack=7, flags=TcpFlag.SYN | TcpFlag.ECE
    )
    h = _decode(tmp_path, [w.ethernet(packet)], LinkType.ETHERNET)
    assert h.seq.tolist() == [0xFFFFFFF0]
    assert h.tcp_flags.tolist() == [TcpFlag.SYN | TcpFlag.ECE]
    assert _endpoints(h, 0) == (*V4, 443, 51000)


def test_tcp_options_are_skipped(tmp_path: Path) -> None:
    options = b"\x02\x04\x05\xb4\x01\x03\x03\x07\x04\x02\x00\x00"  # MSS, NOP, WS, SACK-perm
    h = _decode(tmp_path, [w.ethernet(w.ipv6_tcp(*V6, 1, 2, b"after", tcp_options=options))], 1)
    assert _payload(h, 0) == b"after"


def test_tcp_data_offset_below_five_is_dropped(tmp_path: Path) -> None:
    packet = bytearray(w.ipv4_tcp(*V4, 1, 2, b"abc"))
    packet[20 + 12] = 4 << 4
    h = _decode(tmp_path, [w.ethernet(bytes(packet)), w.ethernet(w.ipv4_tcp(*V4, 1, 2))], 1)
    assert h.index.tolist() == [1]


# --- VLANs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vlans", "outer_tpid"),
    [([100], 0x8100), ([100, 200], 0x88A8), ([100, 200], 0x9100), ([100, 200], 0x8100)],
    ids=["802.1Q", "QinQ-88a8", "QinQ-9100", "double-8100"],
)
@pytest.mark.parametrize("kind", ["ipv4-tcp", "ipv6-udp"])
def test_vlan_tags(tmp_path: Path, vlans: list[int], outer_tpid: int, kind: str) -> None:
    build, (src, dst), proto = BUILDERS[kind]
    frame = w.ethernet(build(src, dst, 1, 2, b"tagged"), vlans=vlans, outer_tpid=outer_tpid)
    h = _decode(tmp_path, [frame], LinkType.ETHERNET)
    assert h.proto.tolist() == [proto]
    assert _endpoints(h, 0) == (src, dst, 1, 2)
    assert _payload(h, 0) == b"tagged"


def test_vlan_tag_inside_linux_cooked_capture(tmp_path: Path) -> None:
    packet = w.ipv4_udp(*V4, 1, 2, b"cooked")
    frame = w.linux_sll(struct.pack("!HH", 42, 0x0800) + packet, ethertype=0x8100)
    h = _decode(tmp_path, [frame], LinkType.LINUX_SLL)
    assert _payload(h, 0) == b"cooked"


def test_three_vlan_tags_are_not_guessed_at(tmp_path: Path) -> None:
    frame = w.ethernet(w.ipv4_udp(*V4, 1, 2, b"deep"), vlans=[1, 2, 3], outer_tpid=0x88A8)
    assert len(_decode(tmp_path, [frame], LinkType.ETHERNET)) == 0


# --- IPv4 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("options_len", [4, 8, 20, 40])
def test_ipv4_options(tmp_path: Path, options_len: int) -> None:
    options = b"\x94\x04\x00\x00" + b"\x01" * (options_len - 4)  # router alert, then NOPs
    frames = [
        w.ethernet(w.ipv4_tcp(*V4, 1, 2, b"tcp", ip_options=options)),
        w.ethernet(w.ipv4_udp(*V4, 3, 4, b"udp", ip_options=options)),
    ]
    h = _decode(tmp_path, frames, LinkType.ETHERNET)
    assert [_endpoints(h, i)[2:] for i in range(2)] == [(1, 2), (3, 4)]
    assert [_payload(h, i) for i in range(2)] == [b"tcp", b"udp"]


def test_ipv4_header_length_below_twenty_is_dropped(tmp_path: Path) -> None:
    packet = bytearray(w.ipv4_udp(*V4, 1, 2, b"x"))
    packet[0] = 0x44
    assert len(_decode(tmp_path, [w.ethernet(bytes(packet))], LinkType.ETHERNET)) == 0


def test_ipv4_fragments(tmp_path: Path) -> None:
    tcp = w.tcp_segment(1, 2, b"first part")
    frames = [
        # first fragment of a larger datagram: ports are there
        w.ethernet(w.ipv4_packet(*V4, 6, tcp, more_fragments=True, ident=9)),
        # a later fragment: its first bytes are payload, not a TCP header
        w.ethernet(w.ipv4_packet(*V4, 6, b"\x00\x50" * 20, fragment_offset=32, ident=9)),
        # the last fragment (offset, no more-fragments flag)
        w.ethernet(w.ipv4_packet(*V4, 17, b"\x00\x35" * 20, fragment_offset=8, ident=10)),
        # an unfragmented datagram with don't-fragment set
        w.ethernet(w.ipv4_packet(*V4, 17, w.udp_datagram(5, 6, b"df"), dont_fragment=True)),
    ]
    h = _decode(tmp_path, frames, LinkType.ETHERNET)
    assert h.index.tolist() == [0, 3]
    assert _payload(h, 0) == b"first part"
    assert _payload(h, 1) == b"df"


def test_ethernet_padding_is_not_payload(tmp_path: Path) -> None:
    frames = [
        w.ethernet(w.ipv4_udp(*V4, 1, 2, b"a")),
        w.ethernet(w.ipv4_tcp(*V4, 1, 2)),
        w.ethernet(w.ipv4_tcp(*V4, 1, 2, b"ab"), vlans=[7]),
        w.ethernet(w.ipv6_udp(*V6, 1, 2)),
    ]
    assert all(len(f) == 60 or len(f) > 60 for f in frames)
    assert len(frames[0]) == 60  # padded
    h = _decode(tmp_path, frames, LinkType.ETHERNET)
    assert h.payload_len.tolist() == [1, 0, 2, 0]
    assert [_payload(h, i) for i in range(4)] == [b"a", b"", b"ab", b""]


def test_ethernet_trailer_bytes_are_not_payload(tmp_path: Path) -> None:
    # A frame check sequence (or any trailer) after the IP datagram is not payload either.
    frame = w.ethernet(w.ipv4_tcp(*V4, 1, 2, b"x" * 100)) + b"\xde\xad\xbe\xef"
    h = _decode(tmp_path, [frame], LinkType.ETHERNET)
    assert _payload(h, 0) == b"x" * 100


def test_ipv4_total_length_zero_means_offloaded(tmp_path: Path) -> None:
    segment = w.tcp_segment(1, 2, b"y" * 3000)
    packet = w.ipv4_packet(*V4, 6, segment, total_length=0)
    h = _decode(tmp_path, [w.ethernet(packet)], LinkType.ETHERNET)
    assert _payload(h, 0) == b"y" * 3000


def test_ipv4_total_length_shorter_than_headers_is_dropped(tmp_path: Path) -> None:
    packet = w.ipv4_packet(*V4, 6, w.tcp_segment(1, 2, b"abc"), total_length=30)
    assert len(_decode(tmp_path, [w.ethernet(packet)], LinkType.ETHERNET)) == 0


# --- IPv6 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extensions", "kept"),
    [
        ([Ipv6Extension.hop_by_hop()], True),
        ([Ipv6Extension.hop_by_hop(), Ipv6Extension.fragment(0, more=True)], True),
        ([Ipv6Extension.hop_by_hop(), Ipv6Extension.fragment(1480)], False),
        ([Ipv6Extension.fragment(8, more=True)], False),
        ([Ipv6Extension.hop_by_hop(14), Ipv6Extension.routing(["2001:db8::99"])], True),
        (
            [
                Ipv6Extension.hop_by_hop(),
                Ipv6Extension.destination_options(),
                Ipv6Extension.routing(["2001:db8::1", "2001:db8::2"], 2),
                Ipv6Extension.fragment(0, more=True),
                Ipv6Extension.authentication(),
                Ipv6Extension.destination_options(22),
            ],
            True,
        ),
    ],
    ids=["hbh", "hbh+first-frag", "hbh+later-frag", "later-frag", "hbh+routing", "six-headers"],
)
@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_ipv6_extension_headers(
    tmp_path: Path, extensions: list[Ipv6Extension], kept: bool, proto: str
) -> None:
    build = w.ipv6_tcp if proto == "tcp" else w.ipv6_udp
    frame = w.ethernet(build(*V6, 1, 2, b"beyond the chain", extensions=extensions))
    h = _decode(tmp_path, [frame], LinkType.ETHERNET)
    if not kept:
        assert len(h) == 0
        return
    assert h.proto.tolist() == [PROTO_TCP if proto == "tcp" else PROTO_UDP]
    assert _endpoints(h, 0) == (*V6, 1, 2)
    assert _payload(h, 0) == b"beyond the chain"


def test_ipv6_chain_too_long_is_left_undecoded(tmp_path: Path) -> None:
    chain = [Ipv6Extension.destination_options()] * 9
    frame = w.ethernet(w.ipv6_udp(*V6, 1, 2, b"x", extensions=chain))
    assert len(_decode(tmp_path, [frame], LinkType.ETHERNET)) == 0


def test_ipv6_payload_length_zero_means_jumbo_or_offloaded(tmp_path: Path) -> None:
    packet = w.ipv6_packet(*V6, 6, w.tcp_segment(1, 2, b"j" * 2000), payload_length=0)
    h = _decode(tmp_path, [w.ethernet(packet)], LinkType.ETHERNET)
    assert _payload(h, 0) == b"j" * 2000


def test_ipv6_next_header_not_transport(tmp_path: Path) -> None:
    frames = [
        w.ethernet(w.ipv6_packet(*V6, 58, b"\x80\x00" + b"\0" * 30)),  # ICMPv6
        w.ethernet(w.ipv6_packet(*V6, 59, b"")),  # no next header
    ]
    assert len(_decode(tmp_path, frames, LinkType.ETHERNET)) == 0


# --- what is left out --------------------------------------------------------------------------


def test_other_traffic_is_left_out_and_index_points_into_the_capture(tmp_path: Path) -> None:
    arp = w.ethernet(b"\x00\x01\x08\x00\x06\x04\x00\x01" + b"\0" * 20, ethertype=0x0806)
    icmp = w.ethernet(w.ipv4_packet(*V4, 1, b"\x08\x00" + b"\0" * 30))
    gre = w.ethernet(w.ipv4_packet(*V4, 47, b"\0" * 8))
    frames = [arp, w.ethernet(w.ipv4_udp(*V4, 1, 2, b"a")), icmp, gre]
    frames += [w.ethernet(w.ipv6_tcp(*V6, 3, 4, b"b"))]
    h = _decode(tmp_path, frames, LinkType.ETHERNET)
    assert h.index.tolist() == [1, 4]
    assert [_payload(h, i) for i in range(2)] == [b"a", b"b"]


def test_unknown_link_type_is_left_out(tmp_path: Path) -> None:
    assert len(_decode(tmp_path, [w.ipv4_udp(*V4, 1, 2, b"a")], 147)) == 0


@pytest.mark.parametrize(
    ("snaplen", "expect"),
    [
        (14 + 20 + 20 + 5, [b"01234"]),  # payload cut: only the captured part counts
        (14 + 20 + 20, [b""]),  # exactly the headers
        (14 + 20 + 19, []),  # TCP header cut
        (14 + 19, []),  # IP header cut
        (10, []),  # Ethernet header cut
    ],
)
def test_snap_length_cut(tmp_path: Path, snaplen: int, expect: list[bytes]) -> None:
    frame = w.ethernet(w.ipv4_tcp(*V4, 1, 2, b"0123456789" * 10))
    records = [(TS0, frame), (TS0 + 1, frame)]
    path = w.write_pcap(tmp_path / "t.pcap", records, LinkType.ETHERNET, snaplen=snaplen)
    t = read_capture(path)
    h = decode_headers(t)
    assert [_payload(h, i) for i in range(len(h))] == expect * 2
    _assert_inside_packets(t, h)


def test_tcp_options_cut_by_snap_length_leave_no_payload(tmp_path: Path) -> None:
    frame = w.ethernet(w.ipv4_tcp(*V4, 1, 2, b"p" * 50, tcp_options=b"\x01" * 20))
    path = w.write_pcap(tmp_path / "t.pcap", [(TS0, frame)], 1, snaplen=14 + 20 + 30)
    t = read_capture(path)
    h = decode_headers(t)
    assert h.payload_len.tolist() == [0]
    _assert_inside_packets(t, h)


def test_empty_capture(tmp_path: Path) -> None:
    h = _decode(tmp_path, [], LinkType.ETHERNET)
    assert len(h) == 0
    assert h.sport.shape == (0,)


def test_mixed_link_types_in_one_pcapng(tmp_path: Path) -> None:
    ip4, ip6 = w.ipv4_tcp(*V4, 1, 2, b"four"), w.ipv6_udp(*V6, 3, 4, b"six")
    links = [LinkType.ETHERNET, LinkType.LINUX_SLL2, LinkType.NULL, LinkType.RAW]
    data = w.pcapng_section_header()
    data += b"".join(w.pcapng_interface(lt) for lt in links)
    for k in range(8):
        iface = k % 4
        packet = ip4 if k % 2 == 0 else ip6
        data += w.pcapng_enhanced_packet(iface, TS0 + k, w.frame(packet, links[iface]))
    path = tmp_path / "mixed.pcapng"
    path.write_bytes(data)
    h = decode_headers(read_capture(path))
    assert h.index.tolist() == list(range(8))
    assert [_payload(h, i) for i in range(8)] == [b"four", b"six"] * 4


# --- whole conversations -----------------------------------------------------------------------


MESSAGES = [
    (Direction.TO_SERVER, b'{"id":1,"method":"mining.subscribe","params":[]}\n'),
    (Direction.TO_CLIENT, b'{"id":1,"result":[[],"08000002",4],"error":null}\n'),
    (Direction.TO_SERVER, b'{"id":2,"method":"mining.authorize","params":["w","x"]}\n'),
    (Direction.TO_CLIENT, b'{"id":2,"result":true,"error":null}\n'),
]


def _stream(h: PacketHeaders, sport: int) -> dict[int, bytes]:
    """Payload bytes of one direction keyed by sequence number."""
    return {
        int(h.seq[i]): _payload(h, i)
        for i in range(len(h))
        if int(h.sport[i]) == sport and h.payload_len[i] > 0
    }


@pytest.mark.parametrize("addresses", [V4, V6], ids=["ipv4", "ipv6"])
def test_tcp_session_round_trip(tmp_path: Path, addresses: tuple[str, str]) -> None:
    session = TcpSession(addresses[0], 50123, addresses[1], 3333, client_isn=0xFFFFFF00)
    frames = session.frames(MESSAGES, LinkType.ETHERNET, segment_sizes={0: [10, 10], 3: [1]})
    path = w.write_pcap(tmp_path / "s.pcap", frames, LinkType.ETHERNET, nanosecond=True)
    h = decode_headers(read_capture(path))
    assert len(h) == len(frames)
    flags = h.tcp_flags.tolist()
    assert flags[:3] == [TcpFlag.SYN, TcpFlag.SYN | TcpFlag.ACK, TcpFlag.ACK]
    assert flags[-3:] == [TcpFlag.FIN | TcpFlag.ACK, TcpFlag.FIN | TcpFlag.ACK, TcpFlag.ACK]
    assert str(_address(h.src_hi[0], h.src_lo[0])) == str(ip_address(addresses[0]))
    # Reassembling each direction by sequence number gives back the messages, in order.
    client = _stream(h, 50123)
    assert b"".join(client[k] for k in sorted(client, key=lambda s: (s - 0xFFFFFF01) % 2**32)) == (
        MESSAGES[0][1] + MESSAGES[2][1]
    )
    server = _stream(h, 3333)
    assert b"".join(server[k] for k in sorted(server)) == MESSAGES[1][1] + MESSAGES[3][1]
    # The client's first data byte follows its SYN; the sequence wraps past 2**32.
    assert min(client, key=lambda s: (s - 0xFFFFFF01) % 2**32) == 0xFFFFFF01
    assert len([p for p in client.values() if p]) == 4  # message 0 in three segments


def test_tcp_session_mid_stream(tmp_path: Path) -> None:
    session = TcpSession(*V4[:1], 50123, V4[1], 3333)
    segs = session.segments(MESSAGES, mid_stream_from=2, ack_messages=False, close=False)
    assert [s.direction for s in segs] == [Direction.TO_SERVER, Direction.TO_CLIENT]
    assert segs[0].seq == session.client_isn + 1 + len(MESSAGES[0][1])
    assert segs[0].ack == session.server_isn + 1 + len(MESSAGES[1][1])
    frames = session.frames(MESSAGES, LinkType.LINUX_SLL, mid_stream_from=2)
    path = w.write_pcap(tmp_path / "m.pcap", frames, LinkType.LINUX_SLL)
    h = decode_headers(read_capture(path))
    assert not (h.tcp_flags & TcpFlag.SYN).any()
    assert _payload(h, 0) == MESSAGES[2][1]


# --- the real corpus ---------------------------------------------------------------------------


def _corpus_files() -> list[str]:
    manifest = CORPUS / "MANIFEST.csv"
    if not manifest.is_file():
        return []
    with manifest.open(newline="") as fh:
        return [row["path"] for row in csv.DictReader(fh)]


@pytest.mark.corpus
@pytest.mark.parametrize("name", _corpus_files() or ["absent"])
def test_corpus_decodes_inside_packets(name: str) -> None:
    if not (CORPUS / name).is_file():
        pytest.skip(f"capture corpus not found under {CORPUS}")
    t = read_capture(CORPUS / name)
    h = decode_headers(t)
    _assert_inside_packets(t, h)
    assert set(h.proto.tolist()) <= {PROTO_TCP, PROTO_UDP}
    assert ((h.sport >= 0) & (h.sport < 65536)).all()


def test_decoding_in_runs_gives_the_same_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large captures are decoded in runs of the buffer; the result must not depend on it."""
    from minewatch.net.capture import decode as decode_module

    records: list[tuple[int, bytes]] = []
    for i in range(40):
        tcp = w.ipv4_tcp("10.0.0.5", "192.0.2.7", 40000 + i, 3333, b"x" * (i * 7))
        udp = w.ipv6_udp("2001:db8::5", "2001:db8::7", 5000, 53, b"y" * i)
        records.append((1_700_000_000_000_000_000 + 2 * i, w.ethernet(tcp)))
        records.append((1_700_000_000_000_000_001 + 2 * i, w.ethernet(udp, vlans=(7,))))
    table = read_capture(w.write_pcap(tmp_path / "runs.pcap", records, LinkType.ETHERNET))
    whole = decode_headers(table)
    monkeypatch.setattr(decode_module, "CHUNK_BYTES", 300)
    pieces = decode_headers(table)
    assert len(whole) == 80
    for name in PacketHeaders.__slots__:
        if name != "buf":
            np.testing.assert_array_equal(getattr(whole, name), getattr(pieces, name), err_msg=name)
