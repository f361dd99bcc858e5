"""NVML telemetry of the host's NVIDIA GPUs: a short, bounded, read-only time series per GPU.

A mining kernel and a training job both keep a GPU "100 % busy"; what tells them apart is how the
card behaves *over time* (flat or stepping power, memory-controller load, clocks, host traffic,
memory footprint). So the agent does not read NVML once: it samples every GPU at a fixed interval
for a bounded duration and hands the series, a :class:`GpuTrace`, to
:mod:`minewatch.host.gpu.classify`.

NVML is read through ``nvidia-ml-py`` (module ``pynvml``), an optional dependency imported only
when a sampler runs. Without the package, without the driver's ``libnvidia-ml`` or without any GPU
the sampler raises :class:`GpuUnavailableError`, whose message starts with
:data:`NVML_BLIND_SPOT`; :func:`record` turns that into a blind spot, never a traceback, because a
host without NVIDIA GPUs is normal and a host whose GPUs could not be read must say so.

Everything here only *reads*: no clock, power limit or application setting is changed.

What each series holds (NaN where NVML does not support the query on this card):

* ``gpu_util_pct``: NVML "GPU utilisation", the share of the driver's last sample period during
  which at least one kernel ran. It is *not* SM occupancy: any resident kernel counts as 100 %.
* ``mem_util_pct``: share of that period during which device memory was read or written (the
  memory controller's busy time; a bandwidth-bound kernel pins it high).
* ``power_w``: board power from ``nvmlDeviceGetPowerUsage``; recent data-centre cards average it
  over about one second. ``energy_j`` is the total-energy counter (Volta and later) relative to
  the first sample, for exact averages between any two samples.
* ``sm_clock_mhz``, ``mem_clock_mhz``: current clocks, read at the sample instant.
* ``mem_used_bytes``: device memory in use (all processes), ``temperature_c``: GPU die.
* ``pcie_rx_bytes_s`` / ``pcie_tx_bytes_s``: PCIe throughput *into* / *out of* the GPU, bytes/s:
  the average since the previous sample where the driver keeps PCIe byte counters, else NVML's
  throughput query, a ~20 ms window at the sample instant (``meta["pcie_source"]`` says which).

Example::

    from minewatch.host.gpu.telemetry import record

    traces, blind_spots = record(duration_s=10.0, interval_s=0.5)
    for trace in traces:
        trace.save(f"gpu{trace.index}.trace.json")
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt

from minewatch.errors import DataError, InputError, MinewatchError

__all__ = [
    "MAX_DURATION_S",
    "MIN_INTERVAL_S",
    "NVML_BLIND_SPOT",
    "SERIES",
    "TRACE_FORMAT",
    "TRACE_VERSION",
    "FloatArray",
    "GpuProcess",
    "GpuSampler",
    "GpuTrace",
    "GpuUnavailableError",
    "NvmlSampler",
    "check_timing",
    "record",
]

FloatArray = npt.NDArray[np.float64]

NVML_BLIND_SPOT: Final = "no NVIDIA driver/NVML: GPUs not inspected"
"""Start of the blind spot reported where NVML cannot be used; the reason follows in brackets."""

TRACE_FORMAT: Final = "minewatch-gpu-trace"
TRACE_VERSION: Final = 1

SERIES: Final = (
    "t_s",
    "gpu_util_pct",
    "mem_util_pct",
    "power_w",
    "energy_j",
    "sm_clock_mhz",
    "mem_clock_mhz",
    "mem_used_bytes",
    "temperature_c",
    "pcie_rx_bytes_s",
    "pcie_tx_bytes_s",
)
"""The per-sample series of a trace, in file order; ``t_s`` is seconds since the first sample."""

_DECIMALS: Final = {
    "t_s": 3,
    "gpu_util_pct": 2,
    "mem_util_pct": 2,
    "power_w": 3,
    "energy_j": 3,
    "sm_clock_mhz": 1,
    "mem_clock_mhz": 1,
    "mem_used_bytes": 0,
    "temperature_c": 1,
    "pcie_rx_bytes_s": 0,
    "pcie_tx_bytes_s": 0,
}
"""Rounding on save: finer than any NVML reading, so nothing measured is lost."""

MAX_DURATION_S: Final = 3600.0
"""Longest trace a sampler records in one call (bounded work, bounded memory)."""
MIN_INTERVAL_S: Final = 0.05
"""Shortest interval: NVML's own utilisation sample period is 1/6 s to 1 s, PCIe's 20 ms."""
_MAX_FILE_BYTES: Final = 64 * 1024 * 1024


class GpuUnavailableError(MinewatchError):
    """NVML cannot be used here (package, driver library or GPU missing); the message says why."""


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A compute process NVML listed on one GPU during the trace.

    ``used_memory_bytes`` is the largest amount seen (``None`` where NVML withholds it, e.g. in
    another container's PID namespace or on Windows WDDM).
    """

    pid: int
    used_memory_bytes: int | None = None


