"""The ledger's tables, as SQLAlchemy 2 declarative models.

The schema is owned by the Alembic migrations in ``minewatch/ledger/migrations``; these classes
must describe the same tables (a test compares them). Every timestamp is stored timezone-aware in
UTC; every region reference is a 6-digit administrative code (GB/T 2260 style: ``110000`` a
province, ``110100`` a city, ``110101`` a county; ``000000`` the nation).

Example::

    >>> HostReport.__tablename__, HostFinding.__tablename__
    ('host_reports', 'host_findings')
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "ApiToken",
    "AuditEntry",
    "Base",
    "HostFinding",
    "HostReport",
    "Region",
    "User",
    "UtcDateTime",
]


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that refuses naive values and always comes back in UTC.

    SQLite keeps no time zone, so without this a value written as 08:00+08:00 would read back as
    a naive 08:00 and silently shift by eight hours.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give a time zone (UTC preferred)")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of every ledger table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UtcDateTime}


class User(Base):
    """A person or machine account with one role at one region (its subtree is its reach)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    region_code: Mapped[str] = mapped_column(String(6))
    created_at: Mapped[dt.datetime]
    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")


class ApiToken(Base):
    """An API token; only a hash of its secret is stored, so a database leak reveals no token."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(16), unique=True)
    """Public lookup part of the token (shown in listings, useless alone)."""
    secret_hash: Mapped[str] = mapped_column(String(64))
    """SHA-256 (hex) of the secret part."""
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    write_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]
    user: Mapped[User] = relationship(back_populates="tokens")


class HostReport(Base):
    """One agent scan as delivered; ``report_id`` makes delivery idempotent."""

    __tablename__ = "host_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[str] = mapped_column(String(32), unique=True)
    hostname: Mapped[str] = mapped_column(String(255))
    agent_version: Mapped[str] = mapped_column(String(40))
    scanned_at: Mapped[dt.datetime]
    received_at: Mapped[dt.datetime]
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    """Region of the token that delivered it: a report is visible only inside that subtree."""
    submitted_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    blind_spots: Mapped[list[str]] = mapped_column(JSON)
    findings: Mapped[list[HostFinding]] = relationship(
        back_populates="report", cascade="all, delete-orphan", order_by="HostFinding.id"
    )


class HostFinding(Base):
    """One host finding inside a report, stored column by column so it can be queried."""

    __tablename__ = "host_findings"
    __table_args__ = (Index("ix_host_findings_verdict_kind", "verdict", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_pk: Mapped[int] = mapped_column(ForeignKey("host_reports.id", ondelete="CASCADE"))
    verdict: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(Text)
    coin: Mapped[str | None] = mapped_column(String(12))
    confidence: Mapped[float] = mapped_column(Float)
    evidence: Mapped[list[str]] = mapped_column(JSON)
    capacity_bytes: Mapped[int | None] = mapped_column(BigInteger)
    count: Mapped[int | None] = mapped_column(Integer)
    pid: Mapped[int | None] = mapped_column(Integer)
    path: Mapped[str | None] = mapped_column(Text)
    report: Mapped[HostReport] = relationship(back_populates="findings")


class AuditEntry(Base):
    """One entry of the append-only, hash-chained audit log (who, when, what, why).

    ``hash`` is the SHA-256 of the entry's fields together with ``prev_hash``, the hash of the entry
    before it, so editing, deleting or reordering any entry breaks the chain. Entries are written
    only through :func:`minewatch.ledger.audit.record`, which numbers them ``1, 2, 3, ...`` with no
    gap (the id is part of the hash); the database refuses UPDATE and DELETE by trigger.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(150))
    """Username of the person or token that made the change (``cli:<os user>`` for the CLI)."""
    action: Mapped[str] = mapped_column(String(64), index=True)
    """What was done, as ``<object>.<verb>``: ``host-report.create``, ``token.create``."""
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The change itself, typically ``{"before": ..., "after": ...}``."""
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class Region(Base):
    """An administrative region (province, city or county) keyed by its six-digit code.

    Rows come from a maintained dataset package (:mod:`minewatch.ledger.region_data`), never typed
    by hand. ``parent_code`` is the nearest enclosing region that exists: a county's city when the
    county has one, else its province (districts of the four municipalities, and county-level
    cities such as 429004 仙桃市 that report straight to a province).
    """

    __tablename__ = "regions"
    __table_args__ = (
        CheckConstraint("level IN ('province', 'city', 'county')", name="ck_regions_level"),
    )

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    """Official Chinese name, e.g. 西湖区."""
    name_en: Mapped[str | None] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(10))
    """``province``, ``city`` or ``county`` (read from the code: XX0000, XXYY00, XXYYZZ)."""
    kind: Mapped[str | None] = mapped_column(String(20))
    """The dataset's own type: 省, 自治区, 直辖市, 地级市, 自治州, 县级市, 市辖区, 旗 ..."""
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"), index=True)
