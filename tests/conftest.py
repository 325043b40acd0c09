"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The read-only real benchmark folder (../shared/datasets); skips the test when it is absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"real benchmark data not found at {SHARED_DATASETS} (the shared datasets folder)")
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def small_runs(tmp_path_factory, shared_datasets) -> Path:
    """A folder with two small evaluation runs on 2 GrabCut images, 3 clicks each (the shipped IFPN cascade without
    flip, stopping early; the GrabCut baseline), made by the CLI as a user would."""
    from iseg.evaluate import main

    root = tmp_path_factory.mktemp("runs")
    common = ["--datasets", f"GrabCut={shared_datasets / 'GrabCut'}", "--limit", "2", "--max-clicks", "3",
              "--no-progress"]
    main(["--predictor", "default", "--no-flip", "--out", str(root / "ifpn"), *common])
    main(["--predictor", "grabcut", "--full-curve", "--out", str(root / "grabcut"), *common])
    return root


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (restored after): training tests are faster and steadier that way."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
