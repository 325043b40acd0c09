"""`load_predictor` and the `python -m iseg.evaluate` CLI end to end."""

import json
from pathlib import Path

import pandas as pd
import pytest

from iseg.evaluate import main
from iseg.evaluation import TABLE_COLUMNS
from iseg.grabcut import GrabCutPredictor
from iseg.predictor import load_predictor

GRABCUT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "GrabCut"


def test_load_predictor_grabcut_and_errors(tmp_path):
    assert isinstance(load_predictor("grabcut"), GrabCutPredictor)
    assert load_predictor("GrabCut", iterations=2).iterations == 2
    with pytest.raises(ValueError, match=r"unknown predictor 'foo'.*grabcut.*default.*\.pt.*coarse"):
        load_predictor("foo")
    with pytest.raises(ValueError, match="both coarse and fine"):
        load_predictor(None, coarse="a.pt")
    with pytest.raises(ValueError, match="not both"):
        load_predictor("grabcut", coarse="a.pt", fine="b.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_predictor(str(tmp_path / "missing.pt"))


def test_refuses_non_empty_out_folder(tmp_path, capsys):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(SystemExit):
        main(["--predictor", "grabcut", "--datasets", "GrabCut", "--out", str(tmp_path)])
    assert "not empty" in capsys.readouterr().err


def test_needs_a_predictor(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--datasets", "GrabCut", "--out", str(tmp_path / "run")])
    assert "--predictor" in capsys.readouterr().err


@pytest.mark.skipif(not GRABCUT.is_dir(), reason="shared GrabCut data not available")
def test_cli_end_to_end_on_two_grabcut_samples(tmp_path, capsys):
    out = tmp_path / "run"  # GrabCut twice: from the default data config and as NAME=PATH
    main(["--predictor", "grabcut", "--datasets", f"GrabCut,GrabCut={GRABCUT}",
          "--out", str(out), "--limit", "2", "--max-clicks", "3", "--threads", "1", "--no-progress"])
    assert sorted(p.name for p in out.iterdir()) == ["clicks.csv", "config.json", "ious.csv", "results.csv"]
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == TABLE_COLUMNS
    assert results["dataset"].tolist() == ["GrabCut", "GrabCut"] and results["samples"].tolist() == [2, 2]
    assert results["NoC@90"].between(1, 3).all()
    ious = pd.read_csv(out / "ious.csv")
    assert list(ious.columns) == ["dataset", "sample", "click", "iou", "seconds"]
    assert ious["sample"].nunique() == 2 and ious["click"].between(1, 3).all()
    assert ious["iou"].between(0, 1).all()
    config = json.loads((out / "config.json").read_text())
    assert config["threads"] == 1 and config["device"] == "cpu" and config["arguments"]["limit"] == 2
    assert {"torch", "date", "command"} <= config.keys()
    assert "NoC@90" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # a second run into the same folder needs --overwrite
        main(["--predictor", "grabcut", "--datasets", "GrabCut", "--out", str(out), "--limit", "1"])
