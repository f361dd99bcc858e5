"""Byte signatures that recognise a miner executable by its content, whatever it is called.

Renaming ``xmrig`` to ``kworker-sync`` defeats every check on names and command lines, but the
program still has to speak a pool protocol, compute a proof of work and read its own options, and
the strings for all three are in the binary. A signature here is a literal byte string (in the
spirit of a YARA rule's text strings, searched with :meth:`bytes.find`); signatures are grouped
into independent *families*:

``stratum-protocol``
    pool protocol method names (``mining.subscribe``, ``mining.submit``, CryptoNote's
    ``keepalived``, Ethereum stratum's ``eth_submitLogin``);
``pool-url``
    mining URL schemes (``stratum+tcp://``, ``stratum+ssl://``, ``stratum2+tcp://``);
``pow-hashing``
    proof-of-work algorithms: the RandomX Argon2 salt ``RandomX\\x03`` and algorithm names
    such as ``rx/0``, ``cryptonight``, ``kawpow``, ``etchash``;
``miner-config``
    option and config keys only miners have (``donate-level``, ``randomx-1gb-pages``,
    ``cpu-max-threads-hint``, ``"pools"``);
``miner-banner``
    the programs' own names (``XMRig``, ``cgminer``, ``lolMiner``, ...).

A file is called a miner only when at least :data:`MIN_FAMILIES` (three) families are present and
one of them is ``stratum-protocol`` or ``pow-hashing`` (the families that show the program does
the work). Any one family alone is common in lawful software: a blockchain node verifies RandomX
(``monerod``), a network monitor knows Stratum method names (nDPI), a security tool carries miner
names and pool URLs (Falco rules); none of them has three.

Reading is bounded: at most ``max_bytes`` (64 MiB) of a file, in chunks that overlap by the
longest signature so no string is missed at a boundary; only regular files are opened. Results are
cached by ``(device, inode, size, mtime)``, so a periodic scan re-reads only executables that
changed.

Example::

    >>> scanner = SignatureScanner()
    >>> blob = (b"\\0mining.subscribe\\0mining.submit\\0stratum+tcp://\\0RandomX\\x03\\0rx/0\\0"
    ...         b"donate-level\\0randomx-1gb-pages\\0XMRig\\0")
    >>> match = scanner.scan_bytes(blob)
    >>> match.is_miner, len(match.families), match.programs
    (True, 5, ('xmrig',))
    >>> scanner.scan_bytes(b'{"jsonrpc": "2.0", "method": "getblock"}').is_miner
    False
"""

from __future__ import annotations

import functools
import os
import stat
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minewatch.errors import InputError

__all__ = [
    "FAMILIES",
    "MIN_FAMILIES",
    "PACKERS",
    "Signature",
    "SignatureFamily",
    "SignatureMatch",
    "SignatureScanner",
    "default_scanner",
]

