"""The data-centre registry (sites, tenants, racks, IP prefixes, power accounts, hosts) and the
evidence attributed to it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from minewatch.ledger.models import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_centres",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("operator", sa.String(200), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("region_code", sa.String(6), nullable=False),
        sa.Column("capacity_kw", sa.Float(), nullable=True),
        sa.Column("pue", sa.Float(), nullable=True),
    )
    op.create_index("ix_data_centres_region_code", "data_centres", ["region_code"])
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("credit_code", sa.String(18), nullable=True, unique=True),
        sa.Column("declared_business", sa.String(200), nullable=False),
    )
    op.create_table(
        "racks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("data_centre_id", sa.Integer(), sa.ForeignKey("data_centres.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id"), nullable=True),
        sa.UniqueConstraint("data_centre_id", "name", name="uq_racks_data_centre_id_name"),
    )
    op.create_index("ix_racks_tenant_id", "racks", ["tenant_id"])
    op.create_table(
        "ip_prefixes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("prefix", sa.String(43), nullable=False, unique=True),
        sa.Column("family", sa.SmallInteger(), nullable=False),
        sa.Column("start_key", sa.String(32), nullable=False),
        sa.Column("end_key", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id"), nullable=True),
        sa.Column("data_centre_id", sa.Integer(), sa.ForeignKey("data_centres.id"), nullable=True),
        sa.Column("description", sa.String(200), nullable=False),
    )
    op.create_index(
        "ix_ip_prefixes_family_start_end", "ip_prefixes", ["family", "start_key", "end_key"]
    )
    op.create_index("ix_ip_prefixes_tenant_id", "ip_prefixes", ["tenant_id"])
    op.create_index("ix_ip_prefixes_data_centre_id", "ip_prefixes", ["data_centre_id"])
    op.create_table(
        "power_accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.String(40), nullable=False, unique=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id"), nullable=True),
        sa.Column("data_centre_id", sa.Integer(), sa.ForeignKey("data_centres.id"), nullable=True),
        sa.Column("contracted_kw", sa.Float(), nullable=True),
    )
    op.create_index("ix_power_accounts_tenant_id", "power_accounts", ["tenant_id"])
    op.create_index("ix_power_accounts_data_centre_id", "power_accounts", ["data_centre_id"])
    op.create_table(
        "hosts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("data_centre_id", sa.Integer(), sa.ForeignKey("data_centres.id"), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id"), nullable=True),
        sa.UniqueConstraint("data_centre_id", "hostname", name="uq_hosts_data_centre_id_hostname"),
    )
    op.create_index("ix_hosts_hostname", "hosts", ["hostname"])
    op.create_index("ix_hosts_tenant_id", "hosts", ["tenant_id"])
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("detector", sa.String(8), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("coin", sa.String(12), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("subject", sa.String(255), nullable=True),
        sa.Column("first_seen", UtcDateTime(), nullable=True),
        sa.Column("last_seen", UtcDateTime(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("ingested_at", UtcDateTime(), nullable=False),
        sa.Column("region_code", sa.String(6), nullable=True),
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
        sa.Column("attribution", sa.Text(), nullable=False),
    )
    op.create_index("ix_evidence_detector_verdict", "evidence", ["detector", "verdict"])
    op.create_index("ix_evidence_subject", "evidence", ["subject"])
    op.create_index("ix_evidence_region_code", "evidence", ["region_code"])
    op.create_index("ix_evidence_tenant_id", "evidence", ["tenant_id"])
    op.create_index("ix_evidence_data_centre_id", "evidence", ["data_centre_id"])


def downgrade() -> None:
    op.drop_table("evidence")
    op.drop_table("hosts")
    op.drop_table("power_accounts")
    op.drop_table("ip_prefixes")
    op.drop_table("racks")
    op.drop_table("tenants")
    op.drop_table("data_centres")
