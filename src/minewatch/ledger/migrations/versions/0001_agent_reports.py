"""Users, hashed API tokens, and host-agent reports with their findings.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from minewatch.ledger.models import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(150), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("region_code", sa.String(6), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key", sa.String(16), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("write_enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("last_used_at", UtcDateTime(), nullable=True),
    )
    op.create_table(
        "host_reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("report_id", sa.String(32), nullable=False, unique=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("agent_version", sa.String(40), nullable=False),
        sa.Column("scanned_at", UtcDateTime(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("region_code", sa.String(6), nullable=False),
        sa.Column("submitted_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("blind_spots", sa.JSON(), nullable=False),
    )
    op.create_index("ix_host_reports_region_code", "host_reports", ["region_code"])
    op.create_table(
        "host_findings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "report_pk",
            sa.Integer(),
            sa.ForeignKey("host_reports.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("coin", sa.String(12), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("capacity_bytes", sa.BigInteger(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
    )
    op.create_index("ix_host_findings_verdict_kind", "host_findings", ["verdict", "kind"])


def downgrade() -> None:
    op.drop_index("ix_host_findings_verdict_kind", "host_findings")
    op.drop_table("host_findings")
    op.drop_index("ix_host_reports_region_code", "host_reports")
    op.drop_table("host_reports")
    op.drop_table("api_tokens")
    op.drop_table("users")
