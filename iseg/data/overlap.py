"""Photos that two datasets share, found by content: an evaluation photo must never reach training.

The same photo can sit in two benchmarks under two names (GrabCut `124080` is BSDS500 `124084`), rotated (14
Berkeley photos are stored turned to their masks' orientation), re-encoded or slightly re-exposed. Names are no
guide, so each image is reduced to a small fingerprint: a `THUMBNAIL` x `THUMBNAIL` greyscale thumbnail of the
whole photo (squashed to a square, so a rotated photo's thumbnail is the rotated thumbnail), made zero-mean and
unit-norm (brightness and contrast drop out). Two photos are the same when the Euclidean distance between their
fingerprints, minimised over the 8 rotations and flips of one of them, is below `MATCH_DISTANCE`.

On the shared data every true pair (the 100 Berkeley instances' photos and the 20 GrabCut photos in BSDS500) lies
at a distance of at most 0.013, and the closest different photos at 0.42 (COCO-MVal against BSDS500) and 0.58
(GrabCut against BSDS500): the threshold sits in a wide gap (`tests/test_overlap.py` checks the matches).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from tqdm.auto import tqdm

from iseg.data.io import read_image

THUMBNAIL = 24
MATCH_DISTANCE = 0.25


def file_fingerprint(path: Path) -> np.ndarray:
    """`fingerprint` of an image file, remembered for the process while the file's size and time are unchanged."""
    stat = Path(path).stat()
    return _cached_fingerprint(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=None)
def _cached_fingerprint(path: str, size: int, mtime_ns: int) -> np.ndarray:
    """The fingerprint of one version of a file (size and time are part of the key)."""
    return fingerprint(read_image(Path(path)))


def fingerprint(image: np.ndarray) -> np.ndarray:
    """(THUMBNAIL**2,) float32 zero-mean unit-norm greyscale thumbnail of an (H, W, 3) uint8 RGB image."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    thumb = cv2.resize(grey, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA).astype(np.float32)
    thumb -= thumb.mean()
    norm = float(np.linalg.norm(thumb))
    return (thumb / norm if norm > 0 else thumb).ravel()


def dihedral(vector: np.ndarray) -> np.ndarray:
    """(8, THUMBNAIL**2): a fingerprint under the 4 rotations, each unflipped and flipped."""
    thumb = vector.reshape(THUMBNAIL, THUMBNAIL)
    turns = [np.rot90(thumb, k) for k in range(4)]
    return np.stack([t.ravel() for t in turns + [np.fliplr(t) for t in turns]])


@dataclass
class Fingerprints:
    """One fingerprint per image of a dataset, with the image's id (`<dataset>/<image key>`) and path."""

    ids: list[str]
    paths: list[Path]
    vectors: np.ndarray  # (N, THUMBNAIL**2) float32


def dataset_fingerprints(dataset, progress: bool = False) -> Fingerprints:
    """Fingerprints of every image of a dataset (a per-image reader, or a torch Subset of one)."""
    base = getattr(dataset, "dataset", dataset)
    numbers = list(getattr(dataset, "indices", range(len(base.image_keys))))
    paths = [base.image_path(i) for i in numbers]
    vectors = [file_fingerprint(p) for p in tqdm(paths, desc=f"{base.name} fingerprints", disable=not progress)]
    ids = [f"{base.name}/{base.image_keys[i]}" for i in numbers]
    return Fingerprints(ids, paths, np.stack(vectors) if vectors else np.zeros((0, THUMBNAIL ** 2), np.float32))


def distances(a: Fingerprints, b: Fingerprints) -> np.ndarray:
    """(len(a), len(b)) fingerprint distance of every pair, minimised over rotations and flips."""
    if len(a.ids) == 0 or len(b.ids) == 0:
        return np.zeros((len(a.ids), len(b.ids)), np.float32)
    variants = np.stack([dihedral(v) for v in a.vectors])            # (A, 8, D)
    dots = np.einsum("avd,bd->abv", variants, b.vectors).max(axis=2)  # unit vectors: |x - y|^2 = 2 - 2 x.y
    return np.sqrt(np.clip(2.0 - 2.0 * dots, 0.0, None))


def shared_photos(a: Fingerprints, b: Fingerprints, threshold: float = MATCH_DISTANCE) -> list[tuple[int, int, float]]:
    """(index in a, index in b, distance) of every pair of images that are the same photo."""
    dist = distances(a, b)
    return [(int(i), int(j), float(dist[i, j])) for i, j in zip(*np.nonzero(dist < threshold))]


def overlapping_images(dataset, protected: Sequence[Fingerprints],
                       threshold: float = MATCH_DISTANCE) -> dict[int, str]:
    """Image positions of `dataset` that show a photo of any `protected` set -> the id of that protected photo."""
    own = dataset_fingerprints(dataset)
    found: dict[int, str] = {}
    for other in protected:
        for i, j, _ in shared_photos(own, other, threshold):
            found.setdefault(i, other.ids[j])
    return found
