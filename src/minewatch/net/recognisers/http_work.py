"""getwork and getblocktemplate over HTTP, Bitcoin and Ethereum style.

Miners (cgminer, bfgminer, ethminer in HTTP mode) POST JSON-RPC ``getwork``,
``getblocktemplate``/``submitblock`` or ``eth_getWork``/``eth_submitWork`` and advertise their
abilities in ``X-Mining-Extensions``; pools answer with work and may point to their Stratum port
in ``X-Stratum``. Those headers identify a mining request even when the body is not captured.
"""

from __future__ import annotations

import re
from typing import ClassVar

from minewatch.findings import Verdict
from minewatch.net.flows import Conversation
from minewatch.net.recognisers._orientation import ordered_unique
from minewatch.net.recognisers.base import Recogniser, Recognition, register
from minewatch.net.recognisers.jsonrpc import read_jsonrpc

__all__ = ["HttpWorkRecogniser"]

GBT_METHODS = {"getblocktemplate", "submitblock"}
GETWORK_METHODS = {"getwork", "eth_getWork", "eth_submitWork", "eth_submitHashrate"}
_MINING_HEADERS = ("x-mining-extensions", "x-mining-hashrate", "x-stratum", "x-long-polling")
_BARE_GETWORK_MAX = 64
_HTTP_REQUEST = re.compile(rb"^(?:POST|GET) ", re.MULTILINE)


@register
class HttpWorkRecogniser(Recogniser):
    """Mining work fetched over HTTP JSON-RPC (getwork, getblocktemplate)."""

    name = "http-work"
    protocols: ClassVar[tuple[str, ...]] = ("getwork", "getblocktemplate")
    tokens: ClassVar[tuple[bytes, ...]] = (
        b"getwork",
        b"eth_getWork",
        b"eth_submit",
        b"getblocktemplate",
        b"submitblock",
        # Header names are case-insensitive; these are the spellings miners and pools send
        # (HTTP/1.1 title case, HTTP/2 lower case).
        b"X-Mining-",
        b"x-mining-",
        b"X-Stratum",
        b"x-stratum",
    )

    def recognise(self, conv: Conversation) -> Recognition | None:
        fwd_http = bool(_HTTP_REQUEST.match(conv.fwd))
        rev_http = bool(_HTTP_REQUEST.match(conv.rev))
        if not (fwd_http or rev_http):
            return None
        requester_is_initiator = fwd_http or not rev_http
        req_raw, resp_raw = (conv.fwd, conv.rev) if requester_is_initiator else (conv.rev, conv.fwd)
        req, resp = read_jsonrpc(req_raw), read_jsonrpc(resp_raw)
        methods = ordered_unique(m for m in req.methods if m in GBT_METHODS | GETWORK_METHODS)
        headers = [h for h in _MINING_HEADERS if h in req.http_headers]
        resp_headers = [h for h in _MINING_HEADERS if h in resp.http_headers]
        if not methods and not headers and not resp_headers:
            return None
        evidence = []
        if methods:
            evidence.append("HTTP JSON-RPC calls " + ", ".join(methods))
        for name in headers:
            evidence.append(f"request header {name}: {req.http_headers[name][:60]}")
        for name in resp_headers:
            evidence.append(f"pool response header {name}: {resp.http_headers[name][:60]}")
        if set(methods) & GBT_METHODS:
            protocol = "getblocktemplate"
        elif methods:
            protocol = "getwork"
        else:
            protocol = _protocol_from_body_size(req.http_headers.get("content-length", ""))
            evidence.append(
                "request body not captured; a "
                + req.http_headers.get("content-length", "?")
                + f"-byte JSON-RPC body fits a {protocol} request"
            )
        coin = "eth" if any(m.startswith("eth_") for m in methods) else None
        answered = resp.answered()
        if answered:
            evidence.append("server answered with work")
        confidence = 0.98 if methods and (answered or headers) else 0.95 if methods else 0.8
        return Recognition(
            protocol=protocol,
            verdict=Verdict.MINING,
            confidence=confidence,
            evidence=evidence,
            coin=coin,
            client_is_initiator=requester_is_initiator,
            answered=answered,
        )


def _protocol_from_body_size(content_length: str) -> str:
    """Guess the call of a request whose body was not captured from the body's size.

    A request for getwork work has empty params (``{"method": "getwork", "params": [], "id": 0}``
    is 44 bytes); a getblocktemplate request must list capabilities or rules, which makes it
    longer. Only used when the body itself is missing.
    """
    try:
        size = int(content_length)
    except ValueError:
        return "getblocktemplate"
    return "getwork" if size <= _BARE_GETWORK_MAX else "getblocktemplate"
