"""Fuzzing the reader and decoder: damaged input gives packets or a CaptureError, nothing else.

Seeds are a few small real captures from the corpus (skipped when it is absent) and some made by
the writer to reach what the corpus lacks (big-endian, nanosecond, several pcapng sections and
interfaces with options, simple packet blocks, gzip). Mutations favour the bytes of record and
protocol headers, where lengths live.
"""

from __future__ import annotations

import functools
import gzip
import os
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minewatch.errors import CaptureError
from minewatch.net.capture import writer as w
from minewatch.net.capture.decode import PacketHeaders, decode_headers
from minewatch.net.capture.reader import PacketTable, read_capture
from minewatch.net.capture.writer import Direction, Ipv6Extension, LinkType, TcpSession

CORPUS = Path(os.environ.get("MINEWATCH_CORPUS", Path(__file__).parents[4] / "shared" / "corpus"))
FUZZ = settings(
    # MINEWATCH_FUZZ_EXAMPLES=20000 for a longer campaign than the everyday run.
    max_examples=int(os.environ.get("MINEWATCH_FUZZ_EXAMPLES", "300")),
    deadline=timedelta(seconds=2),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
V4 = ("10.1.2.3", "10.9.8.7")
V6 = ("2001:db8::a", "2001:db8::b")


def _made_seeds() -> dict[str, bytes]:
    session = TcpSession(V4[0], 41000, V4[1], 3333)
    talk = [(Direction.TO_SERVER, b'{"method":"login"}\n'), (Direction.TO_CLIENT, b'{"id":1}\n')]
    eth = session.frames(talk, LinkType.ETHERNET, segment_sizes={0: [4]})
    tagged = [
        (ts, w.ethernet(w.ipv6_tcp(*V6, 1, 2, b"v6", extensions=exts), vlans=[3, 4]))
        for ts, exts in [
            (1, [Ipv6Extension.hop_by_hop(), Ipv6Extension.fragment(0, more=True)]),
            (2, [Ipv6Extension.routing(["2001:db8::1"]), Ipv6Extension.authentication()]),
        ]
    ]
    tagged.append((3, w.ethernet(w.ipv4_udp(*V4, 5, 6, b"opt", ip_options=b"\x01" * 8))))
    sll2 = session.frames(talk, LinkType.LINUX_SLL2, mid_stream_from=1)
    multi = w.pcapng_section_header() + w.pcapng_interface(1, tsresol=9, name="eth0")
    multi += w.pcapng_interface(LinkType.LINUX_SLL2, tsresol=0x80 | 20, tsoffset_s=5, snaplen=96)
    multi += b"".join(w.pcapng_enhanced_packet(0, ts, f, tsresol=9) for ts, f in eth[:4])
    multi += b"".join(w.pcapng_enhanced_packet(1, ts, f, tsresol=0x94) for ts, f in sll2[:2])
    multi += w.pcapng_section_header(big_endian=True) + w.pcapng_interface(0, big_endian=True)
    multi += w.pcapng_simple_packet(w.null_loopback(w.ipv4_udp(*V4, 7, 8, b"s")), big_endian=True)
    multi += w.pcapng_obsolete_packet(
        0, 10**18, w.null_loopback(w.ipv6_udp(*V6, 1, 2)), big_endian=True
    )
    return {
        "made-ns-be.pcap": w.pcap_bytes(eth + tagged, 1, nanosecond=True, big_endian=True),
        "made-sll2.pcap": w.pcap_bytes(sll2, LinkType.LINUX_SLL2),
        "made-multi.pcapng": multi,
        "made.pcap.gz": gzip.compress(w.pcap_bytes(eth, 1)),
    }


def _corpus_seeds() -> dict[str, bytes]:
    files = sorted((CORPUS / "mining").glob("local_*.pcap")) if CORPUS.is_dir() else []
    pcapngs = sorted(CORPUS.glob("*/*.pcapng"), key=lambda p: p.stat().st_size)[:1]
    return {p.name: p.read_bytes() for p in [*files, *pcapngs]}


SEEDS = {**_corpus_seeds(), **_made_seeds()}
SEED_NAMES = sorted(SEEDS)


@functools.cache
def _hot_positions(name: str) -> list[int]:
    """Offsets where a seed's lengths live: its first 256 bytes (file and section headers,
    interface descriptions) and the bytes around each packet start (record, link, IP and
    transport headers)."""
    data = SEEDS[name]
    starts: list[int] = []
    if data[:2] != b"\x1f\x8b":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            starts = read_capture(path).offset.tolist()
    return sorted({max(0, s + d) for s in starts for d in range(-32, 64, 2)} | set(range(256)))


INTERESTING_U32 = [0, 1, 4, 11, 12, 28, 31, 32, 0x7F, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(SEED_NAMES))
    buf = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 6))):
        if not buf:
            break
        pos = draw(
            st.one_of(st.sampled_from(_hot_positions(name)), st.integers(0, len(buf) - 1))
        ) % len(buf)
        kind = draw(st.sampled_from(["byte", "u32", "cut", "insert", "delete"]))
        if kind == "byte":
            buf[pos] = draw(st.integers(0, 255))
        elif kind == "u32":
            value = draw(st.sampled_from(INTERESTING_U32)).to_bytes(
                4, draw(st.sampled_from(["big", "little"]))
            )
            buf[pos : pos + 4] = value
        elif kind == "cut":
            del buf[pos:]
        elif kind == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            del buf[pos : pos + draw(st.integers(1, 64))]
    return name, bytes(buf)


def _check_table(t: PacketTable) -> None:
    n = t.buf.shape[0]
    assert t.offset.shape == t.caplen.shape == t.ts_ns.shape == t.linktype.shape
    assert (t.offset >= 0).all()
    assert (t.caplen >= 0).all()
    assert (t.offset + t.caplen <= n).all()


