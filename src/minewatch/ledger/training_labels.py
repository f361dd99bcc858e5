"""Labels for the flow-behaviour model from the outcome of cases: inspections teach detectors.

A case that an on-site inspection confirmed says its network evidence was mining; a case that
was cleared (with its reason) says its evidence was a false alarm. Both are exactly what
``minewatch train --labels`` needs to retrain the flow-behaviour model on a province's own
traffic, so the false alarms it raised once are not raised again. Only network evidence carries
the conversation key (client, server, port, transport) that flow labels are keyed by; power and
host evidence have their own detectors.

A conversation labelled both ways by different cases is left out and counted: a label the
ledger contradicts would teach the model noise.

Example::

    >>> LABEL_COLUMNS[:5]
    ('client_ip', 'server_ip', 'server_port', 'transport', 'label')
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from minewatch.ledger.case_models import Case
from minewatch.ledger.regions import scope_prefix

__all__ = ["LABEL_COLUMNS", "CaseLabels", "FlowLabel", "case_labels"]

LABEL_COLUMNS = (
    "client_ip",
    "server_ip",
    "server_port",
    "transport",
    "label",
    "case_id",
    "outcome",
    "reason",
    "decided_at",
)
"""Columns of the labels file (the first five are what ``minewatch train`` reads)."""

_MINING_STATES = ("confirmed", "rectification", "closed")
"""States a case reaches only after an inspection confirmed mining."""


@dataclass(frozen=True, slots=True)
class FlowLabel:
    """One conversation's label and the case that decided it."""

    client_ip: str
    server_ip: str
    server_port: int
    transport: str
    label: str
    """``mining`` (confirmed) or ``benign`` (cleared)."""
    case_id: int
    outcome: str
    reason: str
    decided_at: dt.datetime

    def row(self) -> tuple[object, ...]:
        """The values in :data:`LABEL_COLUMNS` order."""
        return (
            self.client_ip,
            self.server_ip,
            self.server_port,
            self.transport,
            self.label,
            self.case_id,
            self.outcome,
            self.reason,
            self.decided_at.isoformat(),
        )


@dataclass(slots=True)
class CaseLabels:
    """Labels drawn from the ledger, and what could not be used."""

    labels: list[FlowLabel] = field(default_factory=list)
    contradictory: int = 0
    """Conversations two cases labelled differently (left out)."""
    without_network_evidence: int = 0
    """Decided cases with no network evidence to label (ip lists, hotline reports, power)."""


def case_labels(session: Session, scope: str) -> CaseLabels:
    """Labels from every decided case in ``scope``'s subtree (see the module docstring)."""
    cases = session.scalars(
        select(Case)
        .where(Case.region_code.startswith(scope_prefix(scope)))
        .where(Case.state.in_((*_MINING_STATES, "cleared")))
        .options(selectinload(Case.evidence))
        .order_by(Case.id)
    ).all()
    out = CaseLabels()
    found: dict[tuple[str, str, int, str], FlowLabel] = {}
    conflicts: set[tuple[str, str, int, str]] = set()
    for case in cases:
        cleared = case.state == "cleared"
        keyed = [_key(e.raw) for e in case.evidence if e.detector == "net"]
        keys = [k for k in keyed if k is not None]
        if not keys:
            out.without_network_evidence += 1
            continue
        for key in keys:
            label = FlowLabel(
                *key,
                label="benign" if cleared else "mining",
                case_id=case.id,
                outcome=case.state,
                reason=(case.cleared_reason or "") if cleared else "",
                decided_at=(case.cleared_at if cleared else None) or case.updated_at,
            )
            earlier = found.get(key)
            if earlier is not None and earlier.label != label.label:
                conflicts.add(key)
            found.setdefault(key, label)
    out.labels = [label for key, label in found.items() if key not in conflicts]
    out.contradictory = len(conflicts)
    return out


def _key(raw: object) -> tuple[str, str, int, str] | None:
    if not isinstance(raw, dict):
        return None
    client, server, port = raw.get("client_ip"), raw.get("server_ip"), raw.get("server_port")
    transport = raw.get("transport") or "tcp"
    if not (isinstance(client, str) and isinstance(server, str) and isinstance(port, int)):
        return None
    return (client, server, port, str(transport))
