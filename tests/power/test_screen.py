"""`minewatch power screen` end to end on the bundled sample (real simbench/cluster-trace loads
beside modelled mining, see data/sample/README.md) and on damaged input."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner
from openpyxl import load_workbook

from minewatch.cli import cli
from minewatch.power.evaluation import score
from minewatch.power.screen import RESULT_COLUMNS, screen
from minewatch.sample import power_sample


def labels() -> dict[str, dict[str, str]]:
    path = power_sample()[0].with_name("power-labels.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        return {r["account_id"]: r for r in csv.DictReader(fh)}


def test_sample_verdicts_match_the_labels() -> None:
    readings, accounts = power_sample()
    result = screen(readings, accounts)
    ev = score(result, labels())
    assert ev.tp + ev.fn == sum(r["label"] == "mining" for r in labels().values())
    assert ev.fp == 0, ev.report()
    assert ev.fn == 0, ev.report()
    assert ev.onset_errors_days and max(ev.onset_errors_days) <= 1.0, ev.report()
    assert result.summary is not None and result.summary.duplicates_dropped.count > 0


def test_cli_writes_results_and_inspection_list(tmp_path: Path) -> None:
    out = tmp_path / "screen.csv"
    run = CliRunner().invoke(
        cli, ["power", "screen", "--sample", "--out", str(out), "--inspect-top", "3"]
    )
    assert run.exit_code == 0, run.output
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == RESULT_COLUMNS
    assert len(rows) == len(labels())
    mining = [r for r in rows if r["verdict"] == "mining"]
    assert all(float(r["mining_kw"]) > 0 and "S19-class" in r["equivalent"] for r in mining)
    assert all(float(r["co2_t"]) > 0 for r in mining)
    for r in rows:
        if r["onset"]:
            assert datetime.fromisoformat(r["onset"]).utcoffset() is not None
    sheet = load_workbook(tmp_path / "screen-inspect.xlsx").active
    assert sheet is not None
    header = [c.value for c in sheet[1]]
    assert header[0] == "rank / 排序" and "verdict / 结论" in header
    assert sheet.max_row == 4
    kws = [
        sheet.cell(row=i, column=header.index("mining_kw / 挖矿负荷(kW)") + 1).value
        for i in (2, 3, 4)
    ]
    assert all(isinstance(k, int | float) and k > 0 for k in kws)
    assert "mining" in run.stderr and "duplicates dropped" in run.stderr


def test_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("account_id,ts,power\nA,2026-03-01T00:00:00+08:00,5\n")
    run = CliRunner().invoke(cli, ["power", "screen", str(bad), "--out", str(tmp_path / "o.csv")])
    assert run.exit_code == 1
    assert "kw" in run.stderr and "bad.csv" in run.stderr
    assert "Traceback" not in run.output
    assert not (tmp_path / "o.csv").exists()
