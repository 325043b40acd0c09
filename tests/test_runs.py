"""Run folders as data: what evaluation records (clicks.csv, config.json's replay block) and `iseg.runs.load_runs`."""

import json

import numpy as np
import pandas as pd
import pytest

from iseg.clicks import Clicker
from iseg.evaluate import evaluate_to_folder
from iseg.evaluation import CLICK_COLUMNS
from iseg.runs import NO_CLICKS_NOTE, NO_REPLAY_NOTE, find_runs, load_runs, predictor_settings, run_names, \
    sample_table
from test_evaluation import DiskPredictor, TinyDataset


def write_run(out, predictor=None, **options):
    """An evaluation of the tiny dataset into `out` (3 samples, disk predictor unless given)."""
    info = {"method": "disks", "predictor": {"spec": "disks"}, "options": options}
    return evaluate_to_folder(predictor or DiskPredictor(), [TinyDataset()], out, info, progress=False, **options)


def test_clicks_csv_records_the_clicks_the_protocol_made(tmp_path):
    write_run(tmp_path / "run", max_clicks=4, stop_early=False)
    clicks = pd.read_csv(tmp_path / "run" / "clicks.csv")
    ious = pd.read_csv(tmp_path / "run" / "ious.csv")
    assert list(clicks.columns) == CLICK_COLUMNS
    assert clicks[["dataset", "sample", "click"]].equals(ious[["dataset", "sample", "click"]])
    for i, sample in enumerate(TinyDataset().samples):  # replay the protocol's clicker on the recorded masks
        rows = clicks[clicks["sample"] == sample.id]
        assert (rows["index"] == i).all()
        clicker, predictor = Clicker(sample.mask), DiskPredictor()
        predictor.set_image(sample.image)
        pred = np.zeros(sample.mask.shape, bool)
        for _, row in rows.iterrows():
            click = clicker.make_next_click(pred)
            assert (click.row, click.col, click.is_positive) == (row["row"], row["col"], row["positive"])
            pred = predictor.predict(clicker.clicks, None) > 0.49


def test_config_records_what_a_replay_needs(tmp_path, shared_datasets):
    from iseg.data import load_dataset
    from iseg.grabcut import GrabCutPredictor

    data = load_dataset("GrabCut", shared_datasets / "GrabCut")
    info = {"predictor": {"spec": "grabcut", "iterations": 2, "coarse": None}}
    evaluate_to_folder(GrabCutPredictor(iterations=2), [data], tmp_path, info, limit=1, max_clicks=1, progress=False)
    replay = json.loads((tmp_path / "config.json").read_text())["replay"]
    assert replay["predictor"] == {"spec": "grabcut", "iterations": 2}
    defaults = GrabCutPredictor()
    assert replay["settings"] == {"class": "GrabCutPredictor", "work_size": defaults.work_size,
                                  "radius": defaults.radius, "iterations": 2, "init_box": defaults.init_box, "seed": 0}
    assert replay["datasets"] == [{"name": "GrabCut", "root": str((shared_datasets / "GrabCut").resolve()),
                                   "split": None}]
    assert replay["pred_thr"] == 0.49 and replay["checkpoints"] == {}


def test_predictor_settings_are_the_resolved_sizes_of_a_checkpoint():
    from iseg.predictor import load_predictor

    cascade = load_predictor("default", flip=False)
    assert predictor_settings(cascade) == {"class": "CascadePredictor", "flip": False,
                                           "coarse_size": cascade.coarse_size, "target_size": cascade.target_size,
                                           "brs": None}
    assert isinstance(cascade.coarse_size, int) and isinstance(cascade.target_size, int)


def test_load_runs_finds_every_run_and_joins_clicks_to_ious(tmp_path):
    write_run(tmp_path / "a", max_clicks=3, stop_early=False)
    write_run(tmp_path / "deep" / "b", max_clicks=5)
    (tmp_path / "training").mkdir()  # not a run: no evaluation files
    (tmp_path / "training" / "config.json").write_text("{}")
    runs = load_runs([tmp_path])
    assert runs.runs["run"].tolist() == ["a", "deep/b"] and runs.runs["replayable"].all()
    assert runs.runs["max_clicks"].tolist() == [3, 5]  # from the recorded options
    assert set(runs.results["run"]) == {"a", "deep/b"} and runs.results.columns[0] == "run"
    a = runs.clicks[runs.clicks.run == "a"]
    assert len(a) == 9 and not a[["row", "col", "positive", "iou"]].isna().any().any()
    assert runs.path("deep/b") == (tmp_path / "deep" / "b").resolve()
    assert find_runs([tmp_path / "a"]) == [(tmp_path / "a").resolve()]  # a run folder given directly
    assert run_names([(tmp_path / "a").resolve()]) == ["a"]