def _as_series(values: Any, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"series {name} must be one-dimensional, got shape {array.shape}")
    return array


@dataclass(slots=True)
class GpuTrace:
    """Telemetry of one GPU: equal-length series (see the module docstring) plus card facts.

    ``label`` names what ran when the trace was recorded on purpose (``"ai-training"``,
    ``"sha256d-mining"``); ``source`` says where the numbers come from (``"nvml"`` for a
    measurement, anything else for generated or placeholder data, so nobody mistakes one for the
    other). ``blind_spots`` lists what the sampler could not read on this GPU.

    Example::

        trace = GpuTrace.load("tests/data/gpu/sha256d.trace.json")
        print(trace.name, trace.duration_s, float(np.nanmedian(trace.power_w)))
    """

    index: int
    name: str
    t_s: FloatArray
    gpu_util_pct: FloatArray
    mem_util_pct: FloatArray
    power_w: FloatArray
    sm_clock_mhz: FloatArray
    mem_clock_mhz: FloatArray
    mem_used_bytes: FloatArray
    temperature_c: FloatArray
    pcie_rx_bytes_s: FloatArray
    pcie_tx_bytes_s: FloatArray
    energy_j: FloatArray = field(default_factory=lambda: np.empty(0))
    """Joules since the first sample; empty input means not recorded (filled with NaN)."""
    uuid: str | None = None
    interval_s: float = 1.0
    mem_total_bytes: float | None = None
    power_limit_w: float | None = None
    """The enforced power limit (a user-set cap shows here)."""
    default_power_limit_w: float | None = None
    max_sm_clock_mhz: float | None = None
    max_mem_clock_mhz: float | None = None
    processes: list[GpuProcess] = field(default_factory=list)
    source: str = "nvml"
    label: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    blind_spots: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = None
        for name in SERIES:
            value = getattr(self, name)
            if name == "energy_j" and (value is None or np.asarray(value).size == 0):
                value = np.full(len(np.asarray(self.t_s)), np.nan)
            array = _as_series(value, name)
            setattr(self, name, array)
            if n is None:
                n = array.size
            elif array.size != n:
                raise ValueError(f"series {name} has {array.size} samples, t_s has {n}")
        if n and np.any(np.diff(self.t_s) < 0):
            raise ValueError("t_s must not decrease")
        if not self.interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {self.interval_s}")

    @property
    def n_samples(self) -> int:
        return int(self.t_s.size)

    @property
    def duration_s(self) -> float:
        """Time covered: from the first sample to one interval after the last."""
        if self.t_s.size == 0:
            return 0.0
        return float(self.t_s[-1] - self.t_s[0]) + self.interval_s

    def window(self, start_s: float, length_s: float) -> GpuTrace:
        """The samples with ``start_s <= t_s < start_s + length_s`` as a new trace (same card)."""
        keep = (self.t_s >= start_s) & (self.t_s < start_s + length_s)
        series: dict[str, Any] = {name: getattr(self, name)[keep] for name in SERIES}
        series["t_s"] = series["t_s"] - (series["t_s"][0] if keep.any() else 0.0)
        return GpuTrace(
            index=self.index,
            name=self.name,
            uuid=self.uuid,
            interval_s=self.interval_s,
            mem_total_bytes=self.mem_total_bytes,
            power_limit_w=self.power_limit_w,
            default_power_limit_w=self.default_power_limit_w,
            max_sm_clock_mhz=self.max_sm_clock_mhz,
            max_mem_clock_mhz=self.max_mem_clock_mhz,
            processes=list(self.processes),
            source=self.source,
            label=self.label,
            meta=dict(self.meta),
            blind_spots=list(self.blind_spots),
            **series,
        )

    # -- file format ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping: card facts, processes and one list per series (NaN -> null)."""

        def clean(name: str) -> list[float | int | None]:
            out: list[float | int | None] = []
            decimals = _DECIMALS[name]
            for value in getattr(self, name).tolist():
                if not math.isfinite(value):
                    out.append(None)
                elif decimals == 0:
                    out.append(round(value))
                else:
                    out.append(round(value, decimals))
            return out

        return {
            "format": TRACE_FORMAT,
            "version": TRACE_VERSION,
            "source": self.source,
            "label": self.label,
            "gpu": {
                "index": self.index,
                "name": self.name,
                "uuid": self.uuid,
                "mem_total_bytes": self.mem_total_bytes,
                "power_limit_w": self.power_limit_w,
                "default_power_limit_w": self.default_power_limit_w,
                "max_sm_clock_mhz": self.max_sm_clock_mhz,
                "max_mem_clock_mhz": self.max_mem_clock_mhz,
            },
            "interval_s": self.interval_s,
            "meta": dict(sorted(self.meta.items())),
            "blind_spots": list(self.blind_spots),
            "processes": [
                {"pid": p.pid, "used_memory_bytes": p.used_memory_bytes} for p in self.processes
            ],
            "series": {name: clean(name) for name in SERIES},
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "trace") -> GpuTrace:
        """Rebuild a trace from :meth:`to_dict` output; malformed input raises ``DataError``."""
        try:
            if not isinstance(data, dict) or data.get("format") != TRACE_FORMAT:
                raise DataError(f"{where}: not a {TRACE_FORMAT} file")
            if data.get("version") != TRACE_VERSION:
                raise DataError(
                    f"{where}: {TRACE_FORMAT} version {data.get('version')!r} is not supported "
                    f"(this minewatch reads version {TRACE_VERSION})"
                )
            gpu = data["gpu"]
            raw_series = data["series"]
            missing = [name for name in SERIES if name != "energy_j" and name not in raw_series]
            if missing:
                raise DataError(f"{where}: series missing: {', '.join(missing)}")
            series: dict[str, Any] = {
                name: np.array(
                    [np.nan if v is None else float(v) for v in raw_series[name]], dtype=np.float64
                )
                for name in SERIES
                if name in raw_series
            }
            series.setdefault("energy_j", None)

            def opt_float(key: str) -> float | None:
                value = gpu.get(key)
                return None if value is None else float(value)

            processes = [
                GpuProcess(
                    pid=int(p["pid"]),
                    used_memory_bytes=(
                        None if p.get("used_memory_bytes") is None else int(p["used_memory_bytes"])
                    ),
                )
                for p in data.get("processes", [])
            ]
            return cls(
                index=int(gpu["index"]),
                name=str(gpu["name"]),
                uuid=None if gpu.get("uuid") is None else str(gpu["uuid"]),
                interval_s=float(data["interval_s"]),
                mem_total_bytes=opt_float("mem_total_bytes"),
                power_limit_w=opt_float("power_limit_w"),
                default_power_limit_w=opt_float("default_power_limit_w"),
                max_sm_clock_mhz=opt_float("max_sm_clock_mhz"),
                max_mem_clock_mhz=opt_float("max_mem_clock_mhz"),
                processes=processes,
                source=str(data.get("source", "unknown")),
                label=None if data.get("label") is None else str(data["label"]),
                meta={str(k): str(v) for k, v in dict(data.get("meta", {})).items()},
                blind_spots=[str(s) for s in data.get("blind_spots", [])],
                **series,
            )
        except DataError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DataError(f"{where}: malformed {TRACE_FORMAT} data ({exc})") from exc

    def save(self, path: str | Path) -> Path:
        """Write the trace as one small JSON document (the committed test-data format)."""
        target = Path(path)
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        target.write_text(text + "\n", encoding="utf-8")
        return target

    @classmethod
    def load(cls, path: str | Path) -> GpuTrace:
        """Read a trace written by :meth:`save`; unreadable or malformed files raise errors.

        A missing or unreadable file is the user's input (``InputError``); a file that is there
        but is not a trace is ``DataError``. Files over 64 MiB are refused without reading them.
        """
        source = Path(path)
        try:
            size = source.stat().st_size
            if size > _MAX_FILE_BYTES:
                raise InputError(f"{source}: {size} bytes is too large for a GPU trace")
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"{source}: cannot read GPU trace ({exc.strerror or exc})") from exc
        except UnicodeDecodeError as exc:
            raise DataError(f"{source}: not a {TRACE_FORMAT} file (not UTF-8 text)") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{source}: not a {TRACE_FORMAT} file ({exc})") from exc
        return cls.from_dict(data, where=str(source))


