"""Read the cleartext parts of a TLS handshake: the client's hello and, up to TLS 1.2, the names in
the server's certificates.

Both parsers take the first bytes of one direction of a TCP stream (what the client sent, or what
the server sent) and read TLS records of type handshake (22) with versions 0x0300 to 0x0304. A
handshake message may span several records; it is decoded as long as all its bytes are present.
The functions are pure and never raise: :func:`parse_client_hello` gives ``None`` and
:func:`parse_server_certificates` an empty list when the bytes are not what they should be.

Certificates are read with a small DER walker that looks only for commonName attributes of the
subject and issuer; signatures are not checked (this is evidence, not trust). TLS 1.3 encrypts
certificates, so a server that selects TLS 1.3 gives an empty list.

Example::

    >>> hello = parse_client_hello(captured_client_bytes)  # doctest: +SKIP
    >>> hello.sni, hello.alpn  # doctest: +SKIP
    ('xmr.pool.example', ('h2', 'http/1.1'))
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CertificateNames",
    "ClientHello",
    "client_hello_server_name",
    "is_grease",
    "parse_client_hello",
    "parse_server_certificate_names",
    "parse_server_certificates",
]

_CONTENT_HANDSHAKE = 22
_MIN_VERSION = 0x0300
_MAX_VERSION = 0x0304
_TLS13 = 0x0304
_MAX_FRAGMENT = 1 << 14  # plaintext records carry at most 2**14 bytes
_HS_CLIENT_HELLO = 1
_HS_SERVER_HELLO = 2
_HS_CERTIFICATE = 11
_HS_SERVER_HELLO_DONE = 14
_EXT_SERVER_NAME = 0
_EXT_SUPPORTED_GROUPS = 10
_EXT_EC_POINT_FORMATS = 11
_EXT_SIGNATURE_ALGORITHMS = 13
_EXT_ALPN = 16
_EXT_SUPPORTED_VERSIONS = 43
_SNI_HOST_NAME = 0
_OID_COMMON_NAME = b"\x55\x04\x03"  # 2.5.4.3
_DER_SEQUENCE = 0x30
_DER_SET = 0x31
_DER_INTEGER = 0x02
_DER_OID = 0x06
_DER_EXPLICIT_0 = 0xA0
_DER_STRING_CODECS = {
    0x0C: "utf-8",  # UTF8String
    0x13: "ascii",  # PrintableString
    0x14: "latin-1",  # TeletexString (in practice Latin-1)
    0x16: "ascii",  # IA5String
    0x1A: "ascii",  # VisibleString
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}


def is_grease(value: int) -> bool:
    """Whether a 16-bit cipher/extension/group/version value is a GREASE value (RFC 8701)."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


@dataclass(frozen=True, slots=True)
class ClientHello:
    """What a client announced in its ClientHello, in the order it sent it.

    ``extensions`` lists extension types and ``cipher_suites`` suite values, GREASE values
    included, which is what JA3/JA4-style fingerprints are built from.

    Example::

        >>> ClientHello(record_version=0x0301, legacy_version=0x0303, cipher_suites=(0x1301,),
        ...             extensions=(0, 43), sni="pool.example", alpn=(),
        ...             supported_versions=(0x0304, 0x0303)).max_version == 0x0304
        True
    """

    record_version: int
    legacy_version: int
    cipher_suites: tuple[int, ...]
    extensions: tuple[int, ...]
    sni: str | None
    alpn: tuple[str, ...]
    supported_versions: tuple[int, ...]
    supported_groups: tuple[int, ...] = ()
    ec_point_formats: tuple[int, ...] = ()
    signature_algorithms: tuple[int, ...] = ()

    @property
    def max_version(self) -> int:
        """The highest version offered: from supported_versions if sent, else legacy_version."""
        offered = [v for v in self.supported_versions if not is_grease(v)]
        return max(offered) if offered else self.legacy_version


@dataclass(frozen=True, slots=True)
class CertificateNames:
    """The commonName values of one certificate's subject and issuer."""

    subject_cn: tuple[str, ...]
    issuer_cn: tuple[str, ...]


class _MalformedError(Exception):
    """The bytes are not the structure being read. Never escapes this module."""


