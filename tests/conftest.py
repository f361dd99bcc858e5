"""Shared test fixtures: where the labelled corpus lives (beside the project, never copied)."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The labelled capture corpus in ../shared/corpus; tests using it skip where it is absent."""
    if not (CORPUS / "LABELS.csv").is_file():
        pytest.skip(f"labelled corpus not found at {CORPUS}")
    return CORPUS
