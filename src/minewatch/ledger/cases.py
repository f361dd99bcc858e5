"""The case workflow: from a lead to a closed case, as plain functions over a session.

A case moves through these states, and only along these arrows::

    lead ─► verification ─► inspection ─► confirmed ─► rectification ─► closed
                 │               │
                 └──────────────►┴─► cleared

* A **lead** comes from detection (linked :class:`~minewatch.ledger.registry_models.Evidence`),
  an IP list pushed down from above, a hotline report or a self-report.
* **verification** is the desk check; it sends the case to an on-site **inspection** (an
  inspector and a date are assigned) or clears it.
* After the inspection the case is **confirmed** (an inspection must have found mining) or
  **cleared**. Clearing always needs a reason; the reason and the linked evidence stay with the
  case, so the detectors can learn from their false alarms (:func:`cleared_examples`).
* **rectification** depends on the project type: a new (增量) project gets a shutdown order with
  a deadline (one ``shutdown`` milestone); an existing (存量) one an exit plan of three dated
  milestones (stop mining, remove equipment, cut the dedicated supply). It is **closed** once
  every milestone is done. Milestones and inspections past their date are alerts
  (:func:`overdue`).

Every function here is the data layer's own guard, whatever calls it (API, CLI, a script):

* *Scope.* A case is reachable only from a region whose subtree holds it
  (:func:`minewatch.ledger.regions.within`); outside it a case does not exist
  (:class:`CaseNotFoundError`), so nobody learns of other regions' cases.
* *Roles.* Viewers read; analysts open, edit and verify; inspectors record inspections and
  confirm or clear after one; admins do everything (:data:`TRANSITIONS`, :data:`ACTIONS`).
  A refusal is :class:`NotPermittedError`.
* *Rules.* A move that is not an arrow above, or whose conditions are not met, is a
  :class:`CaseConflictError` naming what is missing. Everything is checked before anything is
  changed, so a refused call leaves the session as it found it.
* *Audit.* Each change is appended to the hash-chained audit log with
  :func:`~minewatch.ledger.audit.record` in the caller's transaction, with the actor's name and
  the reason: the caller commits both together (or rolls both back).

Times are time-zone-aware (stored in UTC); deadlines and due dates are calendar dates, read in
China Standard Time (UTC+8, no daylight saving since 1991): a milestone due on 1 March is overdue
from 2 March.

Example::

    >>> from minewatch.ledger.db import open_engine, session_factory, upgrade
    >>> engine = open_engine("sqlite://"); upgrade(engine)
    >>> analyst = LocalOperator("alice", role="analyst", region_code="330000")
    >>> with session_factory(engine)() as session:
    ...     case = open_case(session, analyst, region_code="330106", title="hotline 12345-88",
    ...                      source="hotline", reason="caller reports fan noise at night")
    ...     case = transition(session, analyst, case.id, "verification", "checking the meter")
    ...     session.commit()
    ...     case.state, allowed_transitions(case.state)
    ('verification', ('inspection', 'cleared'))
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Subquery,
    and_,
    func,
    literal,
    select,
    union,
    union_all,
)
from sqlalchemy.orm import Session, selectinload

from minewatch.errors import InputError, MinewatchError
from minewatch.ledger.audit import record
from minewatch.ledger.case_models import (
    Case,
    CaseTransition,
    Inspection,
    InspectionAttachment,
    Milestone,
)
from minewatch.ledger.models import User
from minewatch.ledger.regions import NATIONAL, check_code, scope_prefix, within
from minewatch.ledger.registry import check_credit_code
from minewatch.ledger.registry_models import DataCentre, Evidence, Tenant

__all__ = [
    "ACTIONS",
    "CHINA_TZ",
    "DEFAULT_CHECKLIST",
    "EXIT_PLAN_STEPS",
    "HASHRATE_UNITS",
    "INSPECTION_RESULTS",
    "LEDGER_FIELDS",
    "MILESTONE_KINDS",
    "MILESTONE_LABELS",
    "MINING_CLASSES",
    "PROJECT_TYPES",
    "SOURCES",
    "STATES",
    "TRANSITIONS",
    "Actor",
    "Alert",
    "AttachmentMeta",
    "CaseConflictError",
    "CaseNotFoundError",
    "ClearedExample",
    "LocalOperator",
    "NotPermittedError",
    "allowed_transitions",
    "case_snapshot",
    "china_today",
    "cleared_examples",
    "get_case",
    "link_evidence",
    "list_cases",
    "open_case",
    "overdue",
    "overdue_cases",
    "overdue_count",
    "record_inspection",
    "roles_into",
    "schedule_inspection",
    "transition",
    "update_case",
    "update_milestone",
]

CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "UTC+08:00")
"""China Standard Time, in which calendar dates (deadlines, due dates) are read."""

STATES = (
    "lead",
    "verification",
    "inspection",
    "confirmed",
    "cleared",
    "rectification",
    "closed",
)
SOURCES = ("detection", "ip-list", "hotline", "self-report")
MINING_CLASSES = (
    "pow-asic",
    "pow-gpu",
    "pow-cpu",
    "storage-chia",
    "storage-filecoin",
    "unknown",
)
PROJECT_TYPES: Mapping[str, str] = {"new": "增量", "existing": "存量"}
"""Stored value -> the notice's term: new projects are shut down, existing ones exit on a plan."""
HASHRATE_UNITS = (
    "H/s",
    "kH/s",
    "MH/s",
    "GH/s",
    "TH/s",
    "PH/s",
    "EH/s",
    "GiB",
    "TiB",
    "PiB",
    "EiB",
)
"""Units a hashrate is recorded in: hashes per second for proof of work, plot or sector capacity
(binary bytes) for storage mining, whose "hashrate" is the space it proves."""
INSPECTION_RESULTS = ("mining", "no-mining", "inconclusive")
EXIT_PLAN_STEPS = ("stop-mining", "remove-equipment", "cut-supply")
"""The milestones of an existing project's exit plan, in the order they happen."""
MILESTONE_KINDS = ("shutdown", *EXIT_PLAN_STEPS)
MILESTONE_LABELS: Mapping[str, str] = {
    "shutdown": "关停",
    "stop-mining": "停止挖矿",
    "remove-equipment": "拆除设备",
    "cut-supply": "切断专用供电",
}
DEFAULT_CHECKLIST = (
    "Mining machines (ASIC, GPU rigs, plotting or sealing servers) present and counted",
    "Machine models and nameplate power noted",
    "Hashrate read from the machines' or pool's dashboards",
    "Connections to mining pools checked on site",
    "Meter reading taken and compared with the contracted load",
    "Dedicated power supply lines identified",
    "Person in charge and business licence recorded",
)
"""Checklist of a new inspection when none is given."""

