"""Ask one server, over plain TCP and/or TLS, whether it speaks a mining protocol.

Each protocol gets its own connection (a pool drops a client that speaks the wrong dialect), and
each connection is bounded: one timeout covers connect, TLS handshake and the answer, and at most
:data:`~minewatch.net.probe.protocols.MAX_REPLY` bytes are read. TLS certificates are not
verified (a pool's certificate is often self-signed; the probe asks what the server *is*, not
whether to trust it); the certificate's SHA-256 is kept as evidence. When a port is closed, or TLS
cannot be negotiated, the remaining attempts on that transport are skipped: they could only fail
the same way.

Example::

    prober = Prober(timeout_s=5)
    result = asyncio.run(prober.probe("127.0.0.1", 3333, transports=("plain", "tls")))
    result.answered, result.strength, result.evidence
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from minewatch.errors import InputError
from minewatch.net.probe.protocols import (
    HANDSHAKES,
    MAX_REPLY,
    PROTOCOL_ORDER,
    Handshake,
    Judgement,
    Strength,
)

__all__ = [
    "TRANSPORTS",
    "Attempt",
    "ProbeResult",
    "Prober",
    "Target",
    "parse_target",
]

TRANSPORTS = ("plain", "tls")
_READ_CHUNK = 4096


@dataclass(frozen=True, slots=True)
class Target:
    """A server to probe, as the user named it (host name or address, and port)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_target(text: str) -> Target:
    """``HOST:PORT`` or ``[IPV6]:PORT`` as a :class:`Target`; :class:`InputError` otherwise."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise InputError(f"{text!r}: write an IPv6 target as [ADDRESS]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host or ":" in host:
            raise InputError(f"{text!r}: expected HOST:PORT (IPv6 as [ADDRESS]:PORT)")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InputError(f"{text!r}: the port must be a number from 1 to 65535")
    return Target(host, int(port_text))


@dataclass(slots=True)
class Attempt:
    """One connection: which protocol over which transport, and what came of it."""

    protocol: str
    transport: str
    strength: Strength
    evidence: str
    reply_bytes: int = 0
    coin: str | None = None
    tls: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["strength"] = str(self.strength)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attempt:
        return cls(**{**data, "strength": Strength(data["strength"])})


@dataclass(slots=True)
class ProbeResult:
    """The answer about one target: the strongest protocol it answered, and every attempt."""

    target: str
    address: str | None
    port: int
    transports: tuple[str, ...]
    probed_at_ns: int
    attempts: list[Attempt] = field(default_factory=list)
    refused: str | None = None
    """Why the target was not probed (policy, rate limit, name resolution), or None."""
    cached: bool = False

    @property
    def best(self) -> Attempt | None:
        """The strongest attempt (the first of equals), or None when nothing was tried."""
        if not self.attempts:
            return None
        return max(self.attempts, key=lambda a: a.strength.rank)

    @property
    def strength(self) -> Strength:
        best = self.best
        return best.strength if best else Strength.NO

    @property
    def answered(self) -> str | None:
        """The mining protocol the server answered (likely or confirmed), or None."""
        best = self.best
        return best.protocol if best and best.strength is not Strength.NO else None

    @property
    def evidence(self) -> list[str]:
        """Evidence for the verdict: the winning attempts, else what each attempt met."""
        winners = [a for a in self.attempts if a.strength is self.strength]
        return [f"{a.protocol}/{a.transport}: {a.evidence}" for a in winners]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, in the order the ``probe`` command prints it."""
        best = self.best
        return {
            "target": self.target,
            "address": self.address,
            "port": self.port,
            "answered": self.answered,
            "transport": best.transport if best and self.answered else None,
            "strength": str(self.strength),
            "coin": best.coin if best else None,
            "evidence": self.evidence if not self.refused else [self.refused],
            "refused": self.refused,
            "cached": self.cached,
            "probed_at_ns": self.probed_at_ns,
            "transports": list(self.transports),
            "attempts": [a.to_dict() for a in self.attempts],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeResult:
        return cls(
            target=data["target"],
            address=data["address"],
            port=int(data["port"]),
            transports=tuple(data["transports"]),
            probed_at_ns=int(data["probed_at_ns"]),
            attempts=[Attempt.from_dict(a) for a in data["attempts"]],
            refused=data.get("refused"),
        )


class _TransportError(Exception):
    """The transport cannot work on this target (closed port, no TLS): skip its other attempts."""


def _tls_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # identify the server, do not trust it
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class Prober:
    """Probes one address at a time; :class:`~minewatch.net.probe.session.ProbeSession` adds
    policy, rate limits and the cache around it.

    ``on_connect`` is awaited before every connection (the session's global rate limit).
    """

    def __init__(
        self,
        *,
        timeout_s: float = 5.0,
        max_reply: int = MAX_REPLY,
        protocols: tuple[str, ...] = PROTOCOL_ORDER,
        on_connect: Any = None,
    ) -> None:
        unknown = [p for p in protocols if p not in HANDSHAKES]
        if unknown:
            raise InputError(f"unknown probe protocols: {', '.join(unknown)}")
        self.timeout_s = timeout_s
        self.max_reply = max_reply
        self.protocols = protocols
        self._on_connect = on_connect
        self.connections = 0

    async def probe(
        self,
        address: str,
        port: int,
        *,
        transports: tuple[str, ...] = TRANSPORTS,
        server_name: str | None = None,
        target: str | None = None,
    ) -> ProbeResult:
        """Try each protocol over each transport until one is confirmed."""
        result = ProbeResult(
            target=target or str(Target(address, port)),
            address=address,
            port=port,
            transports=transports,
            probed_at_ns=time.time_ns(),
        )
        for transport in transports:
            for name in self.protocols:
                handshake = HANDSHAKES[name]
                if transport not in handshake.transports:
                    continue
                try:
                    attempt = await self._attempt(handshake, address, port, transport, server_name)
                except _TransportError as stop:
                    result.attempts.append(Attempt(name, transport, Strength.NO, str(stop.args[0])))
                    break
                result.attempts.append(attempt)
                if attempt.strength is Strength.CONFIRMED:
                    return result
        return result

    async def _attempt(
        self,
        handshake: Handshake,
        address: str,
        port: int,
        transport: str,
        server_name: str | None,
    ) -> Attempt:
        if self._on_connect is not None:
            await self._on_connect()
        self.connections += 1
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        tls = transport == "tls"
        try:
            async with asyncio.timeout_at(deadline):
                reader, writer = await asyncio.open_connection(
                    address,
                    port,
                    ssl=_tls_context() if tls else None,
                    server_hostname=(server_name or "") if tls else None,
                    limit=self.max_reply,
                )
        except TimeoutError:
            raise _TransportError(f"no connection within {self.timeout_s:g} s") from None
        except ssl.SSLError as exc:
            raise _TransportError(f"TLS could not be negotiated ({exc.reason or exc})") from None
        except ConnectionRefusedError:
            raise _TransportError("connection refused (port closed)") from None
        except OSError as exc:
            raise _TransportError(f"cannot connect ({exc.strerror or exc})") from None
        try:
            tls_info = _tls_info(writer) if tls else None
            reply, how = await self._exchange(handshake, reader, writer, deadline)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await writer.wait_closed()
        judgement = handshake.judge(reply)
        evidence = (
            judgement.evidence
            if judgement.strength is not Strength.NO
            else (f"{judgement.evidence}{how}")
        )
        return _attempt_from(handshake, transport, judgement, evidence, len(reply), tls_info)

    async def _exchange(
        self,
        handshake: Handshake,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        deadline: float,
    ) -> tuple[bytes, str]:
        """Send the hello and read until the answer is complete, bounded in time and size."""
        reply = bytearray()
        how = ""
        try:
            async with asyncio.timeout_at(deadline):
                writer.write(handshake.hello())
                await writer.drain()
                while len(reply) < self.max_reply and not handshake.complete(bytes(reply)):
                    chunk = await reader.read(min(_READ_CHUNK, self.max_reply - len(reply)))
                    if not chunk:
                        how = " (then the server closed the connection)"
                        break
                    reply += chunk
        except TimeoutError:
            how = f" (nothing more within {self.timeout_s:g} s)"
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            how = f" (connection failed: {exc.__class__.__name__})"
        if len(reply) >= self.max_reply:
            how = f" (cut off after {self.max_reply} B)"
        elif handshake.settle_s and not how:
            # The answer looks whole; a little longer shows whether more was on its way.
            with contextlib.suppress(TimeoutError, ConnectionError, OSError, ssl.SSLError):
                async with asyncio.timeout(handshake.settle_s):
                    extra = await reader.read(self.max_reply - len(reply))
                    reply += extra
        return bytes(reply[: self.max_reply]), how


def _tls_info(writer: asyncio.StreamWriter) -> dict[str, str]:
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is None:
        return {}
    info = {"version": str(ssl_object.version()), "cipher": str(ssl_object.cipher()[0])}
    der = ssl_object.getpeercert(binary_form=True)
    if der:
        info["certificate_sha256"] = hashlib.sha256(der).hexdigest()
    return info


def _attempt_from(
    handshake: Handshake,
    transport: str,
    judgement: Judgement,
    evidence: str,
    reply_bytes: int,
    tls: dict[str, str] | None,
) -> Attempt:
    return Attempt(
        protocol=handshake.protocol,
        transport=transport,
        strength=judgement.strength,
        evidence=evidence,
        reply_bytes=reply_bytes,
        coin=judgement.coin,
        tls=tls,
    )
