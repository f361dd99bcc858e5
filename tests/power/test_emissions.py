"""Grid emission factors: the bundled data, lookups with fallback, and validation of the file."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from minewatch.errors import DataError, InputError
from minewatch.power.emissions import NATIONAL, PROVINCES, EmissionFactor, EmissionFactors

HEADER = "region_code,region_name_en,region_name_zh,factor_t_per_mwh,year,source,published\n"
NAT22 = "00,China,全国,0.5366,2022,MEE 2024-12-20,2024-12-20\n"


def test_bundled_national_averages() -> None:
    f = EmissionFactors.bundled()
    assert [f.factor_for("00", year=y).t_per_mwh for y in (2021, 2022, 2023)] == [
        0.5568,
        0.5366,
        0.5306,
    ]
    assert f.years == (2021, 2022, 2023)
    assert f.default_year == 2022
    assert len(f) == 33


@pytest.mark.parametrize(
    ("code", "value"),
    [  # the ten provincial 2022 values reported independently in the press (see the CSV)
        ("13", 0.7252),
        ("14", 0.7096),
        ("12", 0.7041),
        ("15", 0.6849),
        ("34", 0.6782),
        ("35", 0.4092),
        ("45", 0.4044),
        ("63", 0.1567),
        ("51", 0.1404),
        ("53", 0.1073),
    ],
)
def test_bundled_provincial_2022(code: str, value: float) -> None:
    factor = EmissionFactors.bundled().factor_for(code + "0101")
    assert (factor.t_per_mwh, factor.year, factor.region_code) == (value, 2022, code)
    assert not factor.fell_back


def test_bundled_covers_every_province_the_table_has() -> None:
    f = EmissionFactors.bundled()
    covered = {e.region_code for e in f if e.year == 2022} - {NATIONAL}
    assert covered == set(PROVINCES) - {"54", "71", "81", "82"}
    for e in f:
        assert e.source.startswith("MEE & NBS")
        assert e.region_name_zh and e.region_name_en
        if e.region_code != NATIONAL:
            assert PROVINCES[e.region_code] == (e.region_name_en, e.region_name_zh)


def test_bundled_is_loaded_once() -> None:
    assert EmissionFactors.bundled() is EmissionFactors.bundled()


@pytest.mark.parametrize("code", ["540102", "54", "810000", "820000", "710000"])
def test_fallback_to_national_is_flagged(code: str) -> None:
    factor = EmissionFactors.bundled().factor_for(code)
    assert (factor.region_code, factor.t_per_mwh, factor.fell_back) == (NATIONAL, 0.5366, True)
    assert factor.requested == code


def test_year_without_provincial_factor_falls_back() -> None:
    factor = EmissionFactors.bundled().factor_for("650104", year=2023)
    assert (factor.t_per_mwh, factor.year, factor.fell_back) == (0.5306, 2023, True)


def test_national_code_does_not_count_as_fallback() -> None:
    assert not EmissionFactors.bundled().factor_for("00").fell_back


@pytest.mark.parametrize("code", ["", "1", "123", "99", "990101", "65010", "6501O4", "abcdef"])
def test_malformed_codes_raise(code: str) -> None:
    with pytest.raises(InputError, match="region code"):
        EmissionFactors.bundled().factor_for(code)


def test_unknown_year_raises() -> None:
    with pytest.raises(InputError, match=r"no emission factors for 1999; available years: 2021"):
        EmissionFactors.bundled().factor_for("11", year=1999)


def test_tonnes() -> None:
    f = EmissionFactors.bundled()
    assert f.tonnes_co2(1_000_000, "650104") == pytest.approx(623.1)
    assert f.tonnes_co2(2000, "00", year=2021) == pytest.approx(1.1136)
    assert f.factor_for("11").kg_per_kwh == 0.558


def test_with_factors_matches_lookups() -> None:
    f = EmissionFactors.bundled()
    table = pa.table(
        {"account_id": ["a", "b", "c", "d"], "region_code": ["650104", "540102", None, "110105"]}
    )
    out = f.with_factors(table)
    assert out.column("factor_t_per_mwh").to_pylist() == [0.6231, 0.5366, 0.5366, 0.558]
    assert out.column("factor_region").to_pylist() == ["65", "00", "00", "11"]
    assert out.column("factor_fell_back").to_pylist() == [False, True, True, False]
    assert out.column("factor_year").to_pylist() == [2022] * 4
    with pytest.raises(InputError, match=r"rows 2"):
        f.with_factors(pa.table({"region_code": ["650104", "65x"]}))


def test_from_csv_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text(HEADER + NAT22 + "65,Xinjiang,新疆,0.6231,2022,MEE,2024-12\n", encoding="utf-8")
    f = EmissionFactors.from_csv(path)
    assert f.factor_for("650104") == EmissionFactor(
        "65", "Xinjiang", "新疆", 0.6231, 2022, "MEE", "2024-12", requested="650104"
    )


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        ("", r"no emission factors"),
        ("65,Xinjiang,新疆,0.6231,2022,MEE,2024-12-20\n", r"no national factor for 2022"),
        (NAT22 + "99,Nowhere,无,0.5,2022,MEE,2024-12-20\n", r"f\.csv:3: region_code '99'"),
        (NAT22 + "65,Xinjiang,新疆,abc,2022,MEE,2024-12-20\n", r"f\.csv:3: factor_t_per_mwh 'abc'"),
        (NAT22 + "65,Xinjiang,新疆,5.0,2022,MEE,2024-12-20\n", r"f\.csv:3: .*outside \(0, 2\]"),
        (NAT22 + "65,Xinjiang,新疆,-0.1,2022,MEE,2024-12-20\n", r"f\.csv:3: .*outside"),
        (NAT22 + "65,Xinjiang,新疆,nan,2022,MEE,2024-12-20\n", r"f\.csv:3: .*outside"),
        (NAT22 + "65,Xinjiang,新疆,0.6,22,MEE,2024-12-20\n", r"f\.csv:3: year '22'"),
        (NAT22 + "65,Xinjiang,新疆,0.6,2022,,2024-12-20\n", r"f\.csv:3: source is required"),
        (NAT22 + "65,Xinjiang,新疆,0.6,2022,MEE,20/12/2024\n", r"f\.csv:3: published"),
        (NAT22 + "65,,新疆,0.6,2022,MEE,2024-12-20\n", r"f\.csv:3: region names"),
        (NAT22 + "65,Xinjiang,新疆,0.6,2022,MEE\n", r"f\.csv:3: expected 7 fields, found 6"),
        (NAT22 + NAT22, r"f\.csv:3: region 00 already has a factor for 2022 \(line 2\)"),
    ],
)
def test_from_csv_validation_names_line(tmp_path: Path, body: str, pattern: str) -> None:
    path = tmp_path / "f.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    with pytest.raises(DataError, match=pattern):
        EmissionFactors.from_csv(path)


def test_from_csv_bad_header_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("region,factor\n00,0.5\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"f\.csv:1: header must be"):
        EmissionFactors.from_csv(path)
    with pytest.raises(DataError, match="cannot read"):
        EmissionFactors.from_csv(tmp_path / "absent.csv")


def test_duplicate_factors_rejected_in_code() -> None:
    f = EmissionFactor("00", "China", "全国", 0.5, 2022, "x", "2024-12-20")
    with pytest.raises(DataError, match="duplicate"):
        EmissionFactors([f, f])
