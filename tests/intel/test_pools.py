"""Pool intelligence: the bundled data files, domain matching, CDN filtering and CSV validation."""

from __future__ import annotations

import csv
import dataclasses
import ipaddress
import itertools
import re
from importlib import resources
from pathlib import Path

import pytest

from minewatch.errors import DataError
from minewatch.intel import PoolEntry, PoolIntel

ET_RULES = Path(__file__).parents[3] / "shared/anchors/et-open-mining.rules"
POOLS_HEADER = "domain,pool,coins,protocol,source,date,notes\n"
CDN_HEADER = "prefix,provider,source,date\n"
TODAY = "2026-11-26"

# Read from et-open-mining.rules by hand: every name a rule matches on (dns.query, tls.sni,
# tls.cert_subject, http.host) that belongs to a mining pool or browser miner, and the two pool
# hosts the rules cite as references. Each must be matched by pools.csv.
ET_POOL_NAMES = {
    "eu.minerpool.pw": "sid 2028623, tls.cert_subject CN=eu.minerpool.pw",
    "crypto-loot.com": "sid 2024828, dns.query",
    "coin-hive.com": "sid 2025535, tls.sni",
    "herominers.com": "sid 2033901, dns.query .herominers.com",
    "pool.hashvault.pro": "sid 2036289, dns.query",
    "xmr.2miners.com": "sid 2040353, dns.query",
    "monerohash.com": "sid 2048922, dns.query",
    "nimiq.skypool.org": "sid 2026868, http.host",
    "skypool.org": "sid 2026867, dns.query",
    "nanopool.org": "sid 2033268, dns.query .nanopool.org",
    "xmr.pool.minergate.com": "sid 2025451, dns.query",
    "www.btcguild.com": "sids 2017871-2017873, reference url",
    "mining.bitcoin.cz": "sids 2017871-2017873, reference url",
}
# Names in those buffers that are not pools: the miner user-agent rule excludes Kaspersky hosts.
ET_NOT_POOLS = {"kaspersky.com"}
_NAME_BUFFERS = ("dns.query", "tls.sni", "tls.cert_subject", "http.host")

# General-purpose hosting, CDN and exchange domains whose other tenants are not pools.
NOT_POOL_DOMAINS = [
    "amazonaws.com",
    "cloudfront.net",
    "cloudflare.com",
    "cloudflare.net",
    "fastly.net",
    "akamaiedge.net",
    "github.io",
    "githubusercontent.com",
    "herokuapp.com",
    "netlify.app",
    "netlify.com",
    "now.sh",
    "vercel.app",
    "duckdns.org",
    "000webhostapp.com",
    "azurewebsites.net",
    "googleapis.com",
    "appspot.com",
    "binance.com",
    "bitcoin.com",
    "btc.com",
    "bitcoin.cz",
]


def write_intel(tmp_path: Path, pools: str, cdn: str = "") -> PoolIntel:
    pools_csv = tmp_path / "pools.csv"
    cdn_csv = tmp_path / "cdn.csv"
    pools_csv.write_text(POOLS_HEADER + pools, encoding="utf-8")
    cdn_csv.write_text(CDN_HEADER + cdn, encoding="utf-8")
    return PoolIntel.from_files(pools_csv, cdn_csv)


def pool_row(domain: str, pool: str = "Pool", coins: str = "xmr") -> str:
    return f"{domain},{pool},{coins},stratum,test,{TODAY},\n"


def bundled_rows(name: str) -> list[dict[str, str]]:
    text = resources.files("minewatch.intel").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


# --- the bundled data ----------------------------------------------------------------------------


def test_bundled_loads_once() -> None:
    intel = PoolIntel.bundled()
    assert intel is PoolIntel.bundled()
    assert len(intel) >= 150
    assert len(intel.cdn_prefixes) >= 100


def test_pools_csv_is_sorted_unique_and_sourced() -> None:
    rows = bundled_rows("pools.csv")
    domains = [r["domain"] for r in rows]
    assert domains == sorted(domains)
    assert len(domains) == len(set(domains))
    for row in rows:
        assert row["source"] and row["pool"]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["date"])
        assert row["protocol"] in {"stratum", "coinhive-websocket"}


