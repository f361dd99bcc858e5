"""Evidence in: every detector's real output format, attributed, stored once, all or nothing."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from minewatch.findings import Finding, Verdict
from minewatch.host.model import HostFinding
from minewatch.host.spool import HostReport
from minewatch.ledger.ingest import (
    EvidenceError,
    ingest_files,
    parse_evidence,
    reattribute,
    store_evidence,
    unattributed_evidence,
)
from minewatch.ledger.registry_models import (
    DataCentre,
    Evidence,
    Host,
    IpPrefix,
    PowerAccount,
    address_key,
)
from minewatch.power.screen import screen, write_inspection_list, write_results
from minewatch.sample import power_sample


@pytest.fixture(scope="module")
def power_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The real power screen over the bundled sample: its result CSV and inspection list."""
    out = tmp_path_factory.mktemp("power") / "screen.csv"
    result = screen(*power_sample())
    write_results(result, out)
    inspect = out.with_name("screen-inspect.csv")
    write_inspection_list(result, 100, inspect, out.with_name("screen-inspect.xlsx"))
    return out, inspect


def net_finding(client: str, port: int = 3333, seconds: int = 0) -> dict[str, Any]:
    return Finding(
        verdict=Verdict.MINING,
        protocol="stratum-v1",
        client_ip=client,
        server_ip="192.0.2.7",
        server_port=port,
        transport="tcp",
        coin="btc",
        confidence=0.99,
        first_seen_ns=1_700_000_000 * 10**9 + seconds * 10**9,
        last_seen_ns=1_700_000_600 * 10**9 + seconds * 10**9,
        evidence=["client sent mining.subscribe"],
        pool="example-pool",
    ).to_dict()


def host_finding(pid: int = 4242) -> dict[str, Any]:
    return HostFinding(
        verdict=Verdict.MINING,
        kind="xmrig",
        entity=f"pid {pid} /opt/x/xmrig",
        coin="xmr",
        confidence=0.97,
        evidence=["process name is xmrig"],
        pid=pid,
        path="/opt/x/xmrig",
    ).to_dict()


def jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records),
        encoding="utf-8",
    )
    return path


def evidence_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Evidence)) or 0


def inside(session: Session, prefix: str, index: int = 5) -> str:
    row = session.scalars(select(IpPrefix).where(IpPrefix.prefix == prefix)).one()
    return str(ipaddress.ip_network(row.prefix)[index])


