"""eth-proxy: Ethereum getwork JSON-RPC spoken directly over TCP (``eth_submitLogin`` & co).

Over HTTP the same methods are "getwork" and belong to :mod:`.http_work`.
"""

from __future__ import annotations

from typing import ClassVar

from minewatch.findings import Verdict
from minewatch.net.flows import Conversation
from minewatch.net.recognisers._orientation import miner_is_initiator, ordered_unique
from minewatch.net.recognisers.base import Recogniser, Recognition, register
from minewatch.net.recognisers.coins import coin_from_address
from minewatch.net.recognisers.jsonrpc import read_jsonrpc

__all__ = ["EthProxyRecogniser"]

CLIENT_METHODS = {
    "eth_submitLogin",
    "eth_login",
    "eth_getWork",
    "eth_submitWork",
    "eth_submitHashrate",
}


@register
class EthProxyRecogniser(Recogniser):
    """Ethash miners talking getwork over a raw TCP JSON-RPC session."""

    name = "eth-proxy"
    protocols: ClassVar[tuple[str, ...]] = ("eth-proxy",)
    tokens: ClassVar[tuple[bytes, ...]] = (b"eth_submit", b"eth_getWork", b"eth_login")

    def recognise(self, conv: Conversation) -> Recognition | None:
        if b"eth_" not in conv.fwd and b"eth_" not in conv.rev:
            return None
        fwd, rev = read_jsonrpc(conv.fwd), read_jsonrpc(conv.rev)
        if fwd.http_requests or rev.http_requests:
            return None  # HTTP getwork
        if not (fwd.method_set | rev.method_set) & CLIENT_METHODS:
            return None
        initiator_mines = miner_is_initiator(fwd, rev, CLIENT_METHODS, set())
        client, server = (fwd, rev) if initiator_mines else (rev, fwd)
        calls = ordered_unique(m for m in client.methods if m in CLIENT_METHODS)
        evidence = ["miner called " + ", ".join(calls)]
        coin = "eth"
        for msg in client.calls("eth_submitLogin") + client.calls("eth_login"):
            params = msg.get("params")
            if isinstance(params, list) and params and isinstance(params[0], str):
                coin = coin_from_address(params[0]) or coin
                evidence.append("login with an Ethereum-format wallet address")
                break
        work = [r for r in server.results() if isinstance(r, list) and len(r) >= 3]
        if work:
            evidence.append("pool answered with work packages (header hash, seed hash, target)")
        answered = server.answered()
        return Recognition(
            protocol="eth-proxy",
            verdict=Verdict.MINING,
            confidence=0.99 if answered and len(calls) >= 2 else 0.95 if len(calls) >= 2 else 0.85,
            evidence=evidence,
            coin=coin,
            client_is_initiator=initiator_mines,
            answered=answered,
        )
