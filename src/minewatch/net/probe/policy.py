"""When minewatch may knock on someone else's server, whom, and how often.

Active probing talks to machines the operator does not own, so it is off unless the operator
turns it on in one of three ways: ``--enable-probing``, ``MINEWATCH_PROBING=1`` in the
environment, or ``enabled = true`` under ``[probing]`` in the configuration file
(``MINEWATCH_PROBE_CONFIG``, else ``$XDG_CONFIG_HOME/minewatch/probe.toml``). Once on, it stays
polite: destinations are checked against allow and deny lists *after* name resolution (so a name
cannot smuggle in a denied address), connections are paced by a global token bucket, and each
target gets a bounded number of probe rounds per window.

Example configuration::

    [probing]
    enabled = true
    allow = ["203.0.113.0/24"]          # only these (empty: anywhere not denied)
    deny = ["203.0.113.7/32"]
    rate = 5.0                          # connections per second, all targets together
    burst = 5
    per_target = 2                      # probe rounds per target per window
    per_target_window = 3600            # seconds
    timeout = 5.0                       # seconds per connection
    cache = "/var/lib/minewatch/probe-cache.json"
    ttl = 86400                         # seconds an answer stays good

Example::

    >>> policy = ProbePolicy(enabled=True, deny=(ipaddress.ip_network("10.0.0.0/8"),))
    >>> policy.refusal("10.1.2.3")
    'destination 10.1.2.3 is on the deny list (10.0.0.0/8)'
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
import tomllib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from minewatch.errors import InputError

__all__ = [
    "ENV_CONFIG",
    "ENV_ENABLE",
    "ProbePolicy",
    "ProbingDisabledError",
    "TargetLimiter",
    "TokenBucket",
    "default_cache_path",
    "default_config_path",
    "load_policy",
]

ENV_ENABLE = "MINEWATCH_PROBING"
ENV_CONFIG = "MINEWATCH_PROBE_CONFIG"
_TRUE = {"1", "true", "yes", "on"}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Never useful for a TCP probe, and a broadcast/multicast "server" is a configuration mistake.
_ALWAYS_DENIED = (
    ipaddress.ip_network("0.0.0.0/8"),
    ipaddress.ip_network("224.0.0.0/4"),
    ipaddress.ip_network("255.255.255.255/32"),
    ipaddress.ip_network("::/128"),
    ipaddress.ip_network("ff00::/8"),
)


class ProbingDisabledError(InputError):
    """Probing was asked for but the operator has not turned it on."""

    def __init__(self) -> None:
        super().__init__(
            "active probing is off: it contacts servers you may not own. Turn it on with "
            f"--enable-probing, {ENV_ENABLE}=1, or 'enabled = true' under [probing] in "
            f"{default_config_path()}"
        )


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """``MINEWATCH_PROBE_CONFIG``, else ``$XDG_CONFIG_HOME/minewatch/probe.toml``."""
    env = os.environ if env is None else env
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG])
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "minewatch" / "probe.toml"


def default_cache_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/minewatch/probe-cache.json``."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "minewatch" / "probe-cache.json"


def _networks(values: Any, name: str) -> tuple[Network, ...]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list | tuple):
        raise InputError(f"probing {name} must be a list of networks such as 192.0.2.0/24")
    try:
        return tuple(ipaddress.ip_network(str(v), strict=False) for v in values)
    except ValueError as exc:
        raise InputError(f"probing {name}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class ProbePolicy:
    """Whether probing is on, where it may go, how fast, and where answers are cached."""

    enabled: bool = False
    allow: tuple[Network, ...] = ()
    deny: tuple[Network, ...] = ()
    rate: float = 5.0
    burst: int = 5
    per_target: int = 2
    per_target_window_s: float = 3600.0
    timeout_s: float = 5.0
    cache_path: Path | None = field(default_factory=default_cache_path)
    ttl_s: float = 86400.0

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise InputError("probing rate must be positive and burst at least 1")
        if self.per_target < 1 or self.per_target_window_s <= 0:
            raise InputError("probing per_target must be at least 1 and its window positive")
        if not 0 < self.timeout_s <= 300:
            raise InputError("probing timeout must lie in (0, 300] seconds")
        if self.ttl_s < 0:
            raise InputError("probing ttl must not be negative")

    def require_enabled(self) -> None:
        """Raise :class:`ProbingDisabledError` unless the operator turned probing on."""
        if not self.enabled:
            raise ProbingDisabledError

    def refusal(self, address: str) -> str | None:
        """Why ``address`` may not be probed, or None when it may."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"{address!r} is not an IP address"
        for net in (*_ALWAYS_DENIED, *self.deny):
            if ip.version == net.version and ip in net:
                return f"destination {ip} is on the deny list ({net})"
        if self.allow and not any(ip.version == n.version and ip in n for n in self.allow):
            return f"destination {ip} is not on the allow list"
        return None


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise InputError(f"probing {name} must be true or false")


