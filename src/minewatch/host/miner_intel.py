"""Known miner programs and blockchain nodes, and how to read a miner's command line.

``intel/miners.csv`` lists mining programs (xmrig, cgminer, t-rex, ...) and blockchain full nodes
(bitcoind, geth, monerod, ...), one program a row: the executable names it installs under, the
coins it mines, what hardware it drives, the options that are specific to it, where the facts come
from and when they were checked. For a node, ``mining_args`` are the options that switch its
built-in miner on (``monerod --start-mining``, ``geth --mine``): a node without one of them is a
lawful ``blockchain-node``, not a miner.

Besides the per-program options, a miner's command line gives itself away by what every miner
needs: a pool (``-o stratum+tcp://host:port``), an algorithm (``-a rx/0``), a wallet to be paid to
(``-u 4...``). :func:`read_command_line` extracts those facts; the probes in
:mod:`minewatch.host.pow_probes` weigh them. Each generic option counts only when its *value* has
the shape of mining (``-o`` is also "output file", ``-a`` is also "all", ``-u`` is also "user
name"), which is why a training job's or a Spark job's command line stays clean.

The file is validated on load; a malformed row raises :class:`~minewatch.errors.DataError` naming
the file and line.

Example::

    >>> intel = MinerIntel.bundled()
    >>> intel.match_name("XMRig").program
    'xmrig'
    >>> facts = read_command_line(("/opt/x/kswapd0", "-o", "stratum+tcp://10.1.2.3:3333",
    ...                            "-a", "rx/0", "--donate-level=1"), ("kswapd0",), intel)
    >>> [t.text for t in facts.stratum_urls], facts.algorithms, facts.best_coin()
    (['stratum+tcp://10.1.2.3:3333'], [('rx/0', 'xmr')], 'xmr')
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import urlsplit

from minewatch.errors import DataError
from minewatch.intel.pools import PoolEntry, PoolIntel

__all__ = [
    "ALGORITHM_COINS",
    "COIN_NAMES",
    "KINDS",
    "TEXT_TOOLS",
    "CommandLineFacts",
    "MinerIntel",
    "MinerProgram",
    "PoolTarget",
    "algorithm_coin",
    "coin_from_name",
    "parse_miners_csv",
    "parse_pool_target",
    "program_names",
    "read_command_line",
    "wallet_coin",
]

_COLUMNS = (
    "program",
    "aliases",
    "weak_aliases",
    "coins",
    "kind",
    "mining_args",
    "source",
    "date",
    "notes",
)
KINDS = frozenset({"cpu", "gpu", "asic-controller", "proxy", "node"})
"""What a program drives: ``node`` marks a blockchain full node, ``proxy`` a mining proxy."""
_PROGRAM = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_ALIAS = re.compile(r"^[a-z0-9][a-z0-9._+-]*$")
_OPTION = re.compile(r"^--?[A-Za-z0-9][A-Za-z0-9._-]*$")
_TICKER = re.compile(r"^[a-z0-9]{1,12}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SOURCE = re.compile(r"^https?://\S+$")

# --- facts about proof-of-work algorithms and coins ---------------------------------------------

ALGORITHM_COINS: dict[str, str | None] = {
    # RandomX family (xmrig's names; "randomx" is the name cpuminer-style miners use)
    "rx/0": "xmr",
    "randomx": "xmr",
    "rx/wow": "wow",
    "randomwow": "wow",
    "rx/arq": "arq",
    "rx/graft": "grft",
    "rx/sfx": "sfx",
    "rx/keva": "kva",
    "rx/yada": "yda",
    # CryptoNight variants: Monero's before RandomX (2019) and many small coins since
    "cryptonight": None,
    "cn/0": None,
    "cn/1": None,
    "cn/2": None,
    "cn/r": None,
    "cn/half": None,
    "cn/rwz": None,
    "cn/zls": None,
    "cn/double": None,
    "cn/ccx": "ccx",
    "cn/upx2": "upx",
    "cn-lite/1": None,
    "cn-heavy/0": None,
    "cn-heavy/xhv": "xhv",
    "cn-pico": None,
    "cn-pico/tlo": "tlo",
    "argon2/chukwa": "trtl",
    "argon2/chukwav2": "trtl",
    "astrobwt": "dero",
    "ghostrider": "rtm",
    "gr": "rtm",
    # GPU algorithms
    "kawpow": "rvn",
    "ethash": None,
    "etchash": "etc",
    "autolykos": "erg",
    "autolykos2": "erg",
    "kheavyhash": "kas",
    "karlsenhash": "kls",
    "octopus": "cfx",
    "firopow": "firo",
    "progpow": None,
    "progpowz": "zano",
    "nexapow": "nexa",
    "alephium": "alph",
    "blake3": None,
    "beamhash": "beam",
    "beamhashiii": "beam",
    "zelhash": "flux",
    "equihash125_4": "flux",
    "equihash144_5": None,
    "equihash": None,
    "cuckatoo31": "grin",
    "cuckatoo32": "grin",
    "verushash": "vrsc",
    "dynexsolve": "dnx",
    "fishhash": "iron",
    "sha512256d": "rxd",
    # ASIC algorithms: several coins share each, so the algorithm alone names none
    "sha256d": None,
    "sha256": None,
    "scrypt": None,
    "x11": None,
}
"""Proof-of-work algorithm names as miners spell them (lower case), and the coin each one means
when it means just one (``None``: a known PoW algorithm shared by several coins). Sources: xmrig's
algorithm list (https://xmrig.com/docs/algorithms) and the miners' READMEs listed in
``miners.csv``, checked 2026-11-26."""

COIN_NAMES: dict[str, str] = {
    "monero": "xmr",
    "bitcoin": "btc",
    "litecoin": "ltc",
    "dogecoin": "doge",
    "ethereum": "eth",
    "ethereumclassic": "etc",
    "ethereum-classic": "etc",
    "ravencoin": "rvn",
    "ergo": "erg",
    "kaspa": "kas",
    "zcash": "zec",
    "wownero": "wow",
    "raptoreum": "rtm",
    "conflux": "cfx",
    "flux": "flux",
    "firo": "firo",
    "beam": "beam",
    "grin": "grin",
    "alephium": "alph",
    "dero": "dero",
    "zephyr": "zeph",
    "turtlecoin": "trtl",
    "haven": "xhv",
    "nexa": "nexa",
    "dynex": "dnx",
    "karlsen": "kls",
    "verus": "vrsc",
    "zano": "zano",
    "ironfish": "iron",
    "radiant": "rxd",
    "chia": "xch",
    "filecoin": "fil",
}
"""Coin names a ``--coin`` option may carry (lower case) and their tickers."""
_TICKERS = frozenset(COIN_NAMES.values()) | frozenset(c for c in ALGORITHM_COINS.values() if c)

TEXT_TOOLS = frozenset(
    {
        "grep", "egrep", "fgrep", "rg", "ag", "ack", "zgrep", "less", "more", "most", "cat",
        "tac", "head", "tail", "vi", "vim", "nvim", "view", "nano", "emacs", "ed", "sed", "awk",
        "gawk", "mawk", "find", "locate", "strings", "man", "journalctl", "yara", "clamscan",
    }
)  # fmt: skip
"""Programs that *mention* miner words in their arguments (an inspector grepping for
``stratum+tcp``) without mining; their command lines are not read as a miner's."""

_B58 = "1-9A-HJ-NP-Za-km-z"
_BECH32 = "02-9ac-hj-np-z"
_WALLETS: tuple[tuple[re.Pattern[str], str | None], ...] = (
    # Monero: standard (95 characters), subaddress (8...), integrated (106)
    (re.compile(rf"^4[0-9AB][{_B58}]{{93}}$"), "xmr"),
    (re.compile(rf"^8[{_B58}]{{94}}$"), "xmr"),
    (re.compile(rf"^4[{_B58}]{{105}}$"), "xmr"),
    (re.compile(rf"^W[ow][{_B58}]{{95}}$"), "wow"),
    (re.compile(rf"^bc1[{_BECH32}]{{11,71}}$"), "btc"),
    (re.compile(rf"^[13][{_B58}]{{25,34}}$"), "btc"),
    (re.compile(rf"^ltc1[{_BECH32}]{{11,71}}$"), "ltc"),
    (re.compile(rf"^kaspa:[{_BECH32}]{{61,63}}$"), "kas"),
    (re.compile(rf"^R[{_B58}]{{33}}$"), "rvn"),
    (re.compile(rf"^D[{_B58}]{{33}}$"), "doge"),
    (re.compile(rf"^t1[{_B58}]{{33}}$"), "zec"),
    (re.compile(rf"^9[{_B58}]{{50}}$"), "erg"),
    # An EVM account: ETC, and the many Ethash/EVM forks; the shape names no single coin.
    (re.compile(r"^0x[0-9a-fA-F]{40}$"), None),
)

# Options every miner family uses. Each counts only when its value has the shape of mining.
_POOL_OPTIONS = frozenset(
    {"-o", "--url", "-url", "--pool", "-pool", "-P", "--server", "-epool", "-uri", "-O"}
)
_USER_OPTIONS = frozenset(
    {"-u", "--user", "-user", "--username", "--wallet", "-wallet", "-wal", "-ewal", "-O",
     "--userpass"}
)  # fmt: skip
_ALGO_OPTIONS = frozenset({"-a", "--algo", "-algo", "--algorithm", "-algorithm", "--coin-algo"})
_COIN_OPTIONS = frozenset({"--coin", "-coin", "--currency", "-dcoin"})
_OFF_VALUES = frozenset({"0", "false", "no", "off", "n"})
_STRATUM_SCHEME = re.compile(r"^(?:stratum[a-z0-9]*|ethstratum[a-z0-9]*|ethproxy)(?:\+[a-z]+)?$")
_HOST_PORT = re.compile(
    r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):(?P<port>\d{1,5})$"
)
_DNS_NAME = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


