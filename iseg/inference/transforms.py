"""Test-time transforms that compose: each maps (image, prev, clicks) into the network's frame with `transform` and
brings the probabilities back with `inv_transform`; a predictor applies them in order and undoes them in reverse.

Shapes: image (B, 3, h, w) float in [0, 1]; prev and prob (B, 1, h, w); clicks: one list of Click per batch item.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from iseg.clicks import Click

Clicks = list[list[Click]]


class Transform(Protocol):
    """A reversible test-time transform."""

    def transform(self, image: Tensor, prev: Tensor, clicks: Clicks) -> tuple[Tensor, Tensor, Clicks]: ...

    def inv_transform(self, prob: Tensor) -> Tensor: ...


def round_half_up(x: float) -> int:
    """Round to the nearest integer, halves upwards (no banker's rounding)."""
    return math.floor(x + 0.5)


@dataclass(frozen=True)
class Roi:
    """A box of pixels [top, bottom) x [left, right) of an image."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def area(self) -> int:
        return self.height * self.width

    def contains(self, click: Click) -> bool:
        return self.top <= click.row < self.bottom and self.left <= click.col < self.right

    def iou(self, other: Roi) -> float:
        """Intersection over union of the two boxes."""
        rows = max(0, min(self.bottom, other.bottom) - max(self.top, other.top))
        cols = max(0, min(self.right, other.right) - max(self.left, other.left))
        inter = rows * cols
        return inter / (self.area + other.area - inter)


def long_side_size(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(h, w) scaled so that max(h, w) == long_side, each side at least 1."""
    scale = long_side / max(size)
    return max(1, round_half_up(size[0] * scale)), max(1, round_half_up(size[1] * scale))


def scale_click(click: Click, src: tuple[int, int], dst: tuple[int, int]) -> Click:
    """The click's pixel in an image resized from `src` (h, w) to `dst` (pixel centres aligned)."""
    row = min(dst[0] - 1, max(0, math.floor((click.row + 0.5) * dst[0] / src[0])))
    col = min(dst[1] - 1, max(0, math.floor((click.col + 0.5) * dst[1] / src[1])))
    return Click(row, col, click.is_positive)


def resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of (B, C, h, w) to `size` (antialiased when shrinking; no-op when equal)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


class Flip:
    """Append the horizontal mirror of the batch (one forward for both); average the two halves back."""

    def __init__(self) -> None:
        self._source: Tensor | None = None
        self._flipped: Tensor | None = None

    def transform(self, image: Tensor, prev: Tensor, clicks: Clicks) -> tuple[Tensor, Tensor, Clicks]:
        if image is not self._source:  # the per-image concatenation is reused across clicks
            self._source, self._flipped = image, torch.cat([image, image.flip(-1)])
        width = image.shape[-1]
        mirrored = [[Click(c.row, width - 1 - c.col, c.is_positive) for c in item] for item in clicks]
        return self._flipped, torch.cat([prev, prev.flip(-1)]), clicks + mirrored

    def inv_transform(self, prob: Tensor) -> Tensor:
        half = prob.shape[0] // 2
        return 0.5 * (prob[:half] + prob[half:].flip(-1))


class Resize:
    """Resize so that the longer side is `long_side`; back to the original size on the way out."""

    def __init__(self, long_side: int):
        self.long_side = long_side
        self._source: Tensor | None = None
        self._resized: Tensor | None = None
        self._size: tuple[int, int] = (0, 0)

    def transform(self, image: Tensor, prev: Tensor, clicks: Clicks) -> tuple[Tensor, Tensor, Clicks]:
        self._size = (image.shape[-2], image.shape[-1])
        target = long_side_size(self._size, self.long_side)
        if image is not self._source:  # the per-image resize is reused across clicks
            self._source, self._resized = image, resize(image, target)
        moved = [[scale_click(c, self._size, target) for c in item] for item in clicks]
        return self._resized, resize(prev, target), moved

    def inv_transform(self, prob: Tensor) -> Tensor:
        return resize(prob, self._size)


class Crop:
    """Crop `roi` and resize it so that its longer side is `target_size`; clicks outside the crop are dropped.
    The inverse pastes the probabilities back into a zero map of the full size."""

    def __init__(self, roi: Roi, target_size: int):
        self.roi = roi
        self._resize = Resize(target_size)
        self._source: Tensor | None = None
        self._cropped: Tensor | None = None
        self._size: tuple[int, int] = (0, 0)

    def _crop(self, x: Tensor) -> Tensor:
        return x[..., self.roi.top:self.roi.bottom, self.roi.left:self.roi.right]

    def transform(self, image: Tensor, prev: Tensor, clicks: Clicks) -> tuple[Tensor, Tensor, Clicks]:
        self._size = (image.shape[-2], image.shape[-1])
        if image is not self._source:
            self._source, self._cropped = image, self._crop(image)
        r = self.roi
        moved = [[Click(c.row - r.top, c.col - r.left, c.is_positive) for c in item if r.contains(c)]
                 for item in clicks]
        return self._resize.transform(self._cropped, self._crop(prev), moved)

    def inv_transform(self, prob: Tensor) -> Tensor:
        full = prob.new_zeros(prob.shape[0], prob.shape[1], *self._size)
        full[..., self.roi.top:self.roi.bottom, self.roi.left:self.roi.right] = self._resize.inv_transform(prob)
        return full
