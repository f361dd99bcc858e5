"""nfdump files written by the real nfcapd (Debian package ``nfdump``) from softflowd's export of
corpus captures on loopback, read natively and compared with ``nfdump -r FILE -o csv``."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from minewatch.errors import InputError
from minewatch.net.flowrec.nfdump import read_nfdump
from minewatch.net.flowrec.table import FLOW_SCHEMA

NFCAPD, NFDUMP, SOFTFLOWD = (
    shutil.which(n)
    or next((f"{d}/{n}" for d in ("/usr/sbin", "/usr/bin") if Path(f"{d}/{n}").exists()), None)
    for n in ("nfcapd", "nfdump", "softflowd")
)
pytestmark = pytest.mark.skipif(
    None in (NFCAPD, NFDUMP, SOFTFLOWD),
    reason="nfcapd/nfdump/softflowd not installed (Debian packages nfdump, softflowd)",
)
CAPTURES = ("ndpi_android.pcap", "ndpi_bittorrent.pcap", "ndpi_iphone.pcap")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nfcapd_file(corpus: Path, out: Path, flag: str | None, version: int = 9) -> Path:
    """softflowd replays corpus captures to nfcapd on loopback; the file nfcapd wrote."""
    assert NFCAPD and SOFTFLOWD
    out.mkdir()
    port = free_port()
    argv = [NFCAPD, "-b", "127.0.0.1", "-p", str(port), "-w", str(out), "-t", "3600"]
    daemon = subprocess.Popen(
        [*argv, *([flag] if flag else [])], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(0.7)
        for name in CAPTURES:
            subprocess.run(
                [
                    SOFTFLOWD,
                    "-r",
                    str(corpus / "benign" / name),
                    "-n",
                    f"127.0.0.1:{port}",
                    "-v",
                    str(version),
                    "-d",
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
        time.sleep(0.5)
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
    (path,) = [p for p in out.iterdir() if p.name.startswith("nfcapd.2")]
    return path


def nfdump_csv(path: Path) -> list[tuple[str, str, int, int, int, int, int]]:
    assert NFDUMP
    text = subprocess.run(
        [NFDUMP, "-r", str(path), "-q", "-o", "csv", "-N"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    rows = []
    for line in text.splitlines():
        f = line.split(",")
        if len(f) > 12:
            rows.append((f[3], f[4], int(f[5]), int(f[6]), int(f[11]), int(f[12]), 0))
    return sorted(rows)


@pytest.mark.parametrize("flag", [None, "-z", "-y", "-j"], ids=["plain", "lzo", "lz4", "bzip2"])
def test_nfcapd_files_match_nfdump(corpus: Path, tmp_path: Path, flag: str | None) -> None:
    path = nfcapd_file(corpus, tmp_path / "nf", flag)
    result = read_nfdump(path)
    assert result.problem is None
    assert result.compression == {None: "none", "-z": "LZO", "-y": "LZ4", "-j": "bzip2"}[flag]
    table = result.table
    assert table.schema == FLOW_SCHEMA
    ours = sorted(
        (r["src_ip"], r["dst_ip"], r["src_port"], r["dst_port"], r["packets"], r["bytes"], 0)
        for r in table.to_pylist()
    )
    theirs = nfdump_csv(path)
    assert len(theirs) > 100
    assert ours == theirs
    assert set(table["exporter"].to_pylist()) == {"127.0.0.1"}
    assert any(":" in ip for ip in table["src_ip"].to_pylist())  # IPv6 flows decoded too


def test_truncated_file_keeps_what_came_before(corpus: Path, tmp_path: Path) -> None:
    path = nfcapd_file(corpus, tmp_path / "nf", None)
    whole = read_nfdump(path)
    cut = tmp_path / "cut"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = read_nfdump(cut)
    assert result.problem is not None and "truncated" in result.problem
    assert result.table.num_rows < whole.table.num_rows


def test_corrupt_lzo_block_is_a_problem_not_a_crash(corpus: Path, tmp_path: Path) -> None:
    path = nfcapd_file(corpus, tmp_path / "nf", "-z")
    data = bytearray(path.read_bytes())
    for at in range(60, min(len(data), 400), 7):
        data[at] ^= 0x5A
    bad = tmp_path / "bad"
    bad.write_bytes(bytes(data))
    result = read_nfdump(bad)
    assert result.problem is not None


def test_not_an_nfdump_file(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"hello world, this is not nfdump at all" * 3)
    with pytest.raises(InputError, match="not an nfdump file"):
        read_nfdump(path)
