"""GPU traces on disk, and NVML sampling where there is (or is not) a GPU.

The file-format tests use real files in a temporary directory. The "no NVML" tests use this
machine as it is: without an NVIDIA driver, ``pynvml`` raises its own library-not-found error,
which must come back as a blind spot. Where a GPU and driver exist, the real sampler is run.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from minewatch.errors import DataError, InputError
from minewatch.host.gpu.telemetry import (
    NVML_BLIND_SPOT,
    SERIES,
    GpuProcess,
    GpuTrace,
    GpuUnavailableError,
    NvmlSampler,
    record,
)


def _nvml_works() -> bool:
    try:
        pynvml: Any = importlib.import_module("pynvml")
    except ImportError:
        return False
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    try:
        return int(pynvml.nvmlDeviceGetCount()) > 0
    finally:
        pynvml.nvmlShutdown()


HAS_GPU = _nvml_works()


def _trace(n: int = 20) -> GpuTrace:
    rng = np.random.default_rng(3)
    t = np.asarray(np.arange(n) * 0.5, dtype=np.float64)
    power = 250 + rng.normal(0, 1, n)
    power[3] = np.nan  # a query the card did not answer once
    return GpuTrace(
        index=1,
        name="NVIDIA Test Card",
        uuid="GPU-1234",
        interval_s=0.5,
        t_s=t,
        gpu_util_pct=np.full(n, 100.0),
        mem_util_pct=np.full(n, 97.0),
        power_w=power,
        energy_j=np.cumsum(np.full(n, 125.0)) - 125.0,
        sm_clock_mhz=np.full(n, 1110.0),
        mem_clock_mhz=np.full(n, 9751.0),
        mem_used_bytes=np.full(n, 5.2e9),
        temperature_c=np.round(np.linspace(60, 62, n)),
        pcie_rx_bytes_s=rng.integers(0, 4096, n).astype(float),
        pcie_tx_bytes_s=np.full(n, np.nan),
        mem_total_bytes=10e9,
        power_limit_w=230.0,
        default_power_limit_w=320.0,
        max_sm_clock_mhz=2100.0,
        max_mem_clock_mhz=9501.0,
        processes=[GpuProcess(4242, 5_000_000_000), GpuProcess(77, None)],
        source="synthetic: file-format test",
        label="memory-bound miner",
        meta={"driver": "test"},
        blind_spots=["GPU 1: PCIe throughput not readable (Not Supported)"],
    )


def test_save_load_round_trip(tmp_path: Path) -> None:
    trace = _trace()
    path = trace.save(tmp_path / "t.trace.json")
    loaded = GpuTrace.load(path)
    for name in SERIES:
        np.testing.assert_allclose(
            getattr(loaded, name), getattr(trace, name), rtol=0, atol=1e-3, equal_nan=True
        )
    assert np.isnan(loaded.power_w[3])
    assert np.isnan(loaded.pcie_tx_bytes_s).all()
    assert loaded.processes == trace.processes
    assert (loaded.name, loaded.uuid, loaded.index) == ("NVIDIA Test Card", "GPU-1234", 1)
    assert loaded.power_limit_w == 230.0 and loaded.default_power_limit_w == 320.0
    assert loaded.label == "memory-bound miner" and loaded.source.startswith("synthetic")
    assert loaded.blind_spots == trace.blind_spots and loaded.meta == {"driver": "test"}
    # A second save writes the same bytes: the format is stable.
    again = loaded.save(tmp_path / "again.json")
    assert again.read_bytes() == path.read_bytes()


def test_saved_file_is_small_json_with_nulls(tmp_path: Path) -> None:
    path = _trace(120).save(tmp_path / "t.json")
    data = json.loads(path.read_text())
    assert data["format"] == "minewatch-gpu-trace" and data["version"] == 1
    assert data["series"]["power_w"][3] is None
    assert path.stat().st_size < 40_000


def test_trace_without_energy_counter_loads(tmp_path: Path) -> None:
    data = _trace().to_dict()
    del data["series"]["energy_j"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    assert np.isnan(GpuTrace.load(path).energy_j).all()


def test_window_cuts_and_restarts_time() -> None:
    part = _trace(20).window(2.0, 3.0)
    assert part.n_samples == 6
    assert part.t_s[0] == 0.0
    assert part.duration_s == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not a minewatch-gpu-trace"),
        ('{"format": "something-else"}', "not a minewatch-gpu-trace"),
        ('{"format": "minewatch-gpu-trace", "version": 99}', "version 99"),
        ('{"format": "minewatch-gpu-trace", "version": 1, "gpu": {}}', "malformed"),
    ],
)
def test_malformed_files_raise_data_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        GpuTrace.load(path)


def test_series_of_unequal_length_is_data_error(tmp_path: Path) -> None:
    data = _trace().to_dict()
    data["series"]["power_w"] = data["series"]["power_w"][:-1]
    path = tmp_path / "short.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="power_w has 19 samples"):
        GpuTrace.load(path)


def test_missing_series_is_named(tmp_path: Path) -> None:
    data = _trace().to_dict()
    del data["series"]["mem_util_pct"]
    path = tmp_path / "missing.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="mem_util_pct"):
        GpuTrace.load(path)


def test_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read GPU trace"):
        GpuTrace.load(tmp_path / "nope.json")


@pytest.mark.parametrize(("duration", "interval"), [(0.0, 0.5), (5.0, 0.0), (5.0, 10.0), (1e6, 1)])
def test_sampling_bounds_are_enforced(duration: float, interval: float) -> None:
    with pytest.raises(InputError, match="GPU sampling"):
        record(duration, interval)


@pytest.mark.skipif(HAS_GPU, reason="this host has a working NVIDIA driver and GPU")
def test_no_driver_is_a_blind_spot_not_an_exception() -> None:
    traces, blind = record(duration_s=1.0, interval_s=0.5)
    assert traces == []
    assert len(blind) == 1 and blind[0].startswith(NVML_BLIND_SPOT)
    with pytest.raises(GpuUnavailableError):
        NvmlSampler().sample(1.0, 0.5)


def test_missing_nvidia_ml_py_is_a_blind_spot(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes ``import pynvml`` fail exactly as if it were not installed.
    monkeypatch.setitem(sys.modules, "pynvml", None)
    traces, blind = record(duration_s=1.0, interval_s=0.5)
    assert traces == []
    assert blind == [f"{NVML_BLIND_SPOT} (nvidia-ml-py is not installed)"]


@pytest.mark.skipif(not HAS_GPU, reason="no NVIDIA driver/GPU on this host")
def test_real_nvml_sampling() -> None:
    traces, _ = record(duration_s=2.0, interval_s=0.25)
    assert traces
    for trace in traces:
        assert trace.source == "nvml"
        assert 5 <= trace.n_samples <= 9
        assert np.all(np.diff(trace.t_s) > 0)
        assert np.isfinite(trace.gpu_util_pct).all()
        assert trace.mem_total_bytes is not None and trace.mem_total_bytes > 0
        assert math.isfinite(float(np.nanmedian(trace.mem_used_bytes)))
