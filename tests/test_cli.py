"""The `minewatch` command line: output contract, exit status, languages, help."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from minewatch.cli import cli
from minewatch.net.capture.writer import Direction, LinkType, TcpSession, write_pcap

CONTRACT_FIELDS = {
    "verdict",
    "client_ip",
    "server_ip",
    "server_port",
    "transport",
    "protocol",
    "coin",
    "confidence",
    "first_seen",
    "last_seen",
    "evidence",
}


@pytest.fixture()
def xmr_capture(tmp_path: Path) -> Path:
    # Captured from the pool's side first: the pool is the initiator of nothing here, the miner
    # connects from an ephemeral port to port 80, and the pool speaks first after the login.
    login = (
        b'{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":'
        b'"4AdUndXHHZ6cfufTMvppY6JwXNouMBzSkbLYfpAV5Usx3skxNgYeYTRj5UzqtReoS44qo9mtmXCqY45DJ852K5Jv2684Rge",'
        b'"pass":"x","agent":"XMRig/6.22.2 (Linux x86_64) libuv/1.48.0 gcc/14.2.0","algo":["rx/0"]}}\n'
    )
    job = (
        b'{"id":1,"jsonrpc":"2.0","error":null,"result":{"id":"1","job":{"blob":"'
        + b"10" * 38
        + b'","job_id":"7","target":"ffffff00","algo":"rx/0","height":3000000},"status":"OK"}}\n'
    )
    submit = (
        b'{"id":2,"jsonrpc":"2.0","method":"submit","params":{"id":"1","job_id":"7","nonce":"0a0b0c0d","result":"'
        + b"ab" * 32
        + b'"}}\n'
    )
    ok = b'{"id":2,"jsonrpc":"2.0","error":null,"result":{"status":"OK"}}\n'
    session = TcpSession("2001:db8::5", 51000, "2001:db8:1::7", 80)
    records = session.frames(
        [
            (Direction.TO_SERVER, login),
            (Direction.TO_CLIENT, job),
            (Direction.TO_SERVER, submit),
            (Direction.TO_CLIENT, ok),
        ]
    )
    return write_pcap(tmp_path / "xmr.pcap", records, LinkType.ETHERNET)


def test_jsonl_follows_the_output_contract(xmr_capture: Path) -> None:
    result = CliRunner().invoke(cli, ["scan", str(xmr_capture), "--format", "jsonl", "-q"])
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    finding = json.loads(line)
    assert finding.keys() >= CONTRACT_FIELDS
    assert finding["verdict"] == "mining"
    assert finding["protocol"] == "stratum-xmr"
    assert finding["coin"] == "xmr"
    assert finding["client_ip"] == "2001:db8::5"
    assert finding["server_ip"] == "2001:db8:1::7"
    assert finding["server_port"] == 80
    assert finding["transport"] == "tcp"
    assert 0.0 <= finding["confidence"] <= 1.0
    for stamp in (finding["first_seen"], finding["last_seen"]):
        assert stamp.endswith("Z")
        datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert any("XMRig" in e for e in finding["evidence"])


def test_table_is_the_default_and_says_what_was_found(xmr_capture: Path) -> None:
    result = CliRunner().invoke(cli, ["scan", str(xmr_capture)])
    assert result.exit_code == 0
    assert "stratum-xmr" in result.stdout
    assert "VERDICT" in result.stdout
    assert "1 mining" in result.stderr


def test_chinese_messages(xmr_capture: Path) -> None:
    result = CliRunner().invoke(cli, ["--lang", "zh", "scan", str(xmr_capture)])
    assert result.exit_code == 0
    assert "挖矿" in result.stdout
    assert "已扫描" in result.stderr


def test_no_findings_is_still_success(tmp_path: Path) -> None:
    session = TcpSession("10.0.0.5", 40000, "198.51.100.9", 80)
    path = write_pcap(
        tmp_path / "web.pcap",
        session.frames([(Direction.TO_SERVER, b"GET / HTTP/1.1\r\n\r\n")]),
        LinkType.ETHERNET,
    )
    result = CliRunner().invoke(cli, ["scan", str(path), "-f", "jsonl"])
    assert result.exit_code == 0
    assert result.stdout == ""


def test_bad_input_gives_one_clear_line_and_exit_1(tmp_path: Path, xmr_capture: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_text("definitely not a capture")
    result = CliRunner().invoke(cli, ["scan", str(junk), str(xmr_capture), "-f", "jsonl", "-q"])
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) == 1  # the good file was still scanned
    errors = result.stderr.strip().splitlines()
    assert errors == [
        f"error: {junk}: not a capture file (starts with 64656669; expected pcap, pcapng or gzip)"
    ]
    assert "Traceback" not in result.output


def test_usage_errors_exit_2() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["scan"]).exit_code == 2
    assert runner.invoke(cli, ["scan", "--format", "xml", "x.pcap"]).exit_code == 2
    bad = runner.invoke(cli, ["scan", "--recognisers", "nope", "x.pcap"])
    assert bad.exit_code == 2
    assert "unknown recogniser" in bad.output


def test_output_file_is_written_whole(tmp_path: Path, xmr_capture: Path) -> None:
    out = tmp_path / "findings.jsonl"
    result = CliRunner().invoke(
        cli, ["scan", str(xmr_capture), "-f", "jsonl", "-o", str(out), "-q"]
    )
    assert result.exit_code == 0
    assert json.loads(out.read_text())["protocol"] == "stratum-xmr"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".findings")] == []


def test_filters(xmr_capture: Path) -> None:
    runner = CliRunner()
    none = runner.invoke(
        cli, ["scan", str(xmr_capture), "-f", "jsonl", "--verdict", "blockchain-node"]
    )
    assert none.stdout == ""
    high = runner.invoke(cli, ["scan", str(xmr_capture), "-f", "jsonl", "--min-confidence", "0.5"])
    assert len(high.stdout.splitlines()) == 1
    only_v1 = runner.invoke(
        cli, ["scan", str(xmr_capture), "-f", "jsonl", "--recognisers", "stratum-v1"]
    )
    assert only_v1.stdout == ""


def test_help_teaches() -> None:
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert "minewatch scan --sample" in top.output
    scan = runner.invoke(cli, ["scan", "--help"])
    for word in ("jsonl", "Exit status", "Stratum V2", "扫描"):
        assert word in scan.output
    listing = runner.invoke(cli, ["recognisers"])
    assert "stratum-xmr" in listing.output and "chia" in listing.output
