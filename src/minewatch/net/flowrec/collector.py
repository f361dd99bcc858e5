"""A NetFlow v5/v9/IPFIX collector: UDP in, FLOW_SCHEMA tables out to a callback.

Why this shape: detection wants records in batches (vectorised features), not one by one, and a
collector must never fall over because one router sent garbage. The collector therefore reads
datagrams, hands each to :class:`~minewatch.net.flowrec.netflow.NetflowDecoder` (which counts bad
input instead of raising), and every ``batch_seconds`` or ``batch_records`` — whichever comes
first — passes the decoded records as one table to ``on_records``. Memory is bounded by the batch
size, the held-back data sets and the template cache.

Example::

    collector = FlowCollector("127.0.0.1", 2055, on_records=lambda t: print(t.num_rows))
    collector.run(duration=10.0)      # or run() until SIGINT/SIGTERM
    print(collector.snapshot())
"""

from __future__ import annotations

import contextlib
import errno
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType

import pyarrow as pa

from minewatch.errors import InputError
from minewatch.net.flowrec.netflow import NetflowDecoder, SequenceGap

__all__ = ["CollectorStats", "FlowCollector", "RecordsCallback", "parse_listen"]

RecordsCallback = Callable[[pa.Table], None]
"""Called with each batch of decoded records (a FLOW_SCHEMA table with at least one row)."""

_MAX_DATAGRAM = 65_535


def parse_listen(text: str, default_port: int = 2055) -> tuple[str, int]:
    """``HOST:PORT``, ``[v6]:PORT``, ``HOST`` or ``:PORT`` into (host, port).

    >>> parse_listen("[::1]:9995")
    ('::1', 9995)
    """
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise InputError(f"--listen {text!r}: missing ']' after the IPv6 address")
        host, rest = text[1:close], text[close + 1 :]
        if rest and not rest.startswith(":"):
            raise InputError(f"--listen {text!r}: expected [ADDRESS]:PORT")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    host = host or "0.0.0.0"  # noqa: S104 - an explicit ':PORT' asks for every interface
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise InputError(
            f"--listen {text!r}: the port must be a number from 0 to 65535 (0: any free port)"
        )
    return host, int(port_text)


@dataclass(slots=True)
class CollectorStats:
    """Counters for the stats line and the final report."""

    datagrams: int = 0
    records: int = 0
    batches: int = 0
    malformed: int = 0
    malformed_reasons: dict[str, int] = field(default_factory=dict)
    unknown_template_sets: int = 0
    held_sets: int = 0
    non_ip_records: int = 0
    templates: int = 0
    sequence_gaps: list[SequenceGap] = field(default_factory=list)
    exporters: int = 0

    def line(self) -> str:
        """One line for stderr."""
        missing = sum(g.missing for g in self.sequence_gaps)
        return (
            f"datagrams {self.datagrams}  records {self.records}  malformed {self.malformed}  "
            f"unknown-template sets {self.unknown_template_sets} (held {self.held_sets})  "
            f"sequence gaps {sum(g.gaps for g in self.sequence_gaps)} (missing {missing})  "
            f"exporters {self.exporters}"
        )


