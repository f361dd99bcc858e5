"""Reading newline-delimited and HTTP-carried JSON-RPC out of reassembled stream heads.

Mining protocols (Stratum and its dialects, eth-proxy, getwork) are JSON-RPC. A head may start or
end mid-message (captures that begin mid-stream; the byte cap), so whole messages are decoded
where they are whole and method names are also taken from fragments by pattern.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

__all__ = ["JsonRpcHead", "read_jsonrpc"]

_METHOD = re.compile(rb'"method"\s*:\s*"([A-Za-z0-9_.\-/]{1,64})"')
_DECODER = json.JSONDecoder()
_HTTP_START = re.compile(rb"^(?:POST|GET|PUT) \S+ HTTP/1\.[01]\r?\n", re.MULTILINE)
_HTTP_STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})", re.MULTILINE)


@dataclass(slots=True)
class JsonRpcHead:
    """JSON-RPC content of one direction's head."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    http_requests: int = 0
    http_statuses: list[int] = field(default_factory=list)
    http_headers: dict[str, str] = field(default_factory=dict)

    @property
    def method_set(self) -> set[str]:
        return set(self.methods)

    def results(self) -> list[Any]:
        """``result`` values of responses that carry no error."""
        return [
            m["result"]
            for m in self.messages
            if "result" in m and m.get("error") in (None, False) and "method" not in m
        ]

    def answered(self) -> bool:
        """True when some response carries a non-null, non-false result."""
        return any(r not in (None, False) for r in self.results())

    def calls(self, method: str) -> list[dict[str, Any]]:
        """Messages that call (or push) ``method``."""
        return [m for m in self.messages if m.get("method") == method]


# Where a JSON message may begin: the start of the head, of a line, or of an HTTP body.
_JSON_START = re.compile(r"(?m)^[ \t\r]*(?=[{\[])")
MAX_MESSAGES = 32
"""Whole messages decoded per head: logins, subscriptions and first jobs come first; the rest
only repeats them (method names are still counted from every fragment)."""


@lru_cache(maxsize=64)
def read_jsonrpc(head: bytes) -> JsonRpcHead:
    """Decode every whole JSON object that starts a line or an HTTP body in ``head``.

    Cached: every recogniser of a conversation reads the same heads; treat the result as
    read-only.
    """
    out = JsonRpcHead(methods=[m.decode("ascii") for m in _METHOD.findall(head)])
    text = head.decode("latin-1")
    for start in _JSON_START.finditer(text):
        try:
            value, _ = _DECODER.raw_decode(text, start.end())
        except ValueError:
            continue
        items = value if isinstance(value, list) else [value]
        out.messages.extend(item for item in items if isinstance(item, dict))
        if len(out.messages) >= MAX_MESSAGES:
            break
    if b"HTTP/1." not in head:
        return out
    out.http_requests = len(_HTTP_START.findall(head))
    out.http_statuses = [int(s) for s in _HTTP_STATUS.findall(head)]
    if out.http_requests or out.http_statuses:
        end = text.find("\r\n\r\n")
        for line in text[: end if end >= 0 else len(text)].split("\r\n")[1:]:
            name, sep, value = line.partition(":")
            if sep:
                out.http_headers.setdefault(name.strip().lower(), value.strip())
    return out
