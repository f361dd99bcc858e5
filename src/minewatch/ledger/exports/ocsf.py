"""Evidence as OCSF Detection Findings (schema 1.3.0, class 2004), one per evidence row.

The Open Cybersecurity Schema Framework is what SIEMs and data lakes (Amazon Security Lake,
Splunk, Tenzir ...) ingest without a custom parser. Each evidence row becomes one *Detection
Finding* event, activity *Create*:

* classification: ``class_uid`` 2004, ``category_uid`` 2 (Findings), ``activity_id`` 1,
  ``type_uid`` 200401 (``class_uid × 100 + activity_id``);
* ``time`` (when the ledger stored the finding) and ``start_time``/``end_time`` (first and last
  seen) as milliseconds since the epoch, UTC;
* ``severity_id`` from what the finding asserts (mining 3 Medium, the power screen's
  ``suspect`` 2 Low, a lawful blockchain node 1 Informational), kept apart from how sure it is
  (``confidence_id`` and ``confidence_score`` 0-100);
* ``finding_info``: ``uid`` is the evidence fingerprint (the SHA-256 that made ingest
  idempotent), so the same finding exported from two ledgers or twice has one identity;
  ``title``, ``desc``, ``types``, the ``analytic`` (detector and rule), first/last seen, and the
  ATT&CK technique T1496 *Resource Hijacking* / tactic TA0040 *Impact* in ``attacks``
  (mining only);
* ``evidences``: the network endpoints and connection, the host, process and file, or the power
  reading, as the detector saw them; ``resources``: the address, account or host and where
  minewatch attributed it; ``unmapped.minewatch``: the ledger's own fields.

No OCSF profile is applied, so ATT&CK goes in ``finding_info.attacks`` (the top-level
``attacks`` belongs to the Security Control profile).

Example::

    >>> from minewatch.ledger.db import open_engine, session_factory, upgrade
    >>> from minewatch.ledger.exports import iter_evidence
    >>> engine = open_engine("sqlite://"); upgrade(engine)
    >>> with session_factory(engine)() as session:
    ...     "".join(stream_ocsf(iter_evidence(session)))
    '[\\n]\\n'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any, TextIO

from minewatch import __version__
from minewatch.ledger.exports import (
    ATTACK_TACTIC,
    ATTACK_TECHNIQUE,
    PRODUCT_NAME,
    VENDOR_NAME,
    ExportRow,
    buffered,
    json_array,
)

__all__ = [
    "ACTIVITY_CREATE",
    "CATEGORY_UID",
    "CLASS_UID",
    "OCSF_VERSION",
    "TYPE_UID",
    "detection_finding",
    "detection_findings",
    "stream_ocsf",
    "write_ocsf",
]

OCSF_VERSION = "1.3.0"
CLASS_UID = 2004
"""Detection Finding."""
CATEGORY_UID = 2
"""Findings."""
ACTIVITY_CREATE = 1
TYPE_UID = CLASS_UID * 100 + ACTIVITY_CREATE

_SEVERITY = {"mining": (3, "Medium"), "storage-mining": (3, "Medium"), "suspect": (2, "Low")}
_INFORMATIONAL = (1, "Informational")
_ANALYTIC = {
    # (type_id, type): network and host findings come from protocol and signature rules, the
    # power verdict from statistics of a load profile.
    "net": (1, "Rule", "network traffic"),
    "host": (1, "Rule", "host agent"),
    "power": (3, "Statistical", "electricity meter readings"),
}
_RESOURCE_TYPE = {"net": "IP address", "power": "power account", "host": "host"}
_TITLE = {
    "mining": "Cryptocurrency mining",
    "storage-mining": "Storage mining (proof of space or storage)",
    "suspect": "Suspected mining load",
    "blockchain-node": "Blockchain node (lawful, not mining)",
}


def _ms(stamp: dt.datetime | None) -> int | None:
    if stamp is None:
        return None
    return int(stamp.astimezone(dt.UTC).timestamp() * 1000)


def _confidence(value: float) -> tuple[int, str]:
    if value >= 0.9:
        return 3, "High"
    if value >= 0.6:
        return 2, "Medium"
    return 1, "Low"


def _compact(mapping: dict[str, Any]) -> dict[str, Any]:
    """Drop empty values: OCSF omits attributes it has no value for."""
    return {k: v for k, v in mapping.items() if v is not None and v != [] and v != {}}


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _title(row: ExportRow) -> str:
    what = _TITLE.get(row.verdict, row.verdict)
    coin = f", {row.coin}" if row.coin else ""
    return f"{what}: {row.kind}{coin} ({row.entity})"


def _net_evidence(row: ExportRow) -> dict[str, Any]:
    raw = row.raw
    server = raw.get("server_ip")
    destination = _compact(
        {
            "ip": server if isinstance(server, str) else None,
            "port": _int(raw.get("server_port")),
            "hostname": raw.get("server_name") if isinstance(raw.get("server_name"), str) else None,
        }
    )
    transport = raw.get("transport")
    return _compact(
        {
            "src_endpoint": {"ip": row.subject or row.entity},
            "dst_endpoint": destination or None,
            "connection_info": _compact(
                {
                    "protocol_name": transport if isinstance(transport, str) else None,
                    "direction_id": 2,
                    "direction": "Outbound",
                }
            ),
            "data": _compact(
                {
                    "protocol": row.kind,
                    "coin": row.coin,
                    "pool": raw.get("pool"),
                    "connections": _int(raw.get("connections")),
                    "evidence": _strings(raw.get("evidence")),
                }
            ),
        }
    )


def _file(path: str, folder: bool) -> dict[str, Any]:
    name = PurePosixPath(path).name or path
    return {
        "name": name,
        "path": path,
        "type_id": 2 if folder else 1,
        "type": "Folder" if folder else "Regular File",
    }


def _host_evidence(row: ExportRow) -> dict[str, Any]:
    raw = row.raw
    hostname = raw.get("hostname") if isinstance(raw.get("hostname"), str) else row.subject
    pid = _int(raw.get("pid"))
    path = raw.get("path") if isinstance(raw.get("path"), str) and raw.get("path") else None
    process = None
    file = None
    if pid is not None:
        process = _compact(
            {
                "pid": pid,
                "name": PurePosixPath(path).name if path else None,
                "file": _file(path, folder=False) if path else None,
            }
        )
    elif path is not None:
        file = _file(path, folder=True)  # plot directories, sector stores, repositories
    return _compact(
        {
            "device": _compact({"hostname": hostname, "type_id": 1, "type": "Server"}),
            "process": process,
            "file": file,
            "data": _compact(
                {
                    "kind": row.kind,
                    "coin": row.coin,
                    "entity": raw.get("entity"),
                    "capacity_bytes": _int(raw.get("capacity_bytes")),
                    "count": _int(raw.get("count")),
                    "evidence": _strings(raw.get("evidence")),
                }
            ),
        }
    )


def _power_evidence(row: ExportRow) -> dict[str, Any]:
    keep = ("account_id", "kind", "mining_kw", "equivalent", "explanation", "onset", "mining_kwh")
    data = {k: row.raw[k] for k in keep if row.raw.get(k) not in (None, "")}
    data.setdefault("account_id", row.entity)
    return {"data": data}


def detection_finding(row: ExportRow) -> dict[str, Any]:
    """One evidence row as an OCSF 1.3.0 Detection Finding (a JSON-ready dict)."""
    severity_id, severity = _SEVERITY.get(row.verdict, _INFORMATIONAL)
    confidence_id, confidence = _confidence(row.confidence)
    analytic_type_id, analytic_type, source_name = _ANALYTIC.get(
        row.detector, (99, "Other", row.detector)
    )
    first, last = _ms(row.first_seen), _ms(row.last_seen or row.first_seen)
    title = _title(row)
    explained = _strings(row.raw.get("evidence"))
    explanation = row.raw.get("explanation")
    if isinstance(explanation, str) and explanation:
        explained.append(explanation)
    evidence = {"net": _net_evidence, "host": _host_evidence}.get(row.detector, _power_evidence)
    attacks = (
        [
            {
                "technique": {"uid": ATTACK_TECHNIQUE[0], "name": ATTACK_TECHNIQUE[1]},
                "tactic": {"uid": ATTACK_TACTIC[0], "name": ATTACK_TACTIC[1]},
            }
        ]
        if row.mining
        else []
    )
    finding_info = _compact(
        {
            "uid": row.fingerprint,
            "title": title,
            "desc": "; ".join(explained) or None,
            "types": [row.verdict, f"{row.detector}:{row.kind}"],
            "analytic": {
                "name": f"minewatch {row.detector} detector: {row.kind}",
                "uid": f"minewatch.{row.detector}.{row.kind}",
                "type_id": analytic_type_id,
                "type": analytic_type,
            },
            "attacks": attacks,
            "created_time": _ms(row.ingested_at),
            "first_seen_time": first,
            "last_seen_time": last,
            "data_sources": [source_name],
        }
    )
    resource = _compact(
        {
            "uid": row.subject or row.entity,
            "name": row.entity,
            "type": _RESOURCE_TYPE.get(row.detector, row.detector),
            "data": _compact(
                {
                    "tenant": row.tenant_name,
                    "data_centre": row.data_centre_name,
                    "region_code": row.region_code,
                    "attribution": row.attribution,
                }
            ),
        }
    )
    return _compact(
        {
            "class_uid": CLASS_UID,
            "class_name": "Detection Finding",
            "category_uid": CATEGORY_UID,
            "category_name": "Findings",
            "activity_id": ACTIVITY_CREATE,
            "activity_name": "Create",
            "type_uid": TYPE_UID,
            "type_name": "Detection Finding: Create",
            "time": _ms(row.ingested_at),
            "timezone_offset": 0,
            "start_time": first,
            "end_time": last,
            "severity_id": severity_id,
            "severity": severity,
            "status_id": 1,
            "status": "New",
            "confidence_id": confidence_id,
            "confidence": confidence,
            "confidence_score": round(row.confidence * 100),
            "message": f"{title}; attributed to {row.attributed_to()}",
            "metadata": {
                "version": OCSF_VERSION,
                "uid": row.fingerprint,
                "product": {
                    "name": PRODUCT_NAME,
                    "vendor_name": VENDOR_NAME,
                    "version": __version__,
                },
                "log_name": "minewatch ledger evidence",
                "labels": [row.detector, row.verdict],
            },
            "finding_info": finding_info,
            "evidences": [evidence(row)],
            "resources": [resource],
            "unmapped": {
                "minewatch": _compact(
                    {
                        "evidence_id": row.id,
                        "detector": row.detector,
                        "verdict": row.verdict,
                        "kind": row.kind,
                        "coin": row.coin,
                        "entity": row.entity,
                        "subject": row.subject,
                        "source": row.source,
                        "tenant_id": row.tenant_id,
                        "data_centre_id": row.data_centre_id,
                    }
                )
            },
        }
    )


def detection_findings(rows: Iterable[ExportRow]) -> Iterator[dict[str, Any]]:
    """:func:`detection_finding` of every row, lazily."""
    return (detection_finding(row) for row in rows)


def stream_ocsf(rows: Iterable[ExportRow]) -> Iterator[str]:
    """The JSON array of Detection Findings as text pieces (for a streaming response)."""
    return buffered(json_array(detection_findings(rows)))


def write_ocsf(rows: Iterable[ExportRow], out: TextIO) -> int:
    """Write the JSON array of Detection Findings to ``out``; returns how many."""
    written = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal written
        for finding in detection_findings(rows):
            written += 1
            yield finding

    for piece in buffered(json_array(counted())):
        out.write(piece)
    return written
