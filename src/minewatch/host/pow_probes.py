"""Host probes for proof-of-work mining: names, command lines, binaries, sockets, CPU and memory.

Four probes, each registered with :func:`~minewatch.host.model.register_probe`:

``miner-process``
    the process's name or command line is a known miner's (``miners.csv``), or carries what a
    miner needs: a stratum URL, a pool domain (:class:`~minewatch.intel.pools.PoolIntel`), an
    algorithm (``-a rx/0``), a payout address (``-u 4...``), options only miners have
    (``--donate-level``). Blockchain full nodes are reported as ``blockchain-node`` unless their
    mining option is on (``monerod --start-mining``, ``geth --mine``, ``bitcoind -gen``).
``miner-binary``
    the executable of a busy or oddly placed process is searched for miner byte signatures
    (:mod:`minewatch.host.signatures`): this is what catches ``xmrig`` renamed to
    ``kworker-sync``.
``pool-socket``
    the process is connected to a known pool address (a list pushed down from the network
    detector), or to the port of a pool domain named on its command line.
``randomx-cpu``
    near all-core CPU together with a RandomX dataset's worth of huge pages (2080 MiB per NUMA
    node). Databases and JVMs also run hot with huge pages, so this is supporting evidence: it
    reports only when the same process shows something else (a miner signature, an executable in
    ``/tmp`` or deleted, a name borrowed from a kernel thread, a packed binary).

Each probe reports per process; the scan merges findings by pid. Lawful look-alikes (a training
job at 100 % CPU, Spark, a database with huge pages, a full node) produce no ``mining`` finding.

Example::

    >>> from minewatch.host.model import HostSnapshot, ProcessInfo
    >>> proc = ProcessInfo(pid=7, name="xmrig", exe="/opt/xmrig", cmdline=("/opt/xmrig",
    ...                    "-o", "stratum+tcp://pool.supportxmr.com:443", "-a", "rx/0"))
    >>> snap = HostSnapshot(hostname="h", processes=[proc], cpu_count=4, paths=[])
    >>> f = MinerProcessProbe().scan(snap).findings[0]
    >>> str(f.verdict), f.kind, f.coin
    ('mining', 'xmrig', 'xmr')
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import stat
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from minewatch.errors import InputError, MinewatchError
from minewatch.findings import Verdict
from minewatch.host.miner_intel import (
    CommandLineFacts,
    MinerIntel,
    PoolTarget,
    algorithm_coin,
    coin_from_name,
    parse_pool_target,
    program_names,
    read_command_line,
    wallet_coin,
)
from minewatch.host.model import (
    HostFinding,
    HostProbe,
    HostSnapshot,
    ProbeOptions,
    ProbeResult,
    ProcessInfo,
    register_probe,
)
from minewatch.host.signatures import SignatureMatch, SignatureScanner, default_scanner
from minewatch.intel.pools import PoolIntel

__all__ = [
    "RANDOMX_CACHE_BYTES",
    "RANDOMX_DATASET_BYTES",
    "MinerBinaryProbe",
    "MinerProcessProbe",
    "PoolSocketProbe",
    "RandomXCpuProbe",
    "parse_pool_addresses",
]

RANDOMX_DATASET_BYTES = 2_181_038_080
"""RandomX dataset: 2 GiB + 32 MiB - 64 B (RANDOMX_DATASET_BASE_SIZE + EXTRA_SIZE), which a miner
in fast mode allocates once per NUMA node; 1040 huge pages of 2 MiB."""
RANDOMX_CACHE_BYTES = 268_435_456
"""RandomX cache (Argon2 memory, 256 MiB): all a light-mode miner needs."""
_SCRATCHPAD_BYTES = 2 * 1024 * 1024
"""Each RandomX hashing thread works in a 2 MiB scratchpad that should sit in L3 cache."""
_MAX_CONFIG_BYTES = 1024 * 1024
_CONFIG_OPTIONS = frozenset({"-c", "--config"})
_KERNEL_THREAD_NAMES = re.compile(
    r"^\[?(?:kworker|kthreadd|ksoftirqd|kswapd\d*|kcompactd\d*|khugepaged|kdevtmpfs|kauditd|"
    r"kblockd|kintegrityd|kthrotld|khungtaskd|ksmd|oom_reaper|rcu_\w+|"
    r"(?:migration|watchdog|cpuhp|irq|jbd2)/)"
)
# Where dropped malware runs from; only compared with executable paths, never written to.
_TEMP_DIRS = ("/tmp/", "/var/tmp/", "/dev/shm/", "/run/user/", "/dev/mqueue/")  # noqa: S108


def parse_pool_addresses(addresses: Iterable[str]) -> set[tuple[str, int | None]]:
    """``{"192.0.2.7", "192.0.2.8:3333", "[2001:db8::1]:443"}`` -> ``{(ip, port or None)}``.

    Raises :class:`~minewatch.errors.InputError` naming the first entry that is not an address.
    """
    parsed: set[tuple[str, int | None]] = set()
    for raw in addresses:
        text = raw.strip()
        port: int | None = None
        host = text
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            if rest:
                port = _port(rest.removeprefix(":"), raw)
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
            port = _port(port_text, raw)
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            raise InputError(
                f"pool address {raw!r} is not an IP address like 192.0.2.7, 192.0.2.7:3333 or"
                " [2001:db8::1]:443"
            ) from None
        parsed.add((_plain_ip(ip), port))
    return parsed


def _port(text: str, raw: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InputError(f"pool address {raw!r} has a bad port {text!r} (1-65535)")
    return int(text)


def _plain_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _entity(proc: ProcessInfo) -> str:
    return f"pid {proc.pid} {proc.exe or proc.name}"


def _names(proc: ProcessInfo) -> tuple[str, ...]:
    return program_names(proc.name, proc.exe, proc.cmdline)


def _endpoints(proc: ProcessInfo) -> str:
    shown = [_show(ip, port) for ip, port in proc.remote_endpoints[:5]]
    more = len(proc.remote_endpoints) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _show(ip: str, port: int | None) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return host if port is None else f"{host}:{port}"


def _connected_to(proc: ProcessInfo, targets: Sequence[PoolTarget]) -> list[str]:
    """Evidence lines for established connections to pools named by the process itself.

    Names are never resolved (the agent makes no DNS queries), so a named pool is matched by
    port; an IP literal by address and port.
    """
    lines: list[str] = []
    for target in targets:
        if target.port is None or target.is_web:
            continue
        for ip, port in proc.remote_endpoints:
            if port != target.port:
                continue
            if target.host_is_ip:
                if _plain_ip(ipaddress.ip_address(target.host)) == ip:
                    lines.append(f"connected to {_show(ip, port)}, the pool {target.text} it names")
            else:
                lines.append(
                    f"connected to {_show(ip, port)}: the port of {target.text} it names"
                    " (name not resolved)"
                )
    return list(dict.fromkeys(lines))


def _odd_location(proc: ProcessInfo) -> str | None:
    """Why the executable's place is typical of dropped malware, or ``None``."""
    exe = proc.exe
    if not exe:
        return None
    if exe.endswith(" (deleted)"):
        return f"executable {exe.removesuffix(' (deleted)')} was deleted after it started"
    if exe.startswith(_TEMP_DIRS):
        return f"executable runs from a temporary directory ({exe})"
    if any(part.startswith(".") and part not in (".", "..") for part in PurePosixPath(exe).parts):
        return f"executable lives in a hidden directory ({exe})"
    return None


