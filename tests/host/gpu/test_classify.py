"""The GPU classifier on traces GENERATED from documented physical models (synthetic data).

No real NVML telemetry could be recorded where these tests were written (no GPU); every trace here
is produced by the models below and is labelled ``source="synthetic: ..."``. They are to be
replaced or augmented by real recordings made with ``scripts/gpu/record_telemetry.py`` (a PyTorch
training loop and a real SHA-256d kernel on an NVIDIA GPU), committed under ``tests/data/gpu``.

The models (what NVML would report, not what a detector wants to see):

* A workload is a sequence of phases (:class:`Timeline`), each with a kernel-busy flag, the power
  it would draw at its operating clock, the memory-controller load, and PCIe bytes.
* It is rendered on a 5 ms grid. The board's power controller lowers the SM clock when demand
  exceeds the enforced limit (dynamic power ∝ f^2.5, first-order lag of 20-200 ms); a slow thermal
  drift raises power by up to 3 % while the die warms.
* NVML's view: kernel-active and memory-controller utilisation averaged over the driver's sample
  period (1/6 s to 1 s, whole percent), power averaged over ~1 s (data-centre cards) or ~0.1 s, clocks
  read at the instant in 15 MHz bins, PCIe bytes per interval (byte counters) or over a 20 ms
  window (older drivers); power sensor noise 0.3-3 W.
* Miners: one stationary loop (busy 100 %, constant demand), memory-bound (memory controller
  80-100 %, DAG 3.5-6.5 GiB, core clock often locked low, memory clock raised) or compute-bound
  (memory controller 0-8 %, < 1.5 GiB), a power cap at 50-95 % of the default limit or none,
  work-unit traffic of at most a few kB/s; optionally one pool-failover dip of 3-30 s.
* Training: steps of 0.08-1.5 s (forward, backward, optimizer, optionally a data wait), step time
  jitter 0.5-5 %, demand 0.6-1.15 x the limit (so some runs sit at the cap), evaluation every
  20-300 s and checkpoints every 60-900 s, batches streamed host-to-device (vision: 2-200 MB per
  step; language models: token ids, 30 kB-2 MB), footprint from the model size and card.
* Inference: Poisson requests at 40-97 % of capacity, dynamic batching (up to 8-64 requests,
  0.2-3 ms host overhead between batches), power and memory load following the batch size,
  inputs 4 kB-1 MB per request, weights 0.5-40 GiB.

Every class of trace is drawn over these ranges by seed and window length (10 s at 0.5 s as the
probe samples by default, 60 s and 300 s at 1 s); the thresholds in ``classify.py`` were set from
physics before these tests and are not tuned to any single draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from minewatch.host.gpu.classify import (
    IDLE,
    MINING,
    NOT_MINING,
    TOO_SHORT,
    UNREADABLE,
    classify_trace,
    extract_features,
)
from minewatch.host.gpu.telemetry import GpuProcess, GpuTrace

DT = 0.005
"""Resolution of the physical model, s."""
GIB = float(1 << 30)
CLOCK_BIN_MHZ = 15.0
IDLE_CLOCK_FRACTION = 0.12


@dataclass(frozen=True)
class Card:
    """Published figures of common GPUs: default power limit, idle draw, max clocks, memory."""

    name: str
    limit_w: float
    idle_w: float
    max_sm: float
    max_mem: float
    mem_gib: float


CARDS = (
    Card("NVIDIA GeForce RTX 3070", 220.0, 20.0, 2100.0, 7001.0, 8.0),
    Card("NVIDIA GeForce RTX 3080", 320.0, 25.0, 2100.0, 9501.0, 10.0),
    Card("NVIDIA GeForce RTX 4090", 450.0, 25.0, 3105.0, 10501.0, 24.0),
    Card("NVIDIA L40S", 350.0, 35.0, 2520.0, 9001.0, 48.0),
    Card("NVIDIA A100-SXM4-80GB", 400.0, 60.0, 1410.0, 1593.0, 80.0),
    Card("NVIDIA H100 80GB HBM3", 700.0, 70.0, 1980.0, 2619.0, 80.0),
)
WINDOWS = ((10.0, 0.5), (60.0, 1.0), (300.0, 1.0))
"""(duration, interval): the probe's default window, and longer recordings."""


