"""Chia: real plots made with chiapos, a real Chia CA, real processes, and the look-alikes.

The plots are real k = 18 plots written by chiapos (the plotter library of the Chia client),
made once per session. The bladebit v2 header is built by hand from its published layout because
no bladebit plotter is installed here; that test says so.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import random
import shutil
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from minewatch.findings import Verdict
from minewatch.host.model import PROBES, HostFinding, HostSnapshot, ProbeResult, ProcessInfo
from minewatch.host.storage import chia
from minewatch.host.storage.chia import (
    HEADER_READ_BYTES,
    MIN_PLOT_FILE_BYTES,
    ChiaStorageProbe,
    expected_plot_size,
    is_chia_ca_certificate,
    parse_plot_directories,
    parse_plot_header,
)
from minewatch.host.storage.walk import read_head

from .conftest import Spawn, run_unprivileged

chiapos = pytest.importorskip("chiapos", reason="chiapos (the Chia plotter library) is needed")

K = 18
GiB = 1 << 30


@dataclass(frozen=True)
class RealPlot:
    path: Path
    plot_id: bytes
    memo: bytes


@pytest.fixture(scope="session")
def real_plots(tmp_path_factory: pytest.TempPathFactory) -> list[RealPlot]:
    """Two real k18 plots, one under the plotter's usual name and one renamed to ``.bin``."""
    final = tmp_path_factory.mktemp("plots")
    scratch = tmp_path_factory.mktemp("plot-scratch")
    rng = random.Random(20240518)
    plots = []
    started = time.monotonic()
    for number, name in enumerate(("plot-k18-2024-05-18-12-00-{id}.plot", "archive-0001.bin")):
        plot_id = hashlib.sha256(f"minewatch test plot {number}".encode()).digest()
        memo = rng.randbytes(48 + 48 + 32)  # pool key, farmer key, local master secret key
        filename = name.format(id=plot_id.hex())
        chiapos.DiskPlotter().create_plot_disk(
            str(scratch),
            str(scratch),
            str(final),
            filename,
            K,
            memo,
            plot_id,
            100,
            16,
            8192,
            2,
            False,
        )
        plots.append(RealPlot(final / filename, plot_id, memo))
    print(f"\nplotted {len(plots)} real k{K} plots in {time.monotonic() - started:.1f} s")
    return plots


def _scan(
    probe: ChiaStorageProbe, *paths: Path, processes: list[ProcessInfo] | None = None
) -> ProbeResult:
    return probe.scan(
        HostSnapshot(hostname="test", processes=processes or [], cpu_count=1, paths=list(paths))
    )


def _probe(
    homes: list[Path] | None = None, environ: dict[str, str] | None = None
) -> ChiaStorageProbe:
    return ChiaStorageProbe(homes=homes or [], environ=environ or {})


def _plot_copy(src: Path, dst: Path, *, k: int | None = None, keep: int | None = None) -> Path:
    """A copy of a real plot, optionally cut to ``keep`` bytes or with its k byte changed."""
    data = bytearray(src.read_bytes()[:keep] if keep else src.read_bytes())
    if k is not None:
        data[len(chia.V1_MAGIC) + 32] = k
    dst.write_bytes(bytes(data))
    return dst


def _sparse(path: Path, size: int, head: bytes = b"") -> Path:
    with path.open("wb") as handle:
        handle.write(head)
        handle.truncate(size)
    return path


# --- the header -------------------------------------------------------------------------------


def test_header_of_a_real_plot_matches_the_plotter_and_chiapos(real_plots: list[RealPlot]) -> None:
    for plot in real_plots:
        header = parse_plot_header(read_head(plot.path, HEADER_READ_BYTES))
        assert header is not None
        assert header.plot_id == plot.plot_id
        assert header.k == K
        assert header.format == "v1.0"
        assert header.memo_length == len(plot.memo)
        prover = chiapos.DiskProver(str(plot.path))  # chiapos's own reader agrees
        assert prover.get_id() == header.plot_id and prover.get_size() == header.k
        size = plot.path.stat().st_size
        assert header.table_pointers[0] == header.header_length
        assert all(header.header_length <= p <= size for p in header.table_pointers)


