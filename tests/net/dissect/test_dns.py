"""DNS dissector: messages are built byte by byte here, then decoded, cut, corrupted and fuzzed."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minewatch.net.dissect as dissect
from minewatch.net.dissect import (
    DnsAnswer,
    DnsMessage,
    RecordType,
    parse_dns,
    parse_dns_tcp,
)

QR = 0x8000
RD = 0x0100
RA = 0x0080
IN = 1
TYPE_A = 1
TYPE_CNAME = 5
TYPE_SOA = 6
TYPE_MX = 15
TYPE_TXT = 16
TYPE_AAAA = 28
TYPE_OPT = 41


def header(ident: int, flags: int, qd: int, an: int = 0, ns: int = 0, ar: int = 0) -> bytes:
    return struct.pack("!6H", ident, flags, qd, an, ns, ar)


def name(*labels: str) -> bytes:
    """A name in wire form, ending with the root label."""
    return b"".join(bytes([len(x)]) + x.encode() for x in labels) + b"\x00"


def labels_then(pointer_to: int, *labels: str) -> bytes:
    """Labels followed by a compression pointer instead of the root label."""
    return b"".join(bytes([len(x)]) + x.encode() for x in labels) + ptr(pointer_to)


def ptr(offset: int) -> bytes:
    return struct.pack("!H", 0xC000 | offset)


def question(qname: bytes, qtype: int = TYPE_A, qclass: int = IN) -> bytes:
    return qname + struct.pack("!HH", qtype, qclass)


def rr(owner: bytes, rtype: int, ttl: int, rdata: bytes, rclass: int = IN) -> bytes:
    return owner + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def opt(payload_size: int = 1232, ext_rcode: int = 0, options: bytes = b"") -> bytes:
    ttl = ext_rcode << 24
    return b"\x00" + struct.pack("!HHIH", TYPE_OPT, payload_size, ttl, len(options)) + options


def query(qname: str = "xmr-eu1.nanopool.org", ident: int = 0x1234) -> bytes:
    return header(ident, RD, 1, ar=1) + question(name(*qname.split("."))) + opt()


def pool_response() -> bytes:
    """A response for xmr-eu1.nanopool.org: CNAME into the pool's domain, then A and AAAA.

    Offsets: the question name starts at 12; ``nanopool.org`` inside it at 12 + 8 = 20.
    """
    qname = name("XMR-EU1", "nanopool", "org")  # 0x20-style mixed case, as resolvers send it
    body = header(0xBEEF, QR | RD | RA, 1, an=3, ar=1) + question(qname)
    cname_at = len(body)
    # answer 1: owner = pointer to the question, target = "lb" + pointer to "nanopool.org"
    body += rr(ptr(12), TYPE_CNAME, 300, labels_then(20, "lb"))
    target_at = cname_at + 2 + 10  # owner pointer (2) + fixed fields (10)
    body += rr(ptr(target_at), TYPE_A, 60, bytes([51, 15, 58, 224]))
    body += rr(ptr(target_at), TYPE_AAAA, 60, bytes.fromhex("20010db8000000000000000000000001"))
    return body + opt()


def test_query_is_decoded() -> None:
    msg = parse_dns(query("Pool.SupportXMR.com", ident=7))
    assert msg == DnsMessage(id=7, is_response=False, rcode=0, questions=["pool.supportxmr.com"])


def test_response_with_compression_pointers() -> None:
    msg = parse_dns(pool_response())
    assert msg is not None
    assert msg.id == 0xBEEF and msg.is_response and msg.rcode == 0
    assert msg.questions == ["xmr-eu1.nanopool.org"]
    assert msg.answers == [
        DnsAnswer("xmr-eu1.nanopool.org", RecordType.CNAME, 300, "lb.nanopool.org"),
        DnsAnswer("lb.nanopool.org", RecordType.A, 60, "51.15.58.224"),
        DnsAnswer("lb.nanopool.org", RecordType.AAAA, 60, "2001:db8::1"),
    ]


def test_pointer_chain_through_several_names() -> None:
    # a -> pointer to b's labels -> pointer to the question's suffix: each jump goes backwards
    body = header(1, QR, 1, an=2) + question(name("pool", "example", "org"))  # example at 17
    first = len(body)
    body += rr(labels_then(17, "eu"), TYPE_CNAME, 10, labels_then(first, "x"))
    second_target = first + len(labels_then(17, "eu")) + 10
    body += rr(ptr(second_target), TYPE_A, 10, bytes([192, 0, 2, 7]))
    msg = parse_dns(body)
    assert msg is not None
    assert [a.name for a in msg.answers] == ["eu.example.org", "x.eu.example.org"]
    assert msg.answers[0].value == "x.eu.example.org"


@pytest.mark.parametrize(
    "bad_name",
    [
        pytest.param(ptr(12), id="pointer-to-itself"),
        pytest.param(ptr(40), id="pointer-forward"),
        pytest.param(ptr(2), id="pointer-into-header"),
        pytest.param(b"\x01a" + ptr(12), id="pointer-back-to-own-start"),
        pytest.param(b"\x40" + b"a" * 64 + b"\x00", id="extended-label-type"),
        pytest.param(b"\x80\x00", id="reserved-label-type"),
        pytest.param(name("bad label"), id="space-in-label"),
        pytest.param(name("caf\xe9"), id="non-ascii-label"),
        pytest.param(name(*["a" * 63] * 4), id="name-over-255-octets"),
    ],
)
def test_bad_names_are_rejected(bad_name: bytes) -> None:
    assert parse_dns(header(1, RD, 1) + question(bad_name) + b"\x00" * 30) is None
    assert parse_dns(header(1, RD, 1) + question(bad_name)) is None


def test_pointer_loop_between_two_names_terminates() -> None:
    # Name A (question) ends in a pointer to B, which lies after it: forward, so rejected.
    # Name B (answer owner) points back to A. Either way decoding ends and gives None.
    a = b"\x01a" + ptr(20)
    body = header(1, QR, 1, an=1) + question(a)
    body += rr(b"\x01b" + ptr(12), TYPE_A, 1, bytes(4))
    assert parse_dns(body) is None


def test_longest_legal_name_is_accepted() -> None:
    labels = ["a" * 63, "b" * 63, "c" * 63, "d" * 61]  # 255 octets on the wire
    msg = parse_dns(header(1, RD, 1) + question(name(*labels)))
    assert msg is not None and len(msg.questions[0]) == 253


def test_edns_extended_rcode_and_skipped_record_types() -> None:
    qname = name("pool", "example")
    body = header(9, QR | 0x0003, 1, an=1, ns=1, ar=2) + question(qname, TYPE_MX)
    body += rr(ptr(12), TYPE_MX, 30, struct.pack("!H", 10) + ptr(12))  # kept out of answers
    soa = ptr(12) + ptr(12) + struct.pack("!5I", 1, 2, 3, 4, 5)
    body += rr(ptr(12), TYPE_SOA, 30, soa)
    body += rr(ptr(12), TYPE_TXT, 30, b"\x02hi")
    body += opt(ext_rcode=1)
    msg = parse_dns(body)
    assert msg is not None
    assert msg.answers == []
    assert msg.rcode == (1 << 4) | 3


def test_tcp_form() -> None:
    first = pool_response()
    second = query()
    framed = struct.pack("!H", len(first)) + first + struct.pack("!H", len(second)) + second
    assert parse_dns_tcp(framed) == parse_dns(first)
    assert parse_dns_tcp(framed[: 2 + len(first) - 1]) is None
    assert parse_dns_tcp(b"\x00") is None
    assert parse_dns_tcp(struct.pack("!H", 5) + b"\x00" * 5) is None


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(header(1, 0x0800 | RD, 1) + question(name("a", "b")), id="opcode-inverse"),
        pytest.param(header(1, 0x2800, 1) + question(name("a", "b")), id="opcode-update"),
        pytest.param(header(1, RD | 0x0040, 1) + question(name("a", "b")), id="z-bit"),
        pytest.param(header(1, QR | 0x000C, 1) + question(name("a", "b")), id="rcode-12"),
        pytest.param(header(1, RD, 0), id="no-question"),
        pytest.param(header(1, RD, 5) + question(name("a", "b")) * 5, id="five-questions"),
        pytest.param(header(1, RD | 0x0002, 1) + question(name("a", "b")), id="query-with-rcode"),
        pytest.param(
            header(1, RD, 1, an=1) + question(name("a")) + rr(ptr(12), TYPE_A, 1, bytes(4)),
            id="query-with-answer",
        ),
        pytest.param(header(1, RD, 1) + question(name("a"), qtype=0), id="qtype-0"),
        pytest.param(header(1, RD, 1) + question(name("a"), qclass=2), id="qclass-2"),
        pytest.param(header(1, RD, 1, ar=1) + question(name("a")) + opt() + b"\x00", id="trailer"),
        pytest.param(header(1, RD, 1, ar=5) + question(name("a")) + opt(), id="counts-too-big"),
    ],
)
def test_implausible_headers_are_rejected(payload: bytes) -> None:
    assert parse_dns(payload) is None


def _response_with(answer: bytes, *, an: int = 1, ar: bytes = b"", arcount: int = 0) -> bytes:
    return header(1, QR, 1, an=an, ar=arcount) + question(name("a", "b")) + answer + ar


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(_response_with(rr(ptr(12), TYPE_A, 1, bytes(5))), id="a-5-bytes"),
        pytest.param(_response_with(rr(ptr(12), TYPE_AAAA, 1, bytes(4))), id="aaaa-4-bytes"),
        pytest.param(
            _response_with(rr(ptr(12), TYPE_CNAME, 1, name("c") + b"\x00")), id="cname-extra"
        ),
        pytest.param(_response_with(rr(ptr(12), TYPE_CNAME, 1, b"\x01c")), id="cname-short"),
        pytest.param(_response_with(rr(ptr(12), TYPE_A, 0x8000_0000, bytes(4))), id="ttl-msb"),
        pytest.param(_response_with(rr(ptr(12), TYPE_A, 1, bytes(4), rclass=9)), id="class-9"),
        pytest.param(_response_with(rr(ptr(12), 0, 1, b"")), id="type-0"),
        pytest.param(_response_with(opt()), id="opt-in-answers"),
        pytest.param(_response_with(b"", an=0, ar=opt() + opt(), arcount=2), id="two-opts"),
        pytest.param(
            _response_with(b"", an=0, ar=rr(ptr(12), TYPE_OPT, 0, b""), arcount=1),
            id="opt-not-on-root",
        ),
        pytest.param(
            _response_with(rr(ptr(12), TYPE_A, 1, bytes(4))[:-1] + b"\x00\x00"), id="rdlen-over"
        ),
    ],
)
def test_malformed_records_are_rejected(payload: bytes) -> None:
    assert parse_dns(payload) is None


@pytest.mark.parametrize("whole", [query(), pool_response()], ids=["query", "response"])
def test_truncation_at_every_byte(whole: bytes) -> None:
    assert parse_dns(whole) is not None
    for cut in range(len(whole)):
        assert parse_dns(whole[:cut]) is None
        assert parse_dns_tcp(struct.pack("!H", len(whole)) + whole[:cut]) is None


def test_single_byte_corruptions_never_raise() -> None:
    whole = pool_response()
    for at in range(len(whole)):
        for value in (0x00, 0x3F, 0x40, 0xC0, 0xFF, whole[at] ^ 0x01):
            mutated = whole[:at] + bytes([value]) + whole[at + 1 :]
            result = parse_dns(mutated)
            assert result is None or isinstance(result, DnsMessage)


def test_random_payloads_rarely_pass_for_dns() -> None:
    rng = random.Random(20261126)
    passed = sum(
        parse_dns(rng.randbytes(rng.randrange(12, 600))) is not None for _ in range(20_000)
    )
    assert passed <= 2


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=700))
def test_random_bytes_never_raise(data: bytes) -> None:
    assert parse_dns(data) is None or isinstance(parse_dns(data), DnsMessage)
    assert parse_dns_tcp(data) is None or isinstance(parse_dns_tcp(data), DnsMessage)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=64), st.integers(min_value=12, max_value=200))
def test_spliced_valid_prefix_never_raises(tail: bytes, cut: int) -> None:
    whole = pool_response()
    result = parse_dns(whole[:cut] + tail)
    assert result is None or isinstance(result, DnsMessage)


def test_accepts_bytearray_and_memoryview() -> None:
    whole = pool_response()
    assert parse_dns(bytearray(whole)) == parse_dns(memoryview(whole)) == parse_dns(whole)


def test_package_exports_are_complete() -> None:
    public = {n for n in vars(dissect) if not n.startswith("_")} - {"dns", "tls"}
    assert set(dissect.__all__) == public


def test_question_name_agrees_with_the_full_parser_on_the_corpus() -> None:
    """The quick first look names the same question as the full parse wherever that succeeds."""
    from minewatch.net.capture.decode import PROTO_UDP, decode_headers
    from minewatch.net.capture.reader import read_capture
    from minewatch.net.dissect.dns import question_name
    from tests.conftest import CORPUS

    files = sorted(CORPUS.glob("*/*.pcap*"))
    if not files:
        pytest.skip("corpus not available")
    checked = 0
    for path in files:
        h = decode_headers(read_capture(path))
        udp = h.proto == PROTO_UDP
        for off, length in zip(
            h.payload_off[udp].tolist(), h.payload_len[udp].tolist(), strict=True
        ):
            payload = h.buf[off : off + length].tobytes()
            full = parse_dns(payload)
            if full is not None and full.questions:
                assert question_name(payload) == full.questions[0]
                checked += 1
    assert checked > 500
