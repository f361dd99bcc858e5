"""OCSF export: every evidence row becomes one valid OCSF 1.3.0 Detection Finding.

The ledger is filled through the real paths: network findings from scanning the bundled sample
capture (``minewatch scan``), the real power screen over the bundled power sample, and
network/host findings in the detectors' own output contract (``Finding``/``HostFinding``)
placed in the sample registry's prefixes and hosts.

*Schema source.* The requirements checked (``EVENT_REQUIRED``, ``OBJECT_REQUIRED``,
``AT_LEAST_ONE``, ``ENUMS`` below) are those of OCSF schema 1.3.0 as published at
https://schema.ocsf.io/1.3.0 (class detection_finding [2004] and the objects it uses: the
attributes marked *Required* and the *at least one of* constraints), also rendered per version
at https://docs.tenzir.com/reference/ocsf/1-3-0/, and the JSON sources in
https://github.com/ocsf/ocsf-schema (events/findings/detection_finding.json, finding.json,
objects/*.json).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from minewatch.cli import cli
from minewatch.findings import Finding, Verdict
from minewatch.host.model import HostFinding
from minewatch.ledger.db import session_factory
from minewatch.ledger.exports import EvidenceSelection, iter_evidence
from minewatch.ledger.exports.ocsf import OCSF_VERSION, stream_ocsf, write_ocsf
from minewatch.ledger.ingest import ingest_files, parse_evidence, store_evidence
from minewatch.ledger.registry import import_registry, sample_registry_dir
from minewatch.ledger.registry_models import Evidence
from minewatch.power.screen import screen, write_results
from minewatch.sample import power_sample, sample_capture

# -- OCSF 1.3.0, https://schema.ocsf.io/1.3.0 ------------------------------------------------
EVENT_REQUIRED = (
    # base_event (classification + occurrence + metadata) and finding (finding_info), as listed
    # for class detection_finding [2004].
    "activity_id",
    "category_uid",
    "class_uid",
    "finding_info",
    "metadata",
    "severity_id",
    "time",
    "type_uid",
)
EVENT_ATTRIBUTES = frozenset(
    {
        # Detection Finding 1.3.0 attributes this export may use (required, recommended and
        # optional ones of the class, its parent "finding" and "base_event").
        *EVENT_REQUIRED,
        "activity_name",
        "category_name",
        "class_name",
        "type_name",
        "severity",
        "status",
        "status_id",
        "confidence",
        "confidence_id",
        "confidence_score",
        "message",
        "timezone_offset",
        "start_time",
        "end_time",
        "evidences",
        "resources",
        "unmapped",
        "count",
    }
)
OBJECT_REQUIRED: dict[str, tuple[str, ...]] = {
    "finding_info": ("title", "uid"),
    "metadata": ("product", "version"),
    "product": ("vendor_name",),
    "analytic": ("name", "type_id"),
    "device": ("type_id",),
    "file": ("name", "type_id"),
    "network_connection_info": ("direction_id",),
}
AT_LEAST_ONE: dict[str, tuple[str, ...]] = {
    "product": ("name", "uid"),
    "attack": ("tactic", "technique", "sub_technique"),
    "evidences": (
        "actor",
        "api",
        "connection_info",
        "data",
        "database",
        "databucket",
        "device",
        "dst_endpoint",
        "email",
        "file",
        "process",
        "query",
        "src_endpoint",
        "url",
        "user",
    ),
    "network_endpoint": ("ip", "uid", "name", "hostname", "instance_uid", "interface_uid"),
}
ENUMS: dict[str, frozenset[int]] = {
    "activity_id": frozenset({0, 1, 2, 3, 99}),
    "category_uid": frozenset({2}),
    "severity_id": frozenset({0, 1, 2, 3, 4, 5, 6, 99}),
    "status_id": frozenset({0, 1, 2, 3, 4, 5, 99}),
    "confidence_id": frozenset({0, 1, 2, 3, 99}),
}
# ---------------------------------------------------------------------------------------------

CLOUD_HOST = "yh-a01-n01"
STORAGE_HOST = "xs-r12-n03"
NODE_HOST = "xs-r03-n01"


@pytest.fixture(scope="module")
def real_outputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The network scan of the bundled capture (JSON lines) and the power screen's CSV."""
    folder = tmp_path_factory.mktemp("detectors")
    scanned = CliRunner().invoke(cli, ["scan", str(sample_capture()), "-f", "jsonl", "-q"])
    assert scanned.exit_code == 0, scanned.output
    net = folder / "net.jsonl"
    net.write_text(scanned.stdout, encoding="utf-8")
    power = folder / "power.csv"
    write_results(screen(*power_sample()), power)
    return net, power


