"""``minewatch power screen``: every account screened, the inspection list ranked, the energy
and carbon of the mining counted.

Steps: read and check the readings (:mod:`.readings`), compute the features in DuckDB
(:mod:`.features`), judge each account (:mod:`.classify`), add mining kWh and CO₂ with the
published grid emission factor of the account's province (:mod:`.emissions`), and write the
results atomically.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from minewatch.atomic import atomic_write_bytes
from minewatch.power.classify import AccountVerdict, classify_account
from minewatch.power.emissions import EmissionFactors
from minewatch.power.features import compute_features
from minewatch.power.readings import IngestSummary, load_accounts, load_readings
from minewatch.power.result_columns import RESULT_COLUMNS
from minewatch.spreadsheet import csv_cell, keep_text, xlsx_value

__all__ = [
    "RESULT_COLUMNS",
    "ScreenResult",
    "ScreenedAccount",
    "inspection_order",
    "screen",
    "write_inspection_list",
    "write_results",
]

CHINA = timezone(timedelta(hours=8))


@dataclass(slots=True)
class ScreenedAccount:
    """One row of the result: the verdict plus energy and carbon in the window."""

    verdict: AccountVerdict
    mining_kwh: float
    co2_t: float
    region_code: str
    declared_business: str

    def row(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "account_id": v.account_id,
            "verdict": v.verdict,
            "score": f"{v.score:.3f}",
            "kind": v.kind,
            "onset": v.onset.astimezone(CHINA).isoformat() if v.onset else "",
            "mining_kw": f"{v.mining_kw:.1f}",
            "equivalent": v.equivalent,
            "explanation": "; ".join(v.explanation),
            "mining_kwh": f"{self.mining_kwh:.0f}",
            "co2_t": f"{self.co2_t:.2f}",
            "region_code": self.region_code,
            "declared_business": self.declared_business,
        }


@dataclass(slots=True)
class ScreenResult:
    """Every account's result and the run summary."""

    accounts: list[ScreenedAccount] = field(default_factory=list)
    summary: IngestSummary | None = None

    def counts(self) -> dict[str, int]:
        out = {"mining": 0, "suspect": 0, "normal": 0}
        for a in self.accounts:
            out[a.verdict.verdict] += 1
        return out


def _accounts_info(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None:
        return {}
    table = load_accounts(path)
    return {str(r["account_id"]): r for r in table.to_pylist()}


def _energy(v: AccountVerdict, features: dict[str, Any]) -> float:
    """Mining kWh in the window: mining kW times the hours it ran (from the onset, if any)."""
    if v.verdict == "normal" or v.mining_kw <= 0:
        return 0.0
    start: datetime = v.onset or features["first_ts"]
    end: datetime = features["last_ts"]
    hours = max((end - start).total_seconds() / 3600, 0.0)
    return v.mining_kw * hours


def screen(readings_path: Path, accounts_path: Path | None = None) -> ScreenResult:
    """Screen every account of ``readings_path`` (CSV or Parquet, see the input contract)."""
    loaded = load_readings(readings_path)
    features = compute_features(loaded.screenable())
    info = _accounts_info(accounts_path)
    factors = EmissionFactors.bundled()
    result = ScreenResult(summary=loaded.summary)
    for f in features.to_pylist():
        meta = info.get(str(f["account_id"]), {})
        contracted = meta.get("contracted_kw")
        business = str(meta.get("declared_business") or "")
        region = str(meta.get("region_code") or "")
        verdict = classify_account(
            f,
            contracted_kw=float(contracted) if contracted not in (None, "") else None,
            declared_business=business,
        )
        kwh = _energy(verdict, f)
        co2 = factors.tonnes_co2(kwh, region or "00")
        result.accounts.append(ScreenedAccount(verdict, kwh, co2, region, business))
    result.accounts.sort(key=lambda a: a.verdict.account_id)
    return result


def _csv_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
    """CSV as UTF-8 with a byte-order mark, so spreadsheet programs show Chinese text."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode("utf-8-sig")


def write_results(result: ScreenResult, path: Path) -> None:
    """One CSV row per account, written atomically."""
    rows = [[a.row()[c] for c in RESULT_COLUMNS] for a in result.accounts]
    atomic_write_bytes(path, _csv_bytes(list(RESULT_COLUMNS), rows))


def inspection_order(result: ScreenResult) -> list[ScreenedAccount]:
    """Accounts worth a visit (mining or suspect), by expected mining kW, largest first."""
    listed = [a for a in result.accounts if a.verdict.verdict != "normal"]
    return sorted(
        listed, key=lambda a: (-a.verdict.mining_kw * a.verdict.score, a.verdict.account_id)
    )


def write_inspection_list(result: ScreenResult, top: int, csv_path: Path, xlsx_path: Path) -> int:
    """The on-site inspection list (CSV and XLSX, bilingual headers); returns its length."""
    rows = inspection_order(result)[:top]
    headers = [("rank", "排序"), *[(c, _ZH.get(c, c)) for c in RESULT_COLUMNS]]
    titles = [f"{en} / {zh}" for en, zh in headers]
    table = [[i, *[a.row()[c] for c in RESULT_COLUMNS]] for i, a in enumerate(rows, 1)]
    # The list is for people: an account id or business name written like a formula stays text.
    atomic_write_bytes(csv_path, _csv_bytes(titles, [[csv_cell(v) for v in r] for r in table]))
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "inspection 现场检查"
    sheet.append(titles)
    for line in table:
        sheet.append(
            [line[0], *[_cell(c, v) for c, v in zip(RESULT_COLUMNS, line[1:], strict=True)]]
        )
        keep_text(sheet[sheet.max_row])
    buffer = io.BytesIO()
    book.save(buffer)
    atomic_write_bytes(xlsx_path, buffer.getvalue())
    return len(rows)


def _cell(column: str, value: str) -> Any:
    if column in ("score", "mining_kw", "mining_kwh", "co2_t"):
        number = float(value)
        return number if math.isfinite(number) else None
    return xlsx_value(value)


_ZH = {
    "account_id": "户号",
    "verdict": "结论",
    "score": "得分",
    "kind": "类型",
    "onset": "开始时间",
    "mining_kw": "挖矿负荷(kW)",
    "equivalent": "折合矿机",
    "explanation": "依据",
    "mining_kwh": "挖矿电量(kWh)",
    "co2_t": "二氧化碳(吨)",
    "region_code": "行政区划代码",
    "declared_business": "申报业务",
}
