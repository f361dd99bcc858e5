"""records_from_headers / read_capture_flows: packets to FLOW_SCHEMA records.

Captures are built with the project's packet writer; TLS ClientHellos come from the real OpenSSL
(Python's ssl module) and JA3 is checked against tshark on the corpus.
"""

from __future__ import annotations

import shutil
import ssl
import struct
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from minewatch.net.capture.decode import PacketHeaders, decode_headers
from minewatch.net.capture.reader import read_capture
from minewatch.net.capture.writer import (
    Direction,
    LinkType,
    TcpSession,
    frame,
    ipv4_udp,
    write_pcap,
)
from minewatch.net.dissect.tls import parse_client_hello
from minewatch.net.flowrec import from_packets
from minewatch.net.flowrec.from_packets import (
    OpenState,
    attach_dns_names,
    dns_answers,
    ja3,
    ja4,
    read_capture_flows,
    records_from_headers,
)
from minewatch.net.flowrec.table import FLOW_SCHEMA
from minewatch.net.flows import _flow_keys

T0 = 1_700_000_040_000_000_000  # 40 s into a minute
MINUTE = 60_000_000_000
JOB = b'{"jsonrpc":"2.0","method":"job","params":{"blob":"' + b"ab" * 70 + b'"}}\n'
SUBMIT = b'{"id":3,"jsonrpc":"2.0","method":"submit","params":{"nonce":"0a1b2c3d"}}\n'


def client_hello(server_name: str | None = "pool.example") -> bytes:
    """A real ClientHello as OpenSSL writes it."""
    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        conn.do_handshake()
    return outgoing.read()


def headers(
    tmp_path: Path, records: list[tuple[int, bytes]], name: str = "c.pcap"
) -> PacketHeaders:
    path = write_pcap(tmp_path / name, sorted(records, key=lambda r: r[0]), LinkType.ETHERNET)
    return decode_headers(read_capture(path))


def pool_session(
    client: str = "10.0.0.5", port: int = 40000, step_ns: int = 5 * 10**9
) -> TcpSession:
    return TcpSession(client, port, "198.51.100.7", 443, start_ns=T0, step_ns=step_ns)


MESSAGES = [(Direction.TO_CLIENT, JOB), (Direction.TO_SERVER, SUBMIT)] * 10


