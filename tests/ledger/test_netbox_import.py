"""NetBox import: pynetbox against a fake NetBox served over real HTTPS on loopback.

The fake (tests/support/netbox.py) holds the sample province as NetBox would; nothing in the
client is mocked. Every test that writes runs on SQLite and, where configured, PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from minewatch.errors import InputError
from minewatch.ledger.attribution import Attributor, attribute_ip
from minewatch.ledger.netbox_import import (
    NetboxMapping,
    NetboxSnapshot,
    import_netbox,
    rows_from_netbox,
)
from minewatch.ledger.registry import RegistryError, import_registry, sample_registry_dir
from minewatch.ledger.registry_models import (
    DataCentre,
    Host,
    IpPrefix,
    PowerAccount,
    Rack,
    Tenant,
)
from tests.support.https import LoopbackServer, TlsFiles, free_port, make_tls_files
from tests.support.netbox import FakeNetbox, sample_province

TOKEN = "9f3c2a7e5b1d4c6e8a0f2b4d6c8e0a1b3c5d7e9f"
TABLES = {
    "data_centres": DataCentre,
    "tenants": Tenant,
    "racks": Rack,
    "ip_prefixes": IpPrefix,
    "power_accounts": PowerAccount,
    "hosts": Host,
}
CLOUD = "杭州星联云计算有限公司"
STORAGE = "杭州千峰分布式存储有限公司"


@dataclass
class Served:
    fake: FakeNetbox
    server: LoopbackServer
    tls: TlsFiles

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def netbox(tmp_path: Path) -> Iterator[Served]:
    """The fake NetBox with the sample province, served over HTTPS on 127.0.0.1."""
    tls = make_tls_files(tmp_path)
    fake = FakeNetbox(token=TOKEN)
    server = LoopbackServer(tls, fake.app())
    server.start()
    yield Served(fake, server, tls)
    server.stop()


def run_import(
    sessions: sessionmaker[Session],
    served: Served,
    token: str = TOKEN,
    mapping: NetboxMapping | None = None,
) -> object:
    with sessions() as session:
        result = import_netbox(session, served.url, token, mapping, ca_file=served.tls.ca_file)
        session.commit()
    return result


def counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        return {
            name: session.scalar(select(func.count()).select_from(model)) or 0
            for name, model in TABLES.items()
        }


def test_import_fills_the_registry_and_attribution_works(
    sessions: sessionmaker[Session], netbox: Served
) -> None:
    with sessions() as session:
        result = import_netbox(session, netbox.url, TOKEN, ca_file=netbox.tls.ca_file)
        session.commit()
    added = {k: c.added for k, c in result.summary.counts.items()}
    objects = netbox.fake.objects
    named_hosts = [
        h
        for key in ("devices", "virtual_machines")
        for h in objects[key]
        if h["name"] and " " not in h["name"] and h["site"]
    ]
    metered = {f["custom_fields"]["meter_account"] for f in objects["power_feeds"]} - {None}
    assert added == {
        "data_centres": len(objects["sites"]),
        "tenants": len(objects["tenants"]),
        "racks": len(objects["racks"]),
        "ip_prefixes": len(objects["prefixes"]),
        "power_accounts": len(metered),
        "hosts": len(named_hosts),
    }
    assert counts(sessions) == added
    assert result.version == "4.2.1"
    assert sorted(s.split(": ", 1)[1] for s in result.skipped) == sorted(
        [
            "unnamed device",
            "name has white space, not a hostname",
            "virtual machine has no site",
            "no meter account in custom field meter_account",
        ]
    )
    # several pages were read, every request carried the token in the header and only there
    prefix_offsets = [q for p, q, _ in netbox.fake.requests if p == "/api/ipam/prefixes/"]
    assert len(prefix_offsets) == -(-len(objects["prefixes"]) // netbox.fake.max_page_size)
    assert all(auth == f"Token {TOKEN}" for _, _, auth in netbox.fake.requests)
    assert not any(TOKEN in q for _, q, _ in netbox.fake.requests)

    with sessions() as session:
        attributor = Attributor.load(session)
        names = {t.id: t.name for t in session.scalars(select(Tenant))}
        sites = {d.id: d.name for d in session.scalars(select(DataCentre))}
        # region code from the site's custom field, the region slug, the region description
        for address, tenant, site, region in (
            ("10.11.16.25", CLOUD, "余杭云谷数据中心", "330110"),
            ("10.12.9.1", "浙江恒链区块链技术有限公司", "萧山临江数据中心", "330109"),
            ("198.51.100.7", "衢州数智人工智能有限公司", "衢州柯城智算中心", "330802"),
            ("2001:db8:1101::5", CLOUD, "余杭云谷数据中心", "330110"),
        ):
            found = attributor.ip(address)
            assert (names.get(found.tenant_id or -1), sites.get(found.data_centre_id or -1)) == (
                tenant,
                site,
            ), found.note
            assert found.region_code == region
            assert attribute_ip(session, address) == found
        # a prefix scoped to a region names no data centre and no tenant: not attributed
        assert not attributor.ip("10.14.1.1").attributed
        # the feed without a tenant takes its rack's; A and B feeds make one account
        assert names[attributor.account("2261540648").tenant_id or -1] == STORAGE
        account = session.scalars(
            select(PowerAccount).where(PowerAccount.account_id == "6374429439")
        ).one()
        assert account.contracted_kw == 800
        assert names[attributor.host("qz-vm-infer01.example").tenant_id or -1] == (
            "衢州数智人工智能有限公司"
        )
        assert not attributor.host("bastion-01").attributed  # in two data centres


def test_second_import_adds_nothing(sessions: sessionmaker[Session], netbox: Served) -> None:
    run_import(sessions, netbox)
    before = counts(sessions)
    with sessions() as session:
        again = import_netbox(session, netbox.url, TOKEN, ca_file=netbox.tls.ca_file)
        session.commit()
    assert all(c.added == 0 and c.updated == 0 for c in again.summary.counts.values())
    assert sum(c.unchanged for c in again.summary.counts.values()) == sum(before.values())
    assert counts(sessions) == before


def test_netbox_and_csv_give_the_same_rows(sessions: sessionmaker[Session], netbox: Served) -> None:
    """The sample CSV imported first: NetBox (same registry plus two extras) changes nothing."""
    with sessions() as session:
        import_registry(session, [sample_registry_dir()])
        session.commit()
    with sessions() as session:
        result = import_netbox(session, netbox.url, TOKEN, ca_file=netbox.tls.ca_file)
        session.commit()
    changes = {k: (c.added, c.updated) for k, c in result.summary.counts.items()}
    assert changes == {
        "data_centres": (0, 0),
        "tenants": (0, 0),
        "racks": (0, 0),
        "ip_prefixes": (1, 0),  # 10.14.0.0/16, scoped to a region
        "power_accounts": (0, 0),
        "hosts": (1, 0),  # qz-vm-infer01
    }


def test_a_change_in_netbox_is_an_update(sessions: sessionmaker[Session], netbox: Served) -> None:
    run_import(sessions, netbox)
    rack = next(r for r in netbox.fake.objects["racks"] if r["name"] == "B07")
    tenant = next(t for t in netbox.fake.objects["tenants"] if t["name"] == STORAGE)
    rack["tenant"] = {k: tenant[k] for k in ("id", "url", "display", "name", "slug")}
    with sessions() as session:
        result = import_netbox(session, netbox.url, TOKEN, ca_file=netbox.tls.ca_file)
        session.commit()
        assert result.summary.counts["racks"].updated == 1
        stored = session.scalars(select(Rack).where(Rack.name == "B07")).one()
        assert stored.tenant is not None and stored.tenant.name == STORAGE


@pytest.mark.parametrize("status", [401, 403])
def test_bad_token_writes_nothing_and_never_shows_the_token(
    sessions: sessionmaker[Session],
    netbox: Served,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    netbox.fake.auth_failure_status = status
    wrong = "0000aaaa1111bbbb2222cccc3333dddd4444eeee"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(InputError) as caught:
        run_import(sessions, netbox, token=wrong)
    message = str(caught.value)
    assert f"{netbox.url}/api/status/" in message
    assert f"HTTP {status}" in message
    assert "Invalid token" in message
    assert wrong not in message and wrong not in caplog.text
    assert counts(sessions) == dict.fromkeys(TABLES, 0)


def test_server_error_midway_writes_nothing(
    sessions: sessionmaker[Session], netbox: Served
) -> None:
    """Devices fail on their second page, after sites, tenants and prefixes were read."""
    with sessions() as session:
        import_registry(session, [sample_registry_dir()])
        session.commit()
    before = counts(sessions)
    netbox.fake.objects["tenants"][0]["custom_fields"]["declared_business"] = "changed"
    netbox.fake.failures["devices"] = (500, netbox.fake.max_page_size)
    with pytest.raises(InputError) as caught:
        run_import(sessions, netbox)
    assert "/api/dcim/devices/" in str(caught.value)
    assert "HTTP 500" in str(caught.value)
    assert counts(sessions) == before
    with sessions() as session:
        assert session.scalars(
            select(Tenant).where(Tenant.name == CLOUD)
        ).one().declared_business == ("cloud computing")


def test_unreachable_netbox(sessions: sessionmaker[Session]) -> None:
    url = f"https://127.0.0.1:{free_port()}"
    with sessions() as session, pytest.raises(InputError, match="cannot reach NetBox at"):
        import_netbox(session, url, TOKEN, NetboxMapping(timeout_s=5))
    assert counts(sessions) == dict.fromkeys(TABLES, 0)


def test_untrusted_certificate_is_refused(sessions: sessionmaker[Session], netbox: Served) -> None:
    with sessions() as session, pytest.raises(InputError, match="TLS certificate not accepted"):
        import_netbox(session, netbox.url, TOKEN)
    assert netbox.fake.requests == []  # the token never left over an unverified connection


def test_bad_urls_are_refused() -> None:
    for url in ("netbox.example", "ftp://netbox.example", "https://user:pw@netbox.example"):
        with pytest.raises(InputError, match=r"NetBox URL|without user"):
            import_netbox(None, url, TOKEN)  # type: ignore[arg-type]


def test_registry_checks_apply_and_name_the_netbox_object(
    sessions: sessionmaker[Session], netbox: Served
) -> None:
    """A prefix with host bits is refused by the registry's own check; nothing is written."""
    bad = netbox.fake.objects["prefixes"][8]
    bad["prefix"] = "10.12.40.1/24"
    with pytest.raises(RegistryError) as caught:
        run_import(sessions, netbox)
    assert caught.value.where.startswith(f"NetBox {netbox.url}/api/ipam/prefixes/9/")
    assert "did you mean 10.12.40.0/24" in caught.value.reason
    assert counts(sessions) == dict.fromkeys(TABLES, 0)


