"""Attribution: which tenant, data centre and region a piece of evidence belongs to.

Each detector names its entity differently, so each has its own path into the registry:

* network: client IP -> the most specific :class:`IpPrefix` containing it -> its tenant and data
  centre -> the data centre's region. A prefix that leaves tenant or data centre empty inherits
  it from the nearest enclosing prefix that has one (a tenant's /24 carved out of a site's /16
  lies in that site).
* power: account id -> :class:`PowerAccount` -> tenant and data centre -> region.
* host: hostname -> :class:`Host` (matched without regard to case, then by its first label if
  the agent reported a fully qualified name) -> tenant and data centre -> region. A hostname
  registered in more than one data centre is ambiguous and is left unattributed.

:class:`Attributor` loads the registry once and answers from memory: IP prefixes become, per
address family, one sorted list of disjoint ranges each owned by its most specific prefix, so one
lookup is one binary search (``bisect``) and a batch of 100k findings needs no query per row.
:func:`attribute_ip` answers a single address with one indexed range query instead, for callers
that have no batch (the API); both give the same answer (a test checks it).

Example::

    >>> from minewatch.ledger.db import open_engine, session_factory, upgrade
    >>> from minewatch.ledger.registry import import_registry, sample_registry_dir
    >>> engine = open_engine("sqlite://"); upgrade(engine)
    >>> with session_factory(engine)() as session:
    ...     _ = import_registry(session, [sample_registry_dir()])
    ...     found = Attributor.load(session).ip("10.11.16.25")
    >>> found.attributed, found.region_code
    (True, '330110')
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from minewatch.ledger.registry_models import (
    DataCentre,
    Host,
    IpPrefix,
    PowerAccount,
    Tenant,
    address_key,
)

__all__ = ["Attribution", "Attributor", "attribute_ip", "parse_address"]

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Attribution:
    """Where evidence belongs; all ``None`` (and ``note`` saying why) when nothing matched."""

    tenant_id: int | None
    data_centre_id: int | None
    region_code: str | None
    note: str
    """What matched (``10.11.16.25 in 10.11.16.0/20``) or why nothing did."""

    @property
    def attributed(self) -> bool:
        """Whether the registry placed it (a tenant, a data centre, or both)."""
        return self.tenant_id is not None or self.data_centre_id is not None


def parse_address(text: str) -> _Address:
    """An IP address from text; an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) becomes IPv4.

    Raises :class:`ValueError` when ``text`` is not an address.
    """
    address = ipaddress.ip_address(text.strip())
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True)
class _Prefix:
    prefix: str
    family: int
    start: int
    end: int
    tenant_id: int | None
    data_centre_id: int | None


@dataclass(frozen=True, slots=True)
class _Ranges:
    """Disjoint ranges: ``starts[i]`` up to ``starts[i+1]-1`` belongs to ``owners[i]``."""

    starts: list[int]
    owners: list[_Prefix | None]

    def find(self, value: int) -> _Prefix | None:
        i = bisect_right(self.starts, value) - 1
        return self.owners[i] if i >= 0 else None


def _inherit(prefix: _Prefix, parent: _Prefix | None) -> _Prefix:
    if parent is None:
        return prefix
    return _Prefix(
        prefix.prefix,
        prefix.family,
        prefix.start,
        prefix.end,
        prefix.tenant_id if prefix.tenant_id is not None else parent.tenant_id,
        prefix.data_centre_id if prefix.data_centre_id is not None else parent.data_centre_id,
    )


def _flatten(prefixes: list[_Prefix]) -> _Ranges:
    """Nested CIDR prefixes -> disjoint ranges owned by the most specific one.

    CIDR blocks either nest or do not overlap, so a sweep in (start, widest first) order with a
    stack of open enclosing prefixes finds, for every boundary, which prefix owns what follows.
    """
    marks: dict[int, _Prefix | None] = {}
    stack: list[_Prefix] = []

    def close_until(start: int) -> None:
        while stack and stack[-1].end < start:
            done = stack.pop()
            marks[done.end + 1] = stack[-1] if stack else None

    for raw in sorted(prefixes, key=lambda p: (p.start, -p.end)):
        close_until(raw.start)
        effective = _inherit(raw, stack[-1] if stack else None)
        stack.append(effective)
        marks[effective.start] = effective
    close_until(1 << 129)
    starts = sorted(marks)
    return _Ranges(starts, [marks[s] for s in starts])


class Attributor:
    """The registry in memory, answering attribution questions without touching the database.

    Example::

        attributor = Attributor.load(session)
        attributor.ip("10.11.16.25").tenant_id
        attributor.account("2261540648").region_code
    """

    def __init__(
        self,
        prefixes: list[_Prefix],
        sites: dict[int, tuple[str, str]],
        tenants: dict[int, str],
        accounts: dict[str, tuple[int | None, int | None]],
        hosts: dict[str, list[tuple[int | None, int]]],
    ) -> None:
        self._ranges = {
            family: _flatten([p for p in prefixes if p.family == family]) for family in (4, 6)
        }
        self._sites = sites
        self._tenants = tenants
        self._accounts = accounts
        self._hosts = hosts

    @classmethod
    def load(cls, session: Session) -> Attributor:
        """Read the whole registry once (a few queries, whatever the batch size)."""
        prefixes: list[_Prefix] = []
        for row in session.execute(
            select(
                IpPrefix.prefix,
                IpPrefix.family,
                IpPrefix.start_key,
                IpPrefix.end_key,
                IpPrefix.tenant_id,
                IpPrefix.data_centre_id,
            )
        ):
            prefix, family, start, end, tenant, site = row
            prefixes.append(_Prefix(prefix, family, int(start, 16), int(end, 16), tenant, site))
        sites = {
            i: (name, region)
            for i, name, region in session.execute(
                select(DataCentre.id, DataCentre.name, DataCentre.region_code)
            )
        }
        tenants = {i: name for i, name in session.execute(select(Tenant.id, Tenant.name))}
        accounts = {
            account: (tenant, site)
            for account, tenant, site in session.execute(
                select(PowerAccount.account_id, PowerAccount.tenant_id, PowerAccount.data_centre_id)
            )
        }
        hosts: dict[str, list[tuple[int | None, int]]] = defaultdict(list)
        for hostname, tenant, site in session.execute(
            select(Host.hostname, Host.tenant_id, Host.data_centre_id)
        ):
            hosts[hostname.lower()].append((tenant, site))
        return cls(prefixes, sites, tenants, accounts, dict(hosts))

    def _placed(self, tenant: int | None, site: int | None, what: str) -> Attribution:
        region = self._sites[site][1] if site is not None else None
        parts = []
        if tenant is not None:
            parts.append(f"tenant {self._tenants.get(tenant, tenant)}")
        if site is not None:
            parts.append(f"data centre {self._sites[site][0]}")
        else:
            parts.append("no data centre, so no region")
        return Attribution(tenant, site, region, f"{what}: {', '.join(parts)}")

    def ip(self, address: str | _Address) -> Attribution:
        """Attribute an IP address (text or parsed) through the most specific prefix."""
        try:
            parsed = parse_address(address) if isinstance(address, str) else address
        except ValueError:
            return Attribution(None, None, None, f"{address!r} is not an IP address")
        owner = self._ranges[parsed.version].find(int(parsed))
        if owner is None:
            return Attribution(None, None, None, f"no registered prefix contains {parsed}")
        if owner.tenant_id is None and owner.data_centre_id is None:
            return Attribution(
                None, None, None, f"{parsed} in {owner.prefix}, which has no tenant or data centre"
            )
        return self._placed(owner.tenant_id, owner.data_centre_id, f"{parsed} in {owner.prefix}")

    def account(self, account_id: str) -> Attribution:
        """Attribute a power account id."""
        found = self._accounts.get(account_id.strip())
        if found is None:
            return Attribution(None, None, None, f"power account {account_id} is not registered")
        tenant, site = found
        return self._placed(tenant, site, f"power account {account_id}")

    def host(self, hostname: str) -> Attribution:
        """Attribute a hostname (case-insensitive; a FQDN falls back to its first label)."""
        name = hostname.strip().lower()
        found = self._hosts.get(name)
        if found is None and "." in name:
            found = self._hosts.get(name.split(".", 1)[0])
        if not found:
            return Attribution(None, None, None, f"host {hostname} is not registered")
        if len(found) > 1:
            where = ", ".join(sorted(self._sites[site][0] for _, site in found))
            return Attribution(
                None,
                None,
                None,
                f"host {hostname} is registered in {len(found)} data centres ({where}); "
                "cannot tell which",
            )
        tenant, site = found[0]
        return self._placed(tenant, site, f"host {hostname}")

    def subject(self, detector: str, subject: str | None) -> Attribution:
        """Dispatch on the detector: ``net`` -> :meth:`ip`, ``power`` -> :meth:`account`,
        ``host`` -> :meth:`host`."""
        if subject is None:
            return Attribution(None, None, None, "the evidence names nothing to look up")
        if detector == "net":
            return self.ip(subject)
        if detector == "power":
            return self.account(subject)
        if detector == "host":
            return self.host(subject)
        raise ValueError(f"unknown detector {detector!r}")


def attribute_ip(session: Session, address: str) -> Attribution:
    """Attribute one address with an indexed range query (no registry load); see the module doc.

    The containing prefixes of an address form a chain (CIDR blocks nest or are disjoint); the
    query returns the chain, most specific first, and inheritance walks it outwards.
    """
    try:
        parsed = parse_address(address)
    except ValueError:
        return Attribution(None, None, None, f"{address!r} is not an IP address")
    key = address_key(parsed)
    chain = session.execute(
        select(IpPrefix.prefix, IpPrefix.tenant_id, IpPrefix.data_centre_id)
        .where(IpPrefix.family == parsed.version)
        .where(IpPrefix.start_key <= key)
        .where(IpPrefix.end_key >= key)
        .order_by(IpPrefix.start_key.desc(), IpPrefix.end_key.asc())
    ).all()
    if not chain:
        return Attribution(None, None, None, f"no registered prefix contains {parsed}")
    most_specific = chain[0][0]
    tenant = next((t for _, t, _ in chain if t is not None), None)
    site = next((s for _, _, s in chain if s is not None), None)
    if tenant is None and site is None:
        return Attribution(
            None, None, None, f"{parsed} in {most_specific}, which has no tenant or data centre"
        )
    region = None
    names: list[str] = []
    if tenant is not None:
        names.append(f"tenant {session.get_one(Tenant, tenant).name}")
    if site is not None:
        centre = session.get_one(DataCentre, site)
        region = centre.region_code
        names.append(f"data centre {centre.name}")
    else:
        names.append("no data centre, so no region")
    return Attribution(tenant, site, region, f"{parsed} in {most_specific}: {', '.join(names)}")
