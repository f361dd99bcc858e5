"""The process snapshot, read from real processes started by the tests."""

from __future__ import annotations

import json
import mmap
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from minewatch.errors import InputError
from minewatch.host import processes
from minewatch.host.model import ProcessInfo
from minewatch.host.processes import (
    THP_MIN_RSS,
    build_snapshot,
    parse_smaps_rollup,
    parse_status_hugetlb,
    snapshot_processes,
)

SRC = Path(__file__).resolve().parents[2] / "src"
BUSY = "import sys\nwhile True:\n    pass\n"
WAIT = "import sys\nsys.stdin.read()\n"


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; each is killed (by its own pid) at the end."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait(5)


def start(
    procs: list[subprocess.Popen[bytes]], argv: list[str], **kw: object
) -> subprocess.Popen[bytes]:
    proc: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, **kw
    )
    procs.append(proc)
    return proc


def find(infos: list[ProcessInfo], pid: int) -> ProcessInfo:
    matches = [p for p in infos if p.pid == pid]
    assert matches, f"pid {pid} not in the snapshot"
    return matches[0]


def ready(proc: subprocess.Popen[bytes]) -> str:
    """Wait for the child's first line (it prints once its sockets are set up)."""
    assert proc.stdout is not None
    return proc.stdout.readline().decode().strip()


def test_cpu_is_measured_over_one_shared_window(started: list[subprocess.Popen[bytes]]) -> None:
    busy = start(started, [sys.executable, "-c", BUSY])
    idle = start(started, [sys.executable, "-c", WAIT])
    time.sleep(0.2)
    t0 = time.monotonic()
    infos, _ = snapshot_processes(sample_seconds=0.5)
    elapsed = time.monotonic() - t0
    # one sleep for everyone, not one per process (there are dozens of processes here)
    assert len(infos) > 10
    assert elapsed < 0.5 + 4.0
    assert (find(infos, busy.pid).cpu_percent or 0) > 30  # a spinning thread; shared 2-core box
    assert (find(infos, idle.pid).cpu_percent or 0) < 10


def test_name_exe_cmdline_and_owner(tmp_path: Path, started: list[subprocess.Popen[bytes]]) -> None:
    exe = tmp_path / "xmrig"
    shutil.copy2("/bin/sh", exe)
    argv = [str(exe), "-c", "read line", "-o", "stratum+tcp://127.0.0.1:3333", "--donate-level=1"]
    proc = start(started, argv)
    time.sleep(0.1)
    info = find(snapshot_processes(0.05)[0], proc.pid)
    assert info.name == "xmrig"
    assert info.exe == str(exe)
    assert info.cmdline == tuple(argv)
    assert info.username == pwd.getpwuid(os.geteuid()).pw_name
    assert info.rss_bytes and info.rss_bytes > 0
    assert info.denied == ()