def detector_records() -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Network findings inside the sample registry's prefixes and host findings per host."""
    start = 1_760_000_000 * 10**9
    net = [
        Finding(
            verdict=Verdict.MINING,
            protocol="stratum-v1",
            client_ip="10.11.16.25",
            server_ip="192.0.2.7",
            server_port=3333,
            transport="tcp",
            coin="btc",
            confidence=0.99,
            first_seen_ns=start,
            last_seen_ns=start + 600 * 10**9,
            evidence=["client sent mining.subscribe", "server sent mining.notify"],
            pool="ExamplePool",
            server_name="btc.pool.example",
            connections=4,
        ).to_dict(),
        Finding(
            verdict=Verdict.MINING,
            protocol="stratum-xmr",
            client_ip="2001:db8:1101::25",
            server_ip="2001:db8:ffff::7",
            server_port=443,
            transport="tcp",
            coin="xmr",
            confidence=0.9,
            first_seen_ns=start,
            last_seen_ns=start + 60 * 10**9,
            evidence=["login with a Monero wallet"],
        ).to_dict(),
    ]
    hosts = {
        CLOUD_HOST: [
            HostFinding(
                verdict=Verdict.MINING,
                kind="xmrig",
                entity="pid 4242 /opt/x/xmrig",
                coin="xmr",
                confidence=0.97,
                evidence=["process name is xmrig"],
                pid=4242,
                path="/opt/x/xmrig",
            ).to_dict()
        ],
        STORAGE_HOST: [
            HostFinding(
                verdict=Verdict.STORAGE_MINING,
                kind="chia-plot",
                entity="/srv/plots",
                coin="xch",
                confidence=0.95,
                evidence=["12 plot headers"],
                capacity_bytes=12 * 108_800_000_000,
                count=12,
                path="/srv/plots",
            ).to_dict()
        ],
        NODE_HOST: [
            HostFinding(
                verdict=Verdict.BLOCKCHAIN_NODE,
                kind="monerod",
                entity="pid 77 /usr/bin/monerod",
                coin="xmr",
                confidence=0.9,
                evidence=["process monerod"],
                pid=77,
                path="/usr/bin/monerod",
            ).to_dict()
        ],
    }
    return net, hosts


def fill_ledger(sessions: sessionmaker[Session], real: tuple[Path, Path]) -> None:
    """The sample registry and evidence from every detector (see the module doc)."""
    net_file, power_file = real
    net, hosts = detector_records()
    with sessions() as session:
        import_registry(session, [sample_registry_dir()])
        ingest_files(session, [net_file, power_file])
        text = "\n".join(json.dumps(r) for r in net)
        store_evidence(session, parse_evidence(text, "net.jsonl").records)
        for hostname, findings in hosts.items():
            text = "\n".join(json.dumps(f) for f in findings)
            store_evidence(session, parse_evidence(text, "host.jsonl", hostname=hostname).records)
        session.commit()


@pytest.fixture
def sessions(engine: Engine, real_outputs: tuple[Path, Path]) -> sessionmaker[Session]:
    sessions = session_factory(engine)
    fill_ledger(sessions, real_outputs)
    return sessions


def export(sessions: sessionmaker[Session], selection: EvidenceSelection | None = None) -> Any:
    with sessions() as session:
        out = io.StringIO()
        count = write_ocsf(iter_evidence(session, selection), out)
    findings = json.loads(out.getvalue())
    assert count == len(findings)
    return findings


def check_required(obj: dict[str, Any], name: str, where: str) -> None:
    for attribute in OBJECT_REQUIRED.get(name, ()):
        assert obj.get(attribute) not in (None, "", []), f"{where}: {name}.{attribute} missing"
    if name in AT_LEAST_ONE:
        assert any(obj.get(a) not in (None, "", [], {}) for a in AT_LEAST_ONE[name]), (
            f"{where}: {name} needs one of {AT_LEAST_ONE[name]}"
        )


def validate(finding: dict[str, Any]) -> None:
    """The finding against the OCSF 1.3.0 requirements listed at the top of this module."""
    where = finding.get("finding_info", {}).get("uid", "?")
    for attribute in EVENT_REQUIRED:
        assert finding.get(attribute) is not None, f"{where}: {attribute} missing"
    assert set(finding) <= EVENT_ATTRIBUTES, set(finding) - EVENT_ATTRIBUTES
    for attribute, allowed in ENUMS.items():
        if attribute in finding:
            assert finding[attribute] in allowed, (attribute, finding[attribute])
    assert finding["class_uid"] == 2004
    assert finding["type_uid"] == finding["class_uid"] * 100 + finding["activity_id"]
    for stamp in ("time", "start_time", "end_time"):
        if stamp in finding:
            assert isinstance(finding[stamp], int) and finding[stamp] > 10**12  # ms, not s
    if "start_time" in finding and "end_time" in finding:
        assert finding["start_time"] <= finding["end_time"]
    if "confidence_score" in finding:
        assert isinstance(finding["confidence_score"], int)
        assert 0 <= finding["confidence_score"] <= 100
    metadata = finding["metadata"]
    check_required(metadata, "metadata", where)
    check_required(metadata["product"], "product", where)
    info = finding["finding_info"]
    check_required(info, "finding_info", where)
    if "analytic" in info:
        check_required(info["analytic"], "analytic", where)
    for attack in info.get("attacks", []):
        check_required(attack, "attack", where)
    for evidence in finding.get("evidences", []):
        check_required(evidence, "evidences", where)
        for side in ("src_endpoint", "dst_endpoint"):
            if side in evidence:
                check_required(evidence[side], "network_endpoint", where)
        if "connection_info" in evidence:
            check_required(evidence["connection_info"], "network_connection_info", where)
        if "device" in evidence:
            check_required(evidence["device"], "device", where)
        if "file" in evidence:
            check_required(evidence["file"], "file", where)
        if "file" in evidence.get("process", {}):
            check_required(evidence["process"]["file"], "file", where)