_ANALYSTS = frozenset({"analyst", "admin"})
_INSPECTORS = frozenset({"inspector", "admin"})
_ADMINS = frozenset({"admin"})
_EDITORS = frozenset({"analyst", "inspector", "admin"})

TRANSITIONS: Mapping[tuple[str, str], frozenset[str]] = {
    ("lead", "verification"): _ANALYSTS,
    ("verification", "inspection"): _ANALYSTS,
    ("verification", "cleared"): _ANALYSTS,
    ("inspection", "confirmed"): _INSPECTORS,
    ("inspection", "cleared"): _INSPECTORS,
    ("confirmed", "rectification"): _ADMINS,
    ("rectification", "closed"): _ADMINS,
}
"""Every legal move, with the roles that may make it."""

ACTIONS: Mapping[str, frozenset[str]] = {
    "open": _ANALYSTS,
    "update": _EDITORS,
    "link-evidence": _ANALYSTS,
    "schedule-inspection": _ANALYSTS,
    "record-inspection": _INSPECTORS,
    "complete-milestone": _INSPECTORS,
    "reschedule-milestone": _ADMINS,
}
"""Roles allowed each action other than a state change."""

LEDGER_FIELDS = (
    "title",
    "mining_class",
    "source_ref",
    "region_code",
    "tenant_id",
    "data_centre_id",
    "enterprise",
    "credit_code",
    "scale_units",
    "hashrate_value",
    "hashrate_unit",
    "power_kw",
    "annual_kwh",
    "planned_production_date",
    "project_type",
)
"""Fields :func:`update_case` may change."""

_MAX_REASON = 2000
_MAX_IPS = 10_000
_MAX_CHECKLIST = 100
_MAX_ATTACHMENTS = 200
_MAX_EVIDENCE = 10_000
_CLOCK_SKEW = dt.timedelta(minutes=5)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$")


class CaseNotFoundError(InputError):
    """No such case, or none the caller's region may see (deliberately indistinguishable)."""


class NotPermittedError(MinewatchError):
    """The caller's role (or read-only token) does not allow this action."""


class CaseConflictError(InputError):
    """The case's state does not allow this: an illegal transition or an unmet condition."""


class Actor(Protocol):
    """Who acts: a name for the audit log, a role and the region whose subtree is its reach.

    :class:`minewatch.ledger.tokens.Principal` is one; :class:`LocalOperator` another.
    """

    @property
    def username(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def region_code(self) -> str: ...


@dataclass(frozen=True, slots=True)
class LocalOperator:
    """An actor for the command line and scripts: whoever may open the database is trusted with
    the role given, but still only inside ``region_code``.

    Example::

        >>> LocalOperator("cli:root").role
        'admin'
    """

    username: str
    role: str = "admin"
    region_code: str = NATIONAL
    write_enabled: bool = True


@dataclass(frozen=True, slots=True)
class AttachmentMeta:
    """What is recorded of an inspection's file: name, SHA-256 (hex), size and media type.

    Example::

        >>> AttachmentMeta("meter.jpg", "ab" * 32, 183_204, "image/jpeg").size_bytes
        183204
    """

    file_name: str
    sha256: str
    size_bytes: int
    content_type: str


@dataclass(frozen=True, slots=True)
class Alert:
    """An overdue item: a milestone or a deadline not done, or an inspection not recorded.

    Example::

        >>> alert = Alert(7, "330110", "Yuhang", None, "cut-supply", 21, dt.date(2026, 3, 1), 2)
        >>> alert.label, alert.to_dict()["due_on"]
        ('切断专用供电', '2026-03-01')
    """

    case_id: int
    region_code: str
    title: str
    enterprise: str | None
    kind: str
    """``shutdown``, ``stop-mining``, ``remove-equipment``, ``cut-supply`` or ``inspection``."""
    item_id: int
    """The milestone's or inspection's id."""
    due_on: dt.date
    days_overdue: int

    @property
    def label(self) -> str:
        """The Chinese name of what is overdue."""
        return MILESTONE_LABELS.get(self.kind, "现场核查")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (dates as ISO text)."""
        return {
            "case_id": self.case_id,
            "region_code": self.region_code,
            "title": self.title,
            "enterprise": self.enterprise,
            "kind": self.kind,
            "label": self.label,
            "item_id": self.item_id,
            "due_on": self.due_on.isoformat(),
            "days_overdue": self.days_overdue,
        }


@dataclass(frozen=True, slots=True)
class ClearedExample:
    """A cleared case as training material: what was suspected, why it was wrong, on what.

    Example::

        >>> at = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
        >>> ClearedExample(3, "pow-gpu", "detection", "AI training", at, (11, 12)).evidence_ids
        (11, 12)
    """

    case_id: int
    mining_class: str
    source: str
    reason: str
    cleared_at: dt.datetime
    evidence_ids: tuple[int, ...] = field(default=())


# ---------------------------------------------------------------- small checks


def china_today() -> dt.date:
    """Today's date in China Standard Time."""
    return dt.datetime.now(CHINA_TZ).date()


def _local_date(at: dt.datetime) -> dt.date:
    return at.astimezone(CHINA_TZ).date()


def allowed_transitions(state: str) -> tuple[str, ...]:
    """States reachable in one move from ``state`` (empty for cleared and closed)."""
    return tuple(to for (frm, to) in TRANSITIONS if frm == state)


def roles_into(state: str) -> frozenset[str]:
    """Roles that may move some case into ``state`` (empty when no arrow leads there)."""
    roles: set[str] = set()
    for (_, to), allowed in TRANSITIONS.items():
        if to == state:
            roles |= allowed
    return frozenset(roles)


def _require(actor: Actor, roles: frozenset[str], what: str) -> None:
    if not getattr(actor, "write_enabled", True):
        raise NotPermittedError(f"a read-only token may not {what}")
    if actor.role not in roles:
        raise NotPermittedError(
            f"role {actor.role!r} may not {what} (needs {' or '.join(sorted(roles))})"
        )


def _choice(name: str, value: object, options: Iterable[str]) -> str:
    allowed = tuple(options)
    if not isinstance(value, str) or value not in allowed:
        raise InputError(f"{name} {value!r} is not one of: {', '.join(allowed)}")
    return value


def _text(name: str, value: object, limit: int, *, required: bool = True) -> str:
    if not isinstance(value, str):
        raise InputError(f"{name} must be text")
    cleaned = value.strip()
    if required and not cleaned:
        raise InputError(f"{name} must not be empty")
    if len(cleaned) > limit:
        raise InputError(f"{name} is longer than {limit} characters")
    return cleaned


def _reason(value: object, *, required: bool) -> str:
    return _text("reason", "" if value is None else value, _MAX_REASON, required=required)


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{name} must be a number")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise InputError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{name} must be a whole number >= 0, got {value!r}")
    return value


