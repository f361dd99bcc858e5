"""Record framing of pcap and pcapng files, compiled with numba.

Finding where each record starts is the one inherently sequential step of reading a capture (every
record's offset depends on the length of the one before), so it is the one step written as a loop,
compiled to machine code. Everything after it (link, IP, TCP/UDP headers, flow keys) is vectorised
numpy over the offsets found here.

Both walkers make two passes: the first counts records so the second can fill exactly-sized arrays
(a 1 GB capture would otherwise need gigabytes of scratch space). They never read past the buffer
and report how they stopped through a status code instead of raising, because numba code cannot
raise rich errors.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "STATUS_CORRUPT",
    "STATUS_OK",
    "STATUS_TRUNCATED",
    "walk_pcap",
    "walk_pcapng",
]

STATUS_OK = 0
STATUS_TRUNCATED = 1
STATUS_CORRUPT = 2

PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_IDB = 1
PCAPNG_PB = 2
PCAPNG_SPB = 3
PCAPNG_EPB = 6
_BYTE_ORDER_MAGIC = 0x1A2B3C4D


# numba ships type hints only in recent releases; older ones make the decorator untyped.
@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator,unused-ignore]
def _u32(buf: np.ndarray, p: int, big: bool) -> int:
    if big:
        return int(
            (np.int64(buf[p]) << 24)
            | (np.int64(buf[p + 1]) << 16)
            | (np.int64(buf[p + 2]) << 8)
            | np.int64(buf[p + 3])
        )
    return int(
        np.int64(buf[p])
        | (np.int64(buf[p + 1]) << 8)
        | (np.int64(buf[p + 2]) << 16)
        | (np.int64(buf[p + 3]) << 24)
    )


# numba ships type hints only in recent releases; older ones make the decorator untyped.
@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator,unused-ignore]
def _pcap_pass(
    buf: np.ndarray,
    start: int,
    big: bool,
    max_caplen: int,
    fill: bool,
    off: np.ndarray,
    caplen: np.ndarray,
    sec: np.ndarray,
    frac: np.ndarray,
) -> tuple[int, int, int]:
    n = buf.shape[0]
    p = start
    i = 0
    status = STATUS_OK
    while p + 16 <= n:
        c = _u32(buf, p + 8, big)
        if c > max_caplen:
            status = STATUS_CORRUPT
            break
        if p + 16 + c > n:
            status = STATUS_TRUNCATED
            break
        if fill:
            sec[i] = _u32(buf, p, big)
            frac[i] = _u32(buf, p + 4, big)
            off[i] = p + 16
            caplen[i] = c
        i += 1
        p += 16 + c
    if status == STATUS_OK and p != n:
        status = STATUS_TRUNCATED
    return i, status, p


def walk_pcap(
    buf: np.ndarray, start: int, big: bool, max_caplen: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Frame classic pcap records.

    Returns ``(data_offset, caplen, ts_sec, ts_frac, status, stop_offset)``; ``stop_offset`` is
    where reading ended (the end of the buffer when ``status`` is ``STATUS_OK``).
    """
    empty = np.empty(0, np.int64)
    count, _, _ = _pcap_pass(buf, start, big, max_caplen, False, empty, empty, empty, empty)
    off = np.empty(count, np.int64)
    caplen = np.empty(count, np.int64)
    sec = np.empty(count, np.int64)
    frac = np.empty(count, np.int64)
    _, status, stop = _pcap_pass(buf, start, big, max_caplen, True, off, caplen, sec, frac)
    return off, caplen, sec, frac, status, stop