class GpuSampler(Protocol):
    """Anything that records traces of the host's GPUs: NVML here, recorded files in tests."""

    def sample(self, duration_s: float, interval_s: float) -> list[GpuTrace]:
        """Record every visible GPU for ``duration_s`` seconds, one sample per ``interval_s``."""
        ...


def check_timing(duration_s: float, interval_s: float) -> None:
    """Refuse sampling parameters outside the bounded range, with a message saying the range."""
    if not (math.isfinite(duration_s) and 0 < duration_s <= MAX_DURATION_S):
        raise InputError(f"GPU sampling duration must lie in (0, {MAX_DURATION_S:g}] s")
    if not (math.isfinite(interval_s) and MIN_INTERVAL_S <= interval_s <= duration_s):
        raise InputError(
            f"GPU sampling interval must lie in [{MIN_INTERVAL_S:g} s, duration], got {interval_s}"
        )


def _load_nvml() -> Any:
    """Import and initialise pynvml, or raise :class:`GpuUnavailableError` saying why not."""
    try:
        nvml = importlib.import_module("pynvml")
    except ImportError as exc:
        raise GpuUnavailableError(f"{NVML_BLIND_SPOT} (nvidia-ml-py is not installed)") from exc
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        raise GpuUnavailableError(f"{NVML_BLIND_SPOT} ({exc})") from exc
    try:
        count = int(nvml.nvmlDeviceGetCount())
    except nvml.NVMLError as exc:
        nvml.nvmlShutdown()
        raise GpuUnavailableError(f"{NVML_BLIND_SPOT} (cannot count GPUs: {exc})") from exc
    if count == 0:
        nvml.nvmlShutdown()
        raise GpuUnavailableError(f"{NVML_BLIND_SPOT} (the driver reports no GPU)")
    return nvml


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class _Card:
    """Per-GPU state while sampling: handle, static facts, and the series being filled."""

    def __init__(self, nvml: Any, index: int, pcie: bool) -> None:
        self.nvml = nvml
        self.index = index
        self.pcie = pcie
        self.handle = nvml.nvmlDeviceGetHandleByIndex(index)
        self.unsupported: dict[str, str] = {}
        self.series: dict[str, list[float]] = {name: [] for name in SERIES}
        self.processes: dict[int, int | None] = {}
        self.energy0_mj: float | None = None
        self.pcie_last: tuple[float, int, int] | None = None
        self.pcie_counters = pcie and self._pcie_counters() is not None
        self.name = _text(self._call("name", nvml.nvmlDeviceGetName) or f"GPU {index}")
        uuid = self._call("uuid", nvml.nvmlDeviceGetUUID)
        self.uuid = None if uuid is None else _text(uuid)
        memory = self._call("memory", nvml.nvmlDeviceGetMemoryInfo)
        self.mem_total = None if memory is None else float(memory.total)
        limit = self._call("power limit", nvml.nvmlDeviceGetEnforcedPowerLimit)
        self.power_limit = None if limit is None else limit / 1000.0
        default = self._call("default power limit", nvml.nvmlDeviceGetPowerManagementDefaultLimit)
        self.default_limit = None if default is None else default / 1000.0
        max_clock = nvml.nvmlDeviceGetMaxClockInfo
        sm_max = self._call("max SM clock", max_clock, nvml.NVML_CLOCK_SM)
        mem_max = self._call("max memory clock", max_clock, nvml.NVML_CLOCK_MEM)
        self.max_sm = None if sm_max is None else float(sm_max)
        self.max_mem = None if mem_max is None else float(mem_max)

    def _call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """One NVML query; an NVML error (not supported, no permission) gives None, noted once."""
        try:
            return fn(self.handle, *args)
        except self.nvml.NVMLError as exc:
            self.unsupported.setdefault(what, str(exc))
            return None

    def _pcie_counters(self) -> tuple[int, int] | None:
        """Cumulative PCIe bytes received/sent by the GPU, where the driver keeps them.

        These counters (NVML field values ``PCIE_COUNT_RX/TX_BYTES``, recent drivers and data-
        centre cards) give the exact average between two samples; the older throughput query
        only sees a 20 ms window, which misses most of a training job's bursty batch copies.
        """
        nvml = self.nvml
        try:
            fields = nvml.nvmlDeviceGetFieldValues(
                self.handle,
                [nvml.NVML_FI_DEV_PCIE_COUNT_RX_BYTES, nvml.NVML_FI_DEV_PCIE_COUNT_TX_BYTES],
            )
        except (nvml.NVMLError, AttributeError):
            return None
        out: list[int] = []
        for value in fields:
            if value.nvmlReturn != nvml.NVML_SUCCESS:
                return None
            kind = value.valueType
            if kind == nvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG:
                out.append(int(value.value.ullVal))
            elif kind == nvml.NVML_VALUE_TYPE_UNSIGNED_LONG:
                out.append(int(value.value.ulVal))
            elif kind == nvml.NVML_VALUE_TYPE_UNSIGNED_INT:
                out.append(int(value.value.uiVal))
            else:
                return None
        return out[0], out[1]

    def read(self, t_s: float) -> None:
        nvml = self.nvml
        values: dict[str, float] = dict.fromkeys(SERIES, math.nan)
        values["t_s"] = t_s
        rates = self._call("utilisation", nvml.nvmlDeviceGetUtilizationRates)
        if rates is not None:
            values["gpu_util_pct"] = float(rates.gpu)
            values["mem_util_pct"] = float(rates.memory)
        power = self._call("power", nvml.nvmlDeviceGetPowerUsage)
        if power is not None:
            values["power_w"] = power / 1000.0
        energy = self._call("energy counter", nvml.nvmlDeviceGetTotalEnergyConsumption)
        if energy is not None:
            if self.energy0_mj is None:
                self.energy0_mj = float(energy)
            values["energy_j"] = (float(energy) - self.energy0_mj) / 1000.0
        sm = self._call("SM clock", nvml.nvmlDeviceGetClockInfo, nvml.NVML_CLOCK_SM)
        mem = self._call("memory clock", nvml.nvmlDeviceGetClockInfo, nvml.NVML_CLOCK_MEM)
        values["sm_clock_mhz"] = math.nan if sm is None else float(sm)
        values["mem_clock_mhz"] = math.nan if mem is None else float(mem)
        memory = self._call("memory", nvml.nvmlDeviceGetMemoryInfo)
        if memory is not None:
            values["mem_used_bytes"] = float(memory.used)
        temp = self._call("temperature", nvml.nvmlDeviceGetTemperature, nvml.NVML_TEMPERATURE_GPU)
        values["temperature_c"] = math.nan if temp is None else float(temp)
        if self.pcie_counters:
            counters = self._pcie_counters()
            now = time.monotonic()
            if counters is not None and self.pcie_last is not None:
                then, rx0, tx0 = self.pcie_last
                span = now - then
                if span > 0 and counters[0] >= rx0 and counters[1] >= tx0:  # no wrap-around
                    values["pcie_rx_bytes_s"] = (counters[0] - rx0) / span
                    values["pcie_tx_bytes_s"] = (counters[1] - tx0) / span
            self.pcie_last = None if counters is None else (now, *counters)
        elif self.pcie:
            for key, counter in (
                ("pcie_rx_bytes_s", nvml.NVML_PCIE_UTIL_RX_BYTES),
                ("pcie_tx_bytes_s", nvml.NVML_PCIE_UTIL_TX_BYTES),
            ):
                kb_s = self._call("PCIe throughput", nvml.nvmlDeviceGetPcieThroughput, counter)
                values[key] = math.nan if kb_s is None else float(kb_s) * 1024.0
        procs = self._call("compute processes", nvml.nvmlDeviceGetComputeRunningProcesses)
        for proc in procs or []:
            used = getattr(proc, "usedGpuMemory", None)
            used_int = int(used) if isinstance(used, int) else None
            known = self.processes.get(int(proc.pid))
            self.processes[int(proc.pid)] = (
                known if used_int is None or (known is not None and known >= used_int) else used_int
            )
        for name in SERIES:
            self.series[name].append(values[name])

    def trace(self, interval_s: float, driver: str | None) -> GpuTrace:
        blind = [
            f"GPU {self.index}: {what} not readable ({why})"
            for what, why in sorted(self.unsupported.items())
        ]
        meta = {
            "power_source": "nvmlDeviceGetPowerUsage",
            "pcie_source": (
                "PCIe byte counters (average over each interval)"
                if self.pcie_counters
                else "nvmlDeviceGetPcieThroughput (20 ms window at each sample)"
                if self.pcie
                else "not sampled"
            ),
        }
        if driver:
            meta["driver"] = driver
        series: dict[str, Any] = {
            name: np.array(values, dtype=np.float64) for name, values in self.series.items()
        }
        return GpuTrace(
            index=self.index,
            name=self.name,
            uuid=self.uuid,
            interval_s=interval_s,
            mem_total_bytes=self.mem_total,
            power_limit_w=self.power_limit,
            default_power_limit_w=self.default_limit,
            max_sm_clock_mhz=self.max_sm,
            max_mem_clock_mhz=self.max_mem,
            processes=[GpuProcess(pid, used) for pid, used in sorted(self.processes.items())],
            source="nvml",
            meta=meta,
            blind_spots=blind,
            **series,
        )


