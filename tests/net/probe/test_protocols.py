"""Judging answers: the shapes only pools give, and look-alikes that must not pass."""

from __future__ import annotations

import json
import os

import pytest

from minewatch.net.probe.protocols import (
    HANDSHAKES,
    NOISE_HELLO,
    NOISE_REPLY,
    PROBE_WALLET,
    Strength,
    describe_reply,
)

V1, XMR, V2 = HANDSHAKES["stratum-v1"], HANDSHAKES["stratum-xmr"], HANDSHAKES["stratum-v2"]


def line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def test_hellos_are_what_miners_send() -> None:
    v1 = json.loads(V1.hello())
    assert v1["method"] == "mining.subscribe" and v1["id"] == 1
    login = json.loads(XMR.hello())
    assert login["method"] == "login" and login["params"]["login"] == PROBE_WALLET
    assert len(V2.hello()) == NOISE_HELLO and V2.hello() != V2.hello()


@pytest.mark.parametrize(
    "reply",
    [
        # Bitcoin-style: subscriptions, extranonce1, extranonce2 size
        line({"id": 1, "result": [[["mining.notify", "ae68"]], "08000002", 4], "error": None}),
        # EthereumStratum/1.0.0 (NiceHash): subscription and extranonce only
        line(
            {
                "id": 1,
                "result": [["mining.notify", "ae68", "EthereumStratum/1.0.0"], "080c"],
                "error": None,
            }
        ),
        # A pool that pushes difficulty before answering
        line({"id": None, "method": "mining.set_difficulty", "params": [8]})
        + line({"id": 1, "result": None, "error": [20, "busy", None]}),
    ],
)
def test_stratum_v1_confirmed(reply: bytes) -> None:
    assert V1.complete(reply)
    assert V1.judge(reply).strength is Strength.CONFIRMED


@pytest.mark.parametrize(
    ("reply", "strength"),
    [
        (
            line(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "error": {"code": -32601, "message": "Method not found"},
                }
            ),
            Strength.NO,
        ),
        # A result means the server knows the method, but without an extranonce it proves less.
        (line({"id": 1, "result": [[], "not-hex", 4]}), Strength.LIKELY),
        (line({"id": 1, "result": [[], "08000002", 99]}), Strength.LIKELY),
        (line({"id": 1, "result": None, "error": None}), Strength.NO),
        (line({"id": 7, "result": [[], "08000002", 4]}), Strength.NO),
        (line({"id": 1, "result": True, "error": None}), Strength.LIKELY),
        (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", Strength.NO),
        (b"", Strength.NO),
    ],
)
def test_stratum_v1_look_alikes(reply: bytes, strength: Strength) -> None:
    assert V1.judge(reply).strength is strength


def test_xmr_job_confirms_with_coin() -> None:
    job = {"blob": "10" * 76, "job_id": "abc", "target": "ffffff00", "algo": "rx/0", "height": 5}
    reply = line(
        {
            "id": 1,
            "jsonrpc": "2.0",
            "error": None,
            "result": {"id": "s", "job": job, "status": "OK"},
        }
    )
    judged = XMR.judge(reply)
    assert judged.strength is Strength.CONFIRMED and judged.coin == "xmr"
    assert "height 5" in judged.evidence


@pytest.mark.parametrize(
    ("message", "strength"),
    [
        ("Invalid payment address provided", Strength.LIKELY),
        ("Invalid address used for login", Strength.LIKELY),
        ("Method not found", Strength.NO),
        ("Parse error", Strength.NO),
    ],
)
def test_xmr_refusals(message: str, strength: Strength) -> None:
    reply = line({"id": 1, "jsonrpc": "2.0", "error": {"code": -1, "message": message}})
    assert XMR.judge(reply).strength is strength


def test_xmr_job_without_blob_is_not_a_job() -> None:
    reply = line({"id": 1, "result": {"job": {"job_id": "1", "target": "ff"}, "status": "OK"}})
    assert XMR.judge(reply).strength is Strength.NO


def test_noise_reply_shape() -> None:
    assert V2.complete(os.urandom(NOISE_REPLY))
    assert V2.judge(os.urandom(NOISE_REPLY)).strength is Strength.LIKELY
    assert V2.judge(os.urandom(NOISE_REPLY + 1)).strength is Strength.NO
    assert V2.judge(os.urandom(NOISE_REPLY - 1)).strength is Strength.NO
    # The right size but not random: text, or a zero-padded record
    assert V2.judge((b"x" * 200 + b"abcdefghij" * 4)[:NOISE_REPLY]).strength is Strength.NO
    assert V2.judge(b"\x00" * NOISE_REPLY).strength is Strength.NO


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", "SSH banner"),
        (b"\x15\x03\x03\x00\x02\x02\x46", "TLS record"),
        (b"HTTP/1.0 400 Bad request\r\n", "HTTP response"),
        (b"<!DOCTYPE HTML>\n<html>", "HTML page"),
        (b"\x20\x02\x00\x00", "MQTT CONNACK"),
        (bytes(range(256)), "binary"),
    ],
)
def test_describe_names_what_the_server_is(reply: bytes, words: str) -> None:
    assert words in describe_reply(reply)
