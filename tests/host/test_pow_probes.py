"""Proof-of-work probes against real processes: miners, renamed miners, nodes and look-alikes.

Processes are real: each test copies a real executable (``/bin/sh``, the Python interpreter, the
real xmrig from the Debian chroot) under the name a miner, a node or a lawful job would have and
starts it with that program's arguments; the agent reads them back through ``/proc``. What is
synthetic is said where it is: a process's huge-page footprint (reserving 2 GiB of hugetlbfs
pages would change this machine's settings) and, for the binary probe without the chroot, a
process record whose executable is the real xmrig file but which is not running.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from minewatch.errors import InputError
from minewatch.findings import Verdict
from minewatch.host.model import (
    PROBES,
    HostFinding,
    HostProbe,
    HostSnapshot,
    ProbeOptions,
    ProcessInfo,
)
from minewatch.host.pow_probes import (
    RANDOMX_CACHE_BYTES,
    RANDOMX_DATASET_BYTES,
    MinerBinaryProbe,
    MinerProcessProbe,
    PoolSocketProbe,
    RandomXCpuProbe,
    parse_pool_addresses,
)
from minewatch.host.processes import build_snapshot
from minewatch.host.signatures import SignatureScanner

CHROOT = Path(os.environ.get("MINEWATCH_CHROOT", "/var/cache/minewatch/trixie-xmrig"))
XMRIG = CHROOT / "usr/bin/xmrig"
XMR_WALLET = "48MinewatchSamp1eWa11etNotARea1AddressDoNotUseForAnything" + "x" * 38
RVN_WALLET = "RMinewatchSamp1eWa11etNotRea1xxxxx"
GIB = 1 << 30
# pid_max is at most 2**22 on Linux, so this pid never exists: the record below is synthetic.
NOT_RUNNING = 2**22 + 17

Procs = list[subprocess.Popen[bytes]]


@pytest.fixture
def started() -> Iterator[Procs]:
    """Processes a test starts; each is killed (by its own pid) at the end."""
    procs: Procs = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait(5)


def run_as(procs: Procs, tmp_path: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
    """Start a copy of ``/bin/sh`` called ``name`` with ``args`` in its command line.

    ``sh -c 'read line'`` waits on its stdin; the words after the script are its $0, $1, ...:
    they sit in the process's argument vector exactly as a miner's options would.
    """
    home = tmp_path / f"bin-{len(procs)}"
    home.mkdir()
    exe = home / name
    shutil.copy2("/bin/sh", exe)
    proc: subprocess.Popen[bytes] = subprocess.Popen(
        [str(exe), "-c", "read line", *args], stdin=subprocess.PIPE
    )
    procs.append(proc)
    return proc


def snapshot_of(*procs: subprocess.Popen[bytes], sample: float = 0.1) -> HostSnapshot:
    """A real snapshot, narrowed to the test's own processes (others may run on this host)."""
    snap = build_snapshot([], sample_seconds=sample)
    pids = {p.pid for p in procs}
    snap.processes = [p for p in snap.processes if p.pid in pids]
    assert {p.pid for p in snap.processes} == pids, "a started process is missing"
    return snap


def all_findings(snap: HostSnapshot, **probes: HostProbe) -> list[HostFinding]:
    chosen: list[HostProbe] = list(probes.values()) or [
        MinerProcessProbe(),
        MinerBinaryProbe(),
        PoolSocketProbe(),
        RandomXCpuProbe(),
    ]
    return [f for probe in chosen for f in probe.scan(snap).findings]


def only(findings: list[HostFinding], pid: int) -> HostFinding:
    mine = [f for f in findings if f.pid == pid]
    assert len(mine) == 1, mine
    return mine[0]


def test_the_four_probes_are_registered() -> None:
    for name, cls in [
        ("miner-process", MinerProcessProbe),
        ("miner-binary", MinerBinaryProbe),
        ("pool-socket", PoolSocketProbe),
        ("randomx-cpu", RandomXCpuProbe),
    ]:
        assert PROBES[name] is cls
        assert isinstance(cls(), HostProbe)  # constructible with defaults, as the scan does


# --- miner-process on real processes ----------------------------------------------------------


