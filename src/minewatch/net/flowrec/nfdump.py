"""Read nfdump 1.7 files (``nfcapd.*``) natively into FLOW_SCHEMA tables.

Why natively: large operators archive their NetFlow as nfdump files, often terabytes; piping them
through ``nfdump -o csv`` costs more than the detection. The layout (nfdump's ``nffileV2.h`` and
``nfxV3.h``) is: a 40-byte file header (magic ``0xA50C``, layout version 2, compression,
appendix offset, block count), then data blocks (12-byte header: record count, size, type 3,
flags; the body compressed as the file says unless the block's flag says otherwise). A block
holds records, each starting ``type:u16 size:u16``; flow records (type 11, "V3") carry a 12-byte
header and a list of extension elements (``type:u16 length:u16`` + fixed payload): generic flow
(times, counters, ports, protocol, flags), IPv4 or IPv6 addresses, counters of the reverse
direction, the exporter's address, and more we skip.

Speed: walking a block to find where each record and each element starts is the one sequential
step; it is compiled with numba and yields, per record, the offset of each element we use (or
-1). Every field is then one numpy gather over the block. The decompressors for the formats
nfdump writes with ``-z`` (LZO1X) and ``-y`` (LZ4 block) are also compiled loops (so no C
extension is needed); ``-j`` (bzip2) uses Python's ``bz2``; ZSTD (nfdump >= 1.7.2 ``-z=zstd``)
needs the optional ``zstandard`` package and is reported clearly when it is absent.

Example::

    result = read_nfdump("/var/cache/nfdump/nfcapd.202401011200")
    result.table.num_rows, result.problem
"""

from __future__ import annotations

import bz2
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from minewatch.errors import InputError
from minewatch.net.flowrec.netflow import ipv4_text, ipv6_text
from minewatch.net.flowrec.table import INITIATOR_UNKNOWN, assemble_flows, empty_flows

__all__ = ["NFDUMP_MAGIC", "NfdumpResult", "looks_like_nfdump", "read_nfdump"]

NFDUMP_MAGIC = b"\x0c\xa5"
_FILE_HEADER = struct.Struct("<HHIQBBHIQII")
_BLOCK_HEADER = struct.Struct("<IIHH")
_COMPRESSION = {0: "none", 1: "LZO", 2: "bzip2", 3: "LZ4", 4: "ZSTD"}
_FLAG_UNCOMPRESSED = 1
_FLAG_UNENCRYPTED = 2
_MAX_BLOCK = 64 << 20  # nfdump's blocks are a few MB; anything beyond this is corruption
_RECORD_V3 = 11
_EXPORTER_INFO = 7

# element types (nfxV3.h) and the slot each one's offset goes into
_EX_GENERIC, _EX_IPV4, _EX_IPV6, _EX_MISC, _EX_COUNTERS = 1, 2, 3, 4, 5
_EX_RECEIVED_V4, _EX_RECEIVED_V6 = 12, 13
_SLOTS = np.full(64, -1, dtype=np.int64)
for _slot, _type in enumerate(
    (_EX_GENERIC, _EX_IPV4, _EX_IPV6, _EX_COUNTERS, _EX_RECEIVED_V4, _EX_RECEIVED_V6, _EX_MISC)
):
    _SLOTS[_type] = _slot
_NSLOTS = 7
# minimum element lengths (element header included) for the fields we read
_MIN_LENGTH = np.array([52, 12, 36, 28, 8, 20, 20], dtype=np.int64)


def looks_like_nfdump(head: bytes) -> bool:
    """Whether ``head`` (the first bytes of a file) starts an nfdump file."""
    return head[:2] == NFDUMP_MAGIC


@dataclass(slots=True)
class NfdumpResult:
    """Records of one file and, when it could not be read to the end, why (the records before
    the problem are kept)."""

    table: pa.Table
    problem: str | None
    compression: str
    blocks: int


# --------------------------------------------------------------------------------------------
# Compiled loops