# numba ships type hints only in recent releases; older ones make the decorator untyped.
@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator,unused-ignore]
def _pcapng_pass(
    buf: np.ndarray,
    fill: bool,
    off: np.ndarray,
    caplen: np.ndarray,
    iface: np.ndarray,
    ts_hi: np.ndarray,
    ts_lo: np.ndarray,
    idb_off: np.ndarray,
    idb_big: np.ndarray,
) -> tuple[int, int, int, int]:
    n = buf.shape[0]
    p = 0
    i = 0
    k = 0
    idb_base = 0
    big = False
    status = STATUS_OK
    while p + 12 <= n:
        is_shb = buf[p] == 0x0A and buf[p + 1] == 0x0D and buf[p + 2] == 0x0D and buf[p + 3] == 0x0A
        if is_shb:
            # Section header: its byte-order magic decides how the whole section is read.
            if _u32(buf, p + 8, False) == _BYTE_ORDER_MAGIC:
                big = False
            elif _u32(buf, p + 8, True) == _BYTE_ORDER_MAGIC:
                big = True
            else:
                status = STATUS_CORRUPT
                break
            # Interface numbers restart in every section.
            idb_base = k
        btype = _u32(buf, p, big)
        blen = _u32(buf, p + 4, big)
        if blen < 12 or blen % 4 != 0 or (is_shb and blen < 28):
            status = STATUS_CORRUPT
            break
        if p + blen > n:
            status = STATUS_TRUNCATED
            break
        # Every block repeats its length at its end; a mismatch means the length is garbage and
        # anything read past this point would be misframed.
        if _u32(buf, p + blen - 4, big) != blen:
            status = STATUS_CORRUPT
            break
        if btype in (PCAPNG_EPB, PCAPNG_PB):
            if blen < 32:
                status = STATUS_CORRUPT
                break
            c = _u32(buf, p + 20, big)
            if c > blen - 32:
                status = STATUS_CORRUPT
                break
            if fill:
                if btype == PCAPNG_EPB:
                    local = _u32(buf, p + 8, big)
                elif big:
                    local = int((np.int64(buf[p + 8]) << 8) | np.int64(buf[p + 9]))
                else:
                    local = int(np.int64(buf[p + 8]) | (np.int64(buf[p + 9]) << 8))
                # An interface must be described earlier in the same section; -1 marks one that
                # was not (never a neighbouring section's interface).
                iface[i] = idb_base + local if local < k - idb_base else -1
                ts_hi[i] = _u32(buf, p + 12, big)
                ts_lo[i] = _u32(buf, p + 16, big)
                off[i] = p + 28
                caplen[i] = c
            i += 1
        elif btype == PCAPNG_SPB:
            if blen < 16:
                status = STATUS_CORRUPT
                break
            c = min(_u32(buf, p + 8, big), blen - 16)
            if fill:
                # Simple packet blocks belong to the section's first interface and carry no time.
                iface[i] = idb_base if k > idb_base else -1
                ts_hi[i] = -1
                ts_lo[i] = -1
                off[i] = p + 12
                caplen[i] = c
            i += 1
        elif btype == PCAPNG_IDB:
            if blen < 20:
                status = STATUS_CORRUPT
                break
            if fill:
                idb_off[k] = p
                idb_big[k] = big
            k += 1
        p += blen
    if status == STATUS_OK and p != n:
        status = STATUS_TRUNCATED
    return i, k, status, p


def walk_pcapng(
    buf: np.ndarray,
) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int
]:
    """Frame pcapng blocks.

    Returns ``(data_offset, caplen, interface, ts_units, stamped, idb_offset, idb_big_endian,
    status, stop_offset)``. ``interface`` numbers interfaces across all sections of the file (a
    merged file has several) and is -1 for a packet whose interface was never described;
    ``ts_units`` (``uint64``) is the raw timestamp in the interface's units; ``stamped`` is false
    for simple packet blocks, which carry no timestamp.
    """
    e = np.empty(0, np.int64)
    eb = np.empty(0, np.bool_)
    count, nidb, _, _ = _pcapng_pass(buf, False, e, e, e, e, e, e, eb)
    off = np.empty(count, np.int64)
    caplen = np.empty(count, np.int64)
    iface = np.empty(count, np.int64)
    ts_hi = np.empty(count, np.int64)
    ts_lo = np.empty(count, np.int64)
    idb_off = np.empty(nidb, np.int64)
    idb_big = np.empty(nidb, np.bool_)
    _, _, status, stop = _pcapng_pass(buf, True, off, caplen, iface, ts_hi, ts_lo, idb_off, idb_big)
    stamped = ts_hi >= 0
    ts_units = (ts_hi.astype(np.uint64) << np.uint64(32)) | ts_lo.astype(np.uint64)
    ts_units[~stamped] = 0
    return off, caplen, iface, ts_units, stamped, idb_off, idb_big, status, stop
