#!/usr/bin/env python3
"""Summarise the TCP conversations in a small pcap, and check that the mining one is complete.

Self-contained on purpose (stdlib only, no minewatch imports): it is the independent check of
what the recorder produced, so it should not share code with the detectors it will be used to
test. It reads classic pcap files with Ethernet, Linux cooked (SLL) or raw-IP link layers, IPv4
and IPv6, reassembles each direction of each TCP connection by sequence number and, where the
payload is newline-delimited JSON, lists the JSON-RPC methods seen.

Usage::

    python3 scripts/sample/summarise_capture.py capture.pcap --pool-port 14733 --require-mining
    python3 scripts/sample/summarise_capture.py capture.pcap --json
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import struct
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
_TCP_SYN = 0x02
_TCP_ACK = 0x10


@dataclass(slots=True)
class Direction:
    """The bytes one side of a TCP connection sent, gathered by sequence number."""

    segments: dict[int, bytes] = field(default_factory=dict)
    packets: int = 0

    def add(self, seq: int, payload: bytes) -> None:
        self.packets += 1
        if payload and len(payload) > len(self.segments.get(seq, b"")):
            self.segments[seq] = payload

    def stream(self) -> bytes:
        """The payload in sequence order, overlapping retransmissions removed."""
        out = bytearray()
        end: int | None = None
        for seq in sorted(self.segments):  # no wrap-around in captures this short
            data = self.segments[seq]
            stop = seq + len(data)
            if end is not None:
                if stop <= end:
                    continue
                data = data[max(0, end - seq) :]
            out += data
            end = stop if end is None else max(end, stop)
        return bytes(out)


@dataclass(slots=True)
class Conversation:
    """One TCP connection: who opened it, packet counts and both byte streams."""

    client: tuple[str, int]
    server: tuple[str, int]
    first_ts: float
    last_ts: float
    packets: int = 0
    wire_bytes: int = 0
    up: Direction = field(default_factory=Direction)  # client -> server
    down: Direction = field(default_factory=Direction)  # server -> client

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary: endpoints, sizes and what the payload looks like."""
        up, down = self.up.stream(), self.down.stream()
        summary: dict[str, Any] = {
            "client": f"{self.client[0]}:{self.client[1]}",
            "server": f"{self.server[0]}:{self.server[1]}",
            "server_port": self.server[1],
            "packets": self.packets,
            "wire_bytes": self.wire_bytes,
            "payload_up": len(up),
            "payload_down": len(down),
            "start": self.first_ts,
            "seconds": round(self.last_ts - self.first_ts, 3),
        }
        if up[:4] in (b"GET ", b"POST", b"HEAD", b"PUT "):
            summary["kind"] = "http"
            summary["requests"] = [
                line.decode("latin-1")
                for line in up.split(b"\r\n")
                if line[:4] in (b"GET ", b"POST", b"HEAD", b"PUT ")
            ]
            summary["responses"] = [
                line.decode("latin-1") for line in down.split(b"\r\n") if line.startswith(b"HTTP/")
            ]
        elif up.lstrip()[:1] == b"{":
            summary["kind"] = "json-lines"
            summary.update(json_rpc_summary(up, down))
        else:
            summary["kind"] = "other"
        return summary


def json_lines(stream: bytes) -> list[dict[str, Any]]:
    """Every JSON object in a newline-delimited stream; other lines are skipped."""
    out = []
    for line in stream.split(b"\n"):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def json_rpc_summary(up: bytes, down: bytes) -> dict[str, Any]:
    """Methods each side called, and the first message of each method for inspection."""
    sent, received = json_lines(up), json_lines(down)
    client_methods = Counter(str(m["method"]) for m in sent if "method" in m)
    server_methods = Counter(str(m["method"]) for m in received if "method" in m)
    results = Counter(
        "error" if m.get("error") else "result" for m in received if "method" not in m
    )
    first: dict[str, Any] = {}
    for m in sent + received:
        if "method" in m:
            first.setdefault(str(m["method"]), m)
    return {
        "client_methods": dict(client_methods),
        "server_methods": dict(server_methods),
        "server_replies": dict(results),
        "first_message": first,
        "replies": [m for m in received if "method" not in m],
    }


def _ip_layer(linktype: int, frame: bytes) -> bytes | None:
    if linktype == LINKTYPE_ETHERNET:
        ethertype, offset = struct.unpack_from("!H", frame, 12)[0], 14
        while ethertype in (0x8100, 0x88A8):  # VLAN tags
            ethertype, offset = struct.unpack_from("!H", frame, offset + 2)[0], offset + 4
        return frame[offset:] if ethertype in (0x0800, 0x86DD) else None
    if linktype == LINKTYPE_LINUX_SLL:
        return frame[16:] if struct.unpack_from("!H", frame, 14)[0] in (0x0800, 0x86DD) else None
    if linktype == LINKTYPE_RAW:
        return frame
    raise ValueError(f"unsupported link type {linktype}")


