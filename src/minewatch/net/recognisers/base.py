"""The recogniser contract: one class per protocol family, independent of port numbers.

A recogniser does two things:

* ``screen(view)`` — a *vectorised* check over the first bytes of every direction of every
  connection of a capture (a :class:`~minewatch.net.flows.HeadView`), saying which ones it might
  claim. It must be cheap and may over-approximate; it must never miss its protocol. Text
  protocols can instead (or also) list ``tokens``: byte strings whose presence in a text-looking
  head makes the connection a candidate (matched as they are; list each spelling that occurs).
* ``recognise(conversation)`` — the precise, per-conversation decision, returning a
  :class:`Recognition` with the protocol, verdict, coin, confidence and human-readable evidence,
  or ``None``.

Adding a protocol is one new module with one subclass, decorated with :func:`register`.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from minewatch.findings import Verdict
from minewatch.net.flows import Conversation
from minewatch.net.screening import HeadView

__all__ = ["RECOGNISERS", "Recogniser", "Recognition", "register"]


@dataclass(slots=True)
class Recognition:
    """What a recogniser concluded about one conversation.

    ``client_is_initiator`` says whether the host that mines (the side that logs in, subscribes
    or submits; for peer-to-peer protocols the side that connected) is the side that opened the
    conversation. ``answered`` is True when the server side visibly took part (returned methods,
    jobs or non-null results): when one client tries several protocols on one server, the answered
    one is what it actually speaks.
    """

    protocol: str
    verdict: Verdict
    confidence: float
    evidence: list[str] = field(default_factory=list)
    coin: str | None = None
    client_is_initiator: bool = True
    answered: bool = False
    server_name: str | None = None
    pool: str | None = None
    resolved: tuple[str, ...] = ()
    """Addresses a recognised pool lookup resolved to (DNS), to tie later connections to it."""


class Recogniser(ABC):
    """Base class of every protocol recogniser; see the module docstring for the contract."""

    name: ClassVar[str]
    """Registry id, e.g. ``"stratum-v1"``."""
    protocols: ClassVar[tuple[str, ...]]
    """Every ``protocol`` value this recogniser can report."""
    tokens: ClassVar[tuple[bytes, ...]] = ()
    """Byte strings (case-sensitive: list each spelling that occurs) that make a text-looking
    head a candidate for this recogniser."""

    def screen(self, view: HeadView) -> np.ndarray:
        """Bulk pre-check over ``view`` rows; the default claims nothing (text tokens only)."""
        return np.zeros(view.head.shape[0], dtype=bool)

    @abstractmethod
    def recognise(self, conv: Conversation) -> Recognition | None:
        """Decide about one conversation; ``None`` when it is not this protocol."""


RECOGNISERS: dict[str, type[Recogniser]] = {}
"""All known recognisers by id, in registration (= priority on ties) order."""


def register(cls: type[Recogniser]) -> type[Recogniser]:
    """Class decorator adding a recogniser to :data:`RECOGNISERS` (a duplicate id warns)."""
    if cls.name in RECOGNISERS and RECOGNISERS[cls.name] is not cls:
        warnings.warn(
            f"recogniser id {cls.name!r} registered twice; keeping {RECOGNISERS[cls.name]!r}",
            stacklevel=2,
        )
        return cls
    RECOGNISERS[cls.name] = cls
    return cls