# numba ships type hints only in recent releases; older ones make the decorator untyped.
@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator,unused-ignore]
def _walk_block(
    buf: np.ndarray, count: int, slots: np.ndarray, nslots: int, min_length: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:  # pragma: no cover - compiled
    """Offsets of the elements of every V3 record in one block.

    Returns (element offsets ``(n, nslots)``, record exporter sysid, exporter-info record
    offsets, status): status 0 ok, 1 a record runs past the block, 2 a record size is
    impossible. Elements shorter than their fixed payload are ignored.
    """
    size = buf.shape[0]
    offsets = np.full((count, nslots), -1, dtype=np.int64)
    sysid = np.zeros(count, dtype=np.int64)
    info = np.full(count, -1, dtype=np.int64)
    n = 0
    ninfo = 0
    at = 0
    status = 0
    for _ in range(count):
        if at + 4 > size:
            status = 1
            break
        rtype = buf[at] | (buf[at + 1] << 8)
        rsize = buf[at + 2] | (buf[at + 3] << 8)
        if rsize < 4:
            status = 2
            break
        if at + rsize > size:
            status = 1
            break
        if rtype == 11 and rsize >= 12:
            nelem = buf[at + 4] | (buf[at + 5] << 8)
            sysid[n] = buf[at + 8] | (buf[at + 9] << 8)
            e = at + 12
            end = at + rsize
            for _k in range(nelem):
                if e + 4 > end:
                    break
                etype = buf[e] | (buf[e + 1] << 8)
                elen = buf[e + 2] | (buf[e + 3] << 8)
                if elen < 4 or e + elen > end:
                    break
                if etype < slots.shape[0]:
                    slot = slots[etype]
                    if slot >= 0 and elen >= min_length[slot]:
                        offsets[n, slot] = e + 4
                e += elen
            n += 1
        elif rtype == 7:
            info[ninfo] = at
            ninfo += 1
        at += rsize
    return offsets[:n], sysid[:n], info[:ninfo], status


@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator,unused-ignore]
def _lzo1x_decompress(src: np.ndarray, dst: np.ndarray) -> int:  # pragma: no cover - compiled
    """LZO1X (as minilzo's lzo1x_1 writes it) into ``dst``; bytes written, or -1 on corrupt
    input, -2 when ``dst`` is too small."""
    ip = 0
    op = 0
    n_in = src.shape[0]
    n_out = dst.shape[0]
    if n_in == 0:
        return -1
    state = 0  # 0: expect an instruction; the C original's gotos are this small state machine
    t = 0
    if src[0] > 17:
        t = src[0] - 17
        ip = 1
        if t < 4:
            state = 3  # match_next: copy t literals then read the next instruction
        else:
            if ip + t > n_in or op + t > n_out:
                return -2 if op + t > n_out else -1
            dst[op : op + t] = src[ip : ip + t]
            op += t
            ip += t
            state = 1  # first_literal_run
    while True:
        if state == 0:
            if ip >= n_in:
                return -1
            t = src[ip]
            ip += 1
            if t >= 16:
                state = 2
                continue
            if t == 0:
                while ip < n_in and src[ip] == 0:
                    t += 255
                    ip += 1
                if ip >= n_in:
                    return -1
                t += 15 + src[ip]
                ip += 1
            t += 3
            if ip + t > n_in:
                return -1
            if op + t > n_out:
                return -2
            dst[op : op + t] = src[ip : ip + t]
            op += t
            ip += t
            state = 1
            continue
        if state == 1:  # first_literal_run
            if ip >= n_in:
                return -1
            t = src[ip]
            ip += 1
            if t >= 16:
                state = 2
                continue
            if ip >= n_in:
                return -1
            m = op - (1 + 0x0800) - (t >> 2) - (src[ip] << 2)
            ip += 1
            if m < 0:
                return -1
            if op + 3 > n_out:
                return -2
            for _ in range(3):
                dst[op] = dst[m]
                op += 1
                m += 1
            state = 4  # match_done
            continue
        if state == 2:  # match, instruction in t
            length = 0
            if t >= 64:
                if ip >= n_in:
                    return -1
                m = op - 1 - ((t >> 2) & 7) - (src[ip] << 3)
                ip += 1
                length = (t >> 5) - 1 + 2
            elif t >= 32:
                t &= 31
                if t == 0:
                    while ip < n_in and src[ip] == 0:
                        t += 255
                        ip += 1
                    if ip >= n_in:
                        return -1
                    t += 31 + src[ip]
                    ip += 1
                if ip + 2 > n_in:
                    return -1
                m = op - 1 - ((src[ip] >> 2) + (src[ip + 1] << 6))
                ip += 2
                length = t + 2
            elif t >= 16:
                m = op - ((t & 8) << 11)
                t &= 7
                if t == 0:
                    while ip < n_in and src[ip] == 0:
                        t += 255
                        ip += 1
                    if ip >= n_in:
                        return -1
                    t += 7 + src[ip]
                    ip += 1
                if ip + 2 > n_in:
                    return -1
                m -= (src[ip] >> 2) + (src[ip + 1] << 6)
                ip += 2
                if m == op:
                    return op  # end of stream
                m -= 0x4000
                length = t + 2
            else:
                if ip >= n_in:
                    return -1
                m = op - 1 - (t >> 2) - (src[ip] << 2)
                ip += 1
                length = 2
            if m < 0:
                return -1
            if op + length > n_out:
                return -2
            for _ in range(length):
                dst[op] = dst[m]
                op += 1
                m += 1
            state = 4
            continue
        if state == 4:  # match_done
            t = src[ip - 2] & 3
            if t == 0:
                state = 0
                continue
            state = 3
            continue
        if state == 3:  # match_next: t literals, then the next instruction is a match
            if ip + t > n_in:
                return -1
            if op + t > n_out:
                return -2
            for _ in range(t):
                dst[op] = src[ip]
                op += 1
                ip += 1
            if ip >= n_in:
                return -1
            t = src[ip]
            ip += 1
            state = 2
            continue
    return -1


