"""Tell a GPU mining kernel from AI training and inference by how the card behaves over time.

Both a miner and a trainer keep a GPU "100 % busy" (NVML counts any resident kernel as busy), so
the busy figure alone proves nothing. What differs is the *shape* of the work:

* **A mining kernel is one stationary loop.** Ethash/Etchash, KawPow, Autolykos2 and Octopus read
  a multi-gigabyte data set (DAG) at random, so the memory controller is pinned high and flat;
  SHA-256d, Blake and kHeavyHash are pure integer arithmetic, so the memory controller is nearly
  idle and the SMs are pinned. Either way the same instructions run for hours: board power,
  memory-controller load and SM clock sit flat (sample-to-sample change of the order of the
  sensor's resolution, ~1 W on hundreds of watts), often at a user-set power cap below the card's
  default, with the core clock lowered and the memory clock raised (the usual miner tuning). The
  whole job lives on the GPU: the host sends a ≤ 1 kB work unit every few seconds and reads back
  found nonces, so PCIe traffic is near zero, and the memory footprint is small and fixed (the
  largest DAGs of coins mined on GPUs are about 4-6 GB; SHA-256-type miners need megabytes).
  Only a pool failover, a restart or a new DAG epoch interrupts it: one dip, not a rhythm.
* **Training alternates phases.** Forward, backward, optimizer step, data wait, logging and
  gradient synchronisation have different arithmetic intensity, so power, memory-controller load
  and (under a power cap) the SM clock move from one sample to the next; evaluation and
  checkpoints make repeated gaps; batches are streamed host-to-device over PCIe; the footprint is
  large (weights, optimizer state, activations) and grows at start-up before it plateaus.
* **Inference follows requests.** Load rises and falls with arrivals and batch sizes, inputs and
  outputs cross PCIe, and the model weights occupy a large footprint.

The classifier computes independent features (:class:`GpuFeatures`) and decides from them, each
with a human-readable evidence line:

* *busy*: kernel-active share near 100 %;
* *stationary*: power jitter and spread, memory-controller jitter and SM-clock jitter all small
  (with a floor of a few watts, since NVIDIA documents board power as accurate to ±5 W);
* *proof-of-work shape*: the memory controller either saturated, as memory-hard algorithms are
  designed to make it, or nearly idle, as in a pure hashing loop. Training and inference mix
  matrix arithmetic with tensor traffic and sit in between. This sign matters because NVML
  averages power over about a second, which can smooth a short training step's phases away;
* no contrary sign: repeated gaps, host-to-GPU streaming, a footprint larger than any
  proof-of-work data set, a footprint that changes inside the window.

Supporting signs (quiet PCIe, small footprint, lowered power cap, lowered core clock) raise the
confidence but never decide alone.

Where the thresholds come from: the physical descriptions above (public descriptions of the
algorithms and of miners' tuning, NVIDIA's NVML documentation of what each counter measures and
how it averages) and the resolution of each counter, with margins; they were **not** fitted to
data. They were checked on traces *generated* from documented physical models
(``tests/host/gpu/test_classify.py``: miners memory- and compute-bound, capped or not, with a
failover dip; vision and language-model training; inference servers; six cards from RTX 3070 to
H100; windows of 10 s to 5 min) over parameter sweeps, where every draw was classified right. The
same sweeps show how much rests on each sign: without the proof-of-work shape, about one draw in
twenty of language-model training seen through 10-60 s windows (short steps, data already on the
GPU, no evaluation in the window) would look like mining, and one in 150 of vision training.
They are to be checked on real NVML recordings of PyTorch training and of a real SHA-256d kernel
made with ``scripts/gpu/record_telemetry.py``.

Known limits, said plainly: a small model trained or served from data already on the GPU, with a
constant batch, no evaluation or checkpoint inside the window and a memory-controller load at one
of the two extremes (e.g. small-batch LLM decoding, which is bandwidth-bound) can be as flat as a
miner over a short window; lawful hashing on GPUs (password auditing) has the physics of a
SHA-256d miner and is reported like one; a miner that pads its memory, streams junk over PCIe or
varies its own intensity on purpose can hide from telemetry. The probe therefore names the
processes behind a finding, and the other host probes (process names, binaries, pool sockets)
remain the primary evidence.

Example::

    from minewatch.host.gpu.classify import classify_trace
    from minewatch.host.gpu.telemetry import GpuTrace

    verdict = classify_trace(GpuTrace.load("sha256d.trace.json"))
    print(verdict.state, round(verdict.confidence, 2), *verdict.evidence, sep="\\n")
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from minewatch.host.gpu.telemetry import FloatArray, GpuTrace

__all__ = [
    "GIB",
    "IDLE",
    "MINING",
    "MIN_SAMPLES",
    "NOT_MINING",
    "TOO_SHORT",
    "UNREADABLE",
    "GpuFeatures",
    "GpuVerdict",
    "classify_trace",
    "extract_features",
]

MINING: Final = "mining"
NOT_MINING: Final = "not-mining"
"""Busy, but not the way a mining kernel is busy (training, inference, rendering...)."""
IDLE: Final = "idle"
TOO_SHORT: Final = "too-short"
UNREADABLE: Final = "unreadable"

GIB: Final = float(1 << 30)
MIN_SAMPLES: Final = 6
MIN_DURATION_S: Final = 3.0

DIP_UTIL_POINTS: Final = 20.0
"""A sample whose kernel-active share is this far below the trace's median is a dip."""
DIP_POWER_RATIO: Final = 0.85
"""... or whose power is below this share of the median (evaluation, checkpoint, failover)."""
IDLE_UTIL_PCT: Final = 50.0
"""Below this median kernel-active share the GPU is not running one continuous kernel."""

