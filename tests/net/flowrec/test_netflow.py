"""The NetFlow v5/v9/IPFIX decoder against real exports.

Real parts: softflowd (Debian package ``softflowd``) replays corpus captures and exports v5, v9
and IPFIX to a UDP socket on loopback; the datagrams it sent are decoded and the totals compared
with what the capture itself holds. The corpus's own exporter captures (nDPI's netflowv9 and
FRITZ!Box IPFIX) are fed as they were recorded. Hand-built datagrams are used only to force
cases softflowd never produces (a template arriving after its data, loss, garbage).
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minewatch.net.capture.decode import decode_headers
from minewatch.net.capture.reader import read_capture
from minewatch.net.flowrec.netflow import (
    NetflowDecoder,
    SequenceTracker,
    ipv4_text,
    ipv6_text,
)
from minewatch.net.flowrec.table import FLOW_SCHEMA

SOFTFLOWD = shutil.which("softflowd") or (
    "/usr/sbin/softflowd" if Path("/usr/sbin/softflowd").exists() else None
)
needs_softflowd = pytest.mark.skipif(
    SOFTFLOWD is None, reason="softflowd not installed (Debian package softflowd)"
)


def softflowd_datagrams(capture: Path, version: int) -> list[bytes]:
    """Run softflowd on ``capture`` exporting ``version`` to a loopback socket; the datagrams."""
    assert SOFTFLOWD is not None
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    subprocess.run(
        [SOFTFLOWD, "-r", str(capture), "-n", f"127.0.0.1:{port}", "-v", str(version), "-d"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    sock.settimeout(0.5)
    out = []
    try:
        while True:
            out.append(sock.recv(65535))
    except TimeoutError:
        pass
    finally:
        sock.close()
    return out


def capture_totals(path: Path, ipv4_only: bool = False) -> tuple[int, int]:
    """TCP/UDP packets and IP bytes of a capture, from minewatch's own packet decoder."""
    headers = decode_headers(read_capture(path))
    keep = np.ones(len(headers), dtype=bool)
    if ipv4_only:  # IPv4 is stored IPv4-mapped (::ffff:a.b.c.d)
        keep = (headers.src_hi == 0) & ((headers.src_lo >> np.uint64(32)) == 0xFFFF)
    return int(keep.sum()), int(headers.ip_len[keep].sum())


def decode_all(datagrams: list[bytes], exporter: str = "127.0.0.1") -> NetflowDecoder:
    decoder = NetflowDecoder()
    for i, datagram in enumerate(datagrams):
        decoder.feed(datagram, exporter, now_ns=i)
    return decoder


@needs_softflowd
@pytest.mark.parametrize("version", [5, 9, 10])
def test_softflowd_export_matches_the_capture(corpus: Path, version: int) -> None:
    capture = corpus / "benign" / "ndpi_android.pcap"
    decoder = decode_all(softflowd_datagrams(capture, version))
    table = decoder.flush()
    assert table.schema == FLOW_SCHEMA
    assert decoder.stats.malformed == {}
    assert decoder.sequences.gaps() == []
    tcp_udp = table.filter(pc.is_in(table["protocol"], value_pa([6, 17])))
    packets, ip_bytes = capture_totals(capture, ipv4_only=version == 5)  # v5 has no IPv6
    assert pc.sum(tcp_udp["packets"]).as_py() == packets
    assert pc.sum(tcp_udp["bytes"]).as_py() == ip_bytes
    assert set(table["source"].to_pylist()) == {
        {5: "netflow-v5", 9: "netflow-v9", 10: "ipfix"}[version]
    }
    assert pc.all(pc.greater_equal(table["end_ns"], table["start_ns"])).as_py()


def value_pa(values: list[int]) -> object:
    import pyarrow as pa

    return pa.array(values, pa.int16())


@needs_softflowd
def test_v9_and_ipfix_give_the_same_records(corpus: Path) -> None:
    capture = corpus / "benign" / "ndpi_android.pcap"  # holds IPv6 and ICMPv6 too
    v9 = decode_all(softflowd_datagrams(capture, 9)).flush()
    ipfix = decode_all(softflowd_datagrams(capture, 10)).flush()
    keys = ["src_ip", "dst_ip", "src_port", "dst_port", "protocol", "packets", "bytes"]
    assert sorted(v9.select(keys).to_pylist(), key=str) == sorted(
        ipfix.select(keys).to_pylist(), key=str
    )
    assert any(":" in ip for ip in v9["src_ip"].to_pylist())


