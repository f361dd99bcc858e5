"""Servers on loopback for the probe tests, run on an asyncio loop in a background thread.

Each server counts the connections it accepted, so tests can check what the prober did (cache
hits and refusals must open none) without looking at clocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Served:
    """One listening server: its port and how many connections it accepted."""

    port: int
    accepted: int = 0
    received: list[bytes] = field(default_factory=list)


class ServerThread:
    """An event loop in a daemon thread that hosts any number of small servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._servers: list[asyncio.Server] = []

    def serve(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> Served:
        served = Served(port=0)

        async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            served.accepted += 1
            try:
                await handler(reader, writer)
            except (ConnectionError, OSError, ssl.SSLError, asyncio.IncompleteReadError):
                pass
            except asyncio.CancelledError:
                writer.close()
                raise
            finally:
                writer.close()

        async def start() -> asyncio.Server:
            return await asyncio.start_server(counted, "127.0.0.1", 0, ssl=tls)

        server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self._servers.append(server)
        served.port = int(server.sockets[0].getsockname()[1])
        return served

    def close(self) -> None:
        async def stop() -> None:
            for server in self._servers:
                server.close()
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@contextlib.contextmanager
def server_thread() -> Iterator[ServerThread]:
    thread = ServerThread()
    try:
        yield thread
    finally:
        thread.close()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1 (as a small pool would use)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pool.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def tls_proxy(upstream_port: int) -> Handler:
    """Terminate TLS and relay bytes to a plain server, as stunnel or a pool's TLS port does."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError, ssl.SSLError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(ConnectionError, OSError, ssl.SSLError, RuntimeError):
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    return handle


async def noise_nx_responder(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """SYNTHETIC Stratum V2 endpoint: answers the 64-byte Noise NX hello with the 234-byte reply
    shape (random bytes standing in for ephemeral key, encrypted static key and certificate),
    then waits for the client's next message as a real responder does."""
    await reader.readexactly(64)
    writer.write(os.urandom(234))
    await writer.drain()
    await reader.read(1)


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1 << 20)
    await asyncio.sleep(3600)


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)
    writer.write(os.urandom(700))
    await writer.drain()


async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Ten megabytes of one repeated text line without a newline, then close."""
    await reader.read(1)
    chunk = b"A" * 65536
    for _ in range(160):
        writer.write(chunk)
        await writer.drain()


async def jsonrpc_service(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A line-delimited JSON-RPC service that knows none of the mining methods."""
    import json

    while line := await reader.readline():
        request = json.loads(line)
        error = {"code": -32601, "message": "Method not found"}
        reply = {"jsonrpc": "2.0", "id": request.get("id"), "error": error}
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()
