"""Cases: leads to closure, with their history, inspections (and attachment metadata), the
evidence they came from, and rectification milestones.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from minewatch.ledger.models import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(6), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("source_ref", sa.String(100), nullable=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("mining_class", sa.String(20), nullable=False),
        sa.Column("ip_addresses", sa.JSON(), nullable=False),
        sa.Column(
            "tenant_id",
            sa.Integer(),
            sa.ForeignKey("tenants.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column(
            "data_centre_id",
            sa.Integer(),
            sa.ForeignKey("data_centres.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("enterprise", sa.String(200), nullable=True),
        sa.Column("credit_code", sa.String(18), nullable=True),
        sa.Column("scale_units", sa.Integer(), nullable=True),
        sa.Column("hashrate_value", sa.Float(), nullable=True),
        sa.Column("hashrate_unit", sa.String(8), nullable=True),
        sa.Column("power_kw", sa.Float(), nullable=True),
        sa.Column("annual_kwh", sa.Float(), nullable=True),
        sa.Column("planned_production_date", sa.Date(), nullable=True),
        sa.Column("project_type", sa.String(10), nullable=True),
        sa.Column("cleared_reason", sa.Text(), nullable=True),
        sa.Column("order_ref", sa.String(100), nullable=True),
        sa.Column("opened_at", UtcDateTime(), nullable=False),
        sa.Column("opened_by", sa.String(150), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("confirmed_at", UtcDateTime(), nullable=True),
        sa.Column("cleared_at", UtcDateTime(), nullable=True),
        sa.Column("closed_at", UtcDateTime(), nullable=True),
        sa.CheckConstraint(
            "state IN ('lead', 'verification', 'inspection', 'confirmed', 'cleared', "
            "'rectification', 'closed')",
            name="ck_cases_state",
        ),
        sa.CheckConstraint(
            "source IN ('detection', 'ip-list', 'hotline', 'self-report')", name="ck_cases_source"
        ),
        sa.CheckConstraint(
            "project_type IS NULL OR project_type IN ('new', 'existing')",
            name="ck_cases_project_type",
        ),
    )
    op.create_index("ix_cases_region_code", "cases", ["region_code"])
    op.create_index("ix_cases_state_region_code", "cases", ["state", "region_code"])
    op.create_index("ix_cases_tenant_id", "cases", ["tenant_id"])
    op.create_index("ix_cases_data_centre_id", "cases", ["data_centre_id"])
    op.create_table(
        "case_evidence",
        sa.Column(
            "case_id",
            sa.Integer(),
            sa.ForeignKey("cases.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "evidence_id",
            sa.Integer(),
            sa.ForeignKey("evidence.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index("ix_case_evidence_evidence_id", "case_evidence", ["evidence_id"])
    op.create_table(
        "case_transitions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "case_id",
            sa.Integer(),
            sa.ForeignKey("cases.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("from_state", sa.String(20), nullable=True),
        sa.Column("to_state", sa.String(20), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(150), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_case_transitions_case_id", "case_transitions", ["case_id"])
    op.create_table(
        "inspections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "case_id",
            sa.Integer(),
            sa.ForeignKey("cases.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("inspector_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("scheduled_on", sa.Date(), nullable=False),
        sa.Column("checklist", sa.JSON(), nullable=False),
        sa.Column("result", sa.String(20), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("inspected_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(150), nullable=False),
        sa.CheckConstraint(
            "result IS NULL OR result IN ('mining', 'no-mining', 'inconclusive')",
            name="ck_inspections_result",
        ),
    )
    op.create_index("ix_inspections_case_id", "inspections", ["case_id"])
    op.create_index("ix_inspections_inspector_id", "inspections", ["inspector_id"])
    op.create_table(
        "inspection_attachments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "inspection_id",
            sa.Integer(),
            sa.ForeignKey("inspections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.UniqueConstraint(
            "inspection_id", "sha256", name="uq_inspection_attachments_inspection_id_sha256"
        ),
    )
    op.create_index("ix_inspection_attachments_sha256", "inspection_attachments", ["sha256"])
    op.create_table(
        "case_milestones",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "case_id",
            sa.Integer(),
            sa.ForeignKey("cases.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("done_on", sa.Date(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('shutdown', 'stop-mining', 'remove-equipment', 'cut-supply')",
            name="ck_case_milestones_kind",
        ),
        sa.UniqueConstraint("case_id", "kind", name="uq_case_milestones_case_id_kind"),
    )
    op.create_index("ix_case_milestones_case_id", "case_milestones", ["case_id"])
    op.create_index("ix_case_milestones_due_on", "case_milestones", ["due_on"])


def downgrade() -> None:
    op.drop_table("case_milestones")
    op.drop_table("inspection_attachments")
    op.drop_table("inspections")
    op.drop_table("case_transitions")
    op.drop_table("case_evidence")
    op.drop_table("cases")