@dataclass(frozen=True, slots=True)
class MinerProgram:
    """One row of ``miners.csv``: a mining program or blockchain node.

    ``aliases`` are lower-case executable names that identify the program on their own;
    ``weak_aliases`` are names too ordinary to trust without miner arguments (GMiner's binary is
    called ``miner``). ``mining_args`` are the options specific to the program (for a node: the
    options that switch its built-in miner on).
    """

    program: str
    aliases: tuple[str, ...]
    weak_aliases: tuple[str, ...]
    coins: tuple[str, ...]
    kinds: tuple[str, ...]
    mining_args: tuple[str, ...]
    source: str
    date: dt.date
    notes: str = ""

    @property
    def is_node(self) -> bool:
        """Whether this is a blockchain full node (mines only with one of ``mining_args``)."""
        return "node" in self.kinds

    @property
    def single_coin(self) -> str | None:
        """The coin this program mines when it mines just one, else ``None``."""
        return self.coins[0] if len(self.coins) == 1 else None


class MinerIntel:
    """The known miner programs and nodes, ready for name and option look-ups.

    Example::

        >>> intel = MinerIntel.bundled()
        >>> intel.match_name("monerod").is_node
        True
        >>> [p.program for p in intel.programs_with_option("--donate-level")][:1]
        ['xmrig']
        >>> intel.match_name("miner") is None, intel.match_weak_name("miner").program
        (True, 'gminer')
    """

    def __init__(self, programs: Iterable[MinerProgram]) -> None:
        self._programs = tuple(programs)
        self._strong: dict[str, MinerProgram] = {}
        self._weak: dict[str, MinerProgram] = {}
        self._by_option: dict[str, list[MinerProgram]] = {}
        for program in self._programs:
            for alias in program.aliases:
                if alias in self._strong or alias in self._weak:
                    raise DataError(f"executable name {alias!r} listed for two programs")
                self._strong[alias] = program
            for alias in program.weak_aliases:
                if alias in self._strong or alias in self._weak:
                    raise DataError(f"executable name {alias!r} listed for two programs")
                self._weak[alias] = program
            if not program.is_node:
                for option in program.mining_args:
                    self._by_option.setdefault(_option_key(option), []).append(program)

    @classmethod
    def bundled(cls) -> MinerIntel:
        """The programs shipped with minewatch, loaded once per process."""
        return _load_bundled()

    @classmethod
    def from_file(cls, path: str | Path) -> MinerIntel:
        """Load a replacement ``miners.csv``; raises :class:`DataError` naming file and line."""
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot read: {exc}") from exc
        return cls(parse_miners_csv(text, str(path)))

    def __len__(self) -> int:
        return len(self._programs)

    def __iter__(self) -> Iterator[MinerProgram]:
        return iter(self._programs)

    def get(self, program: str) -> MinerProgram | None:
        """The row whose ``program`` id is ``program``."""
        return next((p for p in self._programs if p.program == program), None)

    def match_name(self, name: str) -> MinerProgram | None:
        """The program an executable name identifies on its own (case-insensitive).

        A Windows ``.exe`` suffix is ignored, so ``PhoenixMiner.exe`` under Wine matches too.
        """
        return self._strong.get(_name_key(name))

    def match_weak_name(self, name: str) -> MinerProgram | None:
        """The program a too-ordinary name (``miner``) may be; needs miner arguments to count."""
        return self._weak.get(_name_key(name))

    def programs_with_option(self, option: str) -> list[MinerProgram]:
        """Miner programs (not nodes) for which ``option`` is a program-specific marker."""
        return list(self._by_option.get(_option_key(option), ()))


