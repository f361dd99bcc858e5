"""Keccak-256 (Ethereum's, with the original padding): published digests, and agreement with a
slow reference written here from the Keccak-f[1600] specification at every block boundary."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minewatch.net.recognisers._keccak import keccak256

RATE = 136
MASK = (1 << 64) - 1


def _round_constants() -> list[int]:
    """The 24 iota constants, from the specification's degree-8 LFSR."""
    state, out = 1, []
    for _ in range(24):
        constant = 0
        for j in range(7):
            if state & 1:
                constant |= 1 << ((1 << j) - 1)
            state = ((state << 1) ^ 0x171) if state & 0x80 else state << 1
        out.append(constant)
    return out


def _rotation_offsets() -> dict[tuple[int, int], int]:
    """The rho offsets: (t+1)(t+2)/2 along the (x, y) -> (y, 2x + 3y) walk from (1, 0)."""
    offsets = {(0, 0): 0}
    x, y = 1, 0
    for t in range(24):
        offsets[(x, y)] = ((t + 1) * (t + 2) // 2) % 64
        x, y = y, (2 * x + 3 * y) % 5
    return offsets


ROUND_CONSTANTS = _round_constants()
ROTATIONS = _rotation_offsets()


def _rol(v: int, n: int) -> int:
    return ((v << n) | (v >> (64 - n))) & MASK if n else v


def _permute(a: list[list[int]]) -> None:
    for rc in ROUND_CONSTANTS:
        c = [a[x][0] ^ a[x][1] ^ a[x][2] ^ a[x][3] ^ a[x][4] for x in range(5)]
        d = [c[(x - 1) % 5] ^ _rol(c[(x + 1) % 5], 1) for x in range(5)]
        a[:] = [[a[x][y] ^ d[x] for y in range(5)] for x in range(5)]
        b = [[0] * 5 for _ in range(5)]
        for x in range(5):
            for y in range(5):
                b[y][(2 * x + 3 * y) % 5] = _rol(a[x][y], ROTATIONS[(x, y)])
        a[:] = [
            [b[x][y] ^ (~b[(x + 1) % 5][y] & MASK & b[(x + 2) % 5][y]) for y in range(5)]
            for x in range(5)
        ]
        a[0][0] ^= rc


def reference_keccak256(data: bytes) -> bytes:
    padded = bytearray(data) + b"\x01" + b"\x00" * ((-len(data) - 1) % RATE)
    padded[-1] |= 0x80
    state = [[0] * 5 for _ in range(5)]
    for start in range(0, len(padded), RATE):
        block = padded[start : start + RATE]
        for i in range(RATE // 8):
            state[i % 5][i // 5] ^= int.from_bytes(block[8 * i : 8 * i + 8], "little")
        _permute(state)
    return b"".join(state[i % 5][i // 5].to_bytes(8, "little") for i in range(4))


@pytest.mark.parametrize(
    ("data", "digest"),
    [
        (b"", "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
        (b"abc", "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"),
    ],
)
def test_published_digests(data: bytes, digest: str) -> None:
    assert keccak256(data).hex() == digest
    assert reference_keccak256(data).hex() == digest


def test_differs_from_nist_sha3() -> None:
    # the reason for the module: hashlib's SHA3-256 pads differently
    assert keccak256(b"abc") != hashlib.sha3_256(b"abc").digest()


@pytest.mark.parametrize("size", [1, 55, 56, 134, 135, 136, 137, 271, 272, 273, 1000])
def test_block_boundaries_match_the_reference(size: int) -> None:
    data = bytes((i * 37 + size) & 0xFF for i in range(size))
    assert keccak256(data) == reference_keccak256(data)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=600))
def test_matches_the_reference(data: bytes) -> None:
    assert keccak256(data) == reference_keccak256(data)


def test_digest_is_32_bytes_and_sensitive_to_every_byte() -> None:
    data = bytes(range(200))
    base = keccak256(data)
    assert len(base) == 32
    for i in (0, 99, 135, 136, 199):
        flipped = bytearray(data)
        flipped[i] ^= 1
        assert keccak256(bytes(flipped)) != base
