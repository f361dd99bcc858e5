"""CryptoNote / XMRig stratum: ``login`` with an agent, ``job`` pushes with a hashing blob and
target, ``submit`` of nonce and result hash, ``keepalived``.

The method names alone (``login``, ``submit``) are common words, so every message must also have
the structure of the mining protocol before it counts: a login carries ``login``/``pass``/
``agent`` parameters, a job carries a hex ``blob`` and ``target``, a submit carries a ``job_id``,
a hex ``nonce`` and a 32-byte ``result``.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from minewatch.findings import Verdict
from minewatch.net.flows import Conversation
from minewatch.net.recognisers._orientation import miner_is_initiator
from minewatch.net.recognisers.base import Recogniser, Recognition, register
from minewatch.net.recognisers.coins import coin_from_address, coin_from_algorithm
from minewatch.net.recognisers.jsonrpc import JsonRpcHead, read_jsonrpc

__all__ = ["XmrStratumRecogniser"]

CLIENT_METHODS = {"login", "submit", "keepalived", "getjob"}
SERVER_METHODS = {"job"}
_HEX = re.compile(r"^[0-9a-fA-F]+$")
# Fragments of messages cut by the capture or the head limit still show their shape.
_SUBMIT_FRAGMENT = re.compile(
    rb'"method"\s*:\s*"submit".{0,200}?"nonce"\s*:\s*"[0-9a-fA-F]{8}"', re.DOTALL
)
_JOB_FRAGMENT = re.compile(rb'"blob"\s*:\s*"[0-9a-fA-F]{100,}', re.DOTALL)


def _hex(value: Any, min_len: int = 1) -> bool:
    return isinstance(value, str) and len(value) >= min_len and bool(_HEX.match(value))


def _is_job(job: Any) -> bool:
    return isinstance(job, dict) and _hex(job.get("blob"), 76) and _hex(job.get("target"), 4)


def _jobs(server: JsonRpcHead) -> list[dict[str, Any]]:
    jobs = [m.get("params") for m in server.calls("job")]
    for result in server.results():
        if isinstance(result, dict):
            jobs.append(result.get("job"))
    return [j for j in jobs if _is_job(j)]  # type: ignore[misc]


def _logins(client: JsonRpcHead) -> list[dict[str, Any]]:
    out = []
    for msg in client.calls("login"):
        params = msg.get("params")
        if not isinstance(params, dict):
            continue
        login = params.get("login")
        # "login" alone is also an ordinary user-name field; a miner's login names its "agent",
        # sends the pool password field "pass", or logs in with a wallet address.
        if "agent" in params or (
            login is not None
            and ("pass" in params or (isinstance(login, str) and coin_from_address(login)))
        ):
            out.append(params)
    return out


def _submits(client: JsonRpcHead) -> int:
    count = 0
    for msg in client.calls("submit"):
        p = msg.get("params")
        if (
            isinstance(p, dict)
            and "job_id" in p
            and _hex(p.get("nonce"), 8)
            and _hex(p.get("result"), 64)
        ):
            count += 1
    return count


@register
class XmrStratumRecogniser(Recogniser):
    """CryptoNote pool protocol spoken by XMRig, xmr-stak and web-miner proxies."""

    name = "stratum-xmr"
    protocols: ClassVar[tuple[str, ...]] = ("stratum-xmr",)
    tokens: ClassVar[tuple[bytes, ...]] = (b'"blob"', b'"login"', b'"submit"', b'"keepalived"')

    def recognise(self, conv: Conversation) -> Recognition | None:
        fwd, rev = read_jsonrpc(conv.fwd), read_jsonrpc(conv.rev)
        if not (fwd.method_set | rev.method_set) & (CLIENT_METHODS | SERVER_METHODS) and not (
            _JOB_FRAGMENT.search(conv.fwd) or _JOB_FRAGMENT.search(conv.rev)
        ):
            return None
        initiator_mines = miner_is_initiator(fwd, rev, CLIENT_METHODS, SERVER_METHODS)
        if not (_jobs(fwd) or _jobs(rev)) and _JOB_FRAGMENT.search(conv.fwd):
            initiator_mines = False
        client, server = (fwd, rev) if initiator_mines else (rev, fwd)
        client_raw, server_raw = (conv.fwd, conv.rev) if initiator_mines else (conv.rev, conv.fwd)
        logins, jobs, submits = _logins(client), _jobs(server), _submits(client)
        fragments = bool(_SUBMIT_FRAGMENT.search(client_raw)) + bool(
            _JOB_FRAGMENT.search(server_raw)
        )
        if not (logins or jobs or submits or fragments):
            return None

        evidence: list[str] = []
        coin: str | None = None
        if logins:
            agent = logins[0].get("agent")
            login = logins[0].get("login")
            evidence.append(
                "miner logged in" + (f" with agent {agent!r}" if isinstance(agent, str) else "")
            )
            if isinstance(login, str):
                coin = coin_from_address(login)
                if coin:
                    evidence.append(f"login is a {coin.upper()} wallet address")
            algos = logins[0].get("algo")
            if isinstance(algos, list) and algos and isinstance(algos[0], str):
                coin = coin or coin_from_algorithm(algos[0])
                evidence.append("miner offers algorithms " + ", ".join(map(str, algos[:4])))
        if jobs:
            evidence.append(f"pool sent {len(jobs)} job(s) with hashing blob and target")
            algo = jobs[0].get("algo")
            if isinstance(algo, str):
                coin = coin or coin_from_algorithm(algo)
                evidence.append(f"job algorithm {algo}")
        elif _JOB_FRAGMENT.search(server_raw):
            evidence.append("pool sent a job with a hashing blob")
        if submits:
            evidence.append(f"miner submitted {submits} share(s) (job id, nonce, result hash)")
        elif _SUBMIT_FRAGMENT.search(client_raw):
            evidence.append("miner submitted shares")
        if "keepalived" in client.method_set:
            evidence.append("miner sent keepalived")
        signals = (
            bool(logins)
            + bool(jobs or _JOB_FRAGMENT.search(server_raw))
            + bool(submits or _SUBMIT_FRAGMENT.search(client_raw))
        )
        answered = bool(jobs) or server.answered()
        return Recognition(
            protocol="stratum-xmr",
            verdict=Verdict.MINING,
            confidence=0.99 if signals >= 2 else 0.9,
            evidence=evidence,
            coin=coin,
            client_is_initiator=initiator_mines,
            answered=answered,
        )
