"""Continuation stretches of the default model: warm restart, ship only on a better validation, the log."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from iseg.checksum import sha256_of
from iseg.models.checkpoint import load_checkpoint, save_checkpoint
from iseg.stretch import LOG_NAME, PLOT_NAME, finish, main, read_log, stretch_settings
from iseg.training import train
from iseg.training.trainer import write_metrics
from iseg.weights import export_default
from test_training_helpers import as_stage, tiny_config


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_default(tmp_path_factory):
    """A weights folder holding a tiny default model (one coarse run exported as both stages) and its config."""
    root = tmp_path_factory.mktemp("tiny_default")
    torch.set_num_threads(1)
    cfg = tiny_config(root, epochs=1)
    run = train(cfg, root / "run", progress=False)
    weights = root / "weights"
    last = run / "checkpoints" / "last.pt"
    export_default({"coarse": last, "fine": as_stage(last, "fine", root / "fine.pt")}, weights)
    cfg.save(root / "tiny.yaml")
    return weights, root / "tiny.yaml", run


def copy_of(weights, tmp_path):
    target = tmp_path / "weights"
    target.mkdir()
    for path in weights.iterdir():
        target.joinpath(path.name).write_bytes(path.read_bytes())
    return target


def fake_stretch(run_dir, source_run, scores):
    """A finished stretch run folder with the given val_scores (epoch 0 first) and its best.pt."""
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text((source_run / "config.yaml").read_text())
    rows = [{"epoch": e, "val_noc@90": 5.0 - e, "val_miou@1": 0.5 + s / 10, "val_score": s,
             "seconds": 60.0 if e else ""} for e, s in enumerate(scores)]
    write_metrics(run_dir / "metrics.csv", rows)
    payload = load_checkpoint(source_run / "checkpoints" / "last.pt")
    save_checkpoint(run_dir / "checkpoints" / "best.pt", {**payload, "epoch": int(np.argmax(scores))})
    return run_dir


def test_a_better_stretch_is_shipped_and_logged(tiny_default, tmp_path):
    weights, _, source = tiny_default
    weights = copy_of(weights, tmp_path)
    before = json.loads((weights / "manifest.json").read_text())
    run = fake_stretch(tmp_path / "s1", source, [0.5, 0.55, 0.6])
    row = finish("coarse", run, weights, "tiny", wall_minutes=2.5)
    assert row["shipped"] and row["best_epoch"] == 2 and row["samples"] == 2 * 4
    assert row["minutes"] == 2.5 and row["train_minutes"] == 2.0 and row["samples_per_s"] == round(8 / 120, 2)
    after = json.loads((weights / "manifest.json").read_text())
    assert after["coarse"]["source"] == str(run / "checkpoints" / "best.pt")
    assert after["fine"] == before["fine"]  # the other stage is kept, file and provenance
    assert sha256_of(weights / "default_fine.pt") == before["fine"]["sha256"]
    log = read_log(weights)
    assert log["shipped"].tolist() == [True] and (weights / PLOT_NAME).is_file()


def test_a_stretch_that_does_not_beat_its_start_ships_nothing(tiny_default, tmp_path):
    weights, _, source = tiny_default
    weights = copy_of(weights, tmp_path)
    manifest = (weights / "manifest.json").read_text()
    finish("coarse", fake_stretch(tmp_path / "s1", source, [0.5, 0.55]), weights, "tiny")
    row = finish("coarse", fake_stretch(tmp_path / "s2", source, [0.6, 0.58, 0.59]), weights, "tiny")
    assert not row["shipped"] and row["val_miou@1"] == pytest.approx(0.56)  # the start's numbers stay
    assert (weights / "manifest.json").read_text() != manifest  # s1 shipped ...
    log = pd.read_csv(weights / LOG_NAME)
    assert log["shipped"].tolist() == [True, False]
    assert log["cumulative_samples"].tolist() == [4, 12] and log["cumulative_minutes"].tolist() == [1.0, 3.0]


def test_an_unfinished_run_is_refused(tiny_default, tmp_path):
    weights, _, source = tiny_default
    run = fake_stretch(tmp_path / "s1", source, [0.5, 0.6])
    write_metrics(run / "metrics.csv", [{"epoch": 0, "val_score": 0.5}])
    with pytest.raises(ValueError, match="not a finished stretch"):
        finish("coarse", run, copy_of(weights, tmp_path), "tiny")


def test_stretch_settings_start_from_the_default_and_the_fine_stage_behind_its_coarse(tiny_default):
    weights, _, _ = tiny_default
    coarse = stretch_settings("coarse", weights, 30)
    fine = stretch_settings("fine", weights, 20)
    assert coarse == {"init_checkpoint": str(weights / "default_coarse.pt"), "budget_minutes": 30}
    assert fine["init_checkpoint"] == str(weights / "default_fine.pt")
    assert fine["coarse_checkpoint"] == str(weights / "default_coarse.pt")


def test_the_command_trains_decides_and_logs(tiny_default, tmp_path):
    weights, config, _ = tiny_default
    weights = copy_of(weights, tmp_path)
    row = main(["coarse", "--minutes", "0.01", "--weights", str(weights), "--out", str(tmp_path / "s"),
                "--config", str(config), "--no-progress"])
    metrics = pd.read_csv(tmp_path / "s" / "metrics.csv")
    assert metrics["epoch"].iloc[0] == 0 and len(metrics) >= 2
    photos = pd.read_csv(tmp_path / "s" / "val_scores.csv")  # each validation photo's score, every epoch, the start too
    means = photos.groupby("epoch")["score"].mean()
    assert list(means.index) == list(metrics["epoch"]) and photos.groupby("epoch").size().nunique() == 1
    assert np.allclose(means.values, metrics["val_score"].values, atol=1e-4)
    assert row["shipped"] == (load_checkpoint(tmp_path / "s" / "checkpoints" / "best.pt")["epoch"] > 0)
    assert len(read_log(weights)) == 1


def test_the_command_needs_minutes_and_out(tiny_default, capsys):
    weights, _, _ = tiny_default
    with pytest.raises(SystemExit) as exit_:
        main(["coarse", "--weights", str(weights)])
    assert exit_.value.code == 2 and "--minutes" in capsys.readouterr().err


def test_the_command_checks_threads_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["coarse", "--threads", "100000", "--minutes", "1", "--out", str(tmp_path / "s")])
    assert exit_.value.code == 2 and "--threads must be an integer from 1 to 1024" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_val_scores_of_a_resumed_epoch_replace_its_rows_and_later_ones(tmp_path):
    from iseg.training.trainer import record_val_scores

    path = tmp_path / "val_scores.csv"
    for epoch in (0, 1, 2):
        record_val_scores(path, epoch, {"a": 0.1 * epoch, "b": 0.2})
    record_val_scores(path, 1, {"a": 0.9, "b": 0.8})  # resumed from epoch 0's checkpoint
    table = pd.read_csv(path)
    assert list(table["epoch"]) == [0, 0, 1, 1] and list(table["score"]) == [0.0, 0.2, 0.9, 0.8]
    record_val_scores(path, 2, {})
    assert len(pd.read_csv(path)) == 4
