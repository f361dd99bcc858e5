"""API tokens: issued once, stored hashed, looked up by a public key part.

A token reads ``mw_<key>_<secret>``: ``key`` (12 hex digits) finds the row, ``secret`` (40 hex
digits, 160 random bits) is checked against its SHA-256. Only the hash is stored, so neither the
database nor its backups can give a token away; a plain hash (not a slow password hash) suffices
because the secret is random, not a human password. The full token is shown exactly once, when
issued.

Example::

    >>> parse_token("mw_0123456789ab_" + "f" * 40)[0]
    '0123456789ab'
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from minewatch.errors import InputError
from minewatch.ledger.audit import record
from minewatch.ledger.models import ApiToken, User
from minewatch.ledger.regions import check_code

__all__ = ["ROLES", "Principal", "authenticate", "issue_token", "parse_token"]

ROLES = ("viewer", "analyst", "inspector", "admin")
"""Roles in increasing reach of action; every role reads inside its region."""

_TOKEN = re.compile(r"^mw_([0-9a-f]{12})_([0-9a-f]{40})$")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: the user's id, name, role, region and whether it may write."""

    user_id: int
    username: str
    role: str
    region_code: str
    write_enabled: bool


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def parse_token(token: str) -> tuple[str, str]:
    """Split a token into (key, secret); raises :class:`InputError` when it is malformed."""
    match = _TOKEN.fullmatch(token.strip())
    if match is None:
        raise InputError("malformed token: expected mw_<12 hex>_<40 hex>")
    return match.group(1), match.group(2)


def issue_token(
    session: Session,
    username: str,
    *,
    actor: str,
    role: str = "viewer",
    region_code: str = "000000",
    write_enabled: bool = True,
    description: str = "",
    expires_at: dt.datetime | None = None,
) -> str:
    """Create the user if needed and a new token for it; returns the token (shown once).

    An existing user keeps its role and region: a token never widens what a user may reach.
    ``actor`` (who issues it) goes to the audit log with the new user and token, never the secret.
    """
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    check_code(region_code)
    now = dt.datetime.now(dt.UTC)
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        user = User(username=username, role=role, region_code=region_code, created_at=now)
        session.add(user)
        session.flush()
        record(
            session,
            actor,
            "user.create",
            "user",
            user.id,
            {"after": {"username": username, "role": role, "region_code": region_code}},
        )
    key = secrets.token_hex(6)
    secret = secrets.token_hex(20)
    token = ApiToken(
        key=key,
        secret_hash=_hash(secret),
        user_id=user.id,
        write_enabled=write_enabled,
        description=description,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    record(
        session,
        actor,
        "token.create",
        "api_token",
        token.id,
        {
            "after": {
                "key": key,
                "user": username,
                "write_enabled": write_enabled,
                "description": description,
                "expires_at": expires_at.isoformat() if expires_at else None,
            }
        },
    )
    return f"mw_{key}_{secret}"


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal a token stands for, or ``None`` when it is unknown, wrong or expired."""
    try:
        key, secret = parse_token(token)
    except InputError:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.key == key))
    if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
        return None
    now = dt.datetime.now(dt.UTC)
    if row.expires_at is not None and row.expires_at <= now:
        return None
    row.last_used_at = now
    user = row.user
    return Principal(user.id, user.username, user.role, user.region_code, row.write_enabled)
