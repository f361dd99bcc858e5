"""The punitive-tariff list: which accounts, which dates, which price, and files Excel opens."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy.orm import Session

from minewatch.errors import InputError
from minewatch.ledger.cases import LocalOperator, open_case, update_case
from minewatch.ledger.tariffs import (
    COLUMNS,
    PROVINCIAL_SURCHARGES,
    Surcharge,
    TariffList,
    TariffRow,
    merge_periods,
    parse_surcharge,
    tariff_list,
    write_tariffs,
)
from tests.ledger.test_cases import ADMIN, AT, Seed, new_lead, walk

# The fixtures of the case tests (a session, the seeded ids) are reused as they are.
from tests.ledger.test_cases import ids as ids
from tests.ledger.test_cases import session as session

UTC = dt.UTC
NATIONAL = LocalOperator("adm-nat", role="admin", region_code="000000")


def _build(session: Session, ids: Seed) -> dict[str, int]:
    """Cases in every situation the list must tell apart."""
    closed = new_lead(session, ids)  # Yuhang data centre named: its two meters there
    # 17:30 UTC on 3 Feb is 01:30 on 4 Feb in China: the list uses the Chinese date.
    walk(session, closed.id, "closed", confirmed_at=dt.datetime(2026, 2, 3, 17, 30, tzinfo=UTC))
    hangzhou = open_case(
        session,
        ADMIN,
        region_code="330100",
        title="Hangzhou IP list",
        source="ip-list",
        at=AT["lead"],
        ip_addresses=["203.0.113.9"],
        ledger={"tenant_id": ids.other_tenant},
    )
    walk(session, hangzhou.id, "rectification", project_type="existing")
    ningbo = open_case(
        session,
        ADMIN,
        region_code="330200",
        title="Ningbo hotline",
        source="hotline",
        at=AT["lead"],
        ledger={"tenant_id": ids.other_tenant},
    )
    walk(session, ningbo.id, "confirmed", inspector="ins-nb")
    anonymous = open_case(
        session, ADMIN, region_code="330100", title="no tenant", source="hotline", at=AT["lead"]
    )
    walk(session, anonymous.id, "confirmed")
    cleared = new_lead(session, ids)
    walk(session, cleared.id, "cleared")
    lead = new_lead(session, ids)
    chengdu = open_case(
        session,
        NATIONAL,
        region_code="510104",
        title="Chengdu",
        source="hotline",
        at=AT["lead"],
        ledger={"tenant_id": ids.other_tenant},
    )
    walk(session, chengdu.id, "verification", actor=NATIONAL)
    session.commit()
    return {
        "closed": closed.id,
        "hangzhou": hangzhou.id,
        "ningbo": ningbo.id,
        "anonymous": anonymous.id,
        "cleared": cleared.id,
        "lead": lead.id,
        "chengdu": chengdu.id,
    }


def test_rows_follow_confirmed_cases_their_tenants_and_regions(session: Session, ids: Seed) -> None:
    cases = _build(session, ids)
    with pytest.raises(InputError, match="no published surcharge known for province 330000"):
        tariff_list(session, "330000")
    result = tariff_list(session, "330000", surcharge="1.50")
    got = [(r.case_ids, r.account_id, r.start, r.end) for r in result.rows]
    assert got == [
        ((cases["hangzhou"],), "3308020417", dt.date(2026, 2, 3), None),
        ((cases["closed"],), "0063744294", dt.date(2026, 2, 4), dt.date(2026, 5, 2)),
        ((cases["closed"],), "6374429440", dt.date(2026, 2, 4), dt.date(2026, 5, 2)),
    ]
    assert {r.surcharge.cny_per_kwh for r in result.rows} == {Decimal("1.50")}
    assert [r.tenant for r in result.rows] == ["衢州数智人工智能有限公司"] + [
        "杭州星联云计算有限公司"
    ] * 2
    assert {r.project_type_label for r in result.rows} == {"增量", "存量"}
    skipped = dict(result.skipped)
    assert set(skipped) == {cases["ningbo"], cases["anonymous"]}
    assert "no power account in the region" in skipped[cases["ningbo"]]
    assert "no tenant" in skipped[cases["anonymous"]]
    # A city sees its own cases only; Sichuan has a published figure and unconfirmed cases.
    assert {r.case_ids for r in tariff_list(session, "330100", surcharge="1").rows} == {
        (cases["closed"],),
        (cases["hangzhou"],),
    }
    assert tariff_list(session, "510000").rows == []


def test_a_province_with_a_published_figure_needs_no_parameter(session: Session, ids: Seed) -> None:
    chengdu = open_case(
        session,
        NATIONAL,
        region_code="510104",
        title="Chengdu",
        source="hotline",
        at=AT["lead"],
        ledger={"tenant_id": ids.tenant},
    )
    walk(session, chengdu.id, "confirmed", actor=NATIONAL, inspector="ins-sc")
    session.commit()
    result = tariff_list(session, "510000")
    # The tenant's meters are all in Zhejiang, so nothing is billed in Sichuan: skipped, said.
    assert result.rows == [] and [c for c, _ in result.skipped] == [chengdu.id]
    update_case(session, NATIONAL, chengdu.id, {"region_code": "330110"})
    session.commit()
    zhejiang = tariff_list(session, "000000", surcharge=Decimal("0.8"))
    assert {r.account_id for r in zhejiang.rows} == {"0063744294", "6374429440"}
    assert PROVINCIAL_SURCHARGES["510000"].cny_per_kwh == Decimal("2.00")
    assert "186" in PROVINCIAL_SURCHARGES["510000"].basis


def test_csv_and_xlsx_exports_are_readable(session: Session, ids: Seed, tmp_path: Path) -> None:
    _build(session, ids)
    result = tariff_list(session, "330000", surcharge="1.5")
    keys = [key for key, _ in COLUMNS]

    out = tmp_path / "out"
    out.mkdir()
    csv_path = out / "tariffs.csv"
    csv_path.write_text("old contents")
    write_tariffs(result.rows, csv_path)
    raw = csv_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw
    table = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert list(table[0]) == keys
    assert len(table) == len(result.rows) == 3
    assert [row["account_id"] for row in table] == [r.account_id for r in result.rows]
    assert "0063744294" in {row["account_id"] for row in table}  # leading zeros kept
    assert [row["case_ids"] for row in table] == [
        ";".join(map(str, r.case_ids)) for r in result.rows
    ]
    assert {row["tenant"] for row in table} == {
        "杭州星联云计算有限公司",
        "衢州数智人工智能有限公司",
    }
    assert {row["end"] for row in table} == {"2026-05-02", ""}
    assert {row["surcharge_cny_per_kwh"] for row in table} == {"1.5"}
    assert {row["project_type_label"] for row in table} == {"增量", "存量"}

    xlsx_path = out / "tariffs.xlsx"
    write_tariffs(result.rows, xlsx_path)
    sheet = openpyxl.load_workbook(xlsx_path).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == keys
    assert len(rows) == 1 + len(result.rows)
    by_key = [dict(zip(keys, row, strict=True)) for row in rows[1:]]
    assert [r["account_id"] for r in by_key] == [r.account_id for r in result.rows]
    assert all(isinstance(r["account_id"], str) for r in by_key)
    assert {r["surcharge_cny_per_kwh"] for r in by_key} == {1.5}
    starts = {r["start"] for r in by_key}
    assert all(isinstance(s, dt.datetime) for s in starts)
    assert {s.date() for s in starts if isinstance(s, dt.datetime)} == {
        r.start for r in result.rows
    }
    assert sorted(p.name for p in out.iterdir()) == ["tariffs.csv", "tariffs.xlsx"]  # no temps


def test_empty_list_and_bad_destinations(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    write_tariffs(TariffList(scope="330000").rows, path)
    assert path.read_bytes().decode("utf-8-sig").splitlines() == [",".join(k for k, _ in COLUMNS)]
    with pytest.raises(InputError, match=r"\.csv or an \.xlsx"):
        write_tariffs([], tmp_path / "list.txt")
    assert not (tmp_path / "list.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv"]


@pytest.mark.parametrize("value", ["0", "-1", "abc", "NaN", "100", "Infinity", ""])
def test_surcharge_must_be_a_plausible_price(value: str) -> None:
    with pytest.raises(InputError, match="surcharge"):
        parse_surcharge(value)


def test_surcharge_keeps_its_decimal_digits() -> None:
    assert parse_surcharge(" 0.80 ") == Decimal("0.80")


def _row(account: str, case_id: int, start: str, end: str | None) -> TariffRow:
    return TariffRow(
        account_id=account,
        tenant="t",
        credit_code=None,
        data_centre=None,
        region_code="330110",
        case_ids=(case_id,),
        project_type="new",
        start=dt.date.fromisoformat(start),
        end=None if end is None else dt.date.fromisoformat(end),
        surcharge=Surcharge(Decimal("1"), "given"),
    )


def test_overlapping_periods_of_one_meter_are_billed_once() -> None:
    rows = [
        _row("A", 1, "2026-01-01", "2026-03-01"),
        _row("A", 2, "2026-02-01", "2026-04-01"),  # overlaps 1: merged
        _row("A", 3, "2026-06-01", None),  # after a gap: its own period
        _row("B", 4, "2026-02-01", None),
        _row("B", 5, "2026-05-01", "2026-05-31"),  # inside B's open period
        _row("C", 6, "2026-01-01", "2026-01-31"),
    ]
    merged = merge_periods(rows)
    assert [(r.account_id, r.case_ids, r.start.isoformat(), r.end) for r in merged] == [
        ("A", (1, 2), "2026-01-01", dt.date(2026, 4, 1)),
        ("A", (3,), "2026-06-01", None),
        ("B", (4, 5), "2026-02-01", None),
        ("C", (6,), "2026-01-01", dt.date(2026, 1, 31)),
    ]
    assert merge_periods(list(reversed(rows))) == merged
