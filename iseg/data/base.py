"""The dataset base shared by every reader: images with one or more annotated objects.

A reader lists its images cheaply at construction and says how to read an image's objects. The base turns that
into samples: one per object (`per_instance=True`, evaluation, deterministic order) or one per image
(`per_instance=False`, training: the target is drawn at random among objects of area >= `min_area`, and
`Sample.objects` carries the label map of all objects).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from iseg.data.io import printable, read_image
from iseg.data.sample import IGNORE, Sample


@dataclass
class ImageObjects:
    """All annotated objects of one image.

    shape: (H, W) of the annotation. masks: one (H, W) bool array per object, in a fixed order.
    keys: a name per object, used in sample ids ("" for the only object of a single-object image).
    ignore: optional (H, W) bool region excluded from IoU. source: the annotation file(s), for messages.
    """

    shape: tuple[int, int]
    masks: list[np.ndarray]
    keys: list[str]
    source: str
    ignore: np.ndarray | None = None

    def target(self, k: int) -> np.ndarray:
        """(H, W) int8 mask of object k: 1 object, 0 background, -1 ignore (never on the object)."""
        mask = self.masks[k].astype(np.int8)
        if self.ignore is not None:
            mask[self.ignore & ~self.masks[k]] = IGNORE
        return mask

    def problem(self, k: int) -> str | None:
        """Why object k cannot be a target (no object pixel, or no background pixel left), or None."""
        if not self.masks[k].any():
            return f"{self.source}: object {self.keys[k] or k} has no object pixel"
        background = ~self.masks[k] if self.ignore is None else ~(self.masks[k] | self.ignore)
        if not background.any():
            return (f"{self.source}: object {self.keys[k] or k} covers the whole image (no background pixel); "
                    "expected 0 for background (a mask with background 1 or 255 is inverted or mis-coded)")
        return None

    def label_map(self) -> np.ndarray:
        """(H, W) int32: 0 none, k + 1 for object k, -1 ignore; smaller objects are drawn over larger ones."""
        labels = np.zeros(self.shape, np.int32)
        if self.ignore is not None:
            labels[self.ignore] = IGNORE
        areas = [int(m.sum()) for m in self.masks]
        for k in sorted(range(len(self.masks)), key=lambda j: -areas[j]):
            labels[self.masks[k]] = k + 1
        return labels


def require_dir(dataset: str, path: Path, expected: str) -> Path:
    """Return `path` if it is a folder, else raise naming the dataset, the path and the expected layout."""
    if not path.is_dir():
        raise FileNotFoundError(f"{dataset}: folder {path} not found; expected layout: {expected}")
    return path


def require_file(dataset: str, path: Path, expected: str) -> Path:
    """Return `path` if it is a file, else raise naming the dataset, the path and the expected layout."""
    if not path.is_file():
        raise FileNotFoundError(f"{dataset}: file {path} not found; expected layout: {expected}")
    return path


class ObjectsDataset(Dataset):
    """A `Dataset` of `Sample`: one per object or one per image (see the module docstring).

    Subclasses set `self.image_keys` (one name per image, cheap to list) and implement `_image_path` and
    `_read_objects`; they may override `_count_objects` when the count is known without decoding masks and
    `_training_objects` when training reads a different view of the annotation (BSDS500: one annotator).
    """

    def __init__(self, name: str, image_keys: list[str], *, per_instance: bool = True, min_area: int = 1000,
                 progress: bool = False) -> None:
        self.name = name
        self.image_keys = image_keys
        self.per_instance = per_instance
        self.min_area = min_area
        self.progress = progress
        self._index: list[tuple[int, int | None]] | None = None

    def image_path(self, i: int) -> Path:
        """Path of image i (image number, not sample number)."""
        return self._image_path(i)

    def _image_path(self, i: int) -> Path:
        """Path of image i."""
        raise NotImplementedError

    def _read_objects(self, i: int) -> ImageObjects:
        """All objects of image i, in a deterministic order."""
        raise NotImplementedError

    def _count_objects(self, i: int) -> int:
        """Number of objects of image i (decodes the annotation unless overridden)."""
        return len(self._read_objects(i).masks)

    def _training_objects(self, i: int) -> ImageObjects:
        """Objects of image i to draw a training target from."""
        return self._read_objects(i)

    def _global_problems(self) -> list[str]:
        """Problems not tied to one image (e.g. annotation files that match no image)."""
        return []

    @property
    def index(self) -> list[tuple[int, int | None]]:
        """(image number, object number) per sample; object None in per-image mode. Built on first use."""
        if self._index is None:
            if self.per_instance:
                images = tqdm(range(len(self.image_keys)), desc=f"{self.name} index", disable=not self.progress)
                self._index = [(i, k) for i in images for k in range(self._count_objects(i))]
            else:
                self._index = [(i, None) for i in range(len(self.image_keys))]
        return self._index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, j: int) -> Sample:
        i, k = self.index[j]
        image_path = self._image_path(i)
        image = read_image(image_path)
        objects = self._read_objects(i) if k is not None else self._training_objects(i)
        self._check_shape(objects, image, image_path)
        image_id = f"{self.name}/{printable(self.image_keys[i])}"
        if k is None:
            k = self._draw_target(objects)
            return Sample(image=image, mask=objects.target(k), id=image_id, objects=objects.label_map())
        if k >= len(objects.masks):
            raise ValueError(f"{self.name}: {objects.source} has {len(objects.masks)} objects, expected > {k}")
        problem = objects.problem(k)
        if problem:
            raise ValueError(f"{self.name}: {problem}")
        key = printable(objects.keys[k])
        return Sample(image=image, mask=objects.target(k), id=f"{image_id}#{key}" if key else image_id)

    def _check_shape(self, objects: ImageObjects, image: np.ndarray, image_path: Path) -> None:
        """Raise if the annotation and the image differ in size."""
        if tuple(objects.shape) != image.shape[:2]:
            raise ValueError(f"{self.name}: mask {objects.source} is {objects.shape[0]}x{objects.shape[1]} (HxW) "
                             f"but image {image_path} is {image.shape[0]}x{image.shape[1]}")

    def _draw_target(self, objects: ImageObjects) -> int:
        """A random usable object (see `ImageObjects.problem`) of area >= min_area, else the largest usable one."""
        usable = [k for k in range(len(objects.masks)) if objects.problem(k) is None]
        if not any(mask.any() for mask in objects.masks):
            raise ValueError(f"{self.name}: {objects.source} has no object pixel")
        if not usable:
            raise ValueError(f"{self.name}: no usable object: {objects.problem(0)}")
        areas = np.array([int(objects.masks[k].sum()) for k in usable])
        candidates = np.flatnonzero(areas >= max(self.min_area, 1))
        if candidates.size == 0:
            return usable[int(areas.argmax())]
        return usable[int(candidates[int(torch.randint(candidates.size, (1,)).item())])]

    def validate(self, images: Iterable[int] | None = None, *, strict: bool = False,
                 progress: bool | None = None) -> list[str]:
        """Check image/annotation pairs (all images by default): readable and complete files (no broken link,
        no truncated image, no ambiguous alpha channel), same size, every object with object and background pixels.

        Returns the problems found, one message per problem naming the file; `strict=True` raises a ValueError
        listing them instead.
        """
        numbers = range(len(self.image_keys)) if images is None else images
        show = self.progress if progress is None else progress
        problems = self._global_problems()
        for i in tqdm(numbers, desc=f"{self.name} validate", disable=not show):
            problems.extend(self._problems(i))
        if strict and problems:
            raise ValueError(f"{self.name}: {len(problems)} problem(s):\n" + "\n".join(problems))
        return problems

    def _problems(self, i: int) -> list[str]:
        """Problems of image i and its annotation, as messages."""
        try:
            image_path = self._image_path(i)
            image = read_image(image_path)
            objects = self._read_objects(i)
            self._check_shape(objects, image, image_path)
        except (ValueError, OSError) as error:
            return [str(error)]
        if not objects.masks:
            return [f"{self.name}: {objects.source} has no object"]
        return [f"{self.name}: {problem}" for problem in map(objects.problem, range(len(objects.masks))) if problem]