def test_every_evidence_row_is_one_valid_detection_finding(
    sessions: sessionmaker[Session],
) -> None:
    findings = export(sessions)
    with sessions() as session:
        stored = list(session.scalars(select(Evidence)))
    # A registered meter's "normal" verdict is stored (to weigh against accusations) but is
    # no finding, so it is not exported.
    rows = {e.fingerprint: e for e in stored if e.verdict != "normal"}
    assert any(e.verdict == "normal" for e in stored)
    assert len(findings) == len(rows) > 5
    assert {f["finding_info"]["uid"] for f in findings} == set(rows)
    assert {f["metadata"]["version"] for f in findings} == {OCSF_VERSION}
    for finding in findings:
        validate(finding)
        row = rows[finding["finding_info"]["uid"]]
        assert finding["unmapped"]["minewatch"]["evidence_id"] == row.id
        assert finding["confidence_score"] == round(row.confidence * 100)
        assert finding["time"] == int(row.ingested_at.timestamp() * 1000)
        attacks = finding["finding_info"].get("attacks", [])
        if row.verdict == "blockchain-node":
            assert attacks == [] and finding["severity_id"] == 1
        else:
            assert [(a["technique"]["uid"], a["tactic"]["uid"]) for a in attacks] == [
                ("T1496", "TA0040")
            ]
            assert attacks[0]["technique"]["name"] == "Resource Hijacking"


def test_facts_carry_over_per_detector(sessions: sessionmaker[Session]) -> None:
    findings = export(sessions)
    by_entity = {f["unmapped"]["minewatch"]["entity"]: f for f in findings}

    btc = by_entity["10.11.16.25"]
    evidence = btc["evidences"][0]
    assert evidence["src_endpoint"] == {"ip": "10.11.16.25"}
    assert evidence["dst_endpoint"] == {
        "ip": "192.0.2.7",
        "port": 3333,
        "hostname": "btc.pool.example",
    }
    assert evidence["connection_info"]["protocol_name"] == "tcp"
    assert evidence["data"]["connections"] == 4
    assert btc["start_time"] == 1_760_000_000_000 and btc["end_time"] == 1_760_000_600_000
    assert btc["resources"][0]["data"]["tenant"] == "杭州星联云计算有限公司"
    assert btc["resources"][0]["data"]["region_code"] == "330110"

    xmrig = by_entity[f"{CLOUD_HOST}: pid 4242 /opt/x/xmrig"]
    assert xmrig["evidences"][0]["device"]["hostname"] == CLOUD_HOST
    assert xmrig["evidences"][0]["process"]["pid"] == 4242
    assert xmrig["evidences"][0]["process"]["file"]["path"] == "/opt/x/xmrig"

    plots = by_entity[f"{STORAGE_HOST}: /srv/plots"]
    assert plots["evidences"][0]["file"]["type_id"] == 2  # a folder of plots
    assert plots["evidences"][0]["data"]["count"] == 12

    power = [f for f in findings if f["unmapped"]["minewatch"]["detector"] == "power"]
    assert power
    for finding in power:
        account = finding["unmapped"]["minewatch"]["entity"]
        assert finding["evidences"][0]["data"]["account_id"] == account
        assert finding["finding_info"]["analytic"]["type_id"] == 3  # statistical

    unattributed = [f for f in findings if f["unmapped"]["minewatch"]["entity"] == "127.0.0.1"]
    assert unattributed  # the real scan of the sample capture, on loopback
    assert all("unattributed" in f["message"] for f in unattributed)


def test_export_is_scoped_and_filtered(sessions: sessionmaker[Session]) -> None:
    everything = export(sessions)
    hangzhou = export(sessions, EvidenceSelection(scope="330100"))
    yuhang_net = export(sessions, EvidenceSelection(scope="330110", detector="net"))
    nowhere = export(sessions, EvidenceSelection(scope="440000"))  # only normal meters there
    assert nowhere == []
    assert 0 < len(yuhang_net) < len(hangzhou) < len(everything)
    assert {f["resources"][0]["data"].get("region_code", "")[:4] for f in hangzhou} == {"3301"}
    assert {f["unmapped"]["minewatch"]["detector"] for f in yuhang_net} == {"net"}


def test_streamed_text_is_the_same_array(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        pieces = list(stream_ocsf(iter_evidence(session)))
    assert json.loads("".join(pieces)) == export(sessions)