def _number(value: Any, name: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise InputError(f"probing {name} must be a number")


def load_policy(
    config_path: Path | None = None,
    *,
    enable: bool = False,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ProbePolicy:
    """The policy from the configuration file, the environment and command-line ``overrides``.

    A missing default configuration file is fine (probing stays off unless enabled otherwise); a
    named file that is missing or malformed raises :class:`InputError` naming it.
    """
    env = os.environ if env is None else env
    explicit = config_path is not None or bool(env.get(ENV_CONFIG))
    path = config_path or default_config_path(env)
    section: dict[str, Any] = {}
    if path.is_file() or explicit:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: probing configuration file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: cannot read probing configuration ({exc})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{path}: not valid TOML ({exc})") from exc
        raw = data.get("probing", {})
        if not isinstance(raw, dict):
            raise InputError(f"{path}: [probing] must be a table")
        unknown = set(raw) - {
            "enabled",
            "allow",
            "deny",
            "rate",
            "burst",
            "per_target",
            "per_target_window",
            "timeout",
            "cache",
            "ttl",
        }
        if unknown:
            raise InputError(f"{path}: unknown [probing] settings: {', '.join(sorted(unknown))}")
        section = raw
    policy = ProbePolicy()
    values: dict[str, Any] = {}
    if "enabled" in section:
        values["enabled"] = _bool(section["enabled"], "enabled")
    for key in ("allow", "deny"):
        if key in section:
            values[key] = _networks(section[key], key)
    for key, attr in (
        ("rate", "rate"),
        ("per_target_window", "per_target_window_s"),
        ("timeout", "timeout_s"),
        ("ttl", "ttl_s"),
    ):
        if key in section:
            values[attr] = _number(section[key], key)
    for key in ("burst", "per_target"):
        if key in section:
            values[key] = int(_number(section[key], key))
    if "cache" in section:
        values["cache_path"] = Path(str(section["cache"])) if section["cache"] else None
    if env.get(ENV_ENABLE, "").strip().lower() in _TRUE or enable:
        values["enabled"] = True
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key in ("allow", "deny"):
            value = _networks(list(value), key)
        values[key] = value
    return replace(policy, **values)


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """Paces connections: ``burst`` at once, then ``rate`` per second, across all targets.

    ``clock`` and ``sleep`` are injectable so the pacing can be checked without waiting.

    Example::

        bucket = TokenBucket(rate=5, burst=5)
        await bucket.acquire()      # returns at once while tokens last, else sleeps
    """

    def __init__(
        self, rate: float, burst: int, *, clock: Clock = time.monotonic, sleep: Sleep | None = None
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep: Sleep = sleep or asyncio.sleep
        self._tokens = float(burst)
        self._stamp = clock()
        self._locks: dict[int, asyncio.Lock] = {}
        self.waits = 0
        """How many acquisitions had to wait for a token."""

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def acquire(self) -> None:
        """Take one token, sleeping until one is due when none is left."""
        # One lock per event loop: a session may run several loops one after another.
        loop_id = id(asyncio.get_running_loop())
        lock = self._locks.get(loop_id)
        if lock is None:
            self._locks = {loop_id: (lock := asyncio.Lock())}
        async with lock:
            self._refill()
            if self._tokens < 1.0:
                self.waits += 1
                await self._sleep((1.0 - self._tokens) / self.rate)
                self._refill()
            self._tokens = max(0.0, self._tokens - 1.0)


class TargetLimiter:
    """At most ``limit`` probe rounds per target within a sliding ``window_s``.

    Example::

        limiter = TargetLimiter(limit=2, window_s=3600)
        limiter.allow("192.0.2.7:3333")     # True, True, then False within the hour
    """

    def __init__(self, limit: int, window_s: float, *, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._seen: dict[str, list[float]] = {}

    def allow(self, target: str) -> bool:
        """Record a round for ``target`` and say whether it is within the limit."""
        now = self._clock()
        recent = [t for t in self._seen.get(target, []) if now - t < self.window_s]
        if len(recent) >= self.limit:
            self._seen[target] = recent
            return False
        recent.append(now)
        self._seen[target] = recent
        return True
