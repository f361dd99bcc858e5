"""Importing the data-centre registry from CSV files: all checked first, then written at once.

A registry is kept in a spreadsheet or exported from an asset system long before anyone runs
minewatch, so the import takes plain CSV (UTF-8, a byte-order mark is fine), one file per kind.
The kind is read from the header, so files may be named freely; a directory imports every
``*.csv`` in it. Columns (``*``: the column must be present and its cells filled, except that
``declared_business`` may be empty and a power account needs only one of ``data_centre`` and
``tenant``; other columns may be left out or left empty):

================  =======================================================================
kind              columns
================  =======================================================================
data centres      name*, operator*, address*, region_code*, capacity_kw, pue
tenants           name*, declared_business*, credit_code
racks             data_centre*, name*, tenant
prefixes          prefix*, data_centre, tenant, description
power accounts    account_id*, data_centre*, tenant*, contracted_kw
hosts             data_centre*, hostname*, tenant
================  =======================================================================

``data_centre`` and ``tenant`` name a data centre / tenant by its ``name``, from the same import
or already in the ledger. ``region_code`` is a six-digit administrative code (checked against the
loaded region table when there is one). ``credit_code`` is an 18-character unified social credit
code, check digit included. ``prefix`` is an IPv4 or IPv6 network in CIDR form without host bits.

*All or nothing.* Every file is parsed and every row checked (types, ranges, references, duplicate
keys) before the first write; the first problem stops the import with ``file:line: what is
wrong`` and nothing is written. The writes then happen in the caller's one transaction.

*Idempotent.* Each row is matched on its natural key (data centre and tenant names, the rack or
host name within its data centre, the prefix, the account id): a new key is added, a known key with
changed values is updated, an unchanged one is left alone. Importing the same files twice changes
nothing. Rows missing from a file are *not* deleted: a partial export must not wipe the registry.

Example::

    >>> from minewatch.ledger.db import open_engine, session_factory, upgrade
    >>> engine = open_engine("sqlite://"); upgrade(engine)
    >>> with session_factory(engine)() as session:
    ...     summary = import_registry(session, [sample_registry_dir()])
    ...     session.commit()
    >>> summary.counts["data_centres"].added
    3
"""

from __future__ import annotations

import contextlib
import csv
import io
import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from minewatch.errors import InputError
from minewatch.ledger.models import Region
from minewatch.ledger.regions import NATIONAL, check_code
from minewatch.ledger.registry_models import (
    DataCentre,
    Host,
    IpPrefix,
    PowerAccount,
    Rack,
    Tenant,
    address_key,
)

__all__ = [
    "KINDS",
    "ImportSummary",
    "KindCounts",
    "RegistryError",
    "RegistryRow",
    "check_credit_code",
    "import_registry",
    "import_rows",
    "registry_files",
    "sample_registry_dir",
]

_CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_NO_SPACE = re.compile(r"^\S+$")


class RegistryError(InputError):
    """A registry file that cannot be imported; ``where`` is ``file:line`` (or the file)."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True, slots=True)
class _Kind:
    name: str
    """Table name, also the key of :attr:`ImportSummary.counts`."""
    label: str
    required: frozenset[str]
    optional: frozenset[str]

    @property
    def columns(self) -> frozenset[str]:
        return self.required | self.optional

    def describe(self) -> str:
        ordered = sorted(self.required) + sorted(self.optional)
        return (
            f"{self.label} ({', '.join(c + ('*' if c in self.required else '') for c in ordered)})"
        )


def _kind(name: str, label: str, required: str, optional: str = "") -> _Kind:
    return _Kind(name, label, frozenset(required.split()), frozenset(optional.split()))


KINDS = (
    _kind("data_centres", "data centres", "name operator address region_code", "capacity_kw pue"),
    _kind("tenants", "tenants", "name declared_business", "credit_code"),
    _kind("racks", "racks", "data_centre name", "tenant"),
    _kind("ip_prefixes", "prefixes", "prefix", "data_centre tenant description"),
    _kind("power_accounts", "power accounts", "account_id data_centre tenant", "contracted_kw"),
    _kind("hosts", "hosts", "data_centre hostname", "tenant"),
)
"""The registry kinds in import order (referenced kinds first)."""


@dataclass(slots=True)
class KindCounts:
    """What an import did to one kind of row."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(slots=True)
