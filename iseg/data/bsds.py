"""BSDS500 (official BSR layout): human region segmentations used as pseudo-objects.

Each image has 4-9 annotators' label maps (regions 1..N, no background). Objects of an image are the regions of
every annotator, keyed `<annotator>.<region>`; a training sample draws one annotator at random and a region of
it, with that annotator's label map as `Sample.objects`. Every Berkeley benchmark photo and 20 GrabCut photos are
BSDS500 photos: training leaves them out by content (`iseg.data.overlap`, `TrainConfig.exclude`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from iseg.data.base import ImageObjects, ObjectsDataset, require_dir
from iseg.data.io import find_images, read_mat

SPLITS = ("train", "val", "test")
EXPECTED = ("BSR/BSDS500/data/images/{train,val,test}/<id>.jpg (or another image extension) and "
            "BSR/BSDS500/data/groundTruth/{train,val,test}/<id>.mat under the root (the root may also be the "
            "BSR/BSDS500/data folder itself)")


def upright(label_map: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
    """The label map turned to the image's orientation.

    In 63 of the 500 BSDS500 images the photo is stored landscape while its ground truth is portrait; the
    ground truth turned 90 degrees clockwise lines up with the photo's edges (checked on all 63). A label map
    whose shape is the image's transposed is turned that way; any other is returned as it is.
    """
    if label_map.shape != tuple(image_shape) and label_map.shape == tuple(image_shape)[::-1]:
        return np.ascontiguousarray(np.rot90(label_map, k=-1))
    return label_map


def _data_dir(root: Path) -> Path:
    """The folder holding `images/` and `groundTruth/`, looked for at the usual depths under `root`."""
    require_dir("BSDS500", root, EXPECTED)
    candidates = [root / "BSR" / "BSDS500" / "data", root / "BSDS500" / "data", root / "data", root]
    for folder in candidates:
        if (folder / "images").is_dir() and (folder / "groundTruth").is_dir():
            return folder
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"BSDS500: no images/ and groundTruth/ folders in any of {tried}; expected {EXPECTED}")


def _splits(split: str | Sequence[str] | None) -> list[str]:
    """Split names from "train", "train+val" or a list; default train."""
    names = (split or "train").split("+") if isinstance(split, str) or split is None else list(split)
    unknown = [s for s in names if s not in SPLITS]
    if unknown:
        raise ValueError(f"BSDS500: unknown split(s) {unknown}; expected some of {SPLITS}")
    return names


class BSDS500Dataset(ObjectsDataset):
    """BSDS500 images of the chosen split(s), regions of human segmentations as objects."""

    def __init__(self, root: str | Path, *, split: str | Sequence[str] | None = None, per_instance: bool = True,
                 min_area: int = 1000, exclude_ids: Iterable[str] = (), progress: bool = False) -> None:
        self.root = Path(root)
        self.data_dir = _data_dir(self.root)
        self.split = _splits(split)
        excluded = {str(i) for i in exclude_ids}
        self._images: dict[str, Path] = {}
        for name in self.split:
            folder = require_dir("BSDS500", self.data_dir / "images" / name, EXPECTED)
            require_dir("BSDS500", self.data_dir / "groundTruth" / name, EXPECTED)
            for stem, path in find_images(folder).items():
                if stem not in excluded:
                    self._images[stem] = path
        super().__init__("BSDS500", sorted(self._images), per_instance=per_instance, min_area=min_area,
                         progress=progress)

    def _image_path(self, i: int) -> Path:
        return self._images[self.image_keys[i]]

    def split_of(self, i: int) -> str:
        """The split (train, val or test) image i belongs to."""
        return self._images[self.image_keys[i]].parent.name

    def _mat_path(self, i: int) -> Path:
        key = self.image_keys[i]
        return self.data_dir / "groundTruth" / self.split_of(i) / f"{key}.mat"

    def segmentations(self, i: int) -> list[np.ndarray]:
        """Every annotator's (H, W) region label map of image i."""
        path = self._mat_path(i)
        if not path.is_file():
            raise ValueError(f"BSDS500: ground truth {path} not found for image {self.image_keys[i]}")
        try:
            annotations = read_mat(path)["groundTruth"]
            maps = [annotations[0, a]["Segmentation"][0, 0] for a in range(annotations.shape[1])]
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"BSDS500: {path} has no groundTruth{{k}}.Segmentation label maps ({error!r})") from error
        return [upright(m, self._image_shape(i)) for m in maps]

    def _image_shape(self, i: int) -> tuple[int, int]:
        """(H, W) of image i, from its header only."""
        with Image.open(self._image_path(i)) as image:
            return image.height, image.width

    def _objects(self, i: int, one_annotator: bool) -> ImageObjects:
        """The regions of every annotator of image i, or of one drawn at random."""
        maps = self.segmentations(i)
        annotators = [int(torch.randint(len(maps), (1,)).item())] if one_annotator else range(len(maps))
        masks, keys = [], []
        for a in annotators:
            for region in np.unique(maps[a]):
                if region > 0:
                    masks.append(maps[a] == region)
                    keys.append(f"{a}.{region}")
        return ImageObjects(shape=maps[0].shape, masks=masks, keys=keys, source=str(self._mat_path(i)))

    def _read_objects(self, i: int) -> ImageObjects:
        return self._objects(i, one_annotator=False)

    def _count_objects(self, i: int) -> int:
        return sum(int((np.unique(m) > 0).sum()) for m in self.segmentations(i))

    def _training_objects(self, i: int) -> ImageObjects:
        return self._objects(i, one_annotator=True)
