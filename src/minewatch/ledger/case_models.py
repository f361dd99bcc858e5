"""The case workflow's tables: a case, its history, its inspections and its rectification plan.

A :class:`Case` follows one suspected mining project from the lead to its closure (the states and
the rules between them live in :mod:`minewatch.ledger.cases`, not here). It carries the ledger
fields the 2021 notice asks for (enterprise, scale, hashrate, power, annual energy, planned
production date) and the region whose subtree may see it. Alongside it:

* :class:`CaseTransition` -- every change of state, with who, when and why (the audit log holds
  the same, hash-chained; this table is what a case page reads);
* :class:`Inspection` -- an on-site visit: assigned inspector, date, checklist, result, and the
  metadata of its attachments (:class:`InspectionAttachment`; the files themselves live
  elsewhere, identified by SHA-256);
* :class:`Milestone` -- one dated step of the rectification: a single ``shutdown`` for a new
  (增量) project, ``stop-mining``, ``remove-equipment`` and ``cut-supply`` for an existing (存量)
  one. The case closes when every milestone is done;
* ``case_evidence`` -- the evidence a lead came from (kept after clearing, so the detectors can
  learn from cleared cases).

``version`` is SQLAlchemy's optimistic lock: an update whose row changed since it was read fails
instead of silently overwriting a concurrent transition.

Example::

    >>> Case.__tablename__, Milestone.__tablename__, Inspection.__tablename__
    ('cases', 'case_milestones', 'inspections')
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from minewatch.ledger.models import Base, User
from minewatch.ledger.registry_models import DataCentre, Evidence, Tenant

__all__ = [
    "Case",
    "CaseTransition",
    "Inspection",
    "InspectionAttachment",
    "Milestone",
    "case_evidence",
]

case_evidence = Table(
    "case_evidence",
    Base.metadata,
    Column("case_id", ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    Column("evidence_id", ForeignKey("evidence.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_case_evidence_evidence_id", "evidence_id"),
)
"""Which evidence a case was opened from (or linked to later)."""


class Case(Base):
    """One suspected mining project and where it stands in the workflow."""

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(
            "state IN ('lead', 'verification', 'inspection', 'confirmed', 'cleared', "
            "'rectification', 'closed')",
            name="ck_cases_state",
        ),
        CheckConstraint(
            "source IN ('detection', 'ip-list', 'hotline', 'self-report')", name="ck_cases_source"
        ),
        CheckConstraint(
            "project_type IS NULL OR project_type IN ('new', 'existing')",
            name="ck_cases_project_type",
        ),
        Index("ix_cases_state_region_code", "state", "region_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    """Region responsible for the case; only users whose subtree holds it see it."""
    state: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    """``detection``, ``ip-list`` (pushed down from above), ``hotline`` or ``self-report``."""
    source_ref: Mapped[str | None] = mapped_column(String(100))
    """The source's own reference: hotline ticket, IP-list batch, self-report letter number."""
    title: Mapped[str] = mapped_column(String(200))
    mining_class: Mapped[str] = mapped_column(String(20))
    """pow-asic, pow-gpu, pow-cpu, storage-chia, storage-filecoin or unknown."""
    ip_addresses: Mapped[list[str]] = mapped_column(JSON)
    """Addresses named by a pushed-down IP list (canonical text), empty otherwise."""
    tenant_id: Mapped[int | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="SET NULL"), index=True
    )
    data_centre_id: Mapped[int | None] = mapped_column(
        ForeignKey("data_centres.id", ondelete="SET NULL"), index=True
    )
    # Ledger fields of the notice (台账).
    enterprise: Mapped[str | None] = mapped_column(String(200))
    credit_code: Mapped[str | None] = mapped_column(String(18))
    scale_units: Mapped[int | None] = mapped_column(Integer)
    """Number of mining machines (台)."""
    hashrate_value: Mapped[float | None] = mapped_column(Float)
    hashrate_unit: Mapped[str | None] = mapped_column(String(8))
    """Unit of ``hashrate_value``: H/s ... EH/s, or GiB ... EiB of plots for storage mining."""
    power_kw: Mapped[float | None] = mapped_column(Float)
    annual_kwh: Mapped[float | None] = mapped_column(Float)
    planned_production_date: Mapped[dt.date | None] = mapped_column(Date)
    """For a project under construction: when it was to start producing."""
    project_type: Mapped[str | None] = mapped_column(String(10))
    """``new`` (增量: shut down by order) or ``existing`` (存量: exit on a plan)."""
    cleared_reason: Mapped[str | None] = mapped_column(Text)
    order_ref: Mapped[str | None] = mapped_column(String(100))
    """Number of the shutdown order or exit-plan document."""
    opened_at: Mapped[dt.datetime]
    opened_by: Mapped[str] = mapped_column(String(150))
    updated_at: Mapped[dt.datetime]
    confirmed_at: Mapped[dt.datetime | None]
    cleared_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]

    tenant: Mapped[Tenant | None] = relationship()
    data_centre: Mapped[DataCentre | None] = relationship()
    evidence: Mapped[list[Evidence]] = relationship(secondary=case_evidence, order_by="Evidence.id")
    transitions: Mapped[list[CaseTransition]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CaseTransition.id"
    )
    inspections: Mapped[list[Inspection]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="Inspection.id"
    )
    milestones: Mapped[list[Milestone]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="Milestone.id"
    )

    __mapper_args__: dict[str, Any] = {"version_id_col": version}  # noqa: RUF012


