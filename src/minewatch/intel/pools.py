"""Mining-pool names and CDN front ends, loaded from the data files kept beside this module.

``pools.csv`` lists the DNS names of public mining pools and browser-miner services, one
registrable domain (or host suffix) a row, each with the pool's name, coins, the protocol a miner
speaks to it, where the fact comes from and when it was checked. ``cdn_prefixes.csv`` lists the
address blocks of CDNs and shared front ends: a pool name that resolves into one of them says
nothing about the other sites behind the same address, so such an address must never be marked as
a pool.

Both files are validated on load; a malformed row raises :class:`~minewatch.errors.DataError`
naming the file and line. Lookups are constant-time per label (a dict over suffixes) and
logarithmic per address (a bisect over merged integer ranges).

Example::

    >>> intel = PoolIntel.bundled()
    >>> intel.match_domain("XMR-EU1.nanopool.org.").pool
    'Nanopool'
    >>> intel.match_domain("evilnanopool.org") is None
    True
    >>> intel.is_cdn("104.16.1.1"), intel.is_cdn("192.0.2.1")
    (True, False)
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import ipaddress
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TypeAlias

from minewatch.errors import DataError

__all__ = ["CdnPrefix", "PoolEntry", "PoolIntel"]

_POOL_COLUMNS = ("domain", "pool", "coins", "protocol", "source", "date", "notes")
_CDN_COLUMNS = ("prefix", "provider", "source", "date")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_TICKER = re.compile(r"^[a-z0-9]{1,12}$")
_PROTOCOL = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class PoolEntry:
    """One row of ``pools.csv``: a DNS suffix that belongs to a mining pool.

    ``domain`` matches itself and every name below it on a label boundary. ``protocol`` is what a
    miner speaks to the pool (``stratum``, or ``coinhive-websocket`` for browser miners).
    """

    domain: str
    pool: str
    coins: tuple[str, ...]
    protocol: str
    source: str
    date: dt.date
    notes: str = ""


@dataclass(frozen=True, slots=True)
class CdnPrefix:
    """One row of ``cdn_prefixes.csv``: an address block of a CDN or shared front end."""

    prefix: IPNetwork
    provider: str
    source: str
    date: dt.date


class PoolIntel:
    """Pool domains and CDN prefixes, ready for lookups.

    Build it from the bundled data with :meth:`bundled`, from replacement files with
    :meth:`from_files`, or from entries directly.

    Example::

        >>> intel = PoolIntel.bundled()
        >>> entry = intel.match_domain("pool.supportxmr.com")
        >>> entry.pool, entry.coins, entry.protocol
        ('SupportXMR', ('xmr',), 'stratum')
    """

    def __init__(self, entries: Iterable[PoolEntry], cdn_prefixes: Iterable[CdnPrefix]) -> None:
        self._by_suffix: dict[str, PoolEntry] = {}
        for entry in entries:
            if entry.domain in self._by_suffix:
                raise DataError(f"duplicate pool domain {entry.domain!r}")
            self._by_suffix[entry.domain] = entry
        self._cdn = tuple(cdn_prefixes)
        self._v4 = _merged_ranges(p.prefix for p in self._cdn if p.prefix.version == 4)
        self._v6 = _merged_ranges(p.prefix for p in self._cdn if p.prefix.version == 6)

    @classmethod
    def bundled(cls) -> PoolIntel:
        """The intelligence shipped with minewatch, loaded once per process."""
        return _load_bundled()

    @classmethod
    def from_files(cls, pools_csv: str | Path, cdn_csv: str | Path) -> PoolIntel:
        """Load replacement data files; raises :class:`DataError` naming file and line."""
        return cls(
            _parse_pools_csv(_read_text(Path(pools_csv)), str(pools_csv)),
            _parse_cdn_csv(_read_text(Path(cdn_csv)), str(cdn_csv)),
        )

    def __len__(self) -> int:
        return len(self._by_suffix)

    def __iter__(self) -> Iterator[PoolEntry]:
        return iter(sorted(self._by_suffix.values(), key=lambda e: e.domain))

    @property
    def cdn_prefixes(self) -> tuple[CdnPrefix, ...]:
        """The CDN prefixes, in file order."""
        return self._cdn

    def match_domain(self, name: str) -> PoolEntry | None:
        """The pool whose domain is ``name`` or a parent of it, the longest such domain winning.

        Case-insensitive; a trailing dot (fully qualified form) is ignored. Matching is on label
        boundaries: ``nanopool.org`` matches ``xmr-eu1.nanopool.org`` but not ``evilnanopool.org``.
        """
        key = name.strip().lower()
        if key.endswith("."):
            key = key[:-1]
        if not key:
            return None
        start = 0
        while True:
            entry = self._by_suffix.get(key[start:])
            if entry is not None:
                return entry
            dot = key.find(".", start)
            if dot < 0:
                return None
            start = dot + 1

    def is_cdn(self, ip: str | IPAddress) -> bool:
        """Whether ``ip`` lies in a CDN or shared front-end prefix.

        IPv4-mapped IPv6 addresses (``::ffff:a.b.c.d``) are checked as IPv4. Raises
        :class:`ValueError` when ``ip`` is not an address.
        """
        addr = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        starts, ends = self._v4 if addr.version == 4 else self._v6
        value = int(addr)
        i = bisect_right(starts, value) - 1
        return i >= 0 and value <= ends[i]


def _merged_ranges(prefixes: Iterable[IPNetwork]) -> tuple[list[int], list[int]]:
    """Sorted, non-overlapping ``(starts, ends)`` of the prefixes, adjacent ones merged."""
    spans = sorted((int(p.network_address), int(p.broadcast_address)) for p in prefixes)
    starts: list[int] = []
    ends: list[int] = []
    for lo, hi in spans:
        if ends and lo <= ends[-1] + 1:
            ends[-1] = max(ends[-1], hi)
        else:
            starts.append(lo)
            ends.append(hi)
    return starts, ends


@functools.cache
def _load_bundled() -> PoolIntel:
    here = resources.files("minewatch.intel")
    return PoolIntel(
        _parse_pools_csv(here.joinpath("pools.csv").read_text(encoding="utf-8"), "pools.csv"),
        _parse_cdn_csv(
            here.joinpath("cdn_prefixes.csv").read_text(encoding="utf-8"), "cdn_prefixes.csv"
        ),
    )


def _read_text(path: Path) -> str:
    try:
        # utf-8-sig: spreadsheets often save a byte-order mark
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc


def _rows(text: str, where: str, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for each data row, after checking the header and field counts."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise DataError(f"{where}:1: empty file; expected a header: {','.join(columns)}")
    names = [h.strip() for h in header]
    missing = [c for c in columns if c not in names]
    if missing:
        raise DataError(
            f"{where}:1: missing column(s) {', '.join(missing)}; expected {','.join(columns)}"
        )
    for fields in reader:
        line = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(names):
            raise DataError(f"{where}:{line}: {len(fields)} fields, header has {len(names)}")
        yield line, {name: value.strip() for name, value in zip(names, fields, strict=True)}


def _required(row: dict[str, str], column: str, where: str, line: int) -> str:
    value = row[column]
    if not value:
        raise DataError(f"{where}:{line}: empty {column}")
    return value


def _iso_date(row: dict[str, str], where: str, line: int) -> dt.date:
    value = _required(row, "date", where, line)
    if _ISO_DATE.match(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise DataError(f"{where}:{line}: date {value!r} is not an ISO date like 2026-11-26")


def _parse_pools_csv(text: str, where: str = "pools.csv") -> list[PoolEntry]:
    """Parse and validate the text of a pools file; ``where`` names it in errors."""
    entries: list[PoolEntry] = []
    first_line: dict[str, int] = {}
    for line, row in _rows(text, where, _POOL_COLUMNS):
        domain = _required(row, "domain", where, line)
        labels = domain.split(".")
        if len(labels) < 2 or len(domain) > 253 or not all(_LABEL.match(x) for x in labels):
            raise DataError(
                f"{where}:{line}: domain {domain!r} is not a lower-case DNS name with at least two"
                " labels and no trailing dot"
            )
        if domain in first_line:
            raise DataError(
                f"{where}:{line}: duplicate domain {domain!r} (first on line {first_line[domain]})"
            )
        first_line[domain] = line
        coins = tuple(c for c in row["coins"].split(";") if c)
        bad = [c for c in coins if not _TICKER.match(c)]
        if bad:
            raise DataError(
                f"{where}:{line}: coin {bad[0]!r} is not a lower-case ticker (coins look like"
                " 'xmr;etc')"
            )
        protocol = _required(row, "protocol", where, line)
        if not _PROTOCOL.match(protocol):
            raise DataError(
                f"{where}:{line}: protocol {protocol!r} is not a lower-case name like 'stratum'"
            )
        entries.append(
            PoolEntry(
                domain=domain,
                pool=_required(row, "pool", where, line),
                coins=coins,
                protocol=protocol,
                source=_required(row, "source", where, line),
                date=_iso_date(row, where, line),
                notes=row["notes"],
            )
        )
    return entries


def _parse_cdn_csv(text: str, where: str = "cdn_prefixes.csv") -> list[CdnPrefix]:
    """Parse and validate the text of a CDN prefix file; ``where`` names it in errors."""
    prefixes: list[CdnPrefix] = []
    first_line: dict[IPNetwork, int] = {}
    for line, row in _rows(text, where, _CDN_COLUMNS):
        text_prefix = _required(row, "prefix", where, line)
        try:
            prefix = ipaddress.ip_network(text_prefix, strict=True)
        except ValueError as exc:
            raise DataError(
                f"{where}:{line}: prefix {text_prefix!r} is not a network like 104.16.0.0/13 or"
                f" 2606:4700::/32 ({exc})"
            ) from exc
        if prefix in first_line:
            raise DataError(
                f"{where}:{line}: duplicate prefix {text_prefix} (first on line"
                f" {first_line[prefix]})"
            )
        first_line[prefix] = line
        prefixes.append(
            CdnPrefix(
                prefix=prefix,
                provider=_required(row, "provider", where, line),
                source=_required(row, "source", where, line),
                date=_iso_date(row, where, line),
            )
        )
    return prefixes
