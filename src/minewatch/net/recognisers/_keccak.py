"""Keccak-256 (the pre-NIST padding Ethereum uses; ``hashlib.sha3_256`` differs in padding).

Needed to verify the hash that opens every Ethereum discovery v4 datagram, so that random
datagrams never pass for discovery traffic. The Keccak-f[1600] permutation is compiled with numba
(a pure-Python version takes milliseconds per datagram).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["keccak256"]

_RATE = 136  # bytes, for a 256-bit output
_ROUND_CONSTANTS = np.array(
    [
        0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
        0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
        0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
        0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
        0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
        0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
    ],
    dtype=np.uint64,
)  # fmt: skip
# Rotation offsets of the rho step, indexed as lanes[x + 5 * y].
_ROTATIONS = np.array(
    [0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14],
    dtype=np.uint64,
)


@njit(cache=True, nogil=True)
def _rotl(v: np.uint64, s: np.uint64) -> np.uint64:
    if s == 0:
        return v
    return (v << s) | (v >> (np.uint64(64) - s))


@njit(cache=True, nogil=True)
def _absorb(blocks: np.ndarray, rc: np.ndarray, rot: np.ndarray) -> np.ndarray:
    lanes = np.zeros(25, dtype=np.uint64)
    c = np.zeros(5, dtype=np.uint64)
    b = np.zeros(25, dtype=np.uint64)
    for blk in range(blocks.shape[0]):
        for i in range(17):
            lanes[i] ^= blocks[blk, i]
        for r in range(24):
            for x in range(5):
                c[x] = lanes[x] ^ lanes[x + 5] ^ lanes[x + 10] ^ lanes[x + 15] ^ lanes[x + 20]
            for x in range(5):
                d = c[(x + 4) % 5] ^ _rotl(c[(x + 1) % 5], np.uint64(1))
                for y in range(5):
                    lanes[x + 5 * y] ^= d
            for x in range(5):
                for y in range(5):
                    b[y + 5 * ((2 * x + 3 * y) % 5)] = _rotl(lanes[x + 5 * y], rot[x + 5 * y])
            for y in range(5):
                for x in range(5):
                    lanes[x + 5 * y] = b[x + 5 * y] ^ (
                        ~b[(x + 1) % 5 + 5 * y] & b[(x + 2) % 5 + 5 * y]
                    )
            lanes[0] ^= rc[r]
    return lanes[:4].copy()


def keccak256(data: bytes) -> bytes:
    """The 32-byte Keccak-256 digest of ``data``."""
    padded = bytearray(data)
    padded.append(0x01)
    padded.extend(b"\x00" * ((-len(padded)) % _RATE))
    padded[-1] |= 0x80
    blocks = np.frombuffer(bytes(padded), dtype="<u8").reshape(-1, _RATE // 8)
    return bytes(_absorb(blocks, _ROUND_CONSTANTS, _ROTATIONS).astype("<u8").tobytes())
