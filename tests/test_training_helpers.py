"""Shared helpers of the training tests: a tiny synthetic `folder` dataset and a config that trains on it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

from iseg.training import TrainConfig, load_config


def make_folder_dataset(root: Path, count: int = 6, shape: tuple[int, int] = (80, 120), seed: int = 0) -> Path:
    """`count` noisy RGB images with two filled shapes each: images/<k>.png, masks/<k>_1.png and <k>_2.png."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    h, w = shape
    for k in range(count):
        image = rng.integers(0, 80, size=(h, w, 3), dtype=np.uint8)
        first, second = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
        cy, cx = int(rng.integers(20, h - 20)), int(rng.integers(25, w // 2))
        cv2.ellipse(first, (cx, cy), (int(rng.integers(10, 20)), int(rng.integers(8, 16))), 0, 0, 360, 255, -1)
        top, left = int(rng.integers(5, h - 30)), int(rng.integers(w // 2 + 5, w - 30))
        second[top:top + 25, left:left + 25] = 255
        second[first > 0] = 0
        image[first > 0] = (200, 60, 60)
        image[second > 0] = (60, 200, 90)
        cv2.imwrite(str(root / "images" / f"img{k}.png"), image[..., ::-1])
        cv2.imwrite(str(root / "masks" / f"img{k}_1.png"), first)
        cv2.imwrite(str(root / "masks" / f"img{k}_2.png"), second)
    return root


def tiny_config(tmp_path: Path, **overrides) -> TrainConfig:
    """The smoke config trained on a fresh tiny folder dataset (1 image held out for validation; no evaluation set
    to leave out: the data config holds only the folder)."""
    data_root = make_folder_dataset(tmp_path / "ds")
    data_config = tmp_path / "data.yaml"
    data_config.write_text(yaml.safe_dump({"folder": str(data_root)}))
    values = {"data": {"folder": 1.0}, "data_config": str(data_config), "val": "folder", "val_size": 1,
              "threads": 1, "exclude": []}
    values.update(overrides)
    return load_config("smoke", values)


def as_stage(checkpoint: Path, stage: str, target: Path) -> Path:
    """A copy of `checkpoint` at `target` that records training stage `stage` (a stand-in network of the other
    stage for tests: a cascade refuses a checkpoint given as the stage it was not trained as)."""
    from iseg.models import load_checkpoint, save_checkpoint

    payload = load_checkpoint(checkpoint)
    payload["train_config"] = {**payload.get("train_config", {}), "stage": stage}
    return save_checkpoint(target, payload)
