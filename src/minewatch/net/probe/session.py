"""Probe many targets under the operator's policy: opt-in, allow/deny, rate limits, cache.

The order of checks is the order of cost to the target: a refused policy sends nothing; names are
resolved and *every* address checked before one is chosen (a name cannot lead past the deny
list); a cached answer sends nothing; a target over its per-target budget sends nothing; only
then is a connection paced through the global token bucket.

Example::

    policy = load_policy(enable=True)
    session = ProbeSession(policy)
    results = session.run([parse_target("127.0.0.1:3333")], transports=("plain", "tls"))
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Sequence

from minewatch.net.probe.cache import ProbeCache, cache_key
from minewatch.net.probe.client import TRANSPORTS, Prober, ProbeResult, Target
from minewatch.net.probe.policy import ProbePolicy, TargetLimiter, TokenBucket
from minewatch.net.probe.protocols import PROTOCOL_ORDER

__all__ = ["ProbeSession"]

_CONCURRENCY = 8


class ProbeSession:
    """Runs probes for a list of targets and returns one :class:`ProbeResult` per target.

    ``cache`` defaults to the policy's cache file (in memory when the policy has none);
    ``refresh`` ignores cached answers but still stores the new ones.
    """

    def __init__(
        self,
        policy: ProbePolicy,
        *,
        cache: ProbeCache | None = None,
        refresh: bool = False,
        protocols: tuple[str, ...] = PROTOCOL_ORDER,
        bucket: TokenBucket | None = None,
        limiter: TargetLimiter | None = None,
    ) -> None:
        policy.require_enabled()
        self.policy = policy
        self.cache = cache if cache is not None else ProbeCache(policy.cache_path, policy.ttl_s)
        self.refresh = refresh
        self.bucket = bucket or TokenBucket(policy.rate, policy.burst)
        self.limiter = limiter or TargetLimiter(policy.per_target, policy.per_target_window_s)
        self.prober = Prober(
            timeout_s=policy.timeout_s, protocols=protocols, on_connect=self.bucket.acquire
        )

    @property
    def connections(self) -> int:
        """Connections opened so far (cache hits and refusals open none)."""
        return self.prober.connections

    def run(
        self,
        targets: Sequence[Target],
        *,
        transports: tuple[str, ...] = TRANSPORTS,
        server_name: str | None = None,
    ) -> list[ProbeResult]:
        """Probe ``targets`` (at most a few at once) and save the cache; results in input order."""
        return asyncio.run(self.run_async(targets, transports=transports, server_name=server_name))

    async def run_async(
        self,
        targets: Sequence[Target],
        *,
        transports: tuple[str, ...] = TRANSPORTS,
        server_name: str | None = None,
    ) -> list[ProbeResult]:
        """:meth:`run` inside a running event loop."""
        gate = asyncio.Semaphore(_CONCURRENCY)

        async def one(target: Target) -> ProbeResult:
            async with gate:
                return await self._one(target, transports, server_name)

        results = list(await asyncio.gather(*(one(t) for t in targets)))
        self.cache.save()
        return results

    async def _resolve(self, target: Target) -> tuple[list[str], str | None]:
        try:
            return [str(ipaddress.ip_address(target.host))], None
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.policy.timeout_s):
                infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as exc:
            return [], f"cannot resolve {target.host} ({getattr(exc, 'strerror', None) or exc})"
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        return addresses, None

    async def _one(
        self, target: Target, transports: tuple[str, ...], server_name: str | None
    ) -> ProbeResult:
        def refused(address: str | None, why: str) -> ProbeResult:
            now = time.time_ns()
            return ProbeResult(str(target), address, target.port, transports, now, [], why)

        addresses, problem = await self._resolve(target)
        if problem or not addresses:
            return refused(None, problem or f"{target.host} has no address")
        refusals = [r for a in addresses if (r := self.policy.refusal(a))]
        if refusals:  # one denied address is enough: the name may be pointed anywhere at will
            return refused(addresses[0], refusals[0])
        address = addresses[0]
        key = cache_key(address, target.port, transports)
        if not self.refresh and (hit := self.cache.get(key)) is not None:
            cached = ProbeResult.from_dict(hit)
            cached.target, cached.cached = str(target), True
            return cached
        if not self.limiter.allow(f"{address}|{target.port}"):
            return refused(
                address,
                f"rate limit: {address} port {target.port} was probed "
                f"{self.policy.per_target} times within {self.policy.per_target_window_s:g} s",
            )
        name = server_name
        if name is None and address != target.host:
            name = target.host  # a name the user gave goes in the TLS SNI, as a miner's would
        result = await self.prober.probe(
            address, target.port, transports=transports, server_name=name, target=str(target)
        )
        self.cache.put(key, result.to_dict())
        return result
