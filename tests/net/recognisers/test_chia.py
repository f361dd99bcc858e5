"""Chia end to end, from a real TLS handshake: the server's certificate names the "Chia CA".

The handshake is produced by Python's ``ssl`` module over memory BIOs (no sockets), with
certificates made by the ``cryptography`` package, and the two byte streams are written into a
TCP capture.
"""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest

pytest.importorskip("cryptography")

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from minewatch.findings import Finding, Verdict
from minewatch.net.capture.writer import Direction, TcpSession, ethernet

from .conftest import ScanRecords

FARMER, PEER = "10.100.0.2", "198.51.100.222"
TO_SERVER, TO_CLIENT = Direction.TO_SERVER, Direction.TO_CLIENT
NOW = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )


def certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650 * 3))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def issue_chain(folder: Path, ca_cn: str, node_cn: str) -> tuple[bytes, Path, Path]:
    """(CA certificate PEM, node certificate file, node key file) of a fresh small PKI."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name(ca_cn, "Organic Farming Division" if "Chia" in ca_cn else "Example Org")
    ca = certificate(ca_name, ca_key, ca_name, ca_key, ca=True)
    node_key = ec.generate_private_key(ec.SECP256R1())
    node = certificate(name(node_cn, "Chia"), node_key, ca_name, ca_key, ca=False)
    cert_file, key_file = folder / f"{node_cn}.crt", folder / f"{node_cn}.key"
    cert_file.write_bytes(pem(node))
    key_file.write_bytes(key_pem(node_key))
    return pem(ca), cert_file, key_file


def tls_conversation(
    folder: Path, ca_cn: str, *, version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
) -> list[tuple[Direction, bytes]]:
    """A mutually authenticated TLS handshake plus one request and answer, as TCP messages."""
    ca, cert_file, key_file = issue_chain(folder, ca_cn, "Chia")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for ctx in (server_ctx, client_ctx):
        ctx.minimum_version = ctx.maximum_version = version
        ctx.load_cert_chain(cert_file, key_file)
        ctx.load_verify_locations(cadata=ca.decode())
        ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx.check_hostname = False
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_side=False)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)

    messages: list[tuple[Direction, bytes]] = []

    def pump() -> None:
        sent = c_out.read()
        if sent:
            messages.append((TO_SERVER, sent))
            s_in.write(sent)
        sent = s_out.read()
        if sent:
            messages.append((TO_CLIENT, sent))
            c_in.write(sent)

    done = {"client": False, "server": False}
    for _ in range(10):
        for side, obj in (("client", client), ("server", server)):
            if not done[side]:
                try:
                    obj.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
            pump()
        if all(done.values()):
            break
    assert all(done.values()), "TLS handshake did not complete"
    assert client.version() == ("TLSv1.2" if version is ssl.TLSVersion.TLSv1_2 else "TLSv1.3")
    client.write(b"GET /ws HTTP/1.1\r\nHost: peer\r\nUpgrade: websocket\r\n\r\n")
    pump()
    assert server.read(4096).startswith(b"GET /ws")
    server.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
    pump()
    return messages


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


def assert_chia(found: Finding, port: int, client: str = FARMER, server: str = PEER) -> None:
    assert found.verdict is Verdict.BLOCKCHAIN_NODE
    assert found.protocol == "chia"
    assert found.coin == "xch"
    assert found.transport == "tcp"
    assert (found.client_ip, found.server_ip, found.server_port) == (client, server, port)
    assert 0.9 <= found.confidence <= 1.0
    text = " ".join(found.evidence)
    assert "issued by 'Chia CA'" in text
    assert "subject Chia" in text


def test_chia_peer_on_https_port(scan: ScanRecords, tmp_path: Path) -> None:
    messages = tls_conversation(tmp_path, "Chia CA")
    assert_chia(only(scan(TcpSession(FARMER, 59000, PEER, 443).frames(messages))), 443)


def test_certificate_flight_split_across_segments(scan: ScanRecords, tmp_path: Path) -> None:
    messages = tls_conversation(tmp_path, "Chia CA")
    frames = TcpSession(FARMER, 59001, PEER, 8080).frames(messages, mss=200)
    assert_chia(only(scan(frames)), 8080)


def test_ipv6_qinq(scan: ScanRecords, tmp_path: Path) -> None:
    a, b = "2001:db8:100::2", "2001:db8:51::222"
    tcp = TcpSession(a, 59002, b, 8444)
    frames = [
        (ts, ethernet(p, vlans=(40, 41), outer_tpid=0x88A8))
        for ts, p in tcp.packets(tls_conversation(tmp_path, "Chia CA"))
    ]
    assert_chia(only(scan(frames)), 8444, a, b)


# --- hard negatives -----------------------------------------------------------------------------


def test_ordinary_ca(scan: ScanRecords, tmp_path: Path) -> None:
    messages = tls_conversation(tmp_path, "Example Internal Root CA")
    assert scan(TcpSession("10.100.9.1", 60000, "203.0.113.100", 8444).frames(messages)) == []


def test_tls13_hides_the_certificate(scan: ScanRecords, tmp_path: Path) -> None:
    # The recogniser must not guess from the port when the certificate is encrypted.
    messages = tls_conversation(tmp_path, "Chia CA", version=ssl.TLSVersion.TLSv1_3)
    assert scan(TcpSession("10.100.9.2", 60001, "203.0.113.101", 8444).frames(messages)) == []
