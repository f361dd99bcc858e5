"""The real miner test: Debian's xmrig mines against a pool on loopback, and the agent finds it.

Runs the ``xmrig`` 6.22 package of Debian trixie from the ``debootstrap`` chroot that
``scripts/record-sample --chroot-only`` builds, with one thread in RandomX light mode (no huge
pages, no MSR writes), against ``scripts/sample/xmr_pool.py``, a small CryptoNote stratum pool on
127.0.0.1. Nothing leaves the machine and no coin is mined: the pool's jobs belong to no chain.

Twice: first as ``xmrig`` with its options on the command line (found by name, options, pool URL
and socket), then copied to ``/usr/bin/kworker-sync`` inside the chroot and started with only
``-c /tmp/<random>/settings.json``: nothing in its name or arguments says "miner", and the binary
probe still finds it by content.

Needs root (chroot, mounting /proc and /sys in the chroot as xmrig reads the CPU topology there),
the chroot and the ``chroot``/``mount`` tools; skipped with the reason otherwise, never faked.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped, unused-ignore]
import pytest

from minewatch.findings import Verdict
from minewatch.host.model import HostFinding, HostSnapshot
from minewatch.host.pow_probes import (
    MinerBinaryProbe,
    MinerProcessProbe,
    PoolSocketProbe,
    RandomXCpuProbe,
)
from minewatch.host.processes import build_snapshot
from minewatch.host.signatures import SignatureScanner

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
POOL_SCRIPT = REPO / "scripts/sample/xmr_pool.py"
CONFIG_SCRIPT = REPO / "scripts/sample/xmrig_config.py"
CHROOT = Path(os.environ.get("MINEWATCH_CHROOT", "/var/cache/minewatch/trixie-xmrig"))
XMRIG = CHROOT / "usr/bin/xmrig"
# A made-up placeholder shaped like a Monero address; the pool never checks it.
WALLET = "48MinewatchSamp1eWa11etNotARea1AddressDoNotUseForAnything" + "x" * 38
LOGIN_TIMEOUT = 60.0
CPU_SECONDS_BEFORE_SNAPSHOT = 1.0


def _why_not() -> str | None:
    if not sys.platform.startswith("linux"):
        return "the real miner test needs Linux"
    if os.geteuid() != 0:
        return "the real miner test needs root (chroot and mounting /proc in the chroot)"
    if not XMRIG.is_file():
        return (
            f"no xmrig chroot at {CHROOT} (build it with: sudo scripts/record-sample --chroot-only)"
        )
    for tool in ("chroot", "mount", "umount"):
        if shutil.which(tool) is None:
            return f"the {tool!r} tool is not on PATH"
    if not POOL_SCRIPT.is_file() or not CONFIG_SCRIPT.is_file():
        return f"pool helpers missing under {POOL_SCRIPT.parent}"
    return None


if (_reason := _why_not()) is not None:
    pytest.skip(_reason, allow_module_level=True)


@pytest.fixture(scope="module")
def chroot_fs() -> Iterator[Path]:
    """/proc and /sys mounted inside the chroot for xmrig; only what this test mounted is undone."""
    mounted: list[Path] = []
    try:
        for fs, fstype in (("proc", "proc"), ("sys", "sysfs")):
            target = CHROOT / fs
            if not os.path.ismount(target):
                subprocess.run(["mount", "-t", fstype, fs, str(target)], check=True, timeout=30)
                mounted.append(target)
        yield CHROOT
    finally:
        for target in reversed(mounted):
            if subprocess.run(["umount", str(target)], check=False, timeout=30).returncode:
                subprocess.run(["umount", "-l", str(target)], check=False, timeout=30)


@dataclass
class Pool:
    """The loopback pool process and what it logged."""

    proc: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)
    login: threading.Event = field(default_factory=threading.Event)

    def follow(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            if "<- login" in line:
                self.login.set()

    def wait_for_login(self, miner: subprocess.Popen[bytes], log: Path) -> None:
        deadline = time.monotonic() + LOGIN_TIMEOUT
        while not self.login.wait(0.2):
            if miner.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"no login at the pool (miner exit code {miner.poll()});"
                    f" pool log: {self.lines[-5:]}; miner log: {log.read_text()[-1500:]}"
                )


@pytest.fixture
def pool() -> Iterator[Pool]:
    proc = subprocess.Popen(
        [sys.executable, "-u", str(POOL_SCRIPT), "--host", "127.0.0.1", "--port", "0",
         "--job-interval", "5", "--target", "ffffff00"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.isdigit(), f"pool did not start: {first!r}"
        running = Pool(proc, int(first))
        threading.Thread(target=running.follow, daemon=True).start()
        yield running
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def miners() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Miner processes a test starts; each is stopped by its own pid, always."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def start_miner(
    procs: list[subprocess.Popen[bytes]], argv: list[str], log: Path
) -> subprocess.Popen[bytes]:
    """``chroot CHROOT argv...``: chroot(8) execs the miner, so the pid is the miner's."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["chroot", str(CHROOT), *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    procs.append(proc)
    return proc


