"""Grid CO₂ emission factors for electricity in China, kept as data with source and year.

``emission_factors.csv`` beside this module holds the *average* electricity CO₂ emission factors
published jointly by the Ministry of Ecology and Environment (MEE, 生态环境部) and the National
Bureau of Statistics (NBS, 国家统计局): the national average (``region_code`` ``00``) and the
province-level averages (the two-digit province prefix of the administrative division code,
GB/T 2260). One row per region and year, in tCO₂/MWh (= kgCO₂/kWh), each with its source and
publication date. The ``source`` text says how far each value was checked.

What is bundled (see the CSV for the sources):

* national averages for 2021 (0.5568), 2022 (0.5366) and 2023 (0.5306);
* provincial averages for 2022 for the 30 provinces the MEE table covers (it has no row for
  Tibet, and none for Taiwan, Hong Kong or Macao). The 2021 and 2023 provincial tables are not
  bundled: they could not be checked.

:meth:`EmissionFactors.factor_for` looks a region code up by its first two digits. By default it
uses the newest year that has provincial factors, so every account of one report uses the same
year; a province without a factor for that year falls back to the national average of that year
and says so (``fell_back``).

The file is validated on load; a malformed line raises :class:`~minewatch.errors.DataError`
naming the file and line.

Example::

    >>> factors = EmissionFactors.bundled()
    >>> f = factors.factor_for("650104")
    >>> f.region_name_en, f.t_per_mwh, f.year, f.fell_back
    ('Xinjiang', 0.6231, 2022, False)
    >>> factors.factor_for("540102").fell_back
    True
    >>> round(factors.tonnes_co2(1_000_000, "650104"), 1)
    623.1
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from minewatch.errors import DataError, InputError

__all__ = ["NATIONAL", "PROVINCES", "EmissionFactor", "EmissionFactors"]

NATIONAL = "00"
"""The ``region_code`` of the national average."""

PROVINCES: dict[str, tuple[str, str]] = {
    "11": ("Beijing", "北京"),
    "12": ("Tianjin", "天津"),
    "13": ("Hebei", "河北"),
    "14": ("Shanxi", "山西"),
    "15": ("Inner Mongolia", "内蒙古"),
    "21": ("Liaoning", "辽宁"),
    "22": ("Jilin", "吉林"),
    "23": ("Heilongjiang", "黑龙江"),
    "31": ("Shanghai", "上海"),
    "32": ("Jiangsu", "江苏"),
    "33": ("Zhejiang", "浙江"),
    "34": ("Anhui", "安徽"),
    "35": ("Fujian", "福建"),
    "36": ("Jiangxi", "江西"),
    "37": ("Shandong", "山东"),
    "41": ("Henan", "河南"),
    "42": ("Hubei", "湖北"),
    "43": ("Hunan", "湖南"),
    "44": ("Guangdong", "广东"),
    "45": ("Guangxi", "广西"),
    "46": ("Hainan", "海南"),
    "50": ("Chongqing", "重庆"),
    "51": ("Sichuan", "四川"),
    "52": ("Guizhou", "贵州"),
    "53": ("Yunnan", "云南"),
    "54": ("Tibet", "西藏"),
    "61": ("Shaanxi", "陕西"),
    "62": ("Gansu", "甘肃"),
    "63": ("Qinghai", "青海"),
    "64": ("Ningxia", "宁夏"),
    "65": ("Xinjiang", "新疆"),
    "71": ("Taiwan", "台湾"),
    "81": ("Hong Kong", "香港"),
    "82": ("Macao", "澳门"),
}
"""Province-level division codes (first two digits of GB/T 2260 codes) with English and Chinese
names: 31 provinces, autonomous regions and municipalities, and Taiwan, Hong Kong and Macao."""

_COLUMNS = (
    "region_code",
    "region_name_en",
    "region_name_zh",
    "factor_t_per_mwh",
    "year",
    "source",
    "published",
)
_PUBLISHED = re.compile(r"^\d{4}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?$")
_REGION_ARG = re.compile(r"^\d{2}(\d{4})?$")


@dataclass(frozen=True, slots=True)
class EmissionFactor:
    """One published factor, as applied to a region code.

    ``region_code`` is the factor's own region (``00`` for national); ``requested`` is the code
    that was looked up; ``fell_back`` is true when the province had no factor for ``year`` and
    the national average was used instead.
    """

    region_code: str
    region_name_en: str
    region_name_zh: str
    t_per_mwh: float
    year: int
    source: str
    published: str
    requested: str = ""
    fell_back: bool = False

    @property
    def kg_per_kwh(self) -> float:
        """The same factor in kgCO₂/kWh (numerically equal to tCO₂/MWh)."""
        return self.t_per_mwh


class EmissionFactors:
    """Published grid emission factors by region and year, ready for lookups.

    Example::

        >>> factors = EmissionFactors.bundled()
        >>> factors.default_year
        2022
        >>> factors.factor_for("00", year=2023).t_per_mwh
        0.5306
    """

    def __init__(self, factors: Iterable[EmissionFactor]) -> None:
        self._by_key: dict[tuple[str, int], EmissionFactor] = {}
        for f in factors:
            key = (f.region_code, f.year)
            if key in self._by_key:
                raise DataError(f"duplicate emission factor for region {f.region_code} in {f.year}")
            self._by_key[key] = f
        if not self._by_key:
            raise DataError("no emission factors given")
        national_years = {y for r, y in self._by_key if r == NATIONAL}
        for r, y in self._by_key:
            if y not in national_years:
                raise DataError(
                    f"region {r} has a factor for {y} but there is no national factor for {y}; "
                    "the national average is needed as the fallback"
                )
        provincial = [y for r, y in self._by_key if r != NATIONAL]
        self._default_year = max(provincial) if provincial else max(national_years)

    @classmethod
    def bundled(cls) -> EmissionFactors:
        """The factors shipped with minewatch, loaded once per process."""
        return _load_bundled()

    @classmethod
    def from_csv(cls, path: str | Path) -> EmissionFactors:
        """Load a replacement factor file; raises :class:`DataError` naming file and line."""
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot read emission factors: {exc}") from exc
        return cls(_parse_csv(text, str(path)))

    @property
    def default_year(self) -> int:
        """The year used when none is asked for: the newest year with provincial factors."""
        return self._default_year

    @property
    def years(self) -> tuple[int, ...]:
        """Every year with at least the national factor, ascending."""
        return tuple(sorted({y for _, y in self._by_key}))

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[EmissionFactor]:
        return iter(sorted(self._by_key.values(), key=lambda f: (f.year, f.region_code)))

    def factor_for(self, region_code: str, year: int | None = None) -> EmissionFactor:
        """The factor for a region code (``00``, a 2-digit province or a 6-digit division code).

        The province is the code's first two digits. Without a factor for that province and year
        the national average of the year is returned with ``fell_back=True``. Raises
        :class:`InputError` for a malformed or non-Chinese code or a year with no factors.
        """
        code = str(region_code).strip()
        if not _REGION_ARG.match(code) or (code[:2] != NATIONAL and code[:2] not in PROVINCES):
            raise InputError(
                f"region code {region_code!r} is not 00, a province-level code or a 6-digit "
                f"division code starting with one ({', '.join(sorted(PROVINCES))})"
            )
        if year is None:
            year = self._default_year
        national = self._by_key.get((NATIONAL, year))
        if national is None:
            raise InputError(
                f"no emission factors for {year}; available years: "
                f"{', '.join(map(str, self.years))}"
            )
        own = self._by_key.get((code[:2], year))
        if own is not None:
            return replace(own, requested=code)
        return replace(national, requested=code, fell_back=code[:2] != NATIONAL)

    def tonnes_co2(self, kwh: float, region_code: str, year: int | None = None) -> float:
        """CO₂ in tonnes for ``kwh`` of electricity used in ``region_code``."""
        return kwh / 1000.0 * self.factor_for(region_code, year).t_per_mwh

    def with_factors(
        self, table: Any, region_column: str = "region_code", year: int | None = None
    ) -> Any:
        """``table`` (a pyarrow Table) plus ``factor_t_per_mwh``, ``factor_region``,
        ``factor_year`` and ``factor_fell_back`` columns, looked up per row without a row loop.

        Null or unknown region codes get the national factor with ``factor_fell_back`` true;
        malformed codes raise :class:`InputError` naming the rows.
        """
        year = self._default_year if year is None else year
        national = self.factor_for(NATIONAL, year)
        codes = pc.utf8_trim_whitespace(pc.cast(table.column(region_column), pa.string()))
        ok = pc.match_substring_regex(codes, _REGION_ARG.pattern)
        bad = pc.indices_nonzero(pc.invert(pc.fill_null(ok, True))).to_pylist()
        if bad:
            raise InputError(
                f"column {region_column!r} has malformed region codes in rows "
                f"{', '.join(str(i + 1) for i in bad[:5])}"
                f"{' and more' if len(bad) > 5 else ''}; expected 6-digit division codes"
            )
        own = [
            (r, f.t_per_mwh) for (r, y), f in self._by_key.items() if y == year and r != NATIONAL
        ]
        keys = pa.array([r for r, _ in own], type=pa.string())
        vals = pa.array([v for _, v in own], type=pa.float64())
        idx = pc.index_in(pc.utf8_slice_codeunits(codes, 0, 2), value_set=keys)
        found = pc.is_valid(idx)
        factor = pc.if_else(found, pc.take(vals, idx), national.t_per_mwh)
        region = pc.if_else(found, pc.utf8_slice_codeunits(codes, 0, 2), NATIONAL)
        n = table.num_rows
        return (
            table.append_column("factor_t_per_mwh", factor)
            .append_column("factor_region", region)
            .append_column("factor_year", pa.array([year] * n, type=pa.int16()))
            .append_column("factor_fell_back", pc.invert(found))
        )


def _parse_csv(text: str, name: str) -> list[EmissionFactor]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != _COLUMNS:
        raise DataError(f"{name}:1: header must be {','.join(_COLUMNS)}; found {header}")
    out: list[EmissionFactor] = []
    seen: dict[tuple[str, int], int] = {}
    for row in reader:
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(_COLUMNS):
            raise DataError(f"{name}:{line}: expected {len(_COLUMNS)} fields, found {len(row)}")
        code, en, zh, factor, year, source, published = (c.strip() for c in row)
        if code != NATIONAL and code not in PROVINCES:
            raise DataError(
                f"{name}:{line}: region_code {code!r} is not 00 or a 2-digit province-level code"
            )
        if not en or not zh:
            raise DataError(f"{name}:{line}: region names (English and Chinese) are required")
        try:
            value = float(factor)
        except ValueError:
            raise DataError(f"{name}:{line}: factor_t_per_mwh {factor!r} is not a number") from None
        if not math.isfinite(value) or not 0.0 < value <= 2.0:
            raise DataError(
                f"{name}:{line}: factor_t_per_mwh {factor!r} is outside (0, 2] tCO2/MWh"
            )
        if not year.isdigit() or not 2000 <= int(year) <= 2100:
            raise DataError(f"{name}:{line}: year {year!r} is not a year from 2000 to 2100")
        if not source:
            raise DataError(f"{name}:{line}: source is required")
        if not _PUBLISHED.match(published):
            raise DataError(
                f"{name}:{line}: published {published!r} is not a date (YYYY-MM-DD or YYYY-MM)"
            )
        key = (code, int(year))
        if key in seen:
            raise DataError(
                f"{name}:{line}: region {code} already has a factor for {year} (line {seen[key]})"
            )
        seen[key] = line
        out.append(EmissionFactor(code, en, zh, value, int(year), source, published))
    return out


@functools.cache
def _load_bundled() -> EmissionFactors:
    ref = resources.files("minewatch.power").joinpath("emission_factors.csv")
    return EmissionFactors(_parse_csv(ref.read_text(encoding="utf-8"), "emission_factors.csv"))
