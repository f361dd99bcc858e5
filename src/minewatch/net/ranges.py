"""Copying many byte ranges of a buffer into one, in compiled code.

A numpy fancy-index gather would need an eight-byte index per copied byte; at gigabyte scale that
index array costs more than the copy.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["gather_ranges"]


@njit(cache=True, nogil=True)
def _copy_ranges(buf: np.ndarray, starts: np.ndarray, lens: np.ndarray, out: np.ndarray) -> None:
    pos = 0
    for i in range(starts.shape[0]):
        n = lens[i]
        out[pos : pos + n] = buf[starts[i] : starts[i] + n]
        pos += n


def gather_ranges(buf: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """``buf[s:s+l]`` for every (s, l) pair, concatenated."""
    out = np.empty(int(lens.sum()), dtype=np.uint8)
    if out.shape[0]:
        _copy_ranges(buf, starts.astype(np.int64), lens.astype(np.int64), out)
    return out