# Ramps: (value where the sign is fully present, value where it is fully absent).
BUSY = (95.0, 85.0)
"""Median kernel-active share, %: a miner keeps a kernel resident at all times (100 %)."""
POWER_JITTER = (0.01, 0.03)
"""Median |sample-to-sample power change| / median power: ~1 W sensor steps vs phase changes."""
POWER_SPREAD = (0.03, 0.08)
"""Robust CV of power: allows slow thermal drift (leakage rises a few % as the die warms)."""
POWER_SENSOR_W = (2.5, 7.5)
"""Floors of the power ramps in watts: NVIDIA documents board power as accurate to ±5 W, so on a
card drawing ~100 W a few-watt wobble is the sensor, not the workload."""
MEM_UTIL_JITTER = (2.0, 6.0)
"""Median |change| of memory-controller utilisation, points (NVML reports whole percent)."""
CLOCK_JITTER = (0.01, 0.03)
"""Median |change| of the SM clock / median: one 15 MHz boost bin is <1 % of a modern clock."""
PCIE_STREAM_MB_S = (20.0, 50.0)
"""Median host-to-GPU traffic, MB/s, from which the GPU is being fed data (veto ramp)."""
PCIE_QUIET_MB_S = (2.0, 10.0)
"""... and up to which it is quiet (supporting sign)."""
FOOTPRINT_VETO_GIB = (10.0, 16.0)
"""Device memory in use, GiB: beyond every proof-of-work data set mined on GPUs (≤ ~6 GB)."""
FOOTPRINT_SMALL_GIB = (8.0, 10.0)
FOOTPRINT_CHANGE_GIB = (0.25, 1.0)
"""Change of the footprint inside the window (after the first 10 %): a DAG is allocated once."""
MEMORY_HARD = (70.0, 55.0)
"""Median memory-controller utilisation, %, of a memory-hard proof of work (saturated by design)."""
HASH_LOOP = (12.0, 25.0)
"""... and of a pure integer-hashing loop (nearly idle); training and inference sit in between."""
CAP_BELOW_DEFAULT = 0.95
"""An enforced power limit below this share of the default limit is a user-set cap."""
CORE_UNDERCLOCK = (0.80, 0.90)
"""SM clock / max while under the power limit: lowered core clock (miner tuning), supporting."""
MINING_SCORE: Final = 0.5


