"""Which side of a JSON-RPC conversation is the miner, whoever opened it."""

from __future__ import annotations

from collections.abc import Iterable

from minewatch.net.recognisers.jsonrpc import JsonRpcHead

__all__ = ["miner_is_initiator", "ordered_unique"]


def miner_is_initiator(
    fwd: JsonRpcHead, rev: JsonRpcHead, client_methods: set[str], server_methods: set[str]
) -> bool:
    """True when the initiator behaves as the client (sends client calls, receives pushes).

    Ties (no method seen either way) keep the initiator as client, the TCP convention.
    """
    as_client = len(fwd.method_set & client_methods) + len(rev.method_set & server_methods)
    as_server = len(rev.method_set & client_methods) + len(fwd.method_set & server_methods)
    return as_client >= as_server


def ordered_unique(items: Iterable[str]) -> list[str]:
    """Items in first-seen order without repeats."""
    return list(dict.fromkeys(items))
