"""Labels for retraining from case outcomes: confirmed → mining, cleared → benign."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from minewatch.findings import Finding, Verdict
from minewatch.ledger.cases import LocalOperator, open_case
from minewatch.ledger.ingest import parse_evidence, store_evidence
from minewatch.ledger.models import User
from minewatch.ledger.registry_models import Evidence
from minewatch.ledger.training_labels import LABEL_COLUMNS, case_labels
from tests.ledger.test_cases import AT, walk

ADMIN = LocalOperator("adm-zj", role="admin", region_code="330000")


def _finding(client: str, server: str, port: int) -> str:
    finding = Finding(
        verdict=Verdict.MINING,
        protocol="stratum-tls",
        client_ip=client,
        server_ip=server,
        server_port=port,
        transport="tcp",
        coin=None,
        confidence=0.97,
        first_seen_ns=1_767_225_600_000_000_000,
        last_seen_ns=1_767_229_200_000_000_000,
        evidence=["one connection held 60 min"],
        detector="flow-behaviour",
    )
    return json.dumps(finding.to_dict())


def _evidence_ids(session: Session, text: str) -> list[int]:
    if session.scalar(select(User).where(User.username == "ins-hz")) is None:
        at = AT["lead"]
        session.add(User(username="ins-hz", role="inspector", region_code="330100", created_at=at))
    parsed = parse_evidence(text, "flows.jsonl")
    store_evidence(session, parsed.records)
    session.flush()
    return list(session.scalars(select(Evidence.id).order_by(Evidence.id)))


def test_confirmed_and_cleared_cases_become_labels(
    sample_sessions: sessionmaker[Session],
) -> None:
    lines = [
        _finding("10.11.16.25", "198.18.0.7", 14444),  # Yuhang cloud tenant
        _finding("10.12.8.3", "198.18.0.9", 9443),  # Xiaoshan blockchain-node tenant
    ]
    with sample_sessions() as session:
        mining_id, lawful_id = _evidence_ids(session, "\n".join(lines) + "\n")
        ids = {}
        for name, evidence in (("mining", mining_id), ("lawful", lawful_id)):
            case = open_case(
                session,
                ADMIN,
                region_code="330100",
                title=f"flow model: {name}",
                source="detection",
                evidence_ids=[evidence],
                reason="flow behaviour",
                at=AT["lead"],
            )
            ids[name] = case.id
        walk(session, ids["mining"], "confirmed", actor=ADMIN)
        walk(session, ids["lawful"], "cleared", actor=ADMIN)
        open_case(  # undecided and ip-list cases teach nothing
            session,
            ADMIN,
            region_code="330100",
            title="pushed down",
            source="ip-list",
            ip_addresses=["10.11.16.26"],
        )
        session.commit()
        result = case_labels(session, "330000")
        elsewhere = case_labels(session, "510000")
    by_client = {label.client_ip: label for label in result.labels}
    assert set(by_client) == {"10.11.16.25", "10.12.8.3"}
    assert by_client["10.11.16.25"].label == "mining"
    assert by_client["10.11.16.25"].outcome == "confirmed"
    assert by_client["10.12.8.3"].label == "benign"
    assert by_client["10.12.8.3"].reason == "lawful blockchain node"
    assert (by_client["10.12.8.3"].server_ip, by_client["10.12.8.3"].server_port) == (
        "198.18.0.9",
        9443,
    )
    assert len(by_client["10.12.8.3"].row()) == len(LABEL_COLUMNS)
    assert elsewhere.labels == []  # another province sees none of them


def test_a_conversation_labelled_both_ways_is_left_out(
    sample_sessions: sessionmaker[Session],
) -> None:
    with sample_sessions() as session:
        (evidence,) = _evidence_ids(session, _finding("10.11.16.25", "198.18.0.7", 14444) + "\n")
        cases = [
            open_case(
                session,
                ADMIN,
                region_code="330100",
                title=f"case {n}",
                source="detection",
                evidence_ids=[evidence],
                at=AT["lead"],
            ).id
            for n in range(2)
        ]
        walk(session, cases[0], "confirmed", actor=ADMIN)
        walk(session, cases[1], "cleared", actor=ADMIN)
        session.commit()
        result = case_labels(session, "000000")
    assert result.labels == []
    assert result.contradictory == 1
