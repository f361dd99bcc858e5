"""Evidence as a STIX 2.1 bundle: what was observed, and the sighting of mining it shows.

STIX 2.1 is the exchange format of threat-intelligence platforms (OpenCTI, MISP, TAXII feeds).
A bundle from minewatch holds:

* an ``identity`` for minewatch, the creator of every object and where each sighting was made;
* an ``attack-pattern`` for MITRE ATT&CK T1496 *Resource Hijacking* (``external_references``
  ``mitre-attack``/T1496, kill-chain phase ``impact``);
* per evidence row, the cyber observables the detector saw (SCOs): the client and pool
  addresses (``ipv4-addr``/``ipv6-addr``), the pool's ``domain-name``, the ``network-traffic``
  between them (``src_ref``, ``dst_ref``, ``dst_port``, ``protocols``); the miner ``process``
  with its executable ``file`` and that file's ``directory``; the ``directory`` of plots or
  sectors; gathered in one ``observed-data`` (first and last observed, ``number_observed``);
* per mining row, a ``sighting`` of the attack pattern (``sighting_of_ref``) that cites the
  observed-data (``observed_data_refs``), with first/last seen, ``count`` and ``confidence``,
  and a description saying where minewatch attributed it (tenant, data centre, region).

What STIX cannot hold without custom objects (which this export never uses): an electricity
meter. A power verdict therefore becomes a sighting without observed-data. A lawful
blockchain-node row gets its observed-data but no sighting: nothing was sighted.

*Identifiers.* SCO ids are deterministic as the specification defines them: UUIDv5 in the
namespace ``00abedb4-aa42-466c-9c01-fed23315a9b7`` over the canonical JSON (RFC 8785) of the
type's ID-contributing properties, so the same address has the same id in every bundle from
every producer. A ``process`` has no contributing properties and gets a UUIDv4. minewatch's own
SDOs and SROs use UUIDv5 in a namespace of minewatch's own (the specification's SHOULD is v4;
v5 lets a consumer recognise an evidence row exported twice and update it instead of duplicating
it). Timestamps are UTC with millisecond precision and ``Z``.

Example::

    >>> sco_id("ipv4-addr", {"value": "198.51.100.3"})
    'ipv4-addr--28bb3599-77cd-5a82-a950-b5bc3caf07c4'
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, TextIO

from minewatch.ledger.exports import (
    ATTACK_TECHNIQUE,
    ATTACK_URL,
    PRODUCT_NAME,
    ExportRow,
    buffered,
    dumps,
)

__all__ = [
    "MINEWATCH_NAMESPACE",
    "SCO_NAMESPACE",
    "StixSummary",
    "attack_pattern",
    "bundle_objects",
    "identity",
    "sco_id",
    "stix_time",
    "stream_stix",
    "write_stix",
]

SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")
"""The STIX 2.1 namespace of deterministic SCO identifiers (specification, section 2.9)."""
MINEWATCH_NAMESPACE = uuid.UUID("f7f01afe-beb9-4a3e-9f02-a280f8c89052")
"""minewatch's own namespace for the UUIDv5 of its SDOs and SROs (random, fixed once)."""
DEFINED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
"""``created`` of minewatch's identity and attack pattern: fixed, since their ids are too."""
_MAX_COUNT = 999_999_999
_MAX_DESCRIPTION = 4000


def stix_time(stamp: dt.datetime) -> str:
    """A STIX timestamp: UTC, millisecond precision, ``Z``."""
    utc = stamp.astimezone(dt.UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def sco_id(kind: str, contributing: Mapping[str, Any]) -> str:
    """The deterministic id of an SCO from its ID-contributing properties (RFC 8785 JSON:
    sorted keys, no whitespace, UTF-8 kept; the values here are strings, integers and lists)."""
    return f"{kind}--{uuid.uuid5(SCO_NAMESPACE, dumps(_sorted(contributing)))}"


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _own_id(kind: str, name: str) -> str:
    return f"{kind}--{uuid.uuid5(MINEWATCH_NAMESPACE, f'{kind}:{name}')}"


IDENTITY_ID = _own_id("identity", PRODUCT_NAME)
ATTACK_PATTERN_ID = _own_id("attack-pattern", ATTACK_TECHNIQUE[0])


def identity() -> dict[str, Any]:
    """minewatch as a STIX identity (a system)."""
    when = stix_time(DEFINED)
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": IDENTITY_ID,
        "created": when,
        "modified": when,
        "name": PRODUCT_NAME,
        "description": "minewatch: finds cryptocurrency mining in data centres from network "
        "traffic, electricity meters and host agents",
        "identity_class": "system",
    }