class FlowCollector:
    """Receives exports on ``host:port`` (IPv4 or IPv6) and batches them to ``on_records``.

    ``run`` returns after ``duration`` seconds, on :meth:`stop` (from another thread or a
    callback), or on SIGINT/SIGTERM when run in the main thread; the last partial batch is
    always delivered and held data sets are counted as unknown-template at the end.
    """

    def __init__(
        self,
        host: str,
        port: int,
        on_records: RecordsCallback,
        batch_records: int = 65_536,
        batch_seconds: float = 1.0,
        hold_seconds: float = 30.0,
        receive_buffer: int = 8 << 20,
    ) -> None:
        self.host, self.port = host, port
        self.on_records = on_records
        self.batch_records = batch_records
        self.batch_seconds = batch_seconds
        self.decoder = NetflowDecoder(hold_seconds=hold_seconds)
        self.receive_buffer = receive_buffer
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._exporters: set[str] = set()
        self.records_delivered = 0
        self.batches = 0

    # -- socket -----------------------------------------------------------------------------

    def bind(self) -> tuple[str, int]:
        """Open the socket (done by :meth:`run` if not yet); returns the bound address, so a
        caller that asked for port 0 learns the port."""
        if self._sock is not None:
            name = self._sock.getsockname()
            return str(name[0]), int(name[1])
        try:
            infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise InputError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
            if family == socket.AF_INET6:
                with contextlib.suppress(OSError, AttributeError):
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(address)
        except OSError as exc:
            sock.close()
            why = "address in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise InputError(f"cannot listen on {self.host}:{self.port}: {why}") from exc
        sock.settimeout(min(0.2, self.batch_seconds))
        self._sock = sock
        name = sock.getsockname()
        return str(name[0]), int(name[1])

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # -- loop -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to return after delivering what it holds (thread- and signal-safe)."""
        self._stop.set()

    def run(
        self,
        duration: float | None = None,
        on_tick: Callable[[CollectorStats], None] | None = None,
        tick_seconds: float = 10.0,
    ) -> CollectorStats:
        """Collect until ``duration`` passes, :meth:`stop` is called or a signal arrives.

        ``on_tick`` is called with the current counters every ``tick_seconds`` (the periodic
        stats line of ``minewatch collect``).
        """
        self.bind()
        sock = self._sock
        assert sock is not None
        start = time.monotonic()
        deadline = None if duration is None else start + duration
        next_flush = start + self.batch_seconds
        next_tick = start + tick_seconds
        buffer = bytearray(_MAX_DATAGRAM)
        view = memoryview(buffer)
        decoder = self.decoder
        with self._signals():
            while not self._stop.is_set():
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                try:
                    size, address = sock.recvfrom_into(buffer)
                except TimeoutError:
                    size = -1
                except OSError as exc:
                    if exc.errno == errno.EINTR:
                        continue
                    raise
                if size >= 0:
                    exporter = str(address[0])
                    if exporter.startswith("::ffff:"):
                        exporter = exporter[7:]
                    if len(self._exporters) < 65536:  # counted, not a memory risk
                        self._exporters.add(exporter)
                    decoder.feed(view[:size].tobytes(), exporter, time.time_ns())
                else:
                    decoder.expire(time.time_ns())
                now = time.monotonic()
                if decoder.buffered_records >= self.batch_records or now >= next_flush:
                    self._deliver()
                    next_flush = now + self.batch_seconds
                if on_tick is not None and now >= next_tick:
                    on_tick(self.snapshot())
                    next_tick = now + tick_seconds
        decoder.drop_pending()
        self._deliver()
        self.close()
        return self.snapshot()

    def _deliver(self) -> None:
        if self.decoder.buffered_records == 0:
            return
        table = self.decoder.flush()
        if table.num_rows:
            self.records_delivered += table.num_rows
            self.batches += 1
            self.on_records(table)

    def snapshot(self) -> CollectorStats:
        """The counters now."""
        s = self.decoder.stats
        return CollectorStats(
            datagrams=s.datagrams,
            records=s.records,
            batches=self.batches,
            malformed=s.malformed_total,
            malformed_reasons=dict(s.malformed),
            unknown_template_sets=s.unknown_template_sets,
            held_sets=self.decoder.pending_sets,
            non_ip_records=s.non_ip_records,
            templates=s.templates,
            sequence_gaps=[
                SequenceGap(g.exporter, g.domain, g.version, g.unit, g.gaps, g.missing, g.backwards)
                for g in self.decoder.sequences.gaps()
            ],
            exporters=len(self._exporters),
        )

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM stop the loop cleanly, when we are the main thread (signals can only
        be handled there); previous handlers come back afterwards."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: FrameType | None) -> None:
            self._stop.set()

        saved = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, previous in saved.items():
                signal.signal(sig, previous)
