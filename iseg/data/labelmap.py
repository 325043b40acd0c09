"""One reader for the formats that store one instance label map per image plus split lists: SBD and PascalVOC.

They differ only in folder names, the label-map file type (SBD: `.mat` with a `GTinst.Segmentation` field;
VOC: palette PNG) and the ignore value (VOC: 255 on object boundaries).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from iseg.data.base import ImageObjects, ObjectsDataset, require_dir, require_file
from iseg.data.io import read_mat, read_palette_mask


def read_gtinst(path: Path) -> np.ndarray:
    """(H, W) instance labels from an SBD `inst/<id>.mat` file (struct `GTinst`, field `Segmentation`)."""
    mat = read_mat(path)
    try:
        labels = mat["GTinst"]["Segmentation"][0, 0]
    except (KeyError, IndexError, ValueError) as error:
        raise ValueError(f"{path} has no GTinst.Segmentation instance map ({error!r})") from error
    if labels.ndim != 2:
        raise ValueError(f"{path}: GTinst.Segmentation has shape {labels.shape}; expected (H, W)")
    return labels


@dataclass(frozen=True)
class LabelMapLayout:
    """Where a label-map format keeps its files. `split_file` has a `{split}` placeholder."""

    images: str
    image_suffix: str
    labels: str
    label_suffix: str
    split_file: str
    read_labels: Callable[[Path], np.ndarray]
    ignore_value: int | None = None

    def describe(self) -> str:
        """The layout in words, for error messages."""
        return (f"<root>/{self.split_file.format(split='<split>')} (one image id a line), "
                f"<root>/{self.images}/<id>{self.image_suffix}, <root>/{self.labels}/<id>{self.label_suffix}")


LAYOUTS = {
    "SBD": LabelMapLayout("img", ".jpg", "inst", ".mat", "{split}.txt", read_gtinst),
    "PascalVOC": LabelMapLayout("JPEGImages", ".jpg", "SegmentationObject", ".png",
                                "ImageSets/Segmentation/{split}.txt", read_palette_mask, ignore_value=255),
}


class LabelMapDataset(ObjectsDataset):
    """Images of a split list, each with an instance label map (0 background, k > 0 instance k)."""

    def __init__(self, name: str, root: str | Path, layout: LabelMapLayout, *, split: str | None = None,
                 per_instance: bool = True, min_area: int = 1000, progress: bool = False) -> None:
        self.root = Path(root)
        self.layout = layout
        self.split = split or "val"
        expected = layout.describe()
        require_dir(name, self.root, expected)
        split_path = require_file(name, self.root / layout.split_file.format(split=self.split), expected)
        ids = [line.strip() for line in split_path.read_text().splitlines() if line.strip()]
        require_dir(name, self.root / layout.images, expected)
        require_dir(name, self.root / layout.labels, expected)
        super().__init__(name, ids, per_instance=per_instance, min_area=min_area, progress=progress)

    def _image_path(self, i: int) -> Path:
        return self.root / self.layout.images / f"{self.image_keys[i]}{self.layout.image_suffix}"

    def _read_objects(self, i: int) -> ImageObjects:
        path = self.root / self.layout.labels / f"{self.image_keys[i]}{self.layout.label_suffix}"
        if not path.is_file():
            raise ValueError(f"{self.name}: label map {path} not found for image id {self.image_keys[i]}")
        labels = self.layout.read_labels(path)
        ignore = None if self.layout.ignore_value is None else labels == self.layout.ignore_value
        values = [int(v) for v in np.unique(labels) if v > 0 and v != self.layout.ignore_value]
        return ImageObjects(shape=labels.shape, masks=[labels == v for v in values], keys=[str(v) for v in values],
                            source=str(path), ignore=ignore if ignore is not None and ignore.any() else None)
