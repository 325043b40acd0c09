"""The set-up files a new user relies on: environment.yml, pyproject extras, Makefile targets, CI entry."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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
