"""Evaluation photos never reach training: photos matched by content across datasets (iseg.data.overlap)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from iseg.data import load_dataset
from iseg.data.overlap import MATCH_DISTANCE, dataset_fingerprints, distances, fingerprint, shared_photos
from iseg.training import load_config
from iseg.training.data import build_data
from test_training_helpers import make_folder_dataset


def textured(seed: int, shape=(90, 140)) -> np.ndarray:
    """A smooth random RGB photo stand-in."""
    small = np.random.default_rng(seed).integers(0, 255, size=(6, 8, 3)).astype(np.uint8)
    return cv2.resize(small, shape[::-1], interpolation=cv2.INTER_CUBIC)


def test_fingerprint_ignores_rotation_flip_exposure_and_size():
    image = textured(0)
    base = dataset_like([image])
    variants = [np.rot90(image).copy(), image[:, ::-1].copy(), np.clip(image * 0.8 + 20, 0, 255).astype(np.uint8),
                cv2.resize(image, (70, 45), interpolation=cv2.INTER_AREA)]
    assert (distances(base, dataset_like(variants)) < MATCH_DISTANCE).all()
    others = dataset_like([textured(seed) for seed in range(1, 8)])
    assert (distances(base, others) > MATCH_DISTANCE).all()


def dataset_like(images: list[np.ndarray]):
    """Fingerprints of in-memory images."""
    from iseg.data.overlap import Fingerprints

    return Fingerprints([f"x/{k}" for k in range(len(images))], [Path(f"{k}.png") for k in range(len(images))],
                        np.stack([fingerprint(i) for i in images]))


def test_training_drops_a_renamed_rotated_evaluation_photo(tmp_path):
    train_root = make_folder_dataset(tmp_path / "train", count=6)
    eval_root = tmp_path / "eval"
    (eval_root / "images").mkdir(parents=True)
    (eval_root / "masks").mkdir()
    photo = cv2.imread(str(train_root / "images" / "img3.png"))
    cv2.imwrite(str(eval_root / "images" / "renamed.jpg"), np.rot90(photo))
    mask = cv2.imread(str(train_root / "masks" / "img3_1.png"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(eval_root / "masks" / "renamed.png"), np.rot90(mask))
    data_config = tmp_path / "data.yaml"
    data_config.write_text(yaml.safe_dump({"folder": str(train_root)}))
    cfg = load_config("smoke", {"data": {"folder": 1.0}, "data_config": str(data_config), "val": None,
                                "exclude": [f"folder={eval_root}"]})
    train_set, _, _ = build_data(cfg)
    (kept,) = train_set.datasets
    assert len(kept) == 5
    assert all(kept.dataset.image_keys[i] != "img3" for i in kept.indices)


def test_shared_data_overlaps_are_found(shared_datasets):
    bsds = dataset_fingerprints(load_dataset("BSDS500", shared_datasets / "BSDS500", split="train+val+test",
                                             per_instance=False))
    grabcut = dataset_fingerprints(load_dataset("GrabCut", shared_datasets / "GrabCut"))
    pairs = {(grabcut.ids[i], bsds.ids[j]) for i, j, _ in shared_photos(grabcut, bsds)}
    assert len(pairs) == 20  # shared/datasets/README.md lists the 20 GrabCut photos that are BSDS500 photos
    assert ("GrabCut/124080", "BSDS500/124084") in pairs
    berkeley = dataset_fingerprints(load_dataset("Berkeley", shared_datasets / "Berkeley"))
    matched = {berkeley.ids[i] for i, _, _ in shared_photos(berkeley, bsds)}
    assert len(matched) == len(berkeley.ids) == 100  # every Berkeley photo, the 14 rotated ones included


@pytest.mark.parametrize("config", ["coarse_cpu", "fine_cpu"])
def test_default_training_data_holds_no_test_photo(shared_datasets, config):
    """No photo the default trains on is a test photo: GrabCut, Berkeley, or a CVC-ClinicDB frame (every frame:
    the domain study's test sequences and the frames notebook 06 annotates by default)."""
    cfg = load_config(config)
    train_set, _, val_samples = build_data(cfg)
    protected = [dataset_fingerprints(load_dataset(name)) for name in ("GrabCut", "Berkeley", "CVC_ClinicDB")]
    for dataset in train_set.datasets:
        own = dataset_fingerprints(dataset)
        for other in protected:
            assert shared_photos(own, other) == [], f"{dataset.dataset.name} holds evaluation photos"
    bsds = next(d for d in train_set.datasets if d.dataset.name == "BSDS500")
    assert len(bsds) == 500 - 99  # every split, less the 99 photos that are GrabCut or Berkeley photos
    val = dataset_like([s.image for s in val_samples])
    for other in protected:
        assert shared_photos(val, other) == []
    for dataset in train_set.datasets:  # a validation photo is never trained on, under any name
        assert shared_photos(dataset_fingerprints(dataset), val) == [], f"{dataset.dataset.name} holds val photos"