def _tcp(ip: bytes) -> tuple[str, str, bytes] | None:
    version = ip[0] >> 4
    if version == 4:
        if ip[9] != 6:
            return None
        header = (ip[0] & 0x0F) * 4
        total = struct.unpack_from("!H", ip, 2)[0]
        src, dst = ipaddress.IPv4Address(ip[12:16]), ipaddress.IPv4Address(ip[16:20])
        return str(src), str(dst), ip[header:total]
    if version == 6:
        if ip[6] != 6:  # extension headers do not occur in our captures
            return None
        length = struct.unpack_from("!H", ip, 4)[0]
        src6, dst6 = ipaddress.IPv6Address(ip[8:24]), ipaddress.IPv6Address(ip[24:40])
        return str(src6), str(dst6), ip[40 : 40 + length]
    return None


def read_pcap(path: Path) -> tuple[int, list[tuple[float, int, bytes]]]:
    """Link type and (timestamp, original length, bytes) of every record in a classic pcap."""
    data = path.read_bytes()
    magic = data[:4]
    formats = {
        b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
        b"\xa1\xb2\xc3\xd4": (">", 1e-6),
        b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
        b"\xa1\xb2\x3c\x4d": (">", 1e-9),
    }
    if magic not in formats:
        raise ValueError(f"{path}: not a classic pcap file (magic {magic.hex()})")
    endian, unit = formats[magic]
    linktype = struct.unpack_from(endian + "I", data, 20)[0] & 0x0FFFFFFF
    records = []
    offset = 24
    while offset + 16 <= len(data):
        sec, frac, caplen, origlen = struct.unpack_from(endian + "IIII", data, offset)
        offset += 16
        if offset + caplen > len(data):
            raise ValueError(f"{path}: truncated record at byte {offset - 16}")
        records.append((sec + frac * unit, origlen, data[offset : offset + caplen]))
        offset += caplen
    return linktype, records


def conversations(path: Path) -> tuple[int, list[Conversation]]:
    """Packet count and the TCP conversations of a capture, in order of first packet."""
    linktype, records = read_pcap(path)
    convs: dict[frozenset[tuple[str, int]], Conversation] = {}
    for ts, origlen, frame in records:
        ip = _ip_layer(linktype, frame)
        parsed = _tcp(ip) if ip else None
        if parsed is None:
            continue
        src, dst, tcp = parsed
        sport, dport, seq = struct.unpack_from("!HHI", tcp, 0)
        flags = tcp[13]
        payload = tcp[(tcp[12] >> 4) * 4 :]
        a, b = (src, sport), (dst, dport)
        key = frozenset((a, b))
        conv = convs.get(key)
        if conv is None:
            # Whoever sends the bare SYN is the client; without one, guess the lower port serves.
            is_syn = flags & _TCP_SYN and not flags & _TCP_ACK
            client, server = (a, b) if is_syn or sport > dport else (b, a)
            conv = convs[key] = Conversation(client, server, ts, ts)
        conv.last_ts = ts
        conv.packets += 1
        conv.wire_bytes += origlen
        (conv.up if a == conv.client else conv.down).add(seq, payload)
    return len(records), sorted(convs.values(), key=lambda c: c.first_ts)


def mining_problems(summary: dict[str, Any]) -> list[str]:
    """What an XMRig stratum session is missing, if anything (an empty list means complete)."""
    problems = []
    first = summary.get("first_message", {})
    login = first.get("login", {}).get("params", {})
    if not str(login.get("agent", "")).startswith("XMRig/"):
        problems.append("no client login with an XMRig agent")
    job = first.get("job", {}).get("params", {})
    if not (job.get("blob") and job.get("target")):
        problems.append("no server job push with blob and target")
    if not summary.get("client_methods", {}).get("submit"):
        problems.append("no client submit")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("pcap", type=Path)
    parser.add_argument(
        "--pool-port",
        type=int,
        default=14733,
        help="server port of the mining conversation (default 14733)",
    )
    parser.add_argument(
        "--require-mining",
        action="store_true",
        help="fail unless the pool conversation has login, job and submit",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)

    count, convs = conversations(args.pcap)
    summaries = [c.describe() for c in convs]
    if args.json:
        print(json.dumps({"packets": count, "conversations": summaries}, indent=2))
    else:
        print(f"{args.pcap}: {count} packets, {len(convs)} TCP conversations")
        for s in summaries:
            detail = ""
            if s["kind"] == "json-lines":
                detail = f" client {s['client_methods']} server {s['server_methods']}"
            elif s["kind"] == "http":
                detail = f" {s['requests']}"
            print(
                f"  {s['client']} -> {s['server']} {s['packets']} pkts {s['seconds']} s "
                f"{s['kind']}{detail}"
            )

    if args.require_mining:
        pool = [s for s in summaries if s["server_port"] == args.pool_port]
        if not pool:
            print(f"error: no conversation to port {args.pool_port}", file=sys.stderr)
            return 1
        for s in pool:
            for problem in mining_problems(s):
                print(f"error: {s['client']} -> {s['server']}: {problem}", file=sys.stderr)
                return 1
            if not s.get("client_methods", {}).get("keepalived"):
                print(f"warning: {s['client']} -> {s['server']}: no keepalived", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