def test_network_findings_are_attributed_and_stored_once(
    sample_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with sample_sessions() as session:
        placed = [inside(session, p) for p in ("10.11.16.0/20", "10.12.32.0/20")]
        placed.append(inside(session, "2001:db8:1232::/48"))
    outside = ["192.0.2.200", "2001:db8:ffff::9"]
    records = [net_finding(ip) for ip in placed + outside]
    path = jsonl(tmp_path / "net.jsonl", records)
    with sample_sessions() as session:
        summary = ingest_files(session, [path])
        session.commit()
    assert (summary.added, summary.attributed, summary.unattributed, summary.duplicates) == (
        len(records),
        len(placed),
        len(outside),
        0,
    )
    with sample_sessions() as session:
        for record in records:
            canonical = json.dumps(
                record, sort_keys=True, ensure_ascii=False, separators=(",", ":")
            )
            row = session.scalars(
                select(Evidence).where(
                    Evidence.fingerprint == hashlib.sha256(canonical.encode()).hexdigest()
                )
            ).one()
            assert row.raw == record
            assert (row.detector, row.kind, row.coin) == ("net", "stratum-v1", "btc")
            assert row.first_seen == dt.datetime.fromisoformat(record["first_seen"])
            if record["client_ip"] in placed:
                assert row.data_centre is not None
                assert row.region_code == row.data_centre.region_code
                assert row.tenant_id is not None
            else:
                assert (row.tenant_id, row.data_centre_id, row.region_code) == (None, None, None)
                assert "no registered prefix" in row.attribution
    with sample_sessions() as session:
        again = ingest_files(session, [path, path])
        session.commit()
        assert evidence_count(session) == len(records)
    assert (again.added, again.duplicates) == (0, 2 * len(records))


def test_repeats_inside_one_input_count_as_duplicates(
    sample_sessions: sessionmaker[Session],
) -> None:
    line = json.dumps(net_finding("10.11.16.9"))
    parsed = parse_evidence(f"{line}\n{line}\n", "twice.jsonl")
    with sample_sessions() as session:
        summary = store_evidence(session, parsed.records)
    assert (summary.added, summary.duplicates) == (1, 1)


def test_power_results_from_the_real_screen(
    sample_sessions: sessionmaker[Session], power_results: tuple[Path, Path]
) -> None:
    results, inspection_list = power_results
    with results.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    listed = [r for r in rows if r["verdict"] != "normal"]
    with sample_sessions() as session:
        summary = ingest_files(session, [results])
        session.commit()
    with sample_sessions() as session:
        accounts = {a.account_id: a for a in session.scalars(select(PowerAccount))}
    # A "normal" verdict is kept only for a registered account: the meter's word against
    # mining, which the assessment weighs; other normal rows are skipped.
    registered_normal = [
        r for r in rows if r["verdict"] == "normal" and r["account_id"] in accounts
    ]
    assert registered_normal
    assert summary.added == len(listed) + len(registered_normal)
    assert summary.skipped == len(rows) - len(listed) - len(registered_normal) > 0
    with sample_sessions() as session:
        for row in registered_normal:
            stored = session.scalars(
                select(Evidence).where(Evidence.subject == row["account_id"])
            ).one()
            assert stored.verdict == "normal" and stored.tenant_id is not None
        for row in listed:
            stored = session.scalars(
                select(Evidence).where(Evidence.subject == row["account_id"])
            ).one()
            assert stored.detector == "power"
            assert (stored.verdict, stored.kind) == (row["verdict"], row["kind"])
            assert stored.confidence == float(row["score"])
            account = accounts.get(row["account_id"])
            if account is None:
                # Not in the registry: kept, with the region the screen reported.
                assert stored.tenant_id is None and stored.data_centre_id is None
                assert stored.region_code == row["region_code"]
            else:
                assert stored.tenant_id == account.tenant_id
                centre = session.get_one(DataCentre, account.data_centre_id)
                assert stored.region_code == centre.region_code
        assert summary.attributed == len(registered_normal) + sum(
            1 for r in listed if r["account_id"] in accounts
        )
    with sample_sessions() as session:
        from_list = ingest_files(session, [inspection_list])
        session.commit()
    # The inspection list holds the same results (ranked, bilingual headers): nothing new.
    assert from_list.added == 0 and from_list.duplicates == len(listed)


def test_host_findings_need_a_hostname_and_attribute_through_it(
    sample_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = jsonl(tmp_path / "host.jsonl", [host_finding(1), host_finding(2)])
    with sample_sessions() as session:
        with pytest.raises(EvidenceError, match="--hostname") as caught:
            ingest_files(session, [path])
        assert caught.value.where == f"{path}:1"
        host = session.scalars(select(Host).where(Host.tenant_id.is_not(None))).first()
        assert host is not None
        summary = ingest_files(session, [path], hostname=host.hostname)
        session.commit()
    assert (summary.added, summary.attributed) == (2, 2)
    with sample_sessions() as session:
        rows = list(session.scalars(select(Evidence).order_by(Evidence.id)))
        assert {r.tenant_id for r in rows} == {host.tenant_id}
        assert rows[0].entity == f"{host.hostname}: pid 1 /opt/x/xmrig"
        assert rows[0].raw["hostname"] == host.hostname
        # The same findings from another host are other evidence, not duplicates.
        other = ingest_files(session, [path], hostname="elsewhere-01")
    assert (other.added, other.unattributed) == (2, 2)


def test_agent_report_files_carry_host_and_time(
    sample_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    findings = [HostFinding(**{k: v for k, v in host_finding(7).items() if k != "detector"})]
    report = HostReport.create("XS-R12-N03", findings, scanned_at_ns=1_750_000_000 * 10**9)
    path = tmp_path / "report.json"
    path.write_bytes(report.to_json_bytes())
    with sample_sessions() as session:
        summary = ingest_files(session, [path])
        session.commit()
        row = session.scalars(select(Evidence)).one()
        host = session.scalars(select(Host).where(Host.hostname == "xs-r12-n03")).one()
    assert summary.attributed == 1
    assert (row.tenant_id, row.data_centre_id) == (host.tenant_id, host.data_centre_id)
    assert row.first_seen == row.last_seen == dt.datetime.fromtimestamp(1_750_000_000, dt.UTC)
    assert row.raw["report_id"] == report.report_id


def test_json_array_output_is_read_too(sample_sessions: sessionmaker[Session]) -> None:
    text = json.dumps([net_finding("10.11.16.9"), net_finding("10.11.16.10")], indent=2)
    assert len(parse_evidence(text, "scan.json").records) == 2


BAD = [
    ("not json", "not valid JSON"),
    (json.dumps({**net_finding("10.0.0.1"), "confidence": 1.5}), "between 0 and 1"),
    (json.dumps({**net_finding("10.0.0.1"), "confidence": True}), "must be a number"),
    (json.dumps({**net_finding("10.0.0.1"), "verdict": "maybe"}), "verdict 'maybe'"),
    (json.dumps({**net_finding("10.0.0.1"), "client_ip": "10.0.0.300"}), "not an IP address"),
    (json.dumps({**net_finding("10.0.0.1"), "first_seen": "2026-01-01T00:00:00"}), "no time zone"),
    (json.dumps({"verdict": "mining"}), "neither a network finding"),
    (json.dumps([1]), "not a JSON object"),
]


@pytest.mark.parametrize(("line", "reason"), BAD)
def test_a_bad_line_in_any_file_writes_nothing(
    sample_sessions: sessionmaker[Session], tmp_path: Path, line: str, reason: str
) -> None:
    good = jsonl(tmp_path / "good.jsonl", [net_finding("10.11.16.9")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(net_finding("10.11.16.10")) + "\n\n" + line + "\n", encoding="utf-8")
    with sample_sessions() as session:
        with pytest.raises(EvidenceError, match=reason) as caught:
            ingest_files(session, [good, bad])
        assert caught.value.where == f"{bad}:3"
        assert evidence_count(session) == 0


def test_bad_power_rows_name_their_line(
    sample_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "power.csv"
    header = "account_id,verdict,score,kind,onset,region_code\n"
    path.write_text(header + "1,mining,0.9,asic,,330100\n2,mining,0.9,asic,,33010\n")
    with sample_sessions() as session, pytest.raises(EvidenceError, match="region code") as caught:
        ingest_files(session, [path])
    assert caught.value.where == f"{path}:3"
    path.write_text(header + "1,mining,high,asic,,330100\n")
    with pytest.raises(EvidenceError, match="score 'high'"):
        parse_evidence(path.read_text(), "p.csv")
    path.write_text("account_id,kw\n1,2\n")
    with pytest.raises(EvidenceError, match="not a power screening result"):
        parse_evidence(path.read_text(), "p.csv")


def test_kind_forces_the_detector(tmp_path: Path) -> None:
    line = json.dumps(net_finding("10.0.0.1"))
    with pytest.raises(EvidenceError, match="power results are CSV"):
        parse_evidence(line, "x.jsonl", kind="power")
    with pytest.raises(EvidenceError, match="'entity' must be"):
        parse_evidence(line, "x.jsonl", kind="host", hostname="h")
    with pytest.raises(EvidenceError, match="not JSON"):
        parse_evidence("account_id,verdict,score,kind\n", "x.csv", kind="net")


def test_line_separators_inside_strings_do_not_split_records() -> None:
    record = net_finding("10.0.0.1")
    record["evidence"] = ["pool banner: a\u2028b"]
    text = json.dumps(record, ensure_ascii=False)
    assert len(parse_evidence(text + "\n", "x.jsonl").records) == 1


def test_unattributed_is_listed_and_reattributed_after_a_registry_change(
    sample_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    stray = ["198.18.0.5", "198.18.0.77"]
    path = jsonl(tmp_path / "net.jsonl", [net_finding(ip) for ip in [*stray, "10.11.16.9"]])
    with sample_sessions() as session:
        ingest_files(session, [path])
        session.commit()
        listed = unattributed_evidence(session)
        assert sorted(r.subject or "" for r in listed) == stray
        network = ipaddress.ip_network("198.18.0.0/24")
        centre = session.scalars(select(DataCentre).order_by(DataCentre.id)).first()
        assert centre is not None
        session.add(
            IpPrefix(
                prefix=str(network),
                family=4,
                start_key=address_key(network.network_address),
                end_key=address_key(network.broadcast_address),
                data_centre_id=centre.id,
                description="found later",
            )
        )
        session.commit()
        assert reattribute(session) == len(stray)
        session.commit()
        assert unattributed_evidence(session) == []
        moved = session.scalars(select(Evidence).where(Evidence.subject == stray[0])).one()
        assert moved.region_code == centre.region_code
        assert reattribute(session) == 0
