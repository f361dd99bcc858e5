"""read_flow_files: formats sniffed from content, directories walked, gzip looked into."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow.compute as pc

from minewatch.net.flowrec.files import read_flow_files, sniff_flow_format
from minewatch.net.flowrec.nfdump import read_nfdump
from minewatch.net.flowrec.suricata import read_eve
from minewatch.net.flowrec.table import FLOW_SCHEMA
from tests.net.flowrec.test_nfdump import nfcapd_file
from tests.net.flowrec.test_nfdump import pytestmark as nfdump_marks
from tests.net.flowrec.test_suricata import needs_suricata, run_suricata
from tests.net.flowrec.test_zeek import CONN_FIELDS, CONN_ROWS, CONN_TYPES, tsv

pytestmark = [nfdump_marks, needs_suricata]


def test_mixed_directory(corpus: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    nf = nfcapd_file(corpus, tmp_path / "nf", "-y")
    (data / nf.name).write_bytes(nf.read_bytes())  # no suffix: found by its magic
    eve = run_suricata(corpus / "benign" / "ndpi_android.pcap", tmp_path / "s")
    (data / "eve.json.gz").write_bytes(gzip.compress(eve.read_bytes()))
    conn = tsv(tmp_path / "conn.log", "conn", CONN_FIELDS, CONN_TYPES, CONN_ROWS)
    zeek_dir = data / "zeek"
    zeek_dir.mkdir()
    (zeek_dir / "conn.00:00:00-01:00:00.log.gz").write_bytes(gzip.compress(conn.read_bytes()))
    (data / "notes.txt").write_text("nothing to see\n")  # skipped inside a directory

    assert sniff_flow_format(data / nf.name) == "nfdump"
    assert sniff_flow_format(data / "eve.json.gz") == "suricata"
    assert sniff_flow_format(data / "notes.txt") is None

    table, problems = read_flow_files([data, tmp_path / "missing", data / "notes.txt"])
    assert table.schema == FLOW_SCHEMA
    counts = dict(zip(*pc.value_counts(table["source"]).flatten(), strict=True))
    expected_nf = read_nfdump(nf).table.num_rows
    expected_eve = read_eve(eve)[0].num_rows
    assert {k.as_py(): v.as_py() for k, v in counts.items()} == {
        "nfdump": expected_nf,
        "suricata": expected_eve,
        "zeek": len(CONN_ROWS),
    }
    messages = {Path(p.path).name: p.message for p in problems}
    assert messages["missing"] == "no such file or directory"
    assert "not a flow file" in messages["notes.txt"]


def test_truncated_nfdump_is_a_problem_with_records(corpus: Path, tmp_path: Path) -> None:
    nf = nfcapd_file(corpus, tmp_path / "nf", None)
    cut = tmp_path / "cut"
    cut.write_bytes(nf.read_bytes()[: nf.stat().st_size * 2 // 3])
    table, problems = read_flow_files([cut])
    assert table.num_rows > 0
    assert len(problems) == 1 and "truncated" in problems[0].message
