"""The weekly clear-to-zero report on a real ledger (SQLite, and PostgreSQL where configured).

Cases are built through the real workflow (open, verify, inspect, confirm, rectify, close) with
fixed times around the week 2026-W45 (Monday 2 to Sunday 8 November, China time), so the week
boundaries fall between known transitions. ``build_week`` is shared with the API and CLI tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, fields

import pytest
from sqlalchemy.orm import Session, sessionmaker

from minewatch.errors import InputError
from minewatch.ledger.case_models import Case
from minewatch.ledger.cases import (
    LocalOperator,
    open_case,
    record_inspection,
    transition,
    update_case,
    update_milestone,
)
from minewatch.ledger.models import Region
from minewatch.ledger.weekly import (
    COUNT_FIELDS,
    IsoWeek,
    WeeklyReport,
    WeeklyRow,
    child_region,
    weekly_report,
)
from minewatch.power.emissions import EmissionFactors
from tests.ledger.test_cases import Seed, seed

CST = dt.timezone(dt.timedelta(hours=8))
NATIONAL_ADMIN = LocalOperator("adm-nat", role="admin", region_code="000000")
INSPECTORS = {"3301": "ins-hz", "3302": "ins-nb", "5101": "ins-sc"}
W45 = IsoWeek(2026, 45)

REGIONS = [
    ("330000", "浙江省", "province", None),
    ("330100", "杭州市", "city", "330000"),
    ("330106", "西湖区", "county", "330100"),
    ("330110", "余杭区", "county", "330100"),
    ("330200", "宁波市", "city", "330000"),
    ("330206", "北仑区", "county", "330200"),
    ("330300", "温州市", "city", "330000"),
    ("510000", "四川省", "province", None),
    ("510100", "成都市", "city", "510000"),
    ("510104", "锦江区", "county", "510100"),
]
"""A few real divisions (GB/T 2260), inserted directly: the report reads names and children."""


def at(day: int, hour: int = 9, minute: int = 0, second: int = 0, month: int = 11) -> dt.datetime:
    """A time in November (or ``month``) 2026, China time."""
    return dt.datetime(2026, month, day, hour, minute, second, tzinfo=CST)


def lead(session: Session, region: str, opened: dt.datetime, **ledger: object) -> Case:
    return open_case(
        session,
        NATIONAL_ADMIN,
        region_code=region,
        title=f"hotline report in {region}",
        source="hotline",
        reason="caller reports fan noise",
        at=opened,
        ledger=ledger,
    )


def confirm(session: Session, case: Case, when: dt.datetime) -> Case:
    """Verify, inspect and confirm ``case``, the last move at ``when``."""
    region = case.region_code
    transition(session, NATIONAL_ADMIN, case.id, "verification", "desk check", at=when - HOUR * 3)
    transition(
        session,
        NATIONAL_ADMIN,
        case.id,
        "inspection",
        "site visit",
        inspector=INSPECTORS[region[:4]],
        scheduled_on=(when - HOUR * 2).astimezone(CST).date(),
        at=when - HOUR * 2,
    )
    record_inspection(
        session,
        NATIONAL_ADMIN,
        case.id,
        case.inspections[-1].id,
        result="mining",
        inspected_at=when - HOUR,
    )
    return transition(session, NATIONAL_ADMIN, case.id, "confirmed", "miners found", at=when)


HOUR = dt.timedelta(hours=1)


def rectify(
    session: Session, case: Case, when: dt.datetime, project_type: str, due: dt.date
) -> Case:
    update_case(session, NATIONAL_ADMIN, case.id, {"project_type": project_type})
    if project_type == "new":
        return transition(
            session, NATIONAL_ADMIN, case.id, "rectification", "order", deadline=due, at=when
        )
    plan = {"stop-mining": due, "remove-equipment": due, "cut-supply": due}
    return transition(
        session, NATIONAL_ADMIN, case.id, "rectification", "exit plan", plan=plan, at=when
    )


def close(session: Session, case: Case, when: dt.datetime) -> Case:
    done = when.astimezone(CST).date()
    for milestone in case.milestones:
        update_milestone(
            session, NATIONAL_ADMIN, case.id, milestone.id, {"done_on": done}, today=done
        )
    return transition(session, NATIONAL_ADMIN, case.id, "closed", "all done", at=when)


def closed_case(
    session: Session,
    region: str,
    closed: dt.datetime,
    *,
    confirmed: dt.datetime | None = None,
    project_type: str = "new",
    **ledger: object,
) -> Case:
    """A case opened 1 October, confirmed (default 10 October) and closed at ``closed``."""
    confirmed = confirmed or at(10, month=10)
    case = lead(session, region, at(1, month=10), **ledger)
    confirm(session, case, confirmed)
    rectify(session, case, confirmed + HOUR, project_type, confirmed.date() + dt.timedelta(10))
    return close(session, case, closed)


@dataclass
class Week:
    """Ids of the cases :func:`build_week` made, by their role in 2026-W45."""

    sunday_close: int
    monday_close: int
    monday_lead: int
    sunday_lead: int
    confirmed_overdue: int
    cleared: int
    ningbo_no_kwh: int
    ningbo_closed: int
    province_lead: int
    sichuan_closed: int
    seed: Seed


def add_regions(session: Session) -> None:
    for code, name, level, parent in REGIONS:
        session.add(Region(code=code, name=name, level=level, parent_code=parent))
    session.flush()


def build_week(session: Session) -> Week:
    """Users, registry, regions and ten cases whose moves fall in, before and after 2026-W45."""
    ids = seed(session)
    add_regions(session)
    made = Week(
        # Closed at the last second of Sunday 8 November, China time: inside W45.
        sunday_close=closed_case(
            session,
            "330110",
            at(8, 23, 59, 59),
            enterprise="杭州星联云计算有限公司",
            credit_code="91330110MA2GXL7K37",
            power_kw=800.0,
            annual_kwh=7_008_000.0,
            scale_units=240,
            hashrate_value=26.4,
            hashrate_unit="PH/s",
            tenant_id=ids.tenant,
            data_centre_id=ids.centre,
        ).id,
        # Closed at Monday 9 November 00:00 China time: W46, so still open at W45's end.
        monday_close=closed_case(
            session, "330110", at(9, 0, 0, 0), power_kw=300.0, annual_kwh=2_628_000.0
        ).id,
        monday_lead=lead(session, "330110", at(2, 0, 0, 0)).id,
        sunday_lead=lead(session, "330110", at(1, 23, 59, 59)).id,
        confirmed_overdue=0,
        cleared=0,
        ningbo_no_kwh=closed_case(session, "330206", at(4), power_kw=200.0).id,
        ningbo_closed=closed_case(
            session,
            "330206",
            at(6),
            project_type="existing",
            power_kw=100.0,
            annual_kwh=876_000.0,
        ).id,
        province_lead=lead(session, "330000", at(3)).id,
        sichuan_closed=closed_case(
            session, "510104", at(5), power_kw=5000.0, annual_kwh=43_800_000.0
        ).id,
        seed=ids,
    )
    # Confirmed on Thursday of W45; its exit plan's first step, due Friday, is not done.
    overdue_case = lead(session, "330106", at(1, month=10), power_kw=50.0)
    confirm(session, overdue_case, at(5, 10))
    rectify(session, overdue_case, at(5, 11), "existing", dt.date(2026, 11, 6))
    made.confirmed_overdue = overdue_case.id
    # Cleared on Tuesday of W45: no longer open, counted nowhere else.
    cleared = lead(session, "330106", at(1, month=10))
    transition(session, NATIONAL_ADMIN, cleared.id, "verification", "desk check", at=at(3))
    transition(session, NATIONAL_ADMIN, cleared.id, "cleared", "a lawful AI cluster", at=at(3, 10))
    made.cleared = cleared.id
    session.commit()
    return made


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as session:
        yield session


@pytest.fixture
def week(session: Session) -> Week:
    return build_week(session)


def _rows(report: WeeklyReport) -> dict[str, WeeklyRow]:
    return {row.region_code: row for row in report.rows}


def _counts(row: WeeklyRow) -> dict[str, int]:
    return {name: getattr(row, name) for name in COUNT_FIELDS}


def test_province_report_has_a_row_per_city_and_the_total(session: Session, week: Week) -> None:
    report = weekly_report(session, "330000", W45)
    rows = _rows(report)
    assert (report.region_code, report.region_name, report.week.label) == (
        "330000",
        "浙江省",
        "2026-W45",
    )
    # Every city of the region table is listed, even one with nothing to report (Wenzhou), and
    # the lead booked at the province itself has its own row.
    assert list(rows) == ["330000", "330100", "330200", "330300"]
    assert rows["330100"].region_name == "杭州市"
    assert _counts(rows["330100"]) == {
        # monday_close, monday_lead, sunday_lead, confirmed_overdue (sunday_close and cleared
        # are done by the week's end)
        "open": 4,
        "new": 1,  # monday_lead; sunday_lead was opened one second before the week
        "confirmed": 1,
        "exited": 1,  # sunday_close; monday_close falls in the next week
        "overdue": 1,
        "kwh_unknown": 0,
    }
    assert rows["330100"].kw_retired == pytest.approx(800.0)
    assert rows["330100"].kwh_retired == pytest.approx(7_008_000.0)
    assert _counts(rows["330200"]) == {
        "open": 0,
        "new": 0,
        "confirmed": 0,
        "exited": 2,
        "overdue": 0,
        "kwh_unknown": 1,  # the closed case with no annual kWh on record
    }
    assert rows["330200"].kw_retired == pytest.approx(300.0)
    assert rows["330200"].kwh_retired == pytest.approx(876_000.0)
    assert _counts(rows["330300"]) == dict.fromkeys(COUNT_FIELDS, 0)
    assert _counts(rows["330000"])["open"] == 1
    assert _counts(rows["330000"])["new"] == 1


def test_rows_roll_up_to_the_total_and_to_the_parent(session: Session, week: Week) -> None:
    province = weekly_report(session, "330000", W45)
    for name in (*COUNT_FIELDS, "kw_retired", "kwh_retired", "co2_t"):
        assert getattr(province.total, name) == pytest.approx(
            sum(getattr(row, name) for row in province.rows)
        ), name
    # A city's report is the city's row of its province's report; a province's total is the
    # province's row of the national report.
    city = weekly_report(session, "330100", W45)
    assert [row.region_code for row in city.rows] == ["330106", "330110"]
    assert _counts(city.total) == _counts(_rows(province)["330100"])
    assert city.total.co2_t == pytest.approx(_rows(province)["330100"].co2_t)
    nation = weekly_report(session, "000000", W45)
    assert [row.region_code for row in nation.rows] == ["330000", "510000"]
    assert _counts(_rows(nation)["330000"]) == _counts(province.total)
    assert _rows(nation)["330000"].kwh_retired == pytest.approx(province.total.kwh_retired)
    assert nation.total.exited == province.total.exited + 1


def test_co2_is_kwh_times_the_provincial_factor(session: Session, week: Week) -> None:
    factors = EmissionFactors.bundled()
    nation = weekly_report(session, "000000", W45)
    for code in ("330000", "510000"):
        row = _rows(nation)[code]
        factor = factors.factor_for(code).t_per_mwh
        assert row.factor_t_per_mwh == factor
        assert row.kwh_retired > 0
        assert row.co2_t == pytest.approx(row.kwh_retired / 1000.0 * factor)
    # Two provinces with different factors: the total has none of its own, only the sum.
    assert factors.factor_for("330000").t_per_mwh != factors.factor_for("510000").t_per_mwh
    assert nation.total.factor_t_per_mwh is None
    assert nation.total.co2_t == pytest.approx(sum(r.co2_t for r in nation.rows))
    assert nation.factor_year == factors.default_year
    older = weekly_report(session, "000000", W45, factor_year=2021)
    national_2021 = factors.factor_for("00", 2021).t_per_mwh
    assert older.total.co2_t == pytest.approx(nation.total.kwh_retired / 1000 * national_2021)


def test_week_boundaries_are_china_midnights(session: Session, week: Week) -> None:
    w44, w45, w46 = (weekly_report(session, "330100", IsoWeek(2026, n)) for n in (44, 45, 46))
    assert w45.week.starts_at == dt.datetime(2026, 11, 1, 16, 0, tzinfo=dt.UTC)
    assert w45.week.ends_at == w46.week.starts_at
    # Sunday 23:59:59 belongs to the week ending; Monday 00:00 to the next.
    assert (w44.total.new, w45.total.new) == (1, 1)
    assert (w45.total.exited, w46.total.exited) == (1, 1)
    assert w45.total.kw_retired == pytest.approx(800.0)
    assert w46.total.kw_retired == pytest.approx(300.0)
    # Open at W44's end: both cases closed later, the Sunday-night lead, the case confirmed in
    # W45 and the one cleared in W45 -- not the Monday lead, opened one second too late.
    assert w44.total.open == 5
    # Open at W45's end: the Sunday close and the clearing are gone, the Monday lead has come.
    assert w45.total.open == 4
    # Open at W46's end: the Monday close is gone.
    assert w46.total.open == 3


def test_region_isolation(session: Session, week: Week) -> None:
    zhejiang = weekly_report(session, "330000", W45)
    sichuan = weekly_report(session, "510000", W45)
    assert zhejiang.total.kw_retired == pytest.approx(800.0 + 200.0 + 100.0)
    assert sichuan.total.kw_retired == pytest.approx(5000.0)
    assert [row.region_code for row in sichuan.rows] == ["510100"]
    assert sichuan.total.exited == 1
    assert sichuan.total.overdue == 0
    # A city with nothing in it reports zero, not someone else's cases.
    wenzhou = weekly_report(session, "330300", W45)
    assert (wenzhou.region_name, wenzhou.rows) == ("温州市", ())
    assert _counts(wenzhou.total) == dict.fromkeys(COUNT_FIELDS, 0)


def test_counts_are_as_of_the_week_not_as_of_today(session: Session, week: Week) -> None:
    before = weekly_report(session, "330000", IsoWeek(2026, 39))  # 21-27 September
    assert _counts(before.total) == dict.fromkeys(COUNT_FIELDS, 0)
    october = weekly_report(session, "330000", IsoWeek(2026, 40))  # 28 Sep - 4 Oct
    opened_1_october = 6  # sunday_close, monday_close, both in Ningbo, overdue, cleared
    assert (october.total.new, october.total.open) == (opened_1_october, opened_1_october)


def test_child_region_rules() -> None:
    assert child_region("330110", "000000") == "330000"
    assert child_region("330110", "330000") == "330100"
    assert child_region("330110", "330100") == "330110"
    assert child_region("330110", "330110") == "330110"
    assert child_region("110105", "110000") == "110100"
    # 429004 仙桃市 reports straight to Hubei: the region table says so, the code does not.
    known = {"420000", "420100", "429004"}
    assert child_region("429004", "420000", known) == "429004"
    assert child_region("420106", "420000", known | {"420106"}) == "420100"
    with pytest.raises(InputError):
        child_region("510104", "330000")


def test_bad_weeks_are_refused() -> None:
    assert IsoWeek.parse("2026W48") == IsoWeek(2026, 48)
    assert IsoWeek.parse("2026-W53").monday == dt.date(2026, 12, 28)
    for text in (
        "2026-48",
        "2026-W00",
        "2025-W53",
        "W48",
        "2026-W48-1",
        "",
        "9999-W52",
        "0001-W01",
    ):
        with pytest.raises(InputError):
            IsoWeek.parse(text)


def test_bad_scope_and_factor_year_are_refused(session: Session) -> None:
    with pytest.raises(InputError):
        weekly_report(session, "33", W45)
    with pytest.raises(InputError):
        weekly_report(session, "330000", W45, factor_year=1999)


def test_row_dict_has_every_field() -> None:
    row = WeeklyRow("330100", open=3, co2_t=1.5)
    as_dict = row.to_dict()
    assert set(as_dict) == {f.name for f in fields(WeeklyRow)}
    assert (as_dict["open"], as_dict["co2_t"], as_dict["region_name"]) == (3, 1.5, None)
