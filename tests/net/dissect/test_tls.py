"""TLS dissector: hellos, server flights and X.509 certificates are built byte by byte here."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minewatch.net.dissect import (
    CertificateNames,
    ClientHello,
    is_grease,
    parse_client_hello,
    parse_server_certificate_names,
    parse_server_certificates,
)

GREASE = 0x2A2A
TLS12, TLS13 = 0x0303, 0x0304


def u8(v: int) -> bytes:
    return struct.pack("!B", v)


def u16(v: int) -> bytes:
    return struct.pack("!H", v)


def u24(v: int) -> bytes:
    return struct.pack("!I", v)[1:]


def vec8(body: bytes) -> bytes:
    return u8(len(body)) + body


def vec16(body: bytes) -> bytes:
    return u16(len(body)) + body


def vec24(body: bytes) -> bytes:
    return u24(len(body)) + body


def ext(ext_type: int, body: bytes) -> bytes:
    return u16(ext_type) + vec16(body)


def u16s(*values: int) -> bytes:
    return b"".join(u16(v) for v in values)


def handshake(msg_type: int, body: bytes) -> bytes:
    return u8(msg_type) + vec24(body)


def records(stream: bytes, version: int = 0x0301, fragment: int = 16384) -> bytes:
    """Cut a handshake stream into handshake records of at most ``fragment`` bytes."""
    out = b""
    for at in range(0, len(stream), fragment):
        piece = stream[at : at + fragment]
        out += u8(22) + u16(version) + u16(len(piece)) + piece
    return out


def sni_ext(host: bytes) -> bytes:
    return ext(0, vec16(u8(0) + vec16(host)))


def alpn_ext(*protocols: bytes) -> bytes:
    return ext(16, vec16(b"".join(vec8(p) for p in protocols)))


def hello_body(
    extensions: bytes | None,
    *,
    version: int = TLS12,
    suites: tuple[int, ...] = (GREASE, 0x1301, 0x1302, 0xC02B),
    session_id: bytes = bytes(32),
) -> bytes:
    body = u16(version) + bytes(range(32)) + vec8(session_id) + vec16(u16s(*suites)) + vec8(b"\0")
    return body if extensions is None else body + vec16(extensions)


def modern_extensions() -> bytes:
    return (
        ext(GREASE, b"")
        + sni_ext(b"XMR.Pool.Example.")
        + ext(23, b"")  # extended_master_secret: kept as a type only
        + ext(10, vec16(u16s(GREASE, 0x001D, 0x0017)))
        + ext(11, vec8(b"\x00"))
        + ext(13, vec16(u16s(0x0403, 0x0804)))
        + alpn_ext(b"h2", b"http/1.1")
        + ext(43, vec8(u16s(GREASE, TLS13, TLS12)))
    )


def client_hello(
    extensions: bytes | None = None,
    *,
    version: int = TLS12,
    suites: tuple[int, ...] = (GREASE, 0x1301, 0x1302, 0xC02B),
    session_id: bytes = bytes(32),
) -> bytes:
    """One record holding a ClientHello (with the modern extensions unless others are given)."""
    exts = modern_extensions() if extensions is None else extensions
    body = hello_body(exts, version=version, suites=suites, session_id=session_id)
    return records(handshake(1, body))


EXPECTED = ClientHello(
    record_version=0x0301,
    legacy_version=TLS12,
    cipher_suites=(GREASE, 0x1301, 0x1302, 0xC02B),
    extensions=(GREASE, 0, 23, 10, 11, 13, 16, 43),
    sni="xmr.pool.example",
    alpn=("h2", "http/1.1"),
    supported_versions=(GREASE, TLS13, TLS12),
    supported_groups=(GREASE, 0x001D, 0x0017),
    ec_point_formats=(0,),
    signature_algorithms=(0x0403, 0x0804),
)


def test_client_hello_fields() -> None:
    hello = parse_client_hello(client_hello())
    assert hello == EXPECTED
    assert hello is not None and hello.max_version == TLS13


def test_client_hello_spanning_records() -> None:
    stream = handshake(1, hello_body(modern_extensions()))
    assert parse_client_hello(records(stream, fragment=37)) == EXPECTED
    # records that follow the hello (here application data) are not part of it
    assert parse_client_hello(records(stream) + b"\x17\x03\x03\x00\x01\x00") == EXPECTED


def test_hello_without_extensions() -> None:
    hello = parse_client_hello(records(handshake(1, hello_body(None, version=0x0300)), 0x0300))
    assert hello is not None
    assert hello.extensions == () and hello.sni is None and hello.alpn == ()
    assert hello.max_version == 0x0300


def test_empty_extension_block_and_unprintable_sni() -> None:
    assert parse_client_hello(client_hello(b"")) is not None
    hello = parse_client_hello(client_hello(sni_ext(b"pool\x00evil")))
    assert hello is not None and hello.sni is None and hello.extensions == (0,)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x17\x03\x01\x00\x05hello", id="application-data-record"),
        pytest.param(b"\x80\x2e\x01\x00\x02", id="sslv2-hello"),
        pytest.param(records(handshake(1, hello_body(b"")), version=0x0200), id="record-v2"),
        pytest.param(records(handshake(2, hello_body(b""))), id="server-hello"),
        pytest.param(client_hello(version=0x0305), id="version-0305"),
        pytest.param(client_hello(suites=()), id="no-cipher-suites"),
        pytest.param(client_hello(session_id=bytes(33)), id="session-id-33"),
        pytest.param(client_hello(sni_ext(b"a") + sni_ext(b"b")), id="duplicate-extension"),
        pytest.param(client_hello(ext(0, vec16(u8(0) + u16(9) + b"a"))), id="sni-short"),
        pytest.param(client_hello(ext(0, vec16(u8(0) + vec16(b"a")) + b"x")), id="sni-long"),
        pytest.param(client_hello(ext(16, vec16(vec8(b"")))), id="alpn-empty-name"),
        pytest.param(client_hello(ext(43, vec8(b"\x03"))), id="versions-odd"),
        pytest.param(client_hello(ext(43, vec8(b""))), id="versions-empty"),
        pytest.param(client_hello(ext(10, vec16(b"\x00"))), id="groups-odd"),
        pytest.param(
            records(handshake(1, hello_body(modern_extensions()) + b"\x00")), id="trailing-byte"
        ),
        pytest.param(
            records(handshake(1, hello_body(modern_extensions())[:-3])), id="extensions-short"
        ),
    ],
)
def test_malformed_hellos_are_rejected(data: bytes) -> None:
    assert parse_client_hello(data) is None


def test_client_hello_truncated_at_every_byte() -> None:
    whole = records(handshake(1, hello_body(modern_extensions())), fragment=50)
    for cut in range(len(whole)):
        assert parse_client_hello(whole[:cut]) is None
    assert parse_client_hello(whole) == EXPECTED


def test_grease() -> None:
    assert all(is_grease(v) for v in (0x0A0A, 0x1A1A, 0xAAAA, 0xFAFA))
    assert not any(is_grease(v) for v in (0x0A1A, 0x1301, 0x0303, 0xABAB))


# --- certificates --------------------------------------------------------------------------------

OID_CN = b"\x06\x03\x55\x04\x03"  # 2.5.4.3 commonName
OID_O = b"\x06\x03\x55\x04\x0a"  # 2.5.4.10 organizationName
OID_C = b"\x06\x03\x55\x04\x06"  # 2.5.4.6 countryName


def der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + content


def atv(oid: bytes, value: bytes, string_tag: int = 0x0C) -> bytes:
    return der(0x30, oid + der(string_tag, value))


def rdn_name(*atvs: bytes) -> bytes:
    return der(0x30, b"".join(der(0x31, a) for a in atvs))


def certificate(subject: bytes, issuer: bytes, *, version: bool = True) -> bytes:
    sig_alg = der(0x30, der(0x06, bytes.fromhex("2a8648ce3d040302")))  # ecdsa-with-SHA256
    validity = der(0x30, der(0x17, b"260101000000Z") + der(0x17, b"270101000000Z"))
    spki = der(0x30, der(0x30, der(0x06, bytes.fromhex("2a8648ce3d0201"))) + der(0x03, bytes(66)))
    tbs = (
        (der(0xA0, der(0x02, b"\x02")) if version else b"")
        + der(0x02, bytes.fromhex("0ae1e6bd51fb3d8f"))
        + sig_alg
        + issuer
        + validity
        + subject
        + spki
    )
    return der(0x30, der(0x30, tbs) + sig_alg + der(0x03, bytes(72)))


LEAF = certificate(
    rdn_name(atv(OID_CN, b"eu.minerpool.pw")),
    rdn_name(atv(OID_C, b"US", 0x13), atv(OID_O, b"Let's Encrypt", 0x13), atv(OID_CN, b"R3", 0x13)),
)
INTERMEDIATE = certificate(
    rdn_name(atv(OID_C, b"US", 0x13), atv(OID_CN, b"R3", 0x13)),
    rdn_name(atv(OID_CN, b"ISRG Root X1", 0x13)),
)


def server_hello(version: int = TLS12, extensions: bytes | None = None) -> bytes:
    body = u16(version) + bytes(32) + vec8(bytes(32)) + u16(0xC02F) + u8(0)
    if extensions is not None:
        body += vec16(extensions)
    return handshake(2, body)


def certificate_msg(*certs: bytes) -> bytes:
    return handshake(11, vec24(b"".join(vec24(c) for c in certs)))


def flight(*messages: bytes, fragment: int = 16384, version: int = TLS12) -> bytes:
    return records(b"".join(messages), version=version, fragment=fragment)


def tls12_flight(fragment: int = 16384) -> bytes:
    return flight(
        server_hello(extensions=ext(0xFF01, b"\x00")),  # renegotiation_info
        certificate_msg(LEAF, INTERMEDIATE),
        handshake(12, bytes(40)),  # server key exchange
        handshake(14, b""),  # server hello done
        fragment=fragment,
    )


def test_server_certificate_names() -> None:
    assert parse_server_certificates(tls12_flight()) == [
        "eu.minerpool.pw",
        "R3",
        "R3",
        "ISRG Root X1",
    ]
    assert parse_server_certificate_names(tls12_flight()) == [
        CertificateNames(subject_cn=("eu.minerpool.pw",), issuer_cn=("R3",)),
        CertificateNames(subject_cn=("R3",), issuer_cn=("ISRG Root X1",)),
    ]


def test_certificates_spanning_many_records() -> None:
    assert parse_server_certificates(tls12_flight(fragment=29)) == parse_server_certificates(
        tls12_flight()
    )


def test_string_types_and_v1_certificates() -> None:
    cert = certificate(
        rdn_name(atv(OID_CN, "pool ümlaut".encode("utf-16-be"), 0x1E)),
        rdn_name(atv(OID_CN, b"caf\xe9", 0x14), atv(OID_CN, b"second", 0x16)),
        version=False,
    )
    names = parse_server_certificate_names(flight(server_hello(), certificate_msg(cert)))
    assert names == [CertificateNames(("pool ümlaut",), ("café", "second"))]


def test_tls13_gives_nothing() -> None:
    hello13 = server_hello(extensions=ext(43, u16(TLS13)))
    assert parse_server_certificates(flight(hello13, certificate_msg(LEAF))) == []
    draft = server_hello(extensions=ext(43, u16(0x7F1C)))
    assert parse_server_certificates(flight(draft, certificate_msg(LEAF))) == []
    assert parse_server_certificates(flight(server_hello(TLS13), certificate_msg(LEAF))) == []


def test_resumed_session_without_certificate() -> None:
    data = flight(server_hello(), handshake(20, bytes(12))) + b"\x14\x03\x03\x00\x01\x01"
    assert parse_server_certificates(data) == []


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(flight(certificate_msg(LEAF)), id="no-server-hello"),
        pytest.param(b"\x15\x03\x03\x00\x02\x02\x28", id="alert"),
        pytest.param(flight(server_hello(0x0200), certificate_msg(LEAF)), id="bad-version"),
        pytest.param(flight(server_hello(), certificate_msg(b"\x30\x80" + LEAF[2:])), id="indef"),
        pytest.param(flight(server_hello(), certificate_msg(b"\x3f" + LEAF[1:])), id="high-tag"),
        pytest.param(flight(server_hello(), certificate_msg(LEAF + b"\x00")), id="der-trailer"),
        pytest.param(
            flight(server_hello(), handshake(11, vec24(vec24(LEAF)) + b"\x00")), id="cert-trailer"
        ),
        pytest.param(
            flight(server_hello(), certificate_msg(der(0x30, der(0x30, der(0x05, b""))))),
            id="no-serial",
        ),
    ],
)
def test_malformed_flights_give_nothing(data: bytes) -> None:
    assert parse_server_certificates(data) == []


def test_server_flight_truncated_at_every_byte() -> None:
    fragment = 100
    whole = tls12_flight(fragment=fragment)
    through_certificate = len(server_hello(extensions=ext(0xFF01, b"\x00")))
    through_certificate += len(certificate_msg(LEAF, INTERMEDIATE))
    # record bytes needed before the Certificate message is complete: its stream bytes plus one
    # 5-byte record header per (started) fragment
    needed = through_certificate + 5 * ((through_certificate - 1) // fragment + 1)
    full = ["eu.minerpool.pw", "R3", "R3", "ISRG Root X1"]
    for cut in range(len(whole) + 1):
        assert parse_server_certificates(whole[:cut]) == (full if cut >= needed else [])


def test_single_byte_corruptions_never_raise() -> None:
    hello = client_hello()
    server = tls12_flight()
    for whole in (hello, server):
        for at in range(len(whole)):
            for value in (0x00, 0x7F, 0x80, 0xFF, whole[at] ^ 0x01):
                mutated = whole[:at] + bytes([value]) + whole[at + 1 :]
                hello_result = parse_client_hello(mutated)
                assert hello_result is None or isinstance(hello_result, ClientHello)
                assert isinstance(parse_server_certificates(mutated), list)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=700))
def test_random_bytes_never_raise(data: bytes) -> None:
    hello = parse_client_hello(data)
    assert hello is None or isinstance(hello, ClientHello)
    assert isinstance(parse_server_certificates(data), list)


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=1, max_value=2), st.binary(max_size=400))
def test_random_handshake_bodies_never_raise(msg_type: int, body: bytes) -> None:
    data = records(handshake(msg_type, body), fragment=97)
    hello = parse_client_hello(data)
    assert hello is None or isinstance(hello, ClientHello)
    assert isinstance(parse_server_certificates(data), list)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_certificates_never_raise(blob: bytes) -> None:
    data = flight(server_hello(), certificate_msg(der(0x30, blob)))
    assert isinstance(parse_server_certificates(data), list)


def test_fast_server_name_agrees_with_the_full_parser_on_the_corpus() -> None:
    """Every ClientHello of the corpus gives the same name on the fast path and the full one."""
    from minewatch.net.capture.decode import decode_headers
    from minewatch.net.capture.reader import read_capture
    from minewatch.net.dissect.tls import client_hello_server_name
    from tests.conftest import CORPUS

    files = sorted(CORPUS.glob("*/*.pcap*"))
    if not files:
        pytest.skip("corpus not available")
    seen = 0
    for path in files:
        headers = decode_headers(read_capture(path))
        offsets, lengths = headers.payload_off.tolist(), headers.payload_len.tolist()
        for off, length in zip(offsets, lengths, strict=True):
            payload = headers.buf[off : off + length].tobytes()
            if payload[:1] == b"\x16" and payload[5:6] == b"\x01":
                full = parse_client_hello(payload)
                assert client_hello_server_name(payload) == (full.sni if full else None)
                seen += 1
    assert seen > 50