def test_one_record_per_connection_and_slice(tmp_path: Path) -> None:
    session = pool_session()
    packets = session.frames(MESSAGES)
    h = headers(tmp_path, packets)
    flows = records_from_headers(h)
    assert flows.schema == FLOW_SCHEMA
    ts = [t for t, _ in packets]
    slices = sorted({t // MINUTE for t in ts})
    assert flows.num_rows == len(slices)
    assert [s // MINUTE for s in flows.column("start_ns").to_pylist()] == slices
    for row in flows.to_pylist():
        assert row["start_ns"] // MINUTE == row["end_ns"] // MINUTE
        assert (row["src_ip"], row["src_port"]) == ("10.0.0.5", 40000)
        assert (row["dst_ip"], row["dst_port"]) == ("198.51.100.7", 443)
        assert row["initiator"] == 1
        assert row["protocol"] == 6
        assert row["source"] == "pcap"
    # Totals: every packet counted once, bytes are IP-layer bytes (link header excluded).
    ip_packets = session.packets(MESSAGES)
    total_bytes = sum(len(p) for _, p in ip_packets)
    got_bytes = pc.sum(flows.column("bytes")).as_py() + pc.sum(flows.column("rev_bytes")).as_py()
    assert got_bytes == total_bytes
    packets_total = pc.sum(flows["packets"]).as_py() + pc.sum(flows["rev_packets"]).as_py()
    assert packets_total == len(packets)
    assert pc.sum(flows["payload_packets"]).as_py() == 10  # the submits
    assert pc.sum(flows["rev_payload_packets"]).as_py() == 10  # the jobs
    flags = 0
    for f in flows["tcp_flags"].to_pylist():
        flags |= f
    assert flags & 0x02 and flags & 0x01 and flags & 0x10  # SYN, FIN and ACK were seen


def test_slices_line_up_across_batches(tmp_path: Path) -> None:
    """Converting two halves separately and adding up records by key gives the whole."""
    packets = sorted(pool_session(step_ns=7 * 10**9).frames(MESSAGES), key=lambda r: r[0])
    whole = records_from_headers(headers(tmp_path, packets, "all.pcap"))
    cut = len(packets) // 2 + 1  # inside a slice, not on a boundary
    parts = pa.concat_tables(
        [
            records_from_headers(headers(tmp_path, packets[:cut], "a.pcap")),
            records_from_headers(headers(tmp_path, packets[cut:], "b.pcap")),
        ]
    )

    # The second half has no SYN, so its sender order may differ: orient by endpoints.
    def merged(table: pa.Table) -> dict[tuple[int, str, int], tuple[int, int]]:
        out: dict[tuple[int, str, int], tuple[int, int]] = {}
        for r in table.to_pylist():
            fwd = r["src_ip"] == "10.0.0.5"
            to_server = r["bytes"] if fwd else r["rev_bytes"]
            to_client = r["rev_bytes"] if fwd else r["bytes"]
            key = (r["start_ns"] // MINUTE, "10.0.0.5", 40000)
            a, b = out.get(key, (0, 0))
            out[key] = (a + to_server, b + to_client)
        return out

    assert merged(parts) == merged(whole)
    assert parts.num_rows == whole.num_rows + 1  # the cut slice is present in both halves


def test_without_a_syn_the_first_sender_is_src_and_the_opener_unknown(tmp_path: Path) -> None:
    session = pool_session()
    packets = session.frames(MESSAGES, mid_stream_from=0)  # capture starts mid-stream
    flows = records_from_headers(headers(tmp_path, packets))
    assert set(flows["initiator"].to_pylist()) == {0}
    assert set(flows["src_ip"].to_pylist()) == {"198.51.100.7"}  # the job push came first
    assert pc.sum(flows["payload_packets"]).as_py() == 10  # jobs, now src -> dst


def test_udp_flows_and_ipv6_addresses(tmp_path: Path) -> None:
    from minewatch.net.capture.writer import ipv6_udp

    records = [
        (T0 + i * 10**9, frame(ipv6_udp("2001:db8::5", "2001:db8::7", 5000, 6000, b"x" * 50), 1))
        for i in range(3)
    ]
    records.append((T0 + 4 * 10**9, frame(ipv6_udp("2001:db8::7", "2001:db8::5", 6000, 5000), 1)))
    flows = records_from_headers(headers(tmp_path, records))
    [row] = flows.to_pylist()
    assert (row["src_ip"], row["dst_ip"], row["protocol"]) == ("2001:db8::5", "2001:db8::7", 17)
    assert (row["packets"], row["rev_packets"], row["initiator"]) == (3, 1, 0)
    assert row["bytes"] == 3 * (40 + 8 + 50)
    assert row["rev_payload_packets"] == 0


def test_client_hello_gives_sni_ja3_ja4(tmp_path: Path) -> None:
    hello = client_hello("pool.example")
    messages = [(Direction.TO_SERVER, hello), *MESSAGES]
    flows = records_from_headers(headers(tmp_path, pool_session().frames(messages)))
    parsed = parse_client_hello(hello)
    assert parsed is not None
    assert set(flows["sni"].to_pylist()) == {"pool.example"}  # every slice of the connection
    assert set(flows["ja3"].to_pylist()) == {ja3(parsed)}
    assert set(flows["ja4"].to_pylist()) == {ja4(parsed)}


def test_client_hello_split_over_segments(tmp_path: Path) -> None:
    hello = client_hello("split.pool.example")
    messages = [(Direction.TO_SERVER, hello), *MESSAGES]
    packets = pool_session().frames(messages, segment_sizes={0: [100, 150]})
    flows = records_from_headers(headers(tmp_path, packets))
    assert set(flows["sni"].to_pylist()) == {"split.pool.example"}


def test_client_hello_sender_is_the_client_without_a_syn(tmp_path: Path) -> None:
    hello = client_hello("pool.example")
    # Mid-stream capture where the server's bare ACK precedes the hello.
    session = pool_session()
    messages = [(Direction.TO_CLIENT, b""), (Direction.TO_SERVER, hello), *MESSAGES]
    packets = [p for p in session.frames(messages, mid_stream_from=0)]
    flows = records_from_headers(headers(tmp_path, packets))
    assert set(flows["src_ip"].to_pylist()) == {"10.0.0.5"}
    assert set(flows["initiator"].to_pylist()) == {1}


def test_tls_off_leaves_fingerprints_empty(tmp_path: Path) -> None:
    messages = [(Direction.TO_SERVER, client_hello()), *MESSAGES]
    flows = records_from_headers(headers(tmp_path, pool_session().frames(messages)), tls=False)
    assert flows["sni"].null_count == flows.num_rows


def test_ja4_shape() -> None:
    parsed = parse_client_hello(client_hello("pool.example"))
    assert parsed is not None
    a, b, c = ja4(parsed).split("_")
    ciphers = [v for v in parsed.cipher_suites if (v & 0x0F0F) != 0x0A0A]
    assert a.startswith("t13d")  # TCP, TLS 1.3 offered, SNI present
    assert int(a[4:6]) == len(ciphers)
    assert a[-2:] == "h2"  # first and last character of the first ALPN value
    assert len(b) == len(c) == 12
    no_sni = parse_client_hello(client_hello(None))
    assert no_sni is not None
    assert ja4(no_sni)[3] == "i"


def dns_response(name: str, address: str, ident: int = 7) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    header = struct.pack(">HHHHHH", ident, 0x8180, 1, 1, 0, 0)
    question = labels + struct.pack(">HH", 1, 1)
    answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 300, 4) + bytes(map(int, address.split(".")))
    return header + question + answer


def test_dns_answer_names_the_server(tmp_path: Path) -> None:
    dns = (T0 - 10**9, frame(ipv4_udp("10.0.0.1", "10.0.0.5", 53, 5353,
                                       dns_response("xmr.pool.example", "198.51.100.7")), 1))  # fmt: skip
    other = (T0 - 10**9, frame(ipv4_udp("10.0.0.1", "10.0.0.5", 53, 5354,
                                         dns_response("web.example", "203.0.113.9")), 1))  # fmt: skip
    h = headers(tmp_path, [dns, other, *pool_session().frames(MESSAGES)])
    answers = dns_answers(h)
    assert sorted(answers["name"].to_pylist()) == ["web.example", "xmr.pool.example"]
    flows = records_from_headers(h)
    pool = flows.filter(pc.equal(flows["dst_ip"], "198.51.100.7"))
    assert set(pool["dns_name"].to_pylist()) == {"xmr.pool.example"}
    dns_rows = flows.filter(pc.equal(flows["protocol"], 17))
    assert dns_rows["dns_name"].null_count == dns_rows.num_rows


def test_dns_answer_after_the_record_is_not_used(tmp_path: Path) -> None:
    late = (T0 + 3600 * 10**9, frame(ipv4_udp("10.0.0.1", "10.0.0.5", 53, 5353,
                                               dns_response("late.example", "198.51.100.7")), 1))  # fmt: skip
    h = headers(tmp_path, [late, *pool_session().frames(MESSAGES)])
    flows = records_from_headers(h)
    tcp = flows.filter(pc.equal(flows["protocol"], 6))
    assert tcp["dns_name"].null_count == tcp.num_rows
    # ... and a name already present is kept.
    named = attach_dns_names(
        tcp.set_column(tcp.schema.get_field_index("dns_name"), "dns_name",
                       pa.array(["kept.example"] * tcp.num_rows)),
        dns_answers(h),
    )  # fmt: skip
    assert set(named["dns_name"].to_pylist()) == {"kept.example"}


def test_key_collisions_fall_back_to_exact_grouping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packets = pool_session().frames(MESSAGES) + pool_session("10.0.0.6", 41000).frames(MESSAGES)
    h = headers(tmp_path, packets)
    expected = records_from_headers(h)

    def colliding(h: PacketHeaders) -> tuple[np.ndarray, np.ndarray]:
        key, src_first = _flow_keys(
            h.src_hi, h.src_lo, h.dst_hi, h.dst_lo, h.sport, h.dport, h.proto
        )
        return np.zeros_like(key), src_first

    monkeypatch.setattr(from_packets, "_keys", colliding)
    got = records_from_headers(h)
    assert got.num_rows == expected.num_rows
    assert sorted(got.to_pylist(), key=str) == sorted(expected.to_pylist(), key=str)


def test_empty_and_bad_inputs(tmp_path: Path) -> None:
    empty = write_pcap(tmp_path / "empty.pcap", [], LinkType.ETHERNET)
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture at all")
    flows, problems = read_capture_flows([empty, junk, tmp_path / "missing.pcap"])
    assert flows.num_rows == 0
    assert flows.schema == FLOW_SCHEMA
    assert {Path(p.path).name for p in problems} == {"junk.pcap", "missing.pcap"}
    with pytest.raises(ValueError, match="slice_ns"):
        records_from_headers(decode_headers(read_capture(empty)), slice_ns=0)


# --- the corpus ---------------------------------------------------------------------------------


@pytest.mark.corpus
def test_real_tls_mining_capture(corpus: Path) -> None:
    flows, problems = read_capture_flows([corpus / "mining/local_xmrig_stratum_tls_loopback.pcap"])
    assert problems == []
    pool = flows.filter(pc.equal(flows["dst_port"], 3443))
    assert pool.num_rows >= 1
    assert set(pool["initiator"].to_pylist()) == {1}
    assert pool["ja3"].null_count == 0
    assert pc.sum(pool["payload_packets"]).as_py() > 0
    assert pc.sum(pool["rev_payload_packets"]).as_py() > 0


@pytest.mark.corpus
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
@pytest.mark.parametrize(
    "name",
    [
        "mining/local_xmrig_stratum_tls_loopback.pcap",
        "benign/ndpi_443-curl.pcap",
        "benign/ndpi_443-firefox.pcap",
        "benign/ndpi_chrome.pcap",
        "benign/ndpi_android.pcap",
        "benign/ndpi_smtp-starttls.pcap",
    ],
)
def test_ja3_agrees_with_tshark(corpus: Path, name: str) -> None:
    path = corpus / name
    if not path.is_file():
        pytest.skip(f"{name} not in this corpus")
    out = subprocess.run(
        ["tshark", "-r", str(path), "-Y", "tls.handshake.type == 1", "-T", "fields",
         "-e", "tls.handshake.ja3"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    expected = {line.strip() for line in out.splitlines() if line.strip()}
    flows, _ = read_capture_flows([path])
    got = {v for v in flows["ja3"].to_pylist() if v is not None}
    assert got
    assert got <= expected


@pytest.mark.corpus
def test_whole_corpus_converts(corpus: Path) -> None:
    flows, problems = read_capture_flows([corpus])
    assert problems == []
    assert flows.schema == FLOW_SCHEMA
    assert flows.num_rows > 1000
    assert pc.all(pc.less_equal(flows["start_ns"], flows["end_ns"])).as_py()
    assert pc.all(pc.greater(pc.add(flows["packets"], flows["rev_packets"]), 0)).as_py()
    assert flows["sni"].null_count < flows.num_rows
    assert flows["dns_name"].null_count < flows.num_rows


# --- who opens exchanges, and with what rhythm ---------------------------------------------------

START = (T0 // MINUTE + 1) * MINUTE + 10**8  # 0.1 s into a minute
SECOND_NS = 10**9
REPLY = b'{"id":3,"jsonrpc":"2.0","result":{"status":"OK"}}\n'
# (seconds from the start, who speaks, what): a pool session with hand-checked opens.
TIMELINE: list[tuple[float, Direction, bytes]] = [
    (0.0, Direction.TO_SERVER, SUBMIT),  # first payload after the handshake: client opens
    (0.005, Direction.TO_CLIENT, REPLY),
    (10.0, Direction.TO_CLIENT, JOB),  # server opens
    (13.0, Direction.TO_SERVER, SUBMIT),  # client opens
    (13.004, Direction.TO_CLIENT, REPLY),
    (13.5, Direction.TO_SERVER, SUBMIT),  # 0.5 s after a payload: not an open
    (13.503, Direction.TO_CLIENT, REPLY),
    (25.0, Direction.TO_CLIENT, JOB),  # server opens
    (40.0, Direction.TO_CLIENT, JOB),  # server opens
    (41.0, Direction.TO_SERVER, SUBMIT),  # exactly OPEN_IDLE_S after: client opens
    (41.002, Direction.TO_CLIENT, REPLY),
    (70.0, Direction.TO_SERVER, SUBMIT),  # client opens, in the second minute
    (70.002, Direction.TO_CLIENT, REPLY),
]


def timed_session(
    events: list[tuple[float, Direction, bytes]], start_ns: int
) -> list[tuple[int, bytes]]:
    """Frames of a TCP session whose messages leave at the given times (each acknowledged 1 ms
    later; handshake 3 ms before the first message, close 1 s after the last)."""
    session = TcpSession("10.0.0.5", 40000, "198.51.100.7", 443, start_ns=start_ns)
    segments = session.segments([(d, m) for _, d, m in events])
    times = [start_ns - 3_000_000, start_ns - 2_000_000, start_ns - 1_000_000]
    for t, _, _ in events:
        at = start_ns + round(t * SECOND_NS)
        times += [at, at + 1_000_000]
    end = times[-1] + SECOND_NS
    times += [end, end + 1_000_000, end + 2_000_000]
    assert len(times) == len(segments)
    return [
        (ts, frame(session.packet(seg), LinkType.ETHERNET))
        for ts, seg in zip(times, segments, strict=True)
    ]


def test_opens_and_their_intervals_follow_the_timeline(tmp_path: Path) -> None:
    h = headers(tmp_path, timed_session(TIMELINE, START))
    (row,) = records_from_headers(h, slice_ns=3600 * SECOND_NS).to_pylist()
    assert row["src_port"] == 40000  # oriented client -> server
    assert (row["opens"], row["rev_opens"]) == (4, 3)
    # Client opens at 0, 13, 41, 70 s; server opens at 10, 25, 40 s.
    assert row["open_gaps"] == 3
    assert row["open_gap_sum"] == pytest.approx(70.0)
    assert row["open_gap_sumsq"] == pytest.approx(13**2 + 28**2 + 29**2)
    assert row["rev_open_gaps"] == 2
    assert row["rev_open_gap_sum"] == pytest.approx(30.0)
    assert row["rev_open_gap_sumsq"] == pytest.approx(2 * 15**2)
    assert row["tls"] is False  # JSON, not TLS records


def test_intervals_count_in_the_slice_of_the_later_open(tmp_path: Path) -> None:
    h = headers(tmp_path, timed_session(TIMELINE, START))
    first, second = records_from_headers(h, slice_ns=MINUTE).to_pylist()
    assert (first["opens"], first["rev_opens"], second["opens"], second["rev_opens"]) == (
        3,
        3,
        1,
        0,
    )
    assert (first["open_gaps"], second["open_gaps"]) == (2, 1)
    assert second["open_gap_sum"] == pytest.approx(29.0)
    assert first["open_gap_sum"] + second["open_gap_sum"] == pytest.approx(70.0)


def test_a_batch_starting_mid_conversation_does_not_guess_an_open(tmp_path: Path) -> None:
    packets = sorted(timed_session(TIMELINE, START), key=lambda r: r[0])
    late = [p for p in packets if p[0] >= START + 13_500_000_000]  # from the 13.5 s submit
    h = headers(tmp_path, late)
    (row,) = records_from_headers(h, slice_ns=3600 * SECOND_NS).to_pylist()
    # The 13.5 s submit may follow a payload the batch did not see: not an open.
    assert (row["opens"], row["rev_opens"]) == (2, 2)  # 41, 70 s; 25, 40 s
    assert (row["open_gaps"], row["rev_open_gaps"]) == (1, 1)


def test_tls_records_are_marked(tmp_path: Path) -> None:
    hello = client_hello()
    app = b"\x17\x03\x03\x00\x40" + bytes(64)
    events = [(0.0, Direction.TO_SERVER, hello), (2.0, Direction.TO_CLIENT, app)]
    h = headers(tmp_path, timed_session(events, START))
    (row,) = records_from_headers(h, slice_ns=MINUTE).to_pylist()
    assert row["tls"] is True
    # A record header claiming more than TLS allows is not TLS.
    events = [(0.0, Direction.TO_SERVER, b"\x17\x03\x03\xff\xff" + bytes(64))]
    h = headers(tmp_path, timed_session(events, START), name="not-tls.pcap")
    (row,) = records_from_headers(h, slice_ns=MINUTE).to_pylist()
    assert row["tls"] is False


def _requests_after_silence(h: PacketHeaders, client_port: int) -> tuple[int, int]:
    """Oracle from the payload text: JSON-RPC *requests* (with a method) by the client and by
    the server that follow a second without payload (or begin the connection)."""
    last = None
    counts = [0, 0]
    for i in np.flatnonzero(h.payload_len > 0).tolist():
        ts = int(h.ts_ns[i])
        data = bytes(h.buf[h.payload_off[i] : h.payload_off[i] + h.payload_len[i]])
        if (last is None or ts - last >= SECOND_NS) and b'"method"' in data:
            counts[0 if int(h.sport[i]) == client_port else 1] += 1
        last = ts
    return counts[0], counts[1]


@pytest.mark.corpus
@pytest.mark.parametrize(
    "name",
    ["mining/local_xmrig_stratum_loopback.pcap", "mining/local_cpuminer_vs_npm_stratum_pool.pcap"],
)
def test_real_stratum_opens_are_submits_and_jobs(corpus: Path, name: str) -> None:
    """In a real pool session, what opens an exchange is a request (a share submit or login by
    the miner, a job or difficulty push by the pool), never a reply."""
    h = decode_headers(read_capture(corpus / name))
    flows = records_from_headers(h, slice_ns=3600 * SECOND_NS)
    (row,) = flows.filter(pc.equal(flows["protocol"], 6)).to_pylist()
    client, server = _requests_after_silence(h, row["src_port"])
    assert (row["opens"], row["rev_opens"]) == (client, server)
    assert row["opens"] >= 3  # shares are submitted unsolicited
    assert row["tls"] is False


@pytest.mark.corpus
def test_real_tls_pool_session_is_marked_tls(corpus: Path) -> None:
    flows, _ = read_capture_flows([corpus / "mining/local_xmrig_stratum_tls_loopback.pcap"])
    tcp = flows.filter(pc.equal(flows["protocol"], 6))
    assert pc.all(tcp["tls"]).as_py() is True
    assert pc.sum(tcp["opens"]).as_py() >= 2  # the miner's submits open exchanges under TLS


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_an_open_state_carries_the_timeline_across_batches(tmp_path: Path, size: int) -> None:
    """Fed a few packets at a time with one OpenState, the opens and intervals add up to those
    of one pass; without it, the batches lose some."""
    packets = sorted(timed_session(TIMELINE, START), key=lambda r: r[0])
    state = OpenState()
    parts = []
    for i in range(0, len(packets), size):
        h = headers(tmp_path, packets[i : i + size], name=f"b{i}.pcap")
        parts.append(records_from_headers(h, slice_ns=3600 * SECOND_NS, opens_state=state))
    got = pa.concat_tables(parts)
    total = {name: pc.sum(got[name]).as_py() for name in ("opens", "rev_opens", "open_gaps",
             "rev_open_gaps", "open_gap_sum", "rev_open_gap_sum")}  # fmt: skip
    assert total["opens"] + total["rev_opens"] == 7  # 4 by the client, 3 by the server
    assert total["open_gaps"] + total["rev_open_gaps"] == 5
    assert total["open_gap_sum"] + total["rev_open_gap_sum"] == pytest.approx(100.0)
    plain = pa.concat_tables(
        [
            records_from_headers(
                headers(tmp_path, packets[i : i + size], name=f"p{i}.pcap"),
                slice_ns=3600 * SECOND_NS,
            )
            for i in range(0, len(packets), size)
        ]
    )
    assert pc.sum(plain["open_gaps"]).as_py() + pc.sum(plain["rev_open_gaps"]).as_py() < 5