def test_named_xmrig_with_pool_wallet_and_algorithm(tmp_path: Path, started: Procs) -> None:
    proc = run_as(
        started, tmp_path, "xmrig",
        "-o", "pool.supportxmr.com:443", "-u", XMR_WALLET, "-k", "--tls", "-a", "rx/0",
        "--donate-level=1",
    )  # fmt: skip
    found = only(MinerProcessProbe().scan(snapshot_of(proc)).findings, proc.pid)
    assert found.verdict == Verdict.MINING
    assert (found.kind, found.coin) == ("xmrig", "xmr")
    assert found.confidence >= 0.95
    text = " | ".join(found.evidence)
    assert "SupportXMR" in text and XMR_WALLET in text and "rx/0" in text
    assert found.entity == f"pid {proc.pid} {tmp_path}/bin-0/xmrig"


def test_renamed_miner_with_miner_arguments(tmp_path: Path, started: Procs) -> None:
    proc = run_as(
        started, tmp_path, "kswapd0",
        "--url=stratum+tcp://203.0.113.9:80", "--coin=monero", "--randomx-1gb-pages",
    )  # fmt: skip
    found = only(MinerProcessProbe().scan(snapshot_of(proc)).findings, proc.pid)
    assert (found.verdict, found.kind, found.coin) == (Verdict.MINING, "xmrig", "xmr")
    assert any("stratum+tcp://203.0.113.9:80" in e for e in found.evidence)


def test_an_ordinary_name_needs_miner_arguments(tmp_path: Path, started: Procs) -> None:
    gminer = run_as(
        started, tmp_path, "miner",
        "--algo", "kawpow", "--server", "rvn.example.net:3333", "--user", RVN_WALLET,
    )  # fmt: skip
    game = run_as(started, tmp_path, "miner", "--world", "/srv/minecraft/world", "--port", "25565")
    findings = MinerProcessProbe().scan(snapshot_of(gminer, game)).findings
    found = only(findings, gminer.pid)
    assert (found.kind, found.coin) == ("gminer", "rvn")
    assert found.confidence <= 0.85  # no single decisive sign
    assert not [f for f in findings if f.pid == game.pid]


# name, arguments, expected verdict, expected coin (None: the evidence names none)
NODES = [
    ("bitcoind", ("-daemon", "-txindex=1", "-datadir=/srv/btc"), Verdict.BLOCKCHAIN_NODE, "btc"),
    ("bitcoind", ("-daemon", "-gen=0"), Verdict.BLOCKCHAIN_NODE, "btc"),
    ("bitcoind", ("-daemon", "-gen=1"), Verdict.MINING, "btc"),
    ("geth", ("--syncmode", "snap", "--http", "--miner.etherbase", "0x" + "1" * 40), Verdict.BLOCKCHAIN_NODE, "eth"),
    ("geth", ("--mine", "--miner.threads=2"), Verdict.MINING, None),
    ("monerod", ("--data-dir", "/srv/xmr", "--prune-blockchain"), Verdict.BLOCKCHAIN_NODE, "xmr"),
    ("monerod", ("--start-mining", XMR_WALLET, "--mining-threads", "4"), Verdict.MINING, "xmr"),
    ("chia_full_node", (), Verdict.BLOCKCHAIN_NODE, "xch"),
    ("lotus", ("daemon",), Verdict.BLOCKCHAIN_NODE, "fil"),
]  # fmt: skip


def test_full_nodes_mine_only_with_their_mining_option(tmp_path: Path, started: Procs) -> None:
    procs = [run_as(started, tmp_path, name, *args) for name, args, _, _ in NODES]
    findings = all_findings(snapshot_of(*procs))
    for proc, (name, args, verdict, coin) in zip(procs, NODES, strict=True):
        found = only(findings, proc.pid)  # one finding: no other probe calls it a miner
        assert (found.verdict, found.kind, found.coin) == (verdict, name.replace("_", "-"), coin), (
            name,
            args,
        )
        if verdict == Verdict.BLOCKCHAIN_NODE:
            assert (
                "no mining option" in found.evidence[0] or "no built-in miner" in found.evidence[0]
            )
        else:
            assert "built-in miner on" in found.evidence[0]


TRAIN = """
import sys, time
end = time.monotonic() + 60
while time.monotonic() < end:  # a CPU-bound "epoch"
    sum(i * i for i in range(10000))
"""