def test_site_without_region_code(sessions: sessionmaker[Session], netbox: Served) -> None:
    site = netbox.fake.objects["sites"][1]  # its code came from the region slug
    region = next(r for r in netbox.fake.objects["regions"] if r["id"] == site["region"]["id"])
    region["slug"] = "xiaoshan"
    with pytest.raises(RegistryError, match="custom field region_code"):
        run_import(sessions, netbox)
    assert counts(sessions) == dict.fromkeys(TABLES, 0)


def test_mapping_file_names_other_custom_fields(
    sessions: sessionmaker[Session], netbox: Served, tmp_path: Path
) -> None:
    for feed in netbox.fake.objects["power_feeds"]:
        feed["custom_fields"] = {"grid_account": feed["custom_fields"]["meter_account"]}
    for site in netbox.fake.objects["sites"]:
        site["custom_fields"]["gb2260"] = site["custom_fields"].pop("region_code")
    path = tmp_path / "mapping.toml"
    path.write_text(
        'meter_account_field = "grid_account"\nregion_field = "gb2260"\n'
        'hosts_from = ["devices"]\npage_size = 2\n',
        encoding="utf-8",
    )
    mapping = NetboxMapping.from_toml(path)
    with sessions() as session:
        result = import_netbox(session, netbox.url, TOKEN, mapping, ca_file=netbox.tls.ca_file)
        session.commit()
    assert result.summary.counts["power_accounts"].added == 4
    assert result.fetched["virtual_machines"] == 0
    devices = [d for d in netbox.fake.objects["devices"] if d["name"] and " " not in d["name"]]
    assert result.summary.counts["hosts"].added == len(devices)  # no virtual machines
    with sessions() as session:
        codes = set(session.scalars(select(DataCentre.region_code)))
    assert codes == {"330110", "330109", "330802"}