class ImportSummary:
    """Counts per kind (keys are :data:`KINDS` names) and the files read."""

    counts: dict[str, KindCounts] = field(
        default_factory=lambda: {k.name: KindCounts() for k in KINDS}
    )
    files: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per kind, for people."""
        return [
            f"{k.label}: {c.added} added, {c.updated} updated, {c.unchanged} unchanged"
            for k in KINDS
            for c in [self.counts[k.name]]
        ]


def sample_registry_dir() -> Path:
    """The bundled registry of the sample province (Zhejiang, 330000)."""
    return Path(str(resources.files("minewatch") / "data" / "sample" / "registry"))


def check_credit_code(code: str) -> str:
    """Return ``code`` when it is a valid unified social credit code (GB 32100), else raise.

    18 characters from digits and upper-case letters without I, O, S, V, Z; the last one is a
    check character: 31 minus the weighted sum (weights 3^i mod 31) of the first 17, mod 31.
    """
    if len(code) != 18 or any(ch not in _CREDIT_ALPHABET for ch in code):
        raise InputError(
            f"credit code {code!r} is not valid: 18 characters, digits and upper-case letters "
            "other than I, O, S, V, Z"
        )
    total = sum(
        _CREDIT_ALPHABET.index(ch) * w for ch, w in zip(code, _CREDIT_WEIGHTS, strict=False)
    )
    expected = _CREDIT_ALPHABET[(31 - total % 31) % 31]
    if code[17] != expected:
        raise InputError(f"credit code {code!r} fails its check character (expected {expected!r})")
    return code


def registry_files(paths: Iterable[Path]) -> list[Path]:
    """Expand directories to their ``*.csv`` files (sorted); files are kept as given."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("*.csv") if p.is_file())
            if not found:
                raise RegistryError(str(path), "directory holds no .csv files")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        else:
            raise RegistryError(str(path), "no such file or directory")
    return out


# --------------------------------------------------------------------------------------- parsing


@dataclass(slots=True)
class _Row:
    where: str
    values: dict[str, str]


