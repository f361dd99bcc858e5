"""Attribution: most specific prefix with inheritance, accounts, hosts; in memory == in SQL."""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from minewatch.ledger.attribution import Attribution, Attributor, attribute_ip
from minewatch.ledger.db import session_factory
from minewatch.ledger.registry_models import (
    DataCentre,
    Host,
    IpPrefix,
    PowerAccount,
    Tenant,
    address_key,
)


def names(session: Session, found: Attribution) -> tuple[str | None, str | None]:
    tenant = session.get(Tenant, found.tenant_id) if found.tenant_id else None
    centre = session.get(DataCentre, found.data_centre_id) if found.data_centre_id else None
    return (tenant.name if tenant else None, centre.name if centre else None)


def prefix(session: Session, text: str) -> IpPrefix:
    return session.scalars(select(IpPrefix).where(IpPrefix.prefix == text)).one()


def test_most_specific_prefix_wins_and_inherits_the_site(
    sample_sessions: sessionmaker[Session],
) -> None:
    with sample_sessions() as session:
        attributor = Attributor.load(session)
        tenant_block = prefix(session, "10.11.16.0/20")
        site_block = prefix(session, "10.11.0.0/16")
        inside = str(ipaddress.ip_network(tenant_block.prefix)[25])
        found = attributor.ip(inside)
        assert (found.tenant_id, found.data_centre_id) == (
            tenant_block.tenant_id,
            tenant_block.data_centre_id,
        )
        assert found.region_code == tenant_block.data_centre.region_code  # type: ignore[union-attr]
        assert "10.11.16.0/20" in found.note
        # Outside the tenant's /20 but inside the site's /16: the site, no tenant.
        site_only = attributor.ip(str(ipaddress.ip_network("10.11.0.0/16")[-2]))
        assert site_only.attributed and site_only.tenant_id is None
        assert site_only.data_centre_id == site_block.data_centre_id
        # The tenant's IPv6 /48 names no site: it inherits the enclosing /40's.
        v6 = prefix(session, "2001:db8:1101::/48")
        assert v6.data_centre_id is None
        found6 = attributor.ip("2001:db8:1101::5")
        assert found6.tenant_id == v6.tenant_id
        assert found6.data_centre_id == prefix(session, "2001:db8:1100::/40").data_centre_id
        # An IPv4-mapped IPv6 address is the IPv4 address.
        assert attributor.ip("::ffff:10.11.16.25") == attributor.ip("10.11.16.25")
        for nowhere in ("192.0.2.1", "2001:db8:ffff::1", "127.0.0.1"):
            missing = attributor.ip(nowhere)
            assert not missing.attributed and missing.region_code is None
            assert "no registered prefix" in missing.note
        assert not attributor.ip("not-an-ip").attributed


def test_power_accounts_and_hosts(sample_sessions: sessionmaker[Session]) -> None:
    with sample_sessions() as session:
        attributor = Attributor.load(session)
        for account in session.scalars(select(PowerAccount)):
            found = attributor.account(account.account_id)
            assert (found.tenant_id, found.data_centre_id) == (
                account.tenant_id,
                account.data_centre_id,
            )
            assert found.region_code == account.data_centre.region_code  # type: ignore[union-attr]
        assert not attributor.account("0000000000").attributed
        hosts = list(session.scalars(select(Host)))
        by_name: dict[str, list[Host]] = {}
        for host in hosts:
            by_name.setdefault(host.hostname, []).append(host)
        unique = next(h[0] for h in by_name.values() if len(h) == 1 and h[0].tenant_id)
        for spelling in (unique.hostname, unique.hostname.upper(), unique.hostname + ".dc.example"):
            found = attributor.host(spelling)
            assert (found.tenant_id, found.data_centre_id) == (
                unique.tenant_id,
                unique.data_centre_id,
            ), spelling
        shared = next(name for name, h in by_name.items() if len(h) > 1)
        ambiguous = attributor.host(shared)
        assert not ambiguous.attributed
        assert f"{len(by_name[shared])} data centres" in ambiguous.note
        assert not attributor.host("nobody-here").attributed


def test_tenant_without_any_site_has_no_region(engine: Engine) -> None:
    sessions = session_factory(engine)
    network = ipaddress.ip_network("192.0.2.0/24")
    with sessions() as session:
        owner = Tenant(name="t", declared_business="x")
        session.add(owner)
        session.flush()
        session.add(
            IpPrefix(
                prefix=str(network),
                family=4,
                start_key=address_key(network.network_address),
                end_key=address_key(network.broadcast_address),
                tenant_id=owner.id,
                description="",
            )
        )
        session.flush()
        for found in (Attributor.load(session).ip("192.0.2.9"), attribute_ip(session, "192.0.2.9")):
            assert found.attributed and found.tenant_id == owner.id
            assert found.region_code is None and "no region" in found.note


@dataclass
class Block:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    tenant_id: int | None
    data_centre_id: int | None


