"""The GPU recording script's pieces, checked on a CPU before any GPU time is spent on them.

* The SHA-256 constants and compression (pure Python) against ``hashlib``.
* The CUDA C kernel source compiled as plain C with the system C compiler and run against
  ``hashlib`` (the same source the GPU compiles through NVRTC), and compiled for sm_90 with
  ``nvcc`` where a CUDA toolkit exists.
* The numba.cuda kernel under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), in a
  subprocess because the simulator must be chosen before numba is imported.
* The whole script in ``--dry-run`` mode (CPU, seconds, placeholder sampler); its PyTorch phases
  run where torch is installed and are skipped, with a message, where it is not.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from minewatch.host.gpu.classify import MINING
from minewatch.host.gpu.telemetry import GpuTrace
from tests.host.gpu.test_classify import miner_trace

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "gpu" / "record_telemetry.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("record_telemetry", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["record_telemetry"] = module
    spec.loader.exec_module(module)
    return module


rt = _load()


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_sha256_constants_are_the_published_ones() -> None:
    # FIPS 180-4, section 4.2.2 / 5.3.3: first and last round constants, first and last H0 word.
    assert (rt.K[0], rt.K[1], rt.K[63]) == (0x428A2F98, 0x71374491, 0xC67178F2)
    assert (rt.H0[0], rt.H0[7]) == (0x6A09E667, 0x5BE0CD19)
    assert len(set(rt.K)) == 64


@pytest.mark.parametrize("message", [b"", b"abc", b"x" * 55, b"y" * 56, b"z" * 119])
def test_python_compression_matches_hashlib(message: bytes) -> None:
    padded = (
        message
        + b"\x80"
        + b"\0" * ((55 - len(message)) % 64)
        + (8 * len(message)).to_bytes(8, "big")
    )
    state = rt.H0
    for i in range(0, len(padded), 64):
        words = [int.from_bytes(padded[j : j + 4], "big") for j in range(i, i + 64, 4)]
        state = rt.sha256_compress(state, words)
    assert b"".join(w.to_bytes(4, "big") for w in state) == hashlib.sha256(message).digest()


def test_midstate_plus_tail_is_the_header_hash() -> None:
    header = rt.with_nonce(rt.make_header(seed=5, ntime=1_700_000_123), 0xDEADBEEF)
    words = rt.header_words(header)
    tail = [*words[16:20], 0x80000000, *([0] * 10), 640]
    state = rt.sha256_compress(rt.midstate(header), tail)
    assert b"".join(w.to_bytes(4, "big") for w in state) == hashlib.sha256(header).digest()


def _kernel_condition(digest: bytes, zero_bits: int) -> bool:
    h7 = rt.digest_words(digest)[7]
    swapped = int.from_bytes(h7.to_bytes(4, "big"), "little")
    return (swapped >> (32 - zero_bits)) == 0


def test_kernel_share_test_equals_bitcoins_comparison() -> None:
    rng = np.random.default_rng(0)
    header = rt.make_header(seed=3, ntime=1)
    hits = 0
    for nonce in rng.integers(0, 2**32, size=3000):
        digest = rt.sha256d_header(rt.with_nonce(header, int(nonce)))
        for bits in (1, 4, 8):
            assert _kernel_condition(digest, bits) == rt.share_ok(digest, bits)
            hits += rt.share_ok(digest, bits)
    assert hits > 0


def _c_compiler() -> str | None:
    return shutil.which("cc") or shutil.which("gcc")


@pytest.mark.skipif(_c_compiler() is None, reason="no C compiler to build the kernel source as C")
def test_cuda_c_source_as_c_matches_hashlib(tmp_path: Path) -> None:
    source = tmp_path / "kernel.c"
    source.write_text(rt.cuda_c_source())
    library = tmp_path / "kernel.so"
    compiler = _c_compiler()
    assert compiler is not None
    subprocess.run(
        [
            compiler,
            "-std=c99",
            "-O2",
            "-Wall",
            "-Werror",
            "-shared",
            "-fPIC",
            str(source),
            "-o",
            str(library),
        ],
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(library))
    header = rt.make_header(seed=9, ntime=1_700_000_000)
    mid, tail = rt.kernel_inputs(header)
    u32p = ctypes.POINTER(ctypes.c_uint32)
    lib.mw_cpu_sha256d.argtypes = [u32p, u32p, ctypes.c_uint32, u32p]
    lib.mw_cpu_bswap.restype = ctypes.c_uint32
    lib.mw_cpu_bswap.argtypes = [ctypes.c_uint32]
    assert lib.mw_cpu_bswap(0x11223344) == 0x44332211
    out = np.zeros(8, dtype=np.uint32)
    for nonce in (0, 1, 0x7FFFFFFF, 0xFFFFFFFE, 0xFFFFFFFF, 123456789):
        lib.mw_cpu_sha256d(
            mid.ctypes.data_as(u32p), tail.ctypes.data_as(u32p), nonce, out.ctypes.data_as(u32p)
        )
        want = rt.digest_words(rt.sha256d_header(rt.with_nonce(header, nonce)))
        assert [int(x) for x in out] == want, hex(nonce)


NVCC = shutil.which("nvcc") or (
    "/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").exists() else None
)


@pytest.mark.skipif(NVCC is None, reason="no CUDA toolkit (nvcc) to compile the kernel for sm_90")
def test_cuda_c_source_compiles_for_hopper(tmp_path: Path) -> None:
    source = tmp_path / "kernel.cu"
    source.write_text(rt.cuda_c_source())
    assert NVCC is not None
    done = subprocess.run(
        [NVCC, "-ptx", "-arch=sm_90", str(source), "-o", str(tmp_path / "kernel.ptx")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    ptx = (tmp_path / "kernel.ptx").read_text()
    assert ".entry mw_search" in ptx and ".entry mw_digests" in ptx


SIMULATOR_CHECK = """
import sys
sys.path[:0] = [{src!r}, {root!r}]
import importlib.util
spec = importlib.util.spec_from_file_location("rt", {script!r})
rt = importlib.util.module_from_spec(spec); spec.loader.exec_module(rt)
backend = rt.NumbaBackend(per_thread=3, threads=4, blocks=2)
rt.verify_backend(backend, n=6)
header = rt.make_header(seed=4, ntime=1_700_000_000)
base = 2**32 - 10  # the launch crosses the nonce wrap
found = sorted(backend.search(header, base, 3))
want = sorted(
    (base + i) % 2**32
    for i in range(backend.nonces_per_launch)
    if rt.share_ok(rt.sha256d_header(rt.with_nonce(header, (base + i) % 2**32)), 3)
)
print("found", found, "want", want)
assert found == want, (found, want)
assert want, "expected at least one share among 24 nonces at 3 zero bits"
"""


@pytest.mark.skipif(not _has("numba"), reason="numba not installed")
def test_numba_kernel_under_the_cuda_simulator() -> None:
    code = SIMULATOR_CHECK.format(src=str(ROOT / "src"), root=str(ROOT), script=str(SCRIPT))
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if done.returncode != 0 and "simulator" in done.stderr.lower() and "not" in done.stderr.lower():
        pytest.skip(f"numba's CUDA simulator is not usable here: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "found [" in done.stdout


@pytest.mark.skipif(not _has("numba"), reason="numba not installed (needed for the hash phase)")
def test_dry_run_of_the_whole_script(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dry_run"] is True
    phases = {p["phase"]: p for p in summary["phases"]}
    hashing = phases["sha256d"]["workload"]
    assert hashing["shares_found"] == hashing["shares_verified_with_hashlib"] > 0
    expected = {"sha256d", "train-cnn", "train-lm", "infer"} if _has("torch") else {"sha256d"}
    assert set(phases) == expected
    if not _has("torch"):
        assert "PyTorch phases skipped" in done.stdout
    else:
        assert phases["train-cnn"]["workload"]["steps"] > 2
        assert phases["train-cnn"]["workload"]["checkpoints"] >= 1
        assert phases["train-lm"]["workload"]["steps"] > 2
        assert phases["infer"]["workload"]["requests_served"] > 0
    for phase in expected:
        trace = GpuTrace.load(out / f"{phase}.trace.json")
        assert trace.label == rt.LABELS[phase]
        assert "not a measurement" in trace.source


class _Steps:
    """A workload that counts steps until the recorder says stop."""

    def __init__(self) -> None:
        self.steps = 0

    def __call__(self, ctx: Any) -> dict[str, Any]:
        while ctx.keep_going():
            self.steps += 1
            if self.steps == 1:
                ctx.ready()
            time.sleep(0.01)
        return {"steps": self.steps}


def test_recorder_samples_after_the_workload_is_ready() -> None:
    stop = threading.Event()
    recorder = rt.Recorder(rt.PlaceholderSampler(stop), warmup_s=0.2, record_s=0.5, interval_s=0.1)
    workload = _Steps()
    started = time.monotonic()
    recorder.start()
    result = workload(recorder)
    recorder.join(5)
    elapsed = time.monotonic() - started
    assert recorder.error is None
    assert 0.7 <= elapsed < 3.0
    assert result["steps"] > 10
    assert len(recorder.traces) == 1 and recorder.traces[0].n_samples >= 4


def test_recorder_reports_a_workload_that_never_starts() -> None:
    recorder = rt.Recorder(
        rt.PlaceholderSampler(threading.Event()), warmup_s=0.0, record_s=0.5, interval_s=0.1
    )
    recorder.READY_TIMEOUT_S = 0.2
    recorder.start()
    recorder.join(5)
    assert isinstance(recorder.error, TimeoutError)


def test_sliding_windows_of_a_miner_are_mining() -> None:
    trace = miner_trace(np.random.default_rng(8), duration_s=60.0, interval_s=0.5)
    counts = rt.window_verdicts(trace)
    assert sum(counts.values()) == 11
    assert counts == {MINING: 11}


def test_unknown_phase_is_refused() -> None:
    with pytest.raises(SystemExit):
        rt.parse_args(["--phases", "sha256d,bogus"])


def test_dry_run_shortens_everything() -> None:
    args = rt.parse_args(["--dry-run"])
    assert args.hash_s <= 2 and args.train_s <= 2 and args.zero_bits <= 4


@pytest.mark.skipif(not _has("matplotlib"), reason="matplotlib not installed")
def test_figure_is_written(tmp_path: Path) -> None:
    trace = miner_trace(np.random.default_rng(1), duration_s=20.0, interval_s=0.5)
    message = rt.plot({"sha256d": trace}, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000, message


def test_a_failing_workload_costs_only_its_own_phase() -> None:
    stop = threading.Event()
    args = rt.parse_args(["--dry-run", "--warmup-s", "0.1"])

    def broken(ctx: Any) -> dict[str, Any]:
        ctx.ready()
        raise ValueError("out of memory, say")

    started = time.monotonic()
    trace, summary = rt.run_phase("infer", broken, rt.PlaceholderSampler(stop), args, 30.0)
    assert trace is None
    assert summary["error"] == "workload failed: ValueError: out of memory, say"
    assert time.monotonic() - started < 10.0  # the recorder was stopped, not waited out
