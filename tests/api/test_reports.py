"""``/api/v1/reports/`` over a real ledger (SQLite, and PostgreSQL where configured): the weekly
report and the ledger file, each scoped to the caller's region."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl
import pytest

from minewatch.ledger.db import session_factory
from minewatch.ledger.ledger_export import header
from minewatch.power.emissions import EmissionFactors
from tests.api.conftest import ApiFixture
from tests.ledger.test_weekly import Week, build_week

WEEKLY = "/api/v1/reports/weekly/"
LEDGER = "/api/v1/reports/ledger/"


@pytest.fixture
def week(api: ApiFixture) -> Week:
    engine = api.client.app.state.engine  # type: ignore[attr-defined]
    with session_factory(engine)() as session:
        return build_week(session)


def _get(api: ApiFixture, who: str, url: str, **params: str) -> Any:
    return api.client.get(url, params=params, headers=api.headers(who))


def test_province_report_rolls_up_its_cities(api: ApiFixture, week: Week) -> None:
    answer = _get(api, "zhejiang", WEEKLY, week="2026-W45")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["region_code"], body["region_name"], body["week"]) == (
        "330000",
        "浙江省",
        "2026-W45",
    )
    assert (body["monday"], body["sunday"]) == ("2026-11-02", "2026-11-08")
    rows = {row["region_code"]: row for row in body["rows"]}
    assert list(rows) == ["330000", "330100", "330200", "330300"]
    assert (rows["330100"]["open"], rows["330100"]["exited"], rows["330100"]["overdue"]) == (
        4,
        1,
        1,
    )
    assert (rows["330200"]["exited"], rows["330200"]["kwh_unknown"]) == (2, 1)
    total = body["total"]
    for name in ("open", "new", "confirmed", "exited", "overdue", "kw_retired", "kwh_retired"):
        assert total[name] == pytest.approx(sum(row[name] for row in body["rows"])), name
    assert total["kw_retired"] == pytest.approx(1100.0)  # Sichuan's 5000 kW are not here
    factor = EmissionFactors.bundled().factor_for("330000").t_per_mwh
    assert total["co2_t"] == pytest.approx(total["kwh_retired"] / 1000 * factor)
    assert body["factor_year"] == EmissionFactors.bundled().default_year


def test_city_token_gets_its_counties_and_no_more(api: ApiFixture, week: Week) -> None:
    own = _get(api, "hangzhou", WEEKLY, week="2026-W45").json()
    assert own["region_code"] == "330100"
    assert [row["region_code"] for row in own["rows"]] == ["330106", "330110"]
    province = _get(api, "zhejiang", WEEKLY, week="2026-W45").json()
    hangzhou_row = next(row for row in province["rows"] if row["region_code"] == "330100")
    assert {k: v for k, v in own["total"].items() if k != "region_name"} == {
        k: v for k, v in hangzhou_row.items() if k != "region_name"
    }
    # Upward and sideways the region does not exist for the caller.
    assert _get(api, "hangzhou", WEEKLY, region="330000", week="2026-W45").status_code == 404
    assert _get(api, "hangzhou", WEEKLY, region="330200", week="2026-W45").status_code == 404
    assert _get(api, "sichuan", WEEKLY, region="330100", week="2026-W45").status_code == 404
    # Downward it does; a viewer may read.
    down = _get(api, "zhejiang", WEEKLY, region="330100", week="2026-W45").json()
    assert down["total"] == own["total"]
    assert _get(api, "viewer", WEEKLY, week="2026-W45").status_code == 200


def test_national_report_has_a_row_per_province(api: ApiFixture, week: Week) -> None:
    body = _get(api, "national", WEEKLY, week="2026-W45").json()
    rows = {row["region_code"]: row for row in body["rows"]}
    assert list(rows) == ["330000", "510000"]
    assert rows["510000"]["kw_retired"] == pytest.approx(5000.0)
    sichuan = _get(api, "sichuan", WEEKLY, week="2026-W45").json()
    assert sichuan["total"]["kw_retired"] == pytest.approx(5000.0)
    assert sichuan["total"]["exited"] == 1


def test_bad_input_is_refused_cleanly(api: ApiFixture, week: Week) -> None:
    for params in ({"week": "48"}, {"week": "2026-W60"}, {"week": "9999-W52"}, {"region": "33"}):
        answer = _get(api, "zhejiang", WEEKLY, **params)
        assert answer.status_code == 422, (params, answer.text)
    assert api.client.get(WEEKLY).status_code == 401
    assert _get(api, "zhejiang", LEDGER, format="pdf").status_code == 422
    assert api.client.get(LEDGER).status_code == 401


def test_this_week_is_the_default(api: ApiFixture, week: Week) -> None:
    body = _get(api, "zhejiang", WEEKLY).json()
    assert body["week"].startswith("20")
    # Every case of the fixture was opened weeks ago: nothing is new this week.
    assert body["total"]["new"] == 0


def test_ledger_csv_and_xlsx_are_scoped(api: ApiFixture, week: Week) -> None:
    answer = _get(api, "zhejiang", LEDGER, format="csv")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert "ledger-330000.csv" in answer.headers["content-disposition"]
    assert answer.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert len(rows) == 9
    assert {row[header("region_code")][:2] for row in rows} == {"33"}
    xlsx = _get(api, "sichuan", LEDGER, format="xlsx")
    assert xlsx.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == 2
    assert values[1][2] == "510104"  # region_code, the third column
    assert _get(api, "hangzhou", LEDGER, region="330000").status_code == 404
    city = _get(api, "zhejiang", LEDGER, region="330200").content.decode("utf-8-sig")
    assert len(city.strip().splitlines()) == 3  # header and the two Ningbo cases