def test_a_deleted_executable_is_shown_as_deleted(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    exe = tmp_path / "kdevtmpfsi"
    shutil.copy2("/bin/sh", exe)
    proc = start(started, [str(exe), "-c", "read line"])
    time.sleep(0.1)
    exe.unlink()  # what a dropper does once its miner runs
    info = find(snapshot_processes(0.0)[0], proc.pid)
    assert info.exe == f"{exe} (deleted)"
    assert info.name == "kdevtmpfsi"


SOCKETS = """
import socket, sys
family = socket.AF_INET6 if sys.argv[1] == "::1" else socket.AF_INET
server = socket.socket(family)
server.bind((sys.argv[1], 0))
server.listen()
client = socket.create_connection((sys.argv[1], int(sys.argv[2])))
print(server.getsockname()[1], client.getsockname()[1], flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_sockets_remote_and_listening(host: str, started: list[subprocess.Popen[bytes]]) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        pool = socket.socket(family)
        pool.bind((host, 0))
    except OSError:
        pytest.skip(f"no {host} loopback here")
    with pool:
        pool.listen()
        pool_port = pool.getsockname()[1]
        child = start(started, [sys.executable, "-c", SOCKETS, host, str(pool_port)])
        listen_port, _ = (int(x) for x in ready(child).split())
        conn, _ = pool.accept()
        with conn:
            info = find(snapshot_processes(0.05)[0], child.pid)
    assert (host, pool_port) in info.remote_endpoints
    assert listen_port in info.listen_ports
    assert pool_port not in info.listen_ports


def test_kernel_threads_are_not_blind_spots() -> None:
    infos, _ = snapshot_processes(0.0)
    kthreadd = [p for p in infos if p.pid == 2 and p.name == "kthreadd"]
    if not kthreadd:
        pytest.skip("no kthreadd visible (not Linux, or a PID namespace)")
    assert kthreadd[0].exe is None and kthreadd[0].cmdline == ()
    assert kthreadd[0].denied == ()


def test_transparent_huge_pages_count(started: list[subprocess.Popen[bytes]]) -> None:
    mode = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not mode.exists() or "[never]" in mode.read_text():
        pytest.skip("transparent huge pages are off on this kernel")
    if not hasattr(mmap, "MADV_HUGEPAGE"):
        pytest.skip("mmap.MADV_HUGEPAGE not available")
    thp = (
        "import mmap, sys\n"
        "m = mmap.mmap(-1, 320 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)\n"
        "m.madvise(mmap.MADV_HUGEPAGE)\n"
        "for i in range(0, len(m), 4096): m[i] = 1\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = start(started, [sys.executable, "-c", thp])
    assert ready(child) == "ready"
    # read the same quantity independently, from the per-mapping smaps
    smaps = Path(f"/proc/{child.pid}/smaps").read_text()
    anon = sum(
        int(line.split()[1]) * 1024
        for line in smaps.splitlines()
        if line.startswith("AnonHugePages:")
    )
    if anon == 0:
        pytest.skip("the kernel gave this process no huge pages (memory fragmented)")
    info = find(snapshot_processes(0.0)[0], child.pid)
    assert info.rss_bytes is not None and info.rss_bytes >= THP_MIN_RSS
    assert info.hugetlb_bytes is not None
    assert info.hugetlb_bytes >= anon // 2  # khugepaged may move pages between the two reads


def test_huge_page_parsers() -> None:
    status = "Name:\txmrig\nVmRSS:\t  2400000 kB\nHugetlbPages:\t 2363392 kB\nThreads:\t9\n"
    assert parse_status_hugetlb(status) == 2363392 * 1024
    assert parse_status_hugetlb("Name:\tbash\n") is None
    rollup = (
        "55f1c000-7ffd0000 ---p 00000000 00:00 0  [rollup]\n"
        "Rss:             2402000 kB\nAnonHugePages:     4096 kB\n"
        "Shared_Hugetlb:         0 kB\nPrivate_Hugetlb:   2363392 kB\n"
    )
    assert parse_smaps_rollup(rollup) == (2363392 * 1024, 4096 * 1024)


@pytest.mark.skipif(sys.byteorder != "little", reason="the /proc rows below are little-endian")
def test_proc_net_rows() -> None:
    v4 = "   0: 0100007F:0D05 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000  0 0 4242 1"
    inode, sock = processes._parse_socket_line(v4, tcp=True)  # type: ignore[misc]
    assert inode == 4242 and sock.remote == ("127.0.0.1", 0xA1B2)
    listen = "   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0 0 77 1"
    assert processes._parse_socket_line(listen, tcp=True)[1].listen_port == 8080  # type: ignore[index]
    v6 = (
        "   0: 00000000000000000000000001000000:0050 0000000000000000FFFF00000500000A:0D05 01"
        " 00000000:00000000 00:00000000 00000000  0 0 99 1"
    )
    _, sock6 = processes._parse_socket_line(v6, tcp=True)  # type: ignore[misc]
    assert sock6.remote == ("10.0.0.5", 3333)  # IPv4-mapped IPv6 shown as IPv4
    assert processes._parse_socket_line("garbage", tcp=True) is None


def test_bad_window_is_refused() -> None:
    with pytest.raises(InputError, match="sample_seconds"):
        snapshot_processes(-1)
    with pytest.raises(InputError, match="sample_seconds"):
        snapshot_processes(3600)


def test_build_snapshot(tmp_path: Path) -> None:
    snap = build_snapshot([tmp_path, str(tmp_path)], sample_seconds=0.0)
    assert snap.hostname == socket.gethostname()
    assert snap.cpu_count == (os.cpu_count() or 1)
    assert snap.paths == [tmp_path, tmp_path]
    assert any(p.pid == os.getpid() for p in snap.processes)


# The agent as an unprivileged user: modules are imported as root (the interpreter and the
# virtual environment may live under /root), then the process drops to "nobody" for good
# before it looks at anything.
UNPRIVILEGED = """
import json, os, sys
from minewatch.host.processes import snapshot_processes
uid, gid = int(sys.argv[1]), int(sys.argv[2])
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
assert os.geteuid() == uid and os.getuid() == uid
infos, spots = snapshot_processes(0.0)
print(json.dumps({"spots": spots, "denied": {p.pid: list(p.denied) for p in infos}}))
"""


def test_without_root_it_says_what_it_could_not_see(started: list[subprocess.Popen[bytes]]) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to start a process as another user")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' here")
    # a root-owned process the unprivileged agent must not be able to look into
    root_child = start(started, [sys.executable, "-c", WAIT])
    run = subprocess.run(
        [sys.executable, "-c", UNPRIVILEGED, str(nobody.pw_uid), str(nobody.pw_gid)],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    denied = seen["denied"][str(root_child.pid)]
    assert "executable" in denied and "sockets" in denied
    assert "command line" not in denied  # world-readable: still checked without root
    assert any("of other users" in s and "without root" in s for s in seen["spots"]), seen["spots"]