@dataclass(frozen=True, slots=True)
class GpuFeatures:
    """What :func:`classify_trace` decides on; NaN where the card did not report the series.

    "Steady" samples are the ones that are not dips (see :data:`DIP_UTIL_POINTS`); jitter
    figures use consecutive steady samples only, so one failover dip does not count as jitter.
    """

    duration_s: float
    samples: int
    util_median: float
    dip_share: float
    dip_episodes: int
    longest_dip_s: float
    power_median_w: float
    power_jitter: float
    power_spread: float
    mem_util_median: float
    mem_util_jitter: float
    sm_clock_median_mhz: float
    sm_clock_jitter: float
    mem_clock_median_mhz: float
    pcie_rx_mb_s: float
    pcie_tx_mb_s: float
    mem_used_gib: float
    mem_used_change_gib: float
    mem_total_gib: float
    power_limit_w: float
    default_power_limit_w: float
    max_sm_clock_mhz: float
    max_mem_clock_mhz: float


@dataclass(slots=True)
class GpuVerdict:
    """The classifier's answer for one GPU trace.

    ``state`` is one of :data:`MINING`, :data:`NOT_MINING`, :data:`IDLE`, :data:`TOO_SHORT`,
    :data:`UNREADABLE`; ``score`` in [0, 1] is the strength of the mining pattern (≥ 0.5 is
    mining); ``confidence`` is meaningful for mining verdicts; ``profile`` names the kind of kernel
    ("memory-bound", "compute-bound", "mixed") when the GPU is busy.
    """

    state: str
    score: float
    confidence: float
    profile: str | None
    features: GpuFeatures
    evidence: list[str] = field(default_factory=list)

    @property
    def is_mining(self) -> bool:
        return self.state == MINING


def _finite(values: FloatArray) -> FloatArray:
    return values[np.isfinite(values)]


def _median(values: FloatArray) -> float:
    finite = _finite(values)
    return float(np.median(finite)) if finite.size else math.nan


def _mean(values: FloatArray) -> float:
    finite = _finite(values)
    return float(np.mean(finite)) if finite.size else math.nan


def _jitter(values: FloatArray, steady: np.ndarray, relative: bool) -> float:
    """Median absolute change between consecutive steady samples (relative to the median)."""
    pairs = steady[1:] & steady[:-1] & np.isfinite(values[1:]) & np.isfinite(values[:-1])
    if int(pairs.sum()) < 3:
        return math.nan
    change = float(np.median(np.abs(np.diff(values))[pairs]))
    if not relative:
        return change
    level = _median(values[steady])
    return change / level if level > 0 else math.nan


def _robust_cv(values: FloatArray) -> float:
    finite = _finite(values)
    if finite.size < 3:
        return math.nan
    level = float(np.median(finite))
    if level <= 0:
        return math.nan
    return 1.4826 * float(np.median(np.abs(finite - level))) / level


