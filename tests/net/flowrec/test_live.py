"""Live capture on the loopback interface, checked against a concurrent tcpdump of the same flows.

Real parts only: real TCP/UDP conversations between Python sockets on 127.0.0.0/8 addresses
picked at random (so parallel tests do not see each other's flows), captured by the AF_PACKET
socket of :mod:`minewatch.net.flowrec.live` and, at the same time, by ``tcpdump``; the flow
records must count exactly the packets and bytes tcpdump wrote. Needs root (or CAP_NET_RAW) and
tcpdump; skipped with the reason otherwise. The privilege error itself is checked by dropping
CAP_NET_RAW from a root process (``setpriv``), or directly when not root.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from minewatch.errors import InputError
from minewatch.net.capture.decode import decode_headers
from minewatch.net.capture.reader import read_capture
from minewatch.net.flowrec.live import LiveCapture, LiveFlows
from minewatch.net.flowrec.table import FLOW_SCHEMA

REPO = Path(__file__).resolve().parents[3]
IS_ROOT = os.geteuid() == 0
needs_capture = pytest.mark.skipif(
    not IS_ROOT or shutil.which("tcpdump") is None,
    reason="live capture needs root (CAP_NET_RAW) and tcpdump to compare with",
)


def loopback_address() -> str:
    """A random 127/8 address (Linux answers on all of them), away from 127.0.0.x."""
    rng = random.SystemRandom()
    return f"127.{rng.randint(20, 250)}.{rng.randint(0, 255)}.{rng.randint(2, 250)}"


@contextmanager
def tcpdump(bpf: str, path: Path) -> Iterator[Path]:
    """tcpdump on ``lo`` writing ``path`` while the block runs (started and listening first)."""
    proc = subprocess.Popen(
        [
            "tcpdump",
            "-i",
            "lo",
            "-n",
            "-U",
            "--immediate-mode",
            "-B",
            "65536",
            "-s",
            "0",
            "-w",
            str(path),
            bpf,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()  # "listening on lo, link-type EN10MB ..."
    if "listening" not in line:
        proc.kill()
        pytest.fail(f"tcpdump did not start: {line}{proc.stderr.read()}")
    try:
        yield path
    finally:
        time.sleep(1.0)  # let tcpdump write the last packets before it is stopped
        proc.send_signal(signal.SIGINT)
        _, report = proc.communicate(timeout=10)
    # tcpdump's own count: a reference that lost packets is no reference.
    assert re.search(r"^0 packets dropped by kernel", report, re.MULTILINE), report


def pcap_counts(path: Path, server: str, port: int) -> dict[str, int]:
    """Packets and IP bytes each way between any client and ``server``:``port`` in a capture."""
    h = decode_headers(read_capture(path))
    mapped = int.from_bytes(socket.inet_aton(server), "big") | (0xFFFF << 32)
    to_server = (h.dst_lo == mapped) & (h.dport == port)
    to_client = (h.src_lo == mapped) & (h.sport == port)
    return {
        "up_packets": int(to_server.sum()),
        "up_bytes": int(h.ip_len[to_server].astype(np.int64).sum()),
        "down_packets": int(to_client.sum()),
        "down_bytes": int(h.ip_len[to_client].astype(np.int64).sum()),
    }


def record_counts(records: pa.Table, server: str, port: int) -> dict[str, int]:
    """The same counts from flow records (either orientation)."""
    fwd = pc.and_(pc.equal(records["dst_ip"], server), pc.equal(records["dst_port"], port))
    rev = pc.and_(pc.equal(records["src_ip"], server), pc.equal(records["src_port"], port))
    a, b = records.filter(fwd), records.filter(rev)

    def total(t: pa.Table, name: str) -> int:
        return int(pc.sum(t[name]).as_py() or 0)

    return {
        "up_packets": total(a, "packets") + total(b, "rev_packets"),
        "up_bytes": total(a, "bytes") + total(b, "rev_bytes"),
        "down_packets": total(a, "rev_packets") + total(b, "packets"),
        "down_bytes": total(a, "rev_bytes") + total(b, "bytes"),
    }


class EchoServer:
    """A TCP server on ``host`` that answers every chunk with a reply of a different size."""

    def __init__(self, host: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.host, self.port = host, self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    @staticmethod
    def _talk(conn: socket.socket) -> None:
        with conn, contextlib.suppress(ConnectionError):  # a client may close with replies unread
            while data := conn.recv(65536):
                conn.sendall(b"r" * (len(data) % 700 + 40))

    def close(self) -> None:
        self.sock.close()


def run_live_while(live: LiveFlows, work: Callable[[], None]) -> pa.Table:
    """Poll ``live`` while ``work`` runs in a thread, then one more batch; return all records."""
    done = threading.Event()
    failure: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as exc:  # reported in the test's thread
            failure.append(exc)
        finally:
            done.set()

    out = []
    thread = threading.Thread(target=target)
    thread.start()
    deadline = time.monotonic() + 25
    while not done.is_set() and time.monotonic() < deadline:
        out.append(live.poll())
    out.append(live.poll())
    out.append(live.close())
    thread.join()
    if failure:
        raise failure[0]
    return pa.concat_tables(out)


@needs_capture
def test_records_count_what_tcpdump_sees(tmp_path: Path) -> None:
    server = EchoServer(loopback_address())
    client_ip = loopback_address()
    rng = random.Random(7)

    def conversation() -> None:
        with socket.create_connection(
            (server.host, server.port), source_address=(client_ip, 0)
        ) as c:
            for _ in range(40):
                c.sendall(b"q" * rng.randint(1, 3000))
                c.recv(65536)
                time.sleep(0.01)
            c.sendall(b"x" * 200_000)  # segments of up to 64 KiB on lo
            time.sleep(0.2)

    bpf = f"host {server.host} and tcp port {server.port}"
    with (
        LiveFlows("lo", batch_seconds=0.3, idle_timeout_s=30) as live,
        tcpdump(bpf, tmp_path / "ref.pcap") as ref,
    ):
        records = run_live_while(live, conversation)
    server.close()
    assert records.schema == FLOW_SCHEMA
    expected = pcap_counts(ref, server.host, server.port)
    assert expected["up_packets"] > 40 and expected["down_packets"] > 40
    assert record_counts(records, server.host, server.port) == expected
    mine = records.filter(pc.equal(records["dst_port"], server.port))
    assert set(mine["src_ip"].to_pylist()) == {client_ip}
    assert set(mine["source"].to_pylist()) == {"live"}
    assert set(mine["initiator"].to_pylist()) == {1}  # the SYN was seen: the client opened it
    assert live.stats.capture.drops == 0
    # lo's outgoing copies were left out (by the kernel filter, else by the read loop)
    assert live.capture.kernel_filter or live.stats.capture.skipped > 0


@needs_capture
def test_many_short_connections_stay_within_max_flows(tmp_path: Path) -> None:
    server = EchoServer(loopback_address())
    client_ip = loopback_address()
    connections = 150
    client_ports: set[int] = set()

    def churn() -> None:
        for i in range(connections):
            with socket.create_connection(
                (server.host, server.port), source_address=(client_ip, 0)
            ) as c:
                client_ports.add(c.getsockname()[1])
                c.sendall(b"ping %d" % i)
                c.recv(1024)

    max_flows = 8
    bpf = f"host {server.host} and tcp port {server.port}"
    with (
        LiveFlows("lo", batch_seconds=0.2, max_flows=max_flows, idle_timeout_s=60) as live,
        tcpdump(bpf, tmp_path / "ref.pcap") as ref,
    ):
        records = run_live_while(live, churn)
    server.close()
    stats = live.stats.meter
    assert stats.peak_active <= max_flows
    assert stats.evicted > 0  # connections ended faster than they timed out: eviction kept the cap
    mine = records.filter(pc.equal(records["dst_port"], server.port))
    assert set(mine["src_port"].to_pylist()) == client_ports  # every connection has records
    assert len(client_ports) == connections
    # Nothing was lost to eviction: every packet tcpdump saw is in some record.
    assert record_counts(records, server.host, server.port) == pcap_counts(
        ref, server.host, server.port
    )


def _dns_response(query: bytes, address: str) -> bytes:
    """A DNS response to ``query`` (one question) with one A record for ``address``."""
    ident, _ = struct.unpack("!HH", query[:4])
    question = query[12:]
    header = struct.pack("!HHHHHH", ident, 0x8180, 1, 1, 0, 0)
    answer = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(address)
    return header + question + answer


def _dns_query(name: str) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + labels + b"\0" + b"\0\1\0\1"


@needs_capture
def test_dns_answer_names_the_server_of_a_later_connection() -> None:
    resolver_ip, client_ip = loopback_address(), loopback_address()
    server = EchoServer(loopback_address())
    name = "pool.minewatch-test.example"
    try:
        resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        resolver.bind((resolver_ip, 53))
    except OSError as exc:
        pytest.skip(f"cannot bind a test resolver on {resolver_ip}:53: {exc}")

    def look_up_then_connect() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ask:
            ask.bind((client_ip, 0))
            ask.sendto(_dns_query(name), (resolver_ip, 53))
            query, peer = resolver.recvfrom(512)
            resolver.sendto(_dns_response(query, server.host), peer)
            ask.recv(512)
        time.sleep(0.5)  # the answer lands in an earlier batch than the connection
        with socket.create_connection(
            (server.host, server.port), source_address=(client_ip, 0)
        ) as c:
            c.sendall(b"hello")
            c.recv(100)

    with LiveFlows("lo", batch_seconds=0.2, idle_timeout_s=30) as live:
        records = run_live_while(live, look_up_then_connect)
    resolver.close()
    server.close()
    tcp = records.filter(pc.equal(records["dst_port"], server.port))
    assert tcp.num_rows >= 1
    assert set(tcp["dns_name"].to_pylist()) == {name}
    assert live.stats.dns_answers >= 1


def test_unknown_interface_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="no network interface named 'nosuchif0'"):
        LiveFlows("nosuchif0").open()


def test_capture_without_privilege_is_a_clear_error() -> None:
    code = (
        "from minewatch.errors import InputError\n"
        "from minewatch.net.flowrec.live import LiveCapture\n"
        "try:\n    LiveCapture('lo').open()\n"
        "except InputError as exc:\n    print(exc)\n    raise SystemExit(3)\n"
    )
    argv = [sys.executable, "-c", code]
    if IS_ROOT:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv is missing: cannot drop CAP_NET_RAW")
        argv = ["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", *argv]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 3, done.stderr
    assert "needs root or the CAP_NET_RAW capability" in done.stdout


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="snaplen"):
        LiveCapture("lo", snaplen=10)
    with pytest.raises(ValueError, match="batch_seconds"):
        LiveFlows("lo", batch_seconds=0)
