"""The ledger: users and tokens, evidence delivered by detectors, and (growing) the registry,
cases and audit trail of issue 6. Stored with SQLAlchemy 2; schema changes only via Alembic."""

# Every table must be on Base.metadata whenever any model is imported (Alembic, the schema test
# and relationship() string lookups rely on it), so the package imports its model modules.
from minewatch.ledger import case_models as case_models
from minewatch.ledger import registry_models as registry_models
