"""``minewatch train``: retrain the flow model on a user's labelled flows (real recordings).

The labels file is the one ``minewatch case labels`` writes (its columns, in its order): a case
that an inspection cleared becomes a ``benign`` row, and retraining on it must make the model
think less of that conversation than the bundled model does.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from minewatch.commands.train import train
from minewatch.ledger.training_labels import LABEL_COLUMNS
from minewatch.net.behaviour.features import conversation_features, feature_matrix
from minewatch.net.behaviour.model import FlowModel
from minewatch.net.flowrec.from_packets import capture_flows

RECORDINGS = Path(__file__).resolve().parents[2] / "data" / "flows"


def _pick(rows: list[dict[str, str]], kind: str, n: int) -> list[dict[str, str]]:
    found = [r for r in rows if r["kind"] == kind][:n]
    if len(found) < n:
        pytest.skip(f"fewer than {n} {kind} recordings in data/flows")
    return found


def _case_row(row: dict[str, str], label: str, case_id: int) -> list[object]:
    outcome = "confirmed" if label == "mining" else "cleared"
    values: dict[str, object] = {
        "client_ip": row["client_ip"], "server_ip": row["server_ip"],
        "server_port": row["server_port"], "transport": row["transport"], "label": label,
        "case_id": case_id, "outcome": outcome, "reason": f"on-site inspection {case_id}",
        "decided_at": "2026-11-20T09:30:00+00:00",
    }  # fmt: skip
    return [values[c] for c in LABEL_COLUMNS]


def _score(model: FlowModel, path: Path, row: dict[str, str]) -> float:
    flows, _ = capture_flows(path)
    feats = conversation_features(flows).to_pylist()
    (i,) = [
        j
        for j, f in enumerate(feats)
        if (f["client_ip"], f["server_ip"], f["server_port"])
        == (row["client_ip"], row["server_ip"], int(row["server_port"]))
    ]
    x = feature_matrix(conversation_features(flows), model.features)[i : i + 1]
    return float(model.probability(x)[0])


def test_retraining_on_a_cleared_case_lowers_its_score(tmp_path: Path) -> None:
    labels_csv = RECORDINGS / "labels.csv"
    if not labels_csv.is_file():
        pytest.skip("no loopback recordings (data/flows/labels.csv)")
    rows = list(csv.DictReader(labels_csv.open()))
    mining = _pick(rows, "xmrig-tls", 2)
    # A tunnelled conversation that an inspection "cleared": mining-like to the bundled model.
    (cleared,) = _pick(rows, "xmrig-stunnel", 1)
    benign = _pick(rows, "https-poll", 1) + _pick(rows, "mqtt-tls", 1)
    labelled = [(r, "mining") for r in mining] + [(r, "benign") for r in [cleared, *benign]]

    out_labels = tmp_path / "labels.csv"
    with out_labels.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(LABEL_COLUMNS)
        for case_id, (row, label) in enumerate(labelled, start=1):
            writer.writerow(_case_row(row, label, case_id))

    model_path = tmp_path / "site-model.json"
    args = ["--labels", str(out_labels), "--out", str(model_path)]
    for row, _ in labelled:
        args += ["--flows", str(RECORDINGS / row["file"])]
    result = CliRunner().invoke(train, args)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    assert model_path.with_suffix(".md").is_file()

    retrained = FlowModel.load(model_path)
    assert retrained.training["mining_rows"] > 0 and retrained.training["benign_rows"] > 0
    path = RECORDINGS / cleared["file"]
    before = _score(FlowModel.bundled(), path, cleared)
    after = _score(retrained, path, cleared)
    assert after < before
    assert after < retrained.threshold  # the cleared case is no longer raised


def test_labels_without_the_key_columns_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "labels.csv"
    bad.write_text("case_id,outcome\n1,cleared\n")
    flows = tmp_path / "x.pcap"
    flows.write_bytes(b"")
    result = CliRunner().invoke(
        train, ["--labels", str(bad), "--flows", str(flows), "--out", str(tmp_path / "m.json")]
    )
    assert result.exit_code != 0
    assert "labels need the columns" in result.output
    assert "Traceback" not in result.output
