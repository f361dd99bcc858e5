"""The answer cache: TTL, atomic merge between writers, damaged files set aside."""

from __future__ import annotations

import json
from pathlib import Path

from minewatch.net.probe.cache import ProbeCache, cache_key


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def test_put_save_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "cache.json"
    clock = Clock()
    cache = ProbeCache(path, ttl_s=100, clock=clock)
    key = cache_key("192.0.2.7", 3333, ("plain", "tls"))
    cache.put(key, {"answered": "stratum-v1"})
    cache.save()
    again = ProbeCache(path, ttl_s=100, clock=clock)
    assert again.get(key) == {"answered": "stratum-v1"}
    assert again.hits == 1
    clock.now += 101
    assert again.get(key) is None


def test_two_writers_keep_each_others_answers(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    clock = Clock()
    first, second = ProbeCache(path, 100, clock=clock), ProbeCache(path, 100, clock=clock)
    first.put("a|1|plain", {"n": 1})
    second.put("b|2|plain", {"n": 2})
    first.save()
    second.save()
    merged = ProbeCache(path, 100, clock=clock)
    assert merged.get("a|1|plain") == {"n": 1} and merged.get("b|2|plain") == {"n": 2}


def test_expired_entries_are_dropped_on_save(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    clock = Clock()
    cache = ProbeCache(path, 10, clock=clock)
    cache.put("old|1|plain", {})
    clock.now += 20
    cache.put("new|1|plain", {})
    cache.save()
    assert set(json.loads(path.read_text())["entries"]) == {"new|1|plain"}


def test_damaged_file_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.write_text("{not json")
    cache = ProbeCache(path, 10)
    assert len(cache) == 0 and cache.problem is not None
    assert (tmp_path / "cache.json.corrupt").read_text() == "{not json"
    cache.put("k|1|plain", {"ok": True})
    cache.save()
    assert ProbeCache(path, 10).get("k|1|plain") == {"ok": True}


def test_foreign_json_is_not_taken_for_a_cache(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    path.write_text(json.dumps({"entries": {"k|1|plain": {"at": 1, "result": {}}}}))
    cache = ProbeCache(path, 1e12)
    assert cache.get("k|1|plain") is None and cache.problem is not None


def test_memory_only_cache_never_writes(tmp_path: Path) -> None:
    cache = ProbeCache(None, 10)
    cache.put("k|1|plain", {})
    cache.save()
    assert cache.get("k|1|plain") == {} and list(tmp_path.iterdir()) == []
