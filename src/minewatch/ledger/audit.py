"""The audit log: every change (who, when, what, why) as an append-only, hash-chained entry.

Each entry carries ``prev_hash``, the hash of the entry before it, and its own ``hash``: SHA-256
over a canonical serialisation of its fields and ``prev_hash`` (JSON with sorted keys and fixed
separators, UTF-8, timestamps as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``). Entries are numbered 1, 2, 3, ...
without gaps and the number is hashed too. So an edited entry no longer matches its hash, a
deleted one leaves a gap and a broken link, and a reordered pair breaks both; :func:`verify` finds
each of them even when the database triggers that refuse UPDATE and DELETE were dropped first.

What a chain cannot show on its own: the *newest* entries cut off, or the whole log rewritten and
re-hashed from some point on. Against both, note the head (id and hash) that :func:`verify`
reports somewhere the database's administrators cannot write (the weekly report, a ticket) and
pass it back as ``anchor``; the entry must still be there with that hash.

:func:`record` writes inside the caller's transaction, so a change and its audit entry are
committed or rolled back together. Writers are serialised before the last entry is read, so two
of them never chain onto the same predecessor: PostgreSQL takes a transaction-scoped advisory
lock; SQLite takes its database write lock (what ``BEGIN IMMEDIATE`` would take) with a write
statement that matches no row. Elsewhere the explicit, gap-free ids still make a fork impossible:
the second writer fails on the primary key instead.

Example::

    >>> from minewatch.ledger.db import open_engine, session_factory, upgrade
    >>> engine = open_engine("sqlite://"); upgrade(engine)
    >>> with session_factory(engine)() as session:
    ...     entry = record(session, "alice", "token.create", "api_token", 7,
    ...                    {"after": {"key": "0123456789ab"}}, reason="agent for site 3")
    ...     session.commit()
    ...     verify(session).ok
    True
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from minewatch.errors import InputError
from minewatch.ledger.models import AuditEntry

__all__ = [
    "GENESIS_HASH",
    "AuditProblem",
    "AuditReport",
    "entry_hash",
    "local_actor",
    "parse_anchor",
    "record",
    "verify",
]

GENESIS_HASH = "0" * 64
"""``prev_hash`` of the first entry."""

_ADVISORY_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"minewatch.audit_log").digest()[:8], "big", signed=True
)
"""PostgreSQL advisory lock id of the audit chain (a fixed 64-bit number)."""

ProblemKind = Literal["edited", "missing", "unlinked", "anchor"]


@dataclass(frozen=True, slots=True)
class AuditProblem:
    """One place where the chain is broken: which entry, what kind of damage, in words."""

    entry_id: int
    kind: ProblemKind
    detail: str

    def __str__(self) -> str:
        return f"entry {self.entry_id}: {self.kind}: {self.detail}"


@dataclass(slots=True)
class AuditReport:
    """Result of :func:`verify`: how many entries were checked, the head, and every problem.

    Example::

        >>> AuditReport(checked=0).ok
        True
    """

    checked: int
    head_id: int | None = None
    head_hash: str | None = None
    problems: list[AuditProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the chain is intact (no problem found)."""
        return not self.problems

    @property
    def first_problem(self) -> AuditProblem | None:
        """The earliest broken entry, where a look should start."""
        return self.problems[0] if self.problems else None


