"""The ``gpu`` host probe: sample NVML for a short while and report GPUs that run a mining kernel.

The probe records a short trace of every GPU (:mod:`minewatch.host.gpu.telemetry`), classifies
each one (:mod:`minewatch.host.gpu.classify`) and, for a GPU that runs a mining kernel, names the
compute processes NVML lists on it, matched against the host snapshot's process table so the
inspector gets a pid, an executable and a command line. A GPU that trains or serves a model gives
no finding at all.

What the probe cannot see becomes a blind spot, never an exception: no NVML (no driver, no
``nvidia-ml-py``, no GPU), counters a card does not support, a GPU too briefly sampled to judge,
compute processes hidden in another PID namespace.

The sampler is injectable: anything with ``sample(duration_s, interval_s) -> list[GpuTrace]``
(:class:`~minewatch.host.gpu.telemetry.GpuSampler`). The agent uses NVML; tests replay recorded
or generated traces through the same seam.

Example::

    from minewatch.host.gpu.probe import GpuProbe

    result = GpuProbe(duration_s=30.0).scan(snapshot)
    for finding in result.findings:
        print(finding.entity, finding.confidence, finding.evidence[0])
"""

from __future__ import annotations

from pathlib import PurePath
from typing import ClassVar, Final

from minewatch.findings import Verdict
from minewatch.host.gpu.classify import TOO_SHORT, UNREADABLE, GpuVerdict, classify_trace
from minewatch.host.gpu.telemetry import (
    GpuSampler,
    GpuTrace,
    GpuUnavailableError,
    NvmlSampler,
    check_timing,
)
from minewatch.host.model import (
    HostFinding,
    HostProbe,
    HostSnapshot,
    ProbeOptions,
    ProbeResult,
    ProcessInfo,
    register_probe,
)

__all__ = [
    "ALGORITHM_COINS",
    "DEFAULT_DURATION_S",
    "DEFAULT_INTERVAL_S",
    "GPU_MINER_NAMES",
    "GpuProbe",
    "coin_from_cmdline",
]

DEFAULT_DURATION_S: Final = 10.0
DEFAULT_INTERVAL_S: Final = 0.5
"""20 samples: enough for the jitter features, short enough for a one-shot scan."""

GPU_MINER_NAMES: Final = frozenset(
    {
        "t-rex",
        "lolminer",
        "gminer",
        "miner",  # gminer's binary is literally called "miner"
        "nbminer",
        "phoenixminer",
        "ethminer",
        "nanominer",
        "srbminer-multi",
        "teamredminer",
        "bzminer",
        "rigel",
        "onezerominer",
        "wildrig-multi",
        "xmrig",
        "excavator",
    }
)
"""Executable names of GPU miners; a match is reported as a supporting evidence line only."""

ALGORITHM_COINS: Final = {
    "etchash": "etc",
    "kawpow": "rvn",
    "autolykos2": "erg",
    "autolykos": "erg",
    "octopus": "cfx",
    "kheavyhash": "kas",
    "karlsenhash": "kls",
    "nexapow": "nexa",
    "fishhash": "iron",
    "firopow": "firo",
    "zelhash": "flux",
    "dynexsolve": "dnx",
}
"""Mining algorithms used (almost) only by one coin, as named in miners' ``--algo`` arguments.

Ambiguous algorithms (Ethash: ETHW and others; SHA-256d also mines BCH; RandomX on GPUs is rare)
give no coin unless listed; the coin stays ``None`` rather than a guess.
"""

_ALGO_FLAGS: Final = ("-a", "--algo", "--algorithm", "-algo")


def coin_from_cmdline(cmdline: tuple[str, ...]) -> str | None:
    """The coin a miner's ``--algo NAME`` / ``-a NAME`` / ``--algo=NAME`` argument names, if any."""
    for i, arg in enumerate(cmdline):
        value: str | None = None
        lowered = arg.lower()
        if lowered in _ALGO_FLAGS and i + 1 < len(cmdline):
            value = cmdline[i + 1]
        elif "=" in lowered and lowered.split("=", 1)[0] in _ALGO_FLAGS:
            value = arg.split("=", 1)[1]
        if value is not None:
            coin = ALGORITHM_COINS.get(value.strip().lower())
            if coin is not None:
                return coin
    return None