def test_cdn_csv_prefixes_do_not_overlap() -> None:
    nets = sorted(
        (ipaddress.ip_network(r["prefix"]) for r in bundled_rows("cdn_prefixes.csv")),
        key=lambda n: (n.version, n.network_address),
    )
    for a, b in itertools.pairwise(nets):
        assert a.version != b.version or not a.overlaps(b), (a, b)


@pytest.mark.parametrize(
    ("host", "pool"),
    [
        ("xmr-eu1.nanopool.org", "Nanopool"),
        ("pool.supportxmr.com", "SupportXMR"),
        ("pool.minexmr.com", "MineXMR"),
        ("gulf.moneroocean.stream", "MoneroOcean"),
        ("pool.hashvault.pro", "HashVault"),
        ("de.monero.herominers.com", "HeroMiners"),
        ("etc.2miners.com", "2Miners"),
        ("btc.f2pool.com", "F2Pool"),
        ("stratum.antpool.com", "AntPool"),
        ("btc.viabtc.com", "ViaBTC"),
        ("btc.ss.poolin.com", "Poolin"),
        ("eu.ss.btc.com", "BTC.com Pool"),
        ("stratum.braiins.com", "Braiins Pool"),
        ("eu.stratum.slushpool.com", "Slush Pool"),
        ("etc.ethermine.org", "Ethermine"),
        ("zcash.flypool.org", "Flypool"),
        ("randomxmonero.auto.nicehash.com", "NiceHash"),
        ("xmr.suprnova.cc", "Suprnova"),
        ("us1.bitminter.com", "BitMinter"),
        ("europe.ethash-hub.miningpoolhub.com", "Mining Pool Hub"),
        ("xmr-eu.dwarfpool.com", "Dwarfpool"),
        ("gate.emcd.io", "EMCD"),
        ("btc.global.luxor.tech", "Luxor"),
        ("rx.unmineable.com", "unMineable"),
        ("mine.c3pool.com", "C3Pool"),
        ("xmrpool.eu", "xmrpool.eu"),
        ("p2pool.io", "P2Pool (Monero)"),
        ("pool.kryptex.network", "Kryptex Pool"),
        ("pool.eu.woolypooly.com", "WoolyPooly"),
        ("eu-etc.hiveon.net", "Hiveon Pool"),
        ("sha256.poolbinance.com", "Binance Pool"),
        ("btc-us.spiderpool.com", "SpiderPool"),
        ("btc.foundryusapool.com", "Foundry USA Pool"),
        ("btc.secpool.com", "SECPOOL"),
        ("stratum.sbicrypto.com", "SBI Crypto Pool"),
        ("bs.ultimuspool.com", "ULTIMUSPOOL"),
        ("ws001.coinhive.com", "Coinhive"),
    ],
)
def test_well_known_pools_are_listed(host: str, pool: str) -> None:
    entry = PoolIntel.bundled().match_domain(host)
    assert entry is not None and entry.pool == pool


@pytest.mark.parametrize("domain", ["coinhive.com", "coin-hive.com", "authedmine.com"])
def test_browser_miners_expect_the_websocket_protocol(domain: str) -> None:
    entry = PoolIntel.bundled().match_domain(f"ws005.{domain}")
    assert entry is not None and entry.protocol == "coinhive-websocket"


@pytest.mark.parametrize("domain", NOT_POOL_DOMAINS)
def test_no_general_purpose_domains(domain: str) -> None:
    assert PoolIntel.bundled().match_domain(domain) is None
    assert PoolIntel.bundled().match_domain(f"www.{domain}") is None


# --- matching ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nanopool.org", "nanopool.org"),
        ("xmr-eu1.nanopool.org", "nanopool.org"),
        ("XMR-EU1.NanoPool.ORG.", "nanopool.org"),
        ("  eth.nanopool.org  ", "nanopool.org"),
        ("evilnanopool.org", None),
        ("nanopool.org.evil.example", None),
        ("nanopool.org-evil.example", None),
        ("org", None),
        ("", None),
        (".", None),
    ],
)
def test_label_boundary_matching(name: str, expected: str | None) -> None:
    entry = PoolIntel.bundled().match_domain(name)
    assert (entry.domain if entry else None) == expected


