"""The hash-chained audit log: appends in the caller's transaction, refuses edits in the
database, and verify() finds edits, deletions and reordering done by someone who dropped the
guard triggers first. Every test runs on SQLite and, where configured, PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import threading

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from minewatch.errors import InputError
from minewatch.ledger.audit import (
    GENESIS_HASH,
    AuditReport,
    entry_hash,
    local_actor,
    parse_anchor,
    record,
    verify,
)
from minewatch.ledger.db import open_engine, session_factory
from minewatch.ledger.models import AuditEntry, User


def _append(sessions: sessionmaker[Session], count: int, actor: str = "alice") -> None:
    with sessions() as session:
        for n in range(count):
            record(
                session,
                actor,
                "token.create",
                "api_token",
                n,
                {"after": {"key": f"{n:012x}", "write_enabled": n % 2 == 0, "ratio": n / 3}},
                reason=f"agent {n} for 数据中心 {n}",
            )
        session.commit()


def _drop_guards(engine: Engine) -> None:
    """What a tamperer with DDL rights would do first."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER audit_log_no_change ON audit_log"))
            conn.execute(text("DROP TRIGGER audit_log_no_truncate ON audit_log"))


def _verify(sessions: sessionmaker[Session], anchor: tuple[int, str] | None = None) -> AuditReport:
    with sessions() as session:
        return verify(session, anchor=anchor)