class _Reader:
    """Bounds-checked big-endian reads over ``buf[pos:end]``; overruns raise ``_MalformedError``."""

    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes, pos: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def take(self, n: int) -> bytes:
        if n > self.remaining:
            raise _MalformedError
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def take_all(self) -> bytes:
        return self.take(self.remaining)

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def sub(self, n: int) -> _Reader:
        """A reader over the next ``n`` bytes; this one moves past them."""
        if n > self.remaining:
            raise _MalformedError
        inner = _Reader(self.buf, self.pos, self.pos + n)
        self.pos += n
        return inner

    def vector(self, length_size: int) -> _Reader:
        """A reader over a length-prefixed vector (TLS ``opaque x<..>``)."""
        return self.sub(self.uint(length_size))

    def uint16_list(self) -> tuple[int, ...]:
        """The rest of this reader as 16-bit values; an odd byte count is malformed."""
        if self.remaining % 2:
            raise _MalformedError
        return tuple(self.uint(2) for _ in range(self.remaining // 2))

    def finish(self) -> None:
        if self.remaining:
            raise _MalformedError


def _handshake_stream(data: bytes) -> tuple[int, bytes]:
    """The record version of the first record and the handshake bytes of the leading records.

    Consecutive handshake records are joined; reading stops at the first record of another type
    or at the end of the data (a last record cut short contributes the bytes it has).
    """
    out = bytearray()
    first_version = -1
    pos = 0
    while pos + 5 <= len(data):
        content_type = data[pos]
        version = int.from_bytes(data[pos + 1 : pos + 3], "big")
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if content_type != _CONTENT_HANDSHAKE:
            break
        if not _MIN_VERSION <= version <= _MAX_VERSION or not 0 < length <= _MAX_FRAGMENT:
            if first_version < 0:
                raise _MalformedError
            break
        if first_version < 0:
            first_version = version
        out += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
    if first_version < 0:
        raise _MalformedError
    return first_version, bytes(out)


def parse_client_hello(data: bytes | bytearray | memoryview) -> ClientHello | None:
    """The ClientHello at the start of a client's TCP payload, or ``None``."""
    try:
        record_version, stream = _handshake_stream(bytes(data))
        handshake = _Reader(stream)
        if handshake.uint(1) != _HS_CLIENT_HELLO:
            return None
        return _client_hello(record_version, handshake.vector(3))
    except _MalformedError:
        return None


def client_hello_server_name(data: bytes) -> str | None:
    """Only the server name of a ClientHello: a fast path for matching names against lists.

    Walks the fixed ClientHello layout inside the first record with plain integer reads (no
    objects per field) and reads the host name where the server_name extension says. Hellos
    spread over several records, or anything irregular on the way, fall back to
    :func:`parse_client_hello`.
    """
    try:
        if len(data) < 5 + 4 + 2 + 32 + 1 or data[0] != _CONTENT_HANDSHAKE or data[5] != 1:
            return None
        record_end = 5 + int.from_bytes(data[3:5], "big")
        hello_end = 9 + int.from_bytes(data[6:9], "big")
        if hello_end > record_end or hello_end > len(data):
            raise _MalformedError
        pos = 9 + 2 + 32
        pos += 1 + data[pos]  # session id
        pos += 2 + int.from_bytes(data[pos : pos + 2], "big")  # cipher suites
        pos += 1 + data[pos]  # compression methods
        ext_end = pos + 2 + int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        if ext_end != hello_end:
            raise _MalformedError
        while pos + 4 <= ext_end:
            ext_type = int.from_bytes(data[pos : pos + 2], "big")
            ext_len = int.from_bytes(data[pos + 2 : pos + 4], "big")
            if ext_type == 0:
                # server_name_list length, name type (0 = host_name), name length, name.
                if ext_len < 5 or data[pos + 6] != _SNI_HOST_NAME:
                    raise _MalformedError
                size = int.from_bytes(data[pos + 7 : pos + 9], "big")
                if 9 + size > 4 + ext_len:
                    raise _MalformedError
                return _host_name(bytes(data[pos + 9 : pos + 9 + size]))
            pos += 4 + ext_len
    except (IndexError, _MalformedError):
        return _full_parse_name(data)
    return None if pos == ext_end else _full_parse_name(data)


def _full_parse_name(data: bytes) -> str | None:
    hello = parse_client_hello(data)
    return hello.sni if hello is not None else None


def _client_hello(record_version: int, body: _Reader) -> ClientHello:
    legacy_version = body.uint(2)
    if not _MIN_VERSION <= legacy_version <= _MAX_VERSION:
        raise _MalformedError
    body.take(32)  # random
    if body.vector(1).remaining > 32:  # legacy_session_id
        raise _MalformedError
    suites = body.vector(2)
    if suites.remaining < 2:
        raise _MalformedError
    cipher_suites = suites.uint16_list()
    if body.vector(1).remaining < 1:  # compression methods
        raise _MalformedError
    fields: dict[str, tuple[int, ...]] = {}
    extensions: list[int] = []
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    if body.remaining:  # SSL 3.0-era hellos may end before the extensions
        block = body.vector(2)
        while block.remaining:
            ext_type = block.uint(2)
            ext = block.vector(2)
            if ext_type in extensions:
                raise _MalformedError  # RFC 8446 4.2: at most one extension of each type
            extensions.append(ext_type)
            if ext_type == _EXT_SERVER_NAME:
                sni = _server_name(ext)
            elif ext_type == _EXT_ALPN:
                alpn = _alpn(ext)
            elif ext_type == _EXT_SUPPORTED_VERSIONS:
                fields["supported_versions"] = _nonempty(ext.vector(1).uint16_list())
            elif ext_type == _EXT_SUPPORTED_GROUPS:
                fields["supported_groups"] = _nonempty(ext.vector(2).uint16_list())
            elif ext_type == _EXT_EC_POINT_FORMATS:
                fields["ec_point_formats"] = _nonempty(tuple(ext.vector(1).take_all()))
            elif ext_type == _EXT_SIGNATURE_ALGORITHMS:
                fields["signature_algorithms"] = _nonempty(ext.vector(2).uint16_list())
            else:
                continue
            ext.finish()
    body.finish()
    return ClientHello(
        record_version=record_version,
        legacy_version=legacy_version,
        cipher_suites=cipher_suites,
        extensions=tuple(extensions),
        sni=sni,
        alpn=alpn,
        supported_versions=fields.get("supported_versions", ()),
        supported_groups=fields.get("supported_groups", ()),
        ec_point_formats=fields.get("ec_point_formats", ()),
        signature_algorithms=fields.get("signature_algorithms", ()),
    )


def _nonempty(values: tuple[int, ...]) -> tuple[int, ...]:
    if not values:
        raise _MalformedError
    return values


def _server_name(ext: _Reader) -> str | None:
    """The host_name of a server_name extension; ``None`` if absent or not a printable name."""
    if not ext.remaining:
        return None
    names = ext.vector(2)
    host: str | None = None
    while names.remaining:
        name_type = names.uint(1)
        name = names.vector(2).take_all()
        if name_type == _SNI_HOST_NAME and host is None:
            host = _host_name(name)
    return host


def _host_name(raw: bytes) -> str | None:
    if not raw or any(b <= 0x20 or b >= 0x7F for b in raw):
        return None
    text = raw.decode("ascii").lower()
    return text[:-1] if text.endswith(".") else text


def _alpn(ext: _Reader) -> tuple[str, ...]:
    protocols = ext.vector(2)
    out: list[str] = []
    while protocols.remaining:
        name = protocols.vector(1).take_all()
        if not name:
            raise _MalformedError
        out.append(name.decode("ascii", "backslashreplace"))
    if not out:
        raise _MalformedError
    return tuple(out)


def parse_server_certificates(data: bytes | bytearray | memoryview) -> list[str]:
    """Subject and issuer commonNames from a TLS 1.2-or-older server flight.

    For each certificate, in the order sent: its subject commonName value(s), then its issuer's.
    Empty for TLS 1.3, for a flight without a complete Certificate message, and for anything
    malformed.
    """
    out: list[str] = []
    for names in parse_server_certificate_names(data):
        out.extend(names.subject_cn)
        out.extend(names.issuer_cn)
    return out


def parse_server_certificate_names(
    data: bytes | bytearray | memoryview,
) -> list[CertificateNames]:
    """Like :func:`parse_server_certificates`, keeping subject and issuer apart per certificate."""
    try:
        return _server_flight(bytes(data))
    except _MalformedError:
        return []


def _server_flight(data: bytes) -> list[CertificateNames]:
    _, stream = _handshake_stream(data)
    messages = _Reader(stream)
    first = True
    while messages.remaining >= 4:
        msg_type = messages.uint(1)
        length = messages.uint(3)
        if length > messages.remaining:
            break  # the rest has not arrived
        body = messages.sub(length)
        if first:
            if msg_type != _HS_SERVER_HELLO or _server_hello_version(body) >= _TLS13:
                return []
            first = False
        elif msg_type == _HS_CERTIFICATE:
            return _certificate_message(body)
        elif msg_type == _HS_SERVER_HELLO_DONE:
            break
    return []


def _server_hello_version(body: _Reader) -> int:
    """The version the server selected (supported_versions wins over the legacy field)."""
    version = body.uint(2)
    if not _MIN_VERSION <= version <= _MAX_VERSION:
        raise _MalformedError
    body.take(32)  # random
    if body.vector(1).remaining > 32:  # session id
        raise _MalformedError
    body.take(3)  # cipher suite, compression method
    if body.remaining:
        block = body.vector(2)
        while block.remaining:
            ext_type = block.uint(2)
            ext = block.vector(2)
            if ext_type == _EXT_SUPPORTED_VERSIONS:
                selected = ext.uint(2)
                ext.finish()
                # 0x7fXX were the TLS 1.3 drafts
                version = _TLS13 if selected >> 8 == 0x7F else selected
    body.finish()
    return version


def _certificate_message(body: _Reader) -> list[CertificateNames]:
    chain = body.vector(3)
    body.finish()
    out: list[CertificateNames] = []
    while chain.remaining:
        der = chain.vector(3).take_all()
        out.append(_certificate_names(der))
    return out


def _der(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """``(tag, content start, content end)`` of the DER element at ``pos``."""
    if pos + 2 > end:
        raise _MalformedError
    tag = buf[pos]
    if tag & 0x1F == 0x1F:  # high tag numbers never occur in the fields read here
        raise _MalformedError
    first = buf[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        size = first & 0x7F
        if not 1 <= size <= 4 or pos + size > end:  # 0x80 (indefinite) is not DER
            raise _MalformedError
        length = int.from_bytes(buf[pos : pos + size], "big")
        pos += size
    if pos + length > end:
        raise _MalformedError
    return tag, pos, pos + length


def _der_expect(buf: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    got, start, stop = _der(buf, pos, end)
    if got != tag:
        raise _MalformedError
    return start, stop


def _certificate_names(der: bytes) -> CertificateNames:
    """Subject and issuer commonNames of one X.509 certificate."""
    start, stop = _der_expect(der, 0, len(der), _DER_SEQUENCE)
    if stop != len(der):
        raise _MalformedError
    tbs_start, tbs_end = _der_expect(der, start, stop, _DER_SEQUENCE)
    tag, _, pos = _der(der, tbs_start, tbs_end)
    if tag == _DER_EXPLICIT_0:  # version
        tag, _, pos = _der(der, pos, tbs_end)
    if tag != _DER_INTEGER:  # serialNumber
        raise _MalformedError
    _, pos = _der_expect(der, pos, tbs_end, _DER_SEQUENCE)  # signature algorithm
    issuer_start, issuer_end = _der_expect(der, pos, tbs_end, _DER_SEQUENCE)
    _, pos = _der_expect(der, issuer_end, tbs_end, _DER_SEQUENCE)  # validity
    subject_start, subject_end = _der_expect(der, pos, tbs_end, _DER_SEQUENCE)
    return CertificateNames(
        subject_cn=_common_names(der, subject_start, subject_end),
        issuer_cn=_common_names(der, issuer_start, issuer_end),
    )


def _common_names(der: bytes, pos: int, end: int) -> tuple[str, ...]:
    """commonName values of a Name (SEQUENCE OF SET OF AttributeTypeAndValue)."""
    out: list[str] = []
    while pos < end:
        rdn_start, pos = _der_expect(der, pos, end, _DER_SET)
        while rdn_start < pos:
            atv_start, rdn_start = _der_expect(der, rdn_start, pos, _DER_SEQUENCE)
            oid_start, oid_end = _der_expect(der, atv_start, rdn_start, _DER_OID)
            tag, value_start, value_end = _der(der, oid_end, rdn_start)
            if value_end != rdn_start:
                raise _MalformedError
            codec = _DER_STRING_CODECS.get(tag)
            if der[oid_start:oid_end] == _OID_COMMON_NAME and codec is not None:
                out.append(der[value_start:value_end].decode(codec, "replace"))
    return tuple(out)
