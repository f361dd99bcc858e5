"""The ledger: users and tokens, evidence delivered by detectors, and (growing) the registry,
cases and audit trail of issue 6. Stored with SQLAlchemy 2; schema changes only via Alembic."""
