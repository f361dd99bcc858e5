"""Decode DNS messages (RFC 1035) well enough to learn which names resolved to which addresses.

:func:`parse_dns` takes a UDP payload, :func:`parse_dns_tcp` the start of a TCP stream (each
message preceded by a two-byte length). Both are pure and never raise: anything that is not a
plausible DNS message gives ``None``. The checks are tight so that random or foreign payloads on
port 53 rarely pass for DNS:

* standard query opcode, reserved Z bit clear, a defined RCODE; queries carry no answers;
* one to four questions, every count small enough for the bytes present;
* every name made of valid labels (letters, digits, hyphen, underscore; at most 63 octets each,
  255 in all), compression pointers only backwards into earlier names (so loops cannot occur);
* known question classes, TTLs below 2**31, A and AAAA data of the right size, CNAME data that is
  exactly one name, at most one OPT record and that one on the root name;
* every byte consumed: all four sections are walked and nothing may follow them.

Only answers of type A, AAAA and CNAME are kept; other records are checked and skipped. Names are
returned in lower case without the trailing dot; the root is ``"."``.

Example::

    >>> header = bytes.fromhex("abcd 0100 0001 0000 0000 0000")  # id, flags RD, one question
    >>> msg = parse_dns(header + b"\\x04pool\\x07example\\x00" + bytes.fromhex("0001 0001"))
    >>> msg.id, msg.is_response, msg.questions
    (43981, False, ['pool.example'])
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field

__all__ = [
    "DnsAnswer",
    "DnsMessage",
    "RecordType",
    "parse_dns",
    "parse_dns_tcp",
    "question_name",
]

_HEADER_LEN = 12
_MIN_QUESTION_LEN = 5  # root name + type + class
_MIN_RR_LEN = 11  # root name + type + class + ttl + rdlength
_MAX_QUESTIONS = 4
_MAX_NAME_WIRE_LEN = 255
_MAX_TTL = 0x7FFF_FFFF
_MAX_HEADER_RCODE = 10  # NOERROR .. NOTZONE; larger values need the OPT extension bits
_QUESTION_CLASSES = frozenset({1, 3, 4, 255})  # IN, CH, HS, ANY
_RECORD_CLASSES = frozenset({1, 3, 4})  # IN, CH, HS
_TYPE_OPT = 41
_FLAG_QR = 0x8000
_FLAG_Z = 0x0040
# bytes allowed in a label; ``bytes.translate(None, _LABEL_BYTES)`` leaves only the others
_LABEL_BYTES = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


class RecordType(enum.IntEnum):
    """Resource-record types whose data :func:`parse_dns` decodes."""

    A = 1
    CNAME = 5
    AAAA = 28


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """One A, AAAA or CNAME record of the answer section.

    ``value`` is the address in its usual text form (IPv6 compressed) or, for CNAME, the target
    name.
    """

    name: str
    rtype: RecordType
    ttl: int
    value: str


@dataclass(slots=True)
class DnsMessage:
    """A decoded DNS query or response.

    ``rcode`` includes the extended bits from an OPT record when there is one.

    Example::

        >>> DnsMessage(id=7, is_response=False, rcode=0, questions=["pool.example"]).questions
        ['pool.example']
    """

    id: int
    is_response: bool
    rcode: int
    questions: list[str] = field(default_factory=list)
    answers: list[DnsAnswer] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Record:
    name: str
    rtype: int
    rclass: int
    ttl: int
    rdata_start: int
    rdata_end: int


def parse_dns_tcp(data: bytes | bytearray | memoryview) -> DnsMessage | None:
    """The first DNS message of a TCP stream (two-byte length prefix), or ``None``.

    Bytes after the first message (a pipelined second one) are ignored; a first message that is
    not yet complete gives ``None``.
    """
    buf = bytes(data)
    if len(buf) < 2:
        return None
    length = int.from_bytes(buf[:2], "big")
    if length < _HEADER_LEN or len(buf) < 2 + length:
        return None
    return parse_dns(buf[2 : 2 + length])


def question_name(payload: bytes) -> str | None:
    """The first question's name of a plausible DNS message, without decoding the rest.

    A cheap first look for callers that only care about some names; :func:`parse_dns` remains
    the judge of whether the message is well formed.
    """
    if len(payload) < 17 or payload[4:6] == b"\x00\x00" or payload[2] & 0x78:
        return None
    found = _read_name(bytes(payload), 12)
    return found[0] if found is not None else None


def parse_dns(payload: bytes | bytearray | memoryview) -> DnsMessage | None:
    """Decode one DNS message (a whole UDP payload), or ``None`` if it is not plausibly DNS."""
    msg = bytes(payload)
    if len(msg) < _HEADER_LEN:
        return None
    ident, flags, qdcount, ancount, nscount, arcount = (
        int.from_bytes(msg[i : i + 2], "big") for i in range(0, _HEADER_LEN, 2)
    )
    is_response = bool(flags & _FLAG_QR)
    opcode = (flags >> 11) & 0xF
    rcode = flags & 0xF
    if opcode != 0 or flags & _FLAG_Z or rcode > _MAX_HEADER_RCODE:
        return None
    if not 1 <= qdcount <= _MAX_QUESTIONS:
        return None
    if not is_response and (rcode or ancount or nscount):
        return None
    least = _HEADER_LEN + qdcount * _MIN_QUESTION_LEN
    least += (ancount + nscount + arcount) * _MIN_RR_LEN
    if least > len(msg):
        return None

    out = DnsMessage(id=ident, is_response=is_response, rcode=rcode)
    pos = _HEADER_LEN
    for _ in range(qdcount):
        name_end = _read_name(msg, pos)
        if name_end is None or name_end[1] + 4 > len(msg):
            return None
        name, pos = name_end
        qtype = int.from_bytes(msg[pos : pos + 2], "big")
        qclass = int.from_bytes(msg[pos + 2 : pos + 4], "big")
        if qtype == 0 or qclass not in _QUESTION_CLASSES:
            return None
        out.questions.append(name)
        pos += 4

    for _ in range(ancount):
        record = _read_record(msg, pos)  # an OPT record here is refused
        if record is None:
            return None
        ok, answer = _decode_answer(msg, record)
        if not ok:
            return None
        if answer is not None:
            out.answers.append(answer)
        pos = record.rdata_end

    for _ in range(nscount):
        record = _read_record(msg, pos)
        if record is None:
            return None
        pos = record.rdata_end

    seen_opt = False
    for _ in range(arcount):
        record = _read_record(msg, pos, opt_allowed=not seen_opt)
        if record is None:
            return None
        if record.rtype == _TYPE_OPT:
            seen_opt = True
            out.rcode |= (record.ttl >> 24) << 4
        pos = record.rdata_end

    return out if pos == len(msg) else None


def _read_name(msg: bytes, pos: int) -> tuple[str, int] | None:
    """The name starting at ``pos`` and the offset just after it, or ``None`` if malformed.

    A compression pointer must point before the start of the label run that contains it, so each
    jump goes strictly backwards and decoding always ends.
    """
    labels: list[str] = []
    wire_len = 1  # the root label
    resume = -1  # where the enclosing record continues, once a pointer has been followed
    run_start = pos
    size = len(msg)
    while True:
        if pos >= size:
            return None
        length = msg[pos]
        if length >= 0xC0:
            if pos + 1 >= size:
                return None
            target = ((length & 0x3F) << 8) | msg[pos + 1]
            if target < _HEADER_LEN or target >= run_start:
                return None
            if resume < 0:
                resume = pos + 2
            pos = run_start = target
            continue
        if length >= 0x40:  # extended (0x40) and reserved (0x80) label types
            return None
        if length == 0:
            pos += 1
            break
        label = msg[pos + 1 : pos + 1 + length]
        wire_len += length + 1
        if len(label) != length or wire_len > _MAX_NAME_WIRE_LEN:
            return None
        if label.translate(None, _LABEL_BYTES):
            return None
        labels.append(label.decode("ascii").lower())
        pos += 1 + length
    return (".".join(labels) if labels else "."), (resume if resume >= 0 else pos)


def _read_record(msg: bytes, pos: int, *, opt_allowed: bool = False) -> _Record | None:
    """The resource record at ``pos`` with its header checked, or ``None``."""
    name_end = _read_name(msg, pos)
    if name_end is None:
        return None
    name, pos = name_end
    if pos + 10 > len(msg):
        return None
    rtype = int.from_bytes(msg[pos : pos + 2], "big")
    rclass = int.from_bytes(msg[pos + 2 : pos + 4], "big")
    ttl = int.from_bytes(msg[pos + 4 : pos + 8], "big")
    rdlength = int.from_bytes(msg[pos + 8 : pos + 10], "big")
    start = pos + 10
    end = start + rdlength
    if end > len(msg):
        return None
    if rtype == _TYPE_OPT:
        # the OPT pseudo-record reuses class and TTL for payload size and extended flags
        if not opt_allowed or name != ".":
            return None
    elif rtype == 0 or rclass not in _RECORD_CLASSES or ttl > _MAX_TTL:
        return None
    return _Record(name, rtype, rclass, ttl, start, end)


def _decode_answer(msg: bytes, record: _Record) -> tuple[bool, DnsAnswer | None]:
    """``(well formed, answer)``; the answer is ``None`` for record types that are skipped."""
    rdata = msg[record.rdata_start : record.rdata_end]
    if record.rtype == RecordType.A:
        if len(rdata) != 4:
            return False, None
        value = str(ipaddress.IPv4Address(rdata))
    elif record.rtype == RecordType.AAAA:
        if len(rdata) != 16:
            return False, None
        value = str(ipaddress.IPv6Address(rdata))
    elif record.rtype == RecordType.CNAME:
        target = _read_name(msg, record.rdata_start)
        if target is None or target[1] != record.rdata_end:
            return False, None
        value = target[0]
    else:
        return True, None
    return True, DnsAnswer(record.name, RecordType(record.rtype), record.ttl, value)