class CaseTransition(Base):
    """One change of a case's state: from, to, when, by whom, why."""

    __tablename__ = "case_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(20))
    """``None`` for the opening of the case."""
    to_state: Mapped[str] = mapped_column(String(20))
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(150))
    reason: Mapped[str] = mapped_column(Text)
    case: Mapped[Case] = relationship(back_populates="transitions")


class Inspection(Base):
    """An on-site inspection assigned to one inspector on one date."""

    __tablename__ = "inspections"
    __table_args__ = (
        CheckConstraint(
            "result IS NULL OR result IN ('mining', 'no-mining', 'inconclusive')",
            name="ck_inspections_result",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    inspector_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    scheduled_on: Mapped[dt.date] = mapped_column(Date)
    checklist: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    """``[{"item": "...", "done": false}, ...]`` in the order they are to be checked."""
    result: Mapped[str | None] = mapped_column(String(20))
    """``mining``, ``no-mining`` or ``inconclusive``; empty until recorded."""
    notes: Mapped[str] = mapped_column(Text)
    inspected_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(String(150))
    case: Mapped[Case] = relationship(back_populates="inspections")
    inspector: Mapped[User] = relationship()
    attachments: Mapped[list[InspectionAttachment]] = relationship(
        back_populates="inspection",
        cascade="all, delete-orphan",
        order_by="InspectionAttachment.id",
    )


class InspectionAttachment(Base):
    """Metadata of a file taken at an inspection (photo, meter reading, signed record).

    Only the description is stored: the file stays in the document system, and its SHA-256 lets
    anyone holding it prove it is the one recorded here.
    """

    __tablename__ = "inspection_attachments"
    __table_args__ = (
        UniqueConstraint(
            "inspection_id", "sha256", name="uq_inspection_attachments_inspection_id_sha256"
        ),
        Index("ix_inspection_attachments_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspections.id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    inspection: Mapped[Inspection] = relationship(back_populates="attachments")


class Milestone(Base):
    """One dated step of a rectification, done when ``done_on`` is set."""

    __tablename__ = "case_milestones"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('shutdown', 'stop-mining', 'remove-equipment', 'cut-supply')",
            name="ck_case_milestones_kind",
        ),
        UniqueConstraint("case_id", "kind", name="uq_case_milestones_case_id_kind"),
        Index("ix_case_milestones_due_on", "due_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    due_on: Mapped[dt.date] = mapped_column(Date)
    done_on: Mapped[dt.date | None] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text)
    case: Mapped[Case] = relationship(back_populates="milestones")