def test_a_real_plot_is_about_the_size_chia_expects_for_its_k(real_plots: list[RealPlot]) -> None:
    assert expected_plot_size(32) / GiB == pytest.approx(101.4, abs=0.05)
    for plot in real_plots:
        ratio = plot.path.stat().st_size / expected_plot_size(K)
        assert 0.8 < ratio < 1.2
    assert min(p.path.stat().st_size for p in real_plots) > MIN_PLOT_FILE_BYTES


@pytest.mark.parametrize("magic", [chia.V1_MAGIC, chia.V2_MAGIC + struct.pack("<I", 2)])
def test_random_bytes_after_the_magic_are_not_a_header(magic: bytes) -> None:
    rng = random.Random(7)
    accepted = [
        tail
        for tail in (rng.randbytes(HEADER_READ_BYTES - len(magic)) for _ in range(5000))
        if parse_plot_header(magic + tail) is not None
    ]
    assert accepted == []


def _v2_header(k: int, level: int, flags: int | None = None, version: int = 2) -> bytes:
    """A bladebit v2 header from its published layout (synthetic: no bladebit installed)."""
    memo = bytes(range(112))  # pool contract puzzle hash, farmer key, master secret key
    flags = (1 if level else 0) if flags is None else flags
    head = b"PLOT" + struct.pack("<I", version) + bytes(range(32)) + bytes([k])
    head += struct.pack(">H", len(memo)) + memo + struct.pack("<I", flags)
    head += bytes([level]) if flags & 1 else b""
    start = len(head) + 160
    head += struct.pack(">10Q", *(start + i * 1000 for i in range(10)))
    return head + struct.pack("<10Q", *([1000] * 10))


def test_bladebit_v2_compressed_header_is_read() -> None:
    header = parse_plot_header(_v2_header(32, level=7))
    assert header is not None
    assert (header.k, header.format, header.compression_level) == (32, "v2", 7)
    assert header.plot_id == bytes(range(32))
    assert parse_plot_header(_v2_header(32, level=0)) is not None
    assert parse_plot_header(_v2_header(32, level=7, flags=0b11)) is None  # unknown flag bit
    assert parse_plot_header(_v2_header(32, level=7, version=3)) is None
    assert parse_plot_header(_v2_header(12, level=7)) is None  # k below any plot


# --- the probe on plots ---------------------------------------------------------------------


def test_real_plots_are_found_by_content_whatever_their_name(real_plots: list[RealPlot]) -> None:
    directory = real_plots[0].path.parent
    result = _scan(_probe(), directory)
    (finding,) = result.findings
    assert finding.verdict is Verdict.STORAGE_MINING
    assert (finding.kind, finding.coin, finding.entity) == ("chia-plot", "xch", str(directory))
    assert finding.count == len(real_plots)
    assert finding.capacity_bytes == sum(p.path.stat().st_size for p in real_plots)
    text = " ".join(finding.evidence)
    assert f"k{K} ×2" in text
    for plot in real_plots:
        assert plot.plot_id.hex()[:16] in text
    assert "k < 32" in text and finding.confidence < 0.9  # test plots cannot farm mainnet
    assert result.blind_spots == []
    assert PROBES["chia-storage"] is ChiaStorageProbe


def test_a_file_named_like_a_plot_without_the_header_is_not_counted(tmp_path: Path) -> None:
    fake_id = "a" * 64
    _sparse(tmp_path / f"plot-k32-2024-01-01-00-00-{fake_id}.plot", 108_000_000_000)
    _sparse(tmp_path / "magic-only.plot", 108_000_000_000, chia.V1_MAGIC + os.urandom(400))
    assert _scan(_probe(), tmp_path).findings == []