def _check_headers(t: PacketTable, h: PacketHeaders) -> None:
    assert h.index.shape[0] == 0 or (h.index.min() >= 0 and h.index.max() < len(t))
    assert (np.diff(h.index) > 0).all()
    start = t.offset[h.index]
    end = start + t.caplen[h.index]
    assert (h.payload_len >= 0).all()
    assert (h.payload_off >= start).all()
    assert (h.payload_off + h.payload_len <= end).all()
    assert ((h.sport >= 0) & (h.sport <= 0xFFFF) & (h.dport >= 0) & (h.dport <= 0xFFFF)).all()
    assert set(h.proto.tolist()) <= {6, 17}


@pytest.fixture(scope="module")
def fuzz_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("fuzz") / "mutant"
    # Warm up (numba load, first-call costs) outside the deadline of the first example.
    path.write_bytes(SEEDS[SEED_NAMES[0]])
    decode_headers(read_capture(path))
    yield path


def test_seeds_are_sound(fuzz_file: Path) -> None:
    for name in SEED_NAMES:
        fuzz_file.write_bytes(SEEDS[name])
        t = read_capture(fuzz_file)
        assert t.problem is None, name
        assert len(decode_headers(t)) > 0, name


@FUZZ
@given(case=_mutated())
def test_damaged_captures_read_or_raise_capture_error(
    fuzz_file: Path, case: tuple[str, bytes]
) -> None:
    _, data = case
    fuzz_file.write_bytes(data)
    try:
        t = read_capture(fuzz_file)
    except CaptureError as exc:
        assert str(fuzz_file) in str(exc)
        return
    _check_table(t)
    _check_headers(t, decode_headers(t))


# --- the decoder alone -------------------------------------------------------------------------

TEMPLATES: list[tuple[int, bytes]] = [
    (LinkType.ETHERNET, w.ethernet(w.ipv4_tcp(*V4, 1, 2, b"payload", ip_options=b"\x01" * 4))),
    (
        LinkType.ETHERNET,
        w.ethernet(
            w.ipv6_udp(*V6, 1, 2, b"p", extensions=[Ipv6Extension.hop_by_hop()]), vlans=[1, 2]
        ),
    ),
    (LinkType.LINUX_SLL, w.linux_sll(w.ipv4_udp(*V4, 1, 2, b"p"))),
    (
        LinkType.LINUX_SLL2,
        w.linux_sll2(
            w.ipv6_tcp(*V6, 1, 2, b"p", extensions=[Ipv6Extension.fragment(0, more=True)])
        ),
    ),
    (LinkType.NULL, w.null_loopback(w.ipv6_tcp(*V6, 1, 2, b"p"))),
    (LinkType.LOOP, w.openbsd_loop(w.ipv4_tcp(*V4, 1, 2, b"p"))),
    (LinkType.RAW, w.ipv4_udp(*V4, 1, 2, b"p")),
    (LinkType.IPV6, w.ipv6_udp(*V6, 1, 2, b"p")),
]
KNOWN_LINKS = sorted({int(t) for t in LinkType} | {12, 14, 147})


@st.composite
def _packet(draw: st.DrawFn) -> tuple[int, bytes]:
    if draw(st.booleans()):
        return draw(st.sampled_from(KNOWN_LINKS)), draw(st.binary(max_size=120))
    linktype, frame = draw(st.sampled_from(TEMPLATES))
    buf = bytearray(frame)
    for _ in range(draw(st.integers(0, 4))):
        buf[draw(st.integers(0, min(len(buf), 90) - 1))] = draw(st.integers(0, 255))
    return linktype, bytes(buf[: draw(st.integers(0, len(buf)))])


def _table(packets: list[tuple[int, bytes]], filler: bytes) -> PacketTable:
    """Packets laid out one buffer, each followed by ``filler`` (which no decoder may read)."""
    offsets, at, parts = [], 0, []
    for _, body in packets:
        offsets.append(at)
        parts += [body, filler]
        at += len(body) + len(filler)
    n = len(packets)
    return PacketTable(
        path="fuzz",
        buf=np.frombuffer(b"".join(parts), dtype=np.uint8),
        offset=np.array(offsets, dtype=np.int64),
        caplen=np.array([len(b) for _, b in packets], dtype=np.int64),
        ts_ns=np.arange(n, dtype=np.int64),
        linktype=np.array([lt for lt, _ in packets], dtype=np.int64),
    )


def _decoded(t: PacketTable, h: PacketHeaders) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for i in range(len(h)):
        start, length = int(h.payload_off[i]), int(h.payload_len[i])
        rows.append(
            (
                int(h.index[i]),
                int(h.src_hi[i]),
                int(h.src_lo[i]),
                int(h.dst_hi[i]),
                int(h.dst_lo[i]),
                int(h.proto[i]),
                int(h.sport[i]),
                int(h.dport[i]),
                int(h.tcp_flags[i]),
                int(h.seq[i]),
                start - int(t.offset[h.index[i]]),
                bytes(t.buf[start : start + length]),
            )
        )
    return rows


@FUZZ
@given(packets=st.lists(_packet(), max_size=12), filler=st.binary(min_size=0, max_size=64))
def test_decoder_never_reads_outside_a_packet(
    packets: list[tuple[int, bytes]], filler: bytes
) -> None:
    plain = _table(packets, b"")
    h = decode_headers(plain)
    _check_headers(plain, h)
    # The same packets with other bytes between them decode identically: nothing a packet's
    # fields or payload depend on lies outside its captured bytes.
    padded = _table(packets, filler)
    assert _decoded(padded, decode_headers(padded)) == _decoded(plain, h)
