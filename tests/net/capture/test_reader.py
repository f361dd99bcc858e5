"""read_capture: file formats, timestamps, damaged files and the real corpus."""

from __future__ import annotations

import csv
import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from minewatch.errors import CaptureError
from minewatch.net.capture import writer as w
from minewatch.net.capture.reader import PacketTable, looks_like_capture, read_capture
from minewatch.net.capture.writer import CaptureRecord, LinkType

CORPUS = Path(os.environ.get("MINEWATCH_CORPUS", Path(__file__).parents[4] / "shared" / "corpus"))
TS0 = 1_700_000_000_123_456_789


def _records(n: int = 5, linktype: int = LinkType.ETHERNET) -> list[CaptureRecord]:
    """``n`` UDP frames of different lengths (so every record boundary is distinct)."""
    return [
        (
            TS0 + i * 1_001_001_001,
            w.frame(w.ipv4_udp("10.0.0.1", "10.0.0.2", 1000 + i, 53, bytes([i]) * 7 * i), linktype),
        )
        for i in range(n)
    ]


def _frames(t: PacketTable) -> list[bytes]:
    return [
        bytes(t.buf[o : o + c]) for o, c in zip(t.offset.tolist(), t.caplen.tolist(), strict=True)
    ]


def _write(tmp_path: Path, data: bytes, name: str = "cap.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- classic pcap ------------------------------------------------------------------------------


@pytest.mark.parametrize("nanosecond", [False, True], ids=["us", "ns"])
@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
def test_pcap_round_trip(tmp_path: Path, nanosecond: bool, big_endian: bool) -> None:
    records = _records()
    path = w.write_pcap(tmp_path / "a.pcap", records, LinkType.ETHERNET, nanosecond, big_endian)
    t = read_capture(path)
    assert t.problem is None
    assert t.path == str(path)
    assert len(t) == len(records)
    assert _frames(t) == [data for _, data in records]
    unit = 1 if nanosecond else 1000
    assert t.ts_ns.tolist() == [ts // unit * unit for ts, _ in records]
    assert t.linktype.tolist() == [LinkType.ETHERNET] * len(records)


@pytest.mark.parametrize("linktype", list(LinkType), ids=lambda lt: lt.name)
def test_pcap_link_type_column(tmp_path: Path, linktype: LinkType) -> None:
    t = read_capture(w.write_pcap(tmp_path / "a.pcap", _records(3, linktype), linktype))
    assert t.linktype.tolist() == [int(linktype)] * 3


def test_pcap_snaplen_cuts_frames(tmp_path: Path) -> None:
    records = _records()
    t = read_capture(w.write_pcap(tmp_path / "a.pcap", records, 1, snaplen=50))
    assert _frames(t) == [data[:50] for _, data in records]


def test_pcap_link_type_fcs_bits_are_not_the_link_type(tmp_path: Path) -> None:
    data = bytearray(w.pcap_bytes(_records(2), LinkType.LINUX_SLL))
    # FCS length 4 (in 16-bit words) and the "FCS length present" bit, above the link type.
    data[20:24] = struct.pack("<I", (2 << 28) | (1 << 26) | LinkType.LINUX_SLL)
    t = read_capture(_write(tmp_path, bytes(data)))
    assert t.linktype.tolist() == [LinkType.LINUX_SLL] * 2


def test_pcap_with_no_packets_is_valid(tmp_path: Path) -> None:
    t = read_capture(w.write_pcap(tmp_path / "a.pcap", [], LinkType.ETHERNET))
    assert len(t) == 0
    assert t.problem is None


def test_looks_like_capture() -> None:
    assert looks_like_capture(w.pcap_bytes([], 1)[:4])
    assert looks_like_capture(w.pcap_bytes([], 1, nanosecond=True, big_endian=True)[:4])
    assert looks_like_capture(w.pcapng_bytes([], 1)[:4])
    assert looks_like_capture(gzip.compress(b"x")[:4])
    assert not looks_like_capture(b"GET / HTTP/1.1")


# --- pcapng ------------------------------------------------------------------------------------


def _expected_ns(ts_ns: int, tsresol: int, tsoffset_s: int = 0) -> int:
    """What a reader should make of ``ts_ns`` stored at this resolution: floored to a unit."""
    units = w.ts_units(ts_ns, tsresol, tsoffset_s)
    if tsresol & 0x80:
        ns = (units * 1_000_000_000) >> (tsresol & 0x7F)
    elif tsresol <= 9:
        ns = units * 10 ** (9 - tsresol)
    else:
        ns = units // 10 ** (tsresol - 9)
    return ns + tsoffset_s * 1_000_000_000


@pytest.mark.parametrize("tsresol", [6, 9, 3, 0, 10, 0x80 | 10, 0x80 | 20, 0x80 | 32])
@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
def test_pcapng_round_trip(tmp_path: Path, tsresol: int, big_endian: bool) -> None:
    records = _records()
    path = w.write_pcapng(tmp_path / "a.pcapng", records, LinkType.ETHERNET, tsresol, big_endian)
    t = read_capture(path)
    assert t.problem is None
    assert _frames(t) == [data for _, data in records]
    assert t.ts_ns.tolist() == [_expected_ns(ts, tsresol) for ts, _ in records]
    # However coarse the unit, the reading is never off by more than one unit.
    unit_ns = 2 ** -(tsresol & 0x7F) * 1e9 if tsresol & 0x80 else 10.0 ** (9 - tsresol)
    for (ts, _), got in zip(records, t.ts_ns.tolist(), strict=True):
        assert 0 <= ts - got <= max(unit_ns, 1)


@pytest.mark.parametrize("tsresol", [0x80 | 40, 0x80 | 63, 18])
def test_pcapng_resolution_finer_than_a_nanosecond(tmp_path: Path, tsresol: int) -> None:
    # Units this fine only fit 64 bits for times soon after the epoch.
    records = [(123_456_789 + 1001 * i, frame) for i, (_, frame) in enumerate(_records(3))]
    path = w.write_pcapng(tmp_path / "a.pcapng", records, LinkType.ETHERNET, tsresol)
    got = read_capture(path).ts_ns.tolist()
    # Exact to the nanosecond, give or take the floor of a sub-nanosecond unit.
    assert all(0 <= ts - g <= 1 for (ts, _), g in zip(records, got, strict=True)), got


def test_pcapng_if_tsoffset(tmp_path: Path) -> None:
    offset = 1_600_000_000
    data = w.pcapng_section_header() + w.pcapng_interface(1, tsresol=9, tsoffset_s=offset)
    data += b"".join(
        w.pcapng_enhanced_packet(0, ts, frame, tsresol=9, tsoffset_s=offset)
        for ts, frame in _records()
    )
    t = read_capture(_write(tmp_path, data, "a.pcapng"))
    assert t.ts_ns.tolist() == [ts for ts, _ in _records()]


def test_pcapng_two_sections_several_interfaces(tmp_path: Path) -> None:
    ip = w.ipv4_udp("192.0.2.1", "192.0.2.2", 5, 6, b"payload")
    ts = [TS0 + i * 1_000_000_007 for i in range(9)]
    # Section 1, little-endian: three interfaces with different link types and resolutions,
    # and blocks a reader must skip (name resolution, statistics, a custom block).
    s1 = [
        (LinkType.ETHERNET, 6),
        (LinkType.RAW, 9),
        (LinkType.LINUX_SLL, 0x80 | 24),
    ]
    data = w.pcapng_section_header()
    data += b"".join(
        w.pcapng_interface(lt, tsresol=r, name=f"if{i}") for i, (lt, r) in enumerate(s1)
    )
    data += w.pcapng_block(4, b"\0" * 4)  # empty name resolution block
    order = [0, 1, 2, 1, 0]
    for k, iface in enumerate(order):
        lt, r = s1[iface]
        data += w.pcapng_enhanced_packet(iface, ts[k], w.frame(ip, lt), tsresol=r)
    data += w.pcapng_block(5, struct.pack("<IIII", 0, 0, 0, 0))  # interface statistics
    data += w.pcapng_block(0x40000BAD, b"custom block body")
    # Section 2, big-endian: interface numbers restart at 0.
    s2 = [(LinkType.LINUX_SLL2, 3), (LinkType.NULL, 9)]
    data += w.pcapng_section_header(big_endian=True)
    data += b"".join(w.pcapng_interface(lt, tsresol=r, big_endian=True) for lt, r in s2)
    for k, iface in zip([5, 6], [1, 0], strict=True):
        lt, r = s2[iface]
        data += w.pcapng_enhanced_packet(iface, ts[k], w.frame(ip, lt), tsresol=r, big_endian=True)
    data += w.pcapng_simple_packet(w.frame(ip, LinkType.LINUX_SLL2), big_endian=True)
    t = read_capture(_write(tmp_path, data, "a.pcapng"))
    assert t.problem is None
    links = [s1[i][0] for i in order] + [LinkType.NULL, LinkType.LINUX_SLL2, LinkType.LINUX_SLL2]
    assert t.linktype.tolist() == [int(x) for x in links]
    assert _frames(t) == [w.frame(ip, lt) for lt in links]
    expect = [_expected_ns(ts[k], s1[i][1]) for k, i in enumerate(order)]
    expect += [_expected_ns(ts[5], 9), _expected_ns(ts[6], 3)]
    expect.append(expect[-1])  # the simple packet block takes the time of the packet before
    assert t.ts_ns.tolist() == expect


def test_pcapng_simple_packet_blocks(tmp_path: Path) -> None:
    frames = [data for _, data in _records(3)]
    data = w.pcapng_section_header() + w.pcapng_interface(LinkType.ETHERNET)
    data += w.pcapng_simple_packet(frames[0])
    data += w.pcapng_enhanced_packet(0, TS0, frames[1])
    data += w.pcapng_simple_packet(frames[2])
    t = read_capture(_write(tmp_path, data, "a.pcapng"))
    assert t.problem is None
    assert _frames(t) == frames
    assert t.ts_ns.tolist() == [0, _expected_ns(TS0, 6), _expected_ns(TS0, 6)]


def test_pcapng_simple_packet_block_respects_snaplen(tmp_path: Path) -> None:
    frame = bytes(range(61))  # 3 bytes of block padding follow it
    body = struct.pack("<I", 100) + frame  # original length 100: cut by the 61-byte snap length
    data = w.pcapng_section_header() + w.pcapng_interface(LinkType.ETHERNET, snaplen=61)
    data += w.pcapng_block(3, body)
    t = read_capture(_write(tmp_path, data, "a.pcapng"))
    assert _frames(t) == [frame]


def test_pcapng_obsolete_packet_block(tmp_path: Path) -> None:
    records = _records(3)
    data = w.pcapng_section_header() + w.pcapng_interface(LinkType.ETHERNET)
    data += b"".join(w.pcapng_obsolete_packet(0, ts, frame) for ts, frame in records)
    t = read_capture(_write(tmp_path, data, "a.pcapng"))
    assert _frames(t) == [frame for _, frame in records]
    assert t.ts_ns.tolist() == [_expected_ns(ts, 6) for ts, _ in records]


def test_pcapng_undescribed_interfaces_are_skipped_and_reported(tmp_path: Path) -> None:
    frame = _records(1)[0][1]
    data = w.pcapng_section_header()
    data += w.pcapng_simple_packet(frame)  # before any interface: nothing to read it with
    data += w.pcapng_interface(LinkType.ETHERNET) + w.pcapng_interface(LinkType.RAW)
    data += w.pcapng_enhanced_packet(1, TS0, frame)
    data += w.pcapng_enhanced_packet(7, TS0, frame)  # no interface 7
    data += w.pcapng_section_header() + w.pcapng_interface(LinkType.LINUX_SLL)
    # Interface 1 exists only in the first section; here it must not borrow one from there.
    data += w.pcapng_enhanced_packet(1, TS0, frame)
    data += w.pcapng_enhanced_packet(0, TS0, frame)
    t = read_capture(_write(tmp_path, data, "a.pcapng"))
    assert t.linktype.tolist() == [LinkType.RAW, LinkType.LINUX_SLL]
    assert t.problem is not None
    assert "3 packets name an interface that was never described" in t.problem


def test_pcapng_with_no_packets(tmp_path: Path) -> None:
    t = read_capture(w.write_pcapng(tmp_path / "a.pcapng", [], LinkType.ETHERNET))
    assert len(t) == 0
    assert t.problem is None


# --- gzip --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_gzip_compressed(tmp_path: Path, kind: str) -> None:
    records = _records()
    raw = w.pcap_bytes(records, 1) if kind == "pcap" else w.pcapng_bytes(records, 1)
    t = read_capture(_write(tmp_path, gzip.compress(raw), f"a.{kind}.gz"))
    assert t.problem is None
    assert _frames(t) == [frame for _, frame in records]


def test_gzip_with_several_members(tmp_path: Path) -> None:
    records = _records()
    raw = w.pcap_bytes(records, 1)
    t = read_capture(_write(tmp_path, gzip.compress(raw[:100]) + gzip.compress(raw[100:])))
    assert t.problem is None
    assert _frames(t) == [frame for _, frame in records]


def test_gzip_cut_short_keeps_what_decompresses(tmp_path: Path) -> None:
    records = _records(40)
    packed = gzip.compress(w.pcap_bytes(records, 1))
    t = read_capture(_write(tmp_path, packed[: len(packed) * 2 // 3], "a.pcap.gz"))
    assert t.problem is not None
    assert "gzip stream is truncated" in t.problem
    assert 0 < len(t) < len(records)
    assert _frames(t) == [frame for _, frame in records[: len(t)]]


def test_gzip_with_trailing_garbage_is_reported(tmp_path: Path) -> None:
    records = _records()
    t = read_capture(_write(tmp_path, gzip.compress(w.pcap_bytes(records, 1)) + b"junk"))
    assert len(t) == len(records)
    assert t.problem is not None
    assert "trailing bytes" in t.problem


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x1f\x8b" + b"\x00" * 30, "gzip data is damaged"),
        (b"\x1f\x8b\x08\x00", "gzip stream is truncated"),
        (gzip.compress(b""), "gzip file holds no data"),
    ],
    ids=["garbage", "header-only", "empty"],
)
def test_unreadable_gzip(tmp_path: Path, data: bytes, message: str) -> None:
    path = _write(tmp_path, data, "bad.pcap.gz")
    with pytest.raises(CaptureError, match=message) as info:
        read_capture(path)
    assert str(path) in str(info.value)


# --- unreadable files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "file is empty"),
        (b"This is a text file, not a capture.\n", "not a capture file"),
        (b"\xd4\xc3", "file is cut short: only 2 bytes"),
        (b"\xd4\xc3\xb2\xa1" + b"\0" * 10, "pcap file header is cut short"),
        (b"\x0a\x0d\x0d\x0a" + b"\0" * 10, "pcapng section header is cut short"),
        (
            b"\x0a\x0d\x0d\x0a\x1c\0\0\0" + b"\x11\x22\x33\x44" + b"\0" * 16,
            "pcapng section header is corrupt",
        ),
        (
            b"\x0a\x0d\x0d\x0a\x0c\0\0\0\x4d\x3c\x2b\x1a\x0c\0\0\0" + b"\0" * 12,
            "pcapng section header is corrupt",
        ),
    ],
    ids=["empty", "text", "two-bytes", "short-pcap", "short-pcapng", "bad-bom", "tiny-shb"],
)
def test_unreadable_file(tmp_path: Path, data: bytes, message: str) -> None:
    path = _write(tmp_path, data, "bad.pcap")
    with pytest.raises(CaptureError, match=message) as info:
        read_capture(path)
    assert info.value.path == str(path)
    assert str(info.value).startswith(f"{path}: ")


def test_directory_is_not_a_capture(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="is a directory") as info:
        read_capture(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.pcap"
    with pytest.raises(CaptureError, match="no such file") as info:
        read_capture(path)
    assert str(path) in str(info.value)


# --- truncation and corruption -----------------------------------------------------------------


def _pcap_boundaries(records: list[CaptureRecord]) -> list[int]:
    ends, at = [], 24
    for _, frame in records:
        at += 16 + len(frame)
        ends.append(at)
    return ends


@pytest.mark.parametrize("nanosecond", [False, True], ids=["us", "ns"])
@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
def test_pcap_truncated_at_every_byte(tmp_path: Path, nanosecond: bool, big_endian: bool) -> None:
    records = _records(4)
    full = w.pcap_bytes(records, 1, nanosecond, big_endian)
    ends = _pcap_boundaries(records)
    frames = [frame for _, frame in records]
    path = tmp_path / "cut.pcap"
    for cut in range(len(full)):
        path.write_bytes(full[:cut])
        if cut < 24:
            with pytest.raises(CaptureError, match=r"empty|cut short") as info:
                read_capture(path)
            assert str(path) in str(info.value)
            continue
        t = read_capture(path)
        whole = sum(end <= cut for end in ends)
        assert _frames(t) == frames[:whole], cut
        if cut == 24 or cut in ends:
            assert t.problem is None, cut
        else:
            assert t.problem is not None, cut
            assert "truncated" in t.problem
            assert f"read {whole} packets" in t.problem


@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
def test_pcapng_truncated_at_every_byte(tmp_path: Path, big_endian: bool) -> None:
    records = _records(4)
    blocks = [
        w.pcapng_section_header(big_endian=big_endian),
        w.pcapng_interface(1, tsresol=9, name="eth0", big_endian=big_endian),
    ]
    blocks += [w.pcapng_enhanced_packet(0, ts, f, big_endian=big_endian) for ts, f in records]
    full = b"".join(blocks)
    ends = np.cumsum([len(b) for b in blocks]).tolist()
    packet_ends = ends[2:]
    frames = [frame for _, frame in records]
    path = tmp_path / "cut.pcapng"
    for cut in range(len(full)):
        path.write_bytes(full[:cut])
        if cut < 28:
            with pytest.raises(CaptureError, match=r"empty|cut short") as info:
                read_capture(path)
            assert str(path) in str(info.value)
            continue
        t = read_capture(path)
        whole = sum(end <= cut for end in packet_ends)
        assert _frames(t) == frames[:whole], cut
        if cut in ends:
            assert t.problem is None, cut
        else:
            assert t.problem is not None, cut
            assert "truncated" in t.problem


def test_gzip_truncated_at_many_points(tmp_path: Path) -> None:
    records = _records(20)
    frames = [frame for _, frame in records]
    packed = gzip.compress(w.pcap_bytes(records, 1))
    path = tmp_path / "cut.pcap.gz"
    for cut in range(1, len(packed), 7):
        path.write_bytes(packed[:cut])
        try:
            t = read_capture(path)
        except CaptureError as exc:
            assert str(path) in str(exc)
            continue
        assert t.problem is not None
        assert "gzip stream is truncated" in t.problem
        assert _frames(t) == frames[: len(t)]


def test_pcap_corrupt_caplen(tmp_path: Path) -> None:
    records = _records(4)
    data = bytearray(w.pcap_bytes(records, 1))
    third = _pcap_boundaries(records)[1]
    data[third + 8 : third + 12] = struct.pack("<I", 0xFFFFFFF0)
    t = read_capture(_write(tmp_path, bytes(data)))
    assert len(t) == 2
    assert t.problem is not None
    assert "corrupt" in t.problem
    assert f"at byte {third}" in t.problem


def test_pcap_caplen_past_the_end_is_truncation(tmp_path: Path) -> None:
    records = _records(4)
    data = bytearray(w.pcap_bytes(records, 1))
    last = _pcap_boundaries(records)[2]
    data[last + 8 : last + 12] = struct.pack("<I", 5000)
    t = read_capture(_write(tmp_path, bytes(data)))
    assert len(t) == 3
    assert t.problem is not None
    assert "truncated" in t.problem


def _pcapng_with_bad_third_block(tmp_path: Path, patch: tuple[int, bytes]) -> PacketTable:
    records = _records(4)
    head = w.pcapng_section_header() + w.pcapng_interface(1)
    packets = [w.pcapng_enhanced_packet(0, ts, f) for ts, f in records]
    broken = bytearray(packets[2])
    at, value = patch
    broken[at : at + len(value)] = value
    data = head + packets[0] + packets[1] + bytes(broken) + packets[3]
    return read_capture(_write(tmp_path, data, "a.pcapng"))


@pytest.mark.parametrize(
    "patch",
    [
        (20, struct.pack("<I", 0x7FFF)),  # captured length larger than the block
        (4, struct.pack("<I", 30)),  # block length not a multiple of 4
        (4, struct.pack("<I", 8)),  # block length below the minimum
        (4, struct.pack("<I", 36)),  # block length that disagrees with the trailing copy
    ],
    ids=["caplen", "unaligned", "tiny", "trailer"],
)
def test_pcapng_corrupt_block(tmp_path: Path, patch: tuple[int, bytes]) -> None:
    t = _pcapng_with_bad_third_block(tmp_path, patch)
    assert len(t) == 2
    assert t.problem is not None
    assert "corrupt" in t.problem


# --- the real corpus ---------------------------------------------------------------------------


def _manifest() -> list[dict[str, str]]:
    manifest = CORPUS / "MANIFEST.csv"
    if not manifest.is_file():
        return []
    with manifest.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.corpus
@pytest.mark.parametrize("row", _manifest() or [None], ids=lambda r: r["path"] if r else "absent")
def test_corpus_packet_counts(row: dict[str, str] | None) -> None:
    if row is None or not (CORPUS / row["path"]).is_file():
        pytest.skip(f"capture corpus not found under {CORPUS}")
    t = read_capture(CORPUS / row["path"])
    assert t.problem is None
    assert len(t) == int(row["packets"])
    assert (t.ts_ns > 0).all()
    assert (t.offset + t.caplen <= t.buf.shape[0]).all()
