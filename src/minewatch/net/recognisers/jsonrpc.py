"""Reading newline-delimited and HTTP-carried JSON-RPC out of reassembled stream heads.

Mining protocols (Stratum and its dialects, eth-proxy, getwork) are JSON-RPC. A head may start or
end mid-message (captures that begin mid-stream; the byte cap), so whole messages are decoded
where they are whole and method names are also taken from fragments by pattern.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

__all__ = ["JsonRpcHead", "read_jsonrpc"]

_METHOD = re.compile(rb'"method"\s*:\s*"([A-Za-z0-9_.\-/]{1,64})"')
_DECODER = json.JSONDecoder()
_HTTP_START = re.compile(rb"^(?:POST|GET|PUT) \S+ HTTP/1\.[01]\r?\n", re.MULTILINE)
_HTTP_STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})", re.MULTILINE)


# Where a JSON message may begin: the start of the head, of a line, or of an HTTP body.
_JSON_START = re.compile(r"(?m)^[ \t\r]*(?=[{\[])")
# A response whose result is something (true, a number, a string, a list or an object).
_NON_NULL_RESULT = re.compile(rb'"result"\s*:\s*[\[{"t0-9-]')
MAX_MESSAGES = 32
"""Whole messages decoded per head: logins, subscriptions and first jobs come first; the rest
only repeats them (method names are still counted from every fragment)."""


class JsonRpcHead:
    """JSON-RPC content of one direction's head, decoded only as far as it is asked about.

    Method names come from a pattern over the raw bytes (fragments count too); whole messages are
    decoded on first use of :attr:`messages`, or one at a time by :meth:`first_call`, which is
    what most recognisers need and costs one JSON decode instead of dozens.
    """

    __slots__ = ("_headers", "_messages", "_statuses", "_text", "head", "method_set", "methods")

    def __init__(self, head: bytes) -> None:
        self.head = head
        self.methods = [m.decode("ascii") for m in _METHOD.findall(head)]
        self.method_set = set(self.methods)
        self._text: str | None = None
        self._messages: list[dict[str, Any]] | None = None
        self._statuses: list[int] | None = None
        self._headers: dict[str, str] | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.head.decode("latin-1")
        return self._text

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every whole message that starts a line or an HTTP body (at most MAX_MESSAGES)."""
        if self._messages is None:
            text = self.text
            out: list[dict[str, Any]] = []
            for start in _JSON_START.finditer(text):
                value = _decode_at(text, start.end())
                items = value if isinstance(value, list) else [value]
                out.extend(item for item in items if isinstance(item, dict))
                if len(out) >= MAX_MESSAGES:
                    break
            self._messages = out
        return self._messages

    def first_call(self, method: str) -> dict[str, Any] | None:
        """The first whole message calling (or pushing) ``method``, decoding only that one."""
        if method not in self.method_set:
            return None
        if self._messages is not None:
            return next((m for m in self._messages if m.get("method") == method), None)
        needle = f'"{method}"'.encode()
        pos = self.head.find(needle)
        while pos >= 0:
            line = self.head.rfind(b"\n", 0, pos) + 1
            brace = self.head.find(b"{", line, pos)
            if brace >= 0:
                value = _decode_at(self.text, brace)
                if isinstance(value, dict) and value.get("method") == method:
                    return value
            pos = self.head.find(needle, pos + 1)
        return None

    def calls(self, method: str) -> list[dict[str, Any]]:
        """Messages that call (or push) ``method``."""
        if method not in self.method_set:
            return []
        return [m for m in self.messages if m.get("method") == method]

    def results(self) -> list[Any]:
        """``result`` values of responses that carry no error."""
        return [
            m["result"]
            for m in self.messages
            if "result" in m and m.get("error") in (None, False) and "method" not in m
        ]

    def answered(self) -> bool:
        """True when some response carries a result that is not null or false."""
        return _NON_NULL_RESULT.search(self.head) is not None

    @property
    def http_requests(self) -> int:
        """How many HTTP/1.x requests start a line of the head."""
        return len(_HTTP_START.findall(self.head)) if b"HTTP/1." in self.head else 0

    @property
    def http_statuses(self) -> list[int]:
        """Status codes of the HTTP/1.x responses in the head."""
        if self._statuses is None:
            found = _HTTP_STATUS.findall(self.head) if b"HTTP/1." in self.head else []
            self._statuses = [int(s) for s in found]
        return self._statuses

    @property
    def http_headers(self) -> dict[str, str]:
        """Header fields (lower-case names) of the first HTTP request or response."""
        if self._headers is None:
            self._headers = {}
            if self.http_requests or self.http_statuses:
                text = self.text
                end = text.find("\r\n\r\n")
                for line in text[: end if end >= 0 else len(text)].split("\r\n")[1:]:
                    name, sep, value = line.partition(":")
                    if sep:
                        self._headers.setdefault(name.strip().lower(), value.strip())
        return self._headers


def _decode_at(text: str, pos: int) -> Any:
    try:
        return _DECODER.raw_decode(text, pos)[0]
    except ValueError:
        return None


@lru_cache(maxsize=64)
def read_jsonrpc(head: bytes) -> JsonRpcHead:
    """The JSON-RPC view of ``head``.

    Cached: every recogniser of a conversation reads the same heads; treat the result as
    read-only.
    """
    return JsonRpcHead(head)
