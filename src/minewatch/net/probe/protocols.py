"""What each probe handshake sends, when its answer is complete, and what the answer proves.

A probe opens one connection per protocol and sends the first message a miner would send:

* **Stratum v1** (Bitcoin style): ``mining.subscribe``. A pool answers with its subscriptions, an
  ``extranonce1`` (hex) and the ``extranonce2`` size, or pushes ``mining.notify`` /
  ``mining.set_difficulty``. Either shape is specific to mining; a JSON-RPC "method not found" is
  an ordinary JSON-RPC server.
* **CryptoNote / XMRig stratum**: ``login`` with a placeholder wallet. A pool answers with a job
  (hex hashing ``blob``, ``job_id``, ``target``), or refuses the wallet by name ("invalid payment
  address"); a refusal that talks about wallets or addresses is strong but not conclusive.
* **Stratum V2**: the first message of the Noise NX handshake, 64 bytes. Any 64 bytes are a valid
  ElligatorSwift encoding of a secp256k1 key, so random bytes are a well-formed hello. An SV2
  endpoint answers with exactly 234 bytes that look random (its ephemeral key, 64; its static
  key encrypted, 64 + 16-byte tag; its certificate encrypted, 74 + 16), then waits. The reply
  is not decrypted here, so its size and randomness make the answer *likely*, never confirmed.

Every read is bounded (:data:`MAX_REPLY` bytes): a server that streams megabytes of anything is
cut off and judged on what came first.

Example::

    >>> hs = HANDSHAKES["stratum-v1"]
    >>> reply = b'{"id":1,"result":[[["mining.notify","ae6812eb"]],"08000002",4],"error":null}\\n'
    >>> hs.judge(reply).strength
    <Strength.CONFIRMED: 'confirmed'>
"""

from __future__ import annotations

import enum
import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from minewatch import __version__
from minewatch.net.recognisers.coins import coin_from_algorithm

__all__ = [
    "HANDSHAKES",
    "MAX_REPLY",
    "PROBE_AGENT",
    "PROBE_WALLET",
    "PROTOCOL_ORDER",
    "Handshake",
    "Judgement",
    "StratumV1Handshake",
    "StratumV2NoiseHandshake",
    "Strength",
    "XmrLoginHandshake",
    "describe_reply",
]

MAX_REPLY = 16 * 1024
"""Most bytes read from one answer; a pool's first answer is well under 4 KiB."""

PROBE_AGENT = f"minewatch-probe/{__version__}"
"""What the probe calls itself where a protocol carries a user agent, so operators can see it."""

PROBE_WALLET = "minewatch-probe-not-a-wallet"
"""The login sent to CryptoNote pools: plainly not an address, so no pool credits anybody."""

NOISE_HELLO = 64
NOISE_REPLY = 234
_REQUEST_ID = 1
_MAX_LINES = 16
_MIN_BLOB = 40  # bytes: CryptoNote hashing blobs are 76 B or more (43 B header + root + count)
_HEX = re.compile(r"[0-9a-fA-F]+")
# Words pools use when they refuse a login (checked against real pool error strings such as
# "Invalid payment address provided", "Invalid address used for login", "invalid wallet").
_LOGIN_REFUSAL = re.compile(r"wallet|address|payment|\blogin\b|miner|worker", re.IGNORECASE)
_V1_SERVER_METHODS = frozenset(
    {"mining.notify", "mining.set_difficulty", "mining.set_target", "mining.set_extranonce"}
)


class Strength(enum.StrEnum):
    """How much an answer proves, strongest last in :data:`ORDER`."""

    NO = "no"
    """The server did not answer like a pool of this protocol."""
    LIKELY = "likely"
    """The answer fits the protocol but is not specific to it (a refused login, a Noise reply)."""
    CONFIRMED = "confirmed"
    """The answer has a shape only a mining server gives (a job, an extranonce)."""

    @property
    def rank(self) -> int:
        """Order for picking the strongest answer: no < likely < confirmed."""
        return {"no": 0, "likely": 1, "confirmed": 2}[self.value]


@dataclass(frozen=True, slots=True)
class Judgement:
    """What one answer proves: strength, a sentence a person can check, and the coin if named."""

    strength: Strength
    evidence: str
    coin: str | None = None


def _printable(data: bytes, limit: int = 60) -> str:
    text = data[:limit].decode("ascii", "replace")
    text = "".join(c if c.isprintable() and c != "\ufffd" else "." for c in text)
    return text + ("…" if len(data) > limit else "")


def _first_line(data: bytes) -> bytes:
    return data.split(b"\n", 1)[0].rstrip(b"\r")