MIN_FAMILIES = 3
"""Independent families a file must show to be called a miner."""
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""How much of one file is read at most (a miner's strings sit in its first few MiB)."""
_CHUNK_BYTES = 8 * 1024 * 1024
_HASH_MULT = np.uint32(2654435761)  # Knuth's multiplicative hash; the top 16 bits index the gate
_HASH_SHIFT = np.uint32(16)


@dataclass(frozen=True, slots=True)
class Signature:
    """One fact, written the ways it can appear: ``forms`` are alternative byte strings.

    ``program`` is set on banner signatures: the ``miners.csv`` program the string names.
    """

    label: str
    forms: tuple[bytes, ...]
    program: str | None = None


@dataclass(frozen=True, slots=True)
class SignatureFamily:
    """Signatures of one kind of evidence; present when ``min_hits`` distinct labels are found.

    ``work`` marks the families that show the program itself mines (protocol, hashing).
    """

    name: str
    why: str
    signatures: tuple[Signature, ...]
    min_hits: int = 1
    work: bool = False


def _sig(label: str, *forms: bytes, program: str | None = None) -> Signature:
    return Signature(label, forms or (label.encode(),), program)


FAMILIES: tuple[SignatureFamily, ...] = (
    SignatureFamily(
        "stratum-protocol",
        "method names of the Stratum pool protocol and its CryptoNote/Ethereum dialects",
        (
            _sig("mining.subscribe"),
            _sig("mining.authorize"),
            _sig("mining.submit"),
            _sig("mining.notify"),
            _sig("mining.set_difficulty"),
            _sig("mining.set_target"),
            _sig("mining.extranonce.subscribe"),
            _sig("eth_submitLogin"),
            _sig("eth_submitWork"),
            _sig("eth_submitHashrate"),
            _sig("keepalived"),
            _sig("getjob", b"\0getjob\0", b'"getjob"'),
            _sig("login request", b'"method":"login"', b'"method": "login"'),
        ),
        min_hits=2,
        work=True,
    ),
    SignatureFamily(
        "pool-url",
        "URL schemes used only to name mining pools",
        (
            _sig("stratum+tcp://"),
            _sig("stratum+ssl://"),
            _sig("stratum+tls://"),
            _sig("stratum1+tcp://"),
            _sig("stratum2+tcp://"),
            _sig("stratums+tcp://"),
            _sig("ethstratum+tcp://"),
            _sig("ethproxy+tcp://"),
        ),
    ),
    SignatureFamily(
        "pow-hashing",
        "proof-of-work algorithm constants and names",
        (
            # RANDOMX_ARGON_SALT: the salt RandomX's Argon2d cache initialisation uses.
            _sig("RandomX Argon2 salt", b"RandomX\x03"),
            _sig("RandomWOW salt", b"RandomWOW\x01"),
            _sig("rx/0", b"\0rx/0\0", b'"rx/0"'),
            _sig("rx/wow", b"\0rx/wow\0", b'"rx/wow"'),
            _sig("cn/r", b"\0cn/r\0", b'"cn/r"'),
            _sig("cryptonight", b"cryptonight", b"CryptoNight"),
            _sig("argon2/chukwa"),
            _sig("ghostrider", b"ghostrider", b"GhostRider"),
            _sig("kawpow", b"kawpow", b"KawPow", b"KAWPOW"),
            _sig("etchash", b"etchash", b"Etchash"),
            _sig("autolykos", b"autolykos", b"Autolykos"),
            _sig("kheavyhash", b"kheavyhash", b"kHeavyHash"),
            _sig("equihash", b"equihash", b"Equihash"),
            _sig("cuckatoo", b"cuckatoo", b"Cuckatoo"),
        ),
        min_hits=2,
        work=True,
    ),
    SignatureFamily(
        "miner-config",
        "option and configuration keys that only miners have",
        (
            _sig("donate-level"),
            _sig("donate-over-proxy"),
            _sig("randomx-1gb-pages", b"randomx-1gb-pages", b'"1gb-pages"'),
            _sig("huge-pages-jit"),
            _sig("cpu-max-threads-hint"),
            _sig("max-cpu-usage"),
            _sig("rig-id", b"rig-id", b'"rig_id"'),
            _sig("nicehash", b"nicehash", b"NiceHash"),
            _sig('"pools"', b'"pools"'),
            _sig('"randomx"', b'"randomx"'),
        ),
        min_hits=2,
    ),
    SignatureFamily(
        "miner-banner",
        "the names miners print about themselves",
        (
            _sig("XMRig", b"XMRig", b"xmrig.com", program="xmrig"),
            _sig("xmr-stak", b"xmr-stak", program="xmr-stak"),
            _sig("bfgminer", b"bfgminer", b"BFGMiner", program="bfgminer"),
            _sig("sgminer", b"sgminer", program="sgminer"),
            _sig("cgminer", b"cgminer", program="cgminer"),
            _sig("cpuminer", b"cpuminer", program="cpuminer"),
            _sig("kawpowminer", b"kawpowminer", program="kawpowminer"),
            _sig("ethminer", b"ethminer", program="ethminer"),
            _sig("lolMiner", b"lolMiner", program="lolminer"),
            _sig("T-Rex", b"T-Rex", program="t-rex"),
            _sig("SRBMiner", b"SRBMiner", program="srbminer"),
            _sig("TeamRedMiner", b"TeamRedMiner", b"teamredminer", program="teamredminer"),
            _sig("PhoenixMiner", b"PhoenixMiner", program="phoenixminer"),
            _sig("NBMiner", b"NBMiner", program="nbminer"),
            _sig("nanominer", b"nanominer", program="nanominer"),
            _sig("GMiner", b"GMiner", program="gminer"),
            _sig("ccminer", b"ccminer", program="ccminer"),
            _sig("Claymore", b"Claymore", program="claymore"),
            _sig("nheqminer", b"nheqminer", program="nheqminer"),
            _sig("WildRig", b"WildRig", program="wildrig"),
            _sig("BzMiner", b"BzMiner", program="bzminer"),
            _sig("MinerGate", b"MinerGate", program="minergate"),
        ),
    ),
)
"""The families, in the order evidence is reported."""

PACKERS: tuple[Signature, ...] = (_sig("UPX", b"UPX!"),)
"""Executable packers: a packed binary hides its strings, which is itself worth saying when it
burns CPU. Reported beside the families, never counted as one."""


@dataclass(frozen=True, slots=True)
class SignatureMatch:
    """What one file or buffer holds: the labels found per family, and how much was read."""

    name: str
    hits: Mapping[str, tuple[str, ...]]
    """Family name -> labels found (including families below their ``min_hits``)."""
    families: tuple[str, ...]
    """Families present (at least ``min_hits`` labels), in :data:`FAMILIES` order."""
    work_families: tuple[str, ...]
    programs: tuple[str, ...]
    """Programs named by banner strings, in :data:`FAMILIES` order."""
    packers: tuple[str, ...]
    bytes_read: int
    size: int
    min_families: int = MIN_FAMILIES

    @property
    def truncated(self) -> bool:
        """Whether the file is longer than what was read."""
        return self.bytes_read < self.size

    @property
    def is_miner(self) -> bool:
        """At least ``min_families`` families, one of them showing the program does the work."""
        return len(self.families) >= self.min_families and bool(self.work_families)

    @property
    def confidence(self) -> float:
        """0 below the threshold; 0.75 at three families, rising with each further family."""
        if not self.is_miner:
            return 0.0
        return min(0.95, 0.75 + 0.09 * (len(self.families) - self.min_families))

    def describe(self) -> list[str]:
        """One evidence line per family present, naming what was found."""
        return [f"{family}: {', '.join(self.hits[family])}" for family in self.families]


class SignatureScanner:
    """Searches files or buffers for :data:`FAMILIES`, reading each file at most once.

    Example::

        >>> import sys
        >>> SignatureScanner().scan_file(sys.executable).is_miner
        False
    """

    def __init__(
        self,
        families: Sequence[SignatureFamily] = FAMILIES,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        chunk_bytes: int = _CHUNK_BYTES,
        cache_entries: int = 4096,
        min_families: int = MIN_FAMILIES,
    ) -> None:
        if max_bytes <= 0 or chunk_bytes <= 0 or cache_entries < 0:
            raise InputError("max_bytes and chunk_bytes must be positive, cache_entries >= 0")
        self._families = tuple(families)
        self._max_bytes = max_bytes
        self._chunk_bytes = chunk_bytes
        self._cache_entries = cache_entries
        self._min_families = min_families
        self._cache: OrderedDict[tuple[int, int, int, int], SignatureMatch] = OrderedDict()
        self._forms = [
            form for family in self._families for sig in family.signatures for form in sig.forms
        ] + [form for sig in PACKERS for form in sig.forms]
        short = [f for f in self._forms if len(f) < 4]
        if short:
            raise InputError(f"signature {short[0]!r} is shorter than 4 bytes")
        self._overlap = max(len(f) for f in self._forms) - 1
        self._anchors: dict[int, list[tuple[bytes, int]]] = {}
        for form in dict.fromkeys(self._forms):
            offset = _anchor_offset(form)
            word = int.from_bytes(form[offset : offset + 4], "little")
            self._anchors.setdefault(word, []).append((form, offset))
        self._anchor_words = np.array(sorted(self._anchors), dtype=np.uint32)
        self._gate = np.zeros(1 << (32 - _HASH_SHIFT), dtype=bool)
        self._gate[(self._anchor_words * _HASH_MULT) >> _HASH_SHIFT] = True
        self.bytes_read_total = 0
        """Bytes read from files since this scanner was made (cache hits read nothing)."""
        self.cache_hits = 0

    @property
    def max_bytes(self) -> int:
        """The most bytes read from one file."""
        return self._max_bytes

    def scan_bytes(self, data: bytes, name: str = "<bytes>") -> SignatureMatch:
        """Search an in-memory buffer (all of it)."""
        return self._match(name, self._find(data, set()), len(data), len(data))

    def cached(self, path: str | Path) -> SignatureMatch | None:
        """The cached result for ``path`` if the file has not changed since; reads nothing."""
        try:
            st = Path(path).stat()
        except OSError:
            return None
        return self._cache.get(_key(st))

    def scan_file(self, path: str | Path) -> SignatureMatch:
        """Search the first ``max_bytes`` of a regular file.

        ``path`` may be ``/proc/PID/exe``, which opens the running image even when the file was
        deleted or lives in another mount namespace. Raises :class:`OSError` when the file cannot
        be opened (``PermissionError`` for another user's process) and
        :class:`~minewatch.errors.InputError` when it is not a regular file.
        """
        # O_NONBLOCK: opening a FIFO planted under an executable's name must not hang the scan.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb", buffering=0) as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"{path}: not a regular file; only regular files are scanned")
            key = _key(st)
            hit = self._cache.get(key)
            if hit is not None:
                self.cache_hits += 1
                self._cache.move_to_end(key)
                return hit
            found: set[bytes] = set()
            read = 0
            tail = b""
            while read < self._max_bytes:
                chunk = handle.read(min(self._chunk_bytes, self._max_bytes - read))
                if not chunk:
                    break
                read += len(chunk)
                window = tail + chunk
                self._find(window, found)
                tail = window[-self._overlap :] if self._overlap else b""
            self.bytes_read_total += read
            match = self._match(str(path), found, read, st.st_size)
        if self._cache_entries:
            self._cache[key] = match
            while len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)
        return match

    def _find(self, window: bytes, found: set[bytes]) -> set[bytes]:
        """Add to ``found`` every form that occurs in ``window``.

        One :meth:`bytes.find` per form costs a pass over the window per form (~90 passes).
        Instead every form has a 4-byte *anchor*; one vectorised pass hashes the 4-byte word at
        every offset into a 65,536-slot table marking the anchors' hashes, and only the few
        offsets that hit (real anchors and ~0.1 % hash collisions) are checked byte by byte.
        """
        n = len(window)
        for phase in range(4):
            count = (n - phase) // 4
            if count <= 0:
                continue
            words = np.frombuffer(window, dtype="<u4", offset=phase, count=count)
            hits = np.flatnonzero(self._gate[(words * _HASH_MULT) >> _HASH_SHIFT])
            if hits.size == 0:
                continue
            candidates = words[hits]
            real = np.isin(candidates, self._anchor_words)
            for index, word in zip(hits[real].tolist(), candidates[real].tolist(), strict=True):
                at = 4 * index + phase
                for form, offset in self._anchors[word]:
                    if form not in found and at >= offset and window.startswith(form, at - offset):
                        found.add(form)
        return found

    def _match(self, name: str, found: set[bytes], read: int, size: int) -> SignatureMatch:
        hits: dict[str, tuple[str, ...]] = {}
        present: list[str] = []
        work: list[str] = []
        programs: list[str] = []
        for family in self._families:
            labels = tuple(s.label for s in family.signatures if any(f in found for f in s.forms))
            if labels:
                hits[family.name] = labels
            if len(labels) >= family.min_hits:
                present.append(family.name)
                if family.work:
                    work.append(family.name)
            for sig in family.signatures:
                if sig.program and sig.label in labels and sig.program not in programs:
                    programs.append(sig.program)
        packers = tuple(s.label for s in PACKERS if any(f in found for f in s.forms))
        return SignatureMatch(
            name=name,
            hits=hits,
            families=tuple(present),
            work_families=tuple(work),
            programs=tuple(programs),
            packers=packers,
            bytes_read=read,
            size=size,
            min_families=self._min_families,
        )


def _anchor_offset(form: bytes) -> int:
    """Where a form's anchor starts: the 4 bytes with the most characters other than a-z,
    which are rarer in executables than lower-case words (``g.su`` in ``mining.subscribe``)."""
    scores = [sum(not 0x61 <= b <= 0x7A for b in form[i : i + 4]) for i in range(len(form) - 3)]
    return scores.index(max(scores))


def _key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@functools.cache
def default_scanner() -> SignatureScanner:
    """One scanner per process, so its cache survives from one periodic scan to the next."""
    return SignatureScanner()