@needs_softflowd
def test_a_lost_datagram_is_a_sequence_gap(corpus: Path) -> None:
    datagrams = softflowd_datagrams(corpus / "benign" / "ndpi_android.pcap", 5)
    assert len(datagrams) >= 3
    decoder = decode_all(datagrams[:1] + datagrams[2:])
    (gap,) = decoder.sequences.gaps()
    lost = struct.unpack_from(">H", datagrams[1], 2)[0]
    assert (gap.gaps, gap.missing, gap.unit) == (1, lost, "records")


@needs_softflowd
def test_data_before_its_template_is_held_then_decoded(corpus: Path) -> None:
    datagrams = softflowd_datagrams(corpus / "benign" / "ndpi_android.pcap", 9)
    reference = decode_all(datagrams).flush().num_rows
    # the first datagram carries the templates: deliver it last
    decoder = decode_all(datagrams[1:] + datagrams[:1])
    assert decoder.flush().num_rows == reference
    assert decoder.stats.unknown_template_sets == 0


@needs_softflowd
def test_held_data_without_template_expires_and_is_counted(corpus: Path) -> None:
    datagrams = softflowd_datagrams(corpus / "benign" / "ndpi_android.pcap", 10)
    decoder = NetflowDecoder(hold_seconds=1.0)
    for datagram in datagrams[1:]:
        decoder.feed(datagram, "127.0.0.1", now_ns=0)
    held = decoder.pending_sets
    assert held > 0
    decoder.feed(b"\x00\x0a\x00\x03", "127.0.0.1", now_ns=2_000_000_000)
    assert decoder.pending_sets == 0
    assert decoder.stats.unknown_template_sets == held
    assert decoder.flush().num_rows == 0


def _udp_payloads(path: Path) -> list[tuple[bytes, str, int]]:
    headers = decode_headers(read_capture(path))
    out = []
    for i in range(len(headers)):
        if headers.proto[i] != 17 or headers.payload_len[i] == 0:
            continue
        start = int(headers.payload_off[i])
        payload = bytes(headers.buf[start : start + int(headers.payload_len[i])])
        src = int(headers.src_lo[i]) & 0xFFFFFFFF
        out.append((payload, socket.inet_ntoa(src.to_bytes(4, "big")), int(headers.ts_ns[i])))
    return out


def test_corpus_v9_capture_without_templates_is_counted_not_fatal(corpus: Path) -> None:
    # nDPI's capture starts after the router sent its templates: every data set is unknown
    decoder = NetflowDecoder()
    payloads = _udp_payloads(corpus / "benign" / "ndpi_netflowv9.pcap")
    for payload, exporter, ts in payloads:
        decoder.feed(payload, exporter, ts)
    assert decoder.stats.by_version == {9: len(payloads)}
    assert decoder.stats.malformed == {}
    held = decoder.pending_sets
    decoder.drop_pending()
    assert held > 0 and decoder.stats.unknown_template_sets == held
    assert decoder.flush().num_rows == 0


def test_corpus_ipfix_templates_are_learnt(corpus: Path) -> None:
    decoder = NetflowDecoder()
    payloads = _udp_payloads(corpus / "benign" / "ndpi_netflow-fritz.pcap")
    for payload, exporter, ts in payloads:
        decoder.feed(payload, exporter, ts)
    assert decoder.stats.malformed == {}
    assert decoder.stats.templates >= 1
    assert len(decoder.templates) == decoder.stats.templates


def test_ipv4_text_matches_inet_ntoa() -> None:
    values = np.random.default_rng(1).integers(0, 2**32, 5000, dtype=np.uint64)
    values[:3] = [0, 2**32 - 1, 0x0A000001]
    expected = [socket.inet_ntoa(int(v).to_bytes(4, "big")) for v in values]
    assert ipv4_text(values.astype(np.uint32)).to_pylist() == expected


