"""Tokens are shown once, stored hashed, and checked exactly."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from minewatch.errors import InputError
from minewatch.ledger.db import open_engine, session_factory, upgrade
from minewatch.ledger.models import ApiToken
from minewatch.ledger.tokens import authenticate, issue_token


@pytest.fixture
def sessions():  # type: ignore[no-untyped-def]
    engine = open_engine("sqlite://")
    upgrade(engine)
    return session_factory(engine)


def test_token_round_trip_and_hash_only_storage(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as session:
        token = issue_token(
            session, "zj-analyst", actor="test", role="analyst", region_code="330000"
        )
        session.commit()
    with sessions() as session:
        stored = session.scalars(select(ApiToken)).one()
        secret = token.rsplit("_", 1)[1]
        assert secret not in stored.secret_hash and stored.secret_hash != secret
        principal = authenticate(session, token)
        assert principal is not None
        assert (principal.username, principal.role, principal.region_code) == (
            "zj-analyst",
            "analyst",
            "330000",
        )
        assert stored.last_used_at is not None


def test_wrong_secret_unknown_key_and_garbage_fail(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as session:
        token = issue_token(session, "u", actor="test")
        session.commit()
        key = token.split("_")[1]
        assert authenticate(session, f"mw_{key}_{'0' * 40}") is None
        assert authenticate(session, f"mw_{'a' * 12}_{token.rsplit('_', 1)[1]}") is None
        assert authenticate(session, "garbage") is None


def test_expired_token_fails(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as session:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        token = issue_token(session, "u", actor="test", expires_at=past)
        session.commit()
        assert authenticate(session, token) is None


def test_existing_user_keeps_role_and_region(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as session:
        issue_token(session, "u", actor="test", role="viewer", region_code="110000")
        second = issue_token(session, "u", actor="test", role="admin", region_code="000000")
        principal = authenticate(session, second)
        assert principal is not None
        assert (principal.role, principal.region_code) == ("viewer", "110000")


def test_bad_role_or_region_is_a_clear_error(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions() as session:
        with pytest.raises(InputError, match="unknown role"):
            issue_token(session, "u", actor="test", role="root")
        with pytest.raises(InputError, match="six digits"):
            issue_token(session, "u", actor="test", region_code="beijing")
