"""Coin hints that the traffic itself carries: wallet address formats and algorithm names.

These are facts of each coin's published address encoding (Base58Check version prefixes,
Bech32 human-readable parts, Monero's 95/106-character addresses), so a login or authorize that
names a wallet also names the coin.
"""

from __future__ import annotations

import re

__all__ = ["coin_from_address", "coin_from_algorithm", "coin_from_host"]

_B58 = "[1-9A-HJ-NP-Za-km-z]"
_ADDRESS_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"^[48]{_B58}{{94}}(?:{_B58}{{11}})?$"), "xmr"),
    (re.compile(r"^0x[0-9a-fA-F]{40}$"), "eth"),
    (re.compile(r"^bc1[02-9ac-hj-np-z]{11,71}$"), "btc"),
    (re.compile(r"^ltc1[02-9ac-hj-np-z]{11,71}$"), "ltc"),
    (re.compile(rf"^t[13]{_B58}{{33}}$"), "zec"),
    (re.compile(r"^zs1[02-9ac-hj-np-z]{75}$"), "zec"),
    (re.compile(rf"^[LM]{_B58}{{25,33}}$"), "ltc"),
    (re.compile(rf"^D{_B58}{{33}}$"), "doge"),
    (re.compile(rf"^R{_B58}{{33}}$"), "rvn"),
    (re.compile(r"^kaspa:[02-9ac-hj-np-z]{61,63}$"), "kas"),
    (re.compile(r"^(?:bitcoincash:)?[qp][02-9ac-hj-np-z]{41}$"), "bch"),
    (re.compile(rf"^[13]{_B58}{{25,33}}$"), "btc"),
)

_ALGORITHMS: dict[str, str] = {
    "rx/0": "xmr",
    "randomx": "xmr",
    "cn/r": "xmr",
    "cn/2": "xmr",
    "cryptonight-monero": "xmr",
    "rx/wow": "wow",
    "rx/arq": "arq",
    "kawpow": "rvn",
    "etchash": "etc",
    "ethash": "eth",
    "equihash": "zec",
    "kheavyhash": "kas",
    "autolykos2": "erg",
    "sha256d": "btc",
}

_TICKERS = frozenset(
    {"btc", "bch", "ltc", "doge", "xmr", "eth", "etc", "zec", "rvn", "kas", "erg", "ckb", "dash"}
)


def coin_from_address(login: str) -> str | None:
    """The coin whose address format ``login`` (optionally ``address.worker``) follows."""
    for sep in ("+", "/"):
        login = login.split(sep, 1)[0]
    candidates = [login, login.split(".", 1)[0]]
    for candidate in candidates:
        for pattern, coin in _ADDRESS_PATTERNS:
            if pattern.match(candidate):
                return coin
    return None


def coin_from_algorithm(algo: str) -> str | None:
    """The coin a mining algorithm name belongs to, where the name is specific to one coin."""
    return _ALGORITHMS.get(algo.strip().lower())


def coin_from_host(host: str) -> str | None:
    """A coin ticker that a pool host name carries as a label part (``xmr-eu1.nanopool.org``)."""
    parts = re.split(r"[.\-]", host.lower())
    found = [p for p in parts[:-1] if p in _TICKERS]
    return found[0] if found else None