def test_longest_suffix_wins(tmp_path: Path) -> None:
    intel = write_intel(
        tmp_path, pool_row("example.net", "Outer") + pool_row("pool.example.net", "Inner")
    )
    assert len(intel) == 2
    assert [e.domain for e in intel] == ["example.net", "pool.example.net"]

    def pool(name: str) -> str | None:
        entry = intel.match_domain(name)
        return entry.pool if entry else None

    assert pool("x.pool.example.net") == "Inner"
    assert pool("pool.example.net") == "Inner"
    assert pool("otherpool.example.net") == "Outer"
    assert pool("example.net") == "Outer"
    assert pool("example.org") is None


def test_entries_are_frozen_and_typed(tmp_path: Path) -> None:
    intel = write_intel(tmp_path, pool_row("example.net", coins="xmr;etc"))
    entry = intel.match_domain("a.example.net")
    assert isinstance(entry, PoolEntry)
    assert entry.coins == ("xmr", "etc") and entry.date.isoformat() == TODAY
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.pool = "other"  # type: ignore[misc]


# --- CDN filtering -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("104.16.0.0", True),  # Cloudflare 104.16.0.0/13, first address
        ("104.23.255.255", True),  # ... and last
        ("104.15.255.255", False),
        ("151.101.1.69", True),  # Fastly
        ("142.251.36.14", True),  # Google front end
        ("13.224.10.1", True),  # CloudFront
        ("2606:4700::6810:84e5", True),  # Cloudflare IPv6
        ("::ffff:104.16.1.1", True),  # IPv4-mapped, as the packet decoder stores IPv4
        ("192.0.2.1", False),
        ("51.15.58.224", False),
        ("2001:db8::1", False),
    ],
)
def test_cdn_prefixes(ip: str, expected: bool) -> None:
    assert PoolIntel.bundled().is_cdn(ip) is expected


def test_cdn_accepts_address_objects_and_rejects_garbage() -> None:
    intel = PoolIntel.bundled()
    assert intel.is_cdn(ipaddress.ip_address("172.64.1.1"))
    with pytest.raises(ValueError, match="does not appear to be"):
        intel.is_cdn("not-an-address")


def test_overlapping_and_adjacent_prefixes_merge(tmp_path: Path) -> None:
    cdn = "".join(
        f"{p},Test CDN,test,{TODAY}\n"
        for p in ("10.0.0.0/24", "10.0.0.128/25", "10.0.1.0/24", "10.0.4.0/24", "fd00::/64")
    )
    intel = write_intel(tmp_path, pool_row("example.net"), cdn)
    assert [intel.is_cdn(f"10.0.{x}") for x in ("0.0", "1.255", "2.0", "4.7", "3.255")] == [
        True,
        True,
        False,
        True,
        False,
    ]
    assert not intel.is_cdn("9.255.255.255")
    assert intel.is_cdn("fd00::ffff") and not intel.is_cdn("fd00:0:0:1::")


def test_a_pool_name_on_a_cdn_address_is_not_a_pool_address() -> None:
    # The reason the CDN list exists: a browser-miner name fronted by Cloudflare resolves into a
    # prefix shared with unrelated sites, so the address itself must not be marked as a pool.
    intel = PoolIntel.bundled()
    assert intel.match_domain("ws01.crypto-loot.com") is not None
    assert intel.is_cdn("104.18.32.7")


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pools", "line", "message"),
    [
        (pool_row("a.example") + f"b.example,,xmr,stratum,test,{TODAY},\n", 3, "empty pool"),
        (f"a.example,P,xmr,stratum,,{TODAY},\n", 2, "empty source"),
        ("a.example,P,xmr,stratum,test,,\n", 2, "empty date"),
        ("a.example,P,xmr,stratum,test,2026/11/26,\n", 2, "not an ISO date"),
        ("a.example,P,xmr,stratum,test,20261126,\n", 2, "not an ISO date"),
        ("a.example,P,xmr,stratum,test,2026-02-30,\n", 2, "not an ISO date"),
        (f",P,xmr,stratum,test,{TODAY},\n", 2, "empty domain"),
        (pool_row("Bad_Name.example"), 2, "not a lower-case DNS name"),
        (pool_row("example.net."), 2, "not a lower-case DNS name"),
        (pool_row("localhost"), 2, "not a lower-case DNS name"),
        (pool_row("a.example", coins="XMR"), 2, "not a lower-case ticker"),
        (f"a.example,P,xmr,Stratum TCP,test,{TODAY},\n", 2, "protocol"),
        (f"a.example,P,xmr,stratum,test,{TODAY}\n", 2, "6 fields, header has 7"),
        (pool_row("a.example") + "\n" + pool_row("a.example"), 4, "first on line 2"),
    ],
)
def test_bad_pool_rows_name_file_and_line(
    tmp_path: Path, pools: str, line: int, message: str
) -> None:
    with pytest.raises(DataError, match=re.escape(message)) as info:
        write_intel(tmp_path, pools)
    assert f"{tmp_path / 'pools.csv'}:{line}:" in str(info.value)


