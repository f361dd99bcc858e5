"""Registry CSV import: checked before written, all or nothing, idempotent, on every backend."""

from __future__ import annotations

import csv
import ipaddress
import random
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from minewatch.errors import InputError
from minewatch.ledger.models import Region
from minewatch.ledger.registry import (
    KINDS,
    RegistryError,
    check_credit_code,
    import_registry,
    sample_registry_dir,
)
from minewatch.ledger.registry_models import (
    DataCentre,
    Host,
    IpPrefix,
    PowerAccount,
    Rack,
    Tenant,
    address_key,
)

TABLES = {
    "data_centres": DataCentre,
    "tenants": Tenant,
    "racks": Rack,
    "ip_prefixes": IpPrefix,
    "power_accounts": PowerAccount,
    "hosts": Host,
}
FILES = {
    "data_centres": "data-centres.csv",
    "tenants": "tenants.csv",
    "racks": "racks.csv",
    "ip_prefixes": "prefixes.csv",
    "power_accounts": "power-accounts.csv",
    "hosts": "hosts.csv",
}


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    """A writable copy of the bundled sample registry."""
    return Path(shutil.copytree(sample_registry_dir(), tmp_path / "registry"))


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def append_line(path: Path, line: str) -> int:
    """Append one CSV line; returns its line number."""
    text = path.read_text(encoding="utf-8")
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text + line + "\n", encoding="utf-8")
    return len((text + line).splitlines())


def counts(session: Session) -> dict[str, int]:
    return {
        name: session.scalar(select(func.count()).select_from(model)) or 0
        for name, model in TABLES.items()
    }


def test_sample_registry_imports_every_row(sessions: sessionmaker[Session]) -> None:
    directory = sample_registry_dir()
    expected = {kind: len(csv_rows(directory / name)) for kind, name in FILES.items()}
    with sessions() as session:
        summary = import_registry(session, [directory])
        session.commit()
    assert {k: c.added for k, c in summary.counts.items()} == expected
    with sessions() as session:
        assert counts(session) == expected
        for row in csv_rows(directory / "prefixes.csv"):
            network = ipaddress.ip_network(row["prefix"])
            stored = session.scalars(select(IpPrefix).where(IpPrefix.prefix == str(network))).one()
            assert stored.family == network.version
            assert stored.start_key == address_key(network.network_address)
            assert stored.end_key == address_key(network.broadcast_address)
            assert (stored.tenant.name if stored.tenant else "") == row["tenant"]
            assert (stored.data_centre.name if stored.data_centre else "") == row["data_centre"]
        for row in csv_rows(directory / "data-centres.csv"):
            centre = session.scalars(select(DataCentre).where(DataCentre.name == row["name"])).one()
            assert centre.region_code == row["region_code"]
            assert centre.pue == float(row["pue"])
            assert centre.capacity_kw == float(row["capacity_kw"])