@dataclass
class Timeline:
    """Piecewise-constant workload phases; PCIe bursts are bytes delivered at a phase's start."""

    dur: list[float] = field(default_factory=list)
    busy: list[float] = field(default_factory=list)
    demand_w: list[float] = field(default_factory=list)
    mem_util: list[float] = field(default_factory=list)
    clock: list[float] = field(default_factory=list)
    """Operating clock as a share of max (a locked or idle clock); 1 = boost."""
    rx_burst: list[float] = field(default_factory=list)
    tx_burst: list[float] = field(default_factory=list)
    rx_rate: list[float] = field(default_factory=list)
    tx_rate: list[float] = field(default_factory=list)
    total: float = 0.0

    def add(
        self,
        dur: float,
        busy: float,
        demand_w: float,
        mem_util: float,
        *,
        clock: float = 1.0,
        rx_burst: float = 0.0,
        tx_burst: float = 0.0,
        rx_rate: float = 0.0,
        tx_rate: float = 0.0,
    ) -> None:
        if dur <= 0:
            return
        self.dur.append(dur)
        self.busy.append(busy)
        self.demand_w.append(demand_w)
        self.mem_util.append(mem_util)
        self.clock.append(clock)
        self.rx_burst.append(rx_burst)
        self.tx_burst.append(tx_burst)
        self.rx_rate.append(rx_rate)
        self.tx_rate.append(tx_rate)
        self.total += dur


PRE_S = 1.0
"""Model time before the first sample, so that the first averaging windows have history."""


def _lag(target: np.ndarray, tau_s: float) -> np.ndarray:
    """First-order lag of the clock controller, exact for a piecewise-constant target."""
    alpha = 1.0 - math.exp(-DT / tau_s)
    out = np.empty_like(target)
    # Run-length encode: the target is constant over long stretches, so step run by run.
    change = np.flatnonzero(np.diff(target)) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [target.size]))
    value = float(target[0])
    for a, b in zip(starts, ends, strict=True):
        goal = float(target[a])
        k = np.arange(1, b - a + 1)
        out[a:b] = goal + (value - goal) * (1.0 - alpha) ** k
        value = float(out[b - 1])
    return out


