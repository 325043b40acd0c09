"""CVC-ClinicDB: the reader, its split by video sequence, the split names, and the simulated annotator on it."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from iseg.data import load_dataset
from iseg.data.cvc import TEST_SEQUENCES
from iseg.data.registry import dataset_root

RADIUS = 6


def disk(shape, row, col, radius=RADIUS):
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (rows - row) ** 2 + (cols - col) ** 2 <= radius**2


def make_cvc(root: Path, sequences: dict[str, int]) -> Path:
    """A CVC-ClinicDB-like folder: frames 40x50 with a polyp of two disks (0/255 masks), sequences.csv."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for n, frame in enumerate(sequences):
        cv2.imwrite(str(root / "images" / f"{frame}.jpg"), rng.integers(0, 255, (40, 50, 3), dtype=np.uint8))
        mask = disk((40, 50), 12, 12 + n % 5) | disk((40, 50), 28, 34)
        cv2.imwrite(str(root / "masks" / f"{frame}.png"), mask.astype(np.uint8) * 255)
    lines = ["frame,sequence"] + [f"{frame},{seq}" for frame, seq in sequences.items()]
    (root / "sequences.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def cvc(tmp_path) -> Path:
    """Frames 001-009 of sequences 1, 2, 3 (3 is a test sequence), three frames each."""
    return make_cvc(tmp_path / "CVC", {f"{n:03d}": 1 + (n - 1) // 3 for n in range(1, 10)})


def test_splits_are_by_sequence_and_named(cvc):
    every = load_dataset("CVC_ClinicDB", cvc)
    train, test = load_dataset("CVC_ClinicDB_train", cvc), load_dataset("cvc_clinicdb_test", cvc)
    assert 3 in TEST_SEQUENCES and not {1, 2} & TEST_SEQUENCES
    assert test.image_keys == ["007", "008", "009"] and train.image_keys == [f"{n:03d}" for n in range(1, 7)]
    assert len(every) == 9 and load_dataset("CVC_ClinicDB", cvc, split="test").image_keys == test.image_keys
    sample = test[0]
    assert sample.id == "CVC_ClinicDB_test/007" and set(np.unique(sample.mask)) == {0, 1}
    assert (sample.mask == 1).sum() == (disk((40, 50), 12, 13) | disk((40, 50), 28, 34)).sum()
    assert load_dataset("CVC_ClinicDB_test", cvc, split="test").image_keys == test.image_keys  # as replays ask
    with pytest.raises(ValueError, match="split already"):
        load_dataset("CVC_ClinicDB_test", cvc, split="train")
    with pytest.raises(ValueError, match="split must be one of"):
        load_dataset("CVC_ClinicDB", cvc, split="val")


def test_the_split_names_share_the_dataset_folder_of_the_data_config(cvc):
    config = {"CVC_ClinicDB": str(cvc)}
    assert dataset_root("CVC_ClinicDB_test", config) == dataset_root("CVC_ClinicDB", config) == cvc


def test_a_frame_without_sequence_or_a_bad_table_is_named(cvc):
    (cvc / "sequences.csv").write_text("frame,sequence\n001,1\n002,x\n")
    with pytest.raises(ValueError, match=r"line 3: sequence 'x' is not a whole number"):
        load_dataset("CVC_ClinicDB", cvc)
    (cvc / "sequences.csv").write_text("frame,sequence\n001,1\n")
    with pytest.raises(ValueError, match=r"8 frame\(s\) have no line in .*sequences.csv"):
        load_dataset("CVC_ClinicDB", cvc)
    (cvc / "sequences.csv").unlink()
    with pytest.raises(FileNotFoundError, match="sequences.csv"):
        load_dataset("CVC_ClinicDB", cvc)


def test_the_test_split_is_never_a_training_or_validation_set():
    from iseg.training.data import check_val_name

    with pytest.raises(ValueError, match="evaluation benchmark"):
        check_val_name("CVC_ClinicDB_test")


def test_spread_photos_takes_turns_over_groups_and_nests():
    from iseg.annotate.simulate import spread_photos

    keys = ["a1", "a2", "a3", "b1", "c1", "c2"]
    groups = {"a1": 1, "a2": 1, "a3": 1, "b1": 2, "c1": 3, "c2": 3}
    assert spread_photos(keys, groups, 6) == ["a1", "b1", "c1", "a2", "c2", "a3"]
    assert spread_photos(keys, groups, 4) == spread_photos(keys, groups, 6)[:4]
    assert spread_photos(keys, None, 2) == ["a1", "a2"]
    with pytest.raises(ValueError, match="asked for 7 photos"):
        spread_photos(keys, groups, 7)


class DiskPredictor:
    """Stand-in model: object = disks of RADIUS px around positive clicks minus disks around negative ones."""

    def set_image(self, image):
        self.shape = image.shape[:2]

    def predict(self, clicks, prev_prob):
        prob = np.zeros(self.shape, np.float32)
        for click in clicks:
            prob[disk(self.shape, click.row, click.col)] = float(click.is_positive)
        return prob


def test_simulated_annotation_clicks_as_the_protocol_and_saves_the_models_masks(cvc, tmp_path):
    from iseg.annotate.simulate import simulate

    out = tmp_path / "sim"
    table = simulate(load_dataset("CVC_ClinicDB_train", cvc), out, DiskPredictor(), photos=4, category="polyp",
                     progress=False)
    assert list(table["photo"]) == ["001", "004", "002", "005"] and list(table["group"]) == [1, 2, 1, 2]
    assert list(table["clicks"]) == [2, 2, 2, 2] and (table["iou"] > 0.9).all()  # one click per disk
    annotated = load_dataset("folder", out / "annotation")
    assert annotated.image_keys == ["001", "002", "004", "005"]
    saved = annotated[0].mask == 1
    assert np.array_equal(saved, disk((40, 50), 12, 12) | disk((40, 50), 28, 34))
    coco = json.loads((out / "annotation/annotations/instances_images.json").read_text())
    assert [c["name"] for c in coco["categories"]] == ["polyp"] and len(coco["annotations"]) == 4
    summary = json.loads((out / "simulation.json").read_text())
    assert summary["clicks"] == 8 and summary["photos"] == 4 and summary["groups"] == 2
    assert pd.read_csv(out / "simulation.csv")["clicks"].sum() == 8
    with pytest.raises(FileExistsError, match="not empty"):
        simulate(load_dataset("CVC_ClinicDB_train", cvc), out, DiskPredictor(), photos=1, progress=False)


def test_simulated_annotation_stops_at_the_click_limit(cvc, tmp_path):
    from iseg.annotate.simulate import simulate

    table = simulate(load_dataset("CVC_ClinicDB_test", cvc), tmp_path / "sim", DiskPredictor(), photos=1,
                     target_iou=1.0, max_clicks=1, progress=False)
    assert list(table["clicks"]) == [1] and table["iou"][0] < 0.6
