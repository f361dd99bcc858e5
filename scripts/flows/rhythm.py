"""Shared helpers for the benign clients of ``scripts/record-flows``: paced loops and TLS contexts.

Real telemetry, polling and scraping clients run on a timer that drifts a little (scheduler
latency, work done between ticks). ``Pacer`` reproduces that: a base period, varied by up to a
fraction of it, from a seeded generator so a recording can be repeated.

Usage::

    pacer = Pacer(period=10.0, jitter=0.1, seconds=400, seed="mqtt-1")
    while pacer.wait():
        send_something()
"""

from __future__ import annotations

import random
import ssl
import time
from pathlib import Path

__all__ = ["Pacer", "client_tls", "server_tls"]


class Pacer:
    """Sleeps between ticks of a loop that should end after ``seconds``.

    Usage::

        pacer = Pacer(5.0, 0.2, 60.0, "demo")
        while pacer.wait():
            ...
    """

    def __init__(self, period: float, jitter: float, seconds: float, seed: str) -> None:
        self.period = period
        self.jitter = jitter
        self.deadline = time.monotonic() + seconds
        self._rng = random.Random(seed)

    def gap(self) -> float:
        """The next gap in seconds."""
        spread = self.period * self.jitter
        return max(0.05, self.period + self._rng.uniform(-spread, spread))

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def wait(self) -> bool:
        """Sleep until the next tick; False once the time is up (the loop should end)."""
        gap = self.gap()
        if self.remaining() <= gap:
            time.sleep(max(0.0, self.remaining()))
            return False
        time.sleep(gap)
        return True

    def choice(self, items: list[str]) -> str:
        return self._rng.choice(items)

    def uniform(self, low: float, high: float) -> float:
        return self._rng.uniform(low, high)


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    """Server-side TLS context from PEM files."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def client_tls(ca: Path | None) -> ssl.SSLContext:
    """Client-side TLS context that trusts ``ca`` (the server's self-signed certificate).

    With no ``ca`` it verifies nothing, as many internal clients are (mis)configured.
    """
    if ca is None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=str(ca))
