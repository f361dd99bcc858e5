"""Evidence in: detector output read, checked, attributed and stored once.

Three detectors feed the ledger, each in the format it already writes:

* network findings, JSON lines (``minewatch scan -f jsonl``) or a JSON array (``-f json``);
* power screening results, CSV (``minewatch power screen --out``; its ``-inspect.csv`` list
  with bilingual headers is read too). A ``normal`` verdict is kept only for a registered
  power account — it is the meter's word *against* mining, which the assessment weighs when
  another detector accuses the same tenant — and counted as skipped otherwise (a province's
  meters are millions; unregistered normal accounts would only fill the table);
* host-agent findings, JSON lines (``minewatch agent scan -f jsonl``) or the agent's report
  files (one JSON object with ``hostname``, ``scanned_at`` and ``findings``). Plain findings do
  not name their host, so give it (``hostname=``); a finding without one is refused, since two
  hosts reporting the same process would otherwise be taken for one.

The kind is recognised per record (a CSV is a power result; a JSON record with ``client_ip`` is a
network finding, one with ``entity`` a host finding) unless ``kind`` forces one.

*Idempotent.* Each record's ``fingerprint`` is the SHA-256 of its canonical JSON (keys sorted,
no spaces, UTF-8). The fingerprint column is unique and the insert skips existing fingerprints
(``ON CONFLICT DO NOTHING``), so the same file ingested twice, or by two processes at once, is
stored once.

*All or nothing.* Every file is parsed and checked before anything is written; the first bad
record stops the ingest with ``file:line: what is wrong``.

*Fast in bulk.* The registry is loaded once into an :class:`~minewatch.ledger.attribution.
Attributor`, records are attributed in memory (each distinct subject once), and rows go in with
multi-row inserts: a handful of statements per thousand records, never one query per record.

Example::

    >>> from minewatch.ledger.db import open_engine, session_factory, upgrade
    >>> engine = open_engine("sqlite://"); upgrade(engine)
    >>> line = ('{"verdict":"mining","client_ip":"10.11.16.25","protocol":"stratum-v1",'
    ...         '"coin":"btc","confidence":0.99,"first_seen":"2026-01-01T00:00:00Z",'
    ...         '"last_seen":"2026-01-01T01:00:00Z","detector":"net"}')
    >>> parsed = parse_evidence(line, "findings.jsonl")
    >>> with session_factory(engine)() as session:
    ...     first = store_evidence(session, parsed.records)
    ...     again = store_evidence(session, parsed.records)
    >>> first.added, first.unattributed, again.added, again.duplicates
    (1, 1, 0, 1)
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, and_, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from minewatch.errors import InputError
from minewatch.findings import Verdict
from minewatch.ledger.attribution import Attribution, Attributor, parse_address
from minewatch.ledger.regions import check_code
from minewatch.ledger.registry_models import Evidence
from minewatch.power.result_columns import RESULT_COLUMNS

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "DETECTORS",
    "EvidenceError",
    "EvidenceRecord",
    "IngestSummary",
    "ParsedEvidence",
    "fingerprint",
    "ingest_files",
    "parse_evidence",
    "read_evidence",
    "reattribute",
    "store_evidence",
    "unattributed_evidence",
]

DETECTORS = ("net", "power", "host")
"""Detector ids, also the values ``kind=`` accepts."""

_VERDICTS = frozenset(str(v) for v in Verdict)
_POWER_VERDICTS = frozenset({"mining", "suspect", "normal"})
_INSERT_BATCH = 5000


class EvidenceError(InputError):
    """An evidence file that cannot be ingested; ``where`` is ``file:line`` (or the file)."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


