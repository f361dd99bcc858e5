"""Fixtures of the agent's delivery side: a spool, TLS files and the HTTPS contract stand-in.

The delivery tests and the agent-loop tests both talk to the stand-in server of
``test_delivery`` (the host-report contract) over real TLS on loopback, and both spool to a real
directory; the fixtures live here once. A module may define its own fixture of the same name
where it needs something else; pytest then uses the module's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from minewatch.host.spool import Spool
from tests.host.test_delivery import ContractServer, ContractState
from tests.support.https import TlsFiles, make_tls_files


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA and a loopback server certificate, made once per test module."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server(tls: TlsFiles) -> Iterator[ContractServer]:
    """The contract stand-in, started on a free loopback port with fresh state; stopped after."""
    srv = ContractServer(tls, ContractState())
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    """An empty spool in the test's own directory, closed afterwards."""
    with Spool(tmp_path / "spool") as s:
        yield s