def _date(name: str, value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        raise InputError(f"{name} is a calendar date: give YYYY-MM-DD, not a time")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise InputError(f"{name} {value!r} is not a date (YYYY-MM-DD)")


def _aware(name: str, value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(f"{name} must carry a time zone, e.g. 2026-03-01T09:30:00+08:00")
    return value.astimezone(dt.UTC)


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# ---------------------------------------------------------------- reading


_Query = TypeVar("_Query", bound=Select[Any])


def _scoped(query: _Query, scope: str) -> _Query:
    prefix = scope_prefix(scope)
    return query.where(Case.region_code.startswith(prefix)) if prefix else query


def get_case(session: Session, scope: str, case_id: int, *, for_update: bool = False) -> Case:
    """The case ``case_id`` if it lies in ``scope``'s subtree, else :class:`CaseNotFoundError`.

    ``for_update`` locks the row on PostgreSQL until the transaction ends (SQLite serialises
    writers anyway; the case's version column catches what slips through).
    """
    query = _scoped(select(Case).where(Case.id == case_id), scope)
    if for_update:
        # Lock, and read the row as it is now rather than as this session last saw it.
        query = query.with_for_update().execution_options(populate_existing=True)
    case = session.scalar(query)
    if case is None:
        raise CaseNotFoundError(f"no case {case_id} in region {scope}")
    return case


def list_cases(
    session: Session,
    scope: str,
    *,
    state: str | None = None,
    source: str | None = None,
    region: str | None = None,
    project_type: str | None = None,
    mining_class: str | None = None,
    tenant_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[Case]]:
    """Cases in ``scope`` matching the filters: the total count and one page, newest first.

    ``region`` narrows to a subtree; a region outside ``scope`` simply matches nothing.
    """
    query = _scoped(select(Case), scope)
    if state is not None:
        query = query.where(Case.state == _choice("state", state, STATES))
    if source is not None:
        query = query.where(Case.source == _choice("source", source, SOURCES))
    if project_type is not None:
        query = query.where(
            Case.project_type == _choice("project type", project_type, PROJECT_TYPES)
        )
    if mining_class is not None:
        query = query.where(Case.mining_class == _choice("class", mining_class, MINING_CLASSES))
    if tenant_id is not None:
        query = query.where(Case.tenant_id == tenant_id)
    if region is not None:
        query = _scoped(query, check_code(region))
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.options(
            selectinload(Case.milestones),
            selectinload(Case.evidence),
            selectinload(Case.transitions),
        )
        .order_by(Case.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return count, list(rows)


def case_snapshot(case: Case) -> dict[str, Any]:
    """The case's own fields as plain JSON (for the audit log and exports)."""
    return {
        "region_code": case.region_code,
        "state": case.state,
        "source": case.source,
        "source_ref": case.source_ref,
        "title": case.title,
        "mining_class": case.mining_class,
        "tenant_id": case.tenant_id,
        "data_centre_id": case.data_centre_id,
        "enterprise": case.enterprise,
        "credit_code": case.credit_code,
        "scale_units": case.scale_units,
        "hashrate_value": case.hashrate_value,
        "hashrate_unit": case.hashrate_unit,
        "power_kw": case.power_kw,
        "annual_kwh": case.annual_kwh,
        "planned_production_date": _iso(case.planned_production_date),
        "project_type": case.project_type,
        "order_ref": case.order_ref,
        "cleared_reason": case.cleared_reason,
    }


# ---------------------------------------------------------------- opening and editing


def _evidence(session: Session, actor: Actor, ids: Iterable[int]) -> list[Evidence]:
    wanted = sorted({_count("evidence id", i) for i in ids})
    if len(wanted) > _MAX_EVIDENCE:
        raise InputError(f"at most {_MAX_EVIDENCE} evidence ids per call")
    if not wanted:
        return []
    rows = session.scalars(select(Evidence).where(Evidence.id.in_(wanted))).all()
    national = actor.region_code == NATIONAL
    visible = {
        row.id: row
        for row in rows
        if (row.region_code is None and national)
        or (row.region_code is not None and within(row.region_code, actor.region_code))
    }
    missing = [i for i in wanted if i not in visible]
    if missing:
        shown = ", ".join(str(i) for i in missing[:20])
        raise InputError(f"no evidence with id {shown} in region {actor.region_code}")
    return [visible[i] for i in wanted]


def _ip_addresses(values: Iterable[object]) -> list[str]:
    out: dict[str, None] = {}
    for value in values:
        if not isinstance(value, str):
            raise InputError("IP addresses must be text")
        try:
            out[str(ipaddress.ip_address(value.strip()))] = None
        except ValueError as exc:
            raise InputError(f"{value!r} is not an IPv4 or IPv6 address") from exc
        if len(out) > _MAX_IPS:
            raise InputError(f"at most {_MAX_IPS} IP addresses per case")
    return list(out)


def _clean_ledger(session: Session, actor: Actor, changes: Mapping[str, object]) -> dict[str, Any]:
    """Check each given ledger field; returns the values to store (``None`` clears one)."""
    unknown = sorted(set(changes) - set(LEDGER_FIELDS))
    if unknown:
        raise InputError(
            f"cannot set {', '.join(unknown)}: the editable fields are {', '.join(LEDGER_FIELDS)}"
        )
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "title":
            clean[name] = _text("title", value, 200)
            continue
        if name == "region_code":
            code = check_code(value if isinstance(value, str) else "")
            if not within(code, actor.region_code):
                raise NotPermittedError(
                    f"region {code} lies outside your region {actor.region_code}"
                )
            clean[name] = code
            continue
        if name == "mining_class":
            clean[name] = _choice("class", value, MINING_CLASSES)
            continue
        if value is None:
            clean[name] = None
        elif name in ("source_ref", "enterprise"):
            clean[name] = _text(name, value, 100 if name == "source_ref" else 200) or None
        elif name == "credit_code":
            clean[name] = check_credit_code(_text("credit code", value, 18).upper())
        elif name == "scale_units":
            clean[name] = _count("scale (units)", value)
        elif name in ("hashrate_value", "power_kw", "annual_kwh"):
            clean[name] = _number(name, value)
        elif name == "hashrate_unit":
            clean[name] = _choice("hashrate unit", value, HASHRATE_UNITS)
        elif name == "planned_production_date":
            clean[name] = _date("planned production date", value)
        elif name == "project_type":
            clean[name] = _choice("project type", value, PROJECT_TYPES)
        elif name == "tenant_id":
            tenant_id = _count("tenant id", value)
            if session.get(Tenant, tenant_id) is None:
                raise InputError(f"no tenant with id {tenant_id}")
            clean[name] = tenant_id
        elif name == "data_centre_id":
            centre = session.get(DataCentre, _count("data centre id", value))
            if centre is None or not within(centre.region_code, actor.region_code):
                raise InputError(f"no data centre with id {value} in region {actor.region_code}")
            clean[name] = centre.id
    return clean


def _check_consistency(values: Mapping[str, Any]) -> None:
    if (values.get("hashrate_value") is None) != (values.get("hashrate_unit") is None):
        raise InputError("give a hashrate with its unit (e.g. 110 and TH/s), or neither")


def open_case(
    session: Session,
    actor: Actor,
    *,
    region_code: str,
    title: str,
    source: str,
    reason: str = "",
    evidence_ids: Iterable[int] = (),
    ip_addresses: Iterable[str] = (),
    ledger: Mapping[str, object] | None = None,
    at: dt.datetime | None = None,
) -> Case:
    """Open a lead in ``region_code`` (inside the actor's region) and audit it.

    A lead from detection must name its evidence; one from an IP list its addresses. ``ledger``
    holds any of :data:`LEDGER_FIELDS` already known (enterprise, power, ...).
    """
    _require(actor, ACTIONS["open"], "open a case")
    source = _choice("source", source, SOURCES)
    fields = _clean_ledger(
        session, actor, {**(ledger or {}), "title": title, "region_code": region_code}
    )
    fields.setdefault("mining_class", "unknown")
    _check_consistency(fields)
    evidence = _evidence(session, actor, evidence_ids)
    addresses = _ip_addresses(ip_addresses)
    if source == "detection" and not evidence:
        raise InputError("a lead from detection must link at least one evidence id")
    if source == "ip-list" and not addresses:
        raise InputError("a lead from an IP list must name at least one IP address")
    reason = _reason(reason, required=False)
    now = dt.datetime.now(dt.UTC) if at is None else _aware("at", at)
    case = Case(
        state="lead",
        source=source,
        ip_addresses=addresses,
        opened_at=now,
        opened_by=actor.username,
        updated_at=now,
        evidence=evidence,
        **fields,
    )
    case.transitions.append(
        CaseTransition(
            from_state=None, to_state="lead", at=now, actor=actor.username, reason=reason
        )
    )
    session.add(case)
    session.flush()
    record(
        session,
        actor.username,
        "case.create",
        "case",
        case.id,
        {
            "after": case_snapshot(case),
            "evidence_ids": [e.id for e in evidence],
            "ip_addresses": len(addresses),
        },
        reason=reason,
    )
    return case


def update_case(
    session: Session,
    actor: Actor,
    case_id: int,
    changes: Mapping[str, object],
    reason: str = "",
) -> Case:
    """Change ledger fields of a case (see :data:`LEDGER_FIELDS`); audited with before/after.

    The project type is fixed once the rectification has started, since the plan follows it.
    """
    _require(actor, ACTIONS["update"], "edit a case")
    case = get_case(session, actor.region_code, case_id, for_update=True)
    clean = _clean_ledger(session, actor, changes)
    if (
        "project_type" in clean
        and clean["project_type"] != case.project_type
        and case.state in ("rectification", "closed")
    ):
        raise CaseConflictError(
            f"case {case.id} is in {case.state}: its project type decided the plan and is fixed"
        )
    before = case_snapshot(case)
    _check_consistency({**before, **clean})
    reason = _reason(reason, required=False)
    changed = {k: v for k, v in clean.items() if getattr(case, k) != v}
    if not changed:
        return case
    for name, value in changed.items():
        setattr(case, name, value)
    case.updated_at = dt.datetime.now(dt.UTC)
    after = case_snapshot(case)
    record(
        session,
        actor.username,
        "case.update",
        "case",
        case.id,
        {
            "before": {k: before[k] for k in changed},
            "after": {k: after[k] for k in changed},
        },
        reason=reason,
    )
    return case


def link_evidence(
    session: Session, actor: Actor, case_id: int, evidence_ids: Iterable[int], reason: str = ""
) -> Case:
    """Add evidence to a case (evidence already linked is left as it is)."""
    _require(actor, ACTIONS["link-evidence"], "link evidence to a case")
    case = get_case(session, actor.region_code, case_id, for_update=True)
    evidence = _evidence(session, actor, evidence_ids)
    reason = _reason(reason, required=False)
    known = {e.id for e in case.evidence}
    added = [e for e in evidence if e.id not in known]
    if not added:
        return case
    case.evidence.extend(added)
    case.updated_at = dt.datetime.now(dt.UTC)
    record(
        session,
        actor.username,
        "case.link-evidence",
        "case",
        case.id,
        {"added": [e.id for e in added]},
        reason=reason,
    )
    return case


# ---------------------------------------------------------------- inspections


def _inspector(session: Session, actor: Actor, case: Case, username: object) -> User:
    name = _text("inspector", username, 150)
    user = session.scalar(select(User).where(User.username == name))
    if user is None or not within(user.region_code, actor.region_code):
        raise InputError(f"no user {name!r} in region {actor.region_code}")
    if user.role != "inspector":
        raise InputError(f"user {name!r} is a {user.role}, not an inspector")
    if not within(case.region_code, user.region_code):
        raise InputError(
            f"inspector {name!r} works in region {user.region_code} and cannot reach case "
            f"{case.id} in region {case.region_code}"
        )
    return user


def _checklist(items: object) -> list[dict[str, Any]]:
    if not isinstance(items, list | tuple):
        raise InputError("a checklist is a list of items")
    if len(items) > _MAX_CHECKLIST:
        raise InputError(f"a checklist has at most {_MAX_CHECKLIST} items")
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for entry in items:
        text: object
        done: object
        if isinstance(entry, str):
            text, done = entry, False
        elif isinstance(entry, Mapping):
            text, done = entry.get("item"), entry.get("done", False)
            if set(entry) - {"item", "done"}:
                raise InputError("a checklist item has only 'item' and 'done'")
        else:
            raise InputError("a checklist item is text or {'item': ..., 'done': ...}")
        label = _text("checklist item", text, 500)
        if not isinstance(done, bool):
            raise InputError(f"'done' of checklist item {label!r} must be true or false")
        if label in seen:
            raise InputError(f"checklist item {label!r} appears twice")
        seen.add(label)
        out.append({"item": label, "done": done})
    return out


def _attachments(items: Iterable[AttachmentMeta]) -> list[AttachmentMeta]:
    out = list(items)
    if len(out) > _MAX_ATTACHMENTS:
        raise InputError(f"at most {_MAX_ATTACHMENTS} attachments per inspection")
    for item in out:
        name = _text("attachment file name", item.file_name, 255)
        if "/" in name or "\\" in name or name in (".", ".."):
            raise InputError(f"attachment file name {name!r} must be a bare name, not a path")
        if not _SHA256.fullmatch(item.sha256):
            raise InputError(f"attachment {name!r}: sha256 must be 64 lower-case hex digits")
        _count(f"attachment {name!r} size", item.size_bytes)
        if len(item.content_type) > 100 or not _CONTENT_TYPE.fullmatch(item.content_type):
            raise InputError(f"attachment {name!r}: content type like image/jpeg expected")
    return out


def _new_inspection(
    session: Session,
    actor: Actor,
    case: Case,
    inspector: object,
    scheduled_on: object,
    checklist: object | None,
    now: dt.datetime,
) -> Inspection:
    user = _inspector(session, actor, case, inspector)
    return Inspection(
        inspector=user,
        scheduled_on=_date("scheduled date", scheduled_on),
        checklist=_checklist(list(DEFAULT_CHECKLIST) if checklist is None else checklist),
        notes="",
        created_at=now,
        created_by=actor.username,
        attachments=[],
    )


def _inspection_record(inspection: Inspection) -> dict[str, Any]:
    return {
        "inspector": inspection.inspector.username,
        "scheduled_on": _iso(inspection.scheduled_on),
        "checklist": inspection.checklist,
        "result": inspection.result,
        "notes": inspection.notes,
        "inspected_at": _iso(inspection.inspected_at),
        "attachments": [
            {
                "file_name": a.file_name,
                "sha256": a.sha256,
                "size_bytes": a.size_bytes,
                "content_type": a.content_type,
            }
            for a in inspection.attachments
        ],
    }


def schedule_inspection(
    session: Session,
    actor: Actor,
    case_id: int,
    inspector: str,
    scheduled_on: dt.date | str,
    checklist: Sequence[object] | None = None,
    reason: str = "",
) -> Inspection:
    """Assign a further inspection to a case already in inspection (a second visit)."""
    _require(actor, ACTIONS["schedule-inspection"], "schedule an inspection")
    case = get_case(session, actor.region_code, case_id, for_update=True)
    if case.state != "inspection":
        raise CaseConflictError(
            f"case {case.id} is in {case.state}: inspections are scheduled in the inspection "
            "state (move it there from verification with an inspector and a date)"
        )
    now = dt.datetime.now(dt.UTC)
    inspection = _new_inspection(session, actor, case, inspector, scheduled_on, checklist, now)
    reason = _reason(reason, required=False)
    case.inspections.append(inspection)
    case.updated_at = now
    session.flush()
    record(
        session,
        actor.username,
        "inspection.create",
        "inspection",
        inspection.id,
        {"case_id": case.id, "after": _inspection_record(inspection)},
        reason=reason,
    )
    return inspection


def _case_inspection(case: Case, inspection_id: int) -> Inspection:
    for inspection in case.inspections:
        if inspection.id == inspection_id:
            return inspection
    raise CaseNotFoundError(f"case {case.id} has no inspection {inspection_id}")


def record_inspection(
    session: Session,
    actor: Actor,
    case_id: int,
    inspection_id: int,
    *,
    checklist: Sequence[object] | None = None,
    result: str | None = None,
    notes: str | None = None,
    attachments: Iterable[AttachmentMeta] = (),
    inspected_at: dt.datetime | None = None,
    reason: str = "",
) -> Inspection:
    """Record what an inspection found: checklist, result, notes, attachment metadata.

    Only the assigned inspector or an admin may, and only while the case is in inspection.
    Attachments are added to those already recorded; one with a SHA-256 already there is
    skipped when it describes the same file, refused when it does not.
    """
    _require(actor, ACTIONS["record-inspection"], "record an inspection")
    case = get_case(session, actor.region_code, case_id, for_update=True)
    inspection = _case_inspection(case, inspection_id)
    if case.state != "inspection":
        raise CaseConflictError(
            f"case {case.id} is in {case.state}: its inspections can no longer be changed"
        )
    if actor.role != "admin" and inspection.inspector.username != actor.username:
        raise NotPermittedError(
            f"only the assigned inspector ({inspection.inspector.username}) or an admin may "
            "record this inspection"
        )
    new_checklist = None if checklist is None else _checklist(checklist)
    new_result = None if result is None else _choice("result", result, INSPECTION_RESULTS)
    new_notes = None if notes is None else _text("notes", notes, 20_000, required=False)
    when = None if inspected_at is None else _aware("inspected_at", inspected_at)
    now = dt.datetime.now(dt.UTC)
    if when is not None and when > now + _CLOCK_SKEW:
        raise InputError("inspected_at lies in the future")
    known = {
        a.sha256: AttachmentMeta(a.file_name, a.sha256, a.size_bytes, a.content_type)
        for a in inspection.attachments
    }
    fresh: list[AttachmentMeta] = []
    for item in _attachments(attachments):
        earlier = known.get(item.sha256)
        if earlier is None:
            fresh.append(item)
            known[item.sha256] = item
        elif earlier != item:
            raise InputError(
                f"attachment {item.file_name!r} has the SHA-256 of {earlier.file_name!r} "
                "already recorded with other metadata"
            )
    reason = _reason(reason, required=False)
    before = _inspection_record(inspection)
    if new_checklist is not None:
        inspection.checklist = new_checklist
    if new_result is not None:
        inspection.result = new_result
        if inspection.inspected_at is None and when is None:
            inspection.inspected_at = now
    if when is not None:
        inspection.inspected_at = when
    if new_notes is not None:
        inspection.notes = new_notes
    inspection.attachments.extend(
        InspectionAttachment(
            file_name=item.file_name,
            sha256=item.sha256,
            size_bytes=item.size_bytes,
            content_type=item.content_type,
        )
        for item in fresh
    )
    after = _inspection_record(inspection)
    if after == before:
        return inspection
    case.updated_at = now
    session.flush()
    record(
        session,
        actor.username,
        "inspection.update",
        "inspection",
        inspection.id,
        {
            "case_id": case.id,
            "before": {k: v for k, v in before.items() if after[k] != v},
            "after": {k: v for k, v in after.items() if before[k] != v},
        },
        reason=reason,
    )
    return inspection


# ---------------------------------------------------------------- transitions


def _transition_time(case: Case, at: dt.datetime | None) -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    if at is None:
        return now
    when = _aware("at", at)
    if when > now + _CLOCK_SKEW:
        raise InputError("a transition cannot be dated in the future")
    last = max((t.at for t in case.transitions), default=case.opened_at)
    if when < last:
        raise InputError(
            f"a transition cannot be dated before the case's last change ({last.isoformat()})"
        )
    return when


def _plan(
    case: Case,
    start: dt.date,
    deadline: dt.date | str | None,
    plan: Mapping[str, dt.date | str] | None,
) -> list[Milestone]:
    if case.project_type is None:
        raise CaseConflictError(
            f"case {case.id} has no project type: set it to new (增量) or existing (存量) first"
        )
    if case.project_type == "new":
        if plan:
            raise InputError("a new (增量) project gets a shutdown deadline, not an exit plan")
        if deadline is None:
            raise InputError("a new (增量) project needs a shutdown deadline (a date)")
        dues = {"shutdown": _date("deadline", deadline)}
    else:
        if deadline is not None:
            raise InputError(
                "an existing (存量) project gets an exit plan with a date per step, not one "
                "deadline"
            )
        given = dict(plan or {})
        if set(given) != set(EXIT_PLAN_STEPS):
            raise InputError(
                "an existing (存量) project needs an exit plan with a due date for each of: "
                + ", ".join(EXIT_PLAN_STEPS)
            )
        dues = {step: _date(f"{step} due date", given[step]) for step in EXIT_PLAN_STEPS}
    for kind, due in dues.items():
        if due < start:
            raise InputError(
                f"{kind} due date {due.isoformat()} lies before the case was confirmed "
                f"({start.isoformat()})"
            )
    return [Milestone(kind=kind, due_on=due, note="") for kind, due in dues.items()]


def transition(
    session: Session,
    actor: Actor,
    case_id: int,
    to: str,
    reason: str,
    *,
    inspector: str | None = None,
    scheduled_on: dt.date | str | None = None,
    checklist: Sequence[object] | None = None,
    deadline: dt.date | str | None = None,
    plan: Mapping[str, dt.date | str] | None = None,
    order_ref: str | None = None,
    at: dt.datetime | None = None,
) -> Case:
    """Move a case to state ``to``, checking the arrow, the role and the move's conditions.

    What each move needs besides a ``reason``:

    * to ``inspection``: ``inspector`` (an inspector user who can reach the case) and
      ``scheduled_on``; ``checklist`` defaults to :data:`DEFAULT_CHECKLIST`;
    * to ``confirmed``: the latest recorded inspection found mining;
    * to ``cleared``: only the reason, kept as ``cleared_reason``;
    * to ``rectification``: the project type set; ``deadline`` for a new project, ``plan``
      (a due date for each of :data:`EXIT_PLAN_STEPS`) for an existing one; ``order_ref``;
    * to ``closed``: every milestone done.

    ``at`` backdates the move (paper records entered later); by default it is now.
    """
    target = _choice("state", to, STATES)
    case = get_case(session, actor.region_code, case_id, for_update=True)
    key = (case.state, target)
    if key not in TRANSITIONS:
        onward = allowed_transitions(case.state)
        raise CaseConflictError(
            f"case {case.id} is {case.state}: it cannot go to {target}"
            + (f" (it can go to {', '.join(onward)})" if onward else " (it is finished)")
        )
    _require(actor, TRANSITIONS[key], f"move a case from {case.state} to {target}")
    reason = _reason(reason, required=True)
    when = _transition_time(case, at)
    extra: dict[str, Any] = {}
    inspection: Inspection | None = None
    milestones: list[Milestone] = []
    if target == "inspection":
        if inspector is None or scheduled_on is None:
            raise InputError("an inspection needs an inspector and a scheduled date")
        inspection = _new_inspection(session, actor, case, inspector, scheduled_on, checklist, when)
    elif target == "confirmed":
        recorded = [i for i in case.inspections if i.result is not None]
        if not recorded or recorded[-1].result != "mining":
            found = recorded[-1].result if recorded else "no result recorded"
            raise CaseConflictError(
                f"case {case.id} cannot be confirmed: its latest inspection shows {found}, "
                "and confirmation needs one that found mining"
            )
    elif target == "rectification":
        start = _local_date(case.confirmed_at or when)
        milestones = _plan(case, start, deadline, plan)
        if order_ref is not None:
            extra["order_ref"] = _text("order reference", order_ref, 100) or None
    elif target == "closed":
        pending = [m.kind for m in case.milestones if m.done_on is None]
        if pending or not case.milestones:
            raise CaseConflictError(
                f"case {case.id} cannot be closed: not done yet: {', '.join(pending) or 'no plan'}"
            )
    # Everything is checked; from here on the case changes.
    previous = case.state
    case.state = target
    case.updated_at = when
    if target == "confirmed":
        case.confirmed_at = when
    elif target == "cleared":
        case.cleared_at = when
        case.cleared_reason = reason
    elif target == "closed":
        case.closed_at = when
    elif target == "rectification" and "order_ref" in extra:
        case.order_ref = extra["order_ref"]
    if inspection is not None:
        case.inspections.append(inspection)
    case.milestones.extend(milestones)
    case.transitions.append(
        CaseTransition(
            from_state=previous, to_state=target, at=when, actor=actor.username, reason=reason
        )
    )
    session.flush()
    data: dict[str, Any] = {"from": previous, "to": target, "at": when.isoformat()}
    if inspection is not None:
        data["inspection"] = {"id": inspection.id, **_inspection_record(inspection)}
    if milestones:
        data["milestones"] = {m.kind: m.due_on.isoformat() for m in milestones}
        data["project_type"] = case.project_type
    if target == "cleared":
        data["evidence_ids"] = [e.id for e in case.evidence]
    data.update(extra)
    record(session, actor.username, "case.transition", "case", case.id, data, reason=reason)
    return case


# ---------------------------------------------------------------- milestones and alerts


def update_milestone(
    session: Session,
    actor: Actor,
    case_id: int,
    milestone_id: int,
    changes: Mapping[str, object],
    reason: str = "",
    *,
    today: dt.date | None = None,
) -> Milestone:
    """Mark a milestone done (``done_on``, ``None`` to undo), add a ``note``, or move its
    ``due_on`` (an extension: admins only). Only while the case is in rectification.

    A done date cannot lie in the future (``today``, default China's today) nor before the
    confirmation.
    """
    unknown = sorted(set(changes) - {"done_on", "due_on", "note"})
    if unknown or not changes:
        raise InputError("a milestone change sets done_on, due_on and/or note")
    roles = ACTIONS["reschedule-milestone" if "due_on" in changes else "complete-milestone"]
    _require(
        actor, roles, "reschedule a milestone" if "due_on" in changes else "update a milestone"
    )
    case = get_case(session, actor.region_code, case_id, for_update=True)
    milestone = next((m for m in case.milestones if m.id == milestone_id), None)
    if milestone is None:
        raise CaseNotFoundError(f"case {case.id} has no milestone {milestone_id}")
    if case.state != "rectification":
        raise CaseConflictError(
            f"case {case.id} is in {case.state}: milestones change only during rectification"
        )
    today = china_today() if today is None else today
    start = _local_date(case.confirmed_at or case.opened_at)
    clean: dict[str, Any] = {}
    if "done_on" in changes:
        done = changes["done_on"]
        if done is not None:
            done = _date("done date", done)
            if done > today:
                raise InputError(f"done date {done.isoformat()} lies in the future")
            if done < start:
                raise InputError(f"done date {done.isoformat()} lies before the confirmation")
        clean["done_on"] = done
    if "due_on" in changes:
        due = _date("due date", changes["due_on"])
        if due < start:
            raise InputError(f"due date {due.isoformat()} lies before the confirmation")
        clean["due_on"] = due
    if "note" in changes:
        clean["note"] = _text("note", changes["note"] or "", 2000, required=False)
    reason = _reason(reason, required="due_on" in clean)
    changed = {k: v for k, v in clean.items() if getattr(milestone, k) != v}
    if not changed:
        return milestone
    before = {k: getattr(milestone, k) for k in changed}
    for name, value in changed.items():
        setattr(milestone, name, value)
    case.updated_at = dt.datetime.now(dt.UTC)
    session.flush()

    def plain(values: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in values.items()}

    record(
        session,
        actor.username,
        "milestone.update",
        "case_milestone",
        milestone.id,
        {
            "case_id": case.id,
            "kind": milestone.kind,
            "before": plain(before),
            "after": plain(changed),
        },
        reason=reason,
    )
    return milestone


def _overdue_items(today: dt.date, prefix: str) -> Subquery:
    """Every overdue item in ``prefix``'s subtree as one row set (milestones and inspections),
    so counting, ordering and paging all happen in the database."""
    case_columns = (Case.id.label("case_id"), Case.region_code, Case.title, Case.enterprise)
    milestones = (
        select(
            *case_columns,
            Milestone.kind.label("kind"),
            Milestone.id.label("item_id"),
            Milestone.due_on.label("due_on"),
        )
        .join(Case, Milestone.case_id == Case.id)
        .where(_milestone_overdue(today, prefix))
    )
    inspections = (
        select(
            *case_columns,
            literal("inspection", String).label("kind"),
            Inspection.id.label("item_id"),
            Inspection.scheduled_on.label("due_on"),
        )
        .join(Case, Inspection.case_id == Case.id)
        .where(_inspection_overdue(today, prefix))
    )
    return union_all(milestones, inspections).subquery("overdue_items")


def overdue(
    session: Session,
    today: dt.date,
    scope: str,
    *,
    limit: int | None = None,
    offset: int = 0,
) -> list[Alert]:
    """Everything overdue on ``today`` in ``scope``'s subtree, most overdue first; one page of
    it when ``limit`` is given (the total is :func:`overdue_count`).

    Overdue means: a milestone of a case in rectification not done and due before ``today``
    (a shutdown deadline is such a milestone), or an inspection of a case still in inspection
    with no result and scheduled before ``today``.
    """
    # Ordered and paged in SQL, as plain columns: a province can have tens of thousands of
    # overdue items, and a page of 50 should not cost building and sorting all of them.
    items = _overdue_items(today, scope_prefix(scope))
    query = (
        select(items)
        .order_by(items.c.due_on, items.c.case_id, items.c.item_id, items.c.kind)
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        Alert(
            case_id=case_id,
            region_code=region_code,
            title=title,
            enterprise=enterprise,
            kind=kind,
            item_id=item_id,
            due_on=due_on,
            days_overdue=(today - due_on).days,
        )
        for case_id, region_code, title, enterprise, kind, item_id, due_on in session.execute(query)
    ]


def overdue_count(session: Session, today: dt.date, scope: str) -> int:
    """How many items :func:`overdue` would list, counted in the database."""
    items = _overdue_items(today, scope_prefix(scope))
    return int(session.scalar(select(func.count()).select_from(items)) or 0)


def _milestone_overdue(today: dt.date, prefix: str) -> ColumnElement[bool]:
    return and_(
        Case.state == "rectification",
        Case.region_code.startswith(prefix),
        Milestone.done_on.is_(None),
        Milestone.due_on < today,
    )


def _inspection_overdue(today: dt.date, prefix: str) -> ColumnElement[bool]:
    return and_(
        Case.state == "inspection",
        Case.region_code.startswith(prefix),
        Inspection.result.is_(None),
        Inspection.scheduled_on < today,
    )


def overdue_cases(session: Session, today: dt.date, scope: str) -> list[tuple[int, str]]:
    """(case id, region code) of every case in ``scope`` with something overdue on ``today``,
    by the same rule as :func:`overdue`, de-duplicated in the database (for counting)."""
    prefix = scope_prefix(scope)
    by_milestone = (
        select(Case.id, Case.region_code)
        .join(Milestone, Milestone.case_id == Case.id)
        .where(_milestone_overdue(today, prefix))
    )
    by_inspection = (
        select(Case.id, Case.region_code)
        .join(Inspection, Inspection.case_id == Case.id)
        .where(_inspection_overdue(today, prefix))
    )
    rows = session.execute(union(by_milestone, by_inspection)).all()
    return [(int(case_id), str(region)) for case_id, region in rows]


def cleared_examples(session: Session, scope: str) -> list[ClearedExample]:
    """Cleared cases in ``scope`` with their reasons and evidence, oldest first: the false
    alarms a detector should learn not to raise again."""
    rows = session.scalars(
        _scoped(select(Case), scope)
        .where(Case.state == "cleared")
        .options(selectinload(Case.evidence))
        .order_by(Case.cleared_at, Case.id)
    ).all()
    return [
        ClearedExample(
            case_id=case.id,
            mining_class=case.mining_class,
            source=case.source,
            reason=case.cleared_reason or "",
            cleared_at=case.cleared_at or case.updated_at,
            evidence_ids=tuple(e.id for e in case.evidence),
        )
        for case in rows
    ]