@pytest.mark.parametrize(
    ("cdn", "line", "message"),
    [
        (f"300.1.2.3/8,X,test,{TODAY}\n", 2, "not a network"),
        (f"104.16.0.1/13,X,test,{TODAY}\n", 2, "has host bits set"),
        (f"10.0.0.0/8,,test,{TODAY}\n", 2, "empty provider"),
        ("10.0.0.0/8,X,test,yesterday\n", 2, "not an ISO date"),
        (f"10.0.0.0/8,X,test,{TODAY}\n10.0.0.0/8,Y,test,{TODAY}\n", 3, "first on line 2"),
    ],
)
def test_bad_cdn_rows_name_file_and_line(tmp_path: Path, cdn: str, line: int, message: str) -> None:
    with pytest.raises(DataError, match=re.escape(message)) as info:
        write_intel(tmp_path, pool_row("a.example"), cdn)
    assert f"{tmp_path / 'cdn.csv'}:{line}:" in str(info.value)


def test_missing_columns_and_files(tmp_path: Path) -> None:
    pools_csv = tmp_path / "pools.csv"
    cdn_csv = tmp_path / "cdn.csv"
    cdn_csv.write_text(CDN_HEADER, encoding="utf-8")
    pools_csv.write_text("domain,pool,coins,source,date,notes\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pools\.csv:1: missing column\(s\) protocol"):
        PoolIntel.from_files(pools_csv, cdn_csv)
    pools_csv.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"pools\.csv:1: empty file"):
        PoolIntel.from_files(pools_csv, cdn_csv)
    with pytest.raises(DataError, match="cannot read"):
        PoolIntel.from_files(tmp_path / "absent.csv", cdn_csv)


def test_byte_order_mark_and_blank_lines_are_accepted(tmp_path: Path) -> None:
    pools_csv = tmp_path / "pools.csv"
    cdn_csv = tmp_path / "cdn.csv"
    pools_csv.write_text("\ufeff" + POOLS_HEADER + "\n" + pool_row("a.example"), encoding="utf-8")
    cdn_csv.write_text(CDN_HEADER, encoding="utf-8")
    assert len(PoolIntel.from_files(str(pools_csv), str(cdn_csv))) == 1


# --- the ET Open anchor rules --------------------------------------------------------------------


def _rule_names(rules: str) -> set[str]:
    """Content strings of the name-bearing sticky buffers, normalised to bare DNS names."""
    names: set[str] = set()
    for rule in rules.splitlines():
        buffer = ""
        for option in rule.split(";"):
            option = option.strip()
            if ":" not in option and ("." in option or option == "file_data"):
                buffer = option  # a sticky buffer (modifiers such as nocase have no dot)
            elif option.startswith("content:") and buffer in _NAME_BUFFERS:
                value = option.removeprefix("content:").lstrip("!").strip('"').lower()
                names.add(value.removeprefix("cn=").lstrip("."))
    return names


@pytest.mark.skipif(not ET_RULES.exists(), reason="ET Open anchor rules not present")
def test_et_rule_pool_names_are_in_pools_csv() -> None:
    rules = ET_RULES.read_text(encoding="utf-8")
    intel = PoolIntel.bundled()
    for name, where in ET_POOL_NAMES.items():
        assert name in rules.lower(), f"{name} ({where}) no longer in the rules"
        assert intel.match_domain(name) is not None, f"{name} ({where}) missing from pools.csv"


@pytest.mark.skipif(not ET_RULES.exists(), reason="ET Open anchor rules not present")
def test_every_name_in_the_rules_is_classified() -> None:
    # A rule file update that adds a name must be read and classified here by hand.
    names = _rule_names(ET_RULES.read_text(encoding="utf-8"))
    assert names
    assert names <= set(ET_POOL_NAMES) | ET_NOT_POOLS, names - set(ET_POOL_NAMES) - ET_NOT_POOLS
