#!/usr/bin/env python3
"""Cut a pcap's packets to a snap length, but keep each TCP connection's handshake whole.

Why: the recordings must stay small (the repository holds them), so payloads are cut to 256
bytes: packet sizes (the original length stays in each record) and times are untouched, which is
all flow features need. But TLS metadata (SNI, JA3/JA4 from the ClientHello, the server's
certificate in TLS 1.2) and SSH banners/KEXINIT (HASSH) sit in the first few payload packets of a
connection and are longer than that; those packets are kept whole.

A per-packet loop is fine here: it runs once per recording, on a few thousand packets.

Usage::

    python3 pcapcut.py full.pcap cut.pcap --snap 256 --keep-first 10
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

__all__ = ["cut_pcap", "main"]

_MAGIC_US = 0xA1B2C3D4
_MAGIC_NS = 0xA1B23C4D
_LINKTYPE_ETHERNET = 1
_LINKTYPE_RAW = 101
_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_IPV6 = 0x86DD
_PROTO_TCP = 6


def _tcp_key_and_payload(frame: bytes, linktype: int) -> tuple[tuple[bytes, ...], int] | None:
    """(connection key, TCP payload length) of an Ethernet/raw IP frame, or None if not TCP."""
    at = 0
    if linktype == _LINKTYPE_ETHERNET:
        if len(frame) < 14:
            return None
        ethertype = int.from_bytes(frame[12:14], "big")
        at = 14
    elif linktype == _LINKTYPE_RAW and frame:
        ethertype = _ETHERTYPE_IPV4 if frame[0] >> 4 == 4 else _ETHERTYPE_IPV6
    else:
        return None
    if ethertype == _ETHERTYPE_IPV4 and len(frame) >= at + 20:
        ihl = (frame[at] & 0x0F) * 4
        if frame[at + 9] != _PROTO_TCP:
            return None
        total = int.from_bytes(frame[at + 2 : at + 4], "big")
        src, dst = frame[at + 12 : at + 16], frame[at + 16 : at + 20]
        tcp = at + ihl
        ip_payload = total - ihl
    elif ethertype == _ETHERTYPE_IPV6 and len(frame) >= at + 40:
        if frame[at + 6] != _PROTO_TCP:  # extension headers: not produced on our loopback
            return None
        ip_payload = int.from_bytes(frame[at + 4 : at + 6], "big")
        src, dst = frame[at + 8 : at + 24], frame[at + 24 : at + 40]
        tcp = at + 40
    else:
        return None
    if len(frame) < tcp + 13:
        return None
    sport, dport = frame[tcp : tcp + 2], frame[tcp + 2 : tcp + 4]
    payload = ip_payload - (frame[tcp + 12] >> 4) * 4
    a, b = (src, sport), (dst, dport)
    key = (*a, *b) if a <= b else (*b, *a)
    return key, payload


def cut_pcap(src: Path, dst: Path, snap: int, keep_first: int) -> tuple[int, int]:
    """Write ``src`` to ``dst`` with packets cut to ``snap`` bytes, except the first
    ``keep_first`` payload-carrying packets of each TCP connection. Returns (packets, kept whole).
    """
    data = src.read_bytes()
    if len(data) < 24:
        raise ValueError(f"{src}: not a pcap file (too short)")
    magic = struct.unpack("<I", data[:4])[0]
    if magic not in (_MAGIC_US, _MAGIC_NS):
        raise ValueError(f"{src}: not a little-endian classic pcap file")
    linktype = struct.unpack("<I", data[20:24])[0]
    out = [data[:24]]
    seen: dict[tuple[bytes, ...], int] = {}
    at, packets, whole = 24, 0, 0
    while at + 16 <= len(data):
        ts_s, ts_frac, caplen, origlen = struct.unpack_from("<IIII", data, at)
        frame = data[at + 16 : at + 16 + caplen]
        at += 16 + caplen
        packets += 1
        keep = caplen
        parsed = _tcp_key_and_payload(frame, linktype)
        if parsed is not None:
            key, payload = parsed
            if payload > 0:
                seen[key] = seen.get(key, 0) + 1
            if payload <= 0 or seen[key] > keep_first:
                keep = min(caplen, snap)
            elif caplen > snap:
                whole += 1
        else:
            keep = min(caplen, snap)
        out.append(struct.pack("<IIII", ts_s, ts_frac, keep, origlen))
        out.append(frame[:keep])
    dst.write_bytes(b"".join(out))
    return packets, whole


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--snap", type=int, default=256)
    parser.add_argument("--keep-first", type=int, default=10)
    args = parser.parse_args(argv)
    packets, whole = cut_pcap(args.src, args.dst, args.snap, args.keep_first)
    print(f"{packets} packets, {whole} kept whole", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
