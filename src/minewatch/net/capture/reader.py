"""Open pcap, pcapng and gzip-compressed capture files as columnar packet tables.

The reader knows file formats, not protocols: it returns where each packet's bytes lie in one
buffer, when the packet was seen and which link layer it uses. Header decoding lives in
:mod:`minewatch.net.capture.decode`.

Damaged files are read as far as they are sound. A file that cannot be read at all raises
:class:`~minewatch.errors.CaptureError`; one that breaks off part-way returns the packets before
the break and a ``problem`` saying where and why, so a scan can report it and still use them.
"""

from __future__ import annotations

import mmap
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from minewatch.errors import CaptureError
from minewatch.net.capture import framing

__all__ = ["CAPTURE_MAGICS", "PacketTable", "looks_like_capture", "read_capture"]

# Anything larger than this in one record is corruption, not a packet (jumbo frames and
# TSO-coalesced captures stay well below it; libpcap's own maximum snaplen is 262144).
MAX_CAPLEN = 262_144 * 4

_PCAP_MAGICS: dict[bytes, tuple[bool, int]] = {
    # magic bytes as stored -> (big endian, nanoseconds per fractional unit)
    b"\xd4\xc3\xb2\xa1": (False, 1000),
    b"\xa1\xb2\xc3\xd4": (True, 1000),
    b"\x4d\x3c\xb2\xa1": (False, 1),
    b"\xa1\xb2\x3c\x4d": (True, 1),
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
_GZIP_MAGIC = b"\x1f\x8b"
CAPTURE_MAGICS: tuple[bytes, ...] = (*_PCAP_MAGICS, _PCAPNG_MAGIC, _GZIP_MAGIC)
_STATUS_TEXT = {
    framing.STATUS_TRUNCATED: "file is truncated: the last record is cut short",
    framing.STATUS_CORRUPT: "file is corrupt: a record header is impossible (bad length or marker)",
}


@dataclass(slots=True)
class PacketTable:
    """Packets of one capture file, as columns over one shared byte buffer.

    ``offset[i]``/``caplen[i]`` locate packet *i* in ``buf``; ``ts_ns`` is nanoseconds since the
    Unix epoch; ``linktype`` is the LINKTYPE_* value of the interface the packet came from.
    """

    path: str
    buf: np.ndarray
    offset: np.ndarray
    caplen: np.ndarray
    ts_ns: np.ndarray
    linktype: np.ndarray
    problem: str | None = None

    def __len__(self) -> int:
        return int(self.offset.shape[0])


def looks_like_capture(head: bytes) -> bool:
    """Whether the first bytes of a file are those of a format :func:`read_capture` reads."""
    return any(head.startswith(m) for m in CAPTURE_MAGICS)


def _gunzip(path: Path, raw: bytes) -> tuple[bytes, str | None]:
    """Decompress every gzip member of ``raw``; a damaged or cut-off stream keeps what came out."""
    out: list[bytes] = []
    rest = raw
    problem: str | None = None
    while rest[:2] == _GZIP_MAGIC:
        member = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out.append(member.decompress(rest))
            out.append(member.flush())
        except zlib.error as exc:
            problem = f"gzip data is damaged ({exc})"
            break
        if not member.eof:
            problem = "gzip stream is truncated"
            break
        rest = member.unused_data
    data = b"".join(out)
    if problem is not None and not data:
        raise CaptureError(path, f"{problem}; nothing could be decompressed")
    if problem is not None:
        problem += f" after {len(data)} decompressed bytes"
    elif rest.strip(b"\0"):
        problem = "gzip file has trailing bytes that are not gzip data; they were ignored"
    if not data:
        raise CaptureError(path, "gzip file holds no data")
    return data, problem


def _load_bytes(path: Path) -> tuple[np.ndarray, str | None]:
    """The file's bytes (decompressed if gzip) and a problem met while decompressing, if any."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
            if not head:
                raise CaptureError(path, "file is empty")
            fh.seek(0)
            if head[:2] == _GZIP_MAGIC:
                data, problem = _gunzip(path, fh.read())
                return np.frombuffer(data, dtype=np.uint8), problem
            try:
                mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                # Not mappable (a pipe, a /proc file, some network file systems): read it instead.
                return np.frombuffer(fh.read(), dtype=np.uint8), None
            return np.frombuffer(mapped, dtype=np.uint8), None
    except CaptureError:
        raise
    except IsADirectoryError:
        raise CaptureError(path, "is a directory, not a capture file") from None
    except FileNotFoundError:
        raise CaptureError(path, "no such file") from None
    except PermissionError:
        raise CaptureError(path, "permission denied") from None
    except OSError as exc:
        raise CaptureError(path, f"cannot be read ({exc.strerror or exc})") from None


def read_capture(path: str | Path) -> PacketTable:
    """Read a pcap, pcapng or gzip-compressed pcap/pcapng file into a :class:`PacketTable`.

    Raises :class:`~minewatch.errors.CaptureError` when the file cannot be read at all; a file
    that breaks off or goes bad part-way gives the packets before the damage and sets
    :attr:`PacketTable.problem`.
    """
    path = Path(path)
    buf, gzip_problem = _load_bytes(path)
    head = bytes(buf[:4])
    if head in _PCAP_MAGICS:
        table = _read_pcap(path, buf)
    elif head == _PCAPNG_MAGIC:
        table = _read_pcapng(path, buf)
    elif len(head) < 4 and any(m.startswith(head) for m in (*_PCAP_MAGICS, _PCAPNG_MAGIC)):
        raise CaptureError(path, f"file is cut short: only {len(head)} bytes")
    else:
        raise CaptureError(
            path,
            f"not a capture file (starts with {head.hex()}; expected pcap, pcapng or gzip)",
        )
    if gzip_problem is not None:
        table.problem = gzip_problem + (f"; {table.problem}" if table.problem else "")
    return table


def _problem(status: int, stop: int, count: int) -> str | None:
    if status == framing.STATUS_OK:
        return None
    return f"{_STATUS_TEXT[status]} at byte {stop} (read {count} packets before it)"


def _read_pcap(path: Path, buf: np.ndarray) -> PacketTable:
    if buf.shape[0] < 24:
        raise CaptureError(path, "pcap file header is cut short (fewer than 24 bytes)")
    big, frac_ns = _PCAP_MAGICS[bytes(buf[:4])]
    # The link-type field's upper 16 bits carry FCS information, not the link type.
    linktype = int.from_bytes(bytes(buf[20:24]), "big" if big else "little") & 0xFFFF
    off, caplen, sec, frac, status, stop = framing.walk_pcap(buf, 24, big, MAX_CAPLEN)
    ts_ns = sec * 1_000_000_000 + frac * frac_ns
    return PacketTable(
        path=str(path),
        buf=buf,
        offset=off,
        caplen=caplen,
        ts_ns=ts_ns,
        linktype=np.full(off.shape[0], linktype, dtype=np.int64),
        problem=_problem(status, stop, off.shape[0]),
    )


@dataclass(frozen=True, slots=True)
class _Interface:
    """What a pcapng interface description block says about reading its packets."""

    linktype: int
    snaplen: int  # 0: no limit
    tsresol: int  # the raw if_tsresol byte: 10**-n seconds, or 2**-n with the top bit set
    tsoffset_s: int


def _idb_fields(buf: np.ndarray, at: int, big: bool) -> _Interface:
    order: Literal["big", "little"] = "big" if big else "little"
    block = bytes(buf[at : at + int.from_bytes(bytes(buf[at + 4 : at + 8]), order)])
    linktype = int.from_bytes(block[8:10], order)
    snaplen = int.from_bytes(block[12:16], order)
    resolution, offset_s = 6, 0
    p, end = 16, len(block) - 4
    while p + 4 <= end:
        code = int.from_bytes(block[p : p + 2], order)
        length = int.from_bytes(block[p + 2 : p + 4], order)
        if code == 0:
            break
        if code == 9 and length >= 1 and p + 5 <= end:
            resolution = block[p + 4]
        elif code == 14 and length >= 8 and p + 12 <= end:
            offset_s = int.from_bytes(block[p + 4 : p + 12], order, signed=True)
        p += 4 + ((length + 3) & ~3)
    return _Interface(linktype, snaplen, resolution, offset_s)


def _units_to_ns(units: np.ndarray, tsresol: int, tsoffset_s: int) -> np.ndarray:
    """Timestamps in an interface's units (``uint64``) as nanoseconds since the epoch (int64).

    Integer arithmetic throughout: a float scale (or a rounded one, such as 954 ns for 2**-20 s)
    is off by minutes at today's epoch values. Garbage timestamps wrap instead of raising.
    """
    billion = np.uint64(1_000_000_000)
    if tsresol & 0x80:
        bits = tsresol & 0x7F
        if bits > 34:  # keep frac * 10**9 within 64 bits; the dropped bits are below 1 ns
            units = units >> np.uint64(bits - 34) if bits - 34 < 64 else np.zeros_like(units)
            bits = 34
        sec = units >> np.uint64(bits)
        frac = units & np.uint64((1 << bits) - 1)
        ns = sec * billion + ((frac * billion) >> np.uint64(bits))
    elif tsresol <= 9:
        ns = units * np.uint64(10 ** (9 - tsresol))
    elif tsresol - 9 < 20:
        ns = units // np.uint64(10 ** (tsresol - 9))
    else:
        ns = np.zeros_like(units)
    ns = ns + np.uint64((tsoffset_s * 1_000_000_000) % (1 << 64))
    return ns.view(np.int64)


def _read_pcapng(path: Path, buf: np.ndarray) -> PacketTable:
    if buf.shape[0] < 28:
        raise CaptureError(path, "pcapng section header is cut short (fewer than 28 bytes)")
    off, caplen, iface, units, stamped, idb_off, idb_big, status, stop = framing.walk_pcapng(buf)
    if status == framing.STATUS_CORRUPT and stop == 0:
        raise CaptureError(
            path, "pcapng section header is corrupt (bad byte-order magic or length)", offset=0
        )
    problem = _problem(status, stop, off.shape[0])
    interfaces = [_idb_fields(buf, int(a), bool(b)) for a, b in zip(idb_off, idb_big, strict=True)]
    known = iface >= 0
    if not known.all():
        bad = int((~known).sum())
        problem = (problem + "; " if problem else "") + (
            f"{bad} packets name an interface that was never described; they were skipped"
        )
        off, caplen, iface, units, stamped = (
            a[known] for a in (off, caplen, iface, units, stamped)
        )
    ts_ns = np.zeros(off.shape[0], dtype=np.int64)
    # One vectorised conversion per distinct (resolution, offset), not per packet.
    groups: dict[tuple[int, int], list[int]] = {}
    for i, f in enumerate(interfaces):
        groups.setdefault((f.tsresol, f.tsoffset_s), []).append(i)
    for (tsresol, tsoffset_s), ids in groups.items():
        mine = np.isin(iface, ids)
        ts_ns[mine] = _units_to_ns(units[mine], tsresol, tsoffset_s)
    # Simple packet blocks have no timestamp: give them the time of the packet before (0 when
    # no packet before has one).
    if not stamped.all():
        last_stamped = np.maximum.accumulate(np.where(stamped, np.arange(off.shape[0]), -1))
        ts_ns = np.where(last_stamped >= 0, ts_ns[np.maximum(last_stamped, 0)], 0)
        # A simple packet block's length includes its padding; the interface's snap length and
        # the original length (already applied by the walker) bound what was really captured.
        snaplen = np.array([f.snaplen for f in interfaces] or [0], dtype=np.int64)[iface]
        cut = ~stamped & (snaplen > 0)
        caplen = np.where(cut, np.minimum(caplen, snaplen), caplen)
    links = np.array([f.linktype for f in interfaces] or [0], dtype=np.int64)
    return PacketTable(
        path=str(path),
        buf=buf,
        offset=off,
        caplen=caplen,
        ts_ns=ts_ns,
        linktype=links[iface],
        problem=problem,
    )
