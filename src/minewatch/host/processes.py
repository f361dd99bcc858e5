"""Read the running processes once, for every host probe to share.

For each process the agent records its name, executable, command line, owner, CPU use over one
sampling window, resident memory, huge-page memory, established TCP/UDP peers and listening TCP
ports. CPU is measured the way ``top`` does it: every process's CPU time is read, the agent sleeps
*once* for the window, and reads them again, so a snapshot of 500 processes costs one window, not
500.

Least privilege: without root the agent still sees every process's name, command line, owner, CPU
and huge-page total (``/proc/PID/stat``, ``cmdline`` and ``status`` are world-readable), but not
other users' executables, sockets or memory maps. Those fields stay empty, are listed in
:attr:`~minewatch.host.model.ProcessInfo.denied`, and are summarised as blind spots, e.g.
``"12 processes of other users: executable/sockets not readable without root"``.

Sockets are read from ``/proc/PID/net/{tcp,tcp6,udp,udp6}`` and matched to the process through the
socket inodes among its file descriptors, parsing each network namespace's tables once: a miner in
a container (its own network namespace) is seen with its own connections. Every read is bounded.

Example::

    >>> snapshot = build_snapshot(["/srv"], sample_seconds=0.1)
    >>> snapshot.cpu_count >= 1 and any(p.pid == os.getpid() for p in snapshot.processes)
    True
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped, unused-ignore]

from minewatch.errors import InputError
from minewatch.host.model import HostSnapshot, ProcessInfo

__all__ = [
    "THP_MIN_RSS",
    "build_snapshot",
    "parse_smaps_rollup",
    "parse_status_hugetlb",
    "snapshot_processes",
]

PROC = Path("/proc")
MAX_SAMPLE_SECONDS = 60.0
_MAX_PROC_FILE = 64 * 1024
"""Bound on one ``/proc/PID/status`` or ``smaps_rollup`` read (they are a few KiB)."""
_MAX_SOCKET_LINES = 1_000_000
"""Bound on the lines read from one ``/proc/PID/net/*`` table."""
_MAX_FDS = 100_000
"""Bound on the file descriptors listed per process."""
THP_MIN_RSS = 256 * 1024 * 1024
"""Resident memory below which transparent huge pages are not looked up: RandomX's smallest
structure, its cache, is 256 MiB."""
_PF_KTHREAD = 0x00200000
_TCP_ESTABLISHED = "01"
_TCP_LISTEN = "0A"

# Names of the fields a process may deny, as they appear in ProcessInfo.denied and blind spots.
DENIED_NAME = "name"
DENIED_CMDLINE = "command line"
DENIED_EXE = "executable"
DENIED_SOCKETS = "sockets"
DENIED_MEMORY_MAP = "memory map"


def snapshot_processes(sample_seconds: float = 1.0) -> tuple[list[ProcessInfo], list[str]]:
    """Every running process and what could not be read about them.

    CPU use is measured over one window of ``sample_seconds`` shared by all processes (100 per
    fully busy core). Processes that exit during the window are left out. Raises
    :class:`~minewatch.errors.InputError` for a negative or over-long window.
    """
    if not 0 <= sample_seconds <= MAX_SAMPLE_SECONDS:
        raise InputError(
            f"sample_seconds must lie between 0 and {MAX_SAMPLE_SECONDS:g}, got {sample_seconds}"
        )
    primed: list[psutil.Process] = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            proc.cpu_percent(None)  # starts this process's window
            primed.append(proc)
    time.sleep(sample_seconds)
    sockets = _SocketReader()
    me = _my_uid()
    infos: list[ProcessInfo] = []
    others: dict[int, bool] = {}
    for proc in primed:
        read = _read_process(proc, sockets, me)
        if read is not None:
            info, other_user = read
            infos.append(info)
            others[info.pid] = other_user
    infos.sort(key=lambda p: p.pid)
    return infos, _blind_spots(infos, others, sockets)


def build_snapshot(paths: Iterable[str | Path] = (), sample_seconds: float = 1.0) -> HostSnapshot:
    """The processes of this host now, with its name, CPU count and the directories to inspect."""
    processes, blind_spots = snapshot_processes(sample_seconds)
    return HostSnapshot(
        hostname=socket.gethostname(),
        processes=processes,
        cpu_count=psutil.cpu_count(logical=True) or os.cpu_count() or 1,
        paths=[Path(p) for p in paths],
        blind_spots=blind_spots,
    )


def _my_uid() -> int | None:
    return os.geteuid() if hasattr(os, "geteuid") else None


def _read_process(
    proc: psutil.Process, sockets: _SocketReader, me: int | None
) -> tuple[ProcessInfo, bool] | None:
    """One process's fields and whether it belongs to another user; ``None`` if it is gone."""
    denied: list[str] = []
    try:
        with proc.oneshot():
            name = proc.name()
            cpu = proc.cpu_percent(None)
            uids = proc.uids() if hasattr(proc, "uids") else None
            username = _username(proc)
            try:
                rss: int | None = proc.memory_info().rss
            except psutil.AccessDenied:
                rss = None
            try:
                cmdline = tuple(proc.cmdline())
            except psutil.AccessDenied:
                cmdline = ()
                denied.append(DENIED_CMDLINE)
            kernel_thread = _is_kernel_thread(proc.pid)
            exe: str | None = None
            if not kernel_thread:
                try:
                    exe = _exe(proc)
                except (psutil.AccessDenied, PermissionError):
                    denied.append(DENIED_EXE)
    except psutil.ZombieProcess:
        return None  # exited; nothing left to look at
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        # not even its name: counted as a blind spot, never silently dropped
        unreadable = (DENIED_NAME, DENIED_CMDLINE, DENIED_EXE, DENIED_SOCKETS)
        info = ProcessInfo(pid=proc.pid, name="", exe=None, cmdline=(), denied=unreadable)
        return info, me not in (None, 0)
    hugetlb: int | None = None
    remote: tuple[tuple[str, int], ...] = ()
    listen: tuple[int, ...] = ()
    if not kernel_thread:
        hugetlb, map_denied = _huge_page_bytes(proc.pid, rss)
        if map_denied:
            denied.append(DENIED_MEMORY_MAP)
        try:
            remote, listen = sockets.of(proc)
        except PermissionError:
            denied.append(DENIED_SOCKETS)
        except (FileNotFoundError, ProcessLookupError, psutil.NoSuchProcess):
            return None
    other_user = me is not None and uids is not None and uids.real != me and me != 0
    info = ProcessInfo(
        pid=proc.pid,
        name=name,
        exe=exe,
        cmdline=cmdline,
        username=username,
        cpu_percent=cpu,
        rss_bytes=rss,
        hugetlb_bytes=hugetlb,
        remote_endpoints=remote,
        listen_ports=listen,
        denied=tuple(denied),
    )
    return info, other_user


def _exe(proc: psutil.Process) -> str | None:
    """The executable path as the kernel shows it, `` (deleted)`` suffix included.

    psutil drops that suffix; an executable deleted after it started is how dropped miners hide,
    so the agent keeps it.
    """
    link = PROC / str(proc.pid) / "exe"
    if not link.parent.is_dir():
        return str(proc.exe()) or None
    try:
        return str(link.readlink()).split("\x00")[0] or None
    except FileNotFoundError:
        return None  # kernel threads and processes being torn down have no executable


def _username(proc: psutil.Process) -> str | None:
    try:
        return str(proc.username())
    except (psutil.AccessDenied, KeyError):
        return None


def _read_bounded(path: Path, limit: int = _MAX_PROC_FILE) -> str:
    with path.open("rb") as handle:
        return handle.read(limit).decode("utf-8", "replace")


def _is_kernel_thread(pid: int) -> bool:
    """Whether the kernel marks ``pid`` as one of its own threads (PF_KTHREAD in stat flags).

    Kernel threads have no executable; knowing them keeps them out of the blind spots, and lets
    a probe tell a real ``kworker`` from a user process that only borrows the name.
    """
    try:
        stat = _read_bounded(PROC / str(pid) / "stat")
    except OSError:
        return False
    fields = stat.rpartition(")")[2].split()
    # After the command name: state, ppid, pgrp, session, tty_nr, tpgid, flags.
    try:
        return bool(int(fields[6]) & _PF_KTHREAD)
    except (IndexError, ValueError):
        return False


def _kib_field(text: str, key: str) -> int | None:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * 1024
    return None


def parse_status_hugetlb(status: str) -> int | None:
    """Bytes of hugetlbfs pages (``HugetlbPages:``) in the text of ``/proc/PID/status``."""
    return _kib_field(status, "HugetlbPages")


def parse_smaps_rollup(text: str) -> tuple[int | None, int | None]:
    """``(hugetlb bytes, transparent huge page bytes)`` from ``/proc/PID/smaps_rollup`` text."""
    private = _kib_field(text, "Private_Hugetlb")
    shared = _kib_field(text, "Shared_Hugetlb")
    hugetlb = None if private is None and shared is None else (private or 0) + (shared or 0)
    return hugetlb, _kib_field(text, "AnonHugePages")


def _huge_page_bytes(pid: int, rss: int | None) -> tuple[int | None, bool]:
    """``(huge-page bytes, memory map denied)`` for one process.

    hugetlbfs pages (what RandomX asks for) come from ``status``, readable by anyone;
    transparent huge pages (``AnonHugePages``, which RandomX gets when hugetlbfs is empty and
    THP is on) only from ``smaps_rollup``, which needs the owner's rights and makes the kernel
    walk the process's page tables. It is read only for processes whose resident memory could
    hold RandomX's 256 MiB cache (:data:`THP_MIN_RSS`); smaller ones hold no RandomX memory.
    """
    base = PROC / str(pid)
    hugetlb: int | None = None
    with contextlib.suppress(OSError):
        hugetlb = parse_status_hugetlb(_read_bounded(base / "status"))
    if rss is not None and rss < THP_MIN_RSS:
        return hugetlb, False
    try:
        rollup_hugetlb, thp = parse_smaps_rollup(_read_bounded(base / "smaps_rollup"))
    except PermissionError:
        return hugetlb, True
    except OSError:  # no smaps_rollup (kernel < 4.14) or process gone
        return hugetlb, False
    if hugetlb is None:
        hugetlb = rollup_hugetlb
    if thp:
        hugetlb = (hugetlb or 0) + thp
    return hugetlb, False


@dataclass(frozen=True, slots=True)
class _Socket:
    remote: tuple[str, int] | None
    listen_port: int | None


class _SocketReader:
    """Reads socket tables once per network namespace and maps them to processes by inode."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[int, _Socket]] = {}
        self.truncated: set[str] = set()
        self._linux = (PROC / "self" / "net" / "tcp").exists()

    def of(self, proc: psutil.Process) -> tuple[tuple[tuple[str, int], ...], tuple[int, ...]]:
        """``(remote endpoints, listening ports)`` of one process; raises PermissionError."""
        if not self._linux:
            return _psutil_sockets(proc)
        base = PROC / str(proc.pid)
        inodes = _socket_inodes(base / "fd")
        if not inodes:
            return (), ()
        try:
            namespace = str((base / "ns" / "net").readlink())
        except OSError:
            namespace = f"pid:{proc.pid}"
        table = self._tables.get(namespace)
        if table is None:
            table = self._load(base / "net", namespace)
            self._tables[namespace] = table
        remote: set[tuple[str, int]] = set()
        listen: set[int] = set()
        for inode in inodes:
            sock = table.get(inode)
            if sock is None:
                continue
            if sock.remote is not None:
                remote.add(sock.remote)
            if sock.listen_port is not None:
                listen.add(sock.listen_port)
        return tuple(sorted(remote)), tuple(sorted(listen))

    def _load(self, net: Path, namespace: str) -> dict[int, _Socket]:
        table: dict[int, _Socket] = {}
        for kind in ("tcp", "tcp6", "udp", "udp6"):
            try:
                handle = (net / kind).open("r", encoding="ascii", errors="replace")
            except OSError:
                continue
            with handle:
                next(handle, None)  # header
                for number, line in enumerate(handle):
                    if number >= _MAX_SOCKET_LINES:
                        self.truncated.add(namespace)
                        break
                    entry = _parse_socket_line(line, tcp=kind.startswith("tcp"))
                    if entry is not None:
                        table[entry[0]] = entry[1]
        return table


def _socket_inodes(fd_dir: Path) -> set[int]:
    inodes: set[int] = set()
    with os.scandir(fd_dir) as entries:  # PermissionError for other users' processes
        for count, entry in enumerate(entries):
            if count >= _MAX_FDS:
                break
            try:
                target = str(Path(entry.path).readlink())
            except OSError:
                continue
            if target.startswith("socket:["):
                with contextlib.suppress(ValueError):
                    inodes.add(int(target[8:-1]))
    return inodes


def _parse_socket_line(line: str, *, tcp: bool) -> tuple[int, _Socket] | None:
    """One row of ``/proc/net/{tcp,udp}[6]``: ``sl local rem st ... uid timeout inode``."""
    parts = line.split()
    if len(parts) < 10:
        return None
    try:
        _, local_port = _parse_address(parts[1])
        remote_ip, remote_port = _parse_address(parts[2])
        inode = int(parts[9])
    except ValueError:
        return None
    state = parts[3]
    remote = None
    listen = None
    if tcp:
        if state == _TCP_ESTABLISHED:
            remote = (remote_ip, remote_port)
        elif state == _TCP_LISTEN:
            listen = local_port
    elif remote_port:  # a connected UDP socket
        remote = (remote_ip, remote_port)
    return inode, _Socket(remote, listen)


def _parse_address(text: str) -> tuple[str, int]:
    """``0100007F:0D05`` -> ``("127.0.0.1", 3333)``; the kernel prints 32-bit words natively."""
    address, _, port = text.partition(":")
    if len(address) not in (8, 32):
        raise ValueError(f"bad address {text!r}")
    packed = b"".join(
        int(address[i : i + 8], 16).to_bytes(4, sys.byteorder) for i in range(0, len(address), 8)
    )
    ip = ipaddress.ip_address(packed)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip), int(port, 16)


def _psutil_sockets(
    proc: psutil.Process,
) -> tuple[tuple[tuple[str, int], ...], tuple[int, ...]]:
    """Fallback where ``/proc/PID/net`` does not exist (not Linux)."""
    try:
        conns = proc.net_connections(kind="inet")
    except psutil.AccessDenied as exc:
        raise PermissionError(str(exc)) from exc
    remote = {
        (c.raddr.ip, c.raddr.port)
        for c in conns
        if c.raddr and (c.status == psutil.CONN_ESTABLISHED or c.status == psutil.CONN_NONE)
    }
    listen = {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN and c.laddr}
    return tuple(sorted(remote)), tuple(sorted(listen))


def _blind_spots(
    infos: list[ProcessInfo], others: dict[int, bool], sockets: _SocketReader
) -> list[str]:
    """One line per kind of denial, counted: what the probes could not check and why."""
    groups: Counter[tuple[bool, tuple[str, ...]]] = Counter()
    for info in infos:
        if info.denied:
            groups[(others.get(info.pid, False), info.denied)] += 1
    spots = []
    for (other_user, fields), count in sorted(groups.items(), key=lambda kv: (-kv[1], kv[0])):
        what = "/".join(fields)
        noun = "process" if count == 1 else "processes"
        if other_user:
            spots.append(f"{count} {noun} of other users: {what} not readable without root")
        else:
            spots.append(f"{count} {noun}: {what} not readable (permission denied)")
    hidepid = _hidepid()
    if hidepid and _my_uid() not in (None, 0):
        spots.append(
            f"/proc is mounted with hidepid={hidepid}: other users' processes are invisible to"
            " this agent; run it as root to see them"
        )
    if sockets.truncated:
        spots.append(
            f"socket tables of {len(sockets.truncated)} network namespace(s) were longer than"
            f" {_MAX_SOCKET_LINES} lines and were read only in part"
        )
    return spots


def _hidepid() -> str | None:
    """The ``hidepid`` option of the ``/proc`` mount, if any."""
    try:
        mounts = _read_bounded(PROC / "self" / "mounts", 1 << 20)
    except OSError:
        return None
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "/proc" and parts[2] == "proc":
            for option in parts[3].split(","):
                key, _, value = option.partition("=")
                if key == "hidepid" and value not in ("0", "off"):
                    return value
    return None
