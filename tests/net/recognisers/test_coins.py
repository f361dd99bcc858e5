"""Coin hints carried by the traffic: wallet address formats, algorithm names, pool host names.

The address shapes follow each coin's published encoding (Base58Check version prefixes, Bech32
human-readable parts); the checksums are not verified by the recognisers, so the test addresses
need only the right shape.
"""

from __future__ import annotations

import json

import pytest

from minewatch.findings import Verdict
from minewatch.net.capture.writer import Direction, TcpSession
from minewatch.net.recognisers.coins import (
    coin_from_address,
    coin_from_algorithm,
    coin_from_host,
)

from .conftest import ScanRecords

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def b58(prefix: str, size: int) -> str:
    return prefix + (B58 * 3)[7 : 7 + size - len(prefix)]


def bech(prefix: str, size: int) -> str:
    return prefix + (BECH32 * 4)[: size - len(prefix)]


@pytest.mark.parametrize(
    ("address", "coin"),
    [
        (b58("4", 95), "xmr"),
        (b58("8", 95), "xmr"),  # subaddress
        (b58("4", 106), "xmr"),  # integrated address
        ("0x" + "5a0b54d5dc17e0aadc383d2db43b0a0d3e029c4c", "eth"),
        (bech("bc1q", 42), "btc"),
        (bech("bc1p", 62), "btc"),  # taproot
        (b58("1", 34), "btc"),
        (b58("3", 34), "btc"),
        (bech("ltc1q", 43), "ltc"),
        (b58("L", 34), "ltc"),
        (b58("M", 34), "ltc"),
        (b58("t1", 35), "zec"),
        (bech("zs1", 78), "zec"),
        (b58("D", 34), "doge"),
        (b58("R", 34), "rvn"),
        (bech("kaspa:q", 67), "kas"),
        (bech("bitcoincash:q", 54), "bch"),
        (bech("q", 42), "bch"),
    ],
)
def test_address_formats(address: str, coin: str) -> None:
    assert coin_from_address(address) == coin


@pytest.mark.parametrize("suffix", [".rig01", "+65536", "/me@example.org", ".rig01+4096"])
def test_worker_and_difficulty_suffixes(suffix: str) -> None:
    assert coin_from_address(b58("4", 95) + suffix) == "xmr"
    assert coin_from_address("0x" + "ab" * 20 + suffix) == "eth"


@pytest.mark.parametrize(
    "login",
    [
        "",
        "x",
        "alice",
        "worker1",
        "alice@example.com",
        b58("4", 94),  # one character short of a Monero address
        b58("4", 96),
        "0x" + "ab" * 19,
        "0x" + "zz" * 20,
        bech("bc1q", 42).upper()[:-1] + "O",
        b58("0", 34),  # '0' is not in the Base58 alphabet
    ],
)
def test_logins_that_name_no_coin(login: str) -> None:
    assert coin_from_address(login) is None


@pytest.mark.parametrize(
    ("algo", "coin"),
    [
        ("rx/0", "xmr"),
        ("RandomX", "xmr"),
        (" cn/r ", "xmr"),
        ("kawpow", "rvn"),
        ("etchash", "etc"),
        ("kHeavyHash", "kas"),
        ("autolykos2", "erg"),
        ("sha256d", "btc"),
        ("cn/0", None),  # shared by several CryptoNote coins
        ("scrypt", None),  # Litecoin and Dogecoin both
        ("", None),
    ],
)
def test_algorithms(algo: str, coin: str | None) -> None:
    assert coin_from_algorithm(algo) == coin


@pytest.mark.parametrize(
    ("host", "coin"),
    [
        ("xmr-eu1.nanopool.org", "xmr"),
        ("eth.2miners.com", "eth"),
        ("solo-rvn.2miners.com", "rvn"),
        ("ETC.Pool.Example", "etc"),
        ("pool.supportxmr.com", None),  # "supportxmr" is not a label of its own
        ("www.example.com", None),
        ("pool.example.btc", None),  # the last label is a top-level domain, not a ticker
    ],
)
def test_host_names(host: str, coin: str | None) -> None:
    assert coin_from_host(host) == coin


def test_authorize_address_names_the_coin_end_to_end(scan: ScanRecords) -> None:
    # A Bitcoin-style job names "btc" by shape; a Litecoin wallet in authorize is more precise.
    def line(obj: object) -> bytes:
        return json.dumps(obj).encode() + b"\n"

    notify = {
        "id": None,
        "method": "mining.notify",
        "params": ["1f", "ab" * 32, "01", "02", [], "20000000", "1a0ffff0", "504e86b9", True],
    }
    messages = [
        (Direction.TO_SERVER, line({"id": 1, "method": "mining.subscribe", "params": []})),
        (
            Direction.TO_SERVER,
            line({"id": 2, "method": "mining.authorize", "params": [bech("ltc1q", 43) + ".w"]}),
        ),
        (Direction.TO_CLIENT, line(notify)),
    ]
    findings = scan(TcpSession("10.120.0.4", 62000, "198.51.100.4", 443).frames(messages))
    assert len(findings) == 1
    found = findings[0]
    assert (found.verdict, found.protocol, found.coin) == (Verdict.MINING, "stratum-v1", "ltc")
    assert "authorize uses a LTC wallet address" in found.evidence