def test_older_and_broken_runs_load_with_a_note(tmp_path):
    write_run(tmp_path / "old", max_clicks=3)
    (tmp_path / "old" / "clicks.csv").unlink()  # a run of a version that did not record clicks
    write_run(tmp_path / "noreplay", max_clicks=3)
    config = json.loads((tmp_path / "noreplay" / "config.json").read_text())
    (tmp_path / "noreplay" / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "replay"}))
    write_run(tmp_path / "broken", max_clicks=3)
    (tmp_path / "broken" / "config.json").write_text("{not json")
    damaged = {"truncated": ("config.json", '{"method": "x"'), "garbage": ("ious.csv", "a,b\n\x00\x01,zz\n"),
               "badiou": ("ious.csv", "dataset,sample,click,iou,seconds\nG,s,1,7.5,0.1\n"),
               "empty": ("results.csv", ""), "headeronly": ("results.csv", "dataset,NoC@90\n")}
    for name, (file, text) in damaged.items():
        write_run(tmp_path / name, max_clicks=3)
        (tmp_path / name / file).write_text(text)
    with pytest.warns(UserWarning, match="could not be read") as warned:
        runs = load_runs([tmp_path])
    assert len(warned) == 1 + len(damaged)
    notes = runs.runs.set_index("run")["note"]
    assert notes["old"] == NO_CLICKS_NOTE and notes["noreplay"] == NO_REPLAY_NOTE
    assert all(notes[name].startswith("could not be read") for name in ["broken", *damaged])
    assert set(runs.clicks["run"]) == {"old", "noreplay"}  # the broken ones have no rows
    assert runs.clicks[runs.clicks.run == "old"]["row"].isna().all()
    assert not sample_table(runs, ["old", "noreplay"]).empty  # tables still work without clicks
    assert list(sample_table(runs, ["broken"], labels=["A"]).columns) == ["dataset", "sample", "NoC@85 A", "NoC@90 A"]


def test_no_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        load_runs([tmp_path / "missing"])
    assert load_runs([tmp_path]).runs.empty


def test_sample_table_counts_clicks_per_run_and_the_difference(tmp_path):
    write_run(tmp_path / "a", max_clicks=4, stop_early=False)
    runs = load_runs([tmp_path / "a"])
    ious = runs.clicks.copy()
    ious["iou"] = np.where(ious["click"] >= 2, 0.95, 0.5)  # run b: 90 % at click 2 on every sample
    runs.clicks = pd.concat([runs.clicks, ious.assign(run="b")], ignore_index=True)
    runs.runs = pd.concat([runs.runs, runs.runs.assign(run="b")], ignore_index=True)
    table = sample_table(runs, ["a", "b"], labels=["A", "B"])
    expected = runs.clicks[runs.clicks.run == "a"].groupby("sample")["iou"].agg(
        lambda s: int(np.argmax(s.to_numpy() >= np.float32(0.9))) + 1 if (s >= np.float32(0.9)).any() else 4)
    assert table["sample"].tolist() == ["Tiny/0", "Tiny/1", "Tiny/2"]
    assert table["NoC@90 A"].tolist() == expected.tolist() and (table["NoC@90 B"] == 2).all()
    assert (table["Δ@90 B"] == 2 - table["NoC@90 A"]).all()
    assert list(table.columns) == ["dataset", "sample", "NoC@85 A", "NoC@90 A", "NoC@85 B", "NoC@90 B", "Δ@85 B",
                                   "Δ@90 B"]
    against_b = sample_table(runs, ["a", "b"], labels=["A", "B"], reference=1)        # B as the reference
    assert (against_b["Δ@90 A"] == -table["Δ@90 B"]).all() and "Δ@90 B" not in against_b
    with pytest.raises(ValueError, match="reference must be the number of a chosen run"):
        sample_table(runs, ["a", "b"], reference=2)


def test_runs_of_compare_as_notebook_03_makes_them(tmp_path):
    from iseg.evaluate import compare

    table, ious = compare({"GrabCut (OpenCV)": {"spec": "grabcut", "iterations": 2}}, [TinyDataset()],
                          tmp_path / "evaluate", max_clicks=2, stop_early=False, progress=False)
    table.to_csv(tmp_path / "evaluate" / "results.csv", index=False)  # notebook 03's tables of every method
    ious.to_csv(tmp_path / "evaluate" / "ious.csv", index=False)
    runs = load_runs([tmp_path])
    assert runs.runs[["run", "method", "max_clicks"]].values.tolist() == [["GrabCut_OpenCV", "GrabCut (OpenCV)", 2]]
    replay = runs.configs["GrabCut_OpenCV"]["replay"]
    assert replay["predictor"] == {"spec": "grabcut", "iterations": 2}
    assert replay["settings"]["iterations"] == 2 and replay["datasets"][0]["root"] is None
