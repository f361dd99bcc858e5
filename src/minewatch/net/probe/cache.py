"""A persistent cache of probe answers, so one server is not asked the same question twice.

Answers are kept in one JSON file, keyed by address, port and the transports tried, each with the
time it was probed; an entry older than the TTL is ignored and dropped on the next save. The file
is replaced atomically, and a save merges with what another process wrote meanwhile (the newer
entry of a key wins), so two probe runs never lose each other's answers. A damaged file is set
aside (renamed ``*.corrupt``) and the cache starts empty: a cache must never stop a probe.

Example::

    cache = ProbeCache(Path("probe-cache.json"), ttl_s=86400)
    hit = cache.get("192.0.2.7|3333|plain+tls")     # a dict, or None
    cache.put("192.0.2.7|3333|plain+tls", result.to_dict())
    cache.save()
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from minewatch.atomic import atomic_text
from minewatch.errors import InputError

__all__ = ["CACHE_FORMAT", "ProbeCache", "cache_key"]

CACHE_FORMAT = "minewatch-probe-cache/1"
_MAX_ENTRIES = 100_000


def cache_key(address: str, port: int, transports: tuple[str, ...]) -> str:
    """The key of one probe question: where, and over which transports."""
    return f"{address}|{port}|{'+'.join(transports)}"


class ProbeCache:
    """Probe answers with their probe times, read from and saved to ``path``.

    ``path`` None keeps the cache in memory only (``--no-cache`` still avoids asking twice within
    one run).
    """

    def __init__(
        self, path: Path | None, ttl_s: float, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, dict[str, Any]] = {}
        self.problem: str | None = None
        """What was wrong with the file when it had to be set aside."""
        self.hits = 0
        if path is not None:
            self._entries = self._read(path)

    def _read(self, path: Path) -> dict[str, dict[str, Any]]:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            problem = exc.strerror or exc
            raise InputError(f"{path}: cannot read the probe cache ({problem})") from exc
        try:
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
                raise ValueError("not a minewatch probe cache")
            entries = data["entries"]
            if not isinstance(entries, dict):
                raise ValueError("entries is not an object")
            return {
                k: v
                for k, v in entries.items()
                if isinstance(v, dict) and isinstance(v.get("at"), int | float) and "result" in v
            }
        except (ValueError, KeyError, UnicodeDecodeError) as exc:
            aside = path.with_name(path.name + ".corrupt")
            try:
                path.replace(aside)
            except OSError:
                aside = path
            self.problem = f"{path}: probe cache unreadable ({exc}); set aside as {aside.name}"
            return {}

    def _fresh(self, entry: dict[str, Any], now: float) -> bool:
        return bool(now - float(entry["at"]) < self.ttl_s)

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached answer for ``key`` if it is younger than the TTL."""
        entry = self._entries.get(key)
        if entry is None or not self._fresh(entry, self._clock()):
            return None
        self.hits += 1
        result: dict[str, Any] = entry["result"]
        return result

    def put(self, key: str, result: dict[str, Any]) -> None:
        """Remember ``result`` for ``key`` as of now."""
        self._entries[key] = {"at": self._clock(), "result": result}

    def __len__(self) -> int:
        return len(self._entries)

    def save(self) -> None:
        """Write fresh entries (merged with the file's current ones) atomically; no-op in memory."""
        if self.path is None:
            return
        now = self._clock()
        merged = {k: v for k, v in self._read(self.path).items() if self._fresh(v, now)}
        for key, entry in self._entries.items():
            if self._fresh(entry, now) and (
                key not in merged or float(merged[key]["at"]) <= float(entry["at"])
            ):
                merged[key] = entry
        if len(merged) > _MAX_ENTRIES:  # keep the newest
            newest = sorted(merged.items(), key=lambda kv: float(kv[1]["at"]))[-_MAX_ENTRIES:]
            merged = dict(newest)
        self._entries = merged
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_text(self.path) as fh:
                json.dump({"format": CACHE_FORMAT, "entries": merged}, fh, ensure_ascii=False)
                fh.write("\n")
        except OSError as exc:
            raise InputError(
                f"{self.path}: cannot write the probe cache ({exc.strerror or exc})"
            ) from exc
