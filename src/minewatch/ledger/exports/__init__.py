"""Evidence out, in formats other security tools read: OCSF Detection Findings (:mod:`.ocsf`)
and STIX 2.1 bundles (:mod:`.stix`).

Both walk the evidence table once, in id order, a batch of rows at a time
(:func:`iter_evidence`), and write as they go (:func:`json_array`, :func:`buffered`), so an
export of a million rows needs the memory of one batch, whether it goes to a file or streams
out of the API. A :class:`EvidenceSelection` says which rows: those inside a region's subtree
(the same rule as every read of the API), optionally one tenant, one data centre, one detector.
Unattributed evidence has no region and is exported only at national scope.

Both formats map minewatch's mining verdicts to MITRE ATT&CK technique T1496 *Resource
Hijacking* (tactic TA0040 *Impact*); a blockchain-node finding is lawful and carries none.

Example::

    >>> from minewatch.ledger.db import open_engine, session_factory, upgrade
    >>> engine = open_engine("sqlite://"); upgrade(engine)
    >>> with session_factory(engine)() as session:
    ...     list(iter_evidence(session, EvidenceSelection(scope="330000")))
    []
    >>> "".join(json_array([{"a": 1}, {"b": 2}]))
    '[\\n{"a":1},\\n{"b":2}\\n]\\n'
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from minewatch.errors import InputError
from minewatch.ledger.regions import NATIONAL, check_code, scope_prefix
from minewatch.ledger.registry_models import DataCentre, Evidence, Tenant

__all__ = [
    "ATTACK_TACTIC",
    "ATTACK_TECHNIQUE",
    "ATTACK_URL",
    "DETECTORS",
    "MINING_VERDICTS",
    "PRODUCT_NAME",
    "VENDOR_NAME",
    "EvidenceSelection",
    "ExportRow",
    "buffered",
    "dumps",
    "iter_evidence",
    "json_array",
]

ATTACK_TECHNIQUE = ("T1496", "Resource Hijacking")
"""MITRE ATT&CK technique (id, name) of mining on someone's resources."""
ATTACK_TACTIC = ("TA0040", "Impact")
"""The ATT&CK tactic T1496 belongs to."""
ATTACK_URL = "https://attack.mitre.org/techniques/T1496/"
PRODUCT_NAME = "minewatch"
VENDOR_NAME = "minewatch project"
DETECTORS = ("net", "power", "host")
MINING_VERDICTS = frozenset({"mining", "storage-mining", "suspect"})
"""Verdicts that assert mining (``suspect`` is the power screen's weaker one)."""


