"""The bundled flow model on real flow exports: softflowd replays loopback recordings as IPFIX
and NetFlow v9 to a socket on 127.0.0.1, minewatch's NetflowDecoder reads the datagrams, and
``detect_flows`` judges them with the bundled model.

Real parts: softflowd (Debian package ``softflowd``), the recordings of a real XMRig miner over
TLS and of real benign software (``data/flows/recordings``), the bundled model. Nothing is
mocked. These recordings are in the model's training set (as captures and as their flow-export
view), so this is a wiring test: it shows that records from an exporter, where every
packet-only feature is missing, reach a decision at all and the right one. The out-of-fold
figures on the export view are in ``docs/flow-model-report.md``.

softflowd exports one record per direction and says nothing of who opened the connection, so
the feature pipeline takes the lower port as the server's. The recordings chosen have the
server's port below the client's, as real pools' ports (3333, 443, 14444 ...) are below the
ephemeral range.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pyarrow.compute as pc
import pytest

from minewatch.net.behaviour.detect import detect_flows
from minewatch.net.behaviour.model import FlowModel
from minewatch.net.flowrec.netflow import NetflowDecoder
from minewatch.net.flowrec.table import FLOW_SCHEMA
from tests.net.flowrec.test_netflow import needs_softflowd, softflowd_datagrams

DATA = Path(__file__).resolve().parents[3] / "data" / "flows"

CASES = [
    ("recordings/b2-xmrig-tls-2.pcap", 10),  # XMRig 6.22.2 over TLS (mining)
    ("recordings/b2-ssh-top-1.pcap", 10),  # `top` over SSH: server-pushed, periodic
    ("recordings/b3-jsonrpc-node-poll-3.pcap", 9),  # a blockchain node's JSON-RPC client
]


def label_of(file: str) -> dict[str, str]:
    rows = [r for r in csv.DictReader((DATA / "labels.csv").open()) if r["file"] == file]
    assert len(rows) == 1, file
    return rows[0]


@pytest.fixture(scope="module")
def model() -> FlowModel:
    return FlowModel.bundled()


@needs_softflowd
@pytest.mark.parametrize(("file", "version"), CASES)
def test_softflowd_export_is_judged_like_the_capture(
    file: str, version: int, model: FlowModel
) -> None:
    path = DATA / file
    if not path.is_file():
        pytest.skip(f"{path} missing")
    label = label_of(file)
    decoder = NetflowDecoder()
    for datagram in softflowd_datagrams(path, version):
        decoder.feed(datagram, "127.0.0.1", time.time_ns())
    flows = decoder.flush()
    assert flows.schema == FLOW_SCHEMA
    assert decoder.stats.malformed == {}
    # An exporter's records: no packet-only columns, no opener.
    assert flows["payload_packets"].null_count == flows.num_rows
    assert flows["opens"].null_count == flows.num_rows
    assert pc.all(pc.equal(flows["initiator"], 0)).as_py()

    findings = detect_flows(flows, model)
    found = {(f.client_ip, f.server_ip, f.server_port, f.transport) for f in findings}
    key = (label["client_ip"], label["server_ip"], int(label["server_port"]), label["transport"])
    if label["label"] == "mining":
        assert key in found, f"{label['kind']} not found in the {file} export"
        finding = next(f for f in findings if f.server_port == key[2])
        assert finding.detector == "flow-behaviour"
        assert finding.protocol == "stratum"  # an export cannot show TLS
        assert finding.confidence >= model.threshold
        assert finding.evidence and "unknown" not in finding.evidence[0]
    else:
        assert key not in found, f"{label['kind']} flagged as mining in the {file} export"
    # Nothing else in the recording (loopback background) is flagged either.
    assert found <= ({key} if label["label"] == "mining" else set())
