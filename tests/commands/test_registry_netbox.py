"""``minewatch registry netbox``: the fake NetBox over real HTTPS on loopback, both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from minewatch.commands.ingest import registry
from minewatch.ledger.db import open_engine, session_factory
from minewatch.ledger.models import AuditEntry
from minewatch.ledger.registry_models import DataCentre, IpPrefix
from tests.support.https import LoopbackServer, TlsFiles, make_tls_files
from tests.support.netbox import FakeNetbox

OBJ = {"lang": "en"}
TOKEN = "5e0c1d2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[FakeNetbox, str, TlsFiles]]:
    tls = make_tls_files(tmp_path)
    fake = FakeNetbox(token=TOKEN)
    server = LoopbackServer(tls, fake.app())
    server.start()
    yield fake, server.url, tls
    server.stop()


def count(url: str, model: type[DataCentre] | type[IpPrefix] | type[AuditEntry]) -> int:
    engine = open_engine(url)
    with session_factory(engine)() as session:
        n = session.scalar(select(func.count()).select_from(model)) or 0
    engine.dispose()
    return n


def test_netbox_import_twice(
    database_url: str,
    served: tuple[FakeNetbox, str, TlsFiles],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, url, tls = served
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    args = ["netbox", "--db", database_url, "--url", url, "--ca-file", str(tls.ca_file)]
    runner = CliRunner()
    first = runner.invoke(registry, [*args, "--token-file", str(token_file)], obj=OBJ)
    assert first.exit_code == 0, first.output
    assert f"data centres: {len(fake.objects['sites'])} added" in first.stderr
    assert f"prefixes: {len(fake.objects['prefixes'])} added" in first.stderr
    assert "skipped: 4 NetBox object(s)" in first.stderr
    assert TOKEN not in first.output
    assert count(database_url, IpPrefix) == len(fake.objects["prefixes"])
    audits = count(database_url, AuditEntry)
    assert audits == 1

    monkeypatch.setenv("MINEWATCH_NETBOX_TOKEN", TOKEN)  # the token from the environment
    again = runner.invoke(registry, args, obj=OBJ)
    assert again.exit_code == 0, again.output
    kinds = [line for line in again.stderr.splitlines() if "added" in line]
    assert len(kinds) == 6
    assert all(" 0 added, 0 updated" in line for line in kinds)
    assert count(database_url, AuditEntry) == audits  # nothing changed, nothing audited


def test_netbox_refusal_exits_1_and_writes_nothing(
    database_url: str,
    served: tuple[FakeNetbox, str, TlsFiles],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, url, tls = served
    fake.auth_failure_status = 401
    wrong = "ffffeeeeddddccccbbbbaaaa9999888877776666"
    monkeypatch.setenv("MINEWATCH_NETBOX_TOKEN", wrong)
    args = ["netbox", "--db", database_url, "--url", url, "--ca-file", str(tls.ca_file)]
    result = CliRunner().invoke(registry, args, obj=OBJ)
    assert result.exit_code == 1
    assert "HTTP 401" in result.stderr and f"{url}/api/status/" in result.stderr
    assert "Traceback" not in result.output and wrong not in result.output
    assert count(database_url, DataCentre) == 0

    empty = tmp_path / "empty-token"
    empty.write_text("\n", encoding="utf-8")
    result = CliRunner().invoke(registry, [*args, "--token-file", str(empty)], obj=OBJ)
    assert result.exit_code == 1
    assert "token file is empty" in result.stderr