def describe_reply(reply: bytes) -> str:
    """Name what a non-mining answer looks like, so a negative says what the server is instead."""
    if not reply:
        return "nothing"
    if reply[0] in (0x15, 0x16) and reply[1:2] == b"\x03":
        return "a TLS record (the port expects TLS)"
    if reply.startswith(b"HTTP/"):
        return f"an HTTP response ({_printable(_first_line(reply))})"
    if reply.startswith(b"SSH-"):
        return f"an SSH banner ({_printable(_first_line(reply))})"
    if reply.lstrip()[:2].lower() in (b"<!", b"<h"):
        return f"an HTML page ({_printable(reply.lstrip())})"
    if reply[:1] == b"{":
        return f"JSON ({_printable(reply)})"
    if reply[0] == 0x20 and len(reply) >= 4 and reply[1] == 2:
        return "an MQTT CONNACK"
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in reply[:256])
    if printable == min(len(reply), 256):
        return f"text ({_printable(reply)})"
    return f"{len(reply)} bytes of binary data"


def _json_lines(reply: bytes) -> list[Any] | None:
    """The complete JSON lines at the start of ``reply``; None when the first is not JSON."""
    lines = reply.split(b"\n")[:-1][:_MAX_LINES]
    out: list[Any] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except (ValueError, RecursionError):
            if not out:
                return None
            break
    return out


class Handshake:
    """One protocol's opening: the bytes to send, when enough came back, and the verdict.

    ``transports`` says where the protocol runs: Stratum v1 and CryptoNote stratum run in clear
    or inside TLS; Stratum V2 brings its own encryption (Noise) and runs on plain TCP only.
    """

    protocol: ClassVar[str]
    transports: ClassVar[tuple[str, ...]] = ("plain", "tls")
    settle_s: ClassVar[float] = 0.0
    """After the answer looks complete, keep listening this long for bytes that would spoil it."""

    def hello(self) -> bytes:
        """The first message, as a miner sends it."""
        raise NotImplementedError

    def complete(self, reply: bytes) -> bool:
        """Whether ``reply`` holds enough to judge (reading stops there)."""
        raise NotImplementedError

    def judge(self, reply: bytes) -> Judgement:
        """What ``reply`` (possibly empty or cut at :data:`MAX_REPLY`) proves."""
        raise NotImplementedError


class _JsonLineHandshake(Handshake):
    """Newline-delimited JSON-RPC: complete once our reply (or a non-JSON line) has arrived."""

    def complete(self, reply: bytes) -> bool:
        if b"\n" not in reply:
            return False
        messages = _json_lines(reply)
        if messages is None:
            return True
        return any(isinstance(m, dict) and m.get("id") == _REQUEST_ID for m in messages) or (
            len(messages) >= _MAX_LINES
        )

    def _reply_to_us(self, messages: list[Any]) -> dict[str, Any] | None:
        for m in messages:
            if isinstance(m, dict) and m.get("id") == _REQUEST_ID:
                return m
        return None

    @staticmethod
    def _error_text(error: Any) -> str:
        if isinstance(error, dict):
            return f"{error.get('code')}: {str(error.get('message'))[:120]}"
        if isinstance(error, list) and len(error) >= 2:  # Stratum v1: [code, message, traceback]
            return f"{error[0]}: {str(error[1])[:120]}"
        return str(error)[:120]

    def _not_jsonrpc(self, reply: bytes) -> Judgement:
        return Judgement(Strength.NO, f"answered with {describe_reply(reply)}")


class StratumV1Handshake(_JsonLineHandshake):
    """``mining.subscribe``, judged by the extranonce in the answer or pushed mining methods."""

    protocol = "stratum-v1"

    def hello(self) -> bytes:
        message = {"id": _REQUEST_ID, "method": "mining.subscribe", "params": [PROBE_AGENT]}
        return json.dumps(message, separators=(",", ":")).encode() + b"\n"

    def judge(self, reply: bytes) -> Judgement:
        messages = _json_lines(reply)
        if not messages:
            return self._not_jsonrpc(reply)
        pushed = sorted(
            {m["method"] for m in messages if isinstance(m, dict) and m.get("method")}
            & _V1_SERVER_METHODS
        )
        answer = self._reply_to_us(messages)
        result = answer.get("result") if answer else None
        if isinstance(result, list) and len(result) >= 2:
            extranonce1 = result[1]
            size = result[2] if len(result) >= 3 else None
            sized = size is None or (isinstance(size, int) and 0 < size <= 32)
            if isinstance(extranonce1, str) and _HEX.fullmatch(extranonce1) and sized:
                said = f"extranonce1 {extranonce1}" + (
                    f", extranonce2 size {size}" if size is not None else ""
                )
                return Judgement(Strength.CONFIRMED, f"answered mining.subscribe with {said}")
        if pushed:
            return Judgement(Strength.CONFIRMED, f"pushed {', '.join(pushed)} after subscribe")
        if answer is None:
            return Judgement(Strength.NO, f"no JSON-RPC reply to mining.subscribe ({len(reply)} B)")
        if answer.get("error"):
            error = self._error_text(answer["error"])
            return Judgement(Strength.NO, f"refused mining.subscribe ({error})")
        if result not in (None, False):
            shown = json.dumps(result)[:80]
            return Judgement(
                Strength.LIKELY, f"accepted mining.subscribe without an extranonce ({shown})"
            )
        return Judgement(Strength.NO, "answered mining.subscribe with an empty result")