@dataclass(frozen=True, slots=True)
class EvidenceSelection:
    """Which evidence to export: a region subtree and optional tenant, data centre, detector.

    Example::

        >>> EvidenceSelection(scope="330100", detector="net").scope
        '330100'
    """

    scope: str = NATIONAL
    tenant_id: int | None = None
    data_centre_id: int | None = None
    detector: str | None = None

    def __post_init__(self) -> None:
        check_code(self.scope)
        if self.detector is not None and self.detector not in DETECTORS:
            raise InputError(
                f"unknown detector {self.detector!r}: choose one of {', '.join(DETECTORS)}"
            )

    def conditions(self) -> list[ColumnElement[bool]]:
        """The WHERE conditions on :class:`Evidence`."""
        # A meter's "normal" is kept to weigh against accusations, but it is no finding.
        found: list[ColumnElement[bool]] = [Evidence.verdict != "normal"]
        prefix = scope_prefix(self.scope)
        if prefix:
            found.append(Evidence.region_code.startswith(prefix))
        if self.tenant_id is not None:
            found.append(Evidence.tenant_id == self.tenant_id)
        if self.data_centre_id is not None:
            found.append(Evidence.data_centre_id == self.data_centre_id)
        if self.detector is not None:
            found.append(Evidence.detector == self.detector)
        return found


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One evidence row with the names of the tenant and data centre it is attributed to."""

    id: int
    fingerprint: str
    detector: str
    verdict: str
    kind: str
    coin: str | None
    confidence: float
    entity: str
    subject: str | None
    first_seen: dt.datetime | None
    last_seen: dt.datetime | None
    raw: Mapping[str, Any]
    source: str
    ingested_at: dt.datetime
    region_code: str | None
    tenant_id: int | None
    data_centre_id: int | None
    attribution: str
    tenant_name: str | None
    data_centre_name: str | None

    @property
    def mining(self) -> bool:
        """Whether the row asserts mining (as opposed to a lawful blockchain node)."""
        return self.verdict in MINING_VERDICTS

    def attributed_to(self) -> str:
        """Where the row was attributed, in words (for descriptions)."""
        parts = []
        if self.tenant_name is not None:
            parts.append(f"tenant {self.tenant_name}")
        if self.data_centre_name is not None:
            parts.append(f"data centre {self.data_centre_name}")
        if self.region_code is not None:
            parts.append(f"region {self.region_code}")
        return ", ".join(parts) if parts else f"unattributed ({self.attribution})"


_COLUMNS = (
    Evidence.id,
    Evidence.fingerprint,
    Evidence.detector,
    Evidence.verdict,
    Evidence.kind,
    Evidence.coin,
    Evidence.confidence,
    Evidence.entity,
    Evidence.subject,
    Evidence.first_seen,
    Evidence.last_seen,
    Evidence.raw,
    Evidence.source,
    Evidence.ingested_at,
    Evidence.region_code,
    Evidence.tenant_id,
    Evidence.data_centre_id,
    Evidence.attribution,
    Tenant.name,
    DataCentre.name,
)


def iter_evidence(
    session: Session, selection: EvidenceSelection | None = None, *, batch: int = 1000
) -> Iterator[ExportRow]:
    """The selected evidence in id order, read ``batch`` rows at a time (a server-side cursor
    on PostgreSQL), each with its tenant's and data centre's name."""
    query = (
        select(*_COLUMNS)
        .outerjoin(Tenant, Evidence.tenant_id == Tenant.id)
        .outerjoin(DataCentre, Evidence.data_centre_id == DataCentre.id)
        .where(*(selection or EvidenceSelection()).conditions())
        .order_by(Evidence.id)
        .execution_options(yield_per=batch)
    )
    for row in session.execute(query):
        (
            ident,
            fingerprint,
            detector,
            verdict,
            kind,
            coin,
            confidence,
            entity,
            subject,
            first,
            last,
            raw,
            source,
            ingested,
            region,
            tenant,
            site,
            attribution,
            tenant_name,
            site_name,
        ) = row
        yield ExportRow(
            id=ident,
            fingerprint=fingerprint,
            detector=detector,
            verdict=verdict,
            kind=kind,
            coin=coin,
            confidence=confidence,
            entity=entity,
            subject=subject,
            first_seen=first,
            last_seen=last,
            raw=raw if isinstance(raw, dict) else {},
            source=source,
            ingested_at=ingested,
            region_code=region,
            tenant_id=tenant,
            data_centre_id=site,
            attribution=attribution,
            tenant_name=tenant_name,
            data_centre_name=site_name,
        )


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 characters kept, NaN refused."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_array(items: Iterable[Any]) -> Iterator[str]:
    """The text of a JSON array of ``items``, one element per line, produced as it goes."""
    yield "["
    first = True
    for item in items:
        yield ("\n" if first else ",\n") + dumps(item)
        first = False
    yield "\n]\n"


def buffered(chunks: Iterable[str], size: int = 1 << 16) -> Iterator[str]:
    """Join small chunks into pieces of about ``size`` characters (fewer writes, fewer packets)."""
    pending: list[str] = []
    held = 0
    for chunk in chunks:
        pending.append(chunk)
        held += len(chunk)
        if held >= size:
            yield "".join(pending)
            pending, held = [], 0
    if pending:
        yield "".join(pending)
