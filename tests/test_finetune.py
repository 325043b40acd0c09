"""`python -m iseg.finetune` on a tiny annotated folder: the split by photo, both networks fine-tuned from the
default model by the project's trainer, the before/after table and curves in the run folder."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from iseg.finetune import AFTER, BEFORE, main, split_photos
from iseg.models import load_checkpoint
from iseg.weights import default_checkpoints


def make_folder(root: Path, photos: int = 4) -> Path:
    """A `folder` dataset: photos with two rectangles each (masks/<stem>_1.png, _2.png), one with a single mask."""
    rng = np.random.default_rng(0)
    for p in range(photos):
        image = rng.integers(0, 60, (72, 96, 3), dtype=np.uint8)
        masks = [np.zeros((72, 96), np.uint8) for _ in range(2)]
        masks[0][10:40, 10:40] = 255
        masks[1][30:60, 50:90] = 255
        image[masks[0] > 0] += 150
        image[masks[1] > 0, 1] += 120
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(exist_ok=True)
        cv2.imwrite(str(root / "images" / f"photo{p}.jpg"), image)
        if p == 0:
            cv2.imwrite(str(root / "masks" / "photo0.png"), masks[0])
        else:
            for k, mask in enumerate(masks, start=1):
                cv2.imwrite(str(root / "masks" / f"photo{p}_{k}.png"), mask)
    return root


def test_split_is_by_photo_stable_and_never_empty():
    stems = [f"p{i}" for i in range(10)]
    split = split_photos(stems, 0.25)
    assert len(split["holdout"]) == 2 and sorted(split["train"] + split["holdout"]) == stems
    assert split_photos(list(reversed(stems)), 0.25)["holdout"] == sorted(split["holdout"], reverse=True)
    assert split_photos(stems[:2], 0.01)["holdout"] and split_photos(stems[:2], 0.99)["train"]
    with pytest.raises(ValueError, match="at least 2"):
        split_photos(stems[:1], 0.25)


@pytest.mark.timeout(600)
def test_finetune_command_on_a_tiny_folder(tmp_path, capsys):
    data = make_folder(tmp_path / "annotated")
    out = tmp_path / "run"
    code = main(["--data", str(data), "--out", str(out), "--holdout", "0.25", "--epochs", "1",
                 "--samples-per-epoch", "8", "--set", "batch_size=4", "--set", "exclude=[]", "--threads", "1",
                 "--max-clicks", "2", "--no-flip", "--no-progress"])
    assert code == 0

    split = json.loads((out / "split.json").read_text())
    assert len(split["holdout"]) == 1 and len(split["train"]) == 3            # by photo, not by object
    held = split["holdout"][0]
    assert sorted(p.name for p in (out / "data/holdout/images").iterdir()) == [f"{held}.jpg"]
    assert all(p.name.startswith(held) for p in (out / "data/holdout/masks").iterdir())
    assert not any(p.name.startswith(f"{held}.") or p.name.startswith(f"{held}_")
                   for p in (out / "data/train/masks").iterdir())

    defaults = default_checkpoints()
    for stage in ("coarse", "fine"):                                            # both networks, from the default
        payload = load_checkpoint(out / stage / "checkpoints/last.pt")
        config = payload["train_config"]
        assert config["stage"] == stage and config["init_checkpoint"] == str(defaults[stage])
        assert list(config["data"]) == [f"folder={(out / 'data/train').resolve()}"]
        assert config["val"] is None and payload["epoch"] == 1
        start = load_checkpoint(defaults[stage])["model"]
        assert any(not torch.equal(v.float(), start[k].float()) for k, v in payload["model"].items()
                   if v.is_floating_point())                                    # trained, not copied
        assert (out / stage / "curves.png").exists()
    assert load_checkpoint(out / "fine/checkpoints/last.pt")["train_config"]["coarse_checkpoint"] == str(
        out / "coarse/checkpoints/last.pt")

    table = pd.read_csv(out / "evaluate/results.csv")
    assert list(table["method"]) == [BEFORE, AFTER]
    n_objects = 1 if held == "photo0" else 2
    assert list(table["samples"]) == [n_objects, n_objects] and table["NoC@90"].notna().all()
    assert (out / "evaluate/miou_holdout.png").exists() and (out / "evaluate/miou_holdout.svg").exists()
    assert json.loads((out / "finetune.json").read_text())["photos"] == {"train": 3, "holdout": 1}
    assert "after (fine-tuned)" in capsys.readouterr().out


def test_finetune_refuses_a_used_run_folder_and_a_bad_stage(tmp_path, capsys):
    data = make_folder(tmp_path / "annotated", photos=2)
    used = tmp_path / "used"
    used.mkdir()
    (used / "file").write_text("x")
    for args, message in ((["--out", str(used)], "not empty"),
                          (["--out", str(tmp_path / "new"), "--stages", "fine,middle"], "stages"),
                          (["--out", str(tmp_path / "new"), "--stages", "coarse,"], "stages"),
                          (["--out", str(tmp_path / "new"), "--max-clicks", "0"], "--max-clicks must be"),
                          (["--out", str(tmp_path / "new"), "--set", "lr=0"], "'lr' must be a positive")):
        with pytest.raises(SystemExit) as exit_info:
            main(["--data", str(data), *args])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "new" / "coarse").exists()  # no stage trained


@pytest.mark.timeout(600)
def test_finetune_on_every_photo_with_eval_sets_mix_and_an_exported_model(tmp_path, capsys):
    from iseg.predictor import load_predictor
    from iseg.weights import model_manifest

    data = make_folder(tmp_path / "annotated", photos=3)
    other = make_folder(tmp_path / "other", photos=2)
    for path in (other / "images").iterdir():                            # other photos than the annotated ones
        cv2.imwrite(str(path), 255 - cv2.imread(str(path)))
    out = tmp_path / "run"
    code = main(["--data", str(data), "--out", str(out), "--holdout", "0", "--eval", f"folder={other}",
                 "--no-before", "--mix", "0.25", "--stages", "fine", "--epochs", "1", "--samples-per-epoch", "4",
                 "--set", "batch_size=4", "--threads", "1", "--max-clicks", "2", "--no-flip", "--no-progress"])
    assert code == 0
    assert json.loads((out / "split.json").read_text()) == {"train": ["photo0", "photo1", "photo2"], "holdout": []}
    config = load_checkpoint(out / "fine/checkpoints/last.pt")["train_config"]
    assert config["data"][f"folder={(out / 'data/train').resolve()}"] == pytest.approx(0.75)
    assert sum(config["data"].values()) == pytest.approx(1.0) and "COCO_MVal" in config["data"]  # the base's data
    assert config["data_options"] == {"BSDS500": {"split": "train+val+test"}}
    assert f"folder={other}" in config["exclude"] and "GrabCut" in config["exclude"]  # eval photos never train

    manifest = json.loads((out / "model/manifest.json").read_text())
    assert manifest["about"]["photos"] == 3 and manifest["about"]["mix"] == 0.25
    assert manifest["about"]["samples"] == {"fine": 4} and set(manifest["about"]["minutes"]) == {"fine"}
    assert model_manifest(out / "model") == out / "model/manifest.json"
    predictor = load_predictor(str(out / "model"), flip=False)           # the demo's and iseg.evaluate's spec
    assert predictor is not None and load_predictor(str(out / "model/manifest.json"), flip=False) is not None

    table = pd.read_csv(out / "evaluate/results.csv")
    assert list(table["method"]) == [AFTER] and list(table["dataset"]) == ["folder"]
    assert (out / "evaluate/miou_folder.png").exists()
    assert json.loads((out / "finetune.json").read_text())["evaluated_on"] == {"folder": 3}


def test_holdout_zero_needs_eval_sets_and_mix_is_a_share(tmp_path, capsys):
    data = make_folder(tmp_path / "annotated", photos=2)
    for args, message in ((["--holdout", "0"], "give datasets to evaluate on (--eval)"),
                          (["--holdout", "0", "--eval", "GrabCut", "--mix", "1"], "mix must be a share")):
        with pytest.raises(SystemExit) as exit_info:
            main(["--data", str(data), "--out", str(tmp_path / "new"), *args])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err and "Traceback" not in err


def test_an_annotated_photo_that_is_an_evaluation_photo_never_trains(tmp_path, capsys):
    data = make_folder(tmp_path / "annotated", photos=2)
    copy = make_folder(tmp_path / "copy", photos=2)                      # the same photos under another folder
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", str(data), "--out", str(tmp_path / "run"), "--holdout", "0", "--eval", f"folder={copy}",
              "--threads", "1", "--no-progress"])
    assert exit_info.value.code == 2 and "is an evaluation or validation photo" in capsys.readouterr().err
    assert not (tmp_path / "run" / "fine").exists()