@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator,unused-ignore]
def _lz4_block_decompress(src: np.ndarray, dst: np.ndarray) -> int:  # pragma: no cover
    """An LZ4 block (no frame) into ``dst``; bytes written, -1 corrupt, -2 ``dst`` too small."""
    ip = 0
    op = 0
    n_in = src.shape[0]
    n_out = dst.shape[0]
    while ip < n_in:
        token = src[ip]
        ip += 1
        literals = token >> 4
        if literals == 15:
            while True:
                if ip >= n_in:
                    return -1
                b = src[ip]
                ip += 1
                literals += b
                if b != 255:
                    break
        if ip + literals > n_in:
            return -1
        if op + literals > n_out:
            return -2
        dst[op : op + literals] = src[ip : ip + literals]
        op += literals
        ip += literals
        if ip >= n_in:
            return int(op)  # the last sequence has literals only
        if ip + 2 > n_in:
            return -1
        offset = src[ip] | (src[ip + 1] << 8)
        ip += 2
        if offset == 0 or offset > op:
            return -1
        length = token & 15
        if length == 15:
            while True:
                if ip >= n_in:
                    return -1
                b = src[ip]
                ip += 1
                length += b
                if b != 255:
                    break
        length += 4
        if op + length > n_out:
            return -2
        m = op - offset
        for _ in range(length):
            dst[op] = dst[m]
            op += 1
            m += 1
    return op


# --------------------------------------------------------------------------------------------
# Blocks


def _decompress(kind: int, body: bytes, hint: int) -> bytes:
    """One block body, decompressed; raises ValueError with the reason."""
    if kind == 0:
        return body
    if kind == 2:
        try:
            return bz2.decompress(body)
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"bzip2 block does not decompress: {exc}") from exc
    if kind == 4:
        try:
            import zstandard  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise ValueError(
                "ZSTD-compressed nfdump files need the 'zstandard' Python package; or convert "
                "the file with 'nfdump -J 0 -r FILE' (uncompressed) or -J 1 (LZO)"
            ) from None
        try:
            return bytes(zstandard.ZstdDecompressor().decompress(body, max_output_size=_MAX_BLOCK))
        except zstandard.ZstdError as exc:
            raise ValueError(f"ZSTD block does not decompress: {exc}") from exc
    if kind not in (1, 3):
        raise ValueError(f"unknown compression code {kind}")
    src = np.frombuffer(body, dtype=np.uint8)
    size = max(hint, 4 * len(body), 1 << 20)
    while size <= _MAX_BLOCK:
        dst = np.empty(size, dtype=np.uint8)
        n = int(_lzo1x_decompress(src, dst) if kind == 1 else _lz4_block_decompress(src, dst))
        if n >= 0:
            return bytes(dst[: int(n)])
        if n == -1:
            raise ValueError(f"{_COMPRESSION[kind]} block is corrupt")
        size *= 2
    raise ValueError(f"{_COMPRESSION[kind]} block expands beyond {_MAX_BLOCK} bytes")


@dataclass(slots=True)
class _Decoded:
    columns: dict[str, np.ndarray]
    v6: np.ndarray


def _u(buf: np.ndarray, at: np.ndarray, width: int) -> np.ndarray:
    """Little-endian unsigned ``width``-byte values at ``at`` (only rows with ``at >= 0``)."""
    value = np.zeros(at.shape[0], dtype=np.uint64)
    ok = at >= 0
    idx = at[ok]
    acc = np.zeros(idx.shape[0], dtype=np.uint64)
    for k in range(width - 1, -1, -1):
        acc = (acc << np.uint64(8)) | buf[idx + k].astype(np.uint64)
    value[ok] = acc
    return value