def fingerprint(raw: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``raw``: sorted keys, no spaces, UTF-8."""
    text = json.dumps(
        raw, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class EvidenceRecord:
    """One finding, checked and normalised, ready to attribute and store."""

    detector: str
    verdict: str
    kind: str
    coin: str | None
    confidence: float
    entity: str
    subject: str | None
    """What attribution looks up: IP address, power account id, or hostname."""
    first_seen: dt.datetime | None
    last_seen: dt.datetime | None
    raw: dict[str, Any]
    source: str
    region_hint: str | None = None
    """A region the detector itself reported (power results carry the account's region); used
    only when attribution finds no data centre."""
    fingerprint: str = field(init=False)

    def __post_init__(self) -> None:
        self.fingerprint = fingerprint(self.raw)


@dataclass(slots=True)
class ParsedEvidence:
    """The records read from one or more inputs."""

    records: list[EvidenceRecord] = field(default_factory=list)

    def extend(self, other: ParsedEvidence) -> None:
        self.records.extend(other.records)


@dataclass(slots=True)
class IngestSummary:
    """What an ingest did. ``attributed + unattributed == added``."""

    added: int = 0
    duplicates: int = 0
    """Records already stored (same fingerprint), including repeats inside the input."""
    attributed: int = 0
    unattributed: int = 0
    skipped: int = 0

    def line(self) -> str:
        """One line for people."""
        return (
            f"evidence: {self.added} added ({self.attributed} attributed, {self.unattributed} "
            f"unattributed), {self.duplicates} duplicate(s) already stored, {self.skipped} "
            "skipped (normal power verdicts of unregistered accounts)"
        )


# ------------------------------------------------------------------------------------ parsing


def _time(value: Any, name: str) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be an ISO-8601 time string")
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not an ISO-8601 time") from None
    if stamp.tzinfo is None:
        raise ValueError(f"{name} {value!r} has no time zone")
    return stamp


def _confidence(value: Any, name: str = "confidence") -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number between 0 and 1")
    number = float(value)
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise ValueError(f"{name} {value!r} must lie between 0 and 1")
    return number


def _string(record: Mapping[str, Any], key: str, limit: int) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key!r} must be a non-empty string")
    if len(value) > limit:
        raise ValueError(f"{key!r} is longer than {limit} characters")
    return value


def _coin(record: Mapping[str, Any]) -> str | None:
    coin = record.get("coin")
    if coin is None:
        return None
    if not isinstance(coin, str) or len(coin) > 12:
        raise ValueError("'coin' must be null or a short string (ticker)")
    return coin or None


def _verdict(record: Mapping[str, Any]) -> str:
    verdict = record.get("verdict")
    if verdict not in _VERDICTS:
        raise ValueError(f"verdict {verdict!r} is not one of {', '.join(sorted(_VERDICTS))}")
    return str(verdict)


def _net(record: dict[str, Any], source: str) -> EvidenceRecord:
    client = _string(record, "client_ip", 64)
    try:
        address = str(parse_address(client))
    except ValueError:
        raise ValueError(f"client_ip {client!r} is not an IP address") from None
    return EvidenceRecord(
        detector="net",
        verdict=_verdict(record),
        kind=_string(record, "protocol", 40),
        coin=_coin(record),
        confidence=_confidence(record.get("confidence")),
        entity=client,
        subject=address,
        first_seen=_time(record.get("first_seen"), "first_seen"),
        last_seen=_time(record.get("last_seen"), "last_seen"),
        raw=record,
        source=source,
    )


def _host(
    record: dict[str, Any], source: str, hostname: str | None, scanned_at: dt.datetime | None
) -> EvidenceRecord:
    own = record.get("hostname")
    if own is not None and not isinstance(own, str):
        raise ValueError("'hostname' must be a string")
    name = (own or hostname or "").strip()
    if not name:
        raise ValueError(
            "host finding names no host: give the hostname (minewatch ingest --hostname NAME), "
            "or ingest the agent's report files, which carry it"
        )
    if len(name) > 255:
        raise ValueError("hostname is longer than 255 characters")
    raw = dict(record)
    raw["hostname"] = name
    entity = _string(record, "entity", 10_000)
    return EvidenceRecord(
        detector="host",
        verdict=_verdict(record),
        kind=_string(record, "kind", 40),
        coin=_coin(record),
        confidence=_confidence(record.get("confidence")),
        entity=f"{name}: {entity}",
        subject=name,
        first_seen=scanned_at,
        last_seen=scanned_at,
        raw=raw,
        source=source,
    )


def _host_report(record: dict[str, Any], source: str) -> list[EvidenceRecord]:
    hostname = _string(record, "hostname", 255)
    scanned_at = _time(record.get("scanned_at"), "scanned_at")
    findings = record.get("findings")
    if not isinstance(findings, list):
        raise ValueError("'findings' of a host report must be a list")
    context: dict[str, Any] = {k: record[k] for k in ("report_id", "scanned_at") if k in record}
    out = []
    for i, finding in enumerate(findings, 1):
        if not isinstance(finding, dict):
            raise ValueError(f"finding {i} of the report is not a JSON object")
        try:
            out.append(_host({**finding, **context}, f"{source} finding {i}", hostname, scanned_at))
        except ValueError as exc:
            raise ValueError(f"finding {i}: {exc}") from None
    return out


def _json_record(
    record: Any, source: str, kind: str | None, hostname: str | None
) -> list[EvidenceRecord]:
    if not isinstance(record, dict):
        raise ValueError("not a JSON object (expected one finding per line)")
    is_report = isinstance(record.get("findings"), list) and "hostname" in record
    detector = record.get("detector")
    if kind is None:
        if is_report or detector == "host" or ("entity" in record and "client_ip" not in record):
            kind = "host"
        elif detector == "net" or "client_ip" in record:
            kind = "net"
        else:
            raise ValueError(
                "neither a network finding (no client_ip) nor a host finding (no entity)"
            )
    if kind == "net":
        return [_net(record, source)]
    if kind == "host":
        return (
            _host_report(record, source) if is_report else [_host(record, source, hostname, None)]
        )
    raise ValueError(f"a JSON record cannot be a {kind} finding (power results are CSV)")


def _power_rows(text: str, name: str) -> Iterator[tuple[str, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise EvidenceError(name, "empty file")
    # The inspection list titles columns "account_id / 户号"; keep the English part.
    columns = [h.split(" / ", 1)[0].strip().lower() for h in header]
    missing = [c for c in ("account_id", "verdict", "score", "kind") if c not in columns]
    if missing:
        raise EvidenceError(
            f"{name}:1",
            f"not a power screening result: column(s) {', '.join(missing)} missing "
            "(expected the CSV of minewatch power screen --out)",
        )
    try:
        for row in reader:
            where = f"{name}:{reader.line_num}"
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(columns):
                raise EvidenceError(where, f"{len(row)} fields where the header has {len(columns)}")
            yield where, dict(zip(columns, row, strict=True))
    except csv.Error as exc:
        raise EvidenceError(f"{name}:{reader.line_num}", f"malformed CSV: {exc}") from exc


def _power(values: dict[str, str], where: str) -> EvidenceRecord:
    verdict = values["verdict"].strip()
    if verdict not in _POWER_VERDICTS:
        raise ValueError(f"verdict {verdict!r} is not one of mining, suspect, normal")
    account = values["account_id"].strip()
    if not account or len(account) > 40:
        raise ValueError("account_id must be 1 to 40 characters")
    try:
        score = float(values["score"])
    except ValueError:
        raise ValueError(f"score {values['score']!r} is not a number") from None
    region = values.get("region_code", "").strip() or None
    if region is not None:
        try:
            check_code(region)
        except InputError as exc:
            raise ValueError(str(exc)) from None
    kind = values["kind"].strip()
    if not kind or len(kind) > 40:
        raise ValueError("kind must be 1 to 40 characters")
    # The fingerprint covers the result columns only, so the result file and its inspection
    # list (which adds a rank) give the same evidence.
    raw = {c: values[c] for c in RESULT_COLUMNS if c in values}
    return EvidenceRecord(
        detector="power",
        verdict=verdict,
        kind=kind,
        coin=None,
        confidence=_confidence(score, "score"),
        entity=account,
        subject=account,
        first_seen=_time(values.get("onset", ""), "onset"),
        last_seen=None,
        raw=raw,
        source=where,
        region_hint=region,
    )


def parse_evidence(
    text: str, name: str, *, kind: str | None = None, hostname: str | None = None
) -> ParsedEvidence:
    """Parse the text of one detector output file; ``name`` is used in ``file:line`` messages.

    ``kind`` (one of :data:`DETECTORS`) forces the detector instead of recognising it;
    ``hostname`` names the host of plain host-agent findings.
    """
    if kind is not None and kind not in DETECTORS:
        raise InputError(f"unknown evidence kind {kind!r}: choose one of {', '.join(DETECTORS)}")
    text = text.removeprefix("\ufeff")
    first = text.lstrip()[:1]
    parsed = ParsedEvidence()
    if first == "":
        return parsed
    if first not in "[{":
        if kind not in (None, "power"):
            raise EvidenceError(name, f"a {kind} file is JSON lines, but this is not JSON")
        for where, values in _power_rows(text, name):
            try:
                parsed.records.append(_power(values, where))
            except ValueError as exc:
                raise EvidenceError(where, str(exc)) from None
        return parsed
    if kind == "power":
        raise EvidenceError(name, "power results are CSV (minewatch power screen --out), not JSON")
    if first == "[":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EvidenceError(f"{name}:{exc.lineno}", f"not valid JSON: {exc.msg}") from None
        for i, item in enumerate(items, 1):
            try:
                parsed.records.extend(_json_record(item, f"{name} item {i}", kind, hostname))
            except ValueError as exc:
                raise EvidenceError(f"{name} item {i}", str(exc)) from None
        return parsed
    # Split on newlines only: str.splitlines() would also cut at U+2028 and friends, which JSON
    # written with ensure_ascii=False may hold inside a string.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvidenceError(where, f"not valid JSON: {exc.msg} (column {exc.colno})") from None
        try:
            parsed.records.extend(_json_record(record, where, kind, hostname))
        except ValueError as exc:
            raise EvidenceError(where, str(exc)) from None
    return parsed


def read_evidence(
    path: Path, *, kind: str | None = None, hostname: str | None = None
) -> ParsedEvidence:
    """:func:`parse_evidence` on a file (UTF-8, with or without a byte-order mark)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise EvidenceError(str(path), f"cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise EvidenceError(str(path), f"not UTF-8 text (byte {exc.start})") from exc
    return parse_evidence(text, str(path), kind=kind, hostname=hostname)


# ------------------------------------------------------------------------------------ storing


def _insert_rows(session: Session, rows: list[dict[str, Any]]) -> list[str]:
    """Insert ``rows`` (dicts keyed by column), skipping stored fingerprints; returns the
    fingerprints actually inserted.

    Both paths are ``INSERT ... ON CONFLICT (fingerprint) DO NOTHING RETURNING fingerprint``:
    stored evidence is skipped by the unique index itself, also when another process ingests the
    same file at the same moment. There is deliberately no ``SELECT ... WHERE fingerprint IN
    (...)`` first: besides the race, on PostgreSQL such a query, run repeatedly, becomes a
    server-side prepared statement whose plan may have been fixed while the table was small (a
    sequential scan), and then takes seconds per chunk once it is not (measured: 5 s per 1000
    lookups after a bulk load, until autovacuum analysed the table).

    SQLite: a Core multi-row insert (not the ORM's bulk path, which spends more time per row than
    the database). PostgreSQL: psycopg's own ``executemany`` (pipelined, one short prepared
    statement), because SQLAlchemy's multi-row VALUES statement for 1000 rows is too long for
    psycopg's query cache and re-parsing it in Python cost 0.3 ms a row, five times the insert.
    """
    table = cast(Table, Evidence.__table__)
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        statement = (
            sqlite.insert(table)
            .on_conflict_do_nothing(index_elements=["fingerprint"])
            .returning(table.c.fingerprint)
        )
        connection = session.connection()
        inserted: list[str] = []
        for i in range(0, len(rows), _INSERT_BATCH):
            inserted.extend(connection.execute(statement, rows[i : i + _INSERT_BATCH]).scalars())
        return inserted
    if dialect != "postgresql":
        raise InputError(f"evidence ingest supports SQLite and PostgreSQL, not {dialect}")
    columns = [c.name for c in table.columns if c.name != "id"]
    placeholders = ", ".join("%s::json" if c == "raw" else "%s" for c in columns)
    # Column names come from the model, never from input; values travel as parameters.
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders}) "  # noqa: S608
        "ON CONFLICT (fingerprint) DO NOTHING RETURNING fingerprint"
    )
    params = [
        tuple(
            json.dumps(row[c], ensure_ascii=False, allow_nan=False) if c == "raw" else row[c]
            for c in columns
        )
        for row in rows
    ]
    driver = cast("psycopg.Connection[Any]", session.connection().connection.dbapi_connection)
    cursor = driver.cursor()
    try:
        cursor.executemany(sql, params, returning=True)
        inserted = []
        while True:
            inserted.extend(r[0] for r in cursor.fetchall())
            if not cursor.nextset():
                break
    finally:
        cursor.close()
    return inserted