def brute_force(blocks: list[Block], address: str) -> tuple[int | None, int | None]:
    """The definition: the longest containing prefix, empty fields filled from outer ones."""
    parsed = ipaddress.ip_address(address)
    chain = sorted(
        (b for b in blocks if b.network.version == parsed.version and parsed in b.network),
        key=lambda b: -b.network.prefixlen,
    )
    tenant = next((b.tenant_id for b in chain if b.tenant_id is not None), None)
    site = next((b.data_centre_id for b in chain if b.data_centre_id is not None), None)
    return tenant, site


def network(version: int, value: int, length: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if version == 4:
        return ipaddress.IPv4Network((value, length))
    return ipaddress.IPv6Network((value, length))


def address(version: int, value: int) -> str:
    return str(ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value))


def random_blocks(rng: random.Random, sites: list[int], tenants: list[int]) -> list[Block]:
    """Nested and disjoint CIDR blocks, IPv4 and IPv6, some with empty tenant or site."""
    blocks: dict[str, Block] = {}
    for version, bits in ((4, 32), (6, 128)):
        frontier: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int]] = []
        for _ in range(4):
            length = rng.randint(6, 12) if version == 4 else rng.randint(16, 40)
            value = rng.getrandbits(bits) & ~((1 << (bits - length)) - 1)
            frontier.append((network(version, value, length), 0))
        while frontier:
            net, depth = frontier.pop()
            if str(net) in blocks:
                continue
            blocks[str(net)] = Block(
                net,
                rng.choice([None, *tenants]),
                rng.choice([None, None, *sites]),
            )
            if depth < 4 and net.prefixlen < bits - 2:
                for _ in range(rng.randint(1, 3)):
                    extra = rng.randint(1, min(6, bits - net.prefixlen))
                    subnets = 1 << extra
                    index = rng.randrange(subnets)
                    step = 1 << (bits - net.prefixlen - extra)
                    start = int(net.network_address) + index * step
                    frontier.append((network(version, start, net.prefixlen + extra), depth + 1))
    return list(blocks.values())


def probes(rng: random.Random, blocks: list[Block]) -> list[str]:
    """Every block's edges and their neighbours, plus random addresses inside and outside."""
    out: list[str] = []
    for b in blocks:
        bits = b.network.max_prefixlen
        first, last = int(b.network.network_address), int(b.network.broadcast_address)
        for value in (first, last, first - 1, last + 1, rng.randint(first, last)):
            if 0 <= value < 1 << bits:
                out.append(address(b.network.version, value))
    out += [address(4, rng.getrandbits(32)) for _ in range(50)]
    out += [address(6, rng.getrandbits(128)) for _ in range(50)]
    return out


def test_in_memory_and_sql_agree_with_the_definition(engine: Engine) -> None:
    sessions = session_factory(engine)
    rng = random.Random(2004)
    with sessions() as session:
        sites = []
        for i, region in enumerate(("330110", "330109", "330802")):
            centre = DataCentre(name=f"dc{i}", operator="o", address="a", region_code=region)
            session.add(centre)
            session.flush()
            sites.append(centre.id)
        tenants = []
        for i in range(4):
            renter = Tenant(name=f"t{i}", declared_business="x")
            session.add(renter)
            session.flush()
            tenants.append(renter.id)
        regions = {c.id: c.region_code for c in session.scalars(select(DataCentre))}
        blocks = random_blocks(rng, sites, tenants)
        for b in blocks:
            session.add(
                IpPrefix(
                    prefix=str(b.network),
                    family=b.network.version,
                    start_key=address_key(b.network.network_address),
                    end_key=address_key(b.network.broadcast_address),
                    tenant_id=b.tenant_id,
                    data_centre_id=b.data_centre_id,
                    description="",
                )
            )
        session.commit()
        attributor = Attributor.load(session)
        checked = 0
        for probe in probes(rng, blocks):
            tenant, site = brute_force(blocks, probe)
            memory = attributor.ip(probe)
            sql = attribute_ip(session, probe)
            assert (memory.tenant_id, memory.data_centre_id) == (tenant, site), probe
            assert (sql.tenant_id, sql.data_centre_id) == (tenant, site), probe
            expected_region = regions[site] if site is not None else None
            assert memory.region_code == sql.region_code == expected_region, probe
            checked += 1
        assert checked > 100 and len(blocks) > 20


def test_attribution_in_bulk_does_not_query_per_row(sample_sessions: sessionmaker[Session]) -> None:
    with sample_sessions() as session:
        statements: list[Any] = []

        def count(*_args: Any) -> None:
            statements.append(1)

        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            attributor = Attributor.load(session)
            loaded = len(statements)
            network = ipaddress.ip_network("10.11.16.0/20")
            results = [attributor.ip(str(network[i % network.num_addresses])) for i in range(5000)]
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert loaded <= 6
        assert len(statements) == loaded
        assert all(r.attributed for r in results)