def _opt(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _episodes(mask: np.ndarray) -> tuple[int, int]:
    """Number of runs of True in ``mask`` and the length of the longest one."""
    if not mask.any():
        return 0, 0
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.diff(padded)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return int(starts.size), int((ends - starts).max())


def extract_features(trace: GpuTrace) -> GpuFeatures:
    """Compute the features of one trace (pure arithmetic on the series, no I/O)."""
    util = trace.gpu_util_pct
    power = trace.power_w
    util_median = _median(util)
    power_median = _median(power)
    dip = np.zeros(trace.n_samples, dtype=bool)
    if math.isfinite(util_median):
        dip |= np.isfinite(util) & (util < util_median - DIP_UTIL_POINTS)
    if math.isfinite(power_median) and power_median > 0:
        dip |= np.isfinite(power) & (power < DIP_POWER_RATIO * power_median)
    steady = ~dip
    episodes, longest = _episodes(dip)

    # The footprint is compared over steady samples after the first 10 %: a miner that restarts
    # during a failover frees and re-allocates its data set inside the dip, not outside it.
    used = trace.mem_used_bytes
    later = np.arange(used.size) >= (math.ceil(0.1 * used.size) if used.size >= 10 else 0)
    settled = _finite(used[later & steady])
    change = float(settled.max() - settled.min()) / GIB if settled.size else math.nan

    return GpuFeatures(
        duration_s=trace.duration_s,
        samples=trace.n_samples,
        util_median=util_median,
        dip_share=float(dip.mean()) if trace.n_samples else math.nan,
        dip_episodes=episodes,
        longest_dip_s=longest * trace.interval_s,
        power_median_w=_median(power[steady]),
        power_jitter=_jitter(power, steady, relative=True),
        power_spread=_robust_cv(power[steady]),
        mem_util_median=_median(trace.mem_util_pct[steady]),
        mem_util_jitter=_jitter(trace.mem_util_pct, steady, relative=False),
        sm_clock_median_mhz=_median(trace.sm_clock_mhz[steady]),
        sm_clock_jitter=_jitter(trace.sm_clock_mhz, steady, relative=True),
        mem_clock_median_mhz=_median(trace.mem_clock_mhz[steady]),
        pcie_rx_mb_s=_mean(trace.pcie_rx_bytes_s) / 1e6,
        pcie_tx_mb_s=_mean(trace.pcie_tx_bytes_s) / 1e6,
        mem_used_gib=_median(used[steady]) / GIB,
        mem_used_change_gib=change,
        mem_total_gib=_opt(trace.mem_total_bytes) / GIB,
        power_limit_w=_opt(trace.power_limit_w),
        default_power_limit_w=_opt(trace.default_power_limit_w),
        max_sm_clock_mhz=_opt(trace.max_sm_clock_mhz),
        max_mem_clock_mhz=_opt(trace.max_mem_clock_mhz),
    )


def _present(value: float, ramp: tuple[float, float]) -> float | None:
    """Strength in [0, 1] of a sign: 1 at ``ramp[0]`` or beyond, 0 at ``ramp[1]`` or beyond.

    Works for rising and falling ramps alike; ``None`` when the feature is not available.
    """
    if not math.isfinite(value):
        return None
    full, absent = ramp
    t = (value - absent) / (full - absent)
    return min(1.0, max(0.0, t))


def _power_ramp(ramp: tuple[float, float], level_w: float) -> tuple[float, float]:
    """A relative power ramp, widened where the sensor's resolution exceeds it (small cards)."""
    if not (math.isfinite(level_w) and level_w > 0):
        return ramp
    return (
        max(ramp[0], POWER_SENSOR_W[0] / level_w),
        max(ramp[1], POWER_SENSOR_W[1] / level_w),
    )


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _profile(f: GpuFeatures) -> str | None:
    hard = _present(f.mem_util_median, MEMORY_HARD)
    hashing = _present(f.mem_util_median, HASH_LOOP)
    if hard is None or hashing is None:
        return None
    if hard >= 0.5:
        return "memory-bound"
    if hashing >= 0.5:
        return "compute-bound"
    return "mixed"


_PROFILE_TEXT: Final = {
    "memory-bound": "memory-bound kernel (Ethash/Etchash/KawPow/Autolykos2/Octopus-like)",
    "compute-bound": "compute-bound kernel (SHA-256d/Blake/kHeavyHash-like)",
    "mixed": "kernel with mixed memory and arithmetic load",
}


def classify_trace(trace: GpuTrace) -> GpuVerdict:
    """Classify one GPU trace; see the module docstring for the physics and the limits."""
    f = extract_features(trace)
    window = f"over {f.duration_s:.0f} s ({f.samples} samples)"
    if f.samples < MIN_SAMPLES or f.duration_s < MIN_DURATION_S:
        return GpuVerdict(
            TOO_SHORT,
            0.0,
            0.0,
            None,
            f,
            [f"trace too short to judge: {f.samples} samples over {f.duration_s:.1f} s"],
        )
    if not math.isfinite(f.util_median) or not (
        math.isfinite(f.power_median_w) or math.isfinite(f.mem_util_median)
    ):
        return GpuVerdict(
            UNREADABLE,
            0.0,
            0.0,
            None,
            f,
            ["utilisation or power not readable on this GPU (MIG mode or unsupported card?)"],
        )
    if f.util_median < IDLE_UTIL_PCT:
        idle = f"GPU mostly idle: kernel-active median {f.util_median:.0f} %"
        return GpuVerdict(IDLE, 0.0, 0.0, None, f, [idle])

    evidence: list[str] = []
    against: list[str] = []

    busy = _present(f.util_median, BUSY) or 0.0
    line = f"kernel-active utilisation median {f.util_median:.0f} % {window}"
    (evidence if busy >= 0.5 else against).append(
        ("GPU busy without pause: " if busy >= 0.5 else "not continuously busy: ") + line
    )

    stationary: list[float] = []
    power_parts = [
        s
        for s in (
            _present(f.power_jitter, _power_ramp(POWER_JITTER, f.power_median_w)),
            _present(f.power_spread, _power_ramp(POWER_SPREAD, f.power_median_w)),
        )
        if s is not None
    ]
    # Each sign: its strength, the words for steady and moving, and the line that reports it.
    for strength, (steady, moving), text, values in (
        (
            min(power_parts) if power_parts else None,
            ("flat", "varies"),
            "power {} around {:.0f} W: sample-to-sample change {}, spread (robust CV) {}",
            (f.power_median_w, _pct(f.power_jitter), _pct(f.power_spread)),
        ),
        (
            _present(f.mem_util_jitter, MEM_UTIL_JITTER),
            ("flat", "varies"),
            "memory-controller utilisation {} at {:.0f} % (median change {:.1f} points)",
            (f.mem_util_median, f.mem_util_jitter),
        ),
        (
            _present(f.sm_clock_jitter, CLOCK_JITTER),
            ("steady", "moves"),
            "SM clock {} around {:.0f} MHz (median change {})",
            (f.sm_clock_median_mhz, _pct(f.sm_clock_jitter)),
        ),
    ):
        if strength is not None:
            stationary.append(strength)
            holds = strength >= 0.5
            (evidence if holds else against).append(
                text.format(steady if holds else moving, *values)
            )
    stationarity = min(stationary) if stationary else 0.0

    hard = _present(f.mem_util_median, MEMORY_HARD)
    hashing = _present(f.mem_util_median, HASH_LOOP)
    if hard is None or hashing is None:
        pow_shape = 0.5
        against.append("memory-controller load not readable: kernel type unknown")
    else:
        pow_shape = max(hard, hashing)
        level = f"memory controller {f.mem_util_median:.0f} % busy"
        if hard >= 0.5:
            evidence.append(
                f"{level}: saturated, as a memory-hard proof of work is by design (random reads "
                "of a multi-GB data set)"
            )
        elif hashing >= 0.5:
            evidence.append(
                f"{level} while the GPU is fully busy: a pure integer-hashing loop; training "
                "and inference kernels always move tensors through memory"
            )
        else:
            against.append(
                f"{level}: between the saturated (memory-hard) and the idle (pure hashing) "
                "proof-of-work patterns, where training and inference kernels sit"
            )

    vetoes: list[float] = []
    if f.dip_episodes >= 2:
        vetoes.append(1.0)
        against.append(
            f"{f.dip_episodes} separate dips in load or power ({_pct(f.dip_share)} of samples): "
            "a rhythm of evaluation/checkpoint/data gaps, not one stationary kernel"
        )
    elif f.dip_episodes == 1:
        evidence.append(
            f"one dip of {f.longest_dip_s:.0f} s (a pool failover or restart interrupts a miner "
            "once; training pauses repeatedly)"
        )
    # Each veto rises from nothing at the band's lower edge to full at its upper edge.
    for value, (absent, full), reason in (
        (
            f.pcie_rx_mb_s,
            PCIE_STREAM_MB_S,
            "PCIe host-to-GPU traffic {:.1f} MB/s (mean): data is streamed to the GPU, as a "
            "training or inference input pipeline does",
        ),
        (
            f.mem_used_gib,
            FOOTPRINT_VETO_GIB,
            "{:.1f} GiB of GPU memory in use: more than any proof-of-work data set needs "
            "(model weights, optimizer state, activations or KV cache)",
        ),
        (
            f.mem_used_change_gib,
            FOOTPRINT_CHANGE_GIB,
            "memory footprint changed by {:.2f} GiB inside the window: a miner allocates its "
            "data set once",
        ),
    ):
        v = _present(value, (full, absent))
        if v is not None:
            vetoes.append(v)
            if v > 0:
                against.append(reason.format(value))
    veto = max(vetoes) if vetoes else 0.0
    score = min(busy, stationarity, pow_shape) * (1.0 - veto)

    support: list[float] = []
    quiet = _present(f.pcie_rx_mb_s, PCIE_QUIET_MB_S)
    if quiet is not None:
        support.append(quiet)
        if quiet >= 0.5:
            evidence.append(
                f"no data streamed to the GPU: PCIe rx {f.pcie_rx_mb_s:.2f} MB/s, "
                f"tx {f.pcie_tx_mb_s:.2f} MB/s (mean)"
            )
    small = _present(f.mem_used_gib, FOOTPRINT_SMALL_GIB)
    if small is not None:
        support.append(small)
        if small >= 0.5:
            total = f" of {f.mem_total_gib:.0f} GiB" if math.isfinite(f.mem_total_gib) else ""
            evidence.append(
                f"small fixed footprint: {f.mem_used_gib:.1f} GiB{total} in use, changed by "
                f"{f.mem_used_change_gib:.2f} GiB"
            )
    if math.isfinite(f.power_limit_w) and math.isfinite(f.default_power_limit_w):
        capped = f.power_limit_w < CAP_BELOW_DEFAULT * f.default_power_limit_w
        support.append(1.0 if capped else 0.0)
        if capped:
            evidence.append(
                f"power cap {f.power_limit_w:.0f} W set below the card's default "
                f"{f.default_power_limit_w:.0f} W (miners cap power for hashes per joule)"
            )
    under_limit = not math.isfinite(f.power_limit_w) or (
        math.isfinite(f.power_median_w) and f.power_median_w < 0.95 * f.power_limit_w
    )
    if math.isfinite(f.max_sm_clock_mhz) and f.max_sm_clock_mhz > 0 and under_limit:
        ratio = f.sm_clock_median_mhz / f.max_sm_clock_mhz
        s_under = _present(ratio, CORE_UNDERCLOCK)
        if s_under is not None:
            support.append(s_under)
            if s_under >= 0.5:
                evidence.append(
                    f"core clock held at {f.sm_clock_median_mhz:.0f} MHz, {_pct(ratio)} of its "
                    "maximum, although the card is below its power limit (a tuned, lowered core)"
                )
    supported = sum(support) / len(support) if support else 0.0

    profile = _profile(f)
    duration_factor = min(1.0, 0.75 + 0.25 * f.duration_s / 60.0)
    if score >= MINING_SCORE:
        confidence = min(1.0, 0.6 + 0.25 * score + 0.15 * supported) * duration_factor
        head = f"stationary {_PROFILE_TEXT.get(profile or '', 'kernel')} {window}"
        return GpuVerdict(MINING, score, confidence, profile, f, [head, *evidence, *against])
    head = f"busy, but not like a mining kernel {window} (mining-pattern score {score:.2f})"
    return GpuVerdict(NOT_MINING, score, 0.0, profile, f, [head, *against, *evidence])
