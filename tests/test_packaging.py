"""The set-up files a new user relies on: environment.yml, pyproject extras, Makefile targets, CI entry."""

from __future__ import annotations

import re
import tomllib
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


def test_a_wheel_install_finds_the_shipped_weights_and_data_config(tmp_path):
    """`pip install .` (not editable): the wheel carries weights/ and data_configs/; nothing needs the clone."""
    import os
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".*", "runs", "build", "*.egg-info", "__pycache__",
                                                             "notebooks", "tests", "docs", "datasets"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            str(src), "-w", str(tmp_path / "wheel")], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    site = tmp_path / "site"
    with zipfile.ZipFile(next((tmp_path / "wheel").glob("iseg-*.whl"))) as wheel:
        wheel.extractall(site)  # a pure-Python wheel installs by unpacking
    work = tmp_path / "elsewhere"
    work.mkdir()
    script = """
import iseg, iseg.weights, iseg.data.config as config
from iseg.demo.widget import DEFAULT_SAVE_DIR
from iseg.predictor import load_predictor
print(iseg.__file__, iseg.weights.WEIGHTS_DIR, config.load_data_config()["GrabCut"], DEFAULT_SAVE_DIR)
print(sorted(iseg.weights.default_checkpoints()), type(load_predictor("default")).__name__)
"""
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    package, weights, grabcut, save_dir = run.stdout.splitlines()[0].split()
    assert package == str(site / "iseg" / "__init__.py") and weights == str(site / "iseg" / "_shipped" / "weights")
    assert grabcut == str(tmp_path / "shared" / "datasets" / "GrabCut")  # relative to the current folder
    assert save_dir == str(work / "runs" / "demo")
    assert run.stdout.splitlines()[1].startswith("['coarse', 'fine'] CascadePredictor")


@pytest.mark.slow
def test_the_wheel_declares_its_data_and_evaluates_from_outside_the_repository(tmp_path):
    """`pip wheel .` warns about no data folder ("Package would be ignored"); the wheel, installed outside the
    repository, evaluates the default model on a folder dataset."""
    import os
    import shutil
    import subprocess
    import sys
    import zipfile

    from test_training_helpers import make_folder_dataset

    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".*", "runs", "build", "*.egg-info", "__pycache__",
                                                             "notebooks", "tests", "docs", "datasets"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
                            str(src), "-w", str(tmp_path / "wheel")], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert "would be ignored" not in built.stdout + built.stderr
    site = tmp_path / "site"
    with zipfile.ZipFile(next((tmp_path / "wheel").glob("iseg-*.whl"))) as wheel:
        names = wheel.namelist()
        wheel.extractall(site)
    for folder in ("configs/grabcut", "configs/models", "configs/train", "reference"):
        assert any(n.startswith(f"iseg/{folder}/") for n in names), folder
    data = make_folder_dataset(tmp_path / "photos", count=2)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-m", "iseg.evaluate", "--predictor", "default", "--datasets",
                          f"folder={data}", "--limit", "2", "--max-clicks", "2", "--no-progress", "--out",
                          str(work / "run")], cwd=work, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (work / "run" / "results.csv").is_file() and "NoC@90" in run.stdout
