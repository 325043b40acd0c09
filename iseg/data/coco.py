"""MS COCO from the official instance annotations (`annotations/instances_<split>.json` + `<split>/` images).

Objects are the non-crowd annotations of an image (sorted by annotation id); crowd regions are ignored.
Images without a non-crowd annotation are left out. The index comes from the json alone (no mask decoding).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from iseg.data.base import ImageObjects, ObjectsDataset, require_dir, require_file

EXPECTED = "<root>/annotations/instances_<split>.json and <root>/<split>/<file_name> images (e.g. split val2017)"


def decode_segmentation(segmentation: list | dict, height: int, width: int) -> np.ndarray:
    """A COCO segmentation (polygons, RLE or compressed RLE) as an (H, W) bool mask."""
    if isinstance(segmentation, list):
        if not segmentation:
            return np.zeros((height, width), bool)
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    with warnings.catch_warnings():  # pycocotools' numpy-2 "copy keyword" deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode([rle])[..., 0].astype(bool)


def load_coco(path: Path) -> COCO:
    """Load an instance json with pycocotools (its progress prints are silenced), naming the file on failure."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(str(path))
    except (ValueError, KeyError, TypeError, AssertionError) as error:
        raise ValueError(f"COCO: cannot read annotation file {path}: {error!r}") from error


class CocoDataset(ObjectsDataset):
    """Official MS COCO instances: one sample per non-crowd annotation, or per image for training."""

    def __init__(self, root: str | Path, *, split: str | None = None, per_instance: bool = True,
                 min_area: int = 1000, progress: bool = False) -> None:
        self.root = Path(root)
        split = split or "val2017"
        self.split = f"{split}2017" if split in ("train", "val") else split
        require_dir("COCO", self.root, EXPECTED)
        json_path = require_file("COCO", self.root / "annotations" / f"instances_{self.split}.json", EXPECTED)
        self.images_dir = require_dir("COCO", self.root / self.split, EXPECTED)
        coco = load_coco(json_path)
        self._images: list[dict] = []
        self._anns: list[list[dict]] = []
        for image_id in sorted(coco.getImgIds()):
            anns = sorted(coco.imgToAnns.get(image_id, []), key=lambda a: a["id"])
            if any(not a.get("iscrowd", 0) for a in anns):
                self._images.append(coco.imgs[image_id])
                self._anns.append(anns)
        super().__init__("COCO", [Path(info["file_name"]).stem for info in self._images], per_instance=per_instance,
                         min_area=min_area, progress=progress)

    def _image_path(self, i: int) -> Path:
        return self.images_dir / self._images[i]["file_name"]

    def _count_objects(self, i: int) -> int:
        return sum(not a.get("iscrowd", 0) for a in self._anns[i])

    def _read_objects(self, i: int) -> ImageObjects:
        info = self._images[i]
        height, width = info["height"], info["width"]
        masks, keys, crowd = [], [], []
        for ann in self._anns[i]:
            try:
                mask = decode_segmentation(ann["segmentation"], height, width)
            except (ValueError, TypeError, KeyError) as error:
                raise ValueError(f"COCO: annotation {ann.get('id')} of {info['file_name']}: bad segmentation "
                                 f"({error})") from error
            if ann.get("iscrowd", 0):
                crowd.append(mask)
            else:
                masks.append(mask)
                keys.append(str(ann["id"]))
        return ImageObjects(shape=(height, width), masks=masks, keys=keys,
                            source=f"annotations of {info['file_name']} (image id {info['id']})",
                            ignore=np.logical_or.reduce(crowd) if crowd else None)