def local_actor() -> str:
    """Actor name for changes made from the command line: ``cli:<operating-system user>``."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (some containers)
        user = "unknown"
    return f"cli:{user}"


def _timestamp(at: dt.datetime) -> str:
    if at.tzinfo is None:
        raise InputError("audit timestamps must carry a time zone")
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical_json(value: Any) -> str:
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise InputError(f"audit data must be plain JSON (no NaN, no objects): {exc}") from exc


def entry_hash(
    *,
    entry_id: int,
    at: dt.datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | None,
    reason: str,
    data: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of an entry's canonical serialisation, chained onto ``prev_hash``."""
    payload = {
        "id": entry_id,
        "at": _timestamp(at),
        "actor": actor,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "reason": reason,
        "data": data,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(_canonical_json(payload).encode("utf-8")).hexdigest()


def _hash_of(entry: AuditEntry) -> str:
    return entry_hash(
        entry_id=entry.id,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        object_type=entry.object_type,
        object_id=entry.object_id,
        reason=entry.reason,
        data=entry.data,
        prev_hash=entry.prev_hash,
    )


def _serialise_writers(session: Session) -> None:
    """Hold the audit chain for the rest of the caller's transaction (see the module notes)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
    elif dialect == "sqlite":
        # SQLite has no lock statement usable inside a transaction. The Python driver opens the
        # transaction at the first write, and a write statement takes the database write lock
        # whether or not it matches a row (waiting out other writers under busy_timeout); the
        # append-only triggers fire per row, so none fires here. From here until commit no other
        # writer can append, so the last entry read next is still the last one when we insert.
        session.execute(text("UPDATE audit_log SET id = id WHERE 0 = 1"))


def _check_label(name: str, value: str, limit: int) -> str:
    if not value or not value.strip() or len(value) > limit:
        raise InputError(f"audit {name} must be 1 to {limit} characters, got {value!r}")
    return value


def record(
    session: Session,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int | None,
    data: Mapping[str, Any] | None,
    reason: str = "",
) -> AuditEntry:
    """Append one entry to the audit log inside the caller's open transaction.

    The caller commits: the change and its entry then land together, or neither does on rollback.
    ``data`` is the change (``{"before": ..., "after": ...}``); it must be plain JSON, and it is
    stored exactly as it was hashed. Never put secrets in it: the log is read by auditors.
    """
    _check_label("actor", actor, 150)
    _check_label("action", action, 64)
    _check_label("object type", object_type, 64)
    object_key = None if object_id is None else str(object_id)
    if object_key is not None and len(object_key) > 64:
        raise InputError("audit object id must be at most 64 characters")
    normalised: dict[str, Any] = json.loads(_canonical_json(dict(data or {})))
    _serialise_writers(session)
    last = session.execute(
        select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    entry_id, prev_hash = (1, GENESIS_HASH) if last is None else (last.id + 1, last.hash)
    # Microseconds are what both SQLite and PostgreSQL keep, so the value hashed is the value read.
    at = dt.datetime.now(dt.UTC)
    entry = AuditEntry(
        id=entry_id,
        at=at,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_key,
        reason=reason,
        data=normalised,
        prev_hash=prev_hash,
    )
    entry.hash = _hash_of(entry)
    session.add(entry)
    session.flush()
    return entry


def parse_anchor(value: str) -> tuple[int, str]:
    """Read an anchor written as ``ID:HASH`` (as ``minewatch audit verify`` prints the head)."""
    entry_id, sep, digest = value.strip().partition(":")
    digest = digest.lower()
    if (
        not sep
        or not entry_id.isdigit()
        or len(digest) != 64
        or any(c not in "0123456789abcdef" for c in digest)
    ):
        raise InputError(f"anchor {value!r} is not ID:HASH (an entry number, a 64-hex SHA-256)")
    return int(entry_id), digest


def verify(session: Session, *, anchor: tuple[int, str] | None = None) -> AuditReport:
    """Walk the chain in id order and report every edited, missing or out-of-place entry.

    ``anchor`` is an ``(id, hash)`` noted earlier outside the database; the entry must still be
    there with that hash, which also catches entries cut off the end and a re-hashed rewrite.
    """
    report = AuditReport(checked=0)
    expected_id, expected_prev = 1, GENESIS_HASH
    previous_id: int | None = None
    anchor_seen = False
    rows = session.scalars(
        select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=1000)
    )
    for entry in rows:
        report.checked += 1
        if entry.id != expected_id:
            gap = (
                f"entry {expected_id} is missing"
                if entry.id == expected_id + 1
                else f"entries {expected_id} to {entry.id - 1} are missing"
            )
            report.problems.append(AuditProblem(entry.id, "missing", f"{gap} (deleted?)"))
        if entry.prev_hash != expected_prev:
            before = "the start of the log" if previous_id is None else f"entry {previous_id}"
            report.problems.append(
                AuditProblem(
                    entry.id,
                    "unlinked",
                    f"does not chain onto {before}: an entry was deleted, inserted, re-hashed "
                    "or moved",
                )
            )
        try:
            recomputed = _hash_of(entry)
        except InputError as exc:
            recomputed = f"unhashable ({exc})"
        if recomputed != entry.hash:
            report.problems.append(
                AuditProblem(entry.id, "edited", "content does not match its hash (altered)")
            )
        if anchor is not None and entry.id == anchor[0]:
            anchor_seen = True
            if entry.hash != anchor[1]:
                report.problems.append(
                    AuditProblem(entry.id, "anchor", "hash differs from the anchor noted earlier")
                )
        expected_id, expected_prev, previous_id = entry.id + 1, entry.hash, entry.id
        report.head_id, report.head_hash = entry.id, entry.hash
        session.expunge(entry)  # keep memory flat on long logs
    if anchor is not None and not anchor_seen:
        report.problems.append(
            AuditProblem(anchor[0], "anchor", "the anchored entry is gone (log cut short?)")
        )
    return report
