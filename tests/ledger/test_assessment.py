"""Assessment: network, power and host evidence combined per tenant and data centre.

Evidence goes in through the real ingest path (detector output -> parse -> attribute -> store)
against the bundled sample registry; power results come from the real power screen over the
bundled sample. The expected scores are computed from the documented rule (strongest finding
per family, noisy-OR across families, single-family cap, contradiction and look-alike
factors), never copied from a run.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, event, select
from sqlalchemy.orm import Session, sessionmaker

from minewatch.findings import Finding, Verdict
from minewatch.host.model import HostFinding
from minewatch.ledger.assessment import (
    CLASSES,
    CONTRADICTION_WEIGHT,
    LOOKALIKE_FACTOR,
    SINGLE_FAMILY_CAP,
    Assessment,
    assess,
    assess_tenant,
)
from minewatch.ledger.db import session_factory
from minewatch.ledger.ingest import EvidenceRecord, ingest_files, parse_evidence, store_evidence
from minewatch.ledger.registry import import_registry, sample_registry_dir
from minewatch.ledger.registry_models import DataCentre, Evidence, Host, IpPrefix, Tenant
from minewatch.power.result_columns import RESULT_COLUMNS
from minewatch.power.screen import screen, write_results
from minewatch.sample import power_sample

CLOUD = "杭州星联云计算有限公司"  # declares "cloud computing"; Yuhang; account 6374429439
STORAGE = "杭州千峰分布式存储有限公司"  # declares "IPFS distributed storage"; account 2261540648
AI = "衢州数智人工智能有限公司"  # declares "AI model training"; Quzhou; account 3308020417
NODES = "浙江恒链区块链技术有限公司"  # declares "blockchain node hosting"


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    sessions = session_factory(engine)
    with sessions() as session:
        import_registry(session, [sample_registry_dir()])
        session.commit()
    return sessions


@pytest.fixture(scope="module")
def power_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real power screen over the bundled sample (its result CSV)."""
    out = tmp_path_factory.mktemp("power") / "screen.csv"
    write_results(screen(*power_sample()), out)
    return out


def net(
    client: str,
    protocol: str = "stratum-v1",
    coin: str | None = "btc",
    confidence: float = 0.95,
    seconds: int = 0,
) -> dict[str, Any]:
    start = 1_760_000_000 + seconds
    return Finding(
        verdict=Verdict.MINING,
        protocol=protocol,
        client_ip=client,
        server_ip="192.0.2.7",
        server_port=3333,
        transport="tcp",
        coin=coin,
        confidence=confidence,
        first_seen_ns=start * 10**9,
        last_seen_ns=(start + 600) * 10**9,
        evidence=[f"{protocol} session"],
    ).to_dict()


def host(
    kind: str,
    coin: str | None,
    confidence: float,
    verdict: Verdict = Verdict.MINING,
    pid: int | None = 4242,
    path: str | None = "/opt/x/miner",
) -> dict[str, Any]:
    return HostFinding(
        verdict=verdict,
        kind=kind,
        entity=f"pid {pid} {path}" if pid is not None else str(path),
        coin=coin,
        confidence=confidence,
        evidence=[f"{kind} seen"],
        pid=pid,
        path=path,
    ).to_dict()


def put(session: Session, records: list[dict[str, Any]], hostname: str | None = None) -> None:
    text = "\n".join(json.dumps(r) for r in records)
    store_evidence(session, parse_evidence(text, "test.jsonl", hostname=hostname).records)
    session.commit()


def put_power(session: Session, account: str, verdict: str, kind: str, score: float) -> None:
    """A power screening result row, read by the real ingest parser from CSV text as
    ``minewatch power screen --out`` writes it (a registered account's ``normal`` is kept)."""
    values = {
        "account_id": account,
        "verdict": verdict,
        "score": f"{score:.3f}",
        "kind": kind,
        "onset": "",
        "mining_kw": "0.0" if verdict == "normal" else "300.0",
        "equivalent": "",
        "explanation": "round-the-clock flat load" if verdict != "normal" else "no pattern",
        "mining_kwh": "0",
        "co2_t": "0",
        "region_code": "",
        "declared_business": "",
    }
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=RESULT_COLUMNS)
    writer.writeheader()
    writer.writerow(values)
    parsed = parse_evidence(stream.getvalue(), "power-results.csv")
    summary = store_evidence(session, parsed.records)
    assert summary.added == 1, summary.line()
    session.commit()


def address(session: Session, prefix: str, index: int) -> str:
    row = session.scalars(select(IpPrefix).where(IpPrefix.prefix == prefix)).one()
    return str(ipaddress.ip_network(row.prefix)[index])


