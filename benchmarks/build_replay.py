"""Build a large Ethernet pcap by replaying the labelled corpus with shifted addresses and times.

Every capture under ``CORPUS/mining`` and ``CORPUS/benign`` is read once with
:func:`minewatch.net.capture.reader.read_capture` and turned into one "base" block of classic pcap
records (Ethernet link type). The output file is that block written over and over; each
repetition ``r`` differs from the base only in

* addresses: the last 16 bits of every unicast IPv4 address (the last two octets) have
  ``257 * r`` added modulo 2**16, so the address stays in its /16 and its class (private,
  loopback, public) does not change; IPv6 addresses get the same offset in bytes 12-13 (the
  interface identifier). Multicast and broadcast addresses (IPv4 224.0.0.0/3, IPv6 ff00::/8) and
  IPv6 addresses in ::/96 (unspecified, loopback) are left as they are;
* timestamps: within a repetition the files follow each other (1 ms apart), each keeping its own
  packet spacing, except that gaps longer than 5 minutes are cut to 5 minutes and a packet stamped
  earlier than the one before it gets the same time as that one; repetition ``r`` starts where
  ``r - 1`` ends.

Checksums: every IPv4 header checksum is recomputed (so it is valid even where the original was
not). TCP, UDP and ICMPv6 checksums, which cover the addresses through the pseudo-header, are
updated incrementally (RFC 1624): one that was right stays right, one that was wrong (checksum
offload on the capturing host) stays wrong by the same amount. A UDP checksum of 0 (none) stays 0.
IPv6 packets whose transport header follows extension headers, and IPv4 fragments after the
first, keep their transport checksum as it was.

Link layers: Linux cooked v1/v2, BSD/OpenBSD loopback and raw IP packets get a synthetic
14-byte Ethernet header (locally administered MACs 02:00:00:00:00:01 -> 02:00:00:00:00:02) in
place of their own; packets whose link layer cannot be expressed as Ethernet (an unknown link type,
a cooked header whose protocol is not an EtherType, a loopback family that is not IP) are skipped
and counted.

All work per repetition is a copy of the base block plus numpy scatters of the changed fields;
each repetition is written with one ``write`` call. Only whole repetitions are written, so the
file is at least ``--size-gb`` GiB (2**30 bytes: the target then holds for either meaning of GB).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_SRC = Path(__file__).resolve().parents[1] / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

from minewatch.errors import CaptureError  # noqa: E402
from minewatch.net.capture.reader import PacketTable, looks_like_capture, read_capture  # noqa: E402

__all__ = ["DEFAULT_CORPUS", "ReplayStats", "build_replay", "main"]

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared/corpus"
GIB = 1 << 30
SNAPLEN = 262_144
ADDR_STEP = 257  # per repetition: +1 in each of the last two octets (for the first 255)
START_NS = 1_700_000_000 * 1_000_000_000  # 2023-11-14, first packet of repetition 0
MAX_GAP_NS = 300 * 1_000_000_000
FILE_GAP_NS = 1_000_000
SRC_MAC = bytes.fromhex("020000000001")
DST_MAC = bytes.fromhex("020000000002")

# LINKTYPE_* values understood here (same set as minewatch.net.capture.decode).
_ETHERNET, _NULL, _LOOP, _SLL, _SLL2 = 1, 0, 108, 113, 276
_RAW = (101, 12, 14)
_IPV4_LT, _IPV6_LT = 228, 229
_ET_IPV4, _ET_IPV6 = 0x0800, 0x86DD
_VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
_BSD_INET6 = (10, 23, 24, 26, 28, 30)

_PCAP_FILE_HEADER = (
    np.array([0xA1B2C3D4], dtype="<u4").tobytes()
    + np.array([2, 4], dtype="<u2").tobytes()
    + np.array([0, 0, SNAPLEN, _ETHERNET], dtype="<u4").tobytes()
)


@dataclass(slots=True)
class ReplayStats:
    """What :func:`build_replay` wrote."""

    path: Path
    files: int
    packets: int
    bytes: int
    repetitions: int
    packets_per_repetition: int
    skipped_per_repetition: int
    repetition_span_s: float
    seconds: float


# --------------------------------------------------------------------------------------------
# Byte-level helpers (all vectorised over arrays of offsets).


def _u16be(buf: np.ndarray, at: np.ndarray) -> np.ndarray:
    out: np.ndarray = (buf[at].astype(np.int64) << 8) | buf[at + 1].astype(np.int64)
    return out


def _u32(buf: np.ndarray, at: np.ndarray, little: bool) -> np.ndarray:
    b = [buf[at + k].astype(np.int64) for k in range(4)]
    if little:
        b.reverse()
    out: np.ndarray = (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]
    return out


def _put_u16be(buf: np.ndarray, at: np.ndarray, value: np.ndarray) -> None:
    buf[at] = (value >> 8) & 0xFF
    buf[at + 1] = value & 0xFF


def _fold(s: np.ndarray) -> np.ndarray:
    """Fold a sum of 16-bit words into 16 bits with end-around carry."""
    for _ in range(3):
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for every (s, n) pair, without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.cumsum(lengths) - lengths
    within = np.arange(total, dtype=np.int64) - np.repeat(first, lengths)
    out: np.ndarray = np.repeat(starts.astype(np.int64), lengths) + within
    return out


# --------------------------------------------------------------------------------------------
# One corpus file -> Ethernet pcap records.


@dataclass(slots=True)
class _Block:
    data: np.ndarray  # pcap records, timestamps left zero
    rec_start: np.ndarray  # record header offsets within data
    frame_len: np.ndarray  # captured length of each Ethernet frame
    rel_ns: np.ndarray  # packet time relative to the file's first packet
    skipped: int


def _little_endian(buf: np.ndarray) -> bool:
    head = bytes(buf[:4])
    if head in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        return True
    if head == b"\x0a\x0d\x0d\x0a":
        return bytes(buf[8:12]) == b"\x4d\x3c\x2b\x1a"
    return False


def _to_ethernet(t: PacketTable) -> _Block:
    buf, off, cap, lt = t.buf, t.offset.astype(np.int64), t.caplen.astype(np.int64), t.linktype
    n = off.shape[0]
    # Original (wire) length: in classic pcap records and in pcapng enhanced and simple packet
    # blocks alike it is the 32-bit field just before the packet data.
    orig = _u32(buf, off - 4, _little_endian(buf)) if n else np.zeros(0, dtype=np.int64)
    orig = np.where((orig < cap) | (orig > 0x7FFFFFFF), cap, orig)

    strip = np.zeros(n, dtype=np.int64)
    etype = np.zeros(n, dtype=np.int64)  # EtherType of the synthetic header; 0 = keep as is
    ok = np.zeros(n, dtype=bool)
    safe = np.clip(off, 0, buf.shape[0] - 32)  # header reads below are masked by caplen

    m = lt == _ETHERNET
    ok[m] = True

    m = (lt == _SLL) & (cap >= 16)
    etype[m], strip[m] = _u16be(buf, safe[m] + 14), 16
    m = (lt == _SLL2) & (cap >= 20)
    etype[m], strip[m] = _u16be(buf, safe[m]), 20

    m = ((lt == _NULL) | (lt == _LOOP)) & (cap >= 4)
    fam = _u32(buf, safe[m], little=False)
    fam = np.where(fam > 0xFFFF, fam >> 24, fam)  # LINKTYPE_NULL is in host byte order
    etype[m] = np.where(fam == 2, _ET_IPV4, np.where(np.isin(fam, _BSD_INET6), _ET_IPV6, 0))
    strip[m] = 4

    m = np.isin(lt, _RAW) & (cap >= 1)
    ver = buf[safe[m]] >> 4
    etype[m] = np.where(ver == 4, _ET_IPV4, np.where(ver == 6, _ET_IPV6, 0))
    etype[lt == _IPV4_LT] = _ET_IPV4
    etype[lt == _IPV6_LT] = _ET_IPV6

    ok |= etype >= 0x0600  # a real EtherType, not an 802.3 length or an unknown family
    keep = np.flatnonzero(ok)
    off, cap, orig, strip, etype = off[keep], cap[keep], orig[keep], strip[keep], etype[keep]
    add = np.where(etype > 0, 14, 0)
    frame_len = cap - strip + add
    rec_len = 16 + frame_len
    rec_start = np.cumsum(rec_len) - rec_len
    data = np.zeros(int(rec_len.sum()), dtype=np.uint8)

    # Packet bytes (without any original non-Ethernet link header).
    body = cap - strip
    data[_ranges(rec_start + 16 + add, body)] = buf[_ranges(off + strip, body)]

    # Record headers: timestamps stay zero here, captured and original lengths are final.
    lens = np.zeros((keep.shape[0], 4), dtype="<u4")
    lens[:, 2] = frame_len
    lens[:, 3] = orig - strip + add
    data[rec_start[:, None] + np.arange(16)] = lens.view(np.uint8).reshape(-1, 16)

    # Synthetic Ethernet headers.
    conv = np.flatnonzero(add > 0)
    if conv.shape[0]:
        eth = np.zeros((conv.shape[0], 14), dtype=np.uint8)
        eth[:, 0:6] = np.frombuffer(DST_MAC, dtype=np.uint8)
        eth[:, 6:12] = np.frombuffer(SRC_MAC, dtype=np.uint8)
        eth[:, 12] = etype[conv] >> 8
        eth[:, 13] = etype[conv] & 0xFF
        data[(rec_start[conv] + 16)[:, None] + np.arange(14)] = eth

    ts = t.ts_ns[keep].astype(np.int64)
    gaps = np.clip(np.diff(ts), 0, MAX_GAP_NS)
    rel_ns = np.concatenate([np.zeros(min(1, ts.shape[0]), dtype=np.int64), np.cumsum(gaps)])
    return _Block(data, rec_start, frame_len, rel_ns, int(n - keep.shape[0]))


# --------------------------------------------------------------------------------------------
# The base repetition and what changes between repetitions.


@dataclass(slots=True)
class _Base:
    data: np.ndarray
    files: int
    skipped: int
    span_ns: int
    ts_at: np.ndarray  # (n, 8) byte positions of each record's ts_sec/ts_usec
    rel_ns: np.ndarray
    # Shifted 16-bit address words: position in data, original value.
    addr_at: np.ndarray
    addr_old: np.ndarray
    # IPv4 header checksums: position, sum of the header's other constant words, and for
    # each of the two shiftable address words an index into addr_* (-1: not shifted).
    ip4_ck_at: np.ndarray
    ip4_sum: np.ndarray
    ip4_src: np.ndarray
    ip4_dst: np.ndarray
    ip4_src_word: np.ndarray
    ip4_dst_word: np.ndarray
    # Transport checksums covering a pseudo-header: position, original value, UDP flag, and
    # the indices into addr_* of the address words whose change they must absorb.
    l4_ck_at: np.ndarray
    l4_old: np.ndarray
    l4_udp: np.ndarray
    l4_src: np.ndarray
    l4_dst: np.ndarray

    @property
    def packets(self) -> int:
        return int(self.rel_ns.shape[0])


def _corpus_files(corpus: Path) -> list[Path]:
    files: list[Path] = []
    for sub in ("mining", "benign"):
        folder = corpus / sub
        if not folder.is_dir():
            raise SystemExit(f"build_replay: corpus folder {folder} does not exist")
        for p in sorted(folder.iterdir()):
            if p.is_file():
                with p.open("rb") as fh:
                    if looks_like_capture(fh.read(4)):
                        files.append(p)
    if not files:
        raise SystemExit(f"build_replay: no capture files under {corpus}")
    return files


def _build_base(corpus: Path, verbose: bool) -> _Base:
    blocks: list[_Block] = []
    starts: list[int] = []
    for path in _corpus_files(corpus):
        try:
            table = read_capture(path)
        except CaptureError as exc:
            print(f"build_replay: skipping {exc}", file=sys.stderr)
            continue
        if table.problem and verbose:
            print(f"build_replay: {path.name}: {table.problem}", file=sys.stderr)
        block = _to_ethernet(table)
        blocks.append(block)
    if not blocks or sum(b.rec_start.shape[0] for b in blocks) == 0:
        raise SystemExit("build_replay: the corpus holds no replayable packets")

    # Lay the files out one after another, in time and in the buffer.
    pos, clock = 0, 0
    rec_starts, rel, frame_lens = [], [], []
    for b in blocks:
        starts.append(pos)
        rec_starts.append(b.rec_start + pos)
        rel.append(b.rel_ns + clock)
        frame_lens.append(b.frame_len)
        pos += b.data.shape[0]
        if b.rel_ns.shape[0]:
            clock += int(b.rel_ns[-1]) + FILE_GAP_NS
    data = np.concatenate([b.data for b in blocks])
    rec_start = np.concatenate(rec_starts)
    frame_len = np.concatenate(frame_lens)
    rel_ns = np.concatenate(rel)

    # Parse Ethernet / VLAN / IP in the base block (padded so masked reads stay in bounds).
    pad = np.zeros(data.shape[0] + 128, dtype=np.uint8)
    pad[: data.shape[0]] = data
    f = rec_start + 16
    end = f + frame_len
    etype = np.where(frame_len >= 14, _u16be(pad, f + 12), 0)
    l3 = f + 14
    for _ in range(2):
        tagged = np.isin(etype, _VLAN_TPIDS) & (l3 + 4 <= end)
        etype = np.where(tagged, _u16be(pad, l3 + 2), etype)
        l3 = np.where(tagged, l3 + 4, l3)

    addr_at: list[np.ndarray] = []
    addr_old: list[np.ndarray] = []
    n_words = 0

    def add_words(at: np.ndarray, shift: np.ndarray) -> np.ndarray:
        """Register the shiftable words at ``at[shift]``; return their indices (-1 elsewhere)."""
        nonlocal n_words
        idx = np.full(at.shape[0], -1, dtype=np.int64)
        k = int(shift.sum())
        idx[shift] = np.arange(n_words, n_words + k)
        addr_at.append(at[shift])
        addr_old.append(_u16be(pad, at[shift]))
        n_words += k
        return idx

    # IPv4: whole header captured, so its checksum can be recomputed.
    ihl = (pad[l3] & 0x0F).astype(np.int64) * 4
    v4 = (etype == _ET_IPV4) & (pad[l3] >> 4 == 4) & (ihl >= 20) & (l3 + ihl <= end)
    a4, ihl4 = l3[v4], ihl[v4]
    src4 = add_words(a4 + 14, pad[a4 + 12] < 224)
    dst4 = add_words(a4 + 18, pad[a4 + 16] < 224)
    ip4_sum = np.zeros(a4.shape[0], dtype=np.int64)
    for w in range(30):
        if w in (5, 7, 9):  # checksum, src low word, dst low word
            continue
        inside = w * 2 < ihl4
        ip4_sum += np.where(inside, _u16be(pad, a4 + 2 * w), 0)
    proto4 = pad[a4 + 9]
    first4 = (_u16be(pad, a4 + 6) & 0x1FFF) == 0
    l4_4 = a4 + ihl4

    # IPv6: fixed header captured.
    v6 = (etype == _ET_IPV6) & (pad[l3] >> 4 == 6) & (l3 + 40 <= end)
    a6 = l3[v6]

    def v6_shiftable(addr: np.ndarray) -> np.ndarray:
        zero96 = np.ones(addr.shape[0], dtype=bool)
        for k in range(12):
            zero96 &= pad[addr + k] == 0
        ok: np.ndarray = (pad[addr] != 0xFF) & ~zero96
        return ok

    src6 = add_words(a6 + 8 + 12, v6_shiftable(a6 + 8))
    dst6 = add_words(a6 + 24 + 12, v6_shiftable(a6 + 24))
    proto6 = pad[a6 + 6]
    l4_6 = a6 + 40

    # Transport checksums (the field must lie within the captured bytes).
    end4, end6 = end[v4], end[v6]
    ck_at, ck_udp, ck_src, ck_dst = [], [], [], []
    for proto, field, udp in ((6, 16, False), (17, 6, True)):
        m4 = (proto4 == proto) & first4 & (l4_4 + field + 2 <= end4)
        ck_at.append(l4_4[m4] + field)
        ck_udp.append(np.full(int(m4.sum()), udp))
        ck_src.append(src4[m4])
        ck_dst.append(dst4[m4])
    for proto, field, udp in ((6, 16, False), (17, 6, True), (58, 2, False)):
        m6 = (proto6 == proto) & (l4_6 + field + 2 <= end6)
        ck_at.append(l4_6[m6] + field)
        ck_udp.append(np.full(int(m6.sum()), udp))
        ck_src.append(src6[m6])
        ck_dst.append(dst6[m6])
    l4_ck_at = np.concatenate(ck_at)
    l4_old = _u16be(pad, l4_ck_at)
    l4_udp = np.concatenate(ck_udp).astype(bool)
    l4_src, l4_dst = np.concatenate(ck_src), np.concatenate(ck_dst)
    live = ~(l4_udp & (l4_old == 0)) & ((l4_src >= 0) | (l4_dst >= 0))

    aw_at = np.concatenate(addr_at)
    aw_old = np.concatenate(addr_old)
    return _Base(
        data=data,
        files=len(blocks),
        skipped=sum(b.skipped for b in blocks),
        span_ns=clock,
        ts_at=rec_start[:, None] + np.arange(8),
        rel_ns=rel_ns,
        addr_at=aw_at,
        addr_old=aw_old,
        ip4_ck_at=a4 + 10,
        ip4_sum=ip4_sum,
        ip4_src=src4,
        ip4_dst=dst4,
        ip4_src_word=_u16be(pad, a4 + 14),
        ip4_dst_word=_u16be(pad, a4 + 18),
        l4_ck_at=l4_ck_at[live],
        l4_old=l4_old[live],
        l4_udp=l4_udp[live],
        l4_src=l4_src[live],
        l4_dst=l4_dst[live],
    )


def _patch(base: _Base, out: np.ndarray, rep: int) -> None:
    """Turn ``out`` (a copy of the base block) into repetition ``rep``."""
    ts = START_NS + rep * base.span_ns + base.rel_ns
    stamps = np.empty((ts.shape[0], 2), dtype="<u4")
    stamps[:, 0] = ts // 1_000_000_000
    stamps[:, 1] = (ts % 1_000_000_000) // 1000
    out[base.ts_at] = stamps.view(np.uint8).reshape(-1, 8)

    delta = (rep * ADDR_STEP) & 0xFFFF
    if delta == 0:
        new = base.addr_old
    else:
        new = (base.addr_old + delta) & 0xFFFF
        _put_u16be(out, base.addr_at, new)

    # IPv4 header checksum, recomputed from all header words.
    src = np.where(base.ip4_src >= 0, new[np.maximum(base.ip4_src, 0)], base.ip4_src_word)
    dst = np.where(base.ip4_dst >= 0, new[np.maximum(base.ip4_dst, 0)], base.ip4_dst_word)
    _put_u16be(out, base.ip4_ck_at, ~_fold(base.ip4_sum + src + dst) & 0xFFFF)

    if delta == 0:
        return
    # Transport checksums, RFC 1624: HC' = ~(~HC + ~m + m') for each changed word m -> m'.
    acc = (~base.l4_old) & 0xFFFF
    for idx in (base.l4_src, base.l4_dst):
        i = np.maximum(idx, 0)
        acc += np.where(idx >= 0, ((~base.addr_old[i]) & 0xFFFF) + new[i], 0)
    ck = ~_fold(acc) & 0xFFFF
    ck = np.where(base.l4_udp & (ck == 0), 0xFFFF, ck)
    _put_u16be(out, base.l4_ck_at, ck)


def build_replay(
    output: Path, size_gb: float = 1.0, corpus: Path = DEFAULT_CORPUS, verbose: bool = True
) -> ReplayStats:
    """Write the replay capture to ``output``; return what was written."""
    t0 = time.perf_counter()
    base = _build_base(corpus, verbose)
    target = int(size_gb * GIB)
    per_rep = base.data.shape[0]
    reps = max(1, -(-(target - len(_PCAP_FILE_HEADER)) // per_rep))
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".part")
    work = np.empty_like(base.data)
    with tmp.open("wb") as fh:
        fh.write(_PCAP_FILE_HEADER)
        for rep in range(reps):
            np.copyto(work, base.data)
            _patch(base, work, rep)
            fh.write(work.data)
    tmp.replace(output)
    return ReplayStats(
        path=output,
        files=base.files,
        packets=reps * base.packets,
        bytes=len(_PCAP_FILE_HEADER) + reps * per_rep,
        repetitions=reps,
        packets_per_repetition=base.packets,
        skipped_per_repetition=base.skipped,
        repetition_span_s=base.span_ns / 1e9,
        seconds=time.perf_counter() - t0,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("output", type=Path, help="pcap file to write")
    parser.add_argument(
        "--size-gb", type=float, default=1.0, help="minimum size in GiB (default 1.0)"
    )
    parser.add_argument(
        "--corpus",
        type=Path,
        default=DEFAULT_CORPUS,
        help=f"corpus folder holding mining/ and benign/ (default {DEFAULT_CORPUS})",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    args = parser.parse_args(argv)
    if args.size_gb <= 0:
        parser.error("--size-gb must be positive")
    stats = build_replay(args.output, args.size_gb, args.corpus, verbose=not args.quiet)
    if not args.quiet:
        print(
            f"wrote {stats.path}: {stats.packets:,} packets, {stats.bytes:,} bytes "
            f"({stats.repetitions} repetitions of {stats.packets_per_repetition:,} packets "
            f"from {stats.files} files, {stats.skipped_per_repetition} non-Ethernet-convertible "
            f"packets skipped per repetition; {stats.repetition_span_s:,.0f} s of capture time "
            f"each) in {stats.seconds:.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