def store_evidence(
    session: Session,
    records: Sequence[EvidenceRecord],
    *,
    attributor: Attributor | None = None,
    now: dt.datetime | None = None,
) -> IngestSummary:
    """Attribute ``records`` and insert those not stored yet; flushes, does not commit.

    ``attributor`` defaults to the registry as it is in ``session`` now.
    """
    summary = IngestSummary(duplicates=len(records))
    unique: dict[str, EvidenceRecord] = {}
    for record in records:
        unique.setdefault(record.fingerprint, record)
    if not unique:
        return summary
    attributor = attributor or Attributor.load(session)
    now = now or dt.datetime.now(dt.UTC)
    rows: list[dict[str, Any]] = []
    placed: dict[str, bool] = {}
    # Many findings share one subject (a miner's IP seen in every capture): look each up once.
    answers: dict[tuple[str, str | None], Attribution] = {}
    for r in unique.values():
        found = answers.get((r.detector, r.subject))
        if found is None:
            found = answers[r.detector, r.subject] = attributor.subject(r.detector, r.subject)
        if r.detector == "power" and r.verdict == "normal" and not found.attributed:
            summary.skipped += 1  # the meter's "not mining" matters only for a known tenant
            continue
        placed[r.fingerprint] = found.attributed
        rows.append(
            {
                "fingerprint": r.fingerprint,
                "detector": r.detector,
                "verdict": r.verdict,
                "kind": r.kind,
                "coin": r.coin,
                "confidence": r.confidence,
                "entity": r.entity,
                "subject": r.subject,
                "first_seen": r.first_seen,
                "last_seen": r.last_seen,
                "raw": r.raw,
                "source": r.source,
                "ingested_at": now,
                "region_code": found.region_code or r.region_hint,
                "tenant_id": found.tenant_id,
                "data_centre_id": found.data_centre_id,
                "attribution": found.note,
            }
        )
    inserted = _insert_rows(session, rows)
    summary.added = len(inserted)
    summary.duplicates = len(records) - summary.added - summary.skipped
    summary.attributed = sum(1 for fp in inserted if placed[fp])
    summary.unattributed = summary.added - summary.attributed
    return summary


