"""The set-up files a new user relies on: environment.yml, pyproject extras, Makefile targets, CI entry."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_installs_the_project_with_extras_that_exist():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    installs = [line for line in pip if line.startswith("-e .")]
    assert installs, "environment.yml must pip-install the project"
    for named in re.findall(r"\[([^\]]+)\]", installs[0])[0].split(","):
        assert named in extras
    assert "torch==2.14.1" in pip and "torchvision==0.29.1" in pip


def test_makefile_has_the_documented_targets_and_ci_runs_make_test():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("setup", "test", "test-all", "smoke", "paper", "lab", "demo", "bench"):
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), target
    assert "make test" in (ROOT / ".ci/run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make smoke" in readme and "make test" in readme


def test_runs_folder_is_ignored_but_kept():
    assert (ROOT / "runs/.gitkeep").exists()
    assert "runs/*" in (ROOT / ".gitignore").read_text()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> dict:
    """`pip wheel` of a copy of the project, unpacked into a site folder (a pure-Python wheel installs by unpacking):
    {"site", "names" (the wheel's files), "log" (pip's verbose output), "root" (the temporary folder)}."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".*", "runs", "build", "*.egg-info", "__pycache__",
                                                             "notebooks", "tests", "docs", "datasets"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
                            str(src), "-w", str(root / "wheel")], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    site = root / "site"
    with zipfile.ZipFile(next((root / "wheel").glob("iseg-*.whl"))) as archive:
        names = archive.namelist()
        archive.extractall(site)
    return {"site": site, "names": names, "log": built.stdout + built.stderr, "root": root}


def run_outside(wheel: dict, work: Path, *args: str) -> subprocess.CompletedProcess:
    """Python with only the unpacked wheel on its path, in `work` (outside the repository)."""
    env = {**os.environ, "PYTHONPATH": str(wheel["site"]), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, *args], cwd=work, env=env, capture_output=True, text=True)


def test_a_wheel_install_finds_the_shipped_weights_and_data_config(wheel, tmp_path):
    """`pip install .` (not editable): the wheel carries weights/ and data_configs/; nothing needs the clone."""
    site = wheel["site"]
    work = tmp_path / "elsewhere"
    work.mkdir()
    script = """
import iseg, iseg.weights, iseg.data.config as config
from iseg.demo.widget import DEFAULT_SAVE_DIR
from iseg.predictor import load_predictor
print(iseg.__file__, iseg.weights.WEIGHTS_DIR, config.load_data_config()["GrabCut"], DEFAULT_SAVE_DIR)
print(sorted(iseg.weights.default_checkpoints()), type(load_predictor("default")).__name__)
"""
    run = run_outside(wheel, work, "-c", script)
    assert run.returncode == 0, run.stderr
    package, weights, grabcut, save_dir = run.stdout.splitlines()[0].split()
    assert package == str(site / "iseg" / "__init__.py") and weights == str(site / "iseg" / "_shipped" / "weights")
    assert grabcut == str(tmp_path / "shared" / "datasets" / "GrabCut")  # relative to the current folder
    assert save_dir == str(work / "runs" / "demo")
    assert run.stdout.splitlines()[1].startswith("['coarse', 'fine'] CascadePredictor")


def test_the_wheel_declares_its_data_folders(wheel):
    """`pip wheel .` warns about no data folder ("Package would be ignored"): each is declared package data."""
    assert "would be ignored" not in wheel["log"]
    for folder in ("configs/grabcut", "configs/models", "configs/train", "reference"):
        assert any(n.startswith(f"iseg/{folder}/") for n in wheel["names"]), folder


@pytest.mark.slow
def test_the_wheel_evaluates_from_outside_the_repository(wheel, tmp_path):
    from test_training_helpers import make_folder_dataset

    data = make_folder_dataset(tmp_path / "photos", count=2)
    work = tmp_path / "elsewhere"
    work.mkdir()
    run = run_outside(wheel, work, "-m", "iseg.evaluate", "--predictor", "default", "--datasets", f"folder={data}",
                      "--limit", "2", "--max-clicks", "2", "--no-progress", "--out", str(work / "run"))
    assert run.returncode == 0, run.stderr
    assert (work / "run" / "results.csv").is_file() and "NoC@90" in run.stdout