def tenant_id(session: Session, name: str) -> int:
    return session.scalars(select(Tenant.id).where(Tenant.name == name)).one()


def only(session: Session, name: str) -> Assessment:
    found = [a for a in assess(session) if a.tenant_name == name]
    assert len(found) == 1, found
    return found[0]


def noisy_or(*values: float) -> float:
    out = 1.0
    for v in values:
        out *= 1.0 - v
    return 1.0 - out


def test_nothing_to_assess(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        assert assess(session) == []
        overall, sites = assess_tenant(session, tenant_id(session, CLOUD))
    assert (overall.mining_class, overall.score, sites) == ("none", 0.0, [])
    assert overall.tenant_name == CLOUD


def test_one_weak_signal_stays_weak_however_often_it_repeats(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        put(session, [net(address(session, "10.11.16.0/20", 5), confidence=0.5)])
        once = only(session, CLOUD)
        put(
            session,
            [net(address(session, "10.11.16.0/20", 10 + i), confidence=0.5) for i in range(300)],
        )
        many = only(session, CLOUD)
    assert once.score == pytest.approx(0.5)
    assert many.score == pytest.approx(0.5)
    assert many.evidence_count == 301
    assert many.mining_class == "pow-asic"  # stratum-v1 with btc: SHA-256d


def test_one_strong_family_alone_is_capped(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        put(session, [net(address(session, "10.11.16.0/20", 5), confidence=0.99)])
        found = only(session, CLOUD)
    assert found.score == pytest.approx(SINGLE_FAMILY_CAP)
    assert found.families == {"net": 0.99}
    assert any("uncorroborated" in r.text for r in found.reasons)


def test_network_and_host_corroborate(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        put(session, [net(address(session, "10.11.16.0/20", 5), "stratum-xmr", "xmr", 0.9)])
        put(session, [host("xmrig", "xmr", 0.97)], hostname="yh-a01-n01")
        found = only(session, CLOUD)
        evidence = {
            e.id: e
            for e in session.scalars(select(Evidence).where(Evidence.tenant_id.is_not(None)))
        }
    assert found.score == pytest.approx(noisy_or(0.9, 0.97))
    assert found.score > SINGLE_FAMILY_CAP
    assert found.mining_class == "pow-cpu"
    assert found.data_centre_name == "余杭云谷数据中心" and found.region_code == "330110"
    corroboration = [r for r in found.reasons if "corroborate" in r.text]
    assert len(corroboration) == 1
    cited = {evidence[i].detector for i in corroboration[0].evidence_ids}
    assert cited == {"net", "host"}
    # Every reason names evidence of this tenant only.
    for reason in found.reasons:
        assert reason.evidence_ids, reason
        assert {evidence[i].tenant_id for i in reason.evidence_ids} == {found.tenant_id}


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([("net", "stratum-v1", "btc")], "pow-asic"),
        ([("net", "stratum-v1", "bch")], "pow-asic"),
        ([("net", "stratum-v1", "ltc")], "pow-asic"),
        ([("net", "stratum-v2", None)], "pow-asic"),
        ([("net", "stratum-xmr", None)], "pow-cpu"),
        ([("net", "stratum-v1", "xmr")], "pow-cpu"),
        ([("net", "eth-proxy", None)], "pow-gpu"),
        ([("net", "stratum-v1", "rvn")], "pow-gpu"),
        ([("net", "stratum-tls", None)], "pow-unknown"),
        ([("host", "xmrig", None)], "pow-cpu"),
        ([("host", "randomx", None)], "pow-cpu"),
        ([("host", "gpu-mining", None)], "pow-gpu"),
        ([("host", "t-rex", None)], "pow-gpu"),
        ([("host", "bfgminer", None)], "pow-asic"),
        ([("host", "pool-client", None)], "pow-unknown"),
        # Bare Stratum V1 is half an ASIC vote; a GPU program on the host outweighs it.
        ([("net", "stratum-v1", None), ("host", "t-rex", None)], "pow-gpu"),
    ],
)
def test_class_follows_coin_protocol_and_program(
    sessions: sessionmaker[Session],
    records: list[tuple[str, str, str | None]],
    expected: str,
) -> None:
    with sessions() as session:
        for n, (detector, kind, coin) in enumerate(records):
            if detector == "net":
                put(session, [net(address(session, "10.11.16.0/20", 5 + n), kind, coin, 0.9)])
            else:
                put(session, [host(kind, coin, 0.9)], hostname="yh-a01-n02")
        found = only(session, CLOUD)
    assert found.mining_class == expected
    assert found.mining_class in CLASSES
    assert any(r.text.startswith(f"class {expected}") for r in found.reasons)


def test_storage_classes_from_plots_and_sectors(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        plots = host("chia-plot", "xch", 0.95, Verdict.STORAGE_MINING, None, "/srv/plots")
        put(session, [plots], hostname="xs-r12-n03")
        chia = only(session, STORAGE)
        sectors = host("filecoin-sector", "fil", 0.9, Verdict.STORAGE_MINING, None, "/srv/sealed")
        put(session, [sectors], hostname="xs-r12-n04")
        both = only(session, STORAGE)
    assert chia.mining_class == "storage-chia"
    # Plots (0.95) outvote sectors (0.9); the sectors are named as pointing elsewhere.
    assert both.mining_class == "storage-chia"
    assert any("suggests storage-filecoin" in r.text for r in both.reasons)


def test_real_power_screen_alone_and_with_a_host(
    sessions: sessionmaker[Session], power_results: Path
) -> None:
    with sessions() as session:
        ingest_files(session, [power_results])
        session.commit()
        stored = session.scalars(select(Evidence).where(Evidence.subject == "2261540648")).one()
        assert (stored.verdict, stored.kind) == ("mining", "storage")
        alone = only(session, STORAGE)
        put(
            session,
            [host("chia-plot", "xch", 0.9, Verdict.STORAGE_MINING, None, "/srv/plots")],
            hostname="xs-r12-n03",
        )
        with_host = only(session, STORAGE)
    # The meter alone: one family, capped; it cannot tell Chia from Filecoin, and the tenant's
    # declared "IPFS distributed storage" points to Filecoin.
    assert alone.score == pytest.approx(min(stored.confidence, SINGLE_FAMILY_CAP))
    assert alone.mining_class == "storage-filecoin"
    assert any("cannot tell Chia from Filecoin" in r.text for r in alone.reasons)
    assert any(stored.id in r.evidence_ids for r in alone.reasons)
    # Plots on the tenant's host settle the class and corroborate the meter.
    assert with_host.mining_class == "storage-chia"
    assert with_host.score == pytest.approx(noisy_or(stored.confidence, 0.9))


def test_a_normal_meter_contradicts_an_asic_farm_but_not_cpu_mining(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        put(session, [net(address(session, "10.11.16.0/20", 5), "stratum-v1", "btc", 0.99)])
        put(session, [host("bfgminer", "btc", 0.9)], hostname="yh-a01-n01")
        before = only(session, CLOUD)
        put_power(session, "6374429439", "normal", "none", 0.1)
        after = only(session, CLOUD)
        normal_id = session.scalars(select(Evidence.id).where(Evidence.verdict == "normal")).one()
    assert before.mining_class == after.mining_class == "pow-asic"
    assert before.score == pytest.approx(noisy_or(0.99, 0.9))
    sure = 1 - 0.1
    assert after.score == pytest.approx(before.score * (1 - CONTRADICTION_WEIGHT * sure), abs=1e-4)
    contradiction = [r for r in after.reasons if r.text.startswith("contradiction")]
    assert [r.evidence_ids for r in contradiction] == [(normal_id,)]


def test_a_normal_meter_does_not_clear_cpu_mining(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        put(session, [net(address(session, "10.11.16.0/20", 5), "stratum-xmr", "xmr", 0.9)])
        put(session, [host("xmrig", "xmr", 0.9)], hostname="yh-a01-n01")
        before = only(session, CLOUD)
        put_power(session, "6374429439", "normal", "none", 0.05)
        after = only(session, CLOUD)
    # A few servers' CPUs do not move a data-centre meter: no contradiction.
    assert after.mining_class == "pow-cpu"
    assert after.score == before.score


@pytest.mark.parametrize(
    ("name", "account", "business", "expected"),
    [
        (AI, "3308020417", None, "ai-training"),  # declares "AI model training"
        (CLOUD, "6374429439", None, "cloud"),  # declares "cloud computing"
        (CLOUD, "6374429439", "Spark big data analytics", "big-data"),
        (NODES, "1525564735", None, "blockchain-node"),  # "blockchain node hosting"
        (STORAGE, "2261540648", None, "pow-gpu"),  # storage is no explanation for a GPU load
    ],
)
def test_a_declared_lawful_business_explains_a_suspect_load_alone(
    sessions: sessionmaker[Session],
    name: str,
    account: str,
    business: str | None,
    expected: str,
) -> None:
    with sessions() as session:
        if business is not None:
            session.get_one(Tenant, tenant_id(session, name)).declared_business = business
            session.commit()
        put_power(session, account, "suspect", "gpu", 0.6)
        found = only(session, name)
    assert found.mining_class == expected
    explained = expected in ("ai-training", "cloud", "big-data", "blockchain-node")
    assert found.score == pytest.approx(0.6 * (LOOKALIKE_FACTOR if explained else 1.0))


def test_a_host_finding_outweighs_the_declared_business(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        put_power(session, "3308020417", "suspect", "gpu", 0.6)
        put(session, [host("gpu-mining", None, 0.9, pid=None, path=None)], hostname="qz-g01-gpu01")
        mining = only(session, AI)
    assert mining.mining_class == "pow-gpu"
    assert mining.score == pytest.approx(noisy_or(0.6, 0.9))
    assert any("does not explain pow-gpu" in r.text for r in mining.reasons)


def test_a_mining_verdict_of_the_meter_is_not_explained_away(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        put_power(session, "3308020417", "mining", "gpu", 0.8)
        found = only(session, AI)
    # The screen already weighed the shape (training stalls at checkpoints; mining does not).
    assert found.mining_class == "pow-gpu"
    assert found.score == pytest.approx(0.8)


def test_blockchain_nodes_are_lawful(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        node = host("monerod", "xmr", 0.9, Verdict.BLOCKCHAIN_NODE)
        put(session, [node], hostname="xs-r03-n01")
        found = only(session, NODES)
    assert (found.mining_class, found.score, found.families) == ("blockchain-node", 0.0, {})
    assert found.reasons and all(r.evidence_ids for r in found.reasons)


def test_per_site_and_per_tenant(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        cloud = tenant_id(session, CLOUD)
        quzhou = session.scalars(
            select(DataCentre.id).where(DataCentre.region_code == "330802")
        ).one()
        session.add(Host(data_centre_id=quzhou, hostname="qz-cloud-01", tenant_id=cloud))
        session.commit()
        put(session, [net(address(session, "10.11.16.0/20", 5), "stratum-v1", "btc", 0.95)])
        put(session, [host("bfgminer", "btc", 0.9)], hostname="qz-cloud-01")
        sites = [a for a in assess(session) if a.tenant_id == cloud]
        overall, listed = assess_tenant(session, cloud)
        hangzhou = assess(session, scope="330100")
        sichuan = assess(session, scope="510000")
    assert sorted(a.region_code or "" for a in sites) == ["330110", "330802"]
    assert all(a.score <= SINGLE_FAMILY_CAP for a in sites)  # one family in each site
    assert listed == sites
    # Across its sites the tenant's network and host evidence corroborate each other.
    assert overall.data_centre_id is None
    assert overall.score == pytest.approx(noisy_or(0.95, 0.9))
    assert overall.mining_class == "pow-asic"
    assert [a.region_code for a in hangzhou] == ["330110"]
    assert sichuan == []


def test_evidence_in_a_site_without_tenant_and_unattributed_evidence(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        put(session, [net(address(session, "10.11.0.0/16", 7), "stratum-v1", "btc", 0.9)])
        put(session, [net("192.0.2.200", "stratum-v1", "btc", 0.9)])  # in no registered prefix
        found = assess(session)
    assert len(found) == 1
    assert found[0].tenant_id is None
    assert found[0].data_centre_name == "余杭云谷数据中心"


def test_counting_is_grouped_in_the_database(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """The number of queries does not grow with the number of evidence rows."""
    network = ipaddress.ip_network("10.11.16.0/20")

    def records(n: int) -> list[EvidenceRecord]:
        out = []
        for i in range(n):
            raw = net(str(network[1 + i % 4000]), "stratum-v1", "btc", 0.6 + (i % 7) / 20, i)
            out.append(
                EvidenceRecord(
                    detector="net",
                    verdict="mining",
                    kind="stratum-v1",
                    coin="btc",
                    confidence=raw["confidence"],
                    entity=raw["client_ip"],
                    subject=raw["client_ip"],
                    first_seen=dt.datetime.fromisoformat(raw["first_seen"]),
                    last_seen=dt.datetime.fromisoformat(raw["last_seen"]),
                    raw=raw,
                    source="bulk",
                )
            )
        return out

    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    counts = []
    for size in (20, 20_000):
        with sessions() as session:
            session.execute(delete(Evidence))
            store_evidence(session, records(size))
            session.commit()
        statements.clear()
        event.listen(engine, "before_cursor_execute", seen)
        try:
            with sessions() as session:
                found = assess(session)
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        counts.append(len(statements))
        assert len(found) == 1
        assert found[0].evidence_count == size
        strongest = max(0.6 + (i % 7) / 20 for i in range(size))
        assert found[0].families["net"] == pytest.approx(strongest)
        assert len(found[0].reasons[0].evidence_ids) == 3  # the strongest rows, not all of them
    assert counts[0] == counts[1] <= 6
