"""Probing is opt-in, bounded by allow/deny lists, and paced; tests count, never time."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest

from minewatch.errors import InputError
from minewatch.net.probe.policy import (
    ENV_ENABLE,
    ProbePolicy,
    ProbingDisabledError,
    TargetLimiter,
    TokenBucket,
    load_policy,
)


def test_off_by_default(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    policy = load_policy(env=env)
    assert not policy.enabled
    with pytest.raises(ProbingDisabledError, match="--enable-probing"):
        policy.require_enabled()


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_environment_turns_it_on(tmp_path: Path, value: str) -> None:
    assert load_policy(env={"XDG_CONFIG_HOME": str(tmp_path), ENV_ENABLE: value}).enabled


def test_environment_zero_keeps_it_off(tmp_path: Path) -> None:
    assert not load_policy(env={"XDG_CONFIG_HOME": str(tmp_path), ENV_ENABLE: "0"}).enabled


def test_flag_turns_it_on(tmp_path: Path) -> None:
    assert load_policy(env={"XDG_CONFIG_HOME": str(tmp_path)}, enable=True).enabled


def test_configuration_file(tmp_path: Path) -> None:
    conf = tmp_path / "minewatch" / "probe.toml"
    conf.parent.mkdir()
    conf.write_text(
        '[probing]\nenabled = true\nallow = ["192.0.2.0/24"]\ndeny = ["192.0.2.7"]\n'
        'rate = 2\nburst = 3\nper_target = 1\ntimeout = 1.5\nttl = 60\ncache = ""\n'
    )
    policy = load_policy(env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert policy.enabled and policy.rate == 2.0 and policy.burst == 3
    assert policy.per_target == 1 and policy.timeout_s == 1.5 and policy.ttl_s == 60
    assert policy.cache_path is None
    assert policy.refusal("192.0.2.8") is None
    assert "deny list" in (policy.refusal("192.0.2.7") or "")
    assert "allow list" in (policy.refusal("198.51.100.1") or "")


@pytest.mark.parametrize(
    "text",
    [
        "[probing]\nenabled = 'maybe'\n",
        "[probing]\nrate = -1\n",
        "[probing]\nspeed = 3\n",
        "[probing]\nallow = ['not a net']\n",
        "not toml [",
    ],
)
def test_bad_configuration_is_a_clear_error(tmp_path: Path, text: str) -> None:
    conf = tmp_path / "probe.toml"
    conf.write_text(text)
    with pytest.raises(InputError, match=r"probe\.toml|probing"):
        load_policy(conf, env={})


def test_named_configuration_must_exist(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_policy(tmp_path / "absent.toml", env={})


def test_always_denied_destinations() -> None:
    policy = ProbePolicy(enabled=True)
    for address in ("0.0.0.0", "224.0.0.1", "255.255.255.255", "ff02::1", "::"):
        assert policy.refusal(address) is not None, address
    assert policy.refusal("127.0.0.1") is None
    assert policy.refusal("not-an-ip") is not None


def test_deny_beats_allow() -> None:
    net = ipaddress.ip_network
    policy = ProbePolicy(enabled=True, allow=(net("10.0.0.0/8"),), deny=(net("10.9.0.0/16"),))
    assert policy.refusal("10.1.1.1") is None
    assert policy.refusal("10.9.1.1") is not None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_token_bucket_lets_a_burst_through_then_paces() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock, sleep=clock.sleep)

    async def take(n: int) -> None:
        for _ in range(n):
            await bucket.acquire()

    asyncio.run(take(7))
    assert bucket.waits == 4  # 3 from the burst, the other 4 each waited for a token
    assert clock.slept == [pytest.approx(0.5)] * 4


def test_token_bucket_refills_while_idle() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1.0, burst=2, clock=clock, sleep=clock.sleep)
    asyncio.run(bucket.acquire())
    asyncio.run(bucket.acquire())
    clock.now += 10
    asyncio.run(bucket.acquire())
    asyncio.run(bucket.acquire())
    assert bucket.waits == 0


def test_target_limiter_counts_rounds_per_target_in_a_window() -> None:
    clock = FakeClock()
    limiter = TargetLimiter(limit=2, window_s=60, clock=clock)
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    assert limiter.allow("b")
    clock.now += 61
    assert limiter.allow("a")
