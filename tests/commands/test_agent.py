"""``minewatch agent``: a real process found by ``agent scan``, and ``agent run`` delivering to
the real minewatch API over HTTPS on loopback, also after the server was down."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from minewatch.api.app import create_app
from minewatch.cli import cli
from minewatch.ledger.db import session_factory
from minewatch.ledger.tokens import issue_token
from tests.support.https import LoopbackServer, TlsFiles, free_port, make_tls_files

WALLET = "4" + "A" * 94


@pytest.fixture
def fake_xmrig(tmp_path: Path) -> Iterator[int]:
    """A real process whose executable is called xmrig and whose command line is a miner's
    (a copy of /bin/sh waiting on stdin: argv is the miner's, and it costs nothing)."""
    exe = tmp_path / "xmrig"
    shutil.copy("/bin/sh", exe)
    proc = subprocess.Popen(
        [
            str(exe),
            "-c",
            "read line",
            "xmrig",
            "-o",
            "stratum+tcp://pool.supportxmr.com:3333",
            "-u",
            WALLET,
            "--donate-level",
            "1",
            "-a",
            "rx/0",
        ],
        stdin=subprocess.PIPE,
    )
    time.sleep(0.2)
    yield proc.pid
    proc.kill()
    proc.wait()


def test_agent_scan_finds_a_miner_process(fake_xmrig: int, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "agent",
            "scan",
            "--path",
            str(tmp_path),
            "--probe",
            "miner-process",
            "--sample-seconds",
            "0",
            "-f",
            "jsonl",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    mine = [r for r in rows if r["pid"] == fake_xmrig]
    assert len(mine) == 1
    assert (mine[0]["verdict"], mine[0]["kind"], mine[0]["coin"]) == ("mining", "xmrig", "xmr")
    assert any("supportxmr" in e for e in mine[0]["evidence"])
    assert "0 storage-mining" in result.stderr


def test_agent_scan_rejects_unknown_probe_and_bad_pool_list(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["agent", "scan", "--probe", "nope"])
    assert result.exit_code == 2 and "unknown probe" in result.output
    bad = tmp_path / "pools.txt"
    bad.write_text("192.0.2.1\nnot-an-ip\n")
    result = CliRunner().invoke(
        cli,
        [
            "agent",
            "scan",
            "--probe",
            "pool-socket",
            "--pool-ips",
            str(bad),
            "--sample-seconds",
            "0",
        ],
    )
    assert result.exit_code == 1
    assert "pools.txt:2" in result.stderr and "Traceback" not in result.output


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def test_agent_run_buffers_while_server_down_then_delivers_each_once(
    fake_xmrig: int, tls: TlsFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(f"sqlite:///{tmp_path / 'ledger.db'}")
    with session_factory(app.state.engine)() as session:
        token = issue_token(session, "dc-agent", actor="test", role="analyst", region_code="330106")
        reader = issue_token(session, "zj", actor="test", role="viewer", region_code="330000")
        session.commit()
    monkeypatch.setenv("MINEWATCH_TOKEN", token)
    server = LoopbackServer(tls, app, port=free_port())
    spool = tmp_path / "spool"
    args = [
        "agent",
        "run",
        "--server",
        server.url,
        "--ca-file",
        str(tls.ca_file),
        "--spool",
        str(spool),
        "--iterations",
        "1",
        "--interval",
        "10",
        "--probe",
        "miner-process",
        "--sample-seconds",
        "0",
        "--path",
        str(tmp_path),
    ]

    down = CliRunner().invoke(cli, args)  # nothing listens on the port yet
    assert down.exit_code == 0, down.output
    assert len(list(spool.glob("*.json"))) == 1
    assert token not in down.output

    server.start()
    try:
        up = CliRunner().invoke(cli, args)
        assert up.exit_code == 0, up.output
        assert list(spool.glob("*.json")) == []
        import httpx

        listed = httpx.get(
            f"{server.url}/api/v1/host-reports/",
            headers={"Authorization": f"Token {reader}"},
            verify=ssl.create_default_context(cafile=str(tls.ca_file)),
        ).json()
    finally:
        server.stop()
    assert listed["count"] == 2
    assert len({r["report_id"] for r in listed["results"]}) == 2
    for stored in listed["results"]:
        assert stored["region_code"] == "330106"
        kinds = {(f["pid"], f["kind"]) for f in stored["findings"]}
        assert (fake_xmrig, "xmrig") in kinds
    assert not any(token in p.read_text() for p in spool.rglob("*") if p.is_file())
