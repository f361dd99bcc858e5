"""``/api/v1/assessments/`` and ``/api/v1/evidence/export/``: region-scoped, paginated, and the
exports valid OCSF and STIX 2.1 streamed over HTTP.

The ledger is filled as in :mod:`tests.ledger.exports.test_ocsf` (real scan of the sample
capture, real power screen, detector-contract findings in the sample registry of Zhejiang).
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
import stix2  # type: ignore[import-untyped]
from sqlalchemy import select

from minewatch.api.assessments import AssessmentClass
from minewatch.ledger.assessment import CLASSES
from minewatch.ledger.db import session_factory
from minewatch.ledger.registry_models import Evidence, Tenant
from tests.api.conftest import ApiFixture
from tests.ledger.exports.test_ocsf import fill_ledger, real_outputs, validate

__all__ = ["real_outputs"]  # the module-scoped fixture, shared

CLOUD = "杭州星联云计算有限公司"
AI = "衢州数智人工智能有限公司"


@pytest.fixture
def filled(api: ApiFixture, real_outputs: tuple[Path, Path]) -> ApiFixture:
    fill_ledger(session_factory(api.client.app.state.engine), real_outputs)  # type: ignore[attr-defined]
    return api


def tenant_ids(api: ApiFixture) -> dict[str, int]:
    sessions = session_factory(api.client.app.state.engine)  # type: ignore[attr-defined]
    with sessions() as session:
        return {name: i for i, name in session.execute(select(Tenant.id, Tenant.name))}


def regions_of_evidence(api: ApiFixture) -> dict[str, str | None]:
    sessions = session_factory(api.client.app.state.engine)  # type: ignore[attr-defined]
    with sessions() as session:
        return {
            f: r for f, r in session.execute(select(Evidence.fingerprint, Evidence.region_code))
        }


def normal_power_fingerprints(api: ApiFixture) -> set[str]:
    sessions = session_factory(api.client.app.state.engine)  # type: ignore[attr-defined]
    with sessions() as session:
        return set(
            session.scalars(select(Evidence.fingerprint).where(Evidence.verdict == "normal"))
        )


def get(api: ApiFixture, who: str, path: str, **params: Any) -> Any:
    response = api.client.get(path, params=params, headers=api.headers(who))
    assert response.status_code == 200, response.text
    return response.json()


def test_classes_of_the_api_are_those_of_the_assessment() -> None:
    assert typing.get_args(AssessmentClass) == CLASSES


def test_list_is_scoped_sorted_and_explained(filled: ApiFixture) -> None:
    national = get(filled, "national", "/api/v1/assessments/")
    assert national["count"] == len(national["results"]) > 0
    scores = [r["score"] for r in national["results"]]
    assert scores == sorted(scores, reverse=True)
    for row in national["results"]:
        assert row["class"] in CLASSES
        assert row["reasons"] and all(r["evidence_ids"] for r in row["reasons"])
    cloud = next(r for r in national["results"] if r["tenant"] == CLOUD)
    # stratum-v1/btc from the network and xmrig on a host: two families corroborate.
    assert set(cloud["families"]) == {"net", "host"}
    assert cloud["score"] > 0.85
    assert cloud["url"].endswith(f"/api/v1/assessments/{cloud['tenant_id']}/")

    hangzhou = get(filled, "hangzhou", "/api/v1/assessments/")
    assert hangzhou["count"] > 0
    assert {r["region_code"][:4] for r in hangzhou["results"]} == {"3301"}
    # Sichuan has power evidence of its own, but none placed with a registered tenant or site.
    assert get(filled, "sichuan", "/api/v1/assessments/")["count"] == 0


def test_filters_pages_and_brief(filled: ApiFixture) -> None:
    everything = get(filled, "zhejiang", "/api/v1/assessments/")
    first = get(filled, "zhejiang", "/api/v1/assessments/", limit=1)
    assert first["count"] == everything["count"] and len(first["results"]) == 1
    assert first["next"] is not None and "offset=1" in first["next"]
    assert first["results"][0] == everything["results"][0]
    brief = get(filled, "viewer", "/api/v1/assessments/", brief="true")
    assert set(brief["results"][0]) == {
        "tenant_id",
        "tenant",
        "data_centre_id",
        "data_centre",
        "score",
        "class",
        "url",
    }
    chia = get(filled, "zhejiang", "/api/v1/assessments/", **{"class": "storage-chia"})
    assert chia["count"] >= 1 and {r["class"] for r in chia["results"]} == {"storage-chia"}
    strong = get(filled, "zhejiang", "/api/v1/assessments/", min_score=0.9)
    assert all(r["score"] >= 0.9 for r in strong["results"])
    per_tenant = get(filled, "zhejiang", "/api/v1/assessments/", per="tenant")
    assert all(r["data_centre_id"] is None and r["tenant_id"] for r in per_tenant["results"])
    bad = filled.client.get(
        "/api/v1/assessments/", params={"class": "unicorn"}, headers=filled.headers("zhejiang")
    )
    assert bad.status_code == 422
    mixed = filled.client.get(
        "/api/v1/assessments/",
        params={"per": "tenant", "data_centre_id": 1},
        headers=filled.headers("zhejiang"),
    )
    assert mixed.status_code == 400


def test_one_tenant_inside_and_outside_the_region(filled: ApiFixture) -> None:
    ids = tenant_ids(filled)
    cloud = get(filled, "hangzhou", f"/api/v1/assessments/{ids[CLOUD]}/")
    assert cloud["tenant"] == CLOUD and cloud["declared_business"] == "cloud computing"
    assert cloud["overall"]["data_centre_id"] is None
    assert [s["data_centre"] for s in cloud["sites"]] == ["余杭云谷数据中心"]
    assert cloud["overall"]["score"] >= cloud["sites"][0]["score"]
    for who in ("sichuan",):
        response = filled.client.get(
            f"/api/v1/assessments/{ids[CLOUD]}/", headers=filled.headers(who)
        )
        assert response.status_code == 404
    # The AI tenant is registered only in Quzhou: outside Hangzhou, inside Zhejiang, and
    # without evidence it is assessed as nothing.
    outside = filled.client.get(
        f"/api/v1/assessments/{ids[AI]}/", headers=filled.headers("hangzhou")
    )
    assert outside.status_code == 404
    quiet = get(filled, "zhejiang", f"/api/v1/assessments/{ids[AI]}/")
    assert (quiet["overall"]["class"], quiet["overall"]["score"], quiet["sites"]) == (
        "none",
        0.0,
        [],
    )
    missing = filled.client.get("/api/v1/assessments/99999/", headers=filled.headers("national"))
    assert missing.status_code == 404
    anonymous = filled.client.get("/api/v1/assessments/")
    assert anonymous.status_code == 401


def test_ocsf_export_streams_the_callers_evidence(filled: ApiFixture) -> None:
    regions = regions_of_evidence(filled)
    response = filled.client.get(
        "/api/v1/evidence/export/", params={"format": "ocsf"}, headers=filled.headers("hangzhou")
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "minewatch-evidence-ocsf.json" in response.headers["content-disposition"]
    findings = response.json()
    expected = {f for f, r in regions.items() if r is not None and r.startswith("3301")}
    normal = normal_power_fingerprints(filled)
    assert normal & expected  # a registered meter's "normal" is stored ...
    assert {f["finding_info"]["uid"] for f in findings} == expected - normal  # ... not exported
    for finding in findings:
        validate(finding)
    national = get(filled, "national", "/api/v1/evidence/export/", format="ocsf")
    assert len(national) == len(set(regions) - normal)  # unattributed evidence too, nationally
    power = get(filled, "sichuan", "/api/v1/evidence/export/", format="ocsf", detector="power")
    assert power and all(f["resources"][0]["data"]["region_code"].startswith("51") for f in power)


def test_stix_export_parses_and_filters(filled: ApiFixture) -> None:
    ids = tenant_ids(filled)
    response = filled.client.get(
        "/api/v1/evidence/export/",
        params={"format": "stix", "tenant_id": ids[CLOUD]},
        headers=filled.headers("zhejiang"),
    )
    assert response.status_code == 200
    bundle = stix2.parse(response.text, allow_custom=False)
    sightings = [o for o in bundle.objects if o.type == "sighting"]
    assert sightings and all(CLOUD in s.description for s in sightings)
    bad = filled.client.get(
        "/api/v1/evidence/export/", params={"format": "csv"}, headers=filled.headers("zhejiang")
    )
    assert bad.status_code == 422
    anonymous = filled.client.get("/api/v1/evidence/export/", params={"format": "stix"})
    assert anonymous.status_code == 401
    assert (
        json.loads(
            filled.client.get(
                "/api/v1/evidence/export/",
                params={"format": "stix", "tenant_id": ids[CLOUD]},
                headers=filled.headers("sichuan"),
            ).text
        )["objects"][2:]
        == []
    )  # only the identity and the attack pattern
