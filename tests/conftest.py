"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The read-only real benchmark folder (../shared/datasets); skips the test when it is absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"real benchmark data not found at {SHARED_DATASETS} (the shared datasets folder)")
    return SHARED_DATASETS