def _borrowed_kernel_name(proc: ProcessInfo) -> str | None:
    """A user process named like a kernel thread; real kernel threads have no executable."""
    if (proc.exe or proc.cmdline) and _KERNEL_THREAD_NAMES.match(proc.name):
        return f"user-space process named like a kernel thread ({proc.name!r})"
    return None


def _exe_to_read(proc: ProcessInfo) -> str | None:
    """``/proc/PID/exe`` where the process has one: it opens the running image even when the file
    was deleted, replaced or lives in a container's mount namespace; else the recorded path."""
    magic = Path("/proc") / str(proc.pid) / "exe"
    if os.path.lexists(magic):
        return str(magic)
    return proc.exe


# --- miner configuration files --------------------------------------------------------------


@dataclass(slots=True)
class _ConfigFacts:
    path: str
    targets: list[PoolTarget] = field(default_factory=list)
    algorithms: list[tuple[str, str | None]] = field(default_factory=list)
    coins: list[str] = field(default_factory=list)
    wallets: list[tuple[str, str | None]] = field(default_factory=list)

    def coin(self) -> str | None:
        for _, coin in self.wallets:
            if coin:
                return coin
        for _, coin in self.algorithms:
            if coin:
                return coin
        if self.coins:
            return self.coins[0]
        for target in self.targets:
            if target.pool is not None and len(target.pool.coins) == 1:
                return target.pool.coins[0]
        return None

    def describe(self) -> list[str]:
        parts = [t.text for t in self.targets]
        parts += [f"algo {a}" for a, _ in self.algorithms]
        parts += [f"coin {c}" for c in self.coins]
        return [f"config {self.path} names {', '.join(parts)}"] if parts else []


