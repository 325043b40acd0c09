"""Bad inputs are reported clearly, naming the dataset and the file, and never silently used."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from iseg.data import load_dataset

H, W = 30, 40


def make_pairs(root: Path, stems: tuple[str, ...] = ("a", "b")) -> None:
    """A DAVIS-layout folder of valid image/mask pairs."""
    (root / "img").mkdir(parents=True)
    (root / "gt").mkdir()
    for stem in stems:
        cv2.imwrite(str(root / "img" / f"{stem}.jpg"), np.full((H, W, 3), 90, np.uint8))
        mask = np.zeros((H, W), np.uint8)
        mask[5:15, 5:15] = 255
        cv2.imwrite(str(root / "gt" / f"{stem}.png"), mask)


def test_missing_root_names_dataset_path_and_layout(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("GrabCut", missing)
    message = str(error.value)
    assert "GrabCut" in message and str(missing) in message and "boundary_GT/<stem>.bmp" in message


@pytest.mark.parametrize("name, needed", [("SBD", "inst/<id>.mat"), ("PascalVOC", "SegmentationObject"),
                                          ("COCO", "instances_<split>.json"), ("COCO_LVIS", "hannotation.pickle"),
                                          ("BSDS500", "groundTruth"), ("folder", "masks/<stem>.png"),
                                          ("DAVIS", "gt/<stem>.png")])
def test_wrong_root_for_every_format(tmp_path: Path, name: str, needed: str) -> None:
    with pytest.raises(FileNotFoundError) as error:
        load_dataset(name, tmp_path)
    assert name in str(error.value) and str(tmp_path) in str(error.value) and needed in str(error.value)


def test_image_without_mask_is_reported(tmp_path: Path) -> None:
    make_pairs(tmp_path)
    (tmp_path / "gt" / "b.png").unlink()
    with pytest.raises(ValueError, match=r"DAVIS: 1 image\(s\) .* have no mask .*b\.jpg"):
        load_dataset("DAVIS", tmp_path)


def test_corrupt_image(tmp_path: Path) -> None:
    make_pairs(tmp_path)
    (tmp_path / "img" / "b.jpg").write_bytes(b"not a jpeg at all")
    dataset = load_dataset("DAVIS", tmp_path)
    assert dataset[0].id == "DAVIS/a"
    with pytest.raises(ValueError, match=r"cannot read image .*b\.jpg"):
        dataset[1]
    problems = dataset.validate()
    assert len(problems) == 1 and "b.jpg" in problems[0]


def test_corrupt_mask(tmp_path: Path) -> None:
    make_pairs(tmp_path)
    (tmp_path / "gt" / "a.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match=r"cannot read mask .*a\.png"):
        load_dataset("DAVIS", tmp_path)[0]


def test_mask_of_another_size(tmp_path: Path) -> None:
    make_pairs(tmp_path)
    cv2.imwrite(str(tmp_path / "gt" / "b.png"), np.full((H + 1, W), 255, np.uint8))
    dataset = load_dataset("DAVIS", tmp_path)
    with pytest.raises(ValueError, match=r"mask .*b\.png is 31x40 .* but image .*b\.jpg is 30x40"):
        dataset[1]
    assert len(dataset.validate()) == 1
    with pytest.raises(ValueError, match=r"DAVIS: 1 problem"):
        dataset.validate(strict=True)
    training = load_dataset("DAVIS", tmp_path, per_instance=False)
    with pytest.raises(ValueError, match=r"b\.png is 31x40"):
        training[1]


def test_empty_mask(tmp_path: Path) -> None:
    make_pairs(tmp_path)
    cv2.imwrite(str(tmp_path / "gt" / "a.png"), np.zeros((H, W), np.uint8))
    dataset = load_dataset("DAVIS", tmp_path)
    with pytest.raises(ValueError, match=r"a\.png.* no object pixel"):
        dataset[0]
    problems = dataset.validate()
    assert len(problems) == 1 and "a.png" in problems[0] and "no object pixel" in problems[0]
    with pytest.raises(ValueError, match=r"a\.png has no object pixel"):
        load_dataset("DAVIS", tmp_path, per_instance=False)[0]


def test_sbd_mat_without_gtinst(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "inst").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "x.jpg"), np.zeros((H, W, 3), np.uint8))
    scipy.io.savemat(tmp_path / "inst" / "x.mat", {"GTcls": {"Segmentation": np.ones((H, W), np.uint8)}})
    (tmp_path / "val.txt").write_text("x\n")
    dataset = load_dataset("SBD", tmp_path)
    with pytest.raises(ValueError, match=r"x\.mat has no GTinst\.Segmentation"):
        len(dataset)
    assert "x.mat" in dataset.validate()[0]


def test_split_list_naming_a_missing_file(tmp_path: Path) -> None:
    for folder in ("img", "inst"):
        (tmp_path / folder).mkdir()
    (tmp_path / "val.txt").write_text("ghost\n")
    problems = load_dataset("SBD", tmp_path).validate()
    assert len(problems) == 1 and "ghost" in problems[0]


def test_single_object_formats_have_no_split(tmp_path: Path) -> None:
    make_pairs(tmp_path)
    with pytest.raises(ValueError, match="DAVIS has no splits"):
        load_dataset("DAVIS", tmp_path, split="val")
