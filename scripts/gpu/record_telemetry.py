#!/usr/bin/env python3
"""Record NVML telemetry of real GPU workloads, for the GPU mining classifier (issue 5, item 6).

One prepared run on a machine with an NVIDIA GPU (about five minutes with the defaults):

1. ``train-cnn``: a real PyTorch training loop: a ResNet-style CNN on random images served by a
   multi-worker ``DataLoader`` (pinned memory, host-to-device copies), bf16 autocast, periodic
   evaluation and checkpoints written with ``torch.save``.
2. ``sha256d``: a real SHA-256d nonce search (the Bitcoin proof of work over an 80-byte header),
   written here as a CUDA C kernel run through CuPy, or the same algorithm through numba.cuda if
   CuPy is missing. Before anything is timed, the kernel's digests are checked against
   ``hashlib``; every share it finds is re-hashed with ``hashlib`` afterwards.
3. ``train-lm``: a real PyTorch decoder-style transformer trained on token ids generated on the GPU
   (no host traffic at all: the hardest look-alike), periodic evaluation and checkpoints.
4. ``infer``: an inference-server-like loop: Poisson request arrivals, dynamic batches copied to
   the GPU and answered back.

For each phase the workload starts, warms up, and NVML is sampled from a thread while it runs
(:class:`minewatch.host.gpu.telemetry.NvmlSampler`). Each trace is written to
``OUT/<phase>.trace.json`` (the committed test-data format), the classifier's verdict on the whole
trace and on sliding 10-s windows (the probe's default) is printed and written to
``OUT/summary.json``, and a figure of all phases to ``OUT/telemetry.png`` where matplotlib exists.

Nothing is installed by this script, and no GPU setting (clocks, power limit) is changed. It needs
``torch``, ``numpy``, ``nvidia-ml-py`` and ``cupy`` or ``numba`` (with CUDA), all preinstalled on
the lent GPU image; elsewhere: ``pip install torch numpy nvidia-ml-py cupy-cuda12x`` (or ``numba``).

``--dry-run`` runs every piece on the CPU in seconds (tiny models, the SHA-256d kernel under
numba's CUDA simulator, a placeholder sampler whose traces say they are not measurements), so
that the script is known to work before GPU time is spent on it.

Usage::

    python3 scripts/gpu/record_telemetry.py --out "$OUT"
    NUMBA_ENABLE_CUDASIM=1 python3 scripts/gpu/record_telemetry.py --dry-run --out /tmp/dry
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib
import json
import math
import os
import platform
import struct
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from minewatch.host.gpu.classify import classify_trace  # noqa: E402
from minewatch.host.gpu.telemetry import (  # noqa: E402
    GpuTrace,
    GpuUnavailableError,
    NvmlSampler,
)

__all__ = [
    "H0",
    "PHASES",
    "K",
    "cuda_c_source",
    "header_words",
    "main",
    "midstate",
    "sha256_compress",
    "sha256d_header",
    "share_ok",
]

MASK = 0xFFFFFFFF
PHASES = ("train-cnn", "sha256d", "train-lm", "infer")
"""Run order: the hashing kernel runs second, on a card already warm, as a miner's card is."""
LABELS = {
    "sha256d": "sha256d-mining",
    "train-cnn": "ai-training-cnn-dataloader",
    "train-lm": "ai-training-transformer-gpu-resident-data",
    "infer": "ai-inference-server",
}


# -- SHA-256 constants and a reference implementation (pure Python, checked against hashlib) ---


def _primes(count: int) -> list[int]:
    found: list[int] = []
    candidate = 2
    while len(found) < count:
        if all(candidate % p for p in found if p * p <= candidate):
            found.append(candidate)
        candidate += 1
    return found


def _iroot(value: int, k: int) -> int:
    """floor(value ** (1/k)) in exact integer arithmetic."""
    lo, hi = 0, 1 << (value.bit_length() // k + 1)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if mid**k <= value:
            lo = mid
        else:
            hi = mid - 1
    return lo


# FIPS 180-4: fractional parts of the square roots of the first 8 primes, and of the cube roots of
# the first 64 primes. Computed exactly instead of typed in, so no constant can be mistyped.
H0 = tuple(_iroot(p << 64, 2) & MASK for p in _primes(8))
K = tuple(_iroot(p << 96, 3) & MASK for p in _primes(64))


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & MASK


def sha256_compress(state: tuple[int, ...], words: list[int]) -> tuple[int, ...]:
    """One SHA-256 compression of a 16-word block into an 8-word state."""
    w = list(words)
    for i in range(16, 64):
        s0 = _rotr(w[i - 15], 7) ^ _rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
        s1 = _rotr(w[i - 2], 17) ^ _rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
        w.append((w[i - 16] + s0 + w[i - 7] + s1) & MASK)
    a, b, c, d, e, f, g, h = state
    for i in range(64):
        t1 = h + (_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)) + (g ^ (e & (f ^ g))) + K[i] + w[i]
        t2 = (_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)) + ((a & b) | (c & (a | b)))
        h, g, f, e, d, c, b, a = g, f, e, (d + t1) & MASK, c, b, a, (t1 + t2) & MASK
    return tuple((s + v) & MASK for s, v in zip(state, (a, b, c, d, e, f, g, h), strict=True))


def header_words(header: bytes) -> list[int]:
    return list(struct.unpack(">20I", header))


def midstate(header: bytes) -> tuple[int, ...]:
    """State after the header's first 64-byte block: constant over the whole nonce search."""
    return sha256_compress(H0, header_words(header)[:16])


