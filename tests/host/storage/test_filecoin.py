"""Filecoin: a Lotus sector layout, Lotus repositories, real processes, and the look-alikes.

The sector stores are laid out the way Lotus lays them out (``sectorstore.json``, ``sealed/``,
``cache/``, ``unsealed/``, sector files ``s-t0<miner>-<n>``). Mainnet-size replicas (32 and
64 GiB) are sparse files: nothing here can seal a sector. The 2 KiB devnet sectors are written in
full with random bytes, as a sealed devnet replica would be.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from minewatch.findings import Verdict
from minewatch.host.model import PROBES, HostSnapshot, ProbeResult, ProcessInfo
from minewatch.host.storage.filecoin import (
    FilecoinStorageProbe,
    filecoin_program,
    parse_sector_name,
)

from .conftest import Spawn

GiB = 1 << 30
MINER = 1000


def _scan(
    probe: FilecoinStorageProbe, *paths: Path, processes: list[ProcessInfo] | None = None
) -> ProbeResult:
    return probe.scan(
        HostSnapshot(hostname="test", processes=processes or [], cpu_count=1, paths=list(paths))
    )


def _probe(
    homes: list[Path] | None = None, environ: dict[str, str] | None = None
) -> FilecoinStorageProbe:
    # An empty parameter cache path keeps the host's own proof parameters out of the tests.
    env = {"FIL_PROOFS_PARAMETER_CACHE": "/nonexistent-minewatch-params"}
    return FilecoinStorageProbe(homes=homes or [], environ={**env, **(environ or {})})


def _sparse(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        handle.truncate(size)


def _store(
    root: Path,
    sectors: list[int],
    sector_size: int,
    *,
    metadata: bool = True,
    full: bool = False,
    cache: bool = True,
    unsealed: tuple[int, ...] = (),
) -> Path:
    """A Lotus storage path: sealed replicas, their caches, and optionally unsealed copies."""
    for sub in ("sealed", "cache", "unsealed"):
        (root / sub).mkdir(parents=True)
    if metadata:
        meta = {
            "ID": str(uuid.uuid4()),
            "Weight": 10,
            "CanSeal": False,
            "CanStore": True,
            "MaxStorage": 0,
            "Groups": None,
            "AllowTo": None,
        }
        (root / "sectorstore.json").write_text(json.dumps(meta))
    for number in sectors:
        name = f"s-t0{MINER}-{number}"
        if full:
            (root / "sealed" / name).write_bytes(os.urandom(sector_size))
        else:
            _sparse(root / "sealed" / name, sector_size)
        if cache:
            cache_dir = root / "cache" / name
            cache_dir.mkdir()
            for part in ("p_aux", "t_aux", "sc-02-data-tree-r-last-0.dat"):
                (cache_dir / part).write_bytes(os.urandom(64))
    for number in unsealed:
        _sparse(root / "unsealed" / f"s-t0{MINER}-{number}", sector_size)
    return root


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_sector_names() -> None:
    assert parse_sector_name("s-t01000-7") == (1000, 7)
    assert parse_sector_name("s-f0123456-99") == (123456, 99)
    for name in ("s-t1000-7", "s-t01000-", "s-t01000-7.tmp", "sealed", "t01000-7"):
        assert parse_sector_name(name) is None


def test_a_mainnet_sector_store_is_counted_from_stat_without_reading_sectors(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path / "stor-01", [1, 2, 3], 32 * GiB, unsealed=(1,))
    before = _rchar() if Path("/proc/self/io").exists() else None
    result = _scan(_probe(), tmp_path)
    if before is not None:
        assert _rchar() - before < 256 * 1024  # 128 GiB of sector files; reading would show
    (finding,) = result.findings
    assert finding.verdict is Verdict.STORAGE_MINING
    assert (finding.kind, finding.coin, finding.entity) == ("filecoin-sector", "fil", str(store))
    assert finding.count == 3
    assert finding.capacity_bytes == 3 * 32 * GiB
    text = " ".join(finding.evidence)
    assert "3 sealed sector replicas: 32 GiB ×3" in text
    assert f"{MINER} (f0{MINER} on mainnet)" in text
    assert "3 with p_aux/t_aux" in text and "1 unsealed copies" in text
    assert "sparse" in text  # these replicas are sparse files, and the probe says so
    assert PROBES["filecoin-storage"] is FilecoinStorageProbe


def test_a_fully_written_devnet_store_is_not_called_sparse(tmp_path: Path) -> None:
    _store(tmp_path / "devnet", [10, 11], 2048, full=True)
    (finding,) = _scan(_probe(), tmp_path).findings
    assert finding.capacity_bytes == 2 * 2048 and finding.count == 2
    assert "2 KiB ×2" in " ".join(finding.evidence)
    assert "sparse" not in " ".join(finding.evidence)
    assert finding.confidence >= 0.9


def test_exact_sector_sizes_suffice_without_metadata_or_cache(tmp_path: Path) -> None:
    _store(tmp_path / "big", [5, 6], 64 * GiB, metadata=False, cache=False)
    (finding,) = _scan(_probe(), tmp_path).findings
    assert finding.capacity_bytes == 2 * 64 * GiB
    assert "64 GiB ×2" in " ".join(finding.evidence)


def test_a_sealed_directory_of_ordinary_files_is_not_a_sector_store(tmp_path: Path) -> None:
    ordinary = tmp_path / "docs" / "sealed"
    ordinary.mkdir(parents=True)
    for name in ("contract-2023.pdf", "nda.pdf", "s-2024-q1.zip"):
        _sparse(ordinary / name, 32 * GiB)
    (tmp_path / "docs" / "cache").mkdir()
    # Sector-like names alone, at sizes no sector has, with nothing else Lotus writes: no store.
    names_only = tmp_path / "mimic" / "sealed"
    names_only.mkdir(parents=True)
    for number in range(3):
        _sparse(names_only / f"s-t0{MINER}-{number}", 123_456_789)
    assert _scan(_probe(), tmp_path).findings == []


def test_cache_written_by_the_sealing_pipeline_marks_a_store_in_progress(tmp_path: Path) -> None:
    store = tmp_path / "sealing"
    (store / "cache" / f"s-t0{MINER}-77").mkdir(parents=True)
    (store / "cache" / f"s-t0{MINER}-77" / "p_aux").write_bytes(os.urandom(64))
    (finding,) = _scan(_probe(), tmp_path).findings
    assert finding.count == 1 and finding.capacity_bytes == 0


def test_miner_repository_leads_to_its_storage_paths(tmp_path: Path) -> None:
    home = tmp_path / "home" / "sp"
    repo = home / ".lotusminer"
    for sub in ("keystore", "datastore"):
        (repo / sub).mkdir(parents=True)
    (repo / "config.toml").write_text('[API]\n  ListenAddress = "/ip4/127.0.0.1/tcp/2345/http"\n')
    elsewhere = tmp_path / "mnt" / "stor-07"
    _store(elsewhere, [40], 32 * GiB)
    (repo / "storage.json").write_text(json.dumps({"StoragePaths": [{"Path": str(elsewhere)}]}))
    node = home / ".lotus"
    for sub in ("keystore", "datastore"):
        (node / sub).mkdir(parents=True)
    (node / "config.toml").write_text("[API]\n")
    (node / "token").write_text("eyJhbGciOi")
    scanned = tmp_path / "empty"
    scanned.mkdir()
    found = {f.kind: f for f in _scan(_probe(homes=[home]), scanned).findings}
    assert set(found) == {"filecoin-sector", "lotus-miner-repo", "lotus-node-repo"}
    assert found["filecoin-sector"].entity == str(elsewhere)
    assert found["lotus-miner-repo"].verdict is Verdict.STORAGE_MINING
    assert "storage.json lists 1 storage paths" in " ".join(found["lotus-miner-repo"].evidence)
    assert found["lotus-node-repo"].verdict is Verdict.BLOCKCHAIN_NODE


def test_worker_repository_from_the_environment(tmp_path: Path) -> None:
    repo = tmp_path / "worker-repo"
    (repo / "keystore").mkdir(parents=True)
    (repo / "storage.json").write_text(json.dumps({"StoragePaths": []}))
    empty = tmp_path / "empty"
    empty.mkdir()
    (finding,) = _scan(_probe(environ={"LOTUS_WORKER_PATH": str(repo)}), empty).findings
    assert (finding.kind, finding.verdict) == ("lotus-worker-repo", Verdict.STORAGE_MINING)


def test_proof_parameters_support_a_finding_but_make_none(tmp_path: Path) -> None:
    params = tmp_path / "params"
    params.mkdir()
    stem = "v28-stacked-proof-of-replication-merkletree-poseidon_hasher-8-8-0-sha256_hasher-82a3"
    _sparse(params / f"{stem}.params", 56 * GiB)
    (params / f"{stem}.vk").write_bytes(os.urandom(1024))
    env = {"FIL_PROOFS_PARAMETER_CACHE": str(params)}
    empty = tmp_path / "empty"
    empty.mkdir()
    probe = FilecoinStorageProbe(homes=[], environ=env)
    assert _scan(probe, empty).findings == []
    _store(tmp_path / "stor", [1], 32 * GiB)
    (finding,) = _scan(probe, tmp_path / "stor").findings
    assert f"proof parameters present: 2 files, 56.0 GiB in {params}" in finding.evidence


def test_storage_services_are_storage_mining_and_a_lotus_daemon_a_node(
    spawn: Spawn, tmp_path: Path
) -> None:
    processes = [
        spawn("lotus-miner", "run"),
        spawn("lotus-worker", "run", "--listen", "0.0.0.0:3456"),
        spawn("boostd", "--vv", "run"),
        spawn("curio", "run", "--layers", "seal"),
        spawn("lotus", "daemon"),
        spawn("lotus", "wallet", "list"),
        spawn("lotus-miner", "info"),
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    findings = _scan(_probe(), empty, processes=processes).findings
    by_pid = {f.pid: f for f in findings}
    assert len(findings) == 6  # the `lotus wallet list` CLI call is no finding
    kinds = [(by_pid[p.pid].kind, by_pid[p.pid].verdict) for p in processes if p.pid in by_pid]
    assert kinds == [
        ("lotus-miner", Verdict.STORAGE_MINING),
        ("lotus-worker", Verdict.STORAGE_MINING),
        ("boostd", Verdict.STORAGE_MINING),
        ("curio", Verdict.STORAGE_MINING),
        ("lotus-daemon", Verdict.BLOCKCHAIN_NODE),
        ("lotus-miner", Verdict.STORAGE_MINING),
    ]
    assert by_pid[processes[0].pid].confidence > by_pid[processes[6].pid].confidence
    assert all(f.coin == "fil" for f in findings)


def test_program_recognition_reads_argv_after_a_wrapper() -> None:
    go_binary = ProcessInfo(1, "lotus-miner", "/usr/local/bin/lotus-miner", ("lotus-miner", "run"))
    assert filecoin_program(go_binary) == ("lotus-miner", Verdict.STORAGE_MINING, True)
    node = ProcessInfo(2, "lotus", "/usr/local/bin/lotus", ("lotus", "daemon", "--api", "1234"))
    assert filecoin_program(node) == ("lotus-daemon", Verdict.BLOCKCHAIN_NODE, True)
    assert filecoin_program(ProcessInfo(3, "ipfs", "/usr/bin/ipfs", ("ipfs", "daemon"))) is None


def test_backup_server_and_ipfs_node_stay_clean(spawn: Spawn, tmp_path: Path) -> None:
    backups = tmp_path / "srv" / "backups"
    for sub in ("sealed", "daily"):
        (backups / sub).mkdir(parents=True)
    for name, size in (("db.dump", 40 * GiB), ("vm.qcow2", 64 * GiB)):
        _sparse(backups / "daily" / name, size)
    _sparse(backups / "sealed" / "archive-2023.tar", 32 * GiB)  # an exact sector size
    home = tmp_path / "home" / "ipfs"
    ipfs = home / ".ipfs"
    for sub in ("blocks", "datastore", "keystore"):
        (ipfs / sub).mkdir(parents=True)
    (ipfs / "config").write_text('{"Identity": {"PeerID": "12D3KooW"}, "Datastore": {}}')
    (ipfs / "datastore" / "000001.ldb").write_bytes(os.urandom(256))
    (ipfs / "blocks" / "CIQA4XCGRCRTCCHV7XSGAZPZJOAOHLPOI6IQR3H6YQ.data").write_bytes(b"x" * 256)
    processes = [spawn("ipfs", "daemon", "--enable-gc"), spawn("rsync", "--daemon")]
    env = {"IPFS_PATH": str(ipfs)}
    assert _scan(_probe(homes=[home], environ=env), tmp_path, processes=processes).findings == []


@pytest.mark.parametrize("variable", ["LOTUS_MINER_PATH", "LOTUS_PATH"])
def test_an_ipfs_repository_named_as_a_lotus_path_is_still_not_one(
    tmp_path: Path, variable: str
) -> None:
    ipfs = tmp_path / ".ipfs"
    for sub in ("blocks", "datastore", "keystore"):
        (ipfs / sub).mkdir(parents=True)
    (ipfs / "config").write_text("{}")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _scan(_probe(environ={variable: str(ipfs)}), empty).findings == []
