"""The data-centre registry and the evidence attributed to it, as SQLAlchemy 2 models.

The registry follows NetBox's shape, cut to what attribution needs: a :class:`DataCentre` (a
NetBox *site*) lies in one administrative region; a :class:`Tenant` rents space in it; a
:class:`Rack`, an :class:`IpPrefix`, a :class:`PowerAccount` (an electricity meter, NetBox's *power
feed*) and a :class:`Host` each belong to a data centre and, when rented out, to a tenant.
:class:`Evidence` is one detector finding (network, power or host) stored with the tenant, data
centre and region it was attributed to, or with none of them when nothing in the registry matched:
unattributed evidence is kept, never dropped, so a gap in the registry shows up as work to do.

*IP ranges.* An address lies in a prefix when ``start_key <= address <= end_key``. Both bounds
are stored as fixed-width hex strings of the address's integer value: 8 digits for IPv4, 32 for
IPv6, lower case. Fixed-width hex sorts as text exactly as the numbers sort, so an ordinary B-tree
index on ``(family, start_key)`` serves the range query on every backend with one column per bound.
The alternatives are worse: SQLite has no 128-bit integer and PostgreSQL's ``numeric`` is slow to
index; two signed 64-bit halves per bound need an offset to sort and a row-value comparison in
every query. (:mod:`minewatch.ledger.attribution` loads the ranges into memory for bulk work.)

Example::

    >>> DataCentre.__tablename__, IpPrefix.__tablename__, Evidence.__tablename__
    ('data_centres', 'ip_prefixes', 'evidence')
    >>> import ipaddress
    >>> address_key(ipaddress.ip_address("203.0.113.9"))
    'cb007109'
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from minewatch.ledger.models import Base

__all__ = [
    "DataCentre",
    "Evidence",
    "Host",
    "IpPrefix",
    "PowerAccount",
    "Rack",
    "Tenant",
    "address_key",
]


def address_key(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The sortable text form of an address: fixed-width lower-case hex of its integer value."""
    width = 8 if address.version == 4 else 32
    return format(int(address), f"0{width}x")


class DataCentre(Base):
    """A data centre (NetBox *site*): who runs it, where it is, how big it is."""

    __tablename__ = "data_centres"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    operator: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(Text)
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    capacity_kw: Mapped[float | None] = mapped_column(Float)
    """Contracted or design IT+facility capacity in kW."""
    pue: Mapped[float | None] = mapped_column(Float)
    """Power usage effectiveness (facility power / IT power, >= 1)."""


class Tenant(Base):
    """A customer renting space, addresses or power in a data centre."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)
    """Unified social credit code (统一社会信用代码, 18 characters), when known."""
    declared_business: Mapped[str] = mapped_column(String(200))
    """What the tenant says it does; an assessment compares it with what the evidence shows."""


class Rack(Base):
    """A rack in a data centre, rented to a tenant or not."""

    __tablename__ = "racks"
    __table_args__ = (
        UniqueConstraint("data_centre_id", "name", name="uq_racks_data_centre_id_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    data_centre_id: Mapped[int] = mapped_column(ForeignKey("data_centres.id"))
    name: Mapped[str] = mapped_column(String(100))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    data_centre: Mapped[DataCentre] = relationship()
    tenant: Mapped[Tenant | None] = relationship()


class IpPrefix(Base):
    """An IPv4 or IPv6 prefix assigned to a data centre and/or a tenant.

    ``prefix`` is the canonical text (``203.0.113.0/24``, ``2001:db8:1100::/40``); ``start_key``
    and ``end_key`` are its first and last address as :func:`address_key` text (see the module
    docstring for why).
    """

    __tablename__ = "ip_prefixes"
    __table_args__ = (Index("ix_ip_prefixes_family_start_end", "family", "start_key", "end_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(43), unique=True)
    family: Mapped[int] = mapped_column(SmallInteger)
    start_key: Mapped[str] = mapped_column(String(32))
    end_key: Mapped[str] = mapped_column(String(32))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    data_centre_id: Mapped[int | None] = mapped_column(ForeignKey("data_centres.id"), index=True)
    description: Mapped[str] = mapped_column(String(200))
    tenant: Mapped[Tenant | None] = relationship()
    data_centre: Mapped[DataCentre | None] = relationship()


class PowerAccount(Base):
    """An electricity account (meter) of the grid company, as it maps to a tenant and site."""

    __tablename__ = "power_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(40), unique=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    data_centre_id: Mapped[int | None] = mapped_column(ForeignKey("data_centres.id"), index=True)
    contracted_kw: Mapped[float | None] = mapped_column(Float)
    tenant: Mapped[Tenant | None] = relationship()
    data_centre: Mapped[DataCentre | None] = relationship()


class Host(Base):
    """A server known to the registry; its hostname is unique within its data centre."""

    __tablename__ = "hosts"
    __table_args__ = (
        UniqueConstraint("data_centre_id", "hostname", name="uq_hosts_data_centre_id_hostname"),
        Index("ix_hosts_hostname", "hostname"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    data_centre_id: Mapped[int] = mapped_column(ForeignKey("data_centres.id"))
    hostname: Mapped[str] = mapped_column(String(255))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    data_centre: Mapped[DataCentre] = relationship()
    tenant: Mapped[Tenant | None] = relationship()


class Evidence(Base):
    """One finding of one detector, stored once, with what it was attributed to.

    ``fingerprint`` (SHA-256 of the canonical JSON of ``raw``) makes ingest idempotent: the same
    finding delivered twice is stored once. ``subject`` is what attribution looked up (an IP
    address, a power account id, a hostname); ``attribution`` says in words what matched, or why
    nothing did. ``tenant_id``, ``data_centre_id`` and ``region_code`` stay empty for unattributed
    evidence.
    """

    __tablename__ = "evidence"
    __table_args__ = (Index("ix_evidence_detector_verdict", "detector", "verdict"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    detector: Mapped[str] = mapped_column(String(8))
    """``net``, ``power`` or ``host``."""
    verdict: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(40))
    """Network: the protocol (``stratum-xmr``); power: asic/gpu/cpu/storage; host: probe kind."""
    coin: Mapped[str | None] = mapped_column(String(12))
    confidence: Mapped[float] = mapped_column(Float)
    entity: Mapped[str] = mapped_column(Text)
    """The detector's entity: client IP, power account id, or ``hostname: entity`` for a host."""
    subject: Mapped[str | None] = mapped_column(String(255), index=True)
    first_seen: Mapped[dt.datetime | None]
    last_seen: Mapped[dt.datetime | None]
    raw: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(Text)
    """Where it came from (file and line, or an API caller), for a person tracing it back."""
    ingested_at: Mapped[dt.datetime]
    region_code: Mapped[str | None] = mapped_column(String(6), index=True)
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="SET NULL"), index=True
    )
    data_centre_id: Mapped[int | None] = mapped_column(
        ForeignKey("data_centres.id", ondelete="SET NULL"), index=True
    )
    attribution: Mapped[str] = mapped_column(Text)
    tenant: Mapped[Tenant | None] = relationship()
    data_centre: Mapped[DataCentre | None] = relationship()