def test_look_alikes_stay_clean(tmp_path: Path, started: Procs) -> None:
    train = tmp_path / "train.py"
    train.write_text(TRAIN)
    jobs = [
        # a PyTorch-style training job, busy on a core
        subprocess.Popen(
            [sys.executable, str(train), "--epochs", "90", "--lr", "0.1", "-a", "resnet50",
             "--dist-url", "tcp://127.0.0.1:23456", "-o", str(tmp_path / "ckpt"), "-u", "alice"],
            stdin=subprocess.PIPE,
        ),
        run_as(started, tmp_path, "java", "-Xmx8g", "-cp", "/opt/spark/jars/*",
               "org.apache.spark.deploy.SparkSubmit", "--master", "spark://10.0.0.5:7077",
               "--conf", "spark.executor.memory=8g", "--class", "org.example.Etl", "etl.jar"),
        run_as(started, tmp_path, "spark-submit", "--master", "yarn", "--deploy-mode", "cluster",
               "--num-executors", "50", "s3a://bucket/jobs/etl.py"),
        run_as(started, tmp_path, "postgres", "-D", "/var/lib/postgresql/15/main",
               "-c", "huge_pages=on", "-c", "shared_buffers=8GB"),
        run_as(started, tmp_path, "ipfs", "daemon", "--enable-gc", "--routing=dht"),
        run_as(started, tmp_path, "rsync", "-a", "--delete", "/data/",
               "backup.example.org:/backups/data/"),
        run_as(started, tmp_path, "grep", "-rn", "stratum+tcp://", "/etc"),
    ]  # fmt: skip
    started.append(jobs[0])
    findings = all_findings(snapshot_of(*jobs, sample=0.3))
    assert findings == []


# --- miner-binary -----------------------------------------------------------------------------


@pytest.fixture
def xmrig_copy(tmp_path: Path) -> Path:
    if not XMRIG.is_file():
        pytest.skip(
            f"real xmrig not found at {XMRIG} (build it with scripts/record-sample --chroot-only)"
        )
    hidden = tmp_path / ".cache"
    hidden.mkdir()
    target = hidden / "kworker-sync"
    shutil.copy2(XMRIG, target)
    return target


def test_renamed_xmrig_binary_is_found_by_content(xmrig_copy: Path) -> None:
    # synthetic record (not running): the probe reads the real xmrig file it names
    proc = ProcessInfo(
        pid=NOT_RUNNING, name="kworker-sync", exe=str(xmrig_copy),
        cmdline=(str(xmrig_copy), "-c", "/etc/sync.json"), cpu_percent=99.0,
    )  # fmt: skip
    snap = HostSnapshot("h", [proc], 4, [])
    assert MinerProcessProbe().scan(snap).findings == []  # nothing in its name or arguments
    found = only(MinerBinaryProbe(SignatureScanner()).scan(snap).findings, NOT_RUNNING)
    assert (found.verdict, found.kind) == (Verdict.MINING, "xmrig")
    assert found.confidence >= 0.9
    text = " | ".join(found.evidence)
    assert "stratum-protocol" in text and "pow-hashing" in text
    assert "not a known miner's" in text
    assert "temporary directory" in text and "kernel thread" in text


def test_binary_probe_leaves_real_programs_alone(tmp_path: Path, started: Procs) -> None:
    # busy and running from /tmp: chosen for a search, and clean
    proc = run_as(started, tmp_path, "kworker-helper")
    snap = snapshot_of(proc)
    probe = MinerBinaryProbe(SignatureScanner(), scan_all=True)
    chosen = {p.pid for p, _ in probe.candidates(snap)}
    assert proc.pid in chosen
    assert probe.scan(snap).findings == []


def test_a_deleted_executable_is_still_searched(tmp_path: Path, started: Procs) -> None:
    proc = run_as(started, tmp_path, "kdevtmpfsi")
    time.sleep(0.1)
    (tmp_path / "bin-0" / "kdevtmpfsi").unlink()
    snap = snapshot_of(proc)
    scanner = SignatureScanner()
    probe = MinerBinaryProbe(scanner)
    ((chosen, reasons),) = probe.candidates(snap)
    assert chosen.pid == proc.pid
    assert any("was deleted after it started" in r for r in reasons)
    assert probe.scan(snap).findings == []  # /bin/sh, read through /proc/PID/exe: clean
    assert scanner.bytes_read_total == Path("/bin/sh").resolve().stat().st_size


def test_binary_probe_budget_and_denials_are_blind_spots(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"\0" * 4096)
    second.write_bytes(b"\1" * 4096)
    procs = [
        ProcessInfo(pid=NOT_RUNNING, name="a", exe=str(first), cmdline=("a",), cpu_percent=90.0),
        ProcessInfo(pid=NOT_RUNNING + 1, name="b", exe=str(second), cmdline=("b",), cpu_percent=80.0),
        ProcessInfo(pid=NOT_RUNNING + 2, name="c", exe=None, cmdline=("c",), cpu_percent=70.0,
                    denied=("executable",)),
    ]  # fmt: skip
    scanner = SignatureScanner()
    result = MinerBinaryProbe(scanner, max_bytes_per_scan=1).scan(HostSnapshot("h", procs, 4, []))
    assert scanner.bytes_read_total == 4096  # the busiest was read, then the budget was spent
    spots = " | ".join(result.blind_spots)
    assert "1 executable(s) not searched" in spots
    assert "executables of 1 busy or suspicious process(es) could not be read" in spots
    # a second scan reads nothing new and is limited by nothing: the first file is cached
    again = MinerBinaryProbe(scanner, max_bytes_per_scan=1).scan(
        HostSnapshot("h", procs[:1], 4, [])
    )
    assert again.blind_spots == [] and scanner.bytes_read_total == 4096


