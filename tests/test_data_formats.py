"""Every format reader on a small fixture the test builds in the format's real on-disk layout."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
import torch
from pycocotools import mask as mask_utils
from PIL import Image

from iseg.data import load_dataset

H, W = 40, 60


def write_image(path: Path, shape: tuple[int, int] = (H, W)) -> None:
    """A random colour image file (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(path.name))
    cv2.imwrite(str(path), rng.integers(0, 256, (*shape, 3), dtype=np.uint8))


def label_map() -> np.ndarray:
    """(H, W) uint8 instance map: object 1 big (1200 px), object 2 small (100 px)."""
    labels = np.zeros((H, W), np.uint8)
    labels[:30, :40] = 1
    labels[30:40, 50:60] = 2
    return labels


def write_palette_png(path: Path, labels: np.ndarray) -> None:
    """A VOC-style palette PNG of index values."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(labels, mode="P")
    image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [224, 224, 192] * 253)
    image.save(path)


def test_sbd(tmp_path: Path) -> None:
    for stem in ("2008_000001", "2008_000002"):
        write_image(tmp_path / "img" / f"{stem}.jpg")
        (tmp_path / "inst").mkdir(exist_ok=True)
        scipy.io.savemat(tmp_path / "inst" / f"{stem}.mat", {"GTinst": {
            "Segmentation": label_map(), "Boundaries": np.zeros((2, 1), object), "Categories": np.array([[15], [3]])}})
    (tmp_path / "train.txt").write_text("2008_000001\n")
    (tmp_path / "val.txt").write_text("2008_000001\n2008_000002\n")
    dataset = load_dataset("sbd", tmp_path)
    assert dataset.name == "SBD" and len(dataset) == 4
    assert [s.id for s in dataset] == ["SBD/2008_000001#1", "SBD/2008_000001#2", "SBD/2008_000002#1",
                                       "SBD/2008_000002#2"]
    assert np.array_equal(dataset[1].mask, (label_map() == 2).astype(np.int8))
    assert dataset[0].objects is None
    assert len(load_dataset("SBD", tmp_path, split="train")) == 2
    assert dataset.validate() == []


def test_pascal_voc_ignore_and_training(tmp_path: Path) -> None:
    labels = label_map()
    labels[30, :40] = 255
    write_image(tmp_path / "JPEGImages" / "2007_000032.jpg")
    write_palette_png(tmp_path / "SegmentationObject" / "2007_000032.png", labels)
    split = tmp_path / "ImageSets" / "Segmentation"
    split.mkdir(parents=True)
    (split / "val.txt").write_text("2007_000032\n")
    dataset = load_dataset("PascalVOC", tmp_path)
    assert len(dataset) == 2
    mask = dataset[0].mask
    assert set(np.unique(mask).tolist()) == {-1, 0, 1} and (mask[30, :40] == -1).all() and (mask == 1).sum() == 1200
    training = load_dataset("pascalvoc", tmp_path, per_instance=False)
    assert len(training) == 1
    sample = training[0]
    assert sample.id == "PascalVOC/2007_000032"
    assert set(np.unique(sample.objects).tolist()) == {-1, 0, 1, 2}
    assert (sample.mask == 1).sum() == 1200  # only object 1 reaches min_area=1000


def test_training_draw_respects_min_area(tmp_path: Path) -> None:
    write_image(tmp_path / "JPEGImages" / "a.jpg")
    write_palette_png(tmp_path / "SegmentationObject" / "a.png", label_map())
    (tmp_path / "ImageSets" / "Segmentation").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Segmentation" / "train.txt").write_text("a\n")
    torch.manual_seed(0)
    big_only = load_dataset("PascalVOC", tmp_path, split="train", per_instance=False)
    assert {int((big_only[0].mask == 1).sum()) for _ in range(10)} == {1200}
    both = load_dataset("PascalVOC", tmp_path, split="train", per_instance=False, min_area=50)
    assert {int((both[0].mask == 1).sum()) for _ in range(30)} == {1200, 100}
    none_big = load_dataset("PascalVOC", tmp_path, split="train", per_instance=False, min_area=5000)
    assert int((none_big[0].mask == 1).sum()) == 1200  # falls back to the largest object


def test_coco(tmp_path: Path) -> None:
    write_image(tmp_path / "val2017" / "000000000001.jpg")
    write_image(tmp_path / "val2017" / "000000000002.jpg")
    rle = {"counts": [0, H * 10, H * (W - 10)], "size": [H, W]}  # column-major: the first 10 columns
    crowd_mask = np.zeros((H, W), np.uint8)
    crowd_mask[30:40, 40:50] = 1
    crowd = mask_utils.encode(np.asfortranarray(crowd_mask))
    crowd["counts"] = crowd["counts"].decode()
    annotations = [
        {"id": 7, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 200.0, "bbox": [20, 0, 10, 20],
         "segmentation": [[20, 0, 30, 0, 30, 20, 20, 20]]},
        {"id": 3, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 400.0, "bbox": [0, 0, 10, 40],
         "segmentation": rle},
        {"id": 9, "image_id": 1, "category_id": 1, "iscrowd": 1, "area": 100.0, "bbox": [40, 30, 10, 10],
         "segmentation": crowd},
        {"id": 11, "image_id": 2, "category_id": 1, "iscrowd": 1, "area": 10.0, "bbox": [0, 0, 1, 1],
         "segmentation": rle},
    ]
    coco = {"images": [{"id": 1, "file_name": "000000000001.jpg", "height": H, "width": W},
                       {"id": 2, "file_name": "000000000002.jpg", "height": H, "width": W}],
            "annotations": annotations, "categories": [{"id": 1, "name": "thing", "supercategory": "thing"}]}
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(coco))
    dataset = load_dataset("COCO", tmp_path, split="val")
    assert len(dataset) == 2  # image 2 has only a crowd region: left out
    first, second = dataset[0], dataset[1]
    assert (first.id, second.id) == ("COCO/000000000001#3", "COCO/000000000001#7")
    assert (first.mask[:, :10] == 1).all() and (first.mask == 1).sum() == 400
    assert (second.mask[1:20, 21:30] == 1).all() and (second.mask == 1).sum() > 150
    assert (first.mask == -1).sum() == 100 and (first.mask[30:40, 40:50] == -1).all()
    training = load_dataset("COCO", tmp_path, per_instance=False, min_area=0)
    assert len(training) == 1
    assert set(np.unique(training[0].objects).tolist()) == {-1, 0, 1, 2}


def test_coco_lvis(tmp_path: Path) -> None:
    split = tmp_path / "train"
    layers = [np.zeros((H, W), np.uint8), np.zeros((H, W), np.uint8)]
    layers[0][:10] = 1
    layers[0][20:30] = 2
    layers[1][5:25, :20] = 1
    layers[1][35:] = 3
    annotation = {"img_b": {"num_instance_masks": 3, "hierarchy": {0: None, 1: None, 2: None}},
                  "img_a": {"num_instance_masks": 1, "hierarchy": {0: None}},
                  "img_empty": {"num_instance_masks": 0, "hierarchy": {}}}
    (split / "masks").mkdir(parents=True)
    with open(split / "hannotation.pickle", "wb") as f:
        pickle.dump(annotation, f)
    encoded = [cv2.imencode(".png", layer)[1] for layer in layers]
    for stem, mapping in (("img_b", [(0, 1), (0, 2), (1, 1), (1, 3)]), ("img_a", [(1, 1)])):
        write_image(split / "images" / f"{stem}.jpg")
        with open(split / "masks" / f"{stem}.pickle", "wb") as f:
            pickle.dump((encoded, mapping), f)
    dataset = load_dataset("coco_lvis", tmp_path)
    assert [s.id for s in dataset] == ["COCO_LVIS/img_a#0", "COCO_LVIS/img_b#0", "COCO_LVIS/img_b#1",
                                       "COCO_LVIS/img_b#2"]
    assert np.array_equal(dataset[3].mask, (layers[1] == 1).astype(np.int8))  # overlaps instance 0: kept whole
    training = load_dataset("COCO_LVIS", tmp_path, per_instance=False, min_area=0)
    assert len(training) == 2
    objects = training[1].objects
    assert set(np.unique(objects).tolist()) == {0, 1, 2, 3}  # the stuff region (layer 1 value 3) is not an object
    assert (objects[35:] == 0).all()


def test_davis(tmp_path: Path) -> None:
    gt = np.zeros((H, W, 3), np.uint8)
    gt[5:15, 5:15, 2] = 200
    gt[20:25, 20:25, 0] = 1
    write_image(tmp_path / "img" / "bear.jpg")
    (tmp_path / "gt").mkdir()
    cv2.imwrite(str(tmp_path / "gt" / "bear.png"), gt)
    dataset = load_dataset("DAVIS", tmp_path)
    assert len(dataset) == 1 and dataset[0].id == "DAVIS/bear"
    assert (dataset[0].mask == 1).sum() == 125 and set(np.unique(dataset[0].mask).tolist()) == {0, 1}


def make_folder(root: Path) -> None:
    """A custom folder: one single-mask image, one image with two object files, one stem ending in _<k>."""
    for name in ("cat.png", "two.jpg", "shot_1.bmp"):
        write_image(root / "images" / name)
    (root / "masks").mkdir()
    single = np.zeros((H, W), np.uint8)
    single[:20] = 1
    single[20, :] = 255
    cv2.imwrite(str(root / "masks" / "cat.png"), single)
    for k, rows in ((1, slice(0, 5)), (2, slice(10, 40))):
        mask = np.zeros((H, W), np.uint8)
        mask[rows] = 255
        cv2.imwrite(str(root / "masks" / f"two_{k}.png"), mask)
    shot = np.full((H, W), 7, np.uint8)
    shot[0] = 0  # a background row: a mask with no background is an error
    cv2.imwrite(str(root / "masks" / "shot_1.png"), shot)


def test_folder(tmp_path: Path) -> None:
    make_folder(tmp_path)
    dataset = load_dataset("folder", tmp_path)
    assert [s.id for s in dataset] == ["folder/cat", "folder/shot_1", "folder/two#1", "folder/two#2"]
    assert (dataset[0].mask == 1).sum() == 21 * W  # 255 is an object value by default
    assert (dataset[3].mask == 1).sum() == 30 * W
    ignoring = load_dataset("folder", tmp_path, ignore_255=True)
    assert (ignoring[0].mask == 1).sum() == 20 * W and (ignoring[0].mask[20] == -1).all()
    training = load_dataset("folder", tmp_path, per_instance=False, min_area=0)
    assert len(training) == 3
    assert set(np.unique(training[2].objects).tolist()) == {0, 1, 2}
    assert dataset.validate() == []


def test_folder_reports_unmatched_masks(tmp_path: Path) -> None:
    make_folder(tmp_path)
    cv2.imwrite(str(tmp_path / "masks" / "stray.png"), np.ones((H, W), np.uint8))
    problems = load_dataset("folder", tmp_path).validate()
    assert len(problems) == 1 and "stray.png matches no image" in problems[0]


@pytest.mark.parametrize("name", ["GrabCut", "Berkeley"])
def test_band_and_channel_decoding(tmp_path: Path, name: str) -> None:
    images, masks, suffix = ("data_GT", "boundary_GT", ".bmp") if name == "GrabCut" else ("images", "masks", ".png")
    write_image(tmp_path / images / "x.JPG")
    raw = np.zeros((H, W, 3), np.uint8)
    raw[:10] = 255
    raw[10:12] = 128
    raw[12, :, 1:] = 255  # object only in channels 1-2: not object (channel 0 is read)
    (tmp_path / masks).mkdir()
    cv2.imwrite(str(tmp_path / masks / f"x{suffix}"), raw)
    mask = load_dataset(name, tmp_path)[0].mask
    assert (mask[:10] == 1).all() and (mask[12] == 0).all()
    assert (mask[10:12] == (-1 if name == "GrabCut" else 0)).all()