def test_chain_links_each_entry_to_the_one_before(sessions: sessionmaker[Session]) -> None:
    _append(sessions, 4)
    with sessions() as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [e.id for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    assert len({e.hash for e in entries}) == 4
    report = _verify(sessions)
    assert report.ok and report.checked == 4
    assert (report.head_id, report.head_hash) == (4, entries[-1].hash)


def test_hash_is_sha256_of_the_documented_canonical_form(sessions: sessionmaker[Session]) -> None:
    """Recompute the hash independently from the stored columns, as an outside auditor would."""
    _append(sessions, 2)
    with sessions() as session:
        entry = session.get(AuditEntry, 2)
        assert entry is not None
        canonical = json.dumps(
            {
                "id": entry.id,
                "at": entry.at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "actor": entry.actor,
                "action": entry.action,
                "object_type": entry.object_type,
                "object_id": entry.object_id,
                "reason": entry.reason,
                "data": entry.data,
                "prev_hash": entry.prev_hash,
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        assert entry.hash == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        assert entry.at.tzinfo is not None
        assert entry.object_id == "1" and entry.reason == "agent 1 for 数据中心 1"


def test_entry_hash_changes_with_every_field() -> None:
    base = {
        "entry_id": 5,
        "at": dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC),
        "actor": "a",
        "action": "x.create",
        "object_type": "x",
        "object_id": "1",
        "reason": "",
        "data": {"after": {"v": 1}},
        "prev_hash": GENESIS_HASH,
    }
    reference = entry_hash(**base)  # type: ignore[arg-type]
    variants = {
        "entry_id": 6,
        "at": dt.datetime(2026, 3, 1, 8, 0, 0, 1, tzinfo=dt.UTC),
        "actor": "b",
        "action": "x.update",
        "object_type": "y",
        "object_id": None,
        "reason": "why",
        "data": {"after": {"v": 2}},
        "prev_hash": "f" * 64,
    }
    for key, value in variants.items():
        assert entry_hash(**{**base, key: value}) != reference, key  # type: ignore[arg-type]
    # The same instant written in another zone is the same entry.
    beijing = dt.timezone(dt.timedelta(hours=8))
    same_instant = dt.datetime(2026, 3, 1, 16, 0, tzinfo=beijing)
    assert entry_hash(**{**base, "at": same_instant}) == reference  # type: ignore[arg-type]


def test_entry_commits_and_rolls_back_with_the_change(sessions: sessionmaker[Session]) -> None:
    now = dt.datetime.now(dt.UTC)
    with sessions() as session:
        session.add(User(username="kept", role="viewer", region_code="330000", created_at=now))
        record(session, "admin", "user.create", "user", "kept", {"after": {"role": "viewer"}})
        session.commit()
    with sessions() as session:
        session.add(User(username="lost", role="viewer", region_code="330000", created_at=now))
        record(session, "admin", "user.create", "user", "lost", {"after": {"role": "viewer"}})
        session.rollback()
    with sessions() as session:
        assert session.scalars(select(User.username)).all() == ["kept"]
        assert session.scalars(select(AuditEntry.object_id)).all() == ["kept"]
        # The rolled-back entry left no gap: the next one is number 2 and the chain holds.
        entry = record(session, "admin", "user.delete", "user", "kept", {"before": {}})
        session.commit()
        assert entry.id == 2
    assert _verify(sessions).ok


def test_database_refuses_update_and_delete(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    _append(sessions, 2)
    for statement in (
        "UPDATE audit_log SET reason = 'nothing happened' WHERE id = 1",
        "DELETE FROM audit_log WHERE id = 2",
    ):
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    if engine.dialect.name == "postgresql":
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_log"))
    report = _verify(sessions)
    assert report.ok and report.checked == 2


def test_edited_entry_is_reported_by_id(engine: Engine, sessions: sessionmaker[Session]) -> None:
    _append(sessions, 5)
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE id = 3"))
    report = _verify(sessions)
    assert not report.ok
    assert [(p.entry_id, p.kind) for p in report.problems] == [(3, "edited")]
    assert report.first_problem is not None and report.first_problem.entry_id == 3


def test_edited_json_data_is_reported(engine: Engine, sessions: sessionmaker[Session]) -> None:
    _append(sessions, 3)
    _drop_guards(engine)
    with sessions() as session:
        entry = session.get(AuditEntry, 2)
        assert entry is not None
        forged = json.loads(json.dumps(entry.data))
        forged["after"]["write_enabled"] = not forged["after"]["write_enabled"]
        session.execute(update(AuditEntry).where(AuditEntry.id == 2).values(data=forged))
        session.commit()
    assert [(p.entry_id, p.kind) for p in _verify(sessions).problems] == [(2, "edited")]


def test_edit_with_recomputed_hash_breaks_the_next_link(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    """A tamperer who also fixes the edited entry's hash is caught by the entry after it."""
    _append(sessions, 4)
    _drop_guards(engine)
    with sessions() as session:
        entry = session.get(AuditEntry, 2)
        assert entry is not None
        new_hash = entry_hash(
            entry_id=2,
            at=entry.at,
            actor="mallory",
            action=entry.action,
            object_type=entry.object_type,
            object_id=entry.object_id,
            reason=entry.reason,
            data=entry.data,
            prev_hash=entry.prev_hash,
        )
        session.execute(
            update(AuditEntry).where(AuditEntry.id == 2).values(actor="mallory", hash=new_hash)
        )
        session.commit()
    problems = _verify(sessions).problems
    assert [(p.entry_id, p.kind) for p in problems] == [(3, "unlinked")]
    assert "entry 2" in problems[0].detail


def test_deleted_entry_is_reported(engine: Engine, sessions: sessionmaker[Session]) -> None:
    _append(sessions, 5)
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = 3"))
    report = _verify(sessions)
    assert report.checked == 4
    assert {(p.entry_id, p.kind) for p in report.problems} == {(4, "missing"), (4, "unlinked")}
    assert "entry 3 is missing" in str(report.problems[0])


def test_deleted_first_entry_is_reported(engine: Engine, sessions: sessionmaker[Session]) -> None:
    _append(sessions, 3)
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = 1"))
    report = _verify(sessions)
    assert report.first_problem is not None and report.first_problem.entry_id == 2
    assert {p.kind for p in report.problems} == {"missing", "unlinked"}


def test_reordered_entries_are_reported(engine: Engine, sessions: sessionmaker[Session]) -> None:
    """Swap two whole rows (every column but the id): both positions are reported."""
    _append(sessions, 5)
    _drop_guards(engine)
    columns = [c.name for c in AuditEntry.__table__.columns if c.name != "id"]
    with sessions() as session:
        rows = {
            r.id: r._asdict()
            for r in session.execute(select(AuditEntry.__table__).where(AuditEntry.id.in_([2, 4])))
        }
        # Move row 2 aside first: hash is unique, so a direct swap would collide.
        session.execute(update(AuditEntry).where(AuditEntry.id == 2).values(hash="x" * 64))
        session.execute(
            update(AuditEntry).where(AuditEntry.id == 4).values({c: rows[2][c] for c in columns})
        )
        session.execute(
            update(AuditEntry).where(AuditEntry.id == 2).values({c: rows[4][c] for c in columns})
        )
        session.commit()
    report = _verify(sessions)
    broken = {p.entry_id for p in report.problems}
    assert {2, 4} <= broken
    assert report.first_problem is not None and report.first_problem.entry_id == 2
    assert all(p.entry_id in (2, 3, 4, 5) for p in report.problems)


def test_cut_off_tail_is_caught_only_by_an_anchor(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    _append(sessions, 5)
    noted = _verify(sessions)
    assert noted.head_id == 5 and noted.head_hash is not None
    anchor = (noted.head_id, noted.head_hash)
    _drop_guards(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id >= 4"))
    assert _verify(sessions).ok  # the chain alone cannot tell: hence the anchor
    report = _verify(sessions, anchor=anchor)
    assert [(p.entry_id, p.kind) for p in report.problems] == [(5, "anchor")]


def test_anchor_detects_a_rehashed_rewrite(sessions: sessionmaker[Session]) -> None:
    _append(sessions, 3)
    assert _verify(sessions, anchor=(2, "0" * 64)).problems[0].kind == "anchor"
    with sessions() as session:
        real = session.get(AuditEntry, 2)
        assert real is not None
        assert _verify(sessions, anchor=(2, real.hash)).ok


def test_concurrent_writers_never_fork_the_chain(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    """Four threads, each with its own connection, append at once; nothing is lost or forked."""
    writers, per_writer = 4, 15
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(n: int) -> None:
        engine = open_engine(database_url)
        own = session_factory(engine)
        try:
            start.wait()
            for i in range(per_writer):
                with own() as session:
                    record(session, f"w{n}", "test.append", "test", i, {"writer": n, "i": i})
                    session.commit()
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == writers * per_writer
        pairs = session.execute(select(AuditEntry.actor, AuditEntry.object_id)).all()
    assert len(set(pairs)) == writers * per_writer
    report = _verify(sessions)
    assert report.ok and report.checked == writers * per_writer


@pytest.mark.parametrize(
    ("actor", "action", "data"),
    [
        ("", "x.create", {}),
        ("a" * 151, "x.create", {}),
        ("alice", "", {}),
        ("alice", "x.create", {"when": dt.datetime.now(dt.UTC)}),
        ("alice", "x.create", {"ratio": float("nan")}),
    ],
)
def test_bad_entries_are_refused_before_writing(
    sessions: sessionmaker[Session], actor: str, action: str, data: dict[str, object]
) -> None:
    with sessions() as session:
        with pytest.raises(InputError):
            record(session, actor, action, "x", 1, data)
        session.commit()
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_parse_anchor() -> None:
    assert parse_anchor(f" 12:{'AB' * 32} ") == (12, "ab" * 32)
    for bad in ("12", f"x:{'a' * 64}", "12:abc", f"12:{'g' * 64}"):
        with pytest.raises(InputError, match="ID:HASH"):
            parse_anchor(bad)


def test_local_actor_names_the_os_user() -> None:
    assert local_actor().startswith("cli:") and len(local_actor()) > 4