def make_header(seed: int, ntime: int) -> bytes:
    """An 80-byte block header (version, previous hash, merkle root, time, bits, nonce 0).

    The nonce occupies the last four bytes, read by the kernel as one big-endian word.
    """
    body = hashlib.sha256(f"minewatch-gpu-recording-{seed}".encode()).digest()
    prev = hashlib.sha256(body).digest()
    return (
        struct.pack("<I", 0x20000000)
        + prev
        + body
        + struct.pack("<II", ntime, 0x1D00FFFF)
        + (b"\0" * 4)
    )


def with_nonce(header: bytes, nonce: int) -> bytes:
    return header[:76] + struct.pack(">I", nonce)


def sha256d_header(header: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(header).digest()).digest()


def share_ok(digest: bytes, zero_bits: int) -> bool:
    """Bitcoin's comparison: the digest read as a little-endian number is below 2^(256-bits)."""
    return int.from_bytes(digest, "little") < (1 << (256 - zero_bits))


def kernel_inputs(header: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(midstate, tail) as the kernels take them: 8 and 3 big-endian words."""
    words = header_words(header)
    return np.array(midstate(header), dtype=np.uint32), np.array(words[16:19], dtype=np.uint32)


def digest_words(digest: bytes) -> list[int]:
    return list(struct.unpack(">8I", digest))


# -- the CUDA C kernel (CuPy); the same source compiles as C for a CPU check in the tests -------


def cuda_c_source() -> str:
    """SHA-256d nonce search in CUDA C; with ``__CUDACC__`` undefined it is plain C99 for tests."""
    k_list = ", ".join(f"0x{k:08x}u" for k in K)
    h_list = ", ".join(f"0x{h:08x}u" for h in H0)
    return (
        r"""
#ifdef __CUDACC__
#define MW_FN __device__ __forceinline__
#define MW_CONST __constant__ const
#else
#define MW_FN static inline
#define MW_CONST static const
#endif
MW_CONST unsigned int MW_K[64] = {"""
        + k_list
        + r"""};
MW_CONST unsigned int MW_H0[8] = {"""
        + h_list
        + r"""};

MW_FN unsigned int mw_rotr(unsigned int x, int n) { return (x >> n) | (x << (32 - n)); }

/* One compression of the 16-word block w (overwritten) into st (updated in place). */
MW_FN void mw_compress(unsigned int st[8], unsigned int w[16]) {
    unsigned int a = st[0], b = st[1], c = st[2], d = st[3];
    unsigned int e = st[4], f = st[5], g = st[6], h = st[7];
#ifdef __CUDACC__
#pragma unroll
#endif
    for (int i = 0; i < 64; i++) {
        unsigned int wi;
        if (i < 16) {
            wi = w[i];
        } else {
            unsigned int x = w[(i + 1) & 15], y = w[(i + 14) & 15];
            unsigned int s0 = mw_rotr(x, 7) ^ mw_rotr(x, 18) ^ (x >> 3);
            unsigned int s1 = mw_rotr(y, 17) ^ mw_rotr(y, 19) ^ (y >> 10);
            wi = w[i & 15] + s0 + w[(i + 9) & 15] + s1;
            w[i & 15] = wi;
        }
        unsigned int t1 = h + (mw_rotr(e, 6) ^ mw_rotr(e, 11) ^ mw_rotr(e, 25))
                          + (g ^ (e & (f ^ g))) + MW_K[i] + wi;
        unsigned int t2 = (mw_rotr(a, 2) ^ mw_rotr(a, 13) ^ mw_rotr(a, 22))
                          + ((a & b) | (c & (a | b)));
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    st[0] += a; st[1] += b; st[2] += c; st[3] += d;
    st[4] += e; st[5] += f; st[6] += g; st[7] += h;
}

/* SHA-256d of the 80-byte header whose first block gives `mid` and whose second block starts
   with the three words `tail` followed by the nonce word. */
MW_FN void mw_sha256d(const unsigned int *mid, const unsigned int *tail, unsigned int nonce,
                      unsigned int out[8]) {
    unsigned int w[16];
    unsigned int st[8];
    for (int i = 0; i < 8; i++) st[i] = mid[i];
    w[0] = tail[0]; w[1] = tail[1]; w[2] = tail[2]; w[3] = nonce;
    w[4] = 0x80000000u;
    for (int i = 5; i < 15; i++) w[i] = 0u;
    w[15] = 640u;
    mw_compress(st, w);
    for (int i = 0; i < 8; i++) { w[i] = st[i]; out[i] = MW_H0[i]; }
    w[8] = 0x80000000u;
    for (int i = 9; i < 15; i++) w[i] = 0u;
    w[15] = 256u;
    mw_compress(out, w);
}

MW_FN unsigned int mw_bswap(unsigned int x) {
    return (x << 24) | ((x & 0xff00u) << 8) | ((x >> 8) & 0xff00u) | (x >> 24);
}

#ifdef __CUDACC__
extern "C" __global__ void mw_search(const unsigned int *mid, const unsigned int *tail,
                                     unsigned long long base, unsigned int per_thread,
                                     unsigned int zero_bits, unsigned int *found,
                                     unsigned int *count, unsigned int found_max) {
    unsigned long long tid = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    unsigned long long start = base + tid * per_thread;
    unsigned int out[8];
    for (unsigned int k = 0; k < per_thread; k++) {
        unsigned int nonce = (unsigned int)(start + k);
        mw_sha256d(mid, tail, nonce, out);
        if ((mw_bswap(out[7]) >> (32u - zero_bits)) == 0u) {
            unsigned int slot = atomicAdd(count, 1u);
            if (slot < found_max) found[slot] = nonce;
        }
    }
}

extern "C" __global__ void mw_digests(const unsigned int *mid, const unsigned int *tail,
                                      unsigned long long base, unsigned int n,
                                      unsigned int *digests) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) mw_sha256d(mid, tail, (unsigned int)(base + i), digests + 8 * i);
}
#else
void mw_cpu_sha256d(const unsigned int *mid, const unsigned int *tail, unsigned int nonce,
                    unsigned int *out) {
    mw_sha256d(mid, tail, nonce, out);
}
unsigned int mw_cpu_bswap(unsigned int x) { return mw_bswap(x); }
#endif
"""
    )


# -- the numba.cuda kernel (fallback; also what the CUDA simulator checks on a CPU) ------------


_numba_cuda: Any = None
"""numba.cuda, set by :func:`numba_kernels`; a module-level name, because numba's CUDA simulator
swaps the module for its per-thread stand-in only where a kernel reaches it as a global."""


def numba_kernels(cuda: Any) -> tuple[Any, Any]:
    """(search, digests) kernels in numba.cuda, the same algorithm as :func:`cuda_c_source`.

    Casts use numpy's integer types, which numba compiles as casts and the simulator runs as
    numpy scalars; sums are formed in 64 bits and masked, and shift counts are typed, so the
    simulator gives the same result under numpy 1.x (value-based casting) and 2.x (NEP 50).
    """
    global _numba_cuda
    _numba_cuda = cuda
    k_table = np.array(K, dtype=np.uint32)
    h_table = np.array(H0, dtype=np.uint32)
    u32 = np.uint32
    u64 = np.uint64
    m32 = np.uint64(0xFFFFFFFF)  # typed, so numpy 1.x does not promote the mask to int64
    device_fn = cast(Callable[[Callable[..., Any]], Callable[..., Any]], cuda.jit(device=True))
    kernel = cast(Callable[[Callable[..., Any]], Any], cuda.jit)

    @device_fn
    def rotr(x: Any, n: Any) -> Any:
        return u32((x >> u32(n)) | (x << u32(32 - n)))

    @device_fn
    def compress(st: Any, w: Any) -> None:
        a, b, c, d = st[0], st[1], st[2], st[3]
        e, f, g, h = st[4], st[5], st[6], st[7]
        for i in range(64):
            if i < 16:
                wi = w[i]
            else:
                x = w[(i + 1) & 15]
                y = w[(i + 14) & 15]
                s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x >> u32(3))
                s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y >> u32(10))
                wi = u32((u64(w[i & 15]) + s0 + w[(i + 9) & 15] + s1) & m32)
                w[i & 15] = wi
            big_s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
            ch = g ^ (e & (f ^ g))
            t1 = u32((u64(h) + big_s1 + ch + k_table[i] + wi) & m32)
            big_s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
            maj = (a & b) | (c & (a | b))
            t2 = u32((u64(big_s0) + maj) & m32)
            h = g
            g = f
            f = e
            e = u32((u64(d) + t1) & m32)
            d = c
            c = b
            b = a
            a = u32((u64(t1) + t2) & m32)
        st[0] = u32((u64(st[0]) + a) & m32)
        st[1] = u32((u64(st[1]) + b) & m32)
        st[2] = u32((u64(st[2]) + c) & m32)
        st[3] = u32((u64(st[3]) + d) & m32)
        st[4] = u32((u64(st[4]) + e) & m32)
        st[5] = u32((u64(st[5]) + f) & m32)
        st[6] = u32((u64(st[6]) + g) & m32)
        st[7] = u32((u64(st[7]) + h) & m32)

    @device_fn
    def sha256d(mid: Any, tail: Any, nonce: Any, out: Any) -> None:
        w = _numba_cuda.local.array(16, np.uint32)
        st = _numba_cuda.local.array(8, np.uint32)
        for i in range(8):
            st[i] = mid[i]
        w[0] = tail[0]
        w[1] = tail[1]
        w[2] = tail[2]
        w[3] = nonce
        w[4] = u32(0x80000000)
        for i in range(5, 15):
            w[i] = u32(0)
        w[15] = u32(640)
        compress(st, w)
        for i in range(8):
            w[i] = st[i]
            out[i] = h_table[i]
        w[8] = u32(0x80000000)
        for i in range(9, 15):
            w[i] = u32(0)
        w[15] = u32(256)
        compress(out, w)

    @kernel
    def search(
        mid: Any,
        tail: Any,
        base: Any,
        per_thread: Any,
        zero_bits: Any,
        found: Any,
        count: Any,
    ) -> None:
        out = _numba_cuda.local.array(8, np.uint32)
        start = u64(base) + u64(_numba_cuda.grid(1)) * u64(per_thread)
        for k in range(per_thread):
            nonce = u32((start + u64(k)) & m32)
            sha256d(mid, tail, nonce, out)
            x = out[7]
            swapped = u32(
                ((x & 0xFF) << 24) | ((x & 0xFF00) << 8) | ((x >> 8) & 0xFF00) | (x >> 24)
            )
            if (swapped >> (32 - zero_bits)) == 0:
                slot = _numba_cuda.atomic.add(count, 0, 1)
                if slot < found.size:
                    found[slot] = nonce

    @kernel
    def digests(mid: Any, tail: Any, base: Any, n: Any, out: Any) -> None:
        i = _numba_cuda.grid(1)
        if i < n:
            sha256d(mid, tail, u32((u64(base) + u64(i)) & m32), out[i])

    return search, digests


class HashBackend:
    """A verified SHA-256d searcher on the GPU: ``digests`` for checking, ``search`` for work."""

    name = "none"

    def digests(self, header: bytes, base: int, n: int) -> np.ndarray:
        raise NotImplementedError

    def search(self, header: bytes, base: int, zero_bits: int) -> list[int]:
        raise NotImplementedError

    nonces_per_launch = 0


class CupyBackend(HashBackend):
    name = "cupy (CUDA C kernel via NVRTC)"

    def __init__(self, per_thread: int = 256, threads: int = 256, blocks: int | None = None):
        cp: Any = importlib.import_module("cupy")
        self.cp = cp
        module = cp.RawModule(code=cuda_c_source())
        self.k_search = module.get_function("mw_search")
        self.k_digests = module.get_function("mw_digests")
        sms = int(cp.cuda.Device().attributes["MultiProcessorCount"])
        self.threads = threads
        self.blocks = blocks or sms * 32
        self.per_thread = per_thread
        self.nonces_per_launch = self.blocks * self.threads * per_thread
        self.found = cp.zeros(1024, dtype=cp.uint32)
        self.count = cp.zeros(1, dtype=cp.uint32)

    def _inputs(self, header: bytes) -> tuple[Any, Any]:
        mid, tail = kernel_inputs(header)
        return self.cp.asarray(mid), self.cp.asarray(tail)

    def digests(self, header: bytes, base: int, n: int) -> np.ndarray:
        cp = self.cp
        mid, tail = self._inputs(header)
        out = cp.zeros((n, 8), dtype=cp.uint32)
        grid = (n + 127) // 128
        self.k_digests((grid,), (128,), (mid, tail, np.uint64(base), np.uint32(n), out))
        return np.asarray(cp.asnumpy(out))

    def search(self, header: bytes, base: int, zero_bits: int) -> list[int]:
        cp = self.cp
        mid, tail = self._inputs(header)
        self.count.fill(0)
        self.k_search(
            (self.blocks,),
            (self.threads,),
            (
                mid,
                tail,
                np.uint64(base),
                np.uint32(self.per_thread),
                np.uint32(zero_bits),
                self.found,
                self.count,
                np.uint32(self.found.size),
            ),
        )
        hits = int(self.count.get()[0])  # synchronises
        return [int(x) for x in cp.asnumpy(self.found[: min(hits, self.found.size)])]


class NumbaBackend(HashBackend):
    name = "numba.cuda"

    def __init__(self, per_thread: int = 256, threads: int = 256, blocks: int | None = None):
        cuda: Any = importlib.import_module("numba.cuda")
        self.cuda = cuda
        self.k_search, self.k_digests = numba_kernels(cuda)
        if blocks is None:
            device = cuda.get_current_device()
            blocks = int(device.MULTIPROCESSOR_COUNT) * 32
        self.threads = threads
        self.blocks = blocks
        self.per_thread = per_thread
        self.nonces_per_launch = self.blocks * self.threads * per_thread
        self.found = cuda.to_device(np.zeros(1024, dtype=np.uint32))
        self.count = cuda.to_device(np.zeros(1, dtype=np.uint32))

    def digests(self, header: bytes, base: int, n: int) -> np.ndarray:
        mid, tail = kernel_inputs(header)
        out = self.cuda.to_device(np.zeros((n, 8), dtype=np.uint32))
        grid = (n + 31) // 32
        self.k_digests[grid, 32](
            self.cuda.to_device(mid), self.cuda.to_device(tail), np.uint64(base), n, out
        )
        return np.asarray(out.copy_to_host())

    def search(self, header: bytes, base: int, zero_bits: int) -> list[int]:
        mid, tail = kernel_inputs(header)
        self.count.copy_to_device(np.zeros(1, dtype=np.uint32))
        self.k_search[self.blocks, self.threads](
            self.cuda.to_device(mid),
            self.cuda.to_device(tail),
            np.uint64(base),
            np.uint32(self.per_thread),
            np.uint32(zero_bits),
            self.found,
            self.count,
        )
        hits = int(self.count.copy_to_host()[0])
        found = self.found.copy_to_host()
        return [int(x) for x in found[: min(hits, found.size)]]


def verify_backend(backend: HashBackend, n: int = 256) -> None:
    """Compare the kernel's SHA-256d digests with hashlib; raise on the first difference."""
    header = make_header(seed=1, ntime=1_700_000_000)
    base = 0xFFFFFFFF - n // 2  # crosses the 32-bit wrap of the nonce on purpose
    got = backend.digests(header, base, n)
    for i in range(n):
        nonce = (base + i) & MASK
        want = digest_words(sha256d_header(with_nonce(header, nonce)))
        if [int(x) for x in got[i]] != want:
            raise RuntimeError(f"{backend.name}: SHA-256d of nonce {nonce:#x} differs from hashlib")