# --- pool-socket ------------------------------------------------------------------------------

CONNECT = """
import socket, sys
conn = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("connected", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def pool_server() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    with server:
        yield server


def connect(procs: Procs, port: int, *args: str) -> subprocess.Popen[bytes]:
    proc: subprocess.Popen[bytes] = subprocess.Popen(
        [sys.executable, "-c", CONNECT, str(port), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    procs.append(proc)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"connected"
    return proc


def test_connection_to_a_pushed_down_pool_address(
    pool_server: socket.socket, started: Procs
) -> None:
    port = pool_server.getsockname()[1]
    client = connect(started, port)
    conn, _ = pool_server.accept()
    with conn:
        snap = snapshot_of(client)
    assert PoolSocketProbe().scan(snap).findings == []
    for listed in ({f"127.0.0.1:{port}"}, {"127.0.0.1"}, {"::ffff:127.0.0.1"}):
        found = only(PoolSocketProbe(pool_addresses=listed).scan(snap).findings, client.pid)
        assert found.verdict == Verdict.MINING and found.kind == "pool-client"
        assert f"127.0.0.1:{port}, a known mining-pool address" in found.evidence[0]
    other_port = {f"127.0.0.1:{port + 1 if port < 65535 else port - 1}"}
    assert PoolSocketProbe(pool_addresses=other_port).scan(snap).findings == []


def test_connection_to_the_port_of_a_pool_it_names(
    pool_server: socket.socket, started: Procs
) -> None:
    port = pool_server.getsockname()[1]
    client = connect(started, port, "-o", f"pool.supportxmr.com:{port}")
    conn, _ = pool_server.accept()
    with conn:
        snap = snapshot_of(client)
    found = only(PoolSocketProbe().scan(snap).findings, client.pid)
    assert found.coin == "xmr"
    assert f"the port of pool.supportxmr.com:{port}" in found.evidence[0]
    assert "not resolved" in found.evidence[0]


def test_pool_address_list_is_checked() -> None:
    assert parse_pool_addresses(["192.0.2.7", " 192.0.2.8:3333", "[2001:db8::1]:443"]) == {
        ("192.0.2.7", None),
        ("192.0.2.8", 3333),
        ("2001:db8::1", 443),
    }
    with pytest.raises(InputError, match="not an IP address"):
        parse_pool_addresses(["pool.example.org"])
    with pytest.raises(InputError, match="bad port"):
        parse_pool_addresses(["192.0.2.7:0"])
    pushed = ProbeOptions(pool_addresses=frozenset({"192.0.2.9:3333"}))
    assert PoolSocketProbe.from_options(pushed).addresses == {("192.0.2.9", 3333)}
    assert RandomXCpuProbe.from_options(pushed).addresses == {("192.0.2.9", 3333)}
    probe = PoolSocketProbe(pool_addresses={"104.16.1.1", "192.0.2.7"})  # first is Cloudflare
    assert probe.addresses == {("192.0.2.7", None)}
    spots = probe.scan(HostSnapshot("h", [], 1, [])).blind_spots
    assert spots and "CDN" in spots[0] and "104.16.1.1" in spots[0]


def test_unreadable_sockets_are_a_blind_spot() -> None:
    proc = ProcessInfo(pid=NOT_RUNNING, name="x", exe=None, cmdline=("x",), denied=("sockets",))
    result = PoolSocketProbe(pool_addresses={"192.0.2.7"}).scan(HostSnapshot("h", [proc], 1, []))
    assert result.findings == [] and "sockets of 1 process(es)" in result.blind_spots[0]


# --- randomx-cpu (footprints are synthetic; executables are real files) -----------------------


def footprint(exe: Path | str, name: str, cpu: float, huge: int) -> ProcessInfo:
    return ProcessInfo(
        pid=NOT_RUNNING, name=name, exe=str(exe), cmdline=(str(exe),), cpu_percent=cpu,
        hugetlb_bytes=huge,
    )  # fmt: skip


def randomx_probe(**kw: object) -> RandomXCpuProbe:
    # a 16-core machine with 64 MiB of L3: a RandomX miner would run 16 threads here
    return RandomXCpuProbe(SignatureScanner(), l3_cache_bytes=64 << 20, numa_nodes=1, **kw)  # type: ignore[arg-type]


def test_miner_threads_follow_the_l3_cache() -> None:
    assert RandomXCpuProbe(l3_cache_bytes=32 << 20).miner_threads(64) == 16
    assert RandomXCpuProbe(l3_cache_bytes=256 << 20).miner_threads(64) == 64
    assert RandomXCpuProbe(l3_cache_bytes=0).miner_threads(8) == 8
    with pytest.raises(InputError):
        RandomXCpuProbe(busy_fraction=0)


def test_database_with_huge_pages_at_full_cpu_stays_clean() -> None:
    database = Path("/usr/lib/postgresql/15/bin/postgres")
    exe = database if database.is_file() else Path(sys.executable).resolve()
    hot_db = footprint(exe, "postgres", cpu=1600.0, huge=8 * GIB)
    snap = HostSnapshot("h", [hot_db], 16, [])
    assert randomx_probe().scan(snap).findings == []
    low = only(randomx_probe(report_uncorroborated=True).scan(snap).findings, NOT_RUNNING)
    assert low.confidence <= 0.3 and "footprint alone" in low.evidence[-1]


def test_a_node_that_verifies_randomx_stays_clean(tmp_path: Path) -> None:
    # monerod verifies RandomX and may hold its dataset in huge pages while it syncs: hashing
    # strings in its binary are no sign of a miner. The file is named through /proc/self/fd so
    # that its path is not a temporary directory's (which would count as a sign by itself).
    node = tmp_path / "monerod"
    node.write_bytes(b"\0RandomX\x03\0\0rx/0\0cryptonight\0get_block_template\0" + b"\0" * 1000)
    fd = os.open(node, os.O_RDONLY)
    try:
        exe = f"/proc/{os.getpid()}/fd/{fd}"
        assert SignatureScanner().scan_file(exe).families == ("pow-hashing",)
        snap = HostSnapshot("h", [footprint(exe, "monerod", 1600.0, RANDOMX_DATASET_BYTES)], 16, [])
        assert randomx_probe().scan(snap).findings == []
    finally:
        os.close(fd)


def test_randomx_footprint_with_a_dropped_binary(tmp_path: Path) -> None:
    dropped = tmp_path / "kworker"
    shutil.copy2("/bin/sh", dropped)
    snap = HostSnapshot(
        "h", [footprint(dropped, "kworker/0:2", 1500.0, 2 * RANDOMX_DATASET_BYTES)], 16, []
    )
    found = only(randomx_probe().scan(snap).findings, NOT_RUNNING)
    assert (found.verdict, found.kind) == (Verdict.MINING, "randomx")
    text = " | ".join(found.evidence)
    assert (
        "2.0 RandomX dataset(s)" in text
        and "temporary directory" in text
        and "kernel thread" in text
    )


def test_randomx_footprint_with_miner_signatures(xmrig_copy: Path) -> None:
    snap = HostSnapshot(
        "h", [footprint(xmrig_copy, "php-fpm", 1400.0, RANDOMX_DATASET_BYTES)], 16, []
    )
    found = only(randomx_probe().scan(snap).findings, NOT_RUNNING)
    assert any("miner signatures" in e for e in found.evidence)
    assert found.confidence >= 0.7


@pytest.mark.parametrize(
    ("cpu", "huge"),
    [
        (1500.0, RANDOMX_CACHE_BYTES),  # light mode: only the 256 MiB cache
        (900.0, 2 * RANDOMX_DATASET_BYTES),  # far below the threads a miner would run
        (0.0, 0),
    ],
)
def test_randomx_needs_both_halves_of_the_footprint(tmp_path: Path, cpu: float, huge: int) -> None:
    dropped = tmp_path / "kworker"
    shutil.copy2("/bin/sh", dropped)
    snap = HostSnapshot("h", [footprint(dropped, "kworker/0:2", cpu, huge)], 16, [])
    assert randomx_probe().scan(snap).findings == []


def test_probes_report_what_they_could_not_read() -> None:
    proc = ProcessInfo(pid=NOT_RUNNING, name="x", exe=None, cmdline=(), denied=("command line",))
    result = MinerProcessProbe().scan(HostSnapshot("h", [proc], 1, []))
    assert result.findings == [] and "command lines of 1 process(es)" in result.blind_spots[0]
