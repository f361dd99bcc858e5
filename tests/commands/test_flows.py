"""``minewatch flows`` and ``minewatch scan --behaviour``: flow files judged by behaviour, with
clear errors for what cannot be read."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from minewatch.cli import cli
from minewatch.net.flowrec.from_packets import capture_flows
from minewatch.sample import sample_capture


def test_unreadable_inputs_are_one_line_each_and_exit_1(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00 not a flow file at all" * 10)
    result = CliRunner().invoke(cli, ["flows", str(junk), str(tmp_path / "missing.nfcapd")])
    assert result.exit_code == 1
    assert "junk.bin: not a flow file" in result.stderr
    assert "missing.nfcapd: no such file or directory" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_a_bad_model_file_is_a_clear_error(tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    model.write_text('{"format": "something else"}', encoding="utf-8")
    result = CliRunner().invoke(cli, ["flows", str(sample_capture()), "--model", str(model)])
    assert result.exit_code == 1
    assert "model" in result.stderr and "Traceback" not in result.stderr
    scan = CliRunner().invoke(cli, ["scan", str(sample_capture()), "--model", str(model)])
    assert scan.exit_code == 2 and "--model" in scan.output


def test_parquet_records_and_the_capture_they_came_from_read_alike(tmp_path: Path) -> None:
    records, problem = capture_flows(sample_capture())
    assert problem is None and records.num_rows > 0
    parquet = tmp_path / "sample-flows.parquet"
    pq.write_table(records, parquet)
    outputs = []
    for path in (sample_capture(), parquet):
        result = CliRunner().invoke(cli, ["flows", str(path), "-f", "jsonl"])
        assert result.exit_code == 0, result.stderr
        assert f"{records.num_rows} flow record(s)" in result.stderr
        outputs.append([json.loads(line) for line in result.stdout.splitlines()])
    assert outputs[0] == outputs[1]


def test_behaviour_adds_nothing_where_the_recognisers_read_everything(tmp_path: Path) -> None:
    # The bundled sample holds a real XMRig session in clear text: its recognised finding
    # stands, and the behaviour model may not add a second verdict on the same conversation.
    plain = CliRunner().invoke(cli, ["scan", "--sample", "-f", "jsonl", "--no-behaviour", "-q"])
    both = CliRunner().invoke(cli, ["scan", "--sample", "-f", "jsonl", "-q"])
    assert plain.exit_code == both.exit_code == 0
    keys = [
        (f["client_ip"], f["server_ip"], f["server_port"])
        for f in map(json.loads, both.stdout.splitlines())
    ]
    assert len(keys) == len(set(keys))
    recognised = [json.loads(line) for line in plain.stdout.splitlines()]
    assert all(f in [json.loads(x) for x in both.stdout.splitlines()] for f in recognised)