def wait_until_busy(proc: subprocess.Popen[bytes]) -> None:
    """Until the miner has burnt some CPU (RandomX cache set up, hashing started)."""
    handle = psutil.Process(proc.pid)
    deadline = time.monotonic() + 60
    while handle.cpu_times().user < CPU_SECONDS_BEFORE_SNAPSHOT:
        assert proc.poll() is None, "the miner exited"
        assert time.monotonic() < deadline, "the miner never got busy"
        time.sleep(0.2)


def findings_for(snap: HostSnapshot, pid: int, probe: Any) -> list[HostFinding]:
    return [f for f in probe.scan(snap).findings if f.pid == pid]


def xmrig_config(port: int) -> dict[str, Any]:
    """The config scripts/record-sample uses (one thread, light mode, no MSR, no donation)."""
    spec = importlib.util.spec_from_file_location("minewatch_xmrig_config", CONFIG_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config: dict[str, Any] = module.xmrig_config("127.0.0.1", port, WALLET, 5)
    return config


def test_real_xmrig_is_found(
    chroot_fs: Path, pool: Pool, miners: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    url = f"stratum+tcp://127.0.0.1:{pool.port}"
    argv = [
        "/usr/bin/xmrig", "-o", url, "-u", WALLET, "-p", "x", "-a", "rx/0", "--threads=1",
        "--randomx-mode=light", "--no-huge-pages", "--randomx-wrmsr=-1", "--randomx-no-rdmsr",
        "--donate-level=0", "--no-color",
    ]  # fmt: skip
    log = tmp_path / "xmrig.log"
    miner = start_miner(miners, argv, log)
    pool.wait_for_login(miner, log)
    wait_until_busy(miner)
    snap = build_snapshot([], sample_seconds=1.0)
    record = next(p for p in snap.processes if p.pid == miner.pid)
    assert record.name == "xmrig"
    assert ("127.0.0.1", pool.port) in record.remote_endpoints

    (by_name,) = findings_for(snap, miner.pid, MinerProcessProbe())
    assert (by_name.verdict, by_name.kind, by_name.coin) == (Verdict.MINING, "xmrig", "xmr")
    assert f"connected to 127.0.0.1:{pool.port}, the pool {url} it names" in by_name.evidence

    (by_content,) = findings_for(snap, miner.pid, MinerBinaryProbe(SignatureScanner()))
    assert (by_content.kind, by_content.coin) == ("xmrig", "xmr")

    listed = PoolSocketProbe(pool_addresses={f"127.0.0.1:{pool.port}"})
    (by_socket,) = findings_for(snap, miner.pid, listed)
    assert by_socket.verdict == Verdict.MINING and by_socket.coin == "xmr"

    # light mode holds no RandomX dataset in huge pages: the footprint probe stays silent
    assert findings_for(snap, miner.pid, RandomXCpuProbe()) == []
    # and the pool server, which speaks stratum but does not mine, is no finding of any probe
    for probe in (MinerProcessProbe(), MinerBinaryProbe(SignatureScanner()), listed):
        assert findings_for(snap, pool.proc.pid, probe) == []


def test_renamed_xmrig_is_found_by_content(
    chroot_fs: Path, pool: Pool, miners: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    renamed = CHROOT / "usr/bin/kworker-sync"
    assert not renamed.exists(), f"{renamed} exists already; remove it first"
    config_dir = CHROOT / "tmp" / f"sync-{secrets.token_hex(4)}"
    try:
        shutil.copy2(XMRIG, renamed)
        config_dir.mkdir()
        (config_dir / "settings.json").write_text(json.dumps(xmrig_config(pool.port)))
        inside = f"/tmp/{config_dir.name}/settings.json"
        log = tmp_path / "kworker.log"
        miner = start_miner(miners, ["/usr/bin/kworker-sync", "-c", inside], log)
        pool.wait_for_login(miner, log)
        wait_until_busy(miner)
        snap = build_snapshot([], sample_seconds=1.0)
        record = next(p for p in snap.processes if p.pid == miner.pid)
        assert record.name == "kworker-sync"
        assert record.cmdline == ("/usr/bin/kworker-sync", "-c", inside)

        # nothing in its name or arguments: name-based detection is blind to it
        assert findings_for(snap, miner.pid, MinerProcessProbe()) == []
        assert findings_for(snap, miner.pid, PoolSocketProbe()) == []

        (found,) = findings_for(snap, miner.pid, MinerBinaryProbe(SignatureScanner()))
        assert (found.verdict, found.kind, found.coin) == (Verdict.MINING, "xmrig", "xmr")
        text = " | ".join(found.evidence)
        assert "not a known miner's ('kworker-sync')" in text
        assert f"config {inside} names 127.0.0.1:{pool.port}" in text
        assert f"connected to 127.0.0.1:{pool.port}" in text
    finally:
        for proc in miners:  # stop it before its binary and config go away
            if proc.poll() is None:
                proc.terminate()
                proc.wait(15)
        renamed.unlink(missing_ok=True)
        shutil.rmtree(config_dir, ignore_errors=True)
