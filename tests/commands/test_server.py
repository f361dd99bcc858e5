"""``minewatch db``, ``token`` and ``api`` commands."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from minewatch.cli import cli
from minewatch.ledger.db import open_engine, session_factory
from minewatch.ledger.tokens import authenticate


def test_token_create_prints_a_working_token_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    result = CliRunner().invoke(
        cli,
        [
            "token",
            "create",
            "--db",
            url,
            "--user",
            "agent-1",
            "--role",
            "analyst",
            "--region",
            "330100",
        ],
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("mw_")
    assert "shown only once" in result.stderr
    with session_factory(open_engine(url))() as session:
        principal = authenticate(session, token)
    assert principal is not None and principal.region_code == "330100"
    assert principal.write_enabled


def test_read_only_token(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    result = CliRunner().invoke(cli, ["token", "create", "--db", url, "--user", "v", "--read-only"])
    with session_factory(open_engine(url))() as session:
        principal = authenticate(session, result.stdout.strip())
    assert principal is not None and not principal.write_enabled


def test_bad_region_is_one_clear_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    result = CliRunner().invoke(
        cli, ["--lang", "zh", "token", "create", "--db", url, "--user", "x", "--region", "3301"]
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("错误：")
    assert "Traceback" not in result.output


def test_db_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "l.db"
    result = CliRunner().invoke(cli, ["db", "upgrade", "--db", f"sqlite:///{path}"])
    assert result.exit_code == 0 and path.exists()


def test_api_serve_refuses_plain_http_off_loopback() -> None:
    result = CliRunner().invoke(cli, ["api", "serve", "--host", "0.0.0.0", "--db", "sqlite://"])
    assert result.exit_code == 2
    assert "refusing plain HTTP" in result.output