def choose_backend(preference: str, dry_run: bool) -> HashBackend:
    errors: list[str] = []
    order = {"auto": ("cupy", "numba"), "cupy": ("cupy",), "numba": ("numba",)}[preference]
    if dry_run:
        order = ("numba",)
    for name in order:
        try:
            if name == "cupy":
                backend: HashBackend = CupyBackend()
            elif dry_run:
                backend = NumbaBackend(per_thread=2, threads=4, blocks=2)
            else:
                backend = NumbaBackend()
            verify_backend(backend, n=8 if dry_run else 256)
            return backend
        except Exception as exc:  # every backend's failure is reported
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            print(f"  hash backend {name} unusable: {errors[-1]}", flush=True)
    raise RuntimeError("no SHA-256d backend works: " + "; ".join(errors))


def run_hashing(backend: HashBackend, ctx: Any, zero_bits: int) -> dict[str, Any]:
    """Search nonces until told to stop; re-hash every share found with hashlib."""
    ntime = 1_700_000_000
    header = make_header(seed=2, ntime=ntime)
    base = 0
    hashes = 0
    shares: list[tuple[int, int]] = []
    started = time.monotonic()
    while ctx.keep_going():
        for nonce in backend.search(header, base, zero_bits):
            shares.append((ntime, nonce))
        hashes += backend.nonces_per_launch
        base += backend.nonces_per_launch
        ctx.ready()
        if base + backend.nonces_per_launch > 1 << 32:  # nonce space used up: roll the time
            base = 0
            ntime += 1
            header = make_header(seed=2, ntime=ntime)
    elapsed = time.monotonic() - started
    verified = sum(
        share_ok(sha256d_header(with_nonce(make_header(seed=2, ntime=t), n)), zero_bits)
        for t, n in shares
    )
    return {
        "backend": backend.name,
        "hashes": hashes,
        "seconds": round(elapsed, 3),
        "hash_rate_mh_s": round(hashes / max(elapsed, 1e-9) / 1e6, 3),
        "zero_bits": zero_bits,
        "shares_found": len(shares),
        "shares_verified_with_hashlib": verified,
        "shares_expected": round(hashes / 2**zero_bits, 2),
    }


