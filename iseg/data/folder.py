"""One reader for every "folder of images + folder of masks" format, parameterised by a `FolderLayout`.

GrabCut, Berkeley, DAVIS and COCO_MVal differ only in folder names, mask extension and mask decoding; the
`folder` format (a user's own data) adds several objects per image as `masks/<stem>_<k>.png`.
Masks are matched to images by file stem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from iseg.data.base import ImageObjects, ObjectsDataset, require_dir
from iseg.data.io import channel, find_images, read_raw_mask

_OBJECT_FILE = re.compile(r"^(?P<stem>.+)_(?P<k>\d+)$")


@dataclass(frozen=True)
class MaskCoding:
    """How mask pixel values map to object / ignore.

    channel: the channel read from a multi-channel mask (None: the maximum over channels).
    Object: value > threshold and value != ignore_value. Ignore: value == ignore_value (None: no ignore).
    """

    channel: int | None = None
    threshold: int = 0
    ignore_value: int | None = None

    def decode(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(H, W) or (H, W, C) mask -> ((H, W) bool object, (H, W) bool ignore or None)."""
        values = raw.max(axis=2) if raw.ndim == 3 and self.channel is None else channel(raw, self.channel or 0)
        obj = values > self.threshold
        if self.ignore_value is None:
            return obj, None
        ignore = values == self.ignore_value
        return obj & ~ignore, ignore


@dataclass(frozen=True)
class FolderLayout:
    """Where a folder format keeps its files and how its masks are coded."""

    images: str
    masks: str
    mask_suffix: str
    coding: MaskCoding
    multi_object: bool = False

    def describe(self) -> str:
        """The layout in words, for error messages."""
        text = (f"<root>/{self.images}/<stem>.<jpg|jpeg|png|bmp|webp> images with masks "
                f"<root>/{self.masks}/<stem>{self.mask_suffix}")
        if self.multi_object:
            text += f" (or <root>/{self.masks}/<stem>_<k>{self.mask_suffix}, one file per object)"
        return text


LAYOUTS = {
    "GrabCut": FolderLayout("data_GT", "boundary_GT", ".bmp", MaskCoding(channel=0, threshold=128, ignore_value=128)),
    "Berkeley": FolderLayout("images", "masks", ".png", MaskCoding(channel=0, threshold=128)),
    "DAVIS": FolderLayout("img", "gt", ".png", MaskCoding()),
    "COCO_MVal": FolderLayout("img", "gt", ".png", MaskCoding()),
    "folder": FolderLayout("images", "masks", ".png", MaskCoding(), multi_object=True),
}


def folder_layout(ignore_255: bool = False) -> FolderLayout:
    """The custom-folder layout; `ignore_255=True` reads mask value 255 as ignore instead of object."""
    layout = LAYOUTS["folder"]
    return replace(layout, coding=MaskCoding(ignore_value=255)) if ignore_255 else layout


class FolderDataset(ObjectsDataset):
    """Images in `<root>/<layout.images>`, masks in `<root>/<layout.masks>`, matched by stem."""

    def __init__(self, name: str, root: str | Path, layout: FolderLayout, *, per_instance: bool = True,
                 min_area: int = 1000, progress: bool = False) -> None:
        self.root = Path(root)
        self.layout = layout
        expected = layout.describe()
        require_dir(name, self.root, expected)
        images = find_images(require_dir(name, self.root / layout.images, expected))
        if not images:
            raise FileNotFoundError(f"{name}: no image files in {self.root / layout.images}; "
                                    f"expected layout: {expected}")
        self._images = images
        self._masks, self.orphan_masks = _match_masks(
            name, images, require_dir(name, self.root / layout.masks, expected), layout)
        super().__init__(name, sorted(self._masks), per_instance=per_instance, min_area=min_area,
                         progress=progress)

    def _image_path(self, i: int) -> Path:
        return self._images[self.image_keys[i]]

    def _count_objects(self, i: int) -> int:
        return len(self._masks[self.image_keys[i]])

    def _read_objects(self, i: int) -> ImageObjects:
        files = self._masks[self.image_keys[i]]
        masks, ignores = [], []
        shape = None
        for _, path in files:
            obj, ignore = self.layout.coding.decode(read_raw_mask(path))
            if shape is not None and obj.shape != shape:
                raise ValueError(f"{self.name}: mask {path} is {obj.shape[0]}x{obj.shape[1]} but "
                                 f"{files[0][1]} is {shape[0]}x{shape[1]}")
            shape = obj.shape
            masks.append(obj)
            if ignore is not None:
                ignores.append(ignore)
        source = str(files[0][1])
        if len(files) > 1:
            source = f"{files[0][1].parent}/{self.image_keys[i]}_*{self.layout.mask_suffix}"
        return ImageObjects(shape=shape, masks=masks, keys=[key for key, _ in files], source=source,
                            ignore=np.logical_or.reduce(ignores) if ignores else None)

    def _global_problems(self) -> list[str]:
        return [f"{self.name}: mask {path} matches no image" for path in self.orphan_masks]


def _match_masks(name: str, images: dict[str, Path], mask_dir: Path,
                 layout: FolderLayout) -> tuple[dict[str, list[tuple[str, Path]]], list[Path]]:
    """Mask files per image stem as (object key, path) sorted by key ("" for `<stem>.<ext>`), plus unmatched."""
    matched: dict[str, list[tuple[str, Path]]] = {}
    orphans = []
    for path in sorted(mask_dir.iterdir()):
        if path.suffix.lower() != layout.mask_suffix or not (path.is_file() or path.is_symlink()):
            continue
        multi = _OBJECT_FILE.match(path.stem) if layout.multi_object else None
        if path.stem in images:
            matched.setdefault(path.stem, []).append(("", path))
        elif multi and multi["stem"] in images:
            matched.setdefault(multi["stem"], []).append((multi["k"], path))
        else:
            orphans.append(path)
    for stem, files in matched.items():
        if len(files) > 1 and any(key == "" for key, _ in files):
            raise ValueError(f"{name}: image {images[stem]} has both a single mask {mask_dir / stem}"
                             f"{layout.mask_suffix} and per-object masks {stem}_<k>{layout.mask_suffix}: keep one")
        files.sort(key=lambda item: int(item[0] or 0))
    missing = sorted(set(images) - set(matched))
    if missing:
        shown = ", ".join(str(images[s].name) for s in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ValueError(f"{name}: {len(missing)} image(s) in {images[missing[0]].parent} have no mask in "
                         f"{mask_dir}: {shown}; expected layout: {layout.describe()}")
    return matched, orphans