def attack_pattern() -> dict[str, Any]:
    """ATT&CK T1496 Resource Hijacking as a STIX attack pattern."""
    when = stix_time(DEFINED)
    return {
        "type": "attack-pattern",
        "spec_version": "2.1",
        "id": ATTACK_PATTERN_ID,
        "created_by_ref": IDENTITY_ID,
        "created": when,
        "modified": when,
        "name": ATTACK_TECHNIQUE[1],
        "description": "Using another party's computing, power or storage to mine cryptocurrency.",
        "external_references": [
            {"source_name": "mitre-attack", "external_id": ATTACK_TECHNIQUE[0], "url": ATTACK_URL}
        ],
        "kill_chain_phases": [{"kill_chain_name": "mitre-attack", "phase_name": "impact"}],
    }


@dataclass(slots=True)
class StixSummary:
    """What a bundle holds: observed-data and sightings made, observables, rows with neither."""

    observed: int = 0
    sightings: int = 0
    observables: int = 0
    rows: int = 0

    def line(self) -> str:
        return (
            f"{self.rows} evidence row(s): {self.observed} observed-data, {self.sightings} "
            f"sighting(s), {self.observables} distinct observable(s)"
        )


class _Observables:
    """The SCOs of one row; ``known`` (shared by the whole bundle) maps each observable already
    emitted to its id, so an address seen in a thousand rows is one object, hashed once."""

    def __init__(self, known: dict[tuple[Any, ...], str]) -> None:
        self._known = known
        self.new: list[dict[str, Any]] = []
        self.refs: list[str] = []

    def _cite(self, ident: str) -> str:
        if ident not in self.refs:
            self.refs.append(ident)
        return ident

    def sco(self, kind: str, contributing: dict[str, Any]) -> str:
        """The id of the SCO of ``kind`` whose properties are all ID-contributing ones."""
        key = (
            kind,
            *((k, tuple(v) if isinstance(v, list) else v) for k, v in contributing.items()),
        )
        ident = self._known.get(key)
        if ident is None:
            ident = self._known[key] = sco_id(kind, contributing)
            self.new.append({"type": kind, "spec_version": "2.1", "id": ident, **contributing})
        return self._cite(ident)

    def process(self, properties: dict[str, Any]) -> str:
        """A process: no ID-contributing properties, so a UUIDv4 and never shared."""
        ident = f"process--{uuid.uuid4()}"
        self.new.append({"type": "process", "spec_version": "2.1", "id": ident, **properties})
        return self._cite(ident)

    def address(self, text: Any) -> str | None:
        if not isinstance(text, str):
            return None
        ident = self._known.get(("address text", text))
        if ident is not None:
            return self._cite(ident)
        try:
            parsed = ipaddress.ip_address(text.strip())
        except ValueError:
            return None
        if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
            parsed = parsed.ipv4_mapped
        kind = "ipv4-addr" if parsed.version == 4 else "ipv6-addr"
        ident = self._known["address text", text] = self.sco(kind, {"value": str(parsed)})
        return ident

    def directory(self, path: str) -> str:
        return self.sco("directory", {"path": path})


