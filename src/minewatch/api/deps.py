"""What every API route shares: a database session per request, the authenticated caller, the
write check, and NetBox-style page links.

Example::

    >>> WRITE_ROLES >= {"analyst", "inspector", "admin"}, "viewer" in WRITE_ROLES
    (True, False)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from sqlalchemy.orm import Session, sessionmaker

from minewatch.ledger.tokens import Principal, authenticate

__all__ = [
    "MAX_ID",
    "MAX_LIMIT",
    "WRITE_ROLES",
    "IdPath",
    "PrincipalDep",
    "SessionDep",
    "page_links",
    "require_write",
]

WRITE_ROLES = frozenset({"analyst", "inspector", "admin"})
"""Roles that may change data; a viewer only reads."""

MAX_LIMIT = 1000
"""Largest page a client may ask for."""

MAX_ID = 2**31 - 1
"""Largest id or offset a request may carry: what a 32-bit INTEGER column holds. A larger
number cannot name a row, and the database driver would refuse to bind it (a 500, not a 404)."""

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
"""A row id in a path (``/cases/{pk}/``): 422 outside 1 ... :data:`MAX_ID`."""


def _get_session(request: Request) -> Iterator[Session]:
    sessions: sessionmaker[Session] = request.app.state.sessions
    with sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(_get_session)]
"""A session for the request, closed after the response."""


def _principal(request: Request, session: SessionDep) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in ("token", "bearer") or not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "authentication required: send 'Authorization: Token <token>'",
            headers={"WWW-Authenticate": "Token"},
        )
    principal = authenticate(session, token)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid or expired token",
            headers={"WWW-Authenticate": "Token"},
        )
    session.commit()  # persists last_used_at
    return principal


def page_links(request: Request, count: int, limit: int, offset: int) -> tuple[str | None, ...]:
    def link(new_offset: int) -> str:
        return str(request.url.include_query_params(limit=limit, offset=new_offset))

    following = link(offset + limit) if offset + limit < count else None
    preceding = link(max(offset - limit, 0)) if offset > 0 else None
    return following, preceding


PrincipalDep = Annotated[Principal, Depends(_principal)]
"""The authenticated caller (401 without a valid token)."""


def require_write(principal: Principal, roles: frozenset[str] = WRITE_ROLES) -> None:
    """403 unless the token may write and the caller's role is one of ``roles``."""
    if not principal.write_enabled or principal.role not in roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this token may not do this")