def test_importing_twice_adds_nothing(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        import_registry(session, [sample_registry_dir()])
        session.commit()
        before = counts(session)
    with sessions() as session:
        again = import_registry(session, [sample_registry_dir()])
        session.commit()
        assert counts(session) == before
    assert all(c.added == 0 and c.updated == 0 for c in again.counts.values())
    assert sum(c.unchanged for c in again.counts.values()) == sum(before.values())


def test_changed_rows_update_in_place(sessions: sessionmaker[Session], registry_dir: Path) -> None:
    with sessions() as session:
        import_registry(session, [registry_dir])
        session.commit()
    centres = csv_rows(registry_dir / "data-centres.csv")
    centres[0]["pue"] = "1.77"
    prefixes = csv_rows(registry_dir / "prefixes.csv")
    tenants = [r["name"] for r in csv_rows(registry_dir / "tenants.csv")]
    moved = next(p for p in prefixes if p["tenant"])
    moved["tenant"] = next(t for t in tenants if t != moved["tenant"])
    for name, rows in (("data-centres.csv", centres), ("prefixes.csv", prefixes)):
        with (registry_dir / name).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    with sessions() as session:
        summary = import_registry(session, [registry_dir])
        session.commit()
    assert summary.counts["data_centres"].updated == 1
    assert summary.counts["ip_prefixes"].updated == 1
    assert summary.counts["tenants"].updated == 0
    with sessions() as session:
        centre = session.scalars(select(DataCentre).where(DataCentre.name == centres[0]["name"]))
        assert centre.one().pue == 1.77
        prefix = session.scalars(select(IpPrefix).where(IpPrefix.prefix == moved["prefix"])).one()
        assert prefix.tenant is not None and prefix.tenant.name == moved["tenant"]


BAD_ROWS = [
    ("data-centres.csv", "坏数据中心,op,addr,3301,10,1.2", "region code"),
    ("data-centres.csv", "坏数据中心,op,addr,000000,10,1.2", "not 000000"),
    ("data-centres.csv", "坏数据中心,op,addr,330110,10,0.9", "pue"),
    ("data-centres.csv", "坏数据中心,op,addr,330110,lots,1.2", "capacity_kw"),
    ("data-centres.csv", "余杭云谷数据中心,op,addr,330110,10,1.2", "already given at"),
    ("tenants.csv", "坏租户,91330110MA2GXL7K38,x", "check character"),
    ("tenants.csv", "坏租户,91330110MA2GXL7K37,x", "already given to tenant"),
    ("racks.csv", "没有的数据中心,A01,", "unknown data centre"),
    ("prefixes.csv", "10.11.16.1/20,余杭云谷数据中心,,x", "did you mean 10.11.16.0/20"),
    ("prefixes.csv", "10.300.0.0/16,,,x", "not valid"),
    ("power-accounts.csv", "99 1,余杭云谷数据中心,,1", "white space"),
    ("power-accounts.csv", "991,,,1", "give a data_centre or a tenant"),
    ("hosts.csv", "萧山临江数据中心,new-host,没有的租户", "unknown tenant"),
    ("hosts.csv", "萧山临江数据中心,new-host", "fields where the header has"),
]


@pytest.mark.parametrize(("name", "line", "reason"), BAD_ROWS)
def test_a_bad_row_anywhere_writes_nothing(
    sessions: sessionmaker[Session], registry_dir: Path, name: str, line: str, reason: str
) -> None:
    number = append_line(registry_dir / name, line)
    with sessions() as session, pytest.raises(RegistryError, match=reason) as caught:
        import_registry(session, [registry_dir])
    assert caught.value.where == f"{registry_dir / name}:{number}"
    with sessions() as session:
        assert all(n == 0 for n in counts(session).values())


def test_unknown_header_lists_the_expected_columns(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("name,tennant\nx,y\n", encoding="utf-8")
    with sessions() as session, pytest.raises(RegistryError) as caught:
        import_registry(session, [path])
    assert caught.value.where == f"{path}:1"
    for kind in KINDS:
        assert kind.label in caught.value.reason


def test_missing_path_and_empty_directory_are_clear_errors(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions() as session:
        with pytest.raises(RegistryError, match="no such file"):
            import_registry(session, [tmp_path / "absent"])
        with pytest.raises(RegistryError, match=r"no \.csv files"):
            import_registry(session, [tmp_path])


def test_references_resolve_against_the_ledger(
    sessions: sessionmaker[Session], registry_dir: Path
) -> None:
    with sessions() as session:
        import_registry(session, [registry_dir / "data-centres.csv", registry_dir / "tenants.csv"])
        session.commit()
    with sessions() as session:
        summary = import_registry(session, [registry_dir / "hosts.csv"])
        session.commit()
    assert summary.counts["hosts"].added == len(csv_rows(registry_dir / "hosts.csv"))
    assert summary.counts["tenants"].added == 0


def test_region_codes_must_exist_once_regions_are_loaded(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sessions() as session:
        session.add_all(
            [
                Region(code="330000", name="浙江省", level="province"),
                Region(code="330100", name="杭州市", level="city", parent_code="330000"),
                Region(code="330110", name="余杭区", level="county", parent_code="330100"),
            ]
        )
        session.commit()
    header = "name,operator,address,region_code,capacity_kw,pue\n"
    good = tmp_path / "good.csv"
    good.write_text(header + "a,op,addr,330110,,\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text(header + "b,op,addr,330199,,\n", encoding="utf-8")
    with sessions() as session:
        assert import_registry(session, [good]).counts["data_centres"].added == 1
        with pytest.raises(RegistryError, match="330199 is not in the loaded region table"):
            import_registry(session, [bad])


def _with_check(body: str) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    for candidate in alphabet:
        try:
            return check_credit_code(body + candidate)
        except InputError:
            continue
    raise AssertionError("no check character fits")


def test_credit_code_check_catches_every_single_substitution() -> None:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    rng = random.Random(2260)
    for _ in range(200):
        code = _with_check("".join(rng.choice(alphabet) for _ in range(17)))
        position = rng.randrange(17)
        other = rng.choice(alphabet.replace(code[position], ""))
        with pytest.raises(InputError, match="check character"):
            check_credit_code(code[:position] + other + code[position + 1 :])
    for letter in "IOSVZ":
        with pytest.raises(InputError, match="other than I, O, S, V, Z"):
            check_credit_code(letter * 18)