def render(
    tl: Timeline,
    card: Card,
    rng: np.random.Generator,
    *,
    duration_s: float,
    interval_s: float,
    footprint_gib: np.ndarray | float,
    cap_w: float | None = None,
    running_s: float = 3600.0,
    label: str,
    processes: list[GpuProcess] | None = None,
    mem_clock: float | None = None,
) -> GpuTrace:
    """What NVML reports for ``tl`` (which must cover ``PRE_S + duration_s`` seconds)."""
    assert tl.total >= PRE_S + duration_s - 1e-9, (tl.total, duration_s)
    n_fine = math.ceil((PRE_S + duration_s) / DT)
    mids = (np.arange(n_fine) + 0.5) * DT
    ends = np.cumsum(tl.dur)
    seg = np.minimum(np.searchsorted(ends, mids, side="right"), len(tl.dur) - 1)
    busy = np.asarray(tl.busy)[seg]
    demand = np.asarray(tl.demand_w)[seg].copy()
    mem_util = np.asarray(tl.mem_util)[seg]
    op_clock = np.asarray(tl.clock)[seg]

    # Thermal drift: leakage rises as the die warms after the job started (running_s ago).
    drift = rng.uniform(0.0, 0.03)
    tau = rng.uniform(60.0, 600.0)
    t_run = running_s - PRE_S + mids
    demand = card.idle_w + (demand - card.idle_w) * (1.0 + drift * (1.0 - np.exp(-t_run / tau)))
    demand *= 1.0 + rng.normal(0.0, 0.01, size=n_fine)  # kernel-level ripple

    limit = cap_w if cap_w is not None else card.limit_w
    over = demand > limit
    throttle = np.ones(n_fine)
    throttle[over] = ((limit - card.idle_w) / (demand[over] - card.idle_w)) ** 0.4
    clock = _lag(op_clock * throttle, rng.uniform(0.02, 0.2))
    ratio = np.clip(clock / np.maximum(op_clock, 1e-9), 0.0, 1.5)
    power = card.idle_w + (demand - card.idle_w) * ratio**2.5

    starts = np.floor((ends - np.asarray(tl.dur)) / DT).astype(int)
    rx = np.asarray(tl.rx_rate)[seg] * DT
    tx = np.asarray(tl.tx_rate)[seg] * DT
    inside = starts < n_fine
    np.add.at(rx, starts[inside], np.asarray(tl.rx_burst)[inside])
    np.add.at(tx, starts[inside], np.asarray(tl.tx_burst)[inside])

    util_window = round(rng.choice([1 / 6, 0.5, 1.0]) / DT)
    # Data-centre cards average power over ~1 s; older/consumer cards report ~instant readings.
    power_window = round(rng.choice([0.1, 1.0]) / DT)
    sensor_w = rng.uniform(0.3, 3.0)
    mem_util = mem_util + rng.normal(0.0, 3.0, size=n_fine) * (mem_util > 0)
    # Recent drivers keep PCIe byte counters (exact interval averages); older ones only a 20 ms
    # throughput window at the sample instant, which misses most bursty batch copies.
    counters = bool(rng.random() < 0.5)
    pcie_window = round((interval_s if counters else 0.02) / DT)
    t_s = np.arange(round(duration_s / interval_s)) * interval_s
    end = np.round((PRE_S + t_s) / DT).astype(int)

    def window_mean(values: np.ndarray, width: int) -> np.ndarray:
        csum = np.concatenate(([0.0], np.cumsum(values)))
        lo = np.maximum(end - width, 0)
        return np.asarray((csum[end] - csum[lo]) / (end - lo), dtype=np.float64)

    def window_sum(values: np.ndarray, width: int) -> np.ndarray:
        csum = np.concatenate(([0.0], np.cumsum(values)))
        return np.asarray(csum[end] - csum[np.maximum(end - width, 0)], dtype=np.float64)

    n = t_s.size
    at = np.minimum(end, n_fine - 1)
    footprint = np.broadcast_to(np.asarray(footprint_gib, dtype=float), (n,)) * GIB
    sm_clock = np.round(clock[at] * card.max_sm / CLOCK_BIN_MHZ) * CLOCK_BIN_MHZ
    base_mem_clock = mem_clock if mem_clock is not None else card.max_mem
    mem_clock_now = np.where(op_clock[at] < 0.5, 0.2 * card.max_mem, base_mem_clock)
    load = window_mean(power, power_window)
    return GpuTrace(
        index=0,
        name=card.name,
        uuid="GPU-synthetic-0000",
        interval_s=interval_s,
        t_s=np.asarray(t_s, dtype=np.float64),
        gpu_util_pct=np.round(100 * window_mean(busy, util_window)),
        mem_util_pct=np.round(window_mean(mem_util, util_window)),
        power_w=np.round(load + rng.normal(0.0, sensor_w, size=n), 3),
        sm_clock_mhz=sm_clock,
        mem_clock_mhz=mem_clock_now,
        mem_used_bytes=np.round(footprint),
        temperature_c=np.round(40 + 35 * (load - card.idle_w) / card.limit_w),
        pcie_rx_bytes_s=np.round(window_sum(rx, pcie_window) / (pcie_window * DT) / 1024) * 1024,
        pcie_tx_bytes_s=np.round(window_sum(tx, pcie_window) / (pcie_window * DT) / 1024) * 1024,
        mem_total_bytes=card.mem_gib * GIB,
        power_limit_w=limit,
        default_power_limit_w=card.limit_w,
        max_sm_clock_mhz=card.max_sm,
        max_mem_clock_mhz=card.max_mem,
        processes=processes if processes is not None else [GpuProcess(4242, None)],
        source=f"synthetic: {label}",
        label=label,
    )


def loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


# -- miners ---------------------------------------------------------------------------------------