# -- PyTorch workloads ----------------------------------------------------------------------------


def _torch() -> Any:
    return importlib.import_module("torch")


def build_cnn(torch: Any, width: int, classes: int) -> Any:
    """A ResNet-18-style network: four stages of two residual blocks."""
    nn = torch.nn
    module_base: Any = nn.Module

    class Block(module_base):  # type: ignore[misc]
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.b1 = nn.BatchNorm2d(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.b2 = nn.BatchNorm2d(cout)
            self.skip = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                if stride != 1 or cin != cout
                else nn.Identity()
            )

        def forward(self, x: Any) -> Any:
            y = torch.relu(self.b1(self.c1(x)))
            return torch.relu(self.b2(self.c2(y)) + self.skip(x))

    layers: list[Any] = [
        nn.Conv2d(3, width, 7, 2, 3, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    cin = width
    for i, cout in enumerate((width, width * 2, width * 4, width * 8)):
        layers += [Block(cin, cout, 1 if i == 0 else 2), Block(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def _image_loader(torch: Any, pool: int, size: int, batch: int, workers: int, classes: int) -> Any:
    """A DataLoader over a pool of random uint8 images held in host memory."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (pool, 3, size, size), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, classes, (pool,), generator=generator)

    class Images(torch.utils.data.Dataset):  # type: ignore[misc]
        def __len__(self) -> int:
            return pool

        def __getitem__(self, i: int) -> tuple[Any, Any]:
            return images[i], labels[i]

    extra: dict[str, Any] = {"persistent_workers": True, "prefetch_factor": 4} if workers else {}
    return torch.utils.data.DataLoader(
        Images(),
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        **extra,
    )


class Cadence:
    """Fires every ``every_s`` seconds of wall time (evaluation, checkpoints)."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.next = time.monotonic() + every_s

    def due(self) -> bool:
        if time.monotonic() >= self.next:
            self.next = time.monotonic() + self.every_s
            return True
        return False


def _autocast(torch: Any, device: Any) -> Any:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def run_train_cnn(ctx: Any, device: Any, small: bool, ckpt_dir: Path) -> dict[str, Any]:
    torch = _torch()
    classes = 1000
    width, size, batch, workers, pool = (8, 32, 8, 0, 32) if small else (64, 176, 256, 8, 3072)
    model = build_cnn(torch, width, classes).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-5)
    loader = _image_loader(torch, pool, size, batch, workers, classes)
    eval_loader = _image_loader(torch, max(pool // 4, batch), size, batch, 0, classes)
    evaluate, checkpoint = Cadence(0.8 if small else 20.0), Cadence(1.2 if small else 30.0)
    steps = evals = checkpoints = images_seen = 0
    loss_value = math.nan
    started = time.monotonic()

    def prepare(x: Any) -> Any:
        x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        return x.float().div_(255.0)

    while ctx.keep_going():
        for x, y in loader:
            model.train()
            x, y = prepare(x), y.to(device, non_blocking=True)
            with _autocast(torch, device):
                loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            images_seen += int(x.shape[0])
            if steps == 2:
                ctx.ready()
            if steps % 20 == 0:
                loss_value = float(loss.item())  # the usual logging sync
            if evaluate.due():
                model.eval()
                with torch.no_grad(), _autocast(torch, device):
                    for j, (ex, ey) in enumerate(eval_loader):
                        model(prepare(ex)).argmax(1).eq(ey.to(device)).float().mean().item()
                        if j >= 9:
                            break
                evals += 1
            if checkpoint.due():
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
                torch.save(state, ckpt_dir / "cnn.pt")
                checkpoints += 1
            if not ctx.keep_going():
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.monotonic() - started
    del model, optimizer, loader, eval_loader
    return {
        "steps": steps,
        "images_per_s": round(images_seen / max(elapsed, 1e-9), 1),
        "batch": batch,
        "image_size": size,
        "evaluations": evals,
        "checkpoints": checkpoints,
        "last_logged_loss": None if math.isnan(loss_value) else round(loss_value, 4),
        "seconds": round(elapsed, 3),
    }


def run_train_lm(ctx: Any, device: Any, small: bool, ckpt_dir: Path) -> dict[str, Any]:
    torch = _torch()
    nn = torch.nn
    module_base: Any = nn.Module
    vocab, d_model, heads, layers, seq, batch = (
        (256, 32, 2, 2, 16, 2) if small else (32000, 1024, 16, 8, 1024, 16)
    )

    functional = nn.functional
    sdpa = getattr(functional, "scaled_dot_product_attention", None)  # torch >= 2.0

    def causal_attention(q: Any, k: Any, v: Any) -> Any:
        if sdpa is not None:
            return sdpa(q, k, v, is_causal=True)
        # torch 1.x (CPU dry runs): the same computation written out.
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        future = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).triu(1)
        return scores.masked_fill(future, float("-inf")).softmax(-1) @ v

    class Block(module_base):  # type: ignore[misc]
        """A pre-norm decoder block: causal self-attention and a GELU MLP."""

        def __init__(self) -> None:
            super().__init__()
            self.ln1 = nn.LayerNorm(d_model)
            self.qkv = nn.Linear(d_model, 3 * d_model)
            self.proj = nn.Linear(d_model, d_model)
            self.ln2 = nn.LayerNorm(d_model)
            self.mlp = nn.Sequential(
                nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model)
            )

        def forward(self, x: Any) -> Any:
            b, t, c = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(c, dim=-1)
            q, k, v = (z.view(b, t, heads, c // heads).transpose(1, 2) for z in (q, k, v))
            y = causal_attention(q, k, v).transpose(1, 2).reshape(b, t, c)
            x = x + self.proj(y)
            return x + self.mlp(self.ln2(x))

    class LM(module_base):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab, d_model)
            self.position = nn.Embedding(seq, d_model)
            self.blocks = nn.Sequential(*[Block() for _ in range(layers)])
            self.norm = nn.LayerNorm(d_model)
            self.head = nn.Linear(d_model, vocab, bias=False)

        def forward(self, tokens: Any) -> Any:
            positions = torch.arange(tokens.shape[1], device=tokens.device)
            x = self.embed(tokens) + self.position(positions)
            return self.head(self.norm(self.blocks(x)))

    model = LM().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    evaluate, checkpoint = Cadence(0.8 if small else 15.0), Cadence(1.2 if small else 25.0)
    steps = evals = checkpoints = 0
    loss_value = math.nan
    started = time.monotonic()

    def batch_of_tokens() -> Any:  # generated on the device: nothing crosses PCIe
        return torch.randint(0, vocab, (batch, seq + 1), device=device)

    while ctx.keep_going():
        tokens = batch_of_tokens()
        with _autocast(torch, device):
            logits = model(tokens[:, :-1])
            loss = nn.functional.cross_entropy(logits.reshape(-1, vocab), tokens[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        steps += 1
        if steps == 2:
            ctx.ready()
        if steps % 20 == 0:
            loss_value = float(loss.item())
        if evaluate.due():
            with torch.no_grad(), _autocast(torch, device):
                for _ in range(5):
                    t = batch_of_tokens()
                    model(t[:, :-1]).float().logsumexp(-1).mean().item()
            evals += 1
        if checkpoint.due():
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
            torch.save(state, ckpt_dir / "lm.pt")
            checkpoints += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.monotonic() - started
    params = sum(p.numel() for p in model.parameters())
    del model, optimizer
    return {
        "steps": steps,
        "tokens_per_s": round(steps * batch * seq / max(elapsed, 1e-9), 1),
        "parameters": int(params),
        "evaluations": evals,
        "checkpoints": checkpoints,
        "last_logged_loss": None if math.isnan(loss_value) else round(loss_value, 4),
        "seconds": round(elapsed, 3),
    }


def run_inference(ctx: Any, device: Any, small: bool) -> dict[str, Any]:
    """Poisson requests, dynamic batches of up to 64, answers copied back to the host."""
    torch = _torch()
    width, size, b_max = (8, 32, 4) if small else (64, 176, 64)
    model = build_cnn(torch, width, 1000).to(device).eval().to(memory_format=torch.channels_last)
    pinned = torch.cuda.is_available()
    source = torch.randint(0, 256, (b_max, 3, size, size), dtype=torch.uint8)
    if pinned:
        source = source.pin_memory()
    rng = np.random.default_rng(0)

    def serve(n: int) -> Any:
        x = source[:n].to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), _autocast(torch, device):
            return model(x.float().div_(255.0)).float().softmax(-1).topk(5).indices.cpu()

    # Capacity at full batches, then arrivals at ~70 % of it (a steadily loaded server).
    for _ in range(3):
        serve(b_max)
    t0 = time.monotonic()
    for _ in range(5):
        serve(b_max)
    per_batch = (time.monotonic() - t0) / 5
    rate = 0.7 * b_max / per_batch
    ctx.ready()
    started = time.monotonic()
    next_arrival = started
    queue = 0
    served = batches = 0
    sizes: list[int] = []
    while ctx.keep_going():
        now = time.monotonic()
        while next_arrival <= now:
            queue += 1
            next_arrival += float(rng.exponential(1.0 / rate))
        if queue == 0:
            time.sleep(max(0.0, min(next_arrival - now, 0.05)))
            continue
        n = min(queue, b_max)
        serve(n)
        queue -= n
        served += n
        batches += 1
        sizes.append(n)
    elapsed = time.monotonic() - started
    return {
        "requests_served": served,
        "requests_per_s": round(served / max(elapsed, 1e-9), 1),
        "offered_rate_per_s": round(rate, 1),
        "batches": batches,
        "mean_batch": round(float(np.mean(sizes)), 2) if sizes else 0.0,
        "seconds": round(elapsed, 3),
    }


# -- sampling while a workload runs --------------------------------------------------------------


class PlaceholderSampler:
    """Dry-run stand-in for NVML: flat series, labelled as NOT a measurement."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop

    def sample(self, duration_s: float, interval_s: float) -> list[GpuTrace]:
        started = time.monotonic()
        self.stop.wait(duration_s)
        n = max(1, int((time.monotonic() - started) / interval_s))
        flat = np.full(n, 50.0)
        return [
            GpuTrace(
                index=0,
                name="dry-run placeholder",
                interval_s=interval_s,
                t_s=np.asarray(np.arange(n) * interval_s, dtype=np.float64),
                gpu_util_pct=flat,
                mem_util_pct=flat,
                power_w=flat,
                sm_clock_mhz=flat,
                mem_clock_mhz=flat,
                mem_used_bytes=flat,
                temperature_c=flat,
                pcie_rx_bytes_s=flat,
                pcie_tx_bytes_s=flat,
                source="dry-run placeholder: not a measurement",
            )
        ]


class Recorder(threading.Thread):
    """Samples for ``record_s`` once the workload is running and ``warmup_s`` more have passed.

    The workload calls :meth:`ready` after its first step (models built, kernels compiled,
    loader workers started) and :meth:`keep_going` before each step; it stops when the
    recording is over.
    """

    READY_TIMEOUT_S = 180.0

    def __init__(self, sampler: Any, warmup_s: float, record_s: float, interval_s: float) -> None:
        super().__init__(daemon=True)
        self.sampler = sampler
        self.warmup_s = warmup_s
        self.record_s = record_s
        self.interval_s = interval_s
        self.abort = threading.Event()
        self.is_ready = threading.Event()
        self.traces: list[GpuTrace] = []
        self.error: BaseException | None = None

    def ready(self) -> None:
        self.is_ready.set()

    def keep_going(self) -> bool:
        return self.is_alive()

    def run(self) -> None:
        if not self.is_ready.wait(self.READY_TIMEOUT_S):
            self.error = TimeoutError("the workload never reported its first step")
            return
        if self.abort.wait(self.warmup_s):
            return
        try:
            self.traces = self.sampler.sample(self.record_s, self.interval_s)
        except BaseException as exc:  # handed to the main thread
            self.error = exc


def window_verdicts(trace: GpuTrace, length_s: float = 10.0, step_s: float = 5.0) -> dict[str, int]:
    counts: Counter[str] = Counter()
    start = 0.0
    while start + length_s <= trace.duration_s + 1e-9:
        counts[classify_trace(trace.window(start, length_s)).state] += 1
        start += step_s
    return dict(counts)


def plot(traces: dict[str, GpuTrace], path: Path) -> str:
    try:
        matplotlib: Any = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt: Any = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        return "matplotlib not installed: no figure"
    rows = (
        ("gpu_util_pct", "kernel-active %", 1.0),
        ("mem_util_pct", "memory controller %", 1.0),
        ("power_w", "power W", 1.0),
        ("sm_clock_mhz", "SM clock MHz", 1.0),
        ("pcie_rx_bytes_s", "PCIe rx MB/s", 1e-6),
        ("mem_used_bytes", "memory used GiB", 1 / 2**30),
    )
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, 2.0 * len(rows)), sharex=True)
    for (series, title, scale), ax in zip(rows, axes, strict=True):
        for phase, trace in traces.items():
            ax.plot(trace.t_s, getattr(trace, series) * scale, label=phase, linewidth=1)
        ax.set_ylabel(title, fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, ncol=len(traces), loc="lower right")
    axes[-1].set_xlabel("seconds since recording started")
    name = next(iter(traces.values())).name if traces else "GPU"
    fig.suptitle(f"NVML telemetry on {name}: mining kernel vs AI workloads", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"figure written to {path}"


def run_phase(
    phase: str,
    workload: Callable[[Recorder], dict[str, Any]],
    sampler: Any,
    args: argparse.Namespace,
    record_s: float,
) -> tuple[GpuTrace | None, dict[str, Any]]:
    print(f"\n== {phase}: warm-up {args.warmup_s:g} s, then {record_s:g} s recorded", flush=True)
    recorder = Recorder(sampler, args.warmup_s, record_s, args.interval)
    recorder.start()
    summary: dict[str, Any] = {"phase": phase, "label": LABELS[phase]}
    try:
        summary["workload"] = workload(recorder)
    except Exception as exc:  # one failing phase must not cost the others their GPU time
        recorder.abort.set()
        if getattr(sampler, "stop", None) is not None:
            sampler.stop.set()
        recorder.join(timeout=30)
        summary["error"] = f"workload failed: {type(exc).__name__}: {exc}"
        print(f"   {summary['error']}", flush=True)
        traceback.print_exc()
        return None, summary
    recorder.join(timeout=record_s + args.warmup_s + 30)
    print(f"   workload: {json.dumps(summary['workload'])}", flush=True)
    if recorder.error is not None:
        summary["error"] = f"{type(recorder.error).__name__}: {recorder.error}"
        print(f"   telemetry failed: {summary['error']}", flush=True)
        return None, summary
    if not recorder.traces:
        summary["error"] = "no trace recorded"
        return None, summary
    trace = recorder.traces[args.gpu] if args.gpu < len(recorder.traces) else recorder.traces[0]
    trace.label = LABELS[phase]
    trace.meta["workload"] = json.dumps(summary["workload"], sort_keys=True)
    trace.meta["recorded_by"] = "scripts/gpu/record_telemetry.py"
    trace.meta["host"] = platform.node()
    verdict = classify_trace(trace)
    summary["verdict"] = {
        "state": verdict.state,
        "score": round(verdict.score, 3),
        "confidence": round(verdict.confidence, 3),
        "profile": verdict.profile,
        "evidence": verdict.evidence,
    }
    summary["windows_10s"] = window_verdicts(trace)
    summary["samples"] = trace.n_samples
    print(f"   verdict: {verdict.state} (score {verdict.score:.2f})", flush=True)
    for line in verdict.evidence:
        print(f"     - {line}", flush=True)
    print(f"   10-s windows: {summary['windows_10s']}", flush=True)
    return trace, summary


def _need(backend: HashBackend | None) -> HashBackend:
    if backend is None:
        raise RuntimeError("no SHA-256d backend was set up")
    return backend


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-traces")))
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset")
    parser.add_argument("--interval", type=float, default=0.5, help="NVML sample interval, s")
    parser.add_argument("--warmup-s", type=float, default=8.0)
    parser.add_argument("--hash-s", type=float, default=75.0)
    parser.add_argument("--train-s", type=float, default=75.0)
    parser.add_argument("--lm-s", type=float, default=45.0)
    parser.add_argument("--infer-s", type=float, default=30.0)
    parser.add_argument("--zero-bits", type=int, default=32, help="share difficulty in bits")
    parser.add_argument("--hash-backend", choices=("auto", "cupy", "numba"), default="auto")
    parser.add_argument("--gpu", type=int, default=0, help="which GPU's trace to keep")
    parser.add_argument("--dry-run", action="store_true", help="CPU only, seconds, no NVML")
    args = parser.parse_args(argv)
    unknown = set(args.phases.split(",")) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))} (known: {', '.join(PHASES)})")
    if not 1 <= args.zero_bits <= 32:
        parser.error("--zero-bits must lie in 1..32")
    if args.dry_run:
        args.warmup_s = min(args.warmup_s, 0.5)
        args.interval = min(args.interval, 0.25)
        for name in ("hash_s", "train_s", "lm_s", "infer_s"):
            setattr(args, name, min(getattr(args, name), 2.0))
        args.zero_bits = min(args.zero_bits, 4)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    phases = [p for p in PHASES if p in args.phases.split(",")]
    if args.dry_run:
        os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
        if "numba" in sys.modules and os.environ["NUMBA_ENABLE_CUDASIM"] != "1":
            print("dry run needs NUMBA_ENABLE_CUDASIM=1 before numba is imported", flush=True)
            return 2
        warnings.filterwarnings("ignore", message="overflow encountered", category=RuntimeWarning)
    args.out.mkdir(parents=True, exist_ok=True)
    planned = sum(
        {"sha256d": args.hash_s, "train-cnn": args.train_s, "train-lm": args.lm_s}.get(
            p, args.infer_s
        )
        + args.warmup_s
        for p in phases
    )
    print(f"phases {phases}, about {planned:.0f} s of workload; writing to {args.out}", flush=True)

    torch: Any = None
    device: Any = None
    needs_torch = any(p != "sha256d" for p in phases)
    if needs_torch:
        try:
            torch = _torch()
        except ImportError:
            if not args.dry_run:
                print("torch is not installed: pip install torch (a CUDA build)", flush=True)
                return 2
            print("torch not installed: PyTorch phases skipped in this dry run", flush=True)
            phases = [p for p in phases if p == "sha256d"]
    if torch is not None:
        if not args.dry_run and not torch.cuda.is_available():
            print("torch sees no CUDA device: nothing to record", flush=True)
            return 2
        device = torch.device("cpu" if args.dry_run else "cuda")
        torch.manual_seed(0)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}", flush=True)

    stop = threading.Event()

    def make_sampler() -> Any:
        stop.clear()
        if args.dry_run:
            return PlaceholderSampler(stop)
        return NvmlSampler(stop=stop)

    if not args.dry_run:
        try:
            probe = NvmlSampler().sample(0.5, 0.25)
            print(f"NVML sees {len(probe)} GPU(s): {[t.name for t in probe]}", flush=True)
            for spot in probe[0].blind_spots if probe else []:
                print(f"  NVML blind spot: {spot}", flush=True)
        except GpuUnavailableError as exc:
            print(f"cannot record: {exc}", flush=True)
            return 2

    backend: HashBackend | None = None
    if "sha256d" in phases:
        print("checking the SHA-256d kernel against hashlib ...", flush=True)
        backend = choose_backend(args.hash_backend, args.dry_run)
        print(f"  {backend.name}: digests match hashlib", flush=True)

    summaries: list[dict[str, Any]] = []
    traces: dict[str, GpuTrace] = {}
    ckpt_dir = Path(tempfile.mkdtemp(prefix="mw-gpu-ckpt-"))
    small = bool(args.dry_run)
    workloads: dict[str, tuple[Callable[[Recorder], dict[str, Any]], float]] = {
        "sha256d": (lambda ctx: run_hashing(_need(backend), ctx, args.zero_bits), args.hash_s),
        "train-cnn": (lambda ctx: run_train_cnn(ctx, device, small, ckpt_dir), args.train_s),
        "train-lm": (lambda ctx: run_train_lm(ctx, device, small, ckpt_dir), args.lm_s),
        "infer": (lambda ctx: run_inference(ctx, device, small), args.infer_s),
    }
    for phase in phases:
        workload, record_s = workloads[phase]
        trace, summary = run_phase(phase, workload, make_sampler(), args, record_s)
        summaries.append(summary)
        if trace is not None:
            traces[phase] = trace
            path = trace.save(args.out / f"{phase}.trace.json")
            print(f"   trace written to {path}", flush=True)
        gc.collect()
        if torch is not None and device is not None and device.type == "cuda":
            torch.cuda.empty_cache()  # the next phase's footprint must be its own

    for leftover in ckpt_dir.glob("*.pt"):
        leftover.unlink()
    ckpt_dir.rmdir()
    figure = plot(traces, args.out / "telemetry.png") if traces else "no traces: no figure"
    print(figure, flush=True)
    result = {
        "dry_run": args.dry_run,
        "interval_s": args.interval,
        "python": sys.version.split()[0],
        "torch": None if torch is None else str(torch.__version__),
        "phases": summaries,
        "figure": figure,
    }
    (args.out / "summary.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print("\n== summary", flush=True)
    for s in summaries:
        v = s.get("verdict", {})
        print(
            f"  {s['phase']:10s} {s['label']:45s} -> {v.get('state', 'no trace')}"
            f" (score {v.get('score', math.nan)}) windows {s.get('windows_10s')}",
            flush=True,
        )
    errors = [s for s in summaries if "error" in s]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
