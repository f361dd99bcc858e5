"""Stratum v1 (Bitcoin style, with the Zcash/Equihash and EthereumStratum/1.0.0 dialects).

Newline-delimited JSON-RPC with ``mining.*`` methods: the miner calls ``subscribe``/``authorize``/
``submit``/``configure``/``extranonce.subscribe``; the pool pushes ``notify``, ``set_difficulty``,
``set_target``. The coin is read from the traffic: the shape of ``mining.notify`` (a Bitcoin-style
job carries coinbase halves and a merkle branch; an Equihash job (ZIP-301) a block version, a
merkle root and ``set_target``; an Ethash job a seed hash and header hash), and the wallet
address a miner authorises with.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from minewatch.findings import Verdict
from minewatch.net.flows import Conversation
from minewatch.net.recognisers._orientation import miner_is_initiator, ordered_unique
from minewatch.net.recognisers.base import Recogniser, Recognition, register
from minewatch.net.recognisers.coins import coin_from_address
from minewatch.net.recognisers.jsonrpc import JsonRpcHead, read_jsonrpc

__all__ = ["StratumV1Recogniser"]

CLIENT_METHODS = {
    "mining.subscribe",
    "mining.authorize",
    "mining.submit",
    "mining.extranonce.subscribe",
    "mining.configure",
    "mining.suggest_difficulty",
    "mining.suggest_target",
    "mining.get_transactions",
    "mining.multi_version",
    "mining.hello",
    "mining.noop",
}
SERVER_METHODS = {
    "mining.notify",
    "mining.set_difficulty",
    "mining.set_target",
    "mining.set_extranonce",
    "mining.set_version_mask",
    "client.reconnect",
    "client.show_message",
    "client.get_version",
}
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def _is_hex(value: Any, length: int | None = None) -> bool:
    if not isinstance(value, str) or not _HEX.match(value):
        return False
    return length is None or len(value) == length


def _notify_style(client: JsonRpcHead, server: JsonRpcHead) -> tuple[str | None, str | None]:
    """(coin, description) from the structure of the pool's job pushes."""
    first = server.first_call("mining.notify")
    for msg in [first] if first is not None else []:
        params = msg.get("params")
        if not isinstance(params, list):
            continue
        if (
            len(params) >= 9
            and isinstance(params[4], list)
            and _is_hex(params[1], 64)
            and _is_hex(params[5], 8)
        ):
            return "btc", "Bitcoin-style job (coinbase halves, merkle branch, version/nbits/ntime)"
        if len(params) >= 8 and _is_hex(params[1], 8) and _is_hex(params[3], 64):
            return "zec", "Equihash job (ZIP-301: version, prev hash, merkle root, time, bits)"
        if 3 <= len(params) <= 5 and _is_hex(params[1], 64) and _is_hex(params[2], 64):
            return "eth", "Ethash job (seed hash, header hash)"
    if (
        "mining.set_target" in server.method_set
        and "mining.set_difficulty" not in server.method_set
    ):
        return "zec", "pool sets a share target (mining.set_target, ZIP-301)"
    return None, None


def _first_param(message: dict[str, Any] | None) -> str | None:
    params = message.get("params") if message is not None else None
    if isinstance(params, list) and params and isinstance(params[0], str):
        return params[0]
    return None


@register
class StratumV1Recogniser(Recogniser):
    """Stratum v1 and its Zcash and EthereumStratum/1.0.0 dialects, in either direction."""

    name = "stratum-v1"
    protocols: ClassVar[tuple[str, ...]] = ("stratum-v1", "ethereum-stratum")
    tokens: ClassVar[tuple[bytes, ...]] = (b"mining.",)

    def recognise(self, conv: Conversation) -> Recognition | None:
        if b"mining." not in conv.fwd and b"mining." not in conv.rev:
            return None
        fwd, rev = read_jsonrpc(conv.fwd), read_jsonrpc(conv.rev)
        if (fwd.http_requests or rev.http_requests) and 101 not in (
            fwd.http_statuses + rev.http_statuses
        ):
            # Stratum is raw TCP (or a WebSocket after a 101 upgrade, or a CONNECT tunnel);
            # Stratum lines inside an HTTP exchange are content, e.g. a documentation page.
            return None
        known = CLIENT_METHODS | SERVER_METHODS
        if not (fwd.method_set | rev.method_set) & known:
            return None
        initiator_mines = miner_is_initiator(fwd, rev, CLIENT_METHODS, SERVER_METHODS)
        client, server = (fwd, rev) if initiator_mines else (rev, fwd)
        client_calls = ordered_unique(m for m in client.methods if m in CLIENT_METHODS)
        server_pushes = ordered_unique(m for m in server.methods if m in SERVER_METHODS)
        if not client_calls and not server_pushes:
            return None

        evidence = []
        if client_calls:
            evidence.append("miner called " + ", ".join(client_calls))
        if server_pushes:
            evidence.append("pool pushed " + ", ".join(server_pushes))
        agent = _first_param(client.first_call("mining.subscribe"))
        ethereum = b"EthereumStratum/" in conv.fwd or b"EthereumStratum/" in conv.rev
        if agent:
            evidence.append(f"subscribe names miner software {agent!r}")
        coin, style = _notify_style(client, server)
        if style:
            evidence.append(style)
        login = _first_param(client.first_call("mining.authorize"))
        address_coin = coin_from_address(login) if login else None
        if address_coin:
            evidence.append(f"authorize uses a {address_coin.upper()} wallet address")
            coin = address_coin if coin in (None, "btc") else coin
        if ethereum:
            evidence.append("EthereumStratum/1.0.0 dialect")
            coin = coin or "eth"
        answered = bool(server_pushes) or server.answered()
        both_sides = bool(client_calls) and (bool(server_pushes) or server.answered())
        distinct = len(client_calls) + len(server_pushes)
        confidence = 0.99 if both_sides else 0.95 if distinct >= 2 else 0.85
        return Recognition(
            protocol="ethereum-stratum" if ethereum else "stratum-v1",
            verdict=Verdict.MINING,
            confidence=confidence,
            evidence=evidence,
            coin=coin,
            client_is_initiator=initiator_mines,
            answered=answered,
        )