def _read_csv(path: Path) -> tuple[_Kind, list[_Row]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise RegistryError(str(path), f"cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise RegistryError(str(path), f"not UTF-8 text (byte {exc.start})") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise RegistryError(str(path), "empty file: a header row is required")
        columns = [h.strip().lower() for h in header]
        kind = _detect(path, columns)
        rows: list[_Row] = []
        for record in reader:
            where = f"{path}:{reader.line_num}"
            if not any(cell.strip() for cell in record):
                continue
            if len(record) != len(columns):
                raise RegistryError(
                    where, f"{len(record)} fields where the header has {len(columns)}"
                )
            rows.append(_Row(where, {c: v.strip() for c, v in zip(columns, record, strict=True)}))
    except csv.Error as exc:
        raise RegistryError(f"{path}:{reader.line_num}", f"malformed CSV: {exc}") from exc
    return kind, rows


def _detect(path: Path, columns: list[str]) -> _Kind:
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise RegistryError(f"{path}:1", f"column(s) {', '.join(duplicated)} given twice")
    present = set(columns)
    matches = [k for k in KINDS if k.required <= present <= k.columns]
    if len(matches) == 1:
        return matches[0]
    expected = "; ".join(k.describe() for k in KINDS)
    raise RegistryError(
        f"{path}:1",
        f"columns {', '.join(columns)} match no registry kind; expected one of: {expected} "
        "(* required)",
    )


def _text(row: _Row, column: str, limit: int, *, required: bool) -> str:
    value = row.values.get(column, "")
    if required and not value:
        raise RegistryError(row.where, f"{column} is empty")
    if len(value) > limit:
        raise RegistryError(row.where, f"{column} is longer than {limit} characters")
    return value


def _number(row: _Row, column: str, *, minimum: float) -> float | None:
    value = row.values.get(column, "")
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise RegistryError(row.where, f"{column} {value!r} is not a number") from None
    if not math.isfinite(number) or number < minimum:
        raise RegistryError(row.where, f"{column} {value!r} must be a number >= {minimum:g}")
    return number


@dataclass(slots=True)
class _Parsed:
    """Every row, checked, keyed by its natural key; references still by name."""

    data_centres: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    tenants: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    racks: dict[tuple[str, str], tuple[str, dict[str, Any]]] = field(default_factory=dict)
    ip_prefixes: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    power_accounts: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    hosts: dict[tuple[str, str], tuple[str, dict[str, Any]]] = field(default_factory=dict)


def _put(
    table: dict[Any, tuple[str, dict[str, Any]]], key: Any, row: _Row, values: dict[str, Any]
) -> None:
    if key in table:
        shown = key if isinstance(key, str) else " / ".join(key)
        raise RegistryError(row.where, f"{shown!r} already given at {table[key][0]}")
    table[key] = (row.where, values)


def _parse_data_centre(row: _Row, parsed: _Parsed, regions: set[str]) -> None:
    name = _text(row, "name", 200, required=True)
    region = row.values.get("region_code", "")
    try:
        check_code(region)
    except InputError as exc:
        raise RegistryError(row.where, str(exc)) from None
    if region == NATIONAL:
        raise RegistryError(
            row.where, "a data centre lies in a province, city or county, not 000000"
        )
    if regions and region not in regions:
        raise RegistryError(row.where, f"region code {region} is not in the loaded region table")
    _put(
        parsed.data_centres,
        name,
        row,
        {
            "operator": _text(row, "operator", 200, required=True),
            "address": _text(row, "address", 10_000, required=True),
            "region_code": region,
            "capacity_kw": _number(row, "capacity_kw", minimum=0.0),
            "pue": _number(row, "pue", minimum=1.0),
        },
    )


def _parse_tenant(row: _Row, parsed: _Parsed, _regions: set[str]) -> None:
    name = _text(row, "name", 200, required=True)
    code = row.values.get("credit_code", "").upper() or None
    if code is not None:
        try:
            check_credit_code(code)
        except InputError as exc:
            raise RegistryError(row.where, str(exc)) from None
    _put(
        parsed.tenants,
        name,
        row,
        {
            "credit_code": code,
            "declared_business": _text(row, "declared_business", 200, required=False),
        },
    )


def _parse_rack(row: _Row, parsed: _Parsed, _regions: set[str]) -> None:
    site = _text(row, "data_centre", 200, required=True)
    name = _text(row, "name", 100, required=True)
    _put(parsed.racks, (site, name), row, {"tenant": row.values.get("tenant", "")})


def _parse_prefix(row: _Row, parsed: _Parsed, _regions: set[str]) -> None:
    text = row.values.get("prefix", "")
    if not text:
        raise RegistryError(row.where, "prefix is empty")
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        hint = ""
        with contextlib.suppress(ValueError):
            hint = f" (did you mean {ipaddress.ip_network(text, strict=False)}?)"
        raise RegistryError(row.where, f"prefix {text!r} is not valid: {exc}{hint}") from None
    site = row.values.get("data_centre", "")
    tenant = row.values.get("tenant", "")
    _put(
        parsed.ip_prefixes,
        str(network),
        row,
        {
            "family": network.version,
            "start_key": address_key(network.network_address),
            "end_key": address_key(network.broadcast_address),
            "data_centre": site,
            "tenant": tenant,
            "description": _text(row, "description", 200, required=False),
        },
    )


def _parse_account(row: _Row, parsed: _Parsed, _regions: set[str]) -> None:
    account = _text(row, "account_id", 40, required=True)
    if not _NO_SPACE.fullmatch(account):
        raise RegistryError(row.where, f"account_id {account!r} contains white space")
    _put(
        parsed.power_accounts,
        account,
        row,
        {
            "data_centre": row.values.get("data_centre", ""),
            "tenant": row.values.get("tenant", ""),
            "contracted_kw": _number(row, "contracted_kw", minimum=0.0),
        },
    )


def _parse_host(row: _Row, parsed: _Parsed, _regions: set[str]) -> None:
    site = _text(row, "data_centre", 200, required=True)
    hostname = _text(row, "hostname", 255, required=True)
    if not _NO_SPACE.fullmatch(hostname):
        raise RegistryError(row.where, f"hostname {hostname!r} contains white space")
    _put(parsed.hosts, (site, hostname), row, {"tenant": row.values.get("tenant", "")})


_PARSERS: dict[str, Callable[[_Row, _Parsed, set[str]], None]] = {
    "data_centres": _parse_data_centre,
    "tenants": _parse_tenant,
    "racks": _parse_rack,
    "ip_prefixes": _parse_prefix,
    "power_accounts": _parse_account,
    "hosts": _parse_host,
}


# ------------------------------------------------------------------------------------ references


@dataclass(slots=True)
class _Known:
    """Names that references may use: those in the ledger plus those being imported."""

    sites: dict[str, DataCentre]
    tenants: dict[str, Tenant]
    new_sites: set[str]
    new_tenants: set[str]

    def check_site(self, where: str, name: str, *, required: bool) -> None:
        if not name:
            if required:
                raise RegistryError(where, "data_centre is empty")
            return
        if name not in self.sites and name not in self.new_sites:
            raise RegistryError(
                where, f"unknown data centre {name!r} (not in this import or the ledger)"
            )

    def check_tenant(self, where: str, name: str, *, required: bool) -> None:
        if not name:
            if required:
                raise RegistryError(where, "tenant is empty")
            return
        if name not in self.tenants and name not in self.new_tenants:
            raise RegistryError(
                where, f"unknown tenant {name!r} (not in this import or the ledger)"
            )


def _check_references(parsed: _Parsed, known: _Known, session: Session) -> None:
    for (site, _name), (where, values) in parsed.racks.items():
        known.check_site(where, site, required=True)
        known.check_tenant(where, values["tenant"], required=False)
    for where, values in parsed.ip_prefixes.values():
        known.check_site(where, values["data_centre"], required=False)
        known.check_tenant(where, values["tenant"], required=False)
    for where, values in parsed.power_accounts.values():
        known.check_site(where, values["data_centre"], required=False)
        known.check_tenant(where, values["tenant"], required=False)
        if not values["data_centre"] and not values["tenant"]:
            raise RegistryError(where, "give a data_centre or a tenant (or both) for the account")
    for (site, _hostname), (where, values) in parsed.hosts.items():
        known.check_site(where, site, required=True)
        known.check_tenant(where, values["tenant"], required=False)
    codes: dict[str, str] = {}
    for name, (where, values) in parsed.tenants.items():
        code = values["credit_code"]
        if code is None:
            continue
        if code in codes:
            raise RegistryError(
                where, f"credit code {code} already given to tenant {codes[code]!r}"
            )
        codes[code] = name
    if codes:
        holders = session.execute(
            select(Tenant.credit_code, Tenant.name).where(Tenant.credit_code.in_(list(codes)))
        )
        for code, holder in holders:
            if code is not None and holder != codes[code]:
                where = parsed.tenants[codes[code]][0]
                raise RegistryError(
                    where, f"credit code {code} belongs to tenant {holder!r} in the ledger"
                )


# --------------------------------------------------------------------------------------- writing


def _apply(obj: Any, values: dict[str, Any]) -> bool:
    changed = False
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed = True
    return changed


def _upsert(
    counts: KindCounts,
    existing: Any,
    values: dict[str, Any],
    create: Callable[[], Any],
    session: Session,
) -> Any:
    if existing is None:
        obj = create()
        _apply(obj, values)
        session.add(obj)
        counts.added += 1
        return obj
    if _apply(existing, values):
        counts.updated += 1
    else:
        counts.unchanged += 1
    return existing


def _write(parsed: _Parsed, known: _Known, session: Session, summary: ImportSummary) -> None:
    c = summary.counts
    for name, (_where, values) in parsed.data_centres.items():
        known.sites[name] = _upsert(
            c["data_centres"],
            known.sites.get(name),
            values,
            partial(DataCentre, name=name),
            session,
        )
    for name, (_where, values) in parsed.tenants.items():
        known.tenants[name] = _upsert(
            c["tenants"], known.tenants.get(name), values, partial(Tenant, name=name), session
        )
    session.flush()

    def site(name: str) -> int | None:
        return known.sites[name].id if name else None

    def tenant(name: str) -> int | None:
        return known.tenants[name].id if name else None

    racks = {(r.data_centre_id, r.name): r for r in session.scalars(select(Rack))}
    for (site_name, name), (_where, values) in parsed.racks.items():
        site_id = known.sites[site_name].id
        _upsert(
            c["racks"],
            racks.get((site_id, name)),
            {"data_centre_id": site_id, "name": name, "tenant_id": tenant(values["tenant"])},
            Rack,
            session,
        )
    prefixes = {p.prefix: p for p in session.scalars(select(IpPrefix))}
    for prefix, (_where, values) in parsed.ip_prefixes.items():
        _upsert(
            c["ip_prefixes"],
            prefixes.get(prefix),
            {
                "prefix": prefix,
                "family": values["family"],
                "start_key": values["start_key"],
                "end_key": values["end_key"],
                "data_centre_id": site(values["data_centre"]),
                "tenant_id": tenant(values["tenant"]),
                "description": values["description"],
            },
            IpPrefix,
            session,
        )
    accounts = {a.account_id: a for a in session.scalars(select(PowerAccount))}
    for account, (_where, values) in parsed.power_accounts.items():
        _upsert(
            c["power_accounts"],
            accounts.get(account),
            {
                "account_id": account,
                "data_centre_id": site(values["data_centre"]),
                "tenant_id": tenant(values["tenant"]),
                "contracted_kw": values["contracted_kw"],
            },
            PowerAccount,
            session,
        )
    hosts = {(h.data_centre_id, h.hostname): h for h in session.scalars(select(Host))}
    for (site_name, hostname), (_where, values) in parsed.hosts.items():
        site_id = known.sites[site_name].id
        _upsert(
            c["hosts"],
            hosts.get((site_id, hostname)),
            {
                "data_centre_id": site_id,
                "hostname": hostname,
                "tenant_id": tenant(values["tenant"]),
            },
            Host,
            session,
        )
    session.flush()


@dataclass(frozen=True, slots=True)
class RegistryRow:
    """One registry row from a source other than a CSV file (NetBox), for :func:`import_rows`.

    ``kind`` is a :data:`KINDS` name, ``where`` says where the row came from (shown in errors),
    ``values`` holds the cells as text under the CSV column names of that kind.
    """

    kind: str
    where: str
    values: Mapping[str, str]


def import_rows(
    session: Session, rows: Iterable[RegistryRow], sources: Sequence[str] = ()
) -> ImportSummary:
    """Check and write rows built elsewhere, exactly as CSV rows are checked and written.

    The columns of each row must be those of its kind (required ones present); then the same
    checks, all-or-nothing rule and idempotent writes as :func:`import_registry` apply.
    ``sources`` is recorded as the summary's ``files``.
    """
    by_name = {k.name: k for k in KINDS}
    checked: list[tuple[_Kind, _Row]] = []
    for row in rows:
        kind = by_name.get(row.kind)
        if kind is None:
            raise RegistryError(row.where, f"unknown registry kind {row.kind!r}")
        present = set(row.values)
        if not kind.required <= present <= kind.columns:
            raise RegistryError(
                row.where, f"columns {', '.join(sorted(present))} do not fit {kind.describe()}"
            )
        checked.append((kind, _Row(row.where, {c: v.strip() for c, v in row.values.items()})))
    return _import(session, checked, ImportSummary(files=list(sources)))


def import_registry(session: Session, paths: Sequence[Path]) -> ImportSummary:
    """Check every row of the CSV files (or directories of them) in ``paths``, then write them.

    Raises :class:`RegistryError` (``file:line: reason``) before any write when a row is bad.
    Writes go through ``session`` and are flushed, not committed: the caller commits (or rolls
    back) the one transaction.
    """
    files = registry_files(paths)
    rows: list[tuple[_Kind, _Row]] = []
    for path in files:
        kind, read = _read_csv(path)
        rows.extend((kind, row) for row in read)
    return _import(session, rows, ImportSummary(files=[str(p) for p in files]))


def _import(
    session: Session, rows: list[tuple[_Kind, _Row]], summary: ImportSummary
) -> ImportSummary:
    regions = set(session.scalars(select(Region.code)))
    parsed = _Parsed()
    for kind, row in rows:
        _PARSERS[kind.name](row, parsed, regions)
    known = _Known(
        sites={d.name: d for d in session.scalars(select(DataCentre))},
        tenants={t.name: t for t in session.scalars(select(Tenant))},
        new_sites=set(parsed.data_centres),
        new_tenants=set(parsed.tenants),
    )
    _check_references(parsed, known, session)
    _write(parsed, known, session, summary)
    return summary