def test_truncated_and_undersized_plots_are_counted_but_named(
    real_plots: list[RealPlot], tmp_path: Path
) -> None:
    source = real_plots[0].path
    cut = _plot_copy(source, tmp_path / "cut.plot", keep=int(source.stat().st_size * 0.7))
    relabelled = _plot_copy(source, tmp_path / "claims-k32.plot", k=32)
    (finding,) = _scan(_probe(), tmp_path).findings
    assert finding.count == 2
    text = " ".join(finding.evidence)
    assert f"{cut.name}: truncated" in text
    assert f"{relabelled.name}: much smaller than a k32 plot" in text
    assert finding.confidence <= 0.6  # nothing healthy left


def test_a_sparse_file_with_a_real_header_is_named_sparse(
    real_plots: list[RealPlot], tmp_path: Path
) -> None:
    source = real_plots[0].path
    hollow = _sparse(tmp_path / "hollow.plot", source.stat().st_size, source.read_bytes()[:4096])
    (finding,) = _scan(_probe(), tmp_path).findings
    assert f"{hollow.name}: sparse" in " ".join(finding.evidence)


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_a_scan_reads_headers_not_contents(
    real_plots: list[RealPlot], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10 GiB files (sparse) and real plots: the scan must read a few hundred bytes per file."""
    if not Path("/proc/self/io").exists():
        pytest.skip("/proc/self/io (per-process read counter) not available")
    for plot in real_plots:
        shutil.copy(plot.path, tmp_path / plot.path.name)
    header = bytearray(real_plots[0].path.read_bytes()[:4096])
    header[len(chia.V1_MAGIC) + 32] = 32  # a k32 header on a 10 GiB file
    _sparse(tmp_path / "big-plot.plot", 10 * GiB, bytes(header))
    _sparse(tmp_path / "big-backup.img", 10 * GiB, os.urandom(4096))
    reads: list[int] = []
    real_read = os.read

    def counting_read(fd: int, n: int) -> bytes:
        reads.append(n)
        return real_read(fd, n)

    probe = _probe()
    before = _rchar()
    monkeypatch.setattr(os, "read", counting_read)
    result = _scan(probe, tmp_path)
    monkeypatch.undo()
    read_bytes = _rchar() - before
    (finding,) = result.findings
    assert finding.count == 3
    assert finding.capacity_bytes is not None and finding.capacity_bytes > 10 * GiB
    assert len(reads) == 4 and max(reads) <= HEADER_READ_BYTES  # one bounded read per file
    assert read_bytes < 256 * 1024  # the files hold > 20 GiB; reading them would show here


def test_without_privileges_unreadable_plots_are_blind_spots(
    real_plots: list[RealPlot], world_readable_tmp: Path, unprivileged_uid: int | None
) -> None:
    """As ``nobody`` (or the unprivileged test user): readable plots counted, the rest named."""
    farm = world_readable_tmp / "farm"
    farm.mkdir()
    readable = farm / real_plots[0].path.name
    private = farm / real_plots[1].path.name
    shutil.copy(real_plots[0].path, readable)
    shutil.copy(real_plots[1].path, private)
    readable.chmod(0o644)
    private.chmod(0o600 if unprivileged_uid is not None else 0o000)

    def scan() -> tuple[list[int | None], list[str]]:
        result = _scan(_probe(), farm)
        return [f.count for f in result.findings], result.blind_spots

    counts, blind = run_unprivileged(scan, unprivileged_uid)
    assert counts == [1]
    (line,) = blind
    assert line.startswith("1 large files not readable") and private.name in line


# --- installs ---------------------------------------------------------------------------------


def _ca_certificate(common_name: str) -> bytes:
    crypto = pytest.importorskip("cryptography", reason="cryptography builds the test CA")
    del crypto
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Chia"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Organic Farming Division"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def chia_ca_pem() -> bytes:
    return _ca_certificate("Chia CA")


CONFIG = """\
daemon_port: 55400
full_node:
  port: 8444
  database_path: db/blockchain_v2_CHALLENGE.sqlite
  selected_network: mainnet
farmer:
  port: 8447
  xch_target_address: xch1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq
harvester:
  port: 8448
  num_threads: 30
  plot_directories:{plot_dirs}
  recursive_plot_scan: false
wallet:
  port: 8449
"""


def _install(home: Path, ca_pem: bytes, plot_dirs: list[Path], db_bytes: int = 0) -> Path:
    root = home / ".chia" / "mainnet"
    (root / "config" / "ssl" / "ca").mkdir(parents=True)
    listing = "".join(f"\n  - {d}" for d in plot_dirs) if plot_dirs else " []"
    (root / "config" / "config.yaml").write_text(CONFIG.format(plot_dirs=listing))
    (root / "config" / "ssl" / "ca" / "private_ca.crt").write_bytes(ca_pem)
    if db_bytes:
        (root / "db").mkdir()
        _sparse(root / "db" / "blockchain_v2_mainnet.sqlite", db_bytes)
    return root


def test_parse_plot_directories_block_and_flow_lists() -> None:
    listed = CONFIG.format(plot_dirs="\n  - /mnt/a\n  - '/mnt/b c'\n  # comment\n  - \"/mnt/d\"")
    assert parse_plot_directories(listed) == ["/mnt/a", "/mnt/b c", "/mnt/d"]
    assert parse_plot_directories(CONFIG.format(plot_dirs=" []")) == []
    assert parse_plot_directories("harvester:\n  plot_directories: [/x, '/y']\n") == ["/x", "/y"]
    nested = "harvester:\n  plot_directories:\n    - /deeper\n  other: 1\n"
    assert parse_plot_directories(nested) == ["/deeper"]


def test_chia_ca_is_recognised_with_and_without_cryptography(chia_ca_pem: bytes) -> None:
    other = _ca_certificate("Example Corp Root CA")
    for use_cryptography in (True, False):
        assert is_chia_ca_certificate(chia_ca_pem, use_cryptography=use_cryptography)
        assert not is_chia_ca_certificate(other, use_cryptography=use_cryptography)
        assert not is_chia_ca_certificate(b"Chia CA", use_cryptography=use_cryptography)


def test_a_farming_install_leads_to_its_plots_outside_the_given_paths(
    real_plots: list[RealPlot], tmp_path: Path, chia_ca_pem: bytes
) -> None:
    home = tmp_path / "home" / "farmer"
    plot_dir = real_plots[0].path.parent
    root = _install(home, chia_ca_pem, [plot_dir])
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    result = _scan(_probe(homes=[home]), elsewhere)
    kinds = {f.kind: f for f in result.findings}
    assert kinds["chia-plot"].entity == str(plot_dir)  # found through plot_directories
    install = kinds["chia-install"]
    assert install.verdict is Verdict.STORAGE_MINING and install.entity == str(root)
    text = " ".join(install.evidence)
    assert "CN=Chia CA" in text and "1 hold plots found in this scan" in text


def test_chia_root_from_the_environment(tmp_path: Path, chia_ca_pem: bytes) -> None:
    root = _install(tmp_path / "custom", chia_ca_pem, [tmp_path / "nowhere"])
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _scan(_probe(environ={"CHIA_ROOT": str(root)}), empty)
    (install,) = result.findings
    assert install.entity == str(root) and install.verdict is Verdict.STORAGE_MINING
    assert "0 hold plots" in " ".join(install.evidence)


# --- processes --------------------------------------------------------------------------------

LISTEN_8444 = """\
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", 8444))
except OSError as exc:
    print("port 8444 busy:", exc, flush=True)
    sys.exit(0)
s.listen()
print("ready", flush=True)
sys.stdin.read()
"""

CONNECT = """\
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def farmer_port() -> Iterator[int]:
    """A listener on loopback standing in for the farmer a harvester connects to (8447)."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind(("127.0.0.1", 8447))
    except OSError as exc:
        server.close()
        pytest.skip(f"port 8447 busy on loopback: {exc}")
    server.listen()
    yield 8447
    server.close()


def _by_kind(findings: list[HostFinding]) -> dict[str, HostFinding]:
    return {f.kind: f for f in findings}


def test_farming_services_and_plotters_are_storage_mining(
    spawn: Spawn, farmer_port: int, tmp_path: Path
) -> None:
    processes = [
        spawn("chia_harvester", str(farmer_port), python=CONNECT),
        spawn("chia_farmer"),
        spawn("chia", "plots", "create", "-k", "32", "-n", "1"),
        spawn("bladebit", "-f", "a" * 96, "ramplot", "/mnt/out"),
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    findings = _scan(_probe(), empty, processes=processes).findings
    assert sorted(f.kind for f in findings) == [
        "chia-farmer",
        "chia-harvester",
        "chia-plotter",
        "chia-plotter",
    ]
    assert all(f.verdict is Verdict.STORAGE_MINING and f.coin == "xch" for f in findings)
    assert {f.pid for f in findings} == {p.pid for p in processes}
    (harvester,) = (f for f in findings if f.kind == "chia-harvester")
    assert harvester.pid == processes[0].pid
    assert "1 connections to remote port 8447" in " ".join(harvester.evidence)


def test_a_full_node_alone_is_a_blockchain_node(
    spawn: Spawn, tmp_path: Path, chia_ca_pem: bytes
) -> None:
    home = tmp_path / "home" / "node"
    _install(home, chia_ca_pem, [], db_bytes=40 * GiB)
    node = spawn("chia_full_node", python=LISTEN_8444)
    empty = tmp_path / "empty"
    empty.mkdir()
    findings = _scan(_probe(homes=[home]), empty, processes=[node]).findings
    assert {f.verdict for f in findings} == {Verdict.BLOCKCHAIN_NODE}
    found = _by_kind(findings)
    assert set(found) == {"chia-full-node", "chia-install"}
    assert "listens on 8444" in " ".join(found["chia-full-node"].evidence)
    assert "blockchain database 40.0 GiB" in " ".join(found["chia-install"].evidence)


# --- look-alikes ------------------------------------------------------------------------------


def test_backup_server_ipfs_node_and_other_services_stay_clean(
    spawn: Spawn, tmp_path: Path
) -> None:
    backups = tmp_path / "srv" / "backups"
    backups.mkdir(parents=True)
    for name, size in (("db-2024-05-01.dump", 40 * GiB), ("vm-disk.qcow2", 120 * GiB)):
        _sparse(backups / name, size, os.urandom(4096))
    _sparse(backups / "plot-k32-2024-05-01-00-00-backup.plot", 108_000_000_000, os.urandom(4096))
    home = tmp_path / "home" / "ipfs"
    ipfs = home / ".ipfs"
    for sub in ("blocks", "datastore", "keystore"):
        (ipfs / sub).mkdir(parents=True)
    (ipfs / "config").write_text('{"Identity": {"PeerID": "12D3KooW"}, "Datastore": {}}')
    (ipfs / "blocks" / "CIQA4XCGRCRTCCHV7XSGAZPZJOAOHLPOI6IQR3H6YQ.data").write_bytes(b"x" * 4096)
    processes = [
        spawn("ipfs", "daemon", "--enable-gc"),
        spawn("rsync", "--server", "-logDtpre.iLsfxC", ".", "/srv/backups"),
        spawn("python3", "train.py", "--epochs", "10"),
    ]
    result = _scan(_probe(homes=[home]), tmp_path, processes=processes)
    assert result.findings == []
