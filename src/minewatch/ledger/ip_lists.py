"""Push a national (or provincial) IP list down to the regions that must act on it.

In 2021 national monitoring found mining by address and sent lists of IPs to the provinces,
which passed them on to cities and counties. Opening one lead per address by hand does not scale
and loses the structure the registry already knows, so an imported list is attributed address by
address (IP → most specific prefix → tenant → data centre → region) and becomes one ``ip-list``
lead per tenant and data centre, in that data centre's region — the city or county that must go
and look. Addresses the registry cannot place stay together in one lead at the importer's own
region ("locate these"), never dropped; addresses that lie in another region than the importer's
are refused and reported, since the importer may not act there.

The import is one transaction (the caller commits): a malformed line fails the whole list with
its line number and nothing is written. Importing the same list again adds nothing: each lead's
``source_ref`` names the list and the tenant/site/part it holds.

Example::

    >>> import io
    >>> read_ip_list(io.StringIO("ip\\n203.0.113.7\\n# comment\\n2001:db8::1\\n"), "list.csv")
    ['203.0.113.7', '2001:db8::1']
"""

from __future__ import annotations

import csv
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from minewatch.errors import InputError
from minewatch.ledger.attribution import Attributor
from minewatch.ledger.case_models import Case
from minewatch.ledger.cases import Actor, open_case
from minewatch.ledger.regions import within
from minewatch.ledger.registry_models import DataCentre, Tenant

__all__ = ["IpListImport", "PushedLead", "push_down_ip_list", "read_ip_list"]

MAX_LIST_ADDRESSES = 1_000_000
"""Largest list accepted in one import; national lists of 2021 held thousands of addresses."""
_CASE_ADDRESSES = 10_000
"""Addresses per lead (the case model's limit); a tenant with more gets several leads."""


@dataclass(frozen=True, slots=True)
class PushedLead:
    """One lead the import opened (or found already open from an earlier import)."""

    case_id: int
    region_code: str
    title: str
    addresses: int
    created: bool


@dataclass(slots=True)
class IpListImport:
    """What one import did: the leads, and the addresses it could not act on."""

    list_name: str
    leads: list[PushedLead] = field(default_factory=list)
    unplaced: int = 0
    """Addresses no registered prefix placed (kept, in a lead at the importer's region)."""
    outside_region: list[str] = field(default_factory=list)
    """Addresses placed in a region outside the importer's (refused, listed)."""
    duplicates: int = 0
    """Repeated addresses in the list (counted once)."""

    @property
    def created(self) -> int:
        """How many new leads the import opened."""
        return sum(1 for lead in self.leads if lead.created)


def read_ip_list(stream: TextIO, name: str) -> list[str]:
    """Read addresses from a CSV with an ``ip`` column, or from plain text with one address per
    line (``#`` starts a comment). Raises :class:`InputError` naming the first bad line."""
    lines = stream.read().splitlines()
    rows = [(n, line.strip()) for n, line in enumerate(lines, 1)]
    rows = [(n, text) for n, text in rows if text and not text.startswith("#")]
    if not rows:
        raise InputError(f"{name}: no IP addresses")
    column = 0
    first = rows[0][1]
    if not _is_address(first.split(",")[0].strip()):
        header = [h.strip().lower() for h in next(csv.reader([first]))]
        if "ip" not in header:
            raise InputError(f"{name}:{rows[0][0]}: expected an 'ip' column or an IP address")
        column = header.index("ip")
        rows = rows[1:]
    addresses: list[str] = []
    for n, text in rows:
        cells = next(csv.reader([text]))
        value = cells[column].strip() if column < len(cells) else ""
        try:
            addresses.append(str(ipaddress.ip_address(value)))
        except ValueError as exc:
            raise InputError(f"{name}:{n}: {value!r} is not an IPv4 or IPv6 address") from exc
        if len(addresses) > MAX_LIST_ADDRESSES:
            raise InputError(f"{name}: more than {MAX_LIST_ADDRESSES:,} addresses")
    return addresses


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def push_down_ip_list(
    session: Session,
    actor: Actor,
    list_name: str,
    addresses: Iterable[str],
    *,
    reason: str = "",
) -> IpListImport:
    """Attribute ``addresses`` and open one ``ip-list`` lead per tenant/data centre in its
    region (see the module docstring). Leads already opened by an earlier import of the same
    list are reported with ``created=False``; nothing is committed here."""
    name = list_name.strip()
    if not name or len(name) > 60:
        raise InputError("give the list a name of 1 to 60 characters (e.g. NDRC-2026-W48)")
    attributor = Attributor.load(session)
    result = IpListImport(list_name=name)
    groups: dict[tuple[str, int | None, int | None], list[str]] = {}
    seen: set[str] = set()
    for address in addresses:
        if address in seen:
            result.duplicates += 1
            continue
        seen.add(address)
        placed = attributor.ip(address)
        if placed.region_code is not None and not within(placed.region_code, actor.region_code):
            result.outside_region.append(address)
            continue
        if not placed.attributed:
            result.unplaced += 1
        region = placed.region_code or actor.region_code
        groups.setdefault((region, placed.tenant_id, placed.data_centre_id), []).append(address)
    tenants = _names(session, Tenant, {t for _, t, _ in groups if t is not None})
    sites = _names(session, DataCentre, {s for _, _, s in groups if s is not None})
    for (region, tenant, site), members in sorted(groups.items(), key=lambda g: str(g[0])):
        where = [tenants[tenant]] if tenant is not None else []
        where += [sites[site]] if site is not None else []
        label = " @ ".join(where) or "addresses not in the registry (未登记地址)"
        for part, start in enumerate(range(0, len(members), _CASE_ADDRESSES), 1):
            chunk = members[start : start + _CASE_ADDRESSES]
            suffix = f" ({part})" if len(members) > _CASE_ADDRESSES else ""
            title = f"IP list {name}: {label}{suffix}"[:200]
            ref = f"{name}#{tenant or '-'}/{site or '-'}/{part}"
            enterprise = tenants[tenant] if tenant is not None else None
            lead = _Lead(region, title, ref, tenant, site, enterprise)
            result.leads.append(_open(session, actor, lead, chunk, reason or name))
    return result


def _names(
    session: Session, model: type[Tenant] | type[DataCentre], ids: set[int]
) -> dict[int, str]:
    if not ids:
        return {}
    return {i: n for i, n in session.execute(select(model.id, model.name).where(model.id.in_(ids)))}


@dataclass(frozen=True, slots=True)
class _Lead:
    region: str
    title: str
    ref: str
    tenant: int | None
    site: int | None
    enterprise: str | None


def _open(
    session: Session, actor: Actor, lead: _Lead, addresses: list[str], reason: str
) -> PushedLead:
    existing = session.scalar(
        select(Case.id).where(
            Case.source == "ip-list", Case.source_ref == lead.ref, Case.region_code == lead.region
        )
    )
    if existing is not None:
        return PushedLead(existing, lead.region, lead.title, len(addresses), created=False)
    ledger: dict[str, object] = {"source_ref": lead.ref}
    if lead.site is not None:
        ledger["data_centre_id"] = lead.site
    if lead.tenant is not None:
        ledger["tenant_id"] = lead.tenant
        ledger["enterprise"] = lead.enterprise
    case = open_case(
        session,
        actor,
        region_code=lead.region,
        title=lead.title,
        source="ip-list",
        reason=reason,
        ip_addresses=addresses,
        ledger=ledger,
    )
    return PushedLead(case.id, lead.region, lead.title, len(addresses), created=True)