def test_mapping_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    for text, expected in (
        ('meter_field = "x"', "unknown key"),
        ("page_size = true", "must be a number"),
        ('region_sources = ["custom_field", "guess"]', "region_sources"),
        ("hosts_from = 3", "list of strings"),
        ("region_field = ", "not a TOML file"),
    ):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(InputError, match=expected):
            NetboxMapping.from_toml(path)


def test_feeds_of_one_account_must_agree() -> None:
    objects = sample_province()
    feeds = objects["power_feeds"]
    feeds[1]["custom_fields"]["contracted_kw"] = 900  # YH-B says otherwise than YH-A
    with pytest.raises(RegistryError, match="meter account 6374429439 has contracted_kw"):
        rows_from_netbox(NetboxSnapshot("https://nb.example/api/", "4.2.1", objects))


def test_site_fallbacks_and_old_prefix_site_field() -> None:
    """Operator from the site's tenant, address from shipping_address, prefix ``site`` (< 4.2)."""
    objects = sample_province()
    site = objects["sites"][0]
    site["custom_fields"]["operator"] = None
    site["tenant"] = {"id": 9, "name": "杭州云谷数据科技有限公司"}
    site["shipping_address"], site["physical_address"] = site["physical_address"], ""
    prefix = objects["prefixes"][0]
    prefix.pop("scope"), prefix.pop("scope_type"), prefix.pop("scope_id")
    prefix["site"] = {"id": site["id"], "name": site["name"]}
    rows, _ = rows_from_netbox(NetboxSnapshot("https://nb.example/api/", "4.2.1", objects))
    centre = next(r for r in rows if r.kind == "data_centres" and r.values["name"] == site["name"])
    assert centre.values["operator"] == "杭州云谷数据科技有限公司"
    assert centre.values["address"] == site["shipping_address"]
    first = next(
        r for r in rows if r.kind == "ip_prefixes" and r.values["prefix"] == "10.11.0.0/16"
    )
    assert first.values["data_centre"] == site["name"]


def test_custom_field_of_the_wrong_type() -> None:
    objects = sample_province()
    objects["sites"][0]["custom_fields"]["capacity_kw"] = {"id": 1}
    with pytest.raises(RegistryError, match="custom field capacity_kw holds dict"):
        rows_from_netbox(NetboxSnapshot("https://nb.example/api/", "4.2.1", objects))
