"""STIX 2.1 export: a bundle the reference library parses without custom content, whose
observables carry the specification's deterministic ids and whose sightings point to the
attack pattern T1496 and to the observed data.

The ledger is the one of :mod:`tests.ledger.exports.test_ocsf` (real scan of the sample
capture, real power screen, detector-contract findings in the sample registry). ``stix2``
(the OASIS reference implementation, a test dependency only) parses the bundle with
``allow_custom=False`` and recomputes every observable's id.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stix2  # type: ignore[import-untyped]
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from minewatch.ledger.db import open_engine, session_factory, upgrade
from minewatch.ledger.exports import EvidenceSelection, iter_evidence
from minewatch.ledger.exports.stix import SCO_NAMESPACE, sco_id, stream_stix, write_stix
from minewatch.ledger.registry_models import Evidence
from tests.ledger.exports.test_ocsf import (
    CLOUD_HOST,
    NODE_HOST,
    STORAGE_HOST,
    fill_ledger,
    real_outputs,
)

__all__ = ["real_outputs"]  # the module-scoped fixture, shared

STIX_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SCO_TYPES = {
    "ipv4-addr",
    "ipv6-addr",
    "domain-name",
    "network-traffic",
    "process",
    "file",
    "directory",
}


@pytest.fixture
def sessions(database_url: str, real_outputs: tuple[Path, Path]) -> Iterator[sessionmaker[Session]]:
    engine: Engine = open_engine(database_url)
    upgrade(engine)
    sessions = session_factory(engine)
    fill_ledger(sessions, real_outputs)
    yield sessions
    engine.dispose()


def bundle_of(
    sessions: sessionmaker[Session], selection: EvidenceSelection | None = None
) -> dict[str, Any]:
    with sessions() as session:
        out = io.StringIO()
        write_stix(iter_evidence(session, selection), out)
    data: dict[str, Any] = json.loads(out.getvalue())
    return data


def test_the_reference_library_parses_the_bundle_without_custom_content(
    sessions: sessionmaker[Session],
) -> None:
    data = bundle_of(sessions)
    parsed = stix2.parse(json.dumps(data), allow_custom=False)
    assert isinstance(parsed, stix2.Bundle)
    assert len(parsed.objects) == len(data["objects"])
    assert data["type"] == "bundle" and "spec_version" not in data


def test_objects_and_references(sessions: sessionmaker[Session]) -> None:
    data = bundle_of(sessions)
    objects = {o["id"]: o for o in data["objects"]}
    assert len(objects) == len(data["objects"])  # no object twice
    kinds = Counter(o["type"] for o in data["objects"])
    (identity,) = [o for o in data["objects"] if o["type"] == "identity"]
    (pattern,) = [o for o in data["objects"] if o["type"] == "attack-pattern"]
    assert identity["name"] == "minewatch"
    assert pattern["name"] == "Resource Hijacking"
    assert {(r["source_name"], r["external_id"]) for r in pattern["external_references"]} == {
        ("mitre-attack", "T1496")
    }
    assert pattern["kill_chain_phases"] == [
        {"kill_chain_name": "mitre-attack", "phase_name": "impact"}
    ]

    with sessions() as session:
        rows = list(session.scalars(select(Evidence)))
    mining = [r for r in rows if r.verdict not in ("blockchain-node", "normal")]
    assert kinds["sighting"] == len(mining)
    # Every network and host row has observables; power rows cannot (no meter SCO in STIX).
    observable_rows = [r for r in rows if r.detector in ("net", "host")]
    assert kinds["observed-data"] == len(observable_rows)

    for obj in data["objects"]:
        for key in (
            "created",
            "modified",
            "first_observed",
            "last_observed",
            "first_seen",
            "last_seen",
        ):
            if key in obj:
                assert STIX_TIME.match(obj[key]), (key, obj[key])
        refs = [v for k, v in obj.items() if k.endswith("_ref")]
        refs += [r for k, v in obj.items() if k.endswith("_refs") for r in v]
        for ref in refs:
            assert ref in objects, f"{obj['id']} refers to {ref}, not in the bundle"
        if obj["type"] == "sighting":
            assert obj["sighting_of_ref"] == pattern["id"]
            assert obj["where_sighted_refs"] == [identity["id"]]
            assert obj["first_seen"] <= obj["last_seen"]
            assert 1 <= obj["count"] <= 999_999_999
            for ref in obj.get("observed_data_refs", []):
                assert objects[ref]["type"] == "observed-data"
        if obj["type"] == "observed-data":
            assert obj["object_refs"]
            assert {objects[r]["type"] for r in obj["object_refs"]} <= SCO_TYPES
            assert obj["first_observed"] <= obj["last_observed"]


def test_observable_ids_are_the_specifications_deterministic_ids(
    sessions: sessionmaker[Session],
) -> None:
    data = bundle_of(sessions)
    scos = [o for o in data["objects"] if o["type"] in SCO_TYPES]
    assert {o["type"] for o in scos} == SCO_TYPES
    for obj in scos:
        if obj["type"] == "process":  # no ID-contributing properties: a UUIDv4
            assert uuid.UUID(obj["id"].split("--", 1)[1]).version == 4
            continue
        recomputed = stix2.parse({k: v for k, v in obj.items() if k != "id"}, allow_custom=False)
        assert recomputed.id == obj["id"], obj
    # The same address seen in many rows is one object.
    loopback = [o for o in scos if o.get("value") == "127.0.0.1"]
    assert len(loopback) == 1
    assert loopback[0]["id"] == sco_id("ipv4-addr", {"value": "127.0.0.1"})
    assert str(SCO_NAMESPACE) == "00abedb4-aa42-466c-9c01-fed23315a9b7"


def test_facts_carry_over(sessions: sessionmaker[Session]) -> None:
    data = bundle_of(sessions)
    objects = {o["id"]: o for o in data["objects"]}
    traffic = [o for o in data["objects"] if o["type"] == "network-traffic"]
    ipv6 = [t for t in traffic if objects[t["src_ref"]]["value"] == "2001:db8:1101::25"]
    assert len(ipv6) == 1
    assert ipv6[0]["protocols"] == ["ipv6", "tcp"] and ipv6[0]["dst_port"] == 443
    assert objects[ipv6[0]["dst_ref"]]["type"] == "ipv6-addr"
    btc = [t for t in traffic if objects[t["src_ref"]]["value"] == "10.11.16.25"]
    assert btc and btc[0]["dst_port"] == 3333
    assert any(
        o["type"] == "domain-name" and o["value"] == "btc.pool.example" for o in objects.values()
    )

    process = next(o for o in objects.values() if o["type"] == "process" and o["pid"] == 4242)
    image = objects[process["image_ref"]]
    assert image["name"] == "xmrig"
    assert objects[image["parent_directory_ref"]]["path"] == "/opt/x"
    assert any(o["type"] == "directory" and o["path"] == "/srv/plots" for o in objects.values())

    sightings = [o for o in data["objects"] if o["type"] == "sighting"]
    described = " ".join(s["description"] for s in sightings)
    assert "tenant 杭州星联云计算有限公司" in described and "region 330110" in described
    assert f"{CLOUD_HOST}: pid 4242" in described and f"{STORAGE_HOST}: /srv/plots" in described
    assert NODE_HOST not in described  # the lawful node is observed, not sighted
    btc_sighting = next(s for s in sightings if "10.11.16.25" in s["description"])
    assert btc_sighting["count"] == 4 and btc_sighting["confidence"] == 99
    power = [s for s in sightings if "power detector" in s["description"]]
    assert power and all("observed_data_refs" not in s for s in power)


def test_a_second_export_keeps_the_ids(sessions: sessionmaker[Session]) -> None:
    first, second = bundle_of(sessions), bundle_of(sessions)
    assert first["id"] != second["id"]  # a bundle is a new envelope each time

    def stable(bundle: dict[str, Any]) -> set[str]:
        return {o["id"] for o in bundle["objects"] if o["type"] != "process"}

    assert stable(first) == stable(second)


def test_scope_and_streaming(sessions: sessionmaker[Session]) -> None:
    quzhou = bundle_of(sessions, EvidenceSelection(scope="330802"))
    assert [o["type"] for o in quzhou["objects"]] == ["identity", "attack-pattern"]
    with sessions() as session:
        text = "".join(stream_stix(iter_evidence(session, EvidenceSelection(scope="330100"))))
    streamed = json.loads(text)
    assert streamed["type"] == "bundle"
    assert any(o["type"] == "sighting" for o in streamed["objects"])
    stix2.parse(text, allow_custom=False)
