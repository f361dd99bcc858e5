"""Policy, rate limits and the cache around real probes: counted by the server's accepts."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from minewatch.net.probe.cache import ProbeCache
from minewatch.net.probe.client import Target
from minewatch.net.probe.policy import ProbePolicy, ProbingDisabledError, TokenBucket
from minewatch.net.probe.protocols import Strength
from minewatch.net.probe.session import ProbeSession
from tests.net.probe.servers import ServerThread, tls_proxy
from tests.net.probe.test_policy import FakeClock


def policy(**kw: object) -> ProbePolicy:
    base: dict[str, object] = {"enabled": True, "cache_path": None, "timeout_s": 3.0}
    return ProbePolicy(**{**base, **kw})  # type: ignore[arg-type]


def test_refused_without_opt_in() -> None:
    with pytest.raises(ProbingDisabledError):
        ProbeSession(ProbePolicy(cache_path=None))


def test_cache_hit_opens_no_connection(
    xmr_pool: int, servers: ServerThread, tmp_path: Path
) -> None:
    relay = servers.serve(tls_proxy(xmr_pool), tls=None)  # a plain relay that counts accepts
    cache_file = tmp_path / "cache.json"
    target = [Target("127.0.0.1", relay.port)]
    first = ProbeSession(policy(), cache=ProbeCache(cache_file, 3600)).run(
        target, transports=("plain",)
    )
    assert first[0].answered == "stratum-xmr" and not first[0].cached
    opened = relay.accepted
    assert opened == 2  # stratum-v1 refused, then stratum-xmr confirmed
    again = ProbeSession(policy(), cache=ProbeCache(cache_file, 3600))
    second = again.run(target, transports=("plain",))
    assert relay.accepted == opened and again.connections == 0
    assert second[0].cached and second[0].answered == "stratum-xmr"
    assert second[0].strength is Strength.CONFIRMED
    # Another transport set is another question.
    third = again.run(target, transports=("plain", "tls"))
    assert not third[0].cached and relay.accepted > opened


def test_per_target_rate_limit(xmr_pool: int, servers: ServerThread) -> None:
    relay = servers.serve(tls_proxy(xmr_pool), tls=None)
    session = ProbeSession(policy(per_target=2), refresh=True)
    target = [Target("127.0.0.1", relay.port)]
    results = [session.run(target, transports=("plain",))[0] for _ in range(3)]
    assert [r.answered for r in results[:2]] == ["stratum-xmr", "stratum-xmr"]
    assert results[2].refused is not None and "rate limit" in results[2].refused
    assert relay.accepted == 4 and session.connections == 4


def test_global_rate_limit_paces_every_connection(xmr_pool: int, servers: ServerThread) -> None:
    relay = servers.serve(tls_proxy(xmr_pool), tls=None)
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=1, clock=clock, sleep=clock.sleep)
    session = ProbeSession(policy(), refresh=True, bucket=bucket)
    session.run([Target("127.0.0.1", relay.port)], transports=("plain",))
    assert relay.accepted == 2
    assert bucket.waits == 1 and clock.slept == [1.0]  # only the first had a token ready


def test_denied_destination_is_never_contacted(servers: ServerThread, xmr_pool: int) -> None:
    relay = servers.serve(tls_proxy(xmr_pool), tls=None)
    deny = (ipaddress.ip_network("127.0.0.0/8"),)
    session = ProbeSession(policy(deny=deny))
    results = session.run([Target("127.0.0.1", relay.port), Target("localhost", relay.port)])
    assert all(r.refused and "deny list" in r.refused for r in results)
    assert relay.accepted == 0


def test_unresolvable_name_is_refused_not_raised() -> None:
    session = ProbeSession(policy())
    result = session.run([Target("no-such-host.invalid", 3333)])[0]
    assert result.refused is not None and "resolve" in result.refused
    assert session.connections == 0
