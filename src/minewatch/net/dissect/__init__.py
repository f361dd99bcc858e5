"""Dissectors for the cleartext protocols that name a mining pool: DNS and the TLS handshake.

Each dissector is a pure function over the bytes of one payload (or the start of one direction of
a TCP stream) that never raises: bytes that are not the protocol give ``None`` or an empty list.
"""

from minewatch.net.dissect.dns import (
    DnsAnswer,
    DnsMessage,
    RecordType,
    parse_dns,
    parse_dns_tcp,
)
from minewatch.net.dissect.tls import (
    CertificateNames,
    ClientHello,
    is_grease,
    parse_client_hello,
    parse_server_certificate_names,
    parse_server_certificates,
)

__all__ = [
    "CertificateNames",
    "ClientHello",
    "DnsAnswer",
    "DnsMessage",
    "RecordType",
    "is_grease",
    "parse_client_hello",
    "parse_dns",
    "parse_dns_tcp",
    "parse_server_certificate_names",
    "parse_server_certificates",
]
