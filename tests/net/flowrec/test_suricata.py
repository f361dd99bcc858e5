"""Suricata's eve.json from the real Suricata (Debian package ``suricata``) run on corpus
captures, compared with what the capture holds."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from minewatch.errors import InputError
from minewatch.net.flowrec.suricata import read_eve
from minewatch.net.flowrec.table import FLOW_SCHEMA
from tests.net.flowrec.test_netflow import capture_totals

SURICATA = shutil.which("suricata")
needs_suricata = pytest.mark.skipif(SURICATA is None, reason="suricata not installed")

CONFIG = """%YAML 1.1
---
vars:
  address-groups:
    HOME_NET: "any"
    EXTERNAL_NET: "any"
default-log-dir: .
outputs:
  - eve-log:
      enabled: yes
      filetype: regular
      filename: eve.json
      types:
        - flow
        - tls:
            extended: yes
        - dns
app-layer:
  protocols:
    tls:
      enabled: yes
      ja3-fingerprints: yes
    dns:
      tcp:
        enabled: yes
      udp:
        enabled: yes
"""


def run_suricata(capture: Path, out: Path) -> Path:
    assert SURICATA is not None
    out.mkdir()
    (out / "suricata.yaml").write_text(CONFIG)
    subprocess.run(
        [
            SURICATA,
            "-c",
            str(out / "suricata.yaml"),
            "-r",
            str(capture),
            "-l",
            str(out),
            "-k",
            "none",
            "--runmode",
            "single",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out / "eve.json"


@needs_suricata
def test_eve_flows_match_the_capture(corpus: Path, tmp_path: Path) -> None:
    capture = corpus / "benign" / "ndpi_android.pcap"
    table, problems = read_eve(run_suricata(capture, tmp_path / "s"))
    assert problems == []
    assert table.schema == FLOW_SCHEMA
    tcp_udp = table.filter(pc.is_in(table["protocol"], pa.array([6, 17], pa.int16())))
    packets = pc.sum(tcp_udp["packets"]).as_py() + pc.sum(tcp_udp["rev_packets"]).as_py()
    ip_bytes = pc.sum(tcp_udp["bytes"]).as_py() + pc.sum(tcp_udp["rev_bytes"]).as_py()
    assert (packets, ip_bytes) == capture_totals(capture)
    with_sni = table.filter(pc.is_valid(table["sni"]))
    assert with_sni.num_rows > 0
    assert set(with_sni["tls"].to_pylist()) == {True}  # a tls event matched the flow
    assert all(len(h) == 32 for h in with_sni["ja3"].to_pylist() if h)
    # a name was looked up before most TLS connections of this phone capture
    assert pc.sum(pc.is_valid(with_sni["dns_name"])).as_py() > 0
    assert pc.all(pc.greater_equal(table["end_ns"], table["start_ns"])).as_py()


@needs_suricata
def test_truncated_eve_keeps_good_lines(corpus: Path, tmp_path: Path) -> None:
    eve = run_suricata(corpus / "benign" / "ndpi_android.pcap", tmp_path / "s")
    whole, _ = read_eve(eve)
    data = eve.read_bytes()
    cut = tmp_path / "cut.json"
    cut.write_bytes(data[: len(data) // 2] + b"\n")  # the last line is cut mid-object
    table, problems = read_eve(cut)
    assert 0 < table.num_rows < whole.num_rows
    assert any("not JSON" in p for p in problems)


def test_not_an_eve_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}\n')
    with pytest.raises(InputError, match="not a Suricata"):
        read_eve(path)
