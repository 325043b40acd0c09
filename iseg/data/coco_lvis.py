"""COCO+LVIS in the combined layout of the RITM authors.

Layout per split: `<root>/<split>/hannotation.pickle` (a dict image id -> {"num_instance_masks": n,
"hierarchy": ...}), `<root>/<split>/images/<id>.jpg` and `<root>/<split>/masks/<id>.pickle`, a pickled pair
(list of PNG-encoded (H, W) layers, list of (layer, value) per instance). Instance i < n is the pixels of its
layer equal to its value; instances from n on are "stuff" regions and are not used as objects.
The pickles are read by a restricted unpickler that builds only builtins and numpy arrays: a pickle asking for
anything else is refused before any of it runs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from iseg.data.base import ImageObjects, ObjectsDataset, require_dir, require_file
from iseg.data.io import read_pickle

EXPECTED = ("<root>/<split>/hannotation.pickle, <root>/<split>/images/<id>.jpg, "
            "<root>/<split>/masks/<id>.pickle (split train or val)")


def read_packed_masks(path: Path) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A packed mask file as ((H, W, L) layers, (layer, value) per instance)."""
    packed = read_pickle(path, "COCO_LVIS packed masks")
    try:
        encoded_layers, mapping = packed
        layers = [cv2.imdecode(np.asarray(layer, np.uint8), cv2.IMREAD_UNCHANGED) for layer in encoded_layers]
    except (TypeError, ValueError, cv2.error) as error:
        raise ValueError(f"COCO_LVIS: {path} is not a (encoded layers, mapping) pair ({error!r})") from error
    if not layers or any(layer is None or layer.ndim != 2 or layer.shape != layers[0].shape for layer in layers):
        raise ValueError(f"COCO_LVIS: {path} holds missing, undecodable or differently sized mask layers")
    return np.stack(layers, axis=2), [(int(a), int(b)) for a, b in mapping]


class CocoLvisDataset(ObjectsDataset):
    """COCO+LVIS instances: one sample per instance, or per image for training."""

    def __init__(self, root: str | Path, *, split: str | None = None, per_instance: bool = True,
                 min_area: int = 1000, progress: bool = False) -> None:
        self.root = Path(root)
        self.split = split or "train"
        require_dir("COCO_LVIS", self.root, EXPECTED)
        split_dir = require_dir("COCO_LVIS", self.root / self.split, EXPECTED)
        annotation = read_pickle(require_file("COCO_LVIS", split_dir / "hannotation.pickle", EXPECTED),
                                 "COCO_LVIS annotation")
        if not isinstance(annotation, dict):
            raise ValueError(f"COCO_LVIS: {split_dir / 'hannotation.pickle'} holds a {type(annotation).__name__}; "
                             "expected a dict image id -> {'num_instance_masks': n, ...}")
        self.images_dir = require_dir("COCO_LVIS", split_dir / "images", EXPECTED)
        self.masks_dir = require_dir("COCO_LVIS", split_dir / "masks", EXPECTED)
        try:
            counts = {str(k): int(v["num_instance_masks"]) for k, v in annotation.items()}
        except (TypeError, KeyError, ValueError) as error:
            raise ValueError(f"COCO_LVIS: {split_dir / 'hannotation.pickle'}: an entry lacks an integer "
                             f"'num_instance_masks' ({error!r})") from error
        self._counts = {k: n for k, n in counts.items() if n > 0}
        super().__init__("COCO_LVIS", sorted(self._counts), per_instance=per_instance, min_area=min_area,
                         progress=progress)

    def _image_path(self, i: int) -> Path:
        return self.images_dir / f"{self.image_keys[i]}.jpg"

    def _count_objects(self, i: int) -> int:
        return self._counts[self.image_keys[i]]

    def _read_objects(self, i: int) -> ImageObjects:
        path = self.masks_dir / f"{self.image_keys[i]}.pickle"
        if not path.is_file():
            raise ValueError(f"COCO_LVIS: packed masks {path} not found for image {self.image_keys[i]}")
        layers, mapping = read_packed_masks(path)
        count = self._counts[self.image_keys[i]]
        if len(mapping) < count:
            raise ValueError(f"COCO_LVIS: {path} maps {len(mapping)} instances; hannotation.pickle says {count}")
        masks = [layers[..., layer] == value for layer, value in mapping[:count]]
        return ImageObjects(shape=layers.shape[:2], masks=masks, keys=[str(k) for k in range(count)],
                            source=str(path))
