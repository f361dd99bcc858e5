"""Protocol recognisers, one module per protocol family, all registered in :data:`RECOGNISERS`.

:class:`RecogniserSet` bundles the chosen recognisers into the bulk screen used by
:func:`minewatch.net.flows.conversations` and the per-conversation decision.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from minewatch.errors import InputError
from minewatch.net.flows import Conversation
from minewatch.net.recognisers import (  # noqa: F401  (import registers the recognisers)
    bitcoin_p2p,
    chia,
    eth_proxy,
    ethereum_p2p,
    http_work,
    libp2p,
    monero_p2p,
    nano_p2p,
    pool_names,
    stratum_v1,
    stratum_v2,
    stratum_xmr,
)
from minewatch.net.recognisers.base import RECOGNISERS, Recogniser, Recognition, register
from minewatch.net.screening import HeadView

__all__ = ["RECOGNISERS", "Recogniser", "RecogniserSet", "Recognition", "register"]


class RecogniserSet:
    """The recognisers one scan runs (all registered ones by default).

    Example::

        >>> rs = RecogniserSet(["stratum-v1", "bitcoin-p2p"])
        >>> [r.name for r in rs.recognisers]
        ['stratum-v1', 'bitcoin-p2p']
    """

    def __init__(self, names: Iterable[str] | None = None) -> None:
        chosen = list(RECOGNISERS) if names is None else list(names)
        unknown = [n for n in chosen if n not in RECOGNISERS]
        if unknown:
            raise InputError(
                f"unknown recogniser(s) {', '.join(unknown)}; known: {', '.join(RECOGNISERS)}"
            )
        self.recognisers: list[Recogniser] = [RECOGNISERS[n]() for n in chosen]
        self.tokens: list[bytes] = list(
            dict.fromkeys(t for r in self.recognisers for t in r.tokens)
        )
        if len(self.tokens) > 64 or len(self.recognisers) > 64:
            raise InputError("at most 64 recognisers and 64 distinct tokens fit the bit sets")
        self._token_masks = [
            sum(1 << self.tokens.index(t) for t in set(r.tokens)) for r in self.recognisers
        ]

    def __call__(self, view: HeadView) -> np.ndarray:
        claims = np.zeros(view.head.shape[0], dtype=np.uint64)
        for i, r in enumerate(self.recognisers):
            claims |= r.screen(view).astype(np.uint64) << np.uint64(i)
        return claims

    def recognise(
        self, conv: Conversation, token_bits: int | None = None, screen_bits: int | None = None
    ) -> Recognition | None:
        """The most confident recognition of ``conv`` (registry order breaks ties).

        With ``token_bits``/``screen_bits`` (what the bulk screen saw in this conversation)
        only the recognisers that the screen pointed at are asked.
        """
        best: Recognition | None = None
        for i, r in enumerate(self.recognisers):
            if (
                token_bits is not None
                and screen_bits is not None
                and not (token_bits & self._token_masks[i] or screen_bits >> i & 1)
            ):
                continue
            found = r.recognise(conv)
            if found is not None and (best is None or found.confidence > best.confidence):
                best = found
        return best
