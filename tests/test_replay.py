"""Replaying a sample of a real (small) evaluation run reproduces the recorded IoU at every click."""

import json
import shutil

import numpy as np
import pytest

from iseg.replay import Replay, ReplayUnavailable, load_run_predictor, replay_sample
from iseg.runs import load_runs


def test_replay_reproduces_every_recorded_iou(small_runs):
    runs = load_runs([small_runs])
    assert runs.runs["run"].tolist() == ["grabcut", "ifpn"] and runs.runs["replayable"].all()
    for run in ("ifpn", "grabcut"):
        predictor, notes = load_run_predictor(runs.configs[run])
        assert notes == []
        for (dataset, sample), rows in runs.clicks[runs.clicks.run == run].groupby(["dataset", "sample"]):
            replay = replay_sample(runs, run, dataset, sample, predictor=predictor)
            assert len(replay) == len(rows)
            for k in range(1, len(replay) + 1):
                step = replay.step(k)
                assert np.float32(step.iou) == np.float32(step.recorded_iou), (run, sample, k)
                assert (step.coarse is not None and step.roi is not None) == (run == "ifpn")
            assert [s.clicks[-1] for s in replay.steps] == replay.clicks


def test_steps_are_predicted_once_in_order(small_runs):
    runs = load_runs([small_runs])
    sample = runs.clicks[runs.clicks.run == "grabcut"]["sample"].iloc[0]
    replay = replay_sample(runs, "grabcut", "GrabCut", sample)
    last = replay.step(3)
    assert len(replay.steps) == 3 and replay.step(1) is replay.steps[0] and replay.step(3) is last
    with pytest.raises(IndexError):
        replay.step(4)
    with pytest.raises(ValueError, match="one recorded IoU per click"):
        Replay(replay.predictor, replay.sample, replay.clicks, [0.5], 0.49)


def test_what_cannot_be_replayed_says_why(small_runs, tmp_path):
    shutil.copytree(small_runs / "grabcut", tmp_path / "moved")
    config = json.loads((tmp_path / "moved" / "config.json").read_text())
    config["replay"]["datasets"][0]["root"] = str(tmp_path / "nowhere")
    (tmp_path / "moved" / "config.json").write_text(json.dumps(config))
    shutil.copytree(small_runs / "grabcut", tmp_path / "old")
    (tmp_path / "old" / "clicks.csv").unlink()
    runs = load_runs([tmp_path])
    sample = runs.clicks["sample"].iloc[0]
    with pytest.raises(ReplayUnavailable, match="cannot read dataset GrabCut"):
        replay_sample(runs, "moved", "GrabCut", sample)
    with pytest.raises(ReplayUnavailable, match="no clicks.csv"):
        replay_sample(runs, "old", "GrabCut", sample)
    with pytest.raises(ReplayUnavailable, match="did not evaluate"):
        replay_sample(runs, "old", "GrabCut", "GrabCut/none")


def test_a_changed_checkpoint_is_noted(small_runs):
    config = json.loads((small_runs / "ifpn" / "config.json").read_text())
    path = next(iter(config["replay"]["checkpoints"]))
    config["replay"]["checkpoints"][path] = "0" * 64
    _, notes = load_run_predictor(config)
    assert notes == [f"checkpoint {path} changed since the run"]
    config["replay"]["predictor"] = {"spec": str(small_runs / "missing.pt")}
    with pytest.raises(ReplayUnavailable, match="cannot rebuild"):
        load_run_predictor(config)


def test_a_single_network_run_with_ritm_zoom_in_replays_exactly(tmp_path, shared_datasets):
    from iseg.evaluate import main
    from iseg.weights import default_checkpoints

    coarse = default_checkpoints()["coarse"]
    main(["--predictor", str(coarse), "--datasets", f"GrabCut={shared_datasets / 'GrabCut'}", "--limit", "1",
          "--max-clicks", "3", "--full-curve", "--no-flip", "--no-progress", "--out", str(tmp_path / "single")])
    runs = load_runs([tmp_path])
    config = runs.configs["single"]["replay"]
    assert config["settings"]["class"] == "SingleNetPredictor" and config["settings"]["use_zoom_in"] is True
    assert list(config["checkpoints"]) == [str(coarse.resolve())]
    sample = runs.clicks["sample"].iloc[0]
    replay = replay_sample(runs, "single", "GrabCut", sample)
    assert [np.float32(replay.step(k).iou) for k in (1, 2, 3)] == [np.float32(v) for v in replay.recorded_ious]
    assert replay.step(3).coarse is None
