"""Live flow records from a network interface: AF_PACKET capture, batch decode, incremental meter.

Why an AF_PACKET raw socket and not libpcap: it needs nothing beyond the standard library, and
simple beats clever here. Frames are read one ``recvmsg_into`` at a time straight into a
batch buffer, each with its kernel timestamp (``SO_TIMESTAMPNS``) and wire length; a batch is cut
every ``batch_seconds`` (or when the buffer is full) and then handled columnar like a capture file:
one :class:`~minewatch.net.capture.reader.PacketTable`, one
:func:`~minewatch.net.capture.decode.decode_headers`, one
:func:`~minewatch.net.flowrec.from_packets.records_from_headers`, and the records go into a
:class:`~minewatch.net.flowrec.meter.FlowMeter`, which keeps memory bounded (idle flows expire,
long connections leave slice by slice, the least recently active are evicted beyond
``max_flows``). The per-frame Python loop is the one sequential step: about 125,000 frames per
CPU-second (measured on loopback), enough for a server's own traffic or a mirror port of modest
load, not for a busy uplink (use a flow exporter and ``minewatch collect`` there). Capture and
metering alternate in one thread, so the socket's queue (``socket_buffer_bytes``) holds what
arrives meanwhile; the kernel counts what it could not queue (drops, read with
``PACKET_STATISTICS`` and reported).

On a loopback interface every packet passes the socket twice (as sent, ``PACKET_OUTGOING``, and as
received); a classic BPF filter makes the kernel drop the outgoing copy (the read loop skips it
too, should the filter not attach) so each packet is counted once, as tcpdump does. On other
interfaces outgoing packets are the host's own traffic and are kept. The socket is opened with
protocol 0 and only bound to the interface and ETH_P_ALL afterwards, so no frame of another
interface is queued in between.

DNS answers seen on the interface are kept in a bounded table (newest ``max_dns_answers``, none
older than ``dns_ttl_s``) and name the servers of later records, as in a capture.

Linux only; capture needs root or ``CAP_NET_RAW``. Both problems, and an unknown interface, are an
:class:`~minewatch.errors.InputError` with one clear sentence.

Example::

    with LiveFlows("eth0", max_flows=50_000) as live:
        while running:
            finished = live.poll()          # FLOW_SCHEMA records that finished this batch
            ...
        finished = live.close()             # what was still open
    print(live.stats.line())
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import select
import socket
import struct
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np
import pyarrow as pa

from minewatch.errors import InputError
from minewatch.net.capture.decode import decode_headers
from minewatch.net.capture.reader import PacketTable
from minewatch.net.flowrec.from_packets import (
    DEFAULT_SLICE_NS,
    DNS_ANSWER_SCHEMA,
    OpenState,
    attach_dns_names,
    dns_answers,
    records_from_headers,
)
from minewatch.net.flowrec.meter import FlowMeter, MeterStats
from minewatch.net.flowrec.table import empty_flows

__all__ = ["CaptureStats", "FrameBatch", "LiveCapture", "LiveFlows", "LiveStats"]

_ETH_P_ALL = 0x0003
_SOL_PACKET = 263
_PACKET_STATISTICS = 6
_PACKET_OUTGOING = 4
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_SCM_TIMESTAMPNS = _SO_TIMESTAMPNS
_SO_RCVBUFFORCE = 33
_TIMESPEC = struct.Struct("@qq")
_TPACKET_STATS = struct.Struct("@II")
_ARPHRD_ETHER, _ARPHRD_LOOPBACK, _ARPHRD_NONE = 1, 772, 65534
_ARPHRD_RAWIP = 519
_LINKTYPE_ETHERNET, _LINKTYPE_RAW = 1, 101
_LINKTYPE_OF_ARPHRD = {
    _ARPHRD_ETHER: _LINKTYPE_ETHERNET,
    _ARPHRD_LOOPBACK: _LINKTYPE_ETHERNET,  # Linux loopback frames carry a zeroed Ethernet header
    _ARPHRD_NONE: _LINKTYPE_RAW,  # tun devices, WireGuard: bare IP packets
    _ARPHRD_RAWIP: _LINKTYPE_RAW,
}
_SECOND = 1_000_000_000
_SO_ATTACH_FILTER = 26
_SKF_AD_PKTTYPE = (-0x1000 + 4) & 0xFFFFFFFF
_BPF_LD_B_ABS, _BPF_JEQ_K, _BPF_RET_K = 0x30, 0x15, 0x06
_SKIP_OUTGOING_BPF = (
    # Classic BPF run by the kernel on each frame: load the packet type, and drop the frame
    # (return 0) when it is PACKET_OUTGOING, else accept it whole.
    (_BPF_LD_B_ABS, 0, 0, _SKF_AD_PKTTYPE),
    (_BPF_JEQ_K, 0, 1, _PACKET_OUTGOING),
    (_BPF_RET_K, 0, 0, 0),
    (_BPF_RET_K, 0, 0, 0xFFFFFFFF),
)


def _attach_skip_outgoing(sock: socket.socket) -> bool:
    """Have the kernel drop outgoing copies before they reach the socket (half the frames on
    loopback); returns whether it worked (the read loop skips them anyway)."""
    insns = b"".join(struct.pack("@HBBI", *insn) for insn in _SKIP_OUTGOING_BPF)
    program = ctypes.create_string_buffer(insns, len(insns))
    fprog = struct.pack("@HP", len(_SKIP_OUTGOING_BPF), ctypes.addressof(program))
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)
    except OSError:
        return False
    return True


@dataclass(slots=True)
class CaptureStats:
    """What the socket saw: frames kept, frames skipped (loopback's outgoing copies), bytes on
    the wire of kept frames, frames cut to the snapshot length, and the kernel's drop count."""

    frames: int = 0
    skipped: int = 0
    wire_bytes: int = 0
    truncated: int = 0
    drops: int = 0
    batches: int = 0


@dataclass(slots=True)
class FrameBatch:
    """Frames read in one batch, as a packet table over one buffer (see :class:`PacketTable`)."""

    table: PacketTable
    wire_len: np.ndarray
    started_ns: int
    ended_ns: int

    def __len__(self) -> int:
        return len(self.table)


def _link_type(interface: str) -> tuple[int, int]:
    """The LINKTYPE_* of ``interface``'s frames and its ARPHRD type (from sysfs)."""
    path = Path("/sys/class/net") / interface / "type"
    try:
        hatype = int(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the link type of interface {interface!r}: {exc}") from exc
    linktype = _LINKTYPE_OF_ARPHRD.get(hatype)
    if linktype is None:
        raise InputError(
            f"interface {interface!r} has link type {hatype}; live capture reads Ethernet, "
            "loopback and raw-IP (tun) interfaces"
        )
    return linktype, hatype


class LiveCapture:
    """Frames from one interface through an AF_PACKET raw socket, read in time-boxed batches.

    Example::

        with LiveCapture("lo") as cap:
            batch = cap.read_batch(max_seconds=1.0)
            print(len(batch), cap.stats.drops)
    """

    def __init__(
        self,
        interface: str,
        *,
        snaplen: int = 65_535,
        buffer_bytes: int = 16 << 20,
        socket_buffer_bytes: int = 32 << 20,
        poll_seconds: float = 0.1,
    ) -> None:
        if snaplen < 64 or buffer_bytes < snaplen:
            raise ValueError("snaplen must be >= 64 and buffer_bytes >= snaplen")
        self.interface = interface
        self.snaplen = snaplen
        self.buffer_bytes = buffer_bytes
        self.socket_buffer_bytes = socket_buffer_bytes
        self.poll_seconds = poll_seconds
        self.stats = CaptureStats()
        self.linktype = _LINKTYPE_ETHERNET
        self.loopback = False
        self.kernel_filter = False
        """Whether the kernel drops loopback's outgoing copies (else the read loop does)."""
        self._sock: socket.socket | None = None

    def open(self) -> Self:
        """Open and bind the socket; :class:`InputError` for a missing privilege or interface."""
        if not sys.platform.startswith("linux") or not hasattr(socket, "AF_PACKET"):
            raise InputError("live capture needs Linux (AF_PACKET sockets)")
        try:
            socket.if_nametoindex(self.interface)
        except OSError:
            raise InputError(f"no network interface named {self.interface!r}") from None
        self.linktype, hatype = _link_type(self.interface)
        self.loopback = hatype == _ARPHRD_LOOPBACK
        try:
            # Protocol 0: the socket receives nothing until bind names the interface and the
            # protocol, so no frame of another interface slips in between.
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise InputError(
                f"capturing on {self.interface!r} needs root or the CAP_NET_RAW capability"
            ) from None
        try:
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            # A deep kernel queue rides out the decode pauses between batches; FORCE lifts the
            # rmem_max cap (root), the plain option is the fallback.
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, self.socket_buffer_bytes)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.socket_buffer_bytes)
            if self.loopback:
                self.kernel_filter = _attach_skip_outgoing(sock)
            sock.bind((self.interface, _ETH_P_ALL))  # Python converts to network order
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.ENODEV:
                raise InputError(f"no network interface named {self.interface!r}") from None
            raise InputError(f"cannot capture on {self.interface!r}: {exc.strerror}") from None
        self._sock = sock
        self._read_drops()  # the kernel counts from socket creation; start from zero here
        self.stats.drops = 0
        return self

    def close(self) -> None:
        """Read the final drop count and close the socket (idempotent)."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._read_drops()
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _read_drops(self) -> None:
        """Add the kernel's drops since the last read (the kernel resets its counters on read)."""
        if self._sock is None:
            return
        raw = self._sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, _TPACKET_STATS.size)
        _, drops = _TPACKET_STATS.unpack(raw)
        self.stats.drops += drops

    def read_batch(
        self, max_seconds: float = 1.0, max_frames: int = 1_000_000, stop: object = None
    ) -> FrameBatch:
        """Read frames for up to ``max_seconds`` (or ``max_frames``, or until the buffer is full,
        or until ``stop`` — anything with an ``is_set()`` — is set) and return them."""
        sock = self._sock
        if sock is None:
            raise InputError("the capture is not open")
        buf = bytearray(self.buffer_bytes)
        view = memoryview(buf)
        offsets: list[int] = []
        caplens: list[int] = []
        wirelens: list[int] = []
        stamps: list[int] = []
        pos = 0
        snaplen = self.snaplen
        limit = self.buffer_bytes - snaplen
        skip_outgoing = self.loopback
        ancsize = socket.CMSG_SPACE(_TIMESPEC.size)
        trunc = socket.MSG_TRUNC
        unpack = _TIMESPEC.unpack
        started = time.time_ns()
        deadline = time.monotonic() + max_seconds
        is_set = getattr(stop, "is_set", None)
        skipped = truncated = 0
        while pos <= limit and len(offsets) < max_frames:
            try:
                n, anc, _, addr = sock.recvmsg_into([view[pos : pos + snaplen]], ancsize, trunc)
            except BlockingIOError:  # nothing queued: wait a little, unless it is time to stop
                left = deadline - time.monotonic()
                if left <= 0 or (is_set is not None and is_set()):
                    break
                with contextlib.suppress(InterruptedError):
                    select.select([sock], [], [], min(left, self.poll_seconds))
                continue
            if skip_outgoing and addr[2] == _PACKET_OUTGOING:
                skipped += 1
            else:
                ts = 0
                for level, kind, data in anc:
                    if level == socket.SOL_SOCKET and kind == _SCM_TIMESTAMPNS:
                        sec, nsec = unpack(data[: _TIMESPEC.size])
                        ts = sec * _SECOND + nsec
                kept = min(n, snaplen)
                truncated += n > snaplen
                offsets.append(pos)
                caplens.append(kept)
                wirelens.append(n)
                stamps.append(ts or time.time_ns())
                pos += kept
            if time.monotonic() >= deadline:
                break
        self._read_drops()
        wire = np.array(wirelens, dtype=np.int64)
        self.stats.frames += len(offsets)
        self.stats.skipped += skipped
        self.stats.truncated += truncated
        self.stats.wire_bytes += int(wire.sum())
        self.stats.batches += 1
        count = len(offsets)
        table = PacketTable(
            path=f"live:{self.interface}",
            buf=np.frombuffer(buf, dtype=np.uint8)[:pos],
            offset=np.array(offsets, dtype=np.int64),
            caplen=np.array(caplens, dtype=np.int64),
            ts_ns=np.array(stamps, dtype=np.int64),
            linktype=np.full(count, self.linktype, dtype=np.int64),
        )
        return FrameBatch(table=table, wire_len=wire, started_ns=started, ended_ns=time.time_ns())