def _miner_name(process: ProcessInfo) -> str | None:
    candidates = [process.name]
    if process.exe:
        candidates.append(PurePath(process.exe).name)
    for candidate in candidates:
        base = candidate.lower().removesuffix(".exe")
        if base in GPU_MINER_NAMES:
            return base
    return None


def _gpu_label(trace: GpuTrace) -> str:
    uuid = f" {trace.uuid}" if trace.uuid else ""
    return f"GPU {trace.index} {trace.name}{uuid}"


@register_probe
class GpuProbe(HostProbe):
    """Reports GPUs whose telemetry shows a mining kernel; see the module docstring.

    ``sampler`` defaults to :class:`~minewatch.host.gpu.telemetry.NvmlSampler`; ``duration_s``
    and ``interval_s`` bound the sampling (the scan waits that long).
    """

    name: ClassVar[str] = "gpu"

    def __init__(
        self,
        sampler: GpuSampler | None = None,
        duration_s: float = DEFAULT_DURATION_S,
        interval_s: float = DEFAULT_INTERVAL_S,
    ) -> None:
        check_timing(duration_s, interval_s)
        self.sampler: GpuSampler = sampler if sampler is not None else NvmlSampler()
        self.duration_s = duration_s
        self.interval_s = interval_s

    @classmethod
    def from_options(cls, options: ProbeOptions) -> GpuProbe:
        """Sample for the scan's ``gpu_seconds``."""
        return cls(duration_s=options.gpu_seconds)

    def scan(self, snapshot: HostSnapshot) -> ProbeResult:
        result = ProbeResult()
        try:
            traces = self.sampler.sample(self.duration_s, self.interval_s)
        except GpuUnavailableError as exc:
            result.blind_spots.append(str(exc))
            return result
        by_pid = {p.pid: p for p in snapshot.processes}
        for trace in traces:
            result.blind_spots.extend(trace.blind_spots)
            verdict = classify_trace(trace)
            if verdict.state in (TOO_SHORT, UNREADABLE):
                result.blind_spots.append(f"{_gpu_label(trace)}: {verdict.evidence[0]}")
            if verdict.is_mining:
                result.findings.append(self._finding(trace, verdict, by_pid, result.blind_spots))
        return result

    @staticmethod
    def _finding(
        trace: GpuTrace,
        verdict: GpuVerdict,
        by_pid: dict[int, ProcessInfo],
        blind_spots: list[str],
    ) -> HostFinding:
        label = _gpu_label(trace)
        evidence = [f"{label}: {verdict.evidence[0]}", *verdict.evidence[1:]]
        coin: str | None = None
        named: list[str] = []
        confidence = verdict.confidence
        for gpu_process in trace.processes:
            used = gpu_process.used_memory_bytes
            memory = f", {used / (1 << 30):.1f} GiB of GPU memory" if used is not None else ""
            process = by_pid.get(gpu_process.pid)
            if process is None:
                named.append(f"pid {gpu_process.pid}")
                evidence.append(
                    f"GPU compute process pid {gpu_process.pid}{memory} (not in this host's "
                    "process table: another PID namespace or already gone)"
                )
                continue
            executable = process.exe or process.name
            named.append(f"pid {process.pid} {executable}")
            evidence.append(
                f"GPU compute process pid {process.pid} {executable}{memory}, command line: "
                f"{' '.join(process.cmdline) or '(not readable)'}"
            )
            miner = _miner_name(process)
            if miner is not None:
                evidence.append(f"the process is named {miner}, a known GPU miner")
                confidence = max(confidence, 0.95)
            coin = coin or coin_from_cmdline(process.cmdline)
        if not trace.processes:
            blind_spots.append(
                f"{label}: no compute process visible (another container's PID namespace or "
                "insufficient permission); the mining kernel could not be tied to a process"
            )
        entity = f"{label}: {', '.join(named)}" if named else label
        single = trace.processes[0].pid if len(trace.processes) == 1 else None
        path = None
        if single is not None and single in by_pid:
            path = by_pid[single].exe
        return HostFinding(
            verdict=Verdict.MINING,
            kind="gpu-mining",
            entity=entity,
            coin=coin,
            confidence=round(min(1.0, max(0.0, confidence)), 3),
            evidence=evidence,
            pid=single,
            path=path,
        )