def miner_trace(
    rng: np.random.Generator,
    *,
    duration_s: float,
    interval_s: float,
    algorithm: str = "memory",
    capped: bool | None = None,
    failover: bool = False,
    card: Card | None = None,
) -> GpuTrace:
    """A GPU miner in steady state: one kernel looping for hours (see the module docstring)."""
    if card is None:
        card = CARDS[int(rng.integers(len(CARDS)))]
    if capped is None:
        capped = bool(rng.random() < 0.5)
    cap_w = card.limit_w * rng.uniform(0.5, 0.95) if capped else None
    if algorithm == "memory":
        mem_level = rng.uniform(80, 100)
        footprint = min(rng.uniform(3.5, 6.5), card.mem_gib - 1.0)
        # Miner tuning: core clock locked low (or left alone), memory clock raised.
        clock = rng.uniform(0.5, 0.8) if rng.random() < 0.6 else 1.0
        demand = card.limit_w * rng.uniform(0.45, 0.9)
        mem_clock = card.max_mem * rng.uniform(1.0, 1.1)
    else:
        mem_level = rng.uniform(0, 8)
        footprint = rng.uniform(0.1, 1.5)
        clock = 1.0
        demand = card.limit_w * rng.uniform(0.6, 1.05)
        mem_clock = card.max_mem
    if cap_w is not None:
        demand = max(demand, cap_w * rng.uniform(1.0, 1.2))  # a cap is set to bite
    tl = Timeline()
    total = PRE_S + duration_s
    job_every = rng.uniform(2.0, 30.0)  # a new work unit from the pool every few seconds

    def mine(length: float) -> None:
        remaining = length
        while remaining > 1e-9:
            span = min(job_every, remaining)
            tl.add(span, 1.0, demand, mem_level, clock=clock, rx_burst=rng.uniform(300, 4000))
            remaining -= span

    if failover:
        dip_at = PRE_S + rng.uniform(0.2, 0.6) * duration_s
        dip_len = min(rng.uniform(3.0, 30.0), 0.25 * duration_s)
        mine(dip_at)
        tl.add(dip_len, 0.0, card.idle_w, 0.0, clock=IDLE_CLOCK_FRACTION)
        mine(total - dip_at - dip_len)
    else:
        mine(total)
    return render(
        tl,
        card,
        rng,
        duration_s=duration_s,
        interval_s=interval_s,
        footprint_gib=footprint,
        cap_w=cap_w,
        running_s=rng.uniform(PRE_S + 5.0, 7200.0),
        label=f"{algorithm}-bound miner" + (" with failover" if failover else ""),
        mem_clock=mem_clock,
    )


# -- training -------------------------------------------------------------------------------------


