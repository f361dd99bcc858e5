"""Administrative regions and the append-only, hash-chained audit log.

The audit log is guarded in the database as well as in code: triggers refuse UPDATE and DELETE
(and TRUNCATE on PostgreSQL), so only someone able to drop a trigger can tamper with it, and
``minewatch audit verify`` still finds what they did from the hash chain.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from minewatch.ledger.models import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_REFUSAL = "audit log is append-only"

_SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    f"BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    f"BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END",
)

_POSTGRESQL_TRIGGERS = (
    "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN RAISE EXCEPTION '{_REFUSAL}'; END $$",
    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
)


def upgrade() -> None:
    op.create_table(
        "regions",
        sa.Column("code", sa.String(6), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("name_en", sa.String(200), nullable=True),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(20), nullable=True),
        sa.Column("parent_code", sa.String(6), sa.ForeignKey("regions.code"), nullable=True),
        sa.CheckConstraint("level IN ('province', 'city', 'county')", name="ck_regions_level"),
    )
    op.create_index("ix_regions_parent_code", "regions", ["parent_code"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(150), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in _SQLITE_TRIGGERS:
            op.execute(statement)
    elif dialect == "postgresql":
        for statement in _POSTGRESQL_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.drop_index("ix_audit_log_action", "audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_regions_parent_code", "regions")
    op.drop_table("regions")