def _decode_block(block: bytes, count: int, exporters: dict[int, str]) -> tuple[pa.Table, str]:
    """One decompressed block into a table; status text ('' when sound)."""
    buf = np.frombuffer(block, dtype=np.uint8)
    offsets, sysid, info, status = _walk_block(buf, count, _SLOTS, _NSLOTS, _MIN_LENGTH)
    for at in info.tolist():
        _exporter_info(block, at, exporters)
    problem = {1: "a record runs past the end of its block", 2: "a record size is impossible"}
    keep = offsets[:, 0] >= 0  # a flow needs its generic element
    keep &= (offsets[:, 1] >= 0) | (offsets[:, 2] >= 0)
    offsets, sysid = offsets[keep], sysid[keep]
    if offsets.shape[0] == 0:
        return empty_flows(), problem.get(status, "")
    g, v4, v6, cnt, r4, r6 = (offsets[:, i] for i in range(6))
    is_v6 = v6 >= 0
    n = offsets.shape[0]
    w32 = np.ndarray((buf.shape[0] - 3,), dtype="<u4", buffer=buf, strides=(1,))
    w64 = np.ndarray((buf.shape[0] - 7,), dtype="<u8", buffer=buf, strides=(1,))
    h16 = np.ndarray((buf.shape[0] - 1,), dtype="<u2", buffer=buf, strides=(1,))

    def q(at: np.ndarray) -> np.ndarray:
        out = np.zeros(n, dtype=np.uint64)
        ok = at >= 0
        out[ok] = w64[at[ok]]
        return out

    src_text = pa.array([""] * 0, pa.string())
    if is_v6.any():
        v4_src = ipv4_text(np.where(is_v6, 0, w32[np.where(v4 >= 0, v4, 0)]))
        v4_dst = ipv4_text(np.where(is_v6, 0, w32[np.where(v4 >= 0, v4 + 4, 0)]))
        six = np.where(is_v6, v6, 0)
        src6 = _v6_bytes(buf, six)
        dst6 = _v6_bytes(buf, six + 16)
        mask = pa.array(is_v6)
        src_text = pc.if_else(mask, ipv6_text(src6), v4_src)
        dst_text = pc.if_else(mask, ipv6_text(dst6), v4_dst)
    else:
        src_text = ipv4_text(w32[v4])
        dst_text = ipv4_text(w32[v4 + 4])
    exporter = _exporter_column(buf, w32, w64, r4, r6, sysid, exporters)
    first = w64[g].astype(np.int64)
    last = w64[g + 8].astype(np.int64)
    columns: dict[str, pa.Array] = {
        "start_ns": pa.array(first * 1_000_000),
        "end_ns": pa.array(last * 1_000_000),
        "src_ip": src_text,
        "dst_ip": dst_text,
        "src_port": pa.array(h16[g + 40].astype(np.int32)),
        "dst_port": pa.array(h16[g + 42].astype(np.int32)),
        "protocol": pa.array(buf[g + 44].astype(np.int16)),
        "packets": pa.array(w64[g + 24].astype(np.int64)),
        "bytes": pa.array(w64[g + 32].astype(np.int64)),
        "rev_packets": pa.array(q(np.where(cnt >= 0, cnt + 8, -1)).astype(np.int64)),
        "rev_bytes": pa.array(q(np.where(cnt >= 0, cnt + 16, -1)).astype(np.int64)),
        "tcp_flags": pa.array(buf[g + 45].astype(np.int16)),
        "initiator": pa.array(np.full(n, INITIATOR_UNKNOWN, dtype=np.int8)),
        "source": pa.array(["nfdump"]).take(pa.array(np.zeros(n, dtype=np.int64))),
        "exporter": exporter,
    }
    table = assemble_flows(columns, n)
    return table, problem.get(status, "")


_V6_ORDER = np.array([7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8], dtype=np.int64)