def training_trace(
    rng: np.random.Generator,
    *,
    duration_s: float,
    interval_s: float,
    kind: str = "vision",
    overlapped: bool = True,
    card: Card | None = None,
    from_start: bool = False,
) -> GpuTrace:
    """A training job: step phases, evaluation and checkpoint gaps, batches over PCIe."""
    if card is None:
        card = CARDS[int(rng.integers(2, len(CARDS)))]  # 24 GB and larger
    step = loguniform(rng, 0.08, 1.5)
    jitter = rng.uniform(0.005, 0.05)
    p_hi = card.limit_w * rng.uniform(0.6, 1.15)
    p_fwd = card.idle_w + (p_hi - card.idle_w) * rng.uniform(0.75, 0.95)
    p_opt = card.idle_w + (p_hi - card.idle_w) * rng.uniform(0.3, 0.6)
    m_fwd, m_bwd, m_opt = rng.uniform(20, 50), rng.uniform(25, 55), rng.uniform(70, 95)
    opt_frac = rng.uniform(0.02, 0.10)
    wait_frac = 0.0 if overlapped else rng.uniform(0.02, 0.15)
    if kind == "vision":
        batch_bytes = loguniform(rng, 2e6, 2e8)
        footprint = rng.uniform(3.0, 0.9 * card.mem_gib)
    else:
        batch_bytes = loguniform(rng, 3e4, 2e6)
        footprint = rng.uniform(8.0, 0.95 * card.mem_gib)
    weights_bytes = footprint * GIB * rng.uniform(0.05, 0.3)
    eval_every, eval_len = rng.uniform(20, 300), rng.uniform(2, 20)
    ckpt_every, ckpt_len = rng.uniform(60, 900), rng.uniform(2, 30)
    offset = 0.0 if from_start else rng.uniform(0, 3600)
    next_eval = eval_every - (offset % eval_every)
    next_ckpt = ckpt_every - (offset % ckpt_every)
    tl = Timeline()
    total = PRE_S + duration_s
    while tl.total < total:
        t = tl.total
        if t >= next_ckpt:
            tl.add(ckpt_len, 0.02, card.idle_w * 1.3, 5.0, tx_rate=3 * weights_bytes / ckpt_len)
            next_ckpt += ckpt_every
            continue
        if t >= next_eval:
            end = t + eval_len
            while tl.total < end:
                fwd = step / 3 * (1 + rng.normal(0, jitter))
                tl.add(fwd, 1.0, p_fwd, m_fwd, rx_burst=batch_bytes)
                tl.add(fwd * rng.uniform(0.1, 1.0), 0.0, card.idle_w * 1.2, 0.0)
            next_eval += eval_every
            continue
        this = step * (1 + rng.normal(0, jitter))
        compute = this * (1 - opt_frac - wait_frac)
        tl.add(compute / 3, 1.0, p_fwd, m_fwd, rx_burst=batch_bytes)
        tl.add(compute * 2 / 3, 1.0, p_hi, m_bwd)
        tl.add(this * opt_frac, 1.0, p_opt, m_opt)
        tl.add(this * wait_frac, 0.0, card.idle_w * 1.2, 0.0)
    n = round(duration_s / interval_s)
    if from_start:
        ramp = rng.uniform(5.0, 30.0)
        t_s = np.arange(n) * interval_s
        footprint_series = footprint * np.minimum(1.0, 0.1 + t_s / ramp)
    else:
        footprint_series = np.full(n, footprint)
    return render(
        tl,
        card,
        rng,
        duration_s=duration_s,
        interval_s=interval_s,
        footprint_gib=footprint_series,
        running_s=(PRE_S + 1.0) if from_start else offset + 60.0,
        label=f"{kind} training",
    )


# -- inference ------------------------------------------------------------------------------------


def inference_trace(
    rng: np.random.Generator,
    *,
    duration_s: float,
    interval_s: float,
    card: Card | None = None,
) -> GpuTrace:
    """An inference server at steady load: Poisson requests, dynamic batching, inputs over PCIe."""
    if card is None:
        card = CARDS[int(rng.integers(2, len(CARDS)))]
    b_max = int(rng.integers(8, 65))
    t0 = rng.uniform(0.002, 0.010)
    t1 = rng.uniform(0.0001, 0.002)
    gap = rng.uniform(0.0002, 0.003)
    load = rng.uniform(0.4, 0.97)
    capacity = b_max / (t0 + t1 * b_max + gap)  # requests/s at full batches
    rate = load * capacity
    in_bytes = loguniform(rng, 4e3, 1e6)
    out_bytes = loguniform(rng, 1e3, 2e5)
    p_hi = card.limit_w * rng.uniform(0.5, 1.0)
    footprint = min(rng.uniform(0.5, 40.0), 0.9 * card.mem_gib) + rng.uniform(0.5, 2.0)
    total = PRE_S + duration_s
    arrivals = np.cumsum(rng.exponential(1.0 / rate, size=int(rate * total * 1.2) + 100))
    tl = Timeline()
    head = 0
    while tl.total < total:
        t = tl.total
        waiting = int(np.searchsorted(arrivals, t, side="right")) - head
        if waiting <= 0:
            idle = max(float(arrivals[head]) - t, DT / 5)
            tl.add(idle, 0.0, card.idle_w * 1.1, 0.0)
            continue
        b = min(waiting, b_max)
        head += b
        share = 0.4 + 0.6 * min(1.0, b / b_max)
        tl.add(
            t0 + t1 * b,
            1.0,
            card.idle_w + (p_hi - card.idle_w) * share,
            30 + 50 * share,
            rx_burst=b * in_bytes,
            tx_burst=b * out_bytes,
        )
        tl.add(gap, 0.0, card.idle_w * 1.2, 0.0)
    return render(
        tl,
        card,
        rng,
        duration_s=duration_s,
        interval_s=interval_s,
        footprint_gib=footprint,
        label="inference server",
    )