def _name_key(name: str) -> str:
    key = name.strip().lower()
    return key[:-4] if key.endswith(".exe") else key


def _option_key(option: str) -> str:
    """``--mine``, ``-mine`` and ``--mine=1`` all name one option (Go and getopt spellings)."""
    return option.split("=", 1)[0].lstrip("-")


@functools.cache
def _load_bundled() -> MinerIntel:
    text = resources.files("minewatch.intel").joinpath("miners.csv").read_text(encoding="utf-8")
    return MinerIntel(parse_miners_csv(text, "miners.csv"))


def _split(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(";") if v.strip())


def parse_miners_csv(text: str, where: str = "miners.csv") -> list[MinerProgram]:
    """Parse and validate the text of a miners file; ``where`` names it in errors."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise DataError(f"{where}:1: empty file; expected a header: {','.join(_COLUMNS)}")
    names = [h.strip() for h in header]
    missing = [c for c in _COLUMNS if c not in names]
    if missing:
        raise DataError(
            f"{where}:1: missing column(s) {', '.join(missing)}; expected {','.join(_COLUMNS)}"
        )
    programs: list[MinerProgram] = []
    first_line: dict[str, int] = {}
    alias_line: dict[str, int] = {}
    for fields in reader:
        line = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(names):
            raise DataError(f"{where}:{line}: {len(fields)} fields, header has {len(names)}")
        row = {name: value.strip() for name, value in zip(names, fields, strict=True)}
        programs.append(_parse_row(row, where, line, first_line, alias_line))
    return programs


def _parse_row(
    row: dict[str, str],
    where: str,
    line: int,
    first_line: dict[str, int],
    alias_line: dict[str, int],
) -> MinerProgram:
    program = row["program"]
    if not _PROGRAM.match(program):
        raise DataError(
            f"{where}:{line}: program {program!r} is not a lower-case id like 'xmrig' or 't-rex'"
        )
    if program in first_line:
        raise DataError(
            f"{where}:{line}: duplicate program {program!r} (first on line {first_line[program]})"
        )
    first_line[program] = line
    aliases = _split(row["aliases"])
    weak = _split(row["weak_aliases"])
    if not aliases and not weak:
        raise DataError(f"{where}:{line}: {program}: no executable name in aliases")
    for alias in (*aliases, *weak):
        if not _ALIAS.match(alias):
            raise DataError(
                f"{where}:{line}: alias {alias!r} is not a lower-case executable name like"
                " 'xmrig-notls'"
            )
        if alias in alias_line:
            raise DataError(
                f"{where}:{line}: alias {alias!r} already names the program on line"
                f" {alias_line[alias]}"
            )
        alias_line[alias] = line
    coins = _split(row["coins"])
    bad = [c for c in coins if not _TICKER.match(c)]
    if bad:
        raise DataError(
            f"{where}:{line}: coin {bad[0]!r} is not a lower-case ticker"
            " (coins look like 'xmr;etc')"
        )
    kinds = _split(row["kind"])
    if not kinds or any(k not in KINDS for k in kinds):
        raise DataError(
            f"{where}:{line}: kind {row['kind']!r} must be one or more of"
            f" {', '.join(sorted(KINDS))} separated by ';'"
        )
    if "node" in kinds and len(kinds) > 1:
        raise DataError(f"{where}:{line}: kind 'node' cannot be combined with a miner kind")
    options = _split(row["mining_args"])
    bad = [o for o in options if not _OPTION.match(o)]
    if bad:
        raise DataError(
            f"{where}:{line}: mining_args entry {bad[0]!r} is not an option like '--donate-level'"
        )
    source = row["source"]
    if not _SOURCE.match(source):
        raise DataError(f"{where}:{line}: source {source!r} is not an http(s) URL")
    date_text = row["date"]
    try:
        if not _ISO_DATE.match(date_text):
            raise ValueError(date_text)
        date = dt.date.fromisoformat(date_text)
    except ValueError:
        raise DataError(
            f"{where}:{line}: date {date_text!r} is not an ISO date like 2026-11-26"
        ) from None
    return MinerProgram(
        program=program,
        aliases=aliases,
        weak_aliases=weak,
        coins=coins,
        kinds=kinds,
        mining_args=options,
        source=source,
        date=date,
        notes=row["notes"],
    )


# --- reading a command line ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PoolTarget:
    """A pool address found in a command line or config: ``text`` has any credentials removed."""

    text: str
    host: str
    port: int | None
    scheme: str | None
    option: str | None
    pool: PoolEntry | None = None

    @property
    def is_stratum(self) -> bool:
        """Whether the URL scheme is a mining protocol (``stratum+tcp://`` and kin)."""
        return self.scheme is not None and bool(_STRATUM_SCHEME.match(self.scheme))

    @property
    def is_web(self) -> bool:
        """Whether this is an ``http(s)://`` URL (a pool's web API, not its mining port)."""
        return self.scheme in ("http", "https", "ws", "wss")

    @property
    def host_is_ip(self) -> bool:
        """Whether the host is an IP literal: then a connection can be matched without DNS."""
        return _is_ip(self.host)


def parse_pool_target(
    value: str, option: str | None = None, pools: PoolIntel | None = None
) -> PoolTarget | None:
    """Read ``value`` as a URL or ``host:port``; ``None`` when it is neither.

    A URL's user name and password (``stratum+tcp://wallet:x@host:3333``) never reach ``text``.
    Nothing is resolved: the host is kept as written.
    """
    value = value.strip()
    if "://" in value:
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            return None
        host = (parts.hostname or "").lower()
        scheme = parts.scheme.lower()
        if not host or not scheme:
            return None
        shown = f"[{host}]" if ":" in host else host
        text = f"{scheme}://{shown}" + (f":{port}" if port is not None else "")
    else:
        match = _HOST_PORT.match(value)
        if match is None:
            return None
        host = match["host"].strip("[]").lower()
        port = int(match["port"])
        scheme = None
        text = f"{match['host'].lower()}:{port}"
    if port is not None and not 0 < port < 65536:
        return None
    if not _is_ip(host) and not _DNS_NAME.match(host) and host != "localhost":
        return None
    entry = pools.match_domain(host) if pools is not None and not _is_ip(host) else None
    return PoolTarget(text=text, host=host, port=port, scheme=scheme, option=option, pool=entry)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def algorithm_coin(value: str) -> tuple[bool, str | None]:
    """``(is a known PoW algorithm, its coin or None)`` for an ``--algo`` value."""
    key = value.strip().lower()
    if key in ALGORITHM_COINS:
        return True, ALGORITHM_COINS[key]
    return False, None


def coin_from_name(value: str) -> str | None:
    """The ticker a ``--coin`` value names (``monero``, ``XMR``), or ``None``."""
    key = value.strip().lower()
    if key in COIN_NAMES:
        return COIN_NAMES[key]
    return key if key in _TICKERS else None


def wallet_coin(value: str) -> tuple[bool, str | None]:
    """``(has the shape of a payout address, its coin or None)``.

    Pools take ``WALLET.worker``, ``WALLET+difficulty`` or ``WALLET/email`` as the user; the
    suffix is dropped before the address is matched. ``-O user:pass`` values are split too.
    """
    text = value.strip()
    address = text if text.lower().startswith("kaspa:") else text.split(":", 1)[0]
    head = re.split(r"[.+/]", address, maxsplit=1)[0]
    for pattern, coin in _WALLETS:
        if pattern.match(head):
            return True, coin
    return False, None


@dataclass(slots=True)
class CommandLineFacts:
    """What a process's name and command line say about mining (see :func:`read_command_line`)."""

    program: MinerProgram | None = None
    """The program the process's name identifies (strong or weak alias)."""
    name_strength: str | None = None
    """``"strong"`` or ``"weak"`` (an ordinary name such as ``miner``)."""
    matched_name: str | None = None
    program_options: list[tuple[MinerProgram, str]] = field(default_factory=list)
    """Options specific to a known miner, found on this command line, and whose they are."""
    node_mining_options: list[str] = field(default_factory=list)
    """For a node: the options on its command line that switch its miner on."""
    stratum_urls: list[PoolTarget] = field(default_factory=list)
    pool_targets: list[PoolTarget] = field(default_factory=list)
    """Every URL or ``host:port`` found, stratum or not, with the pool it belongs to if known."""
    algorithms: list[tuple[str, str | None]] = field(default_factory=list)
    coin_options: list[tuple[str, str]] = field(default_factory=list)
    wallets: list[tuple[str, str | None]] = field(default_factory=list)
    text_tool: bool = False
    """The process is a text tool (grep, less, ...): its arguments mention, they do not mine."""

    def best_coin(self) -> str | None:
        """The coin the evidence names, strongest source first; ``None`` when it is unclear.

        Order: the payout address's shape, the algorithm, ``--coin``, the pool's single coin,
        the program's single coin.
        """
        for _, coin in self.wallets:
            if coin:
                return coin
        for _, coin in self.algorithms:
            if coin:
                return coin
        for _, coin in self.coin_options:
            return coin
        for target in self.pool_targets:
            if target.pool is not None and len(target.pool.coins) == 1:
                return target.pool.coins[0]
        if self.program is not None:
            return self.program.single_coin
        return None


def _options(args: Sequence[str]) -> Iterator[tuple[str | None, str]]:
    """``(option or None, value)`` pairs: ``--opt=value``, ``--opt value`` and bare arguments."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and len(arg) > 1:
            if "=" in arg:
                option, value = arg.split("=", 1)
                yield option, value
            elif i + 1 < len(args) and not args[i + 1].startswith("-"):
                yield arg, args[i + 1]
                i += 1
            else:
                yield arg, ""
        else:
            yield None, arg
        i += 1


def program_names(name: str, exe: str | None, cmdline: Sequence[str]) -> tuple[str, ...]:
    """The names a process goes by: its name, its executable's and its argv[0]'s base names."""
    names = [name]
    if exe:
        names.append(_base(exe.removesuffix(" (deleted)")))
    if cmdline:
        names.append(_base(cmdline[0]))
    seen: dict[str, None] = {}
    for n in names:
        if n:
            seen.setdefault(n, None)
    return tuple(seen)


def _base(path: str) -> str:
    return PureWindowsPath(path).name if "\\" in path else PurePosixPath(path).name


def read_command_line(
    cmdline: Sequence[str],
    names: Iterable[str],
    intel: MinerIntel,
    pools: PoolIntel | None = None,
) -> CommandLineFacts:
    """Extract the mining-related facts of one process.

    ``names`` are the names the process goes by (see :func:`program_names`); ``cmdline`` is its
    argument vector, ``cmdline[0]`` included. Nothing is judged here: the probes weigh the facts.
    """
    facts = CommandLineFacts()
    name_list = [n for n in names if n]
    if any(_name_key(n) in TEXT_TOOLS for n in name_list):
        facts.text_tool = True
        return facts
    for n in name_list:
        program = intel.match_name(n)
        if program is not None:
            facts.program, facts.name_strength, facts.matched_name = program, "strong", n
            break
    else:
        for n in name_list:
            program = intel.match_weak_name(n)
            if program is not None:
                facts.program, facts.name_strength, facts.matched_name = program, "weak", n
                break
    node = facts.program if facts.program is not None and facts.program.is_node else None
    args = list(cmdline[1:])
    for option, value in _options(args):
        if option is not None:
            _read_option(facts, intel, node, option, value)
        target = parse_pool_target(value, option, pools) if value else None
        if target is not None and (
            target.is_stratum or target.pool is not None or option in _POOL_OPTIONS
        ):
            facts.pool_targets.append(target)
            if target.is_stratum:
                facts.stratum_urls.append(target)
    return facts


def _read_option(
    facts: CommandLineFacts,
    intel: MinerIntel,
    node: MinerProgram | None,
    option: str,
    value: str,
) -> None:
    key = _option_key(option)
    if (
        node is not None
        and any(key == _option_key(m) for m in node.mining_args)
        and value.lower() not in _OFF_VALUES  # -gen=0 switches the miner off
    ):
        facts.node_mining_options.append(option)
    for program in intel.programs_with_option(option):
        facts.program_options.append((program, option))
    if option in _ALGO_OPTIONS and value:
        known, coin = algorithm_coin(value)
        if known:
            facts.algorithms.append((value.lower(), coin))
    if option in _COIN_OPTIONS and value:
        ticker = coin_from_name(value)
        if ticker:
            facts.coin_options.append((value, ticker))
    if option in _USER_OPTIONS and value:
        shaped, coin = wallet_coin(value)
        if shaped:
            facts.wallets.append((value.split(":", 1)[0], coin))
