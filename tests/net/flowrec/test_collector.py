"""The UDP collector receiving real softflowd exports on loopback (IPv4 and IPv6)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from minewatch.errors import InputError
from minewatch.net.flowrec.collector import FlowCollector, parse_listen
from minewatch.net.flowrec.table import FLOW_SCHEMA
from tests.net.flowrec.test_netflow import (
    SOFTFLOWD,
    capture_totals,
    needs_softflowd,
    softflowd_datagrams,
)


def start(host: str = "127.0.0.1", **kwargs: object) -> tuple[FlowCollector, list[pa.Table], int]:
    batches: list[pa.Table] = []
    collector = FlowCollector(host, 0, batches.append, batch_seconds=0.2, **kwargs)  # type: ignore[arg-type]
    _, port = collector.bind()
    return collector, batches, port


def run_in_thread(collector: FlowCollector) -> threading.Thread:
    thread = threading.Thread(target=collector.run, daemon=True)
    thread.start()
    return thread


@needs_softflowd
@pytest.mark.parametrize("version", [9, 10])
def test_softflowd_replay_to_the_collector(corpus: Path, version: int) -> None:
    assert SOFTFLOWD is not None
    capture = corpus / "benign" / "ndpi_android.pcap"
    collector, batches, port = start()
    thread = run_in_thread(collector)
    subprocess.run(
        [SOFTFLOWD, "-r", str(capture), "-n", f"127.0.0.1:{port}", "-v", str(version), "-d"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    time.sleep(0.6)
    collector.stop()
    thread.join(timeout=10)
    table = pa.concat_tables(batches)
    assert table.schema == FLOW_SCHEMA
    stats = collector.snapshot()
    assert stats.malformed == 0 and stats.sequence_gaps == []
    assert stats.records == table.num_rows == collector.records_delivered
    tcp_udp = table.filter(pc.is_in(table["protocol"], pa.array([6, 17], pa.int16())))
    assert (pc.sum(tcp_udp["packets"]).as_py(), pc.sum(tcp_udp["bytes"]).as_py()) == capture_totals(
        capture
    )


@needs_softflowd
def test_ipv6_listener_and_bad_datagrams_are_counted(corpus: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this host")
    datagrams = softflowd_datagrams(corpus / "benign" / "ndpi_android.pcap", 10)
    try:
        collector, batches, port = start("::1")
    except InputError as exc:
        pytest.skip(f"cannot bind ::1: {exc}")
    thread = run_in_thread(collector)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"\x00\x09garbage", ("::1", port))
        sender.sendto(b"\x00\x07" + bytes(30), ("::1", port))
        for datagram in datagrams:
            sender.sendto(datagram, ("::1", port))
    time.sleep(0.6)
    collector.stop()
    thread.join(timeout=10)
    stats = collector.snapshot()
    assert stats.datagrams == len(datagrams) + 2
    assert stats.malformed == 2
    table = pa.concat_tables(batches)
    assert table.num_rows == stats.records > 0
    assert set(table["exporter"].to_pylist()) == {"::1"}


def test_sigterm_stops_the_collector_cleanly(tmp_path: Path) -> None:
    script = (
        "import sys; from minewatch.net.flowrec.collector import FlowCollector\n"
        "c = FlowCollector('127.0.0.1', 0, lambda t: None)\n"
        "print(c.bind()[1], flush=True)\n"
        "s = c.run()\n"
        "print('stopped', s.datagrams, flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"\x00\x05\x00\x00", ("127.0.0.1", port))
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert out.strip() == "stopped 1"


def test_duration_bounds_the_run() -> None:
    collector, batches, _ = start()
    began = time.monotonic()
    stats = collector.run(duration=0.3)
    assert time.monotonic() - began < 5
    assert stats.datagrams == 0 and batches == []


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:2055") == ("127.0.0.1", 2055)
    assert parse_listen("[::1]:9995") == ("::1", 9995)
    assert parse_listen("::1") == ("::1", 2055)
    with pytest.raises(InputError):
        parse_listen("127.0.0.1:notaport")
    with pytest.raises(InputError):
        parse_listen("[::1")


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(InputError, match="cannot listen"):
            FlowCollector("127.0.0.1", port, lambda t: None).bind()