# -- the sweeps -----------------------------------------------------------------------------------

SEEDS = range(24)


def _window(seed: int) -> tuple[float, float]:
    return WINDOWS[seed % len(WINDOWS)]


def _explain(trace: GpuTrace) -> str:
    verdict = classify_trace(trace)
    return f"{trace.label} on {trace.name}: {verdict.state} {verdict.score:.2f}\n" + "\n".join(
        verdict.evidence
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("algorithm", ["memory", "compute"])
def test_steady_miners_are_mining(seed: int, algorithm: str) -> None:
    rng = np.random.default_rng(1000 + seed)
    duration, interval = _window(seed)
    trace = miner_trace(rng, duration_s=duration, interval_s=interval, algorithm=algorithm)
    verdict = classify_trace(trace)
    assert verdict.state == MINING, _explain(trace)
    assert verdict.profile == ("memory-bound" if algorithm == "memory" else "compute-bound")
    assert 0.5 <= verdict.confidence <= 1.0


@pytest.mark.parametrize("seed", SEEDS)
def test_miner_with_one_failover_dip_is_mining(seed: int) -> None:
    rng = np.random.default_rng(2000 + seed)
    duration = (60.0, 120.0, 300.0)[seed % 3]
    trace = miner_trace(rng, duration_s=duration, interval_s=1.0, failover=True)
    verdict = classify_trace(trace)
    assert extract_features(trace).dip_episodes == 1
    assert verdict.state == MINING, _explain(trace)
    assert any("one dip" in line for line in verdict.evidence)


@pytest.mark.parametrize("seed", SEEDS)
def test_miner_at_power_cap_is_mining(seed: int) -> None:
    rng = np.random.default_rng(3000 + seed)
    duration, interval = _window(seed)
    trace = miner_trace(rng, duration_s=duration, interval_s=interval, capped=True)
    verdict = classify_trace(trace)
    assert verdict.state == MINING, _explain(trace)
    assert trace.power_limit_w is not None
    assert any("power cap" in line for line in verdict.evidence)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("overlapped", [True, False])
def test_vision_training_is_not_mining(seed: int, overlapped: bool) -> None:
    rng = np.random.default_rng(4000 + seed)
    duration, interval = _window(seed)
    trace = training_trace(
        rng, duration_s=duration, interval_s=interval, kind="vision", overlapped=overlapped
    )
    verdict = classify_trace(trace)
    assert verdict.state in (NOT_MINING, IDLE), _explain(trace)


@pytest.mark.parametrize("seed", SEEDS)
def test_language_model_training_is_not_mining(seed: int) -> None:
    rng = np.random.default_rng(5000 + seed)
    duration, interval = _window(seed)
    trace = training_trace(rng, duration_s=duration, interval_s=interval, kind="llm")
    assert classify_trace(trace).state in (NOT_MINING, IDLE), _explain(trace)


@pytest.mark.parametrize("seed", range(8))
def test_training_from_start_is_not_mining(seed: int) -> None:
    rng = np.random.default_rng(6000 + seed)
    trace = training_trace(
        rng, duration_s=60.0, interval_s=1.0, kind=("vision", "llm")[seed % 2], from_start=True
    )
    assert classify_trace(trace).state in (NOT_MINING, IDLE), _explain(trace)


@pytest.mark.parametrize("seed", SEEDS)
def test_inference_at_steady_load_is_not_mining(seed: int) -> None:
    rng = np.random.default_rng(7000 + seed)
    duration, interval = _window(seed)
    trace = inference_trace(rng, duration_s=duration, interval_s=interval)
    assert classify_trace(trace).state in (NOT_MINING, IDLE), _explain(trace)


# -- single signs ---------------------------------------------------------------------------------


def _steady_miner(seed: int = 11, duration: float = 120.0) -> GpuTrace:
    rng = np.random.default_rng(seed)
    return miner_trace(
        rng, duration_s=duration, interval_s=1.0, algorithm="memory", card=CARDS[1], capped=False
    )


def test_training_at_full_load_with_gaps_and_pcie_names_both_signs() -> None:
    """The hard case: ~100 % busy, overlapped loading, but evaluation gaps and batch traffic."""
    rng = np.random.default_rng(42)
    card = CARDS[-1]
    trace = training_trace(rng, duration_s=600.0, interval_s=1.0, kind="vision", card=card)
    f = extract_features(trace)
    verdict = classify_trace(trace)
    assert f.util_median >= 95
    assert verdict.state == NOT_MINING
    text = "\n".join(verdict.evidence)
    assert "PCIe host-to-GPU traffic" in text
    assert f.dip_episodes >= 2
    assert "separate dips" in text


def test_streaming_data_to_a_flat_kernel_vetoes_mining() -> None:
    trace = _steady_miner()
    assert classify_trace(trace).state == MINING
    trace.pcie_rx_bytes_s = np.full(trace.n_samples, 300e6)
    verdict = classify_trace(trace)
    assert verdict.state == NOT_MINING
    assert any("300.0 MB/s" in line for line in verdict.evidence)


def test_footprint_larger_than_any_dag_vetoes_mining() -> None:
    trace = _steady_miner()
    trace.mem_used_bytes = np.full(trace.n_samples, 30 * GIB)
    verdict = classify_trace(trace)
    assert verdict.state == NOT_MINING
    assert any("30.0 GiB" in line for line in verdict.evidence)


def test_footprint_changing_inside_the_window_vetoes_mining() -> None:
    trace = _steady_miner()
    trace.mem_used_bytes = np.linspace(4, 7, trace.n_samples) * GIB
    assert classify_trace(trace).state == NOT_MINING


def test_second_dip_turns_a_failover_into_a_rhythm() -> None:
    trace = _steady_miner(duration=300.0)
    for start in (60, 200):
        trace.gpu_util_pct[start : start + 8] = 0.0
        trace.power_w[start : start + 8] = 30.0
    f = extract_features(trace)
    assert f.dip_episodes == 2
    verdict = classify_trace(trace)
    assert verdict.state == NOT_MINING
    assert any("2 separate dips" in line for line in verdict.evidence)


def test_power_stepping_between_phases_is_not_stationary() -> None:
    trace = _steady_miner()
    level = float(np.median(trace.power_w))
    rng = np.random.default_rng(5)
    trace.power_w = level * (1 + rng.choice([-0.05, 0.0, 0.05], size=trace.n_samples))
    verdict = classify_trace(trace)
    assert verdict.state == NOT_MINING
    assert any(line.startswith("power varies") for line in verdict.evidence)


def test_evidence_states_the_measured_numbers() -> None:
    trace = _steady_miner()
    f = extract_features(trace)
    text = "\n".join(classify_trace(trace).evidence)
    assert f"{f.util_median:.0f} %" in text
    assert f"{f.power_median_w:.0f} W" in text
    assert f"{f.pcie_rx_mb_s:.2f} MB/s" in text
    assert f"over {trace.duration_s:.0f} s" in text


def test_longer_window_gives_more_confidence() -> None:
    short = classify_trace(_steady_miner(duration=10.0))
    long = classify_trace(_steady_miner(duration=300.0))
    assert short.state == long.state == MINING
    assert long.confidence > short.confidence


def test_idle_gpu_is_idle() -> None:
    trace = _steady_miner()
    trace.gpu_util_pct[:] = 3.0
    assert classify_trace(trace).state == IDLE


def test_too_short_trace_is_reported_not_guessed() -> None:
    trace = _steady_miner().window(0.0, 3.0)
    verdict = classify_trace(trace)
    assert verdict.state == TOO_SHORT
    assert "too short" in verdict.evidence[0]


def test_unreadable_utilisation_is_reported() -> None:
    trace = _steady_miner()
    trace.gpu_util_pct[:] = np.nan
    assert classify_trace(trace).state == UNREADABLE


def test_features_tolerate_missing_optional_series() -> None:
    trace = _steady_miner()
    trace.pcie_rx_bytes_s[:] = np.nan
    trace.pcie_tx_bytes_s[:] = np.nan
    trace.sm_clock_mhz[:] = np.nan
    f = extract_features(trace)
    assert math.isnan(f.pcie_rx_mb_s)
    assert classify_trace(trace).state == MINING