def _v6_bytes(buf: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Address bytes in network order: nfdump keeps an IPv6 address as two host-order
    (little-endian) u64, the high half first."""
    return buf[at[:, None] + _V6_ORDER]


def _exporter_info(block: bytes, at: int, exporters: dict[int, str]) -> None:
    """An exporter-info record: sysid -> exporter address."""
    if at + 36 > len(block):
        return
    hi, lo, family, sysid = struct.unpack_from("<QQHH", block, at + 8)
    if family == 2:
        exporters[sysid] = ".".join(str(b) for b in (lo & 0xFFFFFFFF).to_bytes(4, "big"))
    else:
        raw = hi.to_bytes(8, "big") + lo.to_bytes(8, "big")
        exporters[sysid] = ipv6_text(np.frombuffer(raw, dtype=np.uint8).reshape(1, 16))[0].as_py()


def _exporter_column(
    buf: np.ndarray,
    w32: np.ndarray,
    w64: np.ndarray,
    r4: np.ndarray,
    r6: np.ndarray,
    sysid: np.ndarray,
    exporters: dict[int, str],
) -> pa.Array:
    """The exporter's address: the record's own 'received from' element, else the file's
    exporter list by sysid, else null."""
    n = r4.shape[0]
    known = sorted(exporters)
    names = pa.array([exporters[k] for k in known] + [None], type=pa.string())
    lookup = np.full(max(known, default=0) + 2, len(known), dtype=np.int64)
    for i, key in enumerate(known):
        lookup[key] = i
    index = lookup[np.minimum(sysid, lookup.shape[0] - 1)]
    result = names.take(pa.array(index))
    if (r4 >= 0).any():
        own = ipv4_text(np.where(r4 >= 0, w32[np.where(r4 >= 0, r4, 0)], 0))
        result = pc.if_else(pa.array(r4 >= 0), own, result)
    if (r6 >= 0).any():
        own6 = ipv6_text(_v6_bytes(buf, np.where(r6 >= 0, r6, 0)))
        result = pc.if_else(pa.array(r6 >= 0), own6, result)
    assert result.type == pa.string() and len(result) == n
    return result


# --------------------------------------------------------------------------------------------
# Files


def read_nfdump(path: str | Path) -> NfdumpResult:
    """Read one nfdump 1.7 file.

    Raises :class:`InputError` when the file is not an nfdump file at all or uses a layout or
    compression we cannot read; a file that breaks off (truncated, a corrupt block) returns the
    records before the break with ``problem`` saying where.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    if len(data) < _FILE_HEADER.size or not looks_like_nfdump(data):
        raise InputError(f"{path}: not an nfdump file (no 0xA50C magic)")
    _, layout, _, _, compression, encryption, _, _, appendix, _, blocks = _FILE_HEADER.unpack_from(
        data
    )
    if layout == 1:
        raise InputError(
            f"{path}: nfdump 1.6 file layout (version 1) is not supported; convert it with "
            "nfdump 1.7: 'nfdump -r OLD -w NEW'"
        )
    if layout != 2:
        raise InputError(f"{path}: unknown nfdump file layout version {layout}")
    kind = compression & 0x0F if compression not in _COMPRESSION else compression
    name = _COMPRESSION.get(kind, f"code {compression}")
    if kind not in _COMPRESSION:
        raise InputError(f"{path}: unsupported nfdump compression (code {compression})")
    tables: list[pa.Table] = []
    exporters: dict[int, str] = {}
    problem: str | None = None
    at = _FILE_HEADER.size
    # blocks end where the appendix starts; a file still being written says 0 blocks so far
    limit = appendix if _FILE_HEADER.size < appendix <= len(data) else len(data)
    done = 0
    while at < limit and (blocks == 0 or done < blocks):
        number = done + 1
        if at + _BLOCK_HEADER.size > len(data):
            problem = f"file is truncated: block {number} header is cut short (byte {at})"
            break
        count, size, btype, flags = _BLOCK_HEADER.unpack_from(data, at)
        body_at = at + _BLOCK_HEADER.size
        if size > _MAX_BLOCK:
            problem = f"block {number} has an impossible size {size} (byte {at})"
            break
        if body_at + size > len(data):
            problem = f"file is truncated: block {number} is cut short (byte {at})"
            if btype == 3 and (kind == 0 or flags & _FLAG_UNCOMPRESSED):
                # uncompressed: the whole records before the cut are still good
                table, _ = _decode_block(data[body_at:], count, exporters)
                tables.append(table)
            break
        at = body_at + size
        if encryption and not flags & _FLAG_UNENCRYPTED:
            raise InputError(f"{path}: encrypted nfdump blocks are not supported")
        done = number
        if btype != 3:
            continue  # other block types carry no V3 flow records
        body = data[body_at : body_at + size]
        try:
            raw = body if flags & _FLAG_UNCOMPRESSED else _decompress(kind, body, size * 4)
        except ValueError as exc:
            if "package" in str(exc):
                raise InputError(f"{path}: {exc}") from exc
            problem = f"block {number}: {exc} (byte {body_at})"
            break
        table, status = _decode_block(raw, count, exporters)
        if table.num_rows:
            tables.append(table)
        if status:
            problem = f"block {number}: {status}"
            break
    if problem is None and blocks and done < blocks:
        problem = f"file is truncated: {done} of {blocks} blocks present"
    table = pa.concat_tables(tables) if tables else empty_flows()
    return NfdumpResult(table=table, problem=problem, compression=name, blocks=done)
