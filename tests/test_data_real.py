"""Readers on the real benchmark data in ../shared/datasets (skipped when that folder is absent)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from iseg.data import load_data_config, load_dataset

GRABCUT_WITHOUT_BAND = {"106024", "153093", "181079", "189080", "208001", "376043", "llama", "teddy"}


def check_sample(sample, values: set[int]) -> None:
    """Image and mask agree in size, types follow the Sample contract, mask values within `values`."""
    assert sample.image.dtype == np.uint8 and sample.image.ndim == 3 and sample.image.shape[2] == 3
    assert sample.mask.dtype == np.int8 and sample.mask.shape == sample.image.shape[:2]
    assert set(np.unique(sample.mask).tolist()) <= values
    assert (sample.mask == 1).any()


def test_default_config_points_at_shared_data(shared_datasets: Path) -> None:
    config = load_data_config()
    for name in ("GrabCut", "Berkeley", "COCO_MVal", "BSDS500"):
        assert config[name] == (shared_datasets / name).resolve()


def test_grabcut(shared_datasets: Path) -> None:
    dataset = load_dataset("grabcut", shared_datasets / "GrabCut")
    assert dataset.name == "GrabCut" and len(dataset) == 50
    suffixes = {dataset._image_path(i).suffix for i in range(len(dataset.image_keys))}
    assert suffixes == {".jpg", ".JPG", ".bmp"}
    without_band = set()
    values = set()
    for sample in dataset:
        check_sample(sample, {-1, 0, 1})
        values |= set(np.unique(sample.mask).tolist())
        if not (sample.mask == -1).any():
            without_band.add(sample.id.split("/", 1)[1])
    assert values == {-1, 0, 1}
    assert without_band == GRABCUT_WITHOUT_BAND
    assert dataset.validate() == []


def test_berkeley(shared_datasets: Path) -> None:
    dataset = load_dataset("Berkeley", shared_datasets / "Berkeley")
    assert len(dataset) == 100
    suffixes = [dataset._image_path(i).suffix for i in range(len(dataset.image_keys))]
    assert suffixes.count(".png") == 14 and suffixes.count(".jpg") == 86
    for sample in dataset:
        check_sample(sample, {0, 1})
    assert {"Berkeley/189011a", "Berkeley/189011b", "Berkeley/239007a", "Berkeley/239007b"} <= {
        f"Berkeley/{k}" for k in dataset.image_keys}


def test_coco_mval_subset(shared_datasets: Path) -> None:
    dataset = load_dataset("COCO_MVal", shared_datasets / "COCO_MVal")
    assert len(dataset) == 800
    subset = random.Random(0).sample(range(len(dataset)), 50)
    for j in subset:
        check_sample(dataset[j], {0, 1})
    assert dataset.validate(subset) == []


def test_bsds500_splits(shared_datasets: Path) -> None:
    counts = {split: len(load_dataset("BSDS500", shared_datasets / "BSDS500", split=split, per_instance=False))
              for split in ("train", "val", "test")}
    assert counts == {"train": 200, "val": 100, "test": 200}
    both = load_dataset("BSDS500", shared_datasets / "BSDS500", split="train+val", per_instance=False)
    assert len(both) == 300


def test_bsds500_samples(shared_datasets: Path) -> None:
    train = load_dataset("BSDS500", shared_datasets / "BSDS500", split="test", per_instance=False, min_area=1000)
    sample = train[0]
    check_sample(sample, {0, 1})
    assert sample.objects is not None and sample.objects.shape == sample.mask.shape
    assert sample.objects.min() >= 1  # every pixel belongs to some region of the chosen annotator
    assert (sample.mask == 1).sum() >= 1000
    label = np.unique(sample.objects[sample.mask == 1])
    assert len(label) == 1 and np.array_equal(sample.objects == label[0], sample.mask == 1)
    evaluation = load_dataset("BSDS500", shared_datasets / "BSDS500", split="val")
    assert len(evaluation) > 10 * len(evaluation.image_keys)  # every region of every annotator
    first = [evaluation[j] for j in range(5)]
    for s in first:
        check_sample(s, {0, 1})
    assert [s.id for s in first][:2] == [f"BSDS500/{evaluation.image_keys[0]}#0.1",
                                         f"BSDS500/{evaluation.image_keys[0]}#0.2"]


def test_berkeley_overlap_exclusion(shared_datasets: Path) -> None:
    from iseg.data.overlap import dataset_fingerprints, shared_photos

    root = shared_datasets / "BSDS500"
    bsds = dataset_fingerprints(load_dataset("BSDS500", root, split="train+val+test", per_instance=False))
    berkeley = dataset_fingerprints(load_dataset("Berkeley", shared_datasets / "Berkeley"))
    ids = {bsds.ids[j].split("/")[1] for _, j, _ in shared_photos(berkeley, bsds)}
    assert len(ids) == 96 and "189011" in ids
    full = {s: set(load_dataset("BSDS500", root, split=s).image_keys) for s in ("train", "val", "test")}
    assert len(ids & full["train"]) == 42 and len(ids & full["val"]) == 54 and not ids & full["test"]
    kept = load_dataset("BSDS500", root, split="train+val", per_instance=False, exclude_ids=ids)
    assert len(kept) == 300 - 96 and not ids & set(kept.image_keys)


def test_bsds500_portrait_ground_truth_is_turned_to_the_stored_photo(shared_datasets):
    from iseg.data.bsds import upright

    data = load_dataset("BSDS500", shared_datasets / "BSDS500", split="train", per_instance=False)
    sample = data[data.image_keys.index("100080")]
    assert sample.image.shape[:2] == sample.mask.shape == (321, 481)
    portrait = np.arange(6).reshape(3, 2)
    assert upright(portrait, (2, 3)).tolist() == [[4, 2, 0], [5, 3, 1]]
    assert upright(portrait, (3, 2)) is portrait