def _port(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
        return value
    return None


def _net(row: ExportRow, scos: _Observables) -> None:
    raw = row.raw
    client = scos.address(row.subject or row.entity)
    server = scos.address(raw.get("server_ip"))
    name = raw.get("server_name")
    if isinstance(name, str) and name:
        scos.sco("domain-name", {"value": name.lower().rstrip(".")})
    if client is None or server is None:
        return
    version = "ipv4" if client.startswith("ipv4") else "ipv6"
    transport = raw.get("transport")
    protocols = [version] + (
        [transport.lower()] if isinstance(transport, str) and transport else []
    )
    traffic: dict[str, Any] = {"src_ref": client, "dst_ref": server, "protocols": protocols}
    port = _port(raw.get("server_port"))
    if port is not None:
        traffic["dst_port"] = port
    scos.sco("network-traffic", traffic)


def _host(row: ExportRow, scos: _Observables) -> None:
    raw = row.raw
    path = raw.get("path") if isinstance(raw.get("path"), str) and raw.get("path") else None
    pid = raw.get("pid")
    if isinstance(pid, int) and not isinstance(pid, bool) and pid >= 0:
        process: dict[str, Any] = {"pid": pid}
        if path is not None:
            where = PurePosixPath(path)
            file: dict[str, Any] = {"name": where.name or path}
            if str(where.parent) not in ("", "."):
                file["parent_directory_ref"] = scos.directory(str(where.parent))
            process["image_ref"] = scos.sco("file", file)
        scos.process(process)
    elif path is not None:
        scos.directory(path)  # a directory of plots or sectors, or a node's repository


def _between(row: ExportRow) -> tuple[str, str]:
    first = row.first_seen or row.last_seen or row.ingested_at
    last = row.last_seen or first
    first, last = min(first, last), max(first, last)
    return stix_time(first), stix_time(last)


def _count(row: ExportRow) -> int:
    value = row.raw.get("connections")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return min(value, _MAX_COUNT)
    return 1


def _description(row: ExportRow) -> str:
    coin = f" ({row.coin})" if row.coin else ""
    facts = [
        f"minewatch {row.detector} detector: {row.verdict}, {row.kind}{coin}, "
        f"{row.entity}; attributed to {row.attributed_to()}; confidence {row.confidence:.2f}"
    ]
    evidence = row.raw.get("evidence")
    if isinstance(evidence, list):
        facts.extend(str(e) for e in evidence)
    explanation = row.raw.get("explanation")
    if isinstance(explanation, str) and explanation:
        facts.append(explanation)
    text = "; ".join(facts)
    return text if len(text) <= _MAX_DESCRIPTION else text[: _MAX_DESCRIPTION - 1] + "…"


def _row_objects(
    row: ExportRow, known: dict[tuple[Any, ...], str], summary: StixSummary
) -> list[dict[str, Any]]:
    scos = _Observables(known)
    if row.detector == "net":
        _net(row, scos)
    elif row.detector == "host":
        _host(row, scos)
    out = list(scos.new)
    summary.observables += len(scos.new)
    created = stix_time(row.ingested_at)
    first, last = _between(row)
    confidence = round(row.confidence * 100)
    observed_id = None
    if scos.refs:
        observed_id = _own_id("observed-data", row.fingerprint)
        out.append(
            {
                "type": "observed-data",
                "spec_version": "2.1",
                "id": observed_id,
                "created_by_ref": IDENTITY_ID,
                "created": created,
                "modified": created,
                "first_observed": first,
                "last_observed": last,
                "number_observed": _count(row),
                "object_refs": scos.refs,
                "confidence": confidence,
            }
        )
        summary.observed += 1
    if row.mining:
        sighting: dict[str, Any] = {
            "type": "sighting",
            "spec_version": "2.1",
            "id": _own_id("sighting", row.fingerprint),
            "created_by_ref": IDENTITY_ID,
            "created": created,
            "modified": created,
            "description": _description(row),
            "first_seen": first,
            "last_seen": last,
            "count": _count(row),
            "sighting_of_ref": ATTACK_PATTERN_ID,
            "where_sighted_refs": [IDENTITY_ID],
            "confidence": confidence,
        }
        if observed_id is not None:
            sighting["observed_data_refs"] = [observed_id]
        out.append(sighting)
        summary.sightings += 1
    summary.rows += 1
    return out


def bundle_objects(
    rows: Iterable[ExportRow], summary: StixSummary | None = None
) -> Iterator[dict[str, Any]]:
    """Every object of the bundle in order: identity, attack pattern, then per row its new
    observables, its observed-data and its sighting."""
    summary = summary if summary is not None else StixSummary()
    yield identity()
    yield attack_pattern()
    known: dict[tuple[Any, ...], str] = {}
    for row in rows:
        yield from _row_objects(row, known, summary)


def _bundle_text(objects: Iterable[dict[str, Any]]) -> Iterator[str]:
    yield dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}"})[:-1] + ',"objects":['
    first = True
    for obj in objects:
        yield ("\n" if first else ",\n") + dumps(obj)
        first = False
    yield "\n]}\n"


def stream_stix(rows: Iterable[ExportRow], summary: StixSummary | None = None) -> Iterator[str]:
    """The bundle as JSON text pieces (for a streaming response)."""
    return buffered(_bundle_text(bundle_objects(rows, summary)))


def write_stix(rows: Iterable[ExportRow], out: TextIO) -> StixSummary:
    """Write the bundle to ``out``; returns what it holds."""
    summary = StixSummary()
    for piece in stream_stix(rows, summary):
        out.write(piece)
    return summary