class XmrLoginHandshake(_JsonLineHandshake):
    """CryptoNote ``login``, judged by the job in the answer or the words of a refusal."""

    protocol = "stratum-xmr"

    def hello(self) -> bytes:
        params = {
            "login": PROBE_WALLET,
            "pass": "x",
            "agent": PROBE_AGENT,
            "algo": ["rx/0", "cn/r", "rx/wow", "cn-heavy/xhv", "argon2/chukwav2"],
        }
        message = {"id": _REQUEST_ID, "jsonrpc": "2.0", "method": "login", "params": params}
        return json.dumps(message, separators=(",", ":")).encode() + b"\n"

    @staticmethod
    def _job(candidate: Any) -> dict[str, Any] | None:
        if not isinstance(candidate, dict):
            return None
        blob, target = candidate.get("blob"), candidate.get("target")
        if (
            isinstance(blob, str)
            and len(blob) >= 2 * _MIN_BLOB
            and _HEX.fullmatch(blob)
            and isinstance(target, str)
            and _HEX.fullmatch(target)
            and candidate.get("job_id") is not None
        ):
            return candidate
        return None

    def judge(self, reply: bytes) -> Judgement:
        messages = _json_lines(reply)
        if not messages:
            return self._not_jsonrpc(reply)
        answer = self._reply_to_us(messages)
        jobs = [
            self._job(m.get("params"))
            for m in messages
            if isinstance(m, dict) and m.get("method") == "job"
        ]
        result = answer.get("result") if answer else None
        job = self._job(result.get("job")) if isinstance(result, dict) else None
        job = job or next((j for j in jobs if j), None)
        if job is not None:
            algo = job.get("algo")
            coin = coin_from_algorithm(algo) if isinstance(algo, str) else None
            parts = [f"blob {len(job['blob']) // 2} B", f"target {job['target']}"]
            if isinstance(algo, str):
                parts.append(f"algo {algo}")
            if isinstance(job.get("height"), int):
                parts.append(f"height {job['height']}")
            return Judgement(
                Strength.CONFIRMED, f"answered login with a mining job ({', '.join(parts)})", coin
            )
        if answer is None:
            return Judgement(Strength.NO, f"no JSON-RPC reply to login ({len(reply)} B)")
        error = answer.get("error")
        if error:
            text = self._error_text(error)
            message = error.get("message") if isinstance(error, dict) else text
            if isinstance(message, str) and _LOGIN_REFUSAL.search(message):
                return Judgement(Strength.LIKELY, f"refused the placeholder wallet ({text})")
            return Judgement(Strength.NO, f"refused login ({text})")
        return Judgement(Strength.NO, "answered login without a job")


def _random_looking(data: bytes) -> bool:
    """Whether ``data`` uses about as many distinct byte values as random bytes would.

    n random bytes cover 256·(1 - e^(-n/256)) values on average (about 153 of 234); text,
    headers and padding cover far fewer. 0.85 of that expectation leaves room for chance.
    """
    n = len(data)
    expected = 256 * (1 - math.exp(-n / 256))
    return len(set(data)) >= 0.85 * expected


class StratumV2NoiseHandshake(Handshake):
    """The Noise NX opening of Stratum V2: 64 random bytes out, 234 random-looking bytes back."""

    protocol = "stratum-v2"
    transports = ("plain",)
    settle_s = 0.3

    def hello(self) -> bytes:
        return os.urandom(NOISE_HELLO)

    def complete(self, reply: bytes) -> bool:
        return len(reply) >= NOISE_REPLY

    def judge(self, reply: bytes) -> Judgement:
        if len(reply) == NOISE_REPLY and _random_looking(reply):
            return Judgement(
                Strength.LIKELY,
                "answered a 64-byte Noise NX hello with exactly 234 random-looking bytes, "
                "the Stratum V2 handshake reply (not decrypted)",
            )
        if not reply:
            return Judgement(Strength.NO, "no answer to a Noise NX hello")
        return Judgement(
            Strength.NO,
            f"answered a Noise NX hello with {describe_reply(reply)}, not the 234-byte reply",
        )


HANDSHAKES: dict[str, Handshake] = {
    h.protocol: h for h in (StratumV1Handshake(), XmrLoginHandshake(), StratumV2NoiseHandshake())
}
"""Every handshake by protocol name."""

PROTOCOL_ORDER: tuple[str, ...] = ("stratum-v1", "stratum-xmr", "stratum-v2")
"""The order protocols are tried in on one target."""
