"""``minewatch watch`` on the loopback interface with real traffic.

The detector is a stand-in (a plain function judging the records it is given) where the test is
about reporting — once per conversation, again on a material change, filtered by confidence —
and the bundled flow model where the test is about stopping cleanly. A real miner against a pool
on loopback needs minutes before the model judges it (its ``min_span_s``) and is marked ``slow``.
Capture needs root; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from minewatch.commands.watch import run_watch, watch, watch_command
from minewatch.findings import Finding, Verdict
from minewatch.net.behaviour.streaming import default_detector
from tests.net.flowrec.test_live import EchoServer, loopback_address
from tests.support.https import make_tls_files

REPO = Path(__file__).resolve().parents[2]
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="live capture needs root (CAP_NET_RAW)")


class StubDetector:
    """Reports the conversations to ``port`` with the confidences given, one per call (the
    last repeats); counts its calls and the packets it was shown."""

    def __init__(self, port: int, confidences: list[float]) -> None:
        self.port = port
        self.confidences = confidences
        self.calls = 0
        self.packets_seen = 0
        self.done = threading.Event()
        """Set once every confidence was returned: the test can stop the watch then, rather
        than guess how many detection rounds a duration allows on a loaded machine."""

    def __call__(self, records: pa.Table) -> list[Finding]:
        to_server = pc.equal(records["dst_port"], self.port)
        mine = records.filter(pc.or_(to_server, pc.equal(records["src_port"], self.port)))
        if mine.num_rows == 0:
            return []
        confidence = self.confidences[min(self.calls, len(self.confidences) - 1)]
        self.calls += 1
        if self.calls >= len(self.confidences):
            self.done.set()
        row = mine.to_pylist()[0]
        packets = int(pc.sum(mine["packets"]).as_py()) + int(pc.sum(mine["rev_packets"]).as_py())
        self.packets_seen = max(self.packets_seen, packets)
        return [
            Finding(
                verdict=Verdict.MINING,
                protocol="stratum-tls",
                client_ip=row["src_ip"] if row["dst_port"] == self.port else row["dst_ip"],
                server_ip=row["dst_ip"] if row["dst_port"] == self.port else row["src_ip"],
                server_port=self.port,
                transport="tcp",
                coin=None,
                confidence=confidence,
                first_seen_ns=int(pc.min(mine["start_ns"]).as_py()),
                last_seen_ns=int(pc.max(mine["end_ns"]).as_py()),
                evidence=[f"stand-in detector saw {packets} packets"],
                detector="stub",
                packets=packets,
            )
        ]


def _chatter(
    server: EchoServer, client_ip: str, seconds: float, until: threading.Event | None = None
) -> threading.Thread:
    """A client that sends a small message every 0.1 s for ``seconds`` or until ``until`` is set
    (in a thread); the tests make it outlast the watch, so the watch sees it whenever its
    capture starts."""

    def talk() -> None:
        end = time.monotonic() + seconds
        with socket.create_connection(
            (server.host, server.port), source_address=(client_ip, 0)
        ) as c:
            while time.monotonic() < end and not (until is not None and until.is_set()):
                c.sendall(b'{"method":"submit"}\n')
                c.recv(4096)
                time.sleep(0.1)

    thread = threading.Thread(target=talk, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def server() -> Iterator[EchoServer]:
    srv = EchoServer(loopback_address())
    yield srv
    srv.close()


@needs_root
def test_a_finding_is_printed_once_then_on_material_change(
    server: EchoServer, tmp_path: Path
) -> None:
    from io import StringIO

    client_ip = loopback_address()
    # Steady at 0.6 for a while, a small move (not reported), then a material rise.
    detect = StubDetector(server.port, [0.6, 0.6, 0.62, 0.62, 0.9])
    talk = _chatter(server, client_ip, 120.0, until=detect.done)
    out, err = StringIO(), StringIO()
    summary = run_watch(
        "lo",
        detect=detect,
        window_s=60,
        duration=120.0,  # a safety net: the stand-in stops the watch once it has said it all
        stop=detect.done,
        fmt="jsonl",
        batch_seconds=0.25,
        detect_every_s=0.5,
        out=out,
        err=err,
    )
    talk.join()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert detect.calls >= 5
    assert [round(d["confidence"], 2) for d in lines] == [0.6, 0.9]
    assert {(d["client_ip"], d["server_port"]) for d in lines} == {(client_ip, server.port)}
    assert summary.findings == 2
    assert summary.packets >= detect.packets_seen > 20
    assert summary.records >= 1
    assert "2 findings reported" in err.getvalue().splitlines()[-1]


@needs_root
def test_min_confidence_filters_findings(server: EchoServer) -> None:
    from io import StringIO

    detect = StubDetector(server.port, [0.4])
    talk = _chatter(server, loopback_address(), 3.0)
    out = StringIO()
    summary = run_watch(
        "lo",
        detect=detect,
        window_s=60,
        duration=2.0,
        min_confidence=0.5,
        batch_seconds=0.25,
        detect_every_s=0.5,
        out=out,
        err=StringIO(),
    )
    talk.join()
    assert detect.calls >= 1
    assert out.getvalue() == ""
    assert summary.findings == 0


@needs_root
def test_watch_command_prints_one_finding_and_exits_at_duration(server: EchoServer) -> None:
    detect = StubDetector(server.port, [0.95])
    talk = _chatter(server, loopback_address(), 3.5)
    result = CliRunner().invoke(
        watch_command(detect, window_s=60), ["--interface", "lo", "--duration", "2.5"]
    )
    talk.join()
    assert result.exit_code == 0, result.output
    found = [line for line in result.stdout.splitlines() if f":{server.port}/tcp" in line]
    assert len(found) == 1
    assert "mining" in found[0] and "0.95" in found[0]
    assert "findings reported" in result.stderr.splitlines()[-1]


def test_unknown_interface_gives_one_line_and_exit_1() -> None:
    result = CliRunner().invoke(watch, ["--interface", "nosuchif0", "--duration", "1"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "minewatch watch: no network interface named 'nosuchif0'"
    ]


def _watch_argv(*args: str) -> list[str]:
    code = "import sys; from minewatch.commands.watch import watch; watch(sys.argv[1:])"
    return [sys.executable, "-c", code, *args]


def test_without_capture_privilege_one_line_and_exit_1() -> None:
    argv = _watch_argv("--interface", "lo", "--duration", "1")
    if IS_ROOT:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv is missing: cannot drop CAP_NET_RAW")
        argv = ["setpriv", "--bounding-set=-net_raw", "--inh-caps=-net_raw", *argv]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "minewatch watch: capturing on 'lo' needs root or the CAP_NET_RAW capability"
    ]


@needs_root
def test_sigterm_stops_cleanly_with_a_summary() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        _watch_argv("--interface", "lo"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert first.startswith("watching lo"), first + proc.stderr.read()
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
    last = rest.strip().splitlines()[-1]
    assert last.startswith("watch lo:") and "findings reported" in last
    assert "Traceback" not in rest


CHROOT = Path(os.environ.get("MINEWATCH_CHROOT", "/var/cache/minewatch/trixie-xmrig"))
POOL_SCRIPT = REPO / "scripts/sample/xmr_pool.py"
WALLET = "48MinewatchSamp1eWa11etNotARea1AddressDoNotUseForAnything" + "x" * 38


@contextmanager
def _chroot_proc_sys() -> Iterator[None]:
    """/proc and /sys mounted in the chroot for xmrig; only what this test mounted is undone."""
    mounted: list[Path] = []
    try:
        for fs, fstype in (("proc", "proc"), ("sys", "sysfs")):
            target = CHROOT / fs
            if not os.path.ismount(target):
                subprocess.run(["mount", "-t", fstype, fs, str(target)], check=True, timeout=30)
                mounted.append(target)
        yield
    finally:
        for target in reversed(mounted):
            if subprocess.run(["umount", str(target)], check=False, timeout=30).returncode:
                subprocess.run(["umount", "-l", str(target)], check=False, timeout=30)


@contextmanager
def _running(argv: list[str], **kwargs: Any) -> Iterator[subprocess.Popen[str]]:
    """A process stopped by its own pid when the block ends."""
    proc = subprocess.Popen(argv, text=True, **kwargs)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.mark.slow
@pytest.mark.skipif(
    not IS_ROOT or not (CHROOT / "usr/bin/xmrig").is_file() or shutil.which("chroot") is None,
    reason="needs root and the xmrig chroot (sudo scripts/record-sample --chroot-only)",
)
def test_real_xmrig_over_tls_is_found_live(tmp_path: Path) -> None:
    """Debian's xmrig mines over TLS against the loopback pool; watch finds it from flow
    behaviour alone, with the bundled model, within a few minutes."""
    tls = make_tls_files(tmp_path)
    pool_ip = loopback_address()
    pool_argv = [
        sys.executable, "-u", str(POOL_SCRIPT), "--host", pool_ip, "--port", "0",
        "--job-interval", "20", "--job-jitter", "0.5", "--difficulty", "100", "--vardiff", "15",
        "--tls-cert", str(tls.cert_file), "--tls-key", str(tls.key_file),
    ]  # fmt: skip
    detect_model, window_s = default_detector()
    stop = threading.Event()
    hits: list[Finding] = []

    def detect(records: pa.Table) -> list[Finding]:
        found = detect_model(records)
        hits.extend(f for f in found if f.server_ip == pool_ip)
        if hits:
            stop.set()
        return found

    log = (tmp_path / "xmrig.log").open("w")
    with (
        _chroot_proc_sys(),
        _running(pool_argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as pool,
    ):
        assert pool.stdout is not None
        port = int(pool.stdout.readline().strip())
        miner_argv = [
            "nice", "-n", "19", "chroot", str(CHROOT), "/usr/bin/xmrig",
            "-o", f"{pool_ip}:{port}", "--tls", "-u", WALLET, "-p", "x", "-a", "rx/0",
            "--threads=1", "--randomx-mode=light", "--no-huge-pages", "--randomx-wrmsr=-1",
            "--randomx-no-rdmsr", "--donate-level=0", "--no-color",
        ]  # fmt: skip
        with _running(miner_argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL):
            from io import StringIO

            out = StringIO()
            summary = run_watch(
                "lo", detect=detect, window_s=window_s, duration=420, detect_every_s=15,
                fmt="jsonl", out=out, err=StringIO(), stop=stop,
            )  # fmt: skip
    log.close()
    assert hits, (
        f"not found in {summary.seconds:.0f} s; xmrig: {(tmp_path / 'xmrig.log').read_text()[-800:]}"
    )
    finding = hits[0]
    assert (finding.server_port, finding.protocol) == (port, "stratum-tls")
    assert finding.detector == "flow-behaviour" and finding.last_seen_ns > finding.first_seen_ns
    printed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert any(d["server_ip"] == pool_ip and d["server_port"] == port for d in printed)
