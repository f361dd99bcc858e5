"""Protocol recognisers, one module per protocol family, all registered in :data:`RECOGNISERS`.

:class:`RecogniserSet` bundles the chosen recognisers into the bulk screen used by
:func:`minewatch.net.flows.conversations` and the per-conversation decision.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from minewatch.errors import InputError
from minewatch.net.flows import Conversation, HeadView
from minewatch.net.recognisers import (  # noqa: F401  (import registers the recognisers)
    bitcoin_p2p,
    eth_proxy,
    ethereum_p2p,
    http_work,
    libp2p,
    monero_p2p,
    nano_p2p,
    stratum_v1,
    stratum_v2,
    stratum_xmr,
)
from minewatch.net.recognisers.base import RECOGNISERS, Recognition, Recogniser, register

__all__ = ["RECOGNISERS", "Recognition", "Recogniser", "RecogniserSet", "register"]


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
        tokens = [t for r in self.recognisers for t in r.text_tokens]
        self.text_tokens: re.Pattern[bytes] = re.compile(b"|".join(tokens) if tokens else b"(?!)")

    def __call__(self, view: HeadView) -> np.ndarray:
        mask = np.zeros(view.head.shape[0], dtype=bool)
        for r in self.recognisers:
            mask |= r.screen(view)
        return mask

    def recognise(self, conv: Conversation) -> Recognition | None:
        """The most confident recognition of ``conv`` (registry order breaks ties)."""
        best: Recognition | None = None
        for r in self.recognisers:
            found = r.recognise(conv)
            if found is not None and (best is None or found.confidence > best.confidence):
                best = found
        return best