def _config_path(proc: ProcessInfo) -> str | None:
    args = proc.cmdline[1:]
    for i, arg in enumerate(args):
        if arg in _CONFIG_OPTIONS and i + 1 < len(args):
            return args[i + 1]
        option, eq, value = arg.partition("=")
        if eq and option in _CONFIG_OPTIONS:
            return value
    return None


def _read_config(proc: ProcessInfo, pools: PoolIntel) -> _ConfigFacts | None:
    """Pools, algorithms and wallets from a JSON config named by ``-c``/``--config``.

    The path is opened through ``/proc/PID/root`` (or ``cwd`` when relative), so a miner in a
    chroot or container is read in its own file system. At most 1 MiB of a regular file is read.
    """
    given = _config_path(proc)
    if not given:
        return None
    base = Path("/proc") / str(proc.pid)
    path = base / "root" / given.lstrip("/") if given.startswith("/") else base / "cwd" / given
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            data = handle.read(_MAX_CONFIG_BYTES)
        document = json.loads(data)
    except (OSError, ValueError):
        return None
    facts = _ConfigFacts(path=given)
    entries = document.get("pools") if isinstance(document, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            _read_pool_entry(entry, facts, pools)
    return facts


def _read_pool_entry(entry: dict[str, Any], facts: _ConfigFacts, pools: PoolIntel) -> None:
    url, algo, coin, user = (entry.get(k) for k in ("url", "algo", "coin", "user"))
    if isinstance(url, str):
        target = parse_pool_target(url, "url", pools)
        if target is not None:
            facts.targets.append(target)
    if isinstance(algo, str):
        known, algo_coin = algorithm_coin(algo)
        if known:
            facts.algorithms.append((algo, algo_coin))
    if isinstance(coin, str) and (ticker := coin_from_name(coin)):
        facts.coins.append(ticker)
    if isinstance(user, str):
        shaped, wallet = wallet_coin(user)
        if shaped:
            facts.wallets.append((user, wallet))


# --- miner-process --------------------------------------------------------------------------


@register_probe
class MinerProcessProbe(HostProbe):
    """Known miners and miner-shaped command lines; blockchain nodes told apart from miners.

    Example::

        >>> from minewatch.host.model import HostSnapshot, ProcessInfo
        >>> node = ProcessInfo(pid=9, name="monerod", exe="/usr/bin/monerod",
        ...                    cmdline=("monerod", "--data-dir", "/srv/xmr"))
        >>> f = MinerProcessProbe().scan(HostSnapshot("h", [node], 8, [])).findings[0]
        >>> str(f.verdict), f.coin
        ('blockchain-node', 'xmr')
    """

    name: ClassVar[str] = "miner-process"

    def __init__(self, intel: MinerIntel | None = None, pools: PoolIntel | None = None) -> None:
        self.intel = intel or MinerIntel.bundled()
        self.pools = pools or PoolIntel.bundled()

    def scan(self, snapshot: HostSnapshot) -> ProbeResult:
        result = ProbeResult()
        unread = 0
        for proc in snapshot.processes:
            if "command line" in proc.denied:
                unread += 1
            facts = read_command_line(proc.cmdline, _names(proc), self.intel, self.pools)
            finding = self.judge(proc, facts)
            if finding is not None:
                result.findings.append(finding)
        if unread:
            result.blind_spots.append(
                f"miner-process: command lines of {unread} process(es) could not be read;"
                " only their names were checked"
            )
        return result

    def judge(self, proc: ProcessInfo, facts: CommandLineFacts) -> HostFinding | None:
        """The finding for one process, or ``None`` when its name and arguments say nothing."""
        if facts.text_tool:
            return None
        program = facts.program
        strong, support = _weigh(facts)
        if program is not None and program.is_node:
            if facts.node_mining_options:
                options = ", ".join(facts.node_mining_options)
                return HostFinding(
                    verdict=Verdict.MINING,
                    kind=program.program,
                    entity=_entity(proc),
                    coin=facts.best_coin(),
                    confidence=0.9,
                    evidence=[
                        f"process {facts.matched_name!r} is {program.program}, a full node,"
                        f" started with its built-in miner on ({options})",
                        *support,
                    ],
                    pid=proc.pid,
                    path=proc.exe,
                )
            if not strong:
                return self._node(proc, facts)
            # a miner's arguments under a node's name: judged as a miner below
            strong.insert(0, f"named {facts.matched_name!r} like the {program.program} node")
            program = None
        elif program is not None and facts.name_strength == "strong":
            strong.insert(0, f"process name {facts.matched_name!r} is the miner {program.program}")
        elif program is not None:
            support.insert(
                0, f"process name {facts.matched_name!r} is also the binary of {program.program}"
            )
        if not strong and len(support) < 2:
            return None
        count = len(strong) + len(support)
        if strong:
            confidence = min(0.99, 0.85 + 0.04 * (count - 1))
        else:
            confidence = min(0.85, 0.7 + 0.04 * (count - 2))
        kind = program.program if program is not None and not program.is_node else None
        if kind is None and facts.program_options:
            votes = Counter(p.program for p, _ in facts.program_options)
            kind = votes.most_common(1)[0][0]  # ties: the first listed in miners.csv
        evidence = strong + support + _connected_to(proc, facts.pool_targets)
        if proc.remote_endpoints:
            evidence.append(f"established connections: {_endpoints(proc)}")
        return HostFinding(
            verdict=Verdict.MINING,
            kind=kind or "unknown-miner",
            entity=_entity(proc),
            coin=facts.best_coin(),
            confidence=confidence,
            evidence=evidence,
            pid=proc.pid,
            path=proc.exe,
        )

    def _node(self, proc: ProcessInfo, facts: CommandLineFacts) -> HostFinding:
        assert facts.program is not None
        program = facts.program
        flags = ", ".join(program.mining_args)
        if flags:
            why = (
                f"no mining option ({flags}) on its command line (its configuration file,"
                " which can also switch mining on, was not read)"
            )
        else:
            why = "it has no built-in miner"
        return HostFinding(
            verdict=Verdict.BLOCKCHAIN_NODE,
            kind=program.program,
            entity=_entity(proc),
            coin=program.coins[0] if program.coins else None,
            confidence=0.9,
            evidence=[f"process {facts.matched_name!r} is the {program.program} full node; {why}"],
            pid=proc.pid,
            path=proc.exe,
        )


def _weigh(facts: CommandLineFacts) -> tuple[list[str], list[str]]:
    """Evidence lines that suffice alone (strong) and that need company (support)."""
    strong: list[str] = []
    support: list[str] = []
    by_option: dict[str, list[str]] = {}
    for program, option in facts.program_options:
        by_option.setdefault(option, []).append(program.program)
    if by_option:
        listed = ", ".join(f"{o} ({'/'.join(dict.fromkeys(p))})" for o, p in by_option.items())
        strong.append(f"options of known miners: {listed}")
    for target in facts.stratum_urls:
        pool = f" ({target.pool.pool})" if target.pool is not None else ""
        strong.append(f"mining pool URL {target.text}{pool} on its command line")
    for target in facts.pool_targets:
        if target.is_stratum or target.pool is None:
            continue
        coins = "/".join(target.pool.coins) or "coins not listed"
        line = f"names {target.text}, a host of the mining pool {target.pool.pool} ({coins})"
        (support if target.is_web else strong).append(line)
    for target in facts.pool_targets:
        if target.pool is None and not target.is_stratum and target.option is not None:
            support.append(f"pool-style address {target.text} given to {target.option}")
    for algo, coin in facts.algorithms:
        support.append(f"proof-of-work algorithm {algo}" + (f" ({coin})" if coin else ""))
    for value, ticker in facts.coin_options:
        support.append(f"coin option {value} ({ticker})")
    for wallet, coin in facts.wallets:
        support.append(f"payout address {wallet}" + (f" ({coin})" if coin else ""))
    return strong, support


# --- miner-binary ---------------------------------------------------------------------------


@register_probe
class MinerBinaryProbe(HostProbe):
    """Executables of running processes searched for miner signatures, whatever their name.

    Which executables: those of processes using at least ``cpu_threshold`` percent of a core
    during the snapshot, running from a temporary, hidden or deleted file, or named like a kernel
    thread; with ``scan_all`` every process's. At most ``max_bytes_per_scan`` are read per scan
    (cached results are free); what is left over is reported as a blind spot.
    """

    name: ClassVar[str] = "miner-binary"

    def __init__(
        self,
        scanner: SignatureScanner | None = None,
        *,
        cpu_threshold: float = 10.0,
        scan_all: bool = False,
        max_bytes_per_scan: int = 1024 * 1024 * 1024,
        pools: PoolIntel | None = None,
        intel: MinerIntel | None = None,
    ) -> None:
        self.scanner = scanner or default_scanner()
        self.cpu_threshold = cpu_threshold
        self.scan_all = scan_all
        self.max_bytes_per_scan = max_bytes_per_scan
        self.pools = pools or PoolIntel.bundled()
        self.intel = intel or MinerIntel.bundled()

    def candidates(self, snapshot: HostSnapshot) -> list[tuple[ProcessInfo, list[str]]]:
        """Processes whose executable will be searched, busiest first, with why each was chosen."""
        chosen: list[tuple[ProcessInfo, list[str]]] = []
        for proc in snapshot.processes:
            if proc.exe is None and "executable" not in proc.denied:
                continue  # kernel thread
            reasons = [r for r in (_odd_location(proc), _borrowed_kernel_name(proc)) if r]
            cpu = proc.cpu_percent or 0.0
            if cpu >= self.cpu_threshold:
                reasons.append(f"used {cpu:.0f} % of a core while sampled")
            if reasons or self.scan_all:
                chosen.append((proc, reasons))
        chosen.sort(key=lambda item: -(item[0].cpu_percent or 0.0))
        return chosen

    def scan(self, snapshot: HostSnapshot) -> ProbeResult:
        result = ProbeResult()
        start = self.scanner.bytes_read_total
        denied = 0
        over_budget = 0
        for proc, reasons in self.candidates(snapshot):
            path = _exe_to_read(proc)
            if path is None:
                denied += 1
                continue
            try:
                if self.scanner.bytes_read_total - start >= self.max_bytes_per_scan:
                    match = self.scanner.cached(path)
                    if match is None:
                        over_budget += 1
                        continue
                else:
                    match = self.scanner.scan_file(path)
            except PermissionError:
                denied += 1
                continue
            except (OSError, MinewatchError):
                continue  # the process exited, or its executable is not a regular file
            if match.is_miner:
                result.findings.append(self._finding(proc, match, reasons))
        if denied:
            result.blind_spots.append(
                f"miner-binary: executables of {denied} busy or suspicious process(es) could not"
                " be read (other users' processes need root); not checked for miner signatures"
            )
        if over_budget:
            result.blind_spots.append(
                f"miner-binary: {over_budget} executable(s) not searched: the scan's read budget"
                f" of {self.max_bytes_per_scan} bytes was spent"
            )
        return result

    def _finding(self, proc: ProcessInfo, match: SignatureMatch, reasons: list[str]) -> HostFinding:
        program = match.programs[0] if match.programs else None
        names = _names(proc)
        known = any(self.intel.match_name(n) for n in names)
        evidence = [
            f"executable {proc.exe or match.name} contains miner signatures of"
            f" {len(match.families)} independent families"
            + (" (read in part)" if match.truncated else ""),
            *match.describe(),
        ]
        if not known:
            evidence.append(f"running under a name that is not a known miner's ({proc.name!r})")
        evidence += reasons
        if match.packers:
            evidence.append(f"packed with {', '.join(match.packers)}")
        config = _read_config(proc, self.pools)
        coin = None
        if config is not None:
            evidence += config.describe()
            evidence += _connected_to(proc, config.targets)
            coin = config.coin()
        facts = read_command_line(proc.cmdline, names, self.intel, self.pools)
        evidence += _connected_to(proc, facts.pool_targets)
        coin = coin or facts.best_coin()
        if proc.remote_endpoints:
            evidence.append(f"established connections: {_endpoints(proc)}")
        return HostFinding(
            verdict=Verdict.MINING,
            kind=program or "unknown-miner",
            entity=_entity(proc),
            coin=coin,
            confidence=match.confidence,
            evidence=list(dict.fromkeys(evidence)),
            pid=proc.pid,
            path=proc.exe,
        )


# --- pool-socket ----------------------------------------------------------------------------


@register_probe
class PoolSocketProbe(HostProbe):
    """Processes connected to mining pools.

    ``pool_addresses`` are IPs (any port) or ``ip:port`` pairs known to be pools, e.g. pushed down
    from the network detector's findings; addresses inside CDN prefixes are dropped, because a
    CDN address also fronts unrelated sites. Without the list, a connection is still reported when
    its port is the port of a pool domain named on the process's own command line.

    Example::

        >>> from minewatch.host.model import HostSnapshot, ProcessInfo
        >>> proc = ProcessInfo(pid=5, name="svc", exe="/usr/sbin/svc", cmdline=("svc",),
        ...                    remote_endpoints=(("198.51.100.9", 14444),))
        >>> probe = PoolSocketProbe(pool_addresses={"198.51.100.9"})
        >>> probe.scan(HostSnapshot("h", [proc], 4, [])).findings[0].evidence[0]
        'connected to 198.51.100.9:14444, a known mining-pool address'
    """

    name: ClassVar[str] = "pool-socket"

    def __init__(
        self,
        pool_addresses: Iterable[str] = (),
        *,
        pools: PoolIntel | None = None,
        intel: MinerIntel | None = None,
    ) -> None:
        self.pools = pools or PoolIntel.bundled()
        self.intel = intel or MinerIntel.bundled()
        parsed = parse_pool_addresses(pool_addresses)
        self.cdn_dropped = sorted(_show(ip, port) for ip, port in parsed if self.pools.is_cdn(ip))
        self.addresses = {(ip, port) for ip, port in parsed if not self.pools.is_cdn(ip)}

    @classmethod
    def from_options(cls, options: ProbeOptions) -> PoolSocketProbe:
        """The probe with the scan's pushed-down ``pool_addresses``."""
        return cls(pool_addresses=options.pool_addresses)

    def scan(self, snapshot: HostSnapshot) -> ProbeResult:
        result = ProbeResult()
        unread = 0
        for proc in snapshot.processes:
            if "sockets" in proc.denied:
                unread += 1
                continue
            if not proc.remote_endpoints:
                continue
            finding = self._judge(proc)
            if finding is not None:
                result.findings.append(finding)
        if unread:
            result.blind_spots.append(
                f"pool-socket: sockets of {unread} process(es) could not be read (other users'"
                " processes need root); their pool connections were not checked"
            )
        if self.cdn_dropped:
            result.blind_spots.append(
                f"pool-socket: {len(self.cdn_dropped)} pool address(es) lie in CDN ranges and were"
                f" not used ({', '.join(self.cdn_dropped[:3])})"
            )
        return result

    def _judge(self, proc: ProcessInfo) -> HostFinding | None:
        evidence = [
            f"connected to {_show(ip, port)}, a known mining-pool address"
            for ip, port in proc.remote_endpoints
            if (ip, port) in self.addresses or (ip, None) in self.addresses
        ]
        facts = read_command_line(proc.cmdline, _names(proc), self.intel, self.pools)
        named = [t for t in facts.pool_targets if t.pool is not None or t.is_stratum]
        evidence += [] if facts.text_tool else _connected_to(proc, named)
        if not evidence:
            return None
        program = facts.program
        kind = program.program if program is not None and not program.is_node else "pool-client"
        return HostFinding(
            verdict=Verdict.MINING,
            kind=kind,
            entity=_entity(proc),
            coin=facts.best_coin(),
            confidence=min(0.95, 0.8 + 0.05 * (len(evidence) - 1)),
            evidence=evidence,
            pid=proc.pid,
            path=proc.exe,
        )


# --- randomx-cpu ----------------------------------------------------------------------------


def _l3_cache_bytes(sysfs: Path = Path("/sys/devices/system/cpu")) -> int | None:
    """Total L3 cache of the machine (each shared cache counted once), or ``None``."""
    seen: set[str] = set()
    total = 0
    for index in sorted(sysfs.glob("cpu[0-9]*/cache/index[0-9]*"))[:4096]:
        try:
            if (index / "level").read_text().strip() != "3":
                continue
            shared = (index / "shared_cpu_list").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if shared in seen or not size[:-1].isdigit():
            continue
        seen.add(shared)
        unit = {"K": 1024, "M": 1024 * 1024}.get(size[-1], 1)
        total += int(size[:-1]) * unit if size[-1] in "KM" else int(size)
    return total or None


def _numa_nodes(sysfs: Path = Path("/sys/devices/system/node")) -> int:
    return max(1, len(list(sysfs.glob("node[0-9]*"))))


@register_probe
class RandomXCpuProbe(HostProbe):
    """A RandomX miner's physical footprint: hot CPU plus the dataset in huge pages.

    *Hot* means at least ``busy_fraction`` of the threads a RandomX miner would run: one per CPU,
    but no more than fit their 2 MiB scratchpads in the L3 cache (miners size themselves that
    way). *Huge pages* means at least one 2080 MiB dataset's worth. Alone this matches a busy
    database, so a finding needs one more sign on the same process (miner signatures in its
    executable, an executable in ``/tmp`` or deleted, a kernel thread's name, a packed binary,
    a connection to ``pool_addresses``), unless ``report_uncorroborated`` is set, which reports
    the footprint alone at low confidence.
    """

    name: ClassVar[str] = "randomx-cpu"

    def __init__(
        self,
        scanner: SignatureScanner | None = None,
        *,
        busy_fraction: float = 0.8,
        report_uncorroborated: bool = False,
        pool_addresses: Iterable[str] = (),
        l3_cache_bytes: int | None = None,
        numa_nodes: int | None = None,
    ) -> None:
        if not 0 < busy_fraction <= 1:
            raise InputError(f"busy_fraction must lie in (0, 1], got {busy_fraction}")
        self.scanner = scanner or default_scanner()
        self.busy_fraction = busy_fraction
        self.report_uncorroborated = report_uncorroborated
        self.addresses = parse_pool_addresses(pool_addresses)
        self.l3_cache_bytes = l3_cache_bytes if l3_cache_bytes is not None else _l3_cache_bytes()
        self.numa_nodes = numa_nodes if numa_nodes is not None else _numa_nodes()

    @classmethod
    def from_options(cls, options: ProbeOptions) -> RandomXCpuProbe:
        """The probe with the scan's pushed-down ``pool_addresses`` as a corroborating sign."""
        return cls(pool_addresses=options.pool_addresses)

    def miner_threads(self, cpu_count: int) -> int:
        """Threads a RandomX miner would run here: one per CPU, limited by L3 / 2 MiB."""
        if self.l3_cache_bytes:
            return max(1, min(cpu_count, self.l3_cache_bytes // _SCRATCHPAD_BYTES))
        return max(1, cpu_count)

    def scan(self, snapshot: HostSnapshot) -> ProbeResult:
        result = ProbeResult()
        threads = self.miner_threads(snapshot.cpu_count)
        hot = self.busy_fraction * 100.0 * threads
        for proc in snapshot.processes:
            cpu = proc.cpu_percent or 0.0
            huge = proc.hugetlb_bytes or 0
            if cpu < hot or huge < 0.95 * RANDOMX_DATASET_BYTES:
                continue
            datasets = huge / RANDOMX_DATASET_BYTES
            footprint = [
                f"{cpu:.0f} % CPU, at least {self.busy_fraction:.0%} of the {threads} threads a"
                " RandomX miner would run here",
                f"{huge / 2**20:.0f} MiB of huge pages: room for {datasets:.1f} RandomX"
                f" dataset(s) of 2080 MiB ({self.numa_nodes} NUMA node(s) here)",
            ]
            signs = self._corroboration(proc)
            if not signs and not self.report_uncorroborated:
                continue
            confidence = min(0.9, 0.6 + 0.1 * len(signs)) if signs else 0.3
            result.findings.append(
                HostFinding(
                    verdict=Verdict.MINING,
                    kind="randomx",
                    entity=_entity(proc),
                    coin=None,
                    confidence=confidence,
                    evidence=footprint
                    + (signs or ["no other sign of mining: the footprint alone (low confidence)"]),
                    pid=proc.pid,
                    path=proc.exe,
                )
            )
        return result

    def _corroboration(self, proc: ProcessInfo) -> list[str]:
        signs = [s for s in (_odd_location(proc), _borrowed_kernel_name(proc)) if s]
        signs += [
            f"connected to {_show(ip, port)}, a known mining-pool address"
            for ip, port in proc.remote_endpoints
            if (ip, port) in self.addresses or (ip, None) in self.addresses
        ]
        path = _exe_to_read(proc)
        if path is not None:
            with contextlib.suppress(OSError, MinewatchError):
                match = self.scanner.scan_file(path)
                # A full node verifies proof of work, so hashing strings alone prove nothing;
                # the protocol, pool URLs, miner options and banners are a miner's own.
                own = [f for f in match.families if f != "pow-hashing"]
                if own:
                    lines = [line for line in match.describe() if line.split(":")[0] in own]
                    signs.append("executable holds miner signatures: " + "; ".join(lines))
                if match.packers:
                    signs.append(f"executable is packed with {', '.join(match.packers)}")
        return signs