def test_ipv6_text_matches_inet_ntop() -> None:
    raw = np.random.default_rng(2).integers(0, 256, (300, 16), dtype=np.uint8)
    raw[:50, :10] = 0  # zero runs exercise the '::' rule
    expected = [socket.inet_ntop(socket.AF_INET6, row.tobytes()) for row in raw]
    assert ipv6_text(raw).to_pylist() == expected


def test_sequence_tracker_learns_an_inclusive_counter() -> None:
    tracker = SequenceTracker()
    # counts 10, 20, 5 with the sequence already including each message's own records
    for seq, count in ((10, 10), (30, 20), (35, 5), (45, 10)):
        tracker.observe("192.0.2.1", 0, 10, seq, count)
    assert tracker.gaps() == []
    tracker.observe("192.0.2.1", 0, 10, 100, 10)  # 45 of them lost
    (gap,) = tracker.gaps()
    assert gap.missing == 100 - 10 - 45


# -- bad input ---------------------------------------------------------------------------------


def _ipfix(sets: bytes, sequence: int = 0) -> bytes:
    return struct.pack(">HHIII", 10, 16 + len(sets), 0, sequence, 1) + sets


def _template_set(template_id: int, fields: list[tuple[int, int]]) -> bytes:
    body = struct.pack(">HH", template_id, len(fields)) + b"".join(
        struct.pack(">HH", e, n) for e, n in fields
    )
    return struct.pack(">HH", 2, 4 + len(body)) + body


def test_zero_length_and_absurd_templates_are_counted() -> None:
    decoder = NetflowDecoder()
    decoder.feed(_ipfix(_template_set(300, [(8, 0), (12, 0)])), "192.0.2.9", 0)
    assert decoder.stats.malformed == {"template with zero-length records": 1}
    absurd = struct.pack(">HH", 2, 8) + struct.pack(">HH", 301, 5000)
    decoder.feed(_ipfix(absurd), "192.0.2.9", 0)
    assert decoder.stats.malformed_total == 2
    assert decoder.flush().num_rows == 0


def test_variable_length_template_is_decoded() -> None:
    decoder = NetflowDecoder()
    fields = [(8, 4), (12, 4), (82, 65535), (2, 4), (1, 4)]  # 82: interfaceName, variable
    records = b""
    for i, name in enumerate((b"eth0", b"", b"x" * 300)):
        size = bytes([len(name)]) if len(name) < 255 else b"\xff" + struct.pack(">H", len(name))
        records += struct.pack(">II", 0x0A000001 + i, 0xC0000201) + size + name
        records += struct.pack(">II", i + 1, 100 * (i + 1))
    data = struct.pack(">HH", 400, 4 + len(records)) + records
    decoder.feed(_ipfix(_template_set(400, fields) + data), "192.0.2.9", 0)
    table = decoder.flush()
    assert table["src_ip"].to_pylist() == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert table["bytes"].to_pylist() == [100, 200, 300]


@needs_softflowd
def test_fuzzed_real_datagrams_never_raise(corpus: Path) -> None:
    real = softflowd_datagrams(corpus / "benign" / "ndpi_android.pcap", 10)
    real += softflowd_datagrams(corpus / "benign" / "ndpi_android.pcap", 9)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        which=st.integers(0, len(real) - 1),
        cut=st.integers(0, 2000),
        flips=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=8),
    )
    def check(which: int, cut: int, flips: list[tuple[int, int]]) -> None:
        data = bytearray(real[which][:cut])
        for at, value in flips:
            if at < len(data):
                data[at] = value
        decoder = NetflowDecoder()
        decoder.feed(real[0], "127.0.0.1", 0)  # templates first
        decoder.feed(bytes(data), "127.0.0.1", 1)
        table = decoder.flush()
        assert table.schema == FLOW_SCHEMA
        assert decoder.stats.datagrams == 2

    check()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data: bytes) -> None:
    decoder = NetflowDecoder()
    for prefix in (b"", b"\x00\x05", b"\x00\x09", b"\x00\x0a"):
        decoder.feed(prefix + data, "192.0.2.1", 0)
    table = decoder.flush()
    assert table.schema == FLOW_SCHEMA
    assert decoder.stats.datagrams == 4
