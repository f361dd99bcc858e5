"""The REST API (FastAPI) over the ledger; see :mod:`minewatch.api.app`."""
