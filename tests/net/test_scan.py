"""scan_paths: files and directories, damaged inputs, and merging conversations into findings."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from minewatch.findings import Verdict
from minewatch.net.capture.writer import Direction, LinkType, TcpSession, write_pcap, write_pcapng
from minewatch.net.scan import scan_paths

SUBSCRIBE = b'{"id":1,"method":"mining.subscribe","params":["cgminer/4.10.0"]}\n'
SUBSCRIBED = b'{"id":1,"result":[[["mining.notify","ae6812eb"]],"08000002",4],"error":null}\n'
AUTHORIZE = b'{"id":2,"method":"mining.authorize","params":["worker1","x"]}\n'
NOTIFY = (
    b'{"id":null,"method":"mining.notify","params":["bf",'
    b'"4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000",'
    b'"01000000010000","072f736c7573682f000000000100f2052a",[],"00000002","1c2ac4af","504e86b9",false]}\n'
)
SUBMIT = b'{"id":4,"method":"mining.submit","params":["worker1","bf","00000001","504e86ed","b2957c02"]}\n'


def stratum_session(
    client: str, port: int, start_ns: int = 1_700_000_000_000_000_000
) -> TcpSession:
    return TcpSession(client, port, "198.51.100.7", 3333, start_ns=start_ns)


MESSAGES = [
    (Direction.TO_SERVER, SUBSCRIBE),
    (Direction.TO_CLIENT, SUBSCRIBED),
    (Direction.TO_SERVER, AUTHORIZE),
    (Direction.TO_CLIENT, NOTIFY),
    (Direction.TO_SERVER, SUBMIT),
]


def test_reconnections_merge_into_one_finding(tmp_path: Path) -> None:
    records = []
    for i in range(5):
        session = stratum_session(
            "10.0.0.5", 40000 + i, start_ns=1_700_000_000_000_000_000 + i * 10**10
        )
        records += session.frames(MESSAGES)
    path = write_pcap(tmp_path / "reconnect.pcap", records, LinkType.ETHERNET)
    report = scan_paths([path])
    assert report.problems == []
    [finding] = report.findings
    assert finding.connections == 5
    assert finding.key == ("10.0.0.5", "198.51.100.7", 3333, "tcp")
    assert finding.verdict == Verdict.MINING
    assert finding.protocol == "stratum-v1"
    assert finding.coin == "btc"
    assert finding.last_seen_ns - finding.first_seen_ns >= 4 * 10**10
    assert finding.bytes_to_server == 5 * (len(SUBSCRIBE) + len(AUTHORIZE) + len(SUBMIT))
    assert "5 connections" in finding.evidence


def test_directories_gzip_and_pcapng_in_one_run(tmp_path: Path) -> None:
    (tmp_path / "deep" / "er").mkdir(parents=True)
    records = stratum_session("10.0.0.5", 40000).frames(MESSAGES)
    plain = write_pcap(tmp_path / "deep" / "a.pcap", records, LinkType.ETHERNET)
    (tmp_path / "deep" / "er" / "b.pcap.gz").write_bytes(gzip.compress(plain.read_bytes()))
    other = stratum_session("10.0.0.6", 40000).frames(MESSAGES, LinkType.LINUX_SLL)
    write_pcapng(tmp_path / "deep" / "er" / "c.pcapng", other, LinkType.LINUX_SLL)
    (tmp_path / "deep" / "notes.txt").write_text("not a capture, and not named like one")
    report = scan_paths([tmp_path])
    assert report.files == 3
    assert report.problems == []
    assert sorted(f.client_ip for f in report.findings) == ["10.0.0.5", "10.0.0.6"]
    merged = next(f for f in report.findings if f.client_ip == "10.0.0.5")
    assert len(merged.sources) == 2


def test_bad_files_are_reported_and_others_still_scanned(tmp_path: Path) -> None:
    good = write_pcap(
        tmp_path / "good.pcap",
        stratum_session("10.0.0.5", 40000).frames(MESSAGES),
        LinkType.ETHERNET,
    )
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    text = tmp_path / "text.pcap"
    text.write_text("hello, I am not a capture\n")
    truncated = tmp_path / "truncated.pcap"
    truncated.write_bytes(good.read_bytes()[:-7])
    report = scan_paths([empty, text, truncated, good, tmp_path / "missing.pcap"])
    by_path = {Path(p.path).name: p.message for p in report.problems}
    assert set(by_path) == {"empty.pcap", "text.pcap", "truncated.pcap", "missing.pcap"}
    assert "empty" in by_path["empty.pcap"]
    assert "not a capture" in by_path["text.pcap"]
    assert "truncated" in by_path["truncated.pcap"]
    assert "no such file" in by_path["missing.pcap"]
    # The good file, and the readable part of the truncated one, are still scanned.
    [finding] = report.findings
    assert finding.connections == 2
    assert {Path(s).name for s in finding.sources} == {"good.pcap", "truncated.pcap"}


def test_capture_of_only_benign_traffic_has_no_findings(tmp_path: Path) -> None:
    session = TcpSession("10.0.0.5", 40000, "198.51.100.9", 80)
    records = session.frames(
        [
            (Direction.TO_SERVER, b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"),
            (Direction.TO_CLIENT, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        ]
    )
    path = write_pcap(tmp_path / "web.pcap", records, LinkType.ETHERNET)
    report = scan_paths([path])
    assert report.findings == []
    assert report.files == 1
    assert report.packets == len(records)


def test_protocol_the_server_answered_wins(tmp_path: Path) -> None:
    # A miner tries getwork over HTTP (the server refuses) and then Stratum (answered).
    refused = TcpSession("10.0.0.5", 40000, "198.51.100.7", 3333).frames(
        [
            (
                Direction.TO_SERVER,
                b"POST / HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 44\r\n\r\n"
                b'{"method": "getwork", "params": [], "id": 0}',
            ),
            (Direction.TO_CLIENT, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
        ]
    )
    answered = stratum_session("10.0.0.5", 40001, start_ns=1_700_000_100_000_000_000).frames(
        MESSAGES
    )
    path = write_pcap(tmp_path / "fallback.pcap", refused + answered, LinkType.ETHERNET)
    [finding] = scan_paths([path]).findings
    assert finding.protocol == "stratum-v1"
    assert finding.other_protocols == ["getwork"]
    assert finding.connections == 2


def test_progress_adds_up_to_the_size_of_every_file(tmp_path: Path) -> None:
    records = stratum_session("10.0.0.5", 40000).frames(MESSAGES)
    good = write_pcap(tmp_path / "a.pcap", records, LinkType.ETHERNET)
    bad = tmp_path / "b.pcap"
    bad.write_text("not a capture")
    seen: dict[str, int] = {}
    scan_paths([good, bad], progress=lambda p, n: seen.__setitem__(p, seen.get(p, 0) + n))
    assert seen == {str(good): good.stat().st_size, str(bad): bad.stat().st_size}


def test_exact_grouping_fallback_gives_the_same_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should two 5-tuples ever share a hash key, grouping falls back to exact sorting."""
    from minewatch.net import flows

    records = []
    for i in range(3):
        records += stratum_session(f"10.0.0.{5 + i}", 40000 + i).frames(MESSAGES)
    path = write_pcap(tmp_path / "three.pcap", records, LinkType.ETHERNET)
    hashed = [f.to_dict() for f in scan_paths([path]).findings]
    monkeypatch.setattr(flows, "_collides", lambda *args: True)
    exact = [f.to_dict() for f in scan_paths([path]).findings]
    assert len(hashed) == 3
    assert exact == hashed
