"""The numbered notebooks: committed clean, parameter files valid, and every one executes with smoke parameters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from iseg.data import DATASETS, canonical_name, parse_dataset_spec
from iseg.training.config import list_configs, load_config

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PIPELINE = ["00_data_prep", "01_train_coarse", "02_train_fine", "03_evaluate"]


def parameters_cell(path: Path) -> dict:
    """The notebook's cell tagged `parameters`, executed, as a dict of its names."""
    cells = json.loads(path.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: expected one cell tagged 'parameters'"
    names: dict = {}
    exec("".join(tagged[0]["source"]), {}, names)
    return names


def test_every_numbered_notebook_exists():
    assert [p.stem for p in NOTEBOOKS] == [*PIPELINE, "04_click_demo", "05_explore", "06_annotate"]


def test_committed_notebooks_have_no_outputs():
    result = subprocess.run([sys.executable, "-m", "nbstripout", "--verify", *map(str, NOTEBOOKS)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("pipeline", ["smoke", "paper"])
def test_parameter_files_name_real_parameters_configs_and_datasets(pipeline):
    for stem in PIPELINE:
        params = yaml.safe_load((ROOT / "notebooks/params" / pipeline / f"{stem}.yaml").read_text())
        known = parameters_cell(ROOT / "notebooks" / f"{stem}.ipynb")
        assert set(params) <= set(known), f"{pipeline}/{stem}.yaml sets unknown parameters {set(params) - set(known)}"
        for name in params.get("datasets", []):
            assert canonical_name(parse_dataset_spec(name)[0]) in DATASETS
        if "config" in params:
            assert params["config"] in list_configs()
            cfg = load_config(params["config"], params.get("overrides") or None)
            for spec in cfg.data:
                canonical_name(parse_dataset_spec(spec)[0])


def run_notebook(stem: str, run_dir: Path, *extra: str) -> None:
    """Execute one notebook with its smoke parameters (plus extra papermill arguments) into run_dir."""
    command = [sys.executable, "-m", "papermill", "--cwd", str(ROOT / "notebooks"), "-k", "python3",
               str(ROOT / "notebooks" / f"{stem}.ipynb"), str(run_dir / f"{stem}.ipynb"),
               "-p", "run_dir", str(run_dir), *extra]
    params = ROOT / "notebooks/params/smoke" / f"{stem}.yaml"
    if params.exists():
        command += ["-f", str(params)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{stem} failed:\n{result.stderr[-3000:]}"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_notebook_executes_with_smoke_parameters(tmp_path):
    run_notebook("00_data_prep", tmp_path)
    assert (tmp_path / "data/inventory.csv").exists()
    run_notebook("01_train_coarse", tmp_path, "-p", "samples_per_epoch", "8")
    run_notebook("02_train_fine", tmp_path, "-p", "samples_per_epoch", "8")
    assert (tmp_path / "fine/checkpoints/best.pt").exists() and (tmp_path / "fine/curves.png").exists()
    run_notebook("03_evaluate", tmp_path, "-p", "limit", "2", "-p", "max_clicks", "3", "-p", "gallery_size", "2")
    results = (tmp_path / "evaluate/results.csv").read_text()
    assert "IFPN cascade (this run)" in results and "GrabCut (OpenCV)" in results
    assert (tmp_path / "evaluate/miou_GrabCut.svg").exists()
    run_notebook("04_click_demo", tmp_path, "-p", "n_samples", "1")
    run_notebook("05_explore", tmp_path, "-y", f"runs_dirs: [{tmp_path / 'evaluate'}]")
    explored = (tmp_path / "05_explore.ipynb").read_text()
    assert "IFPN_cascade_this_run" in explored and "Traceback" not in explored
