"""Bulk screening: which conversations could a recogniser claim?

Every direction of every connection is checked at once, without Python code per conversation:
text tokens (byte strings the recognisers list) are searched with ``bytes.find`` over
all heads together, and each recogniser's vectorised byte checks run over a matrix of the first
:data:`HEAD_WIDTH` bytes of every direction (a :class:`HeadView`). Only what something claims
reaches the recognisers' Python code.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numba import njit

__all__ = ["HEAD_WIDTH", "HeadView", "Screen", "screen_heads"]


@njit(cache=True, nogil=True)
def _head_matrix(heads: np.ndarray, begin: np.ndarray, total: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((begin.shape[0], width), dtype=np.uint8)
    for i in range(begin.shape[0]):
        for j in range(min(width, total[i])):
            out[i, j] = heads[begin[i] + j]
    return out


@dataclass(slots=True)
class HeadView:
    """The first bytes of every direction of every connection, for vectorised screening.

    Row *i* describes one side (one direction of one connection). ``head`` (``uint8``) holds the
    first :data:`HEAD_WIDTH` bytes of the side's reassembled head, zero-padded (use
    :meth:`col` for arithmetic); ``first_len`` is the
    size of its first payload packet and ``peer_first_len`` that of the opposite direction (0 when
    it sent nothing); ``total_len`` is the length of the side's head (at most ``HEAD_BYTES``).
    """

    head: np.ndarray
    first_len: np.ndarray
    peer_first_len: np.ndarray
    total_len: np.ndarray
    is_tcp: np.ndarray
    from_initiator: np.ndarray

    def col(self, i: int) -> np.ndarray:
        """Byte ``i`` of every row as ``int64`` (safe for shifts and sums)."""
        return self.head[:, i].astype(np.int64)


HEAD_WIDTH = 128


class Screen(Protocol):
    """What :func:`conversations` needs to know about the recognisers: cheap bulk checks."""

    tokens: list[bytes]
    """Byte strings looked for, as they are, in text-looking heads."""

    def __call__(self, view: HeadView) -> np.ndarray:
        """Per row of the view, the bit set (``uint64``) of recognisers that may claim it."""
        ...


def _sides_with(text: bytes, token: bytes, side_ends: list[int]) -> list[int]:
    """Indexes of the heads (laid end to end from the start of ``text``, ending at
    ``side_ends``) that hold ``token``; bytes after the last head are not searched.
    ``bytes.find`` runs at memory speed; after a hit the search resumes at the end of that head,
    since one hit per head is all a bit set can say."""
    found: list[int] = []
    if not side_ends:
        return found
    find, stop = text.find, side_ends[-1]
    pos = find(token, 0, stop)
    while pos >= 0:
        k = bisect_right(side_ends, pos)
        found.append(k)
        pos = find(token, side_ends[k], stop)
    return found


def screen_heads(
    screen: Screen,
    heads: np.ndarray,
    heads_bytes: bytes,
    seg_begin: np.ndarray,
    seg_end: np.ndarray,
    sside: np.ndarray,
    seg_len: np.ndarray,
    text_like: np.ndarray,
    conn_is_tcp: np.ndarray,
    nconn: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Token bits per side and binary-screen claims per connection, decided in bulk.

    ``heads`` holds each side's segments (``seg_begin``/``seg_end``, side ``sside``), text-looking
    sides first and whole, binary ones cut to their first :data:`HEAD_WIDTH` bytes; ``seg_len``
    gives the segments' full lengths.
    """
    tokens = np.zeros(2 * nconn, dtype=np.uint64)
    screened = np.zeros(nconn, dtype=np.uint64)
    if heads.shape[0] == 0:
        return tokens, screened
    first = np.flatnonzero(np.r_[True, sside[1:] != sside[:-1]])
    sides = sside[first]
    side_end = np.r_[first[1:], sside.shape[0]]
    total = np.add.reduceat(seg_len, first)
    stored = seg_end[side_end - 1] - seg_begin[first]
    # Text protocols: every token is searched once over the text-looking heads, which the
    # caller laid first in ``heads_bytes``.
    n_text = int(np.count_nonzero(text_like[first]))
    if n_text and screen.tokens:
        side_ends = seg_end[side_end[:n_text] - 1].tolist()
        for bit, token in enumerate(screen.tokens):
            hit = np.asarray(_sides_with(heads_bytes, token, side_ends), dtype=np.int64)
            tokens[sides[hit]] |= np.uint64(1) << np.uint64(bit)
    head = _head_matrix(heads, seg_begin[first], stored, HEAD_WIDTH)
    first_len_all = np.zeros(2 * nconn, dtype=np.int64)
    first_len_all[sides] = seg_len[first]
    view = HeadView(
        head=head,
        first_len=seg_len[first],
        peer_first_len=first_len_all[sides ^ 1],
        total_len=total,
        is_tcp=conn_is_tcp[sides // 2],
        from_initiator=(sides % 2) == 0,
    )
    np.bitwise_or.at(screened, sides // 2, screen(view))
    return tokens, screened
