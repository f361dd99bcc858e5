"""``minewatch audit`` and ``minewatch regions`` on a real SQLite ledger (and PostgreSQL where
configured). The groups are invoked directly, as the top-level ``minewatch`` command would."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from minewatch.commands.ledger_admin import audit, regions
from minewatch.ledger.audit import record
from minewatch.ledger.db import open_engine, session_factory, upgrade


def _run(group: click.Group, *args: str, lang: str = "en") -> Result:
    return CliRunner().invoke(group, list(args), obj={"lang": lang})


def _ledger_with_entries(url: str, count: int) -> None:
    engine = open_engine(url)
    upgrade(engine)
    with session_factory(engine)() as session:
        for n in range(count):
            record(session, "alice", "token.create", "api_token", n, {"after": {"n": n}}, "test")
        session.commit()
    engine.dispose()


def _tamper(url: str, *statements: str) -> None:
    """Drop the append-only guard, as a tamperer with DDL rights would, then edit the log."""
    engine = open_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_change ON audit_log"))
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def test_verify_intact_log_prints_the_head(database_url: str) -> None:
    _ledger_with_entries(database_url, 3)
    result = _run(audit, "verify", "--db", database_url)
    assert result.exit_code == 0, result.output
    assert "3 entries checked" in result.stdout
    head = result.stdout.split("head ")[1].strip()
    again = _run(audit, "verify", "--db", database_url, "--anchor", head)
    assert again.exit_code == 0, again.output


def test_verify_reports_one_line_per_problem(database_url: str) -> None:
    _ledger_with_entries(database_url, 5)
    _tamper(
        database_url,
        "UPDATE audit_log SET reason = 'nothing to see' WHERE id = 2",
        "DELETE FROM audit_log WHERE id = 4",
    )
    result = _run(audit, "verify", "--db", database_url)
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("entry 2: edited")
    assert any(line.startswith("entry 5: missing: entry 4 is missing") for line in lines)
    assert all(line.startswith("entry ") for line in lines)
    assert "BROKEN" in result.stderr
    assert "Traceback" not in result.output


def test_verify_with_a_stale_anchor_fails(database_url: str) -> None:
    _ledger_with_entries(database_url, 2)
    result = _run(audit, "verify", "--db", database_url, "--anchor", f"2:{'e' * 64}")
    assert result.exit_code == 1
    assert result.stdout.startswith("entry 2: anchor")


def test_verify_without_a_ledger_is_one_clear_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    result = _run(audit, "verify", "--db", url, lang="zh")
    assert result.exit_code == 1
    assert result.stderr.startswith("错误：") and "minewatch db upgrade" in result.stderr
    assert "Traceback" not in result.output
    bad = _run(audit, "verify", "--db", url, "--anchor", "nonsense")
    assert bad.exit_code == 1 and "ID:HASH" in bad.stderr


def test_list_shows_newest_entries_oldest_first(database_url: str) -> None:
    _ledger_with_entries(database_url, 4)
    result = _run(audit, "list", "--db", database_url, "--limit", "2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["3", "4"]
    fields = lines[-1].split("\t")
    assert fields[2:5] == ["alice", "token.create", "api_token:3  (test)"]
    none = _run(audit, "list", "--db", database_url, "--action", "case.close")
    assert none.exit_code == 0 and none.stdout == ""


def test_regions_import_twice_then_show(database_url: str) -> None:
    first = _run(regions, "import", "--db", database_url, "--actor", "ops")
    assert first.exit_code == 0, first.output
    added = int(first.stdout.split(": ")[1].split(" added")[0])
    assert 3000 < added < 3400
    second = _run(regions, "import", "--db", database_url)
    assert second.exit_code == 0, second.output
    assert f": 0 added, 0 updated, {added} unchanged, 0 no longer listed" in second.stdout
    shown = _run(regions, "show", "330106", "--db", database_url)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.strip() == "浙江省 › 杭州市 › 西湖区"
    children = _run(regions, "show", "330000", "--children", "--db", database_url)
    lines = children.stdout.strip().splitlines()
    assert lines[0] == "浙江省"
    assert "  330100  杭州市" in lines and len(lines) == 1 + 11  # Zhejiang's 11 prefectures
    log = _run(audit, "list", "--db", database_url)
    assert log.stdout.count("region.import") == 1 and "\tops\t" in log.stdout


@pytest.mark.parametrize("code", ["330199", "3301"])
def test_regions_show_unknown_or_malformed_code(tmp_path: Path, code: str) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    assert _run(regions, "import", "--db", url).exit_code == 0
    result = _run(regions, "show", code, "--db", url)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.output