@dataclass(slots=True)
class LiveStats:
    """Counters of a live session: the capture's and the meter's, and DNS answers held."""

    capture: CaptureStats
    meter: MeterStats
    packets: int = 0
    """TCP/UDP packets decoded (other frames, such as ARP, make no flow records)."""
    dns_answers: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "capture": asdict(self.capture),
            "meter": self.meter.to_dict(),
            "packets": self.packets,
            "dns_answers": self.dns_answers,
        }

    def line(self) -> str:
        """One summary line for a person."""
        c, m = self.capture, self.meter
        return (
            f"{c.frames} frames, {self.packets} TCP/UDP packets, {c.drops} dropped by the kernel, "
            f"{m.records_out} records ({m.active} open flows, peak {m.peak_active}, "
            f"{m.evicted} evicted)"
        )


class LiveFlows:
    """Live capture, decoded in batches, metered into finished FLOW_SCHEMA records.

    ``poll()`` reads one batch and returns the records that finished (idle, slice closed, ended,
    evicted); :attr:`open_records` are those still being built; ``close()`` returns the rest.

    Example::

        with LiveFlows("lo", max_flows=1000, idle_timeout_s=30) as live:
            for _ in range(10):
                done = live.poll()
        print(live.stats.line())
    """

    def __init__(
        self,
        interface: str,
        *,
        max_flows: int = 100_000,
        idle_timeout_s: float = 120.0,
        slice_ns: int = DEFAULT_SLICE_NS,
        batch_seconds: float = 1.0,
        max_dns_answers: int = 10_000,
        dns_ttl_s: float = 3600.0,
        capture: LiveCapture | None = None,
    ) -> None:
        if batch_seconds <= 0 or idle_timeout_s <= 0 or max_dns_answers < 0:
            raise ValueError("batch_seconds and idle_timeout_s must be positive")
        self.capture = capture or LiveCapture(interface)
        self.meter = FlowMeter(
            slice_ns=slice_ns,
            idle_timeout_ns=int(idle_timeout_s * _SECOND),
            max_flows=max_flows,
        )
        self.slice_ns = slice_ns
        self.batch_seconds = batch_seconds
        self.max_dns_answers = max_dns_answers
        self.dns_ttl_ns = int(dns_ttl_s * _SECOND)
        self.stats = LiveStats(capture=self.capture.stats, meter=self.meter.stats)
        self._answers = DNS_ANSWER_SCHEMA.empty_table()
        self._opens = OpenState()
        # Who spoke first after a silence, and when each side last did, carried from batch to
        # batch: a pool's job push is often the first packet of its one-second batch.

    def open(self) -> Self:
        self.capture.open()
        return self

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.capture.close()

    @property
    def open_records(self) -> pa.Table:
        """Records still open in the meter (partial; a detector may look at them)."""
        return self.meter.open_records

    def poll(self, stop: object = None) -> pa.Table:
        """Read one batch (``batch_seconds``) and return the records that finished."""
        batch = self.capture.read_batch(self.batch_seconds, stop=stop)
        return self.feed(batch.table, now_ns=batch.ended_ns)

    def feed(self, table: PacketTable, now_ns: int | None = None) -> pa.Table:
        """Meter one batch of frames; ``now_ns`` moves the clock on when traffic is quiet."""
        records = empty_flows()
        if len(table):
            h = decode_headers(table)
            self.stats.packets += len(h)
            if len(h):
                records = records_from_headers(
                    h, slice_ns=self.slice_ns, source="live", dns=False, opens_state=self._opens
                )
                self._keep_answers(dns_answers(h), now_ns)
                records = attach_dns_names(records, self._answers)
        return self.meter.update(records, now_ns=now_ns)

    def close(self) -> pa.Table:
        """Close the capture and return every record still open."""
        self.capture.close()
        return self.meter.flush()

    def _keep_answers(self, fresh: pa.Table, now_ns: int | None) -> None:
        if fresh.num_rows == 0 and self._answers.num_rows == 0:
            return
        both = pa.concat_tables([self._answers, fresh]) if fresh.num_rows else self._answers
        if now_ns is not None and both.num_rows:
            ts = both.column("ts_ns").to_numpy()
            both = both.filter(pa.array(ts >= now_ns - self.dns_ttl_ns))
        if both.num_rows > self.max_dns_answers:
            both = both.slice(both.num_rows - self.max_dns_answers)
        self._answers = both.sort_by([("ts_ns", "ascending")])
        self.stats.dns_answers = self._answers.num_rows
