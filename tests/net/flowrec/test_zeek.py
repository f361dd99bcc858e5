"""Zeek logs. Zeek is not packaged for Debian 12, so these logs are written by hand following
Zeek's documented formats: TSV with #separator/#fields/#types headers, and JSON lines (one object
per line, dotted field names, ``ts`` as epoch seconds or ISO 8601)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from minewatch.errors import InputError
from minewatch.net.flowrec.table import FLOW_SCHEMA
from minewatch.net.flowrec.zeek import read_zeek_log, zeek_flows

CONN_FIELDS = [
    "ts",
    "uid",
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "service",
    "duration",
    "orig_bytes",
    "resp_bytes",
    "conn_state",
    "local_orig",
    "local_resp",
    "missed_bytes",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "tunnel_parents",
]
CONN_TYPES = [
    "time",
    "string",
    "addr",
    "port",
    "addr",
    "port",
    "enum",
    "string",
    "interval",
    "count",
    "count",
    "string",
    "bool",
    "bool",
    "count",
    "string",
    "count",
    "count",
    "count",
    "count",
    "set[string]",
]
CONN_ROWS = [
    "1704067200.100000 Ca1 10.0.0.5 50000 198.51.100.7 443 tcp ssl 600.5 1000 2000 SF - - 0 "
    "ShADadFf 40 3080 38 3520 -",
    "1704067300.000000 Cb2 10.0.0.5 53000 192.0.2.53 53 udp dns 0.01 30 60 SF - - 0 Dd 1 58 1 88 -",
    "1704067400.250000 Cc3 2001:db8::5 50001 2001:db8::7 3333 tcp - - - - S0 - - 0 S 1 80 0 0 -",
]


def tsv(path: Path, kind: str, fields: list[str], types: list[str], rows: list[str]) -> Path:
    lines = [
        "#separator \\x09",
        "#set_separator\t,",
        "#empty_field\t(empty)",
        "#unset_field\t-",
        f"#path\t{kind}",
        "#open\t2024-01-01-00-00-00",
        "#fields\t" + "\t".join(fields),
        "#types\t" + "\t".join(types),
        *("\t".join(r.split(" ")) for r in rows),
        "#close\t2024-01-01-01-00-00",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def logs(tmp_path: Path) -> list[Path]:
    conn = tsv(tmp_path / "conn.log", "conn", CONN_FIELDS, CONN_TYPES, CONN_ROWS)
    ssl = tsv(
        tmp_path / "ssl.log",
        "ssl",
        [
            "ts",
            "uid",
            "id.orig_h",
            "id.orig_p",
            "id.resp_h",
            "id.resp_p",
            "version",
            "cipher",
            "server_name",
            "established",
            "ja3",
        ],
        [
            "time",
            "string",
            "addr",
            "port",
            "addr",
            "port",
            "string",
            "string",
            "string",
            "bool",
            "string",
        ],
        [
            "1704067200.2 Ca1 10.0.0.5 50000 198.51.100.7 443 TLSv13 TLS_AES_128_GCM_SHA256 "
            "pool.example.net T 0123456789abcdef0123456789abcdef"
        ],
    )
    dns = tmp_path / "dns.log"
    answers = [
        {
            "ts": 1704067199.9,
            "uid": "Cd4",
            "id.orig_h": "10.0.0.5",
            "id.orig_p": 40000,
            "id.resp_h": "192.0.2.53",
            "id.resp_p": 53,
            "proto": "udp",
            "query": "pool.example.net",
            "qtype_name": "A",
            "answers": ["198.51.100.7"],
            "TTLs": [60.0],
        },
        {
            "ts": 1704067500.0,
            "uid": "Cd5",
            "id.orig_h": "10.0.0.5",
            "id.orig_p": 40001,
            "id.resp_h": "192.0.2.53",
            "id.resp_p": 53,
            "proto": "udp",
            "query": "later.example",
            "qtype_name": "A",
            "answers": ["198.51.100.7"],
        },
    ]
    dns.write_text("\n".join(json.dumps(a) for a in answers) + "\n")
    return [conn, ssl, dns]


def test_conn_ssl_dns_joined(logs: list[Path]) -> None:
    table, problems = zeek_flows([read_zeek_log(p) for p in logs])
    assert problems == []
    assert table.schema == FLOW_SCHEMA
    rows = {r["dst_port"]: r for r in table.to_pylist()}
    tls = rows[443]
    assert (tls["packets"], tls["bytes"], tls["rev_packets"], tls["rev_bytes"]) == (
        40,
        3080,
        38,
        3520,
    )
    assert tls["end_ns"] - tls["start_ns"] == 600_500_000_000
    assert tls["sni"] == "pool.example.net" and tls["ja3"] == "0123456789abcdef0123456789abcdef"
    assert tls["tls"] is True  # ssl.log matched it; conversations without an ssl.log row: null
    assert {r["tls"] for port, r in rows.items() if port != 443} == {None}
    # the look-up just before the connection names it; the one after does not
    assert tls["dns_name"] == "pool.example.net"
    assert tls["initiator"] == 1 and tls["tcp_flags"] & 0x13 == 0x13
    assert rows[53]["tcp_flags"] == 0 and rows[53]["protocol"] == 17
    assert rows[3333]["src_ip"] == "2001:db8::5" and rows[3333]["rev_bytes"] == 0


def test_json_conn_with_iso_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "conn.json"
    record = {
        "ts": "2024-01-01T00:00:00.500000Z",
        "uid": "Cx",
        "id.orig_h": "10.1.1.1",
        "id.orig_p": 1234,
        "id.resp_h": "10.2.2.2",
        "id.resp_p": 3333,
        "proto": "tcp",
        "duration": 2.0,
        "conn_state": "SF",
        "history": "ShAdDaFf",
        "orig_pkts": 5,
        "orig_ip_bytes": 400,
        "resp_pkts": 4,
        "resp_ip_bytes": 300,
    }
    path.write_text(json.dumps(record) + "\n{not json\n")
    log = read_zeek_log(path)
    assert log.kind == "conn" and log.bad_lines == 1
    table, problems = zeek_flows([log])
    assert len(problems) == 1 and "1 lines" in problems[0]
    (row,) = table.to_pylist()
    assert row["start_ns"] == 1704067200_500_000_000
    assert row["end_ns"] == 1704067202_500_000_000
    assert (row["bytes"], row["rev_bytes"]) == (400, 300)


def test_truncated_tsv_counts_broken_lines(tmp_path: Path) -> None:
    rows = [*CONN_ROWS, "1704067500.0 Cd9 10.0.0.9 1"]  # cut off mid-line
    log = read_zeek_log(tsv(tmp_path / "conn.log", "conn", CONN_FIELDS, CONN_TYPES, rows))
    assert log.bad_lines == 1
    table, problems = zeek_flows([log])
    assert table.num_rows == 3 and problems


def test_not_a_zeek_log(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text("hello\n")
    with pytest.raises(InputError, match="not a Zeek"):
        read_zeek_log(path)
