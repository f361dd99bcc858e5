"""``minewatch probe``: opt-in, clear output in three formats, the cache hit shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from minewatch.commands.probe import probe
from tests.net.probe.conftest import xmr_pool

__all__ = ["xmr_pool"]  # the session-scoped pool fixture, shared

ENV = {"MINEWATCH_PROBING": "", "MINEWATCH_PROBE_CONFIG": ""}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**ENV, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path)}


def test_refused_without_opt_in(env: dict[str, str]) -> None:
    result = CliRunner().invoke(probe, ["127.0.0.1:3333"], env=env)
    assert result.exit_code == 1
    assert "active probing is off" in result.output and "--enable-probing" in result.output
    assert "Traceback" not in result.output


def test_bad_target_is_one_line(env: dict[str, str]) -> None:
    result = CliRunner().invoke(probe, ["--enable-probing", "nonsense"], env=env)
    assert result.exit_code == 1 and "HOST:PORT" in result.output


def test_probe_table_then_cache_hit(xmr_pool: int, env: dict[str, str], tmp_path: Path) -> None:
    args = ["--enable-probing", "--no-tls", f"127.0.0.1:{xmr_pool}"]
    first = CliRunner().invoke(probe, args, env=env)
    assert first.exit_code == 0, first.output
    header, row = first.output.splitlines()[:2]
    assert header.split()[:5] == ["target", "answered", "strength", "over", "cache"]
    assert row.split()[1:5] == ["stratum-xmr", "confirmed", "plain", "-"]
    assert "mining job" in row
    assert (tmp_path / "minewatch" / "probe-cache.json").is_file()
    second = CliRunner().invoke(probe, args, env=env)
    assert second.output.splitlines()[1].split()[4] == "hit"


def test_probe_jsonl_via_environment(xmr_pool: int, env: dict[str, str]) -> None:
    env = {**env, "MINEWATCH_PROBING": "1"}
    result = CliRunner().invoke(
        probe, ["--no-cache", "--no-tls", "-f", "jsonl", f"127.0.0.1:{xmr_pool}"], env=env
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output.splitlines()[0])
    assert doc["answered"] == "stratum-xmr" and doc["strength"] == "confirmed"
    assert doc["coin"] == "xmr" and doc["cached"] is False
    assert [a["protocol"] for a in doc["attempts"]] == ["stratum-v1", "stratum-xmr"]


def test_probe_json_with_deny(env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        probe,
        ["--enable-probing", "--no-cache", "--deny", "127.0.0.0/8", "-f", "json", "127.0.0.1:9"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    (doc,) = json.loads(result.output)
    assert doc["refused"] and "deny list" in doc["refused"] and doc["attempts"] == []