class NvmlSampler:
    """Samples every visible NVIDIA GPU through NVML: the real :class:`GpuSampler`.

    ``indices`` restricts sampling to some GPUs; ``pcie=False`` skips the PCIe counters (each
    read blocks ~20 ms). ``stop`` ends a recording early (used by the recording script, which
    samples from a thread while a workload runs). Sampling is bounded by
    :data:`MAX_DURATION_S`; a tick that takes longer than the interval delays the next one
    rather than piling up.

    Example::

        traces = NvmlSampler().sample(duration_s=30.0, interval_s=1.0)
    """

    def __init__(
        self,
        *,
        indices: Sequence[int] | None = None,
        pcie: bool = True,
        stop: threading.Event | None = None,
    ) -> None:
        self.indices = None if indices is None else list(indices)
        self.pcie = pcie
        self.stop = stop

    def sample(self, duration_s: float, interval_s: float) -> list[GpuTrace]:
        check_timing(duration_s, interval_s)
        nvml = _load_nvml()
        try:
            count = int(nvml.nvmlDeviceGetCount())
            wanted = range(count) if self.indices is None else self.indices
            cards: list[_Card] = []
            skipped: list[str] = []
            for index in wanted:
                if not 0 <= index < count:
                    raise InputError(f"GPU index {index} out of range (this host has {count})")
                try:
                    cards.append(_Card(nvml, index, self.pcie))
                except nvml.NVMLError as exc:
                    skipped.append(f"GPU {index}: not readable ({exc})")
            try:
                driver: str | None = _text(nvml.nvmlSystemGetDriverVersion())
            except nvml.NVMLError:
                driver = None
            start = time.monotonic()
            tick = 0
            while True:
                now = time.monotonic() - start
                if now >= duration_s or (self.stop is not None and self.stop.is_set()):
                    break
                for card in cards:
                    card.read(time.monotonic() - start)
                tick += 1
                wait = start + tick * interval_s - time.monotonic()
                if wait > 0:
                    if self.stop is not None:
                        self.stop.wait(wait)
                    else:
                        time.sleep(wait)
            traces = [card.trace(interval_s, driver) for card in cards]
            if traces and skipped:
                traces[0].blind_spots.extend(skipped)
            return traces
        except nvml.NVMLError as exc:  # the driver failed mid-way (GPU lost, driver reloaded)
            failed = f"{NVML_BLIND_SPOT} (NVML failed while sampling: {exc})"
            raise GpuUnavailableError(failed) from exc
        finally:
            with contextlib.suppress(nvml.NVMLError):
                nvml.nvmlShutdown()


def record(
    duration_s: float = 10.0,
    interval_s: float = 0.5,
    sampler: GpuSampler | None = None,
) -> tuple[list[GpuTrace], list[str]]:
    """Sample all GPUs; never raises for a missing GPU or driver, which becomes a blind spot.

    Returns the traces and the blind spots (NVML unavailable, queries a card does not support).
    Bad ``duration_s``/``interval_s`` still raise ``InputError``: that is a caller's mistake.
    """
    check_timing(duration_s, interval_s)
    chosen = sampler if sampler is not None else NvmlSampler()
    try:
        traces = chosen.sample(duration_s, interval_s)
    except GpuUnavailableError as exc:
        return [], [str(exc)]
    blind: list[str] = []
    for trace in traces:
        blind.extend(trace.blind_spots)
    return traces, blind