def ingest_files(
    session: Session,
    paths: Sequence[Path],
    *,
    kind: str | None = None,
    hostname: str | None = None,
) -> IngestSummary:
    """Parse every file (all of them, before any write), then store; flushes, does not commit."""
    parsed = ParsedEvidence()
    for path in paths:
        parsed.extend(read_evidence(path, kind=kind, hostname=hostname))
    return store_evidence(session, parsed.records)


def _unplaced() -> Any:
    return and_(Evidence.tenant_id.is_(None), Evidence.data_centre_id.is_(None))


def unattributed_evidence(
    session: Session, *, limit: int | None = None, offset: int = 0
) -> list[Evidence]:
    """Evidence no tenant or data centre was found for, oldest first."""
    query = select(Evidence).where(_unplaced()).order_by(Evidence.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def reattribute(session: Session, *, everything: bool = False) -> int:
    """Attribute stored evidence again against the registry as it is now (after an import).

    By default only unattributed evidence is looked at; ``everything`` redoes all of it (after
    a tenant moved). Returns how many rows changed. Flushes, does not commit.
    """
    attributor = Attributor.load(session)
    query = select(
        Evidence.id,
        Evidence.detector,
        Evidence.subject,
        Evidence.raw,
        Evidence.region_code,
        Evidence.tenant_id,
        Evidence.data_centre_id,
        Evidence.attribution,
    )
    if not everything:
        query = query.where(_unplaced())
    changes: list[dict[str, Any]] = []
    for row_id, detector, subject, raw, region, tenant, site, note in session.execute(query):
        found = attributor.subject(detector, subject)
        hint = raw.get("region_code") if detector == "power" else None
        new_region = found.region_code or (hint or None)
        if (found.tenant_id, found.data_centre_id, new_region, found.note) != (
            tenant,
            site,
            region,
            note,
        ):
            changes.append(
                {
                    "id": row_id,
                    "tenant_id": found.tenant_id,
                    "data_centre_id": found.data_centre_id,
                    "region_code": new_region,
                    "attribution": found.note,
                }
            )
    for i in range(0, len(changes), _INSERT_BATCH):
        session.execute(update(Evidence), changes[i : i + _INSERT_BATCH])
    session.flush()
    return len(changes)
