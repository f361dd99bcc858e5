"""The columns of a ``minewatch power screen`` result file: the contract between the screen that
writes it and the ledger's ingest that reads it (kept apart from ``screen.py`` so reading the
contract does not load the feature engine)."""

from __future__ import annotations

__all__ = ["RESULT_COLUMNS"]

RESULT_COLUMNS = (
    "account_id",
    "verdict",
    "score",
    "kind",
    "onset",
    "mining_kw",
    "equivalent",
    "explanation",
    "mining_kwh",
    "co2_t",
    "region_code",
    "declared_business",
)
