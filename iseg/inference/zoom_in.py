"""Zoom-in regions: IFPN's intention ROI (from the coarse mask, size-dependent expansion, every click) and RITM's
ZoomIn transform (from the previous mask, x1.4, at least 200 px, kept while it overlaps the new box)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from iseg.clicks import Click
from iseg.inference.transforms import Clicks, Crop, Resize, Roi, round_half_up


def mask_box(prob: Tensor | np.ndarray, clicks: list[Click], threshold: float = 0.5) -> Roi | None:
    """Bounding box of (prob > threshold) united with the positive clicks; None when both are empty.

    prob: (H, W) probabilities.
    """
    fg = torch.as_tensor(prob) > threshold
    rows = torch.nonzero(fg.any(dim=1)).flatten().tolist()
    cols = torch.nonzero(fg.any(dim=0)).flatten().tolist()
    rows = rows[:1] + rows[-1:] + [c.row for c in clicks if c.is_positive]
    cols = cols[:1] + cols[-1:] + [c.col for c in clicks if c.is_positive]
    if not rows:
        return None
    return Roi(min(rows), min(cols), max(rows) + 1, max(cols) + 1)


def expand_box(box: Roi, ratio: float, min_size: int, shape: tuple[int, int]) -> Roi:
    """`box` scaled by `ratio` about its centre, each side at least `min_size`, clamped to the (H, W) image."""
    height, width = max(box.height * ratio, min_size), max(box.width * ratio, min_size)
    row, col = (box.top + box.bottom) / 2, (box.left + box.right) / 2
    top, bottom = round_half_up(row - height / 2), round_half_up(row + height / 2)
    left, right = round_half_up(col - width / 2), round_half_up(col + width / 2)
    return Roi(max(0, top), max(0, left), min(shape[0], bottom), min(shape[1], right))


def intention_expansion(box: Roi, shape: tuple[int, int]) -> float:
    """IFPN's expansion ratio max(2.5 - 4 sqrt(box_area / image_area), 1.4)."""
    return max(2.5 - 4 * math.sqrt(box.area / (shape[0] * shape[1])), 1.4)


def intention_roi(prob: Tensor | np.ndarray, clicks: list[Click], threshold: float = 0.5) -> Roi:
    """IFPN's zoom-in region from the coarse (H, W) probabilities: box of the mask and positive clicks, expanded by
    `intention_expansion`, clamped, no minimum size; the whole image when there is nothing to box."""
    shape = (prob.shape[-2], prob.shape[-1])
    box = mask_box(prob, clicks, threshold)
    if box is None:
        return Roi(0, 0, *shape)
    return expand_box(box, intention_expansion(box, shape), 0, shape)


def ritm_roi(prob: Tensor | np.ndarray, clicks: list[Click], expansion: float = 1.4, min_size: int = 200,
             threshold: float = 0.5) -> Roi:
    """RITM's zoom-in region from the previous (H, W) probabilities and the positive clicks."""
    shape = (prob.shape[-2], prob.shape[-1])
    box = mask_box(prob, clicks, threshold)
    if box is None:
        return Roi(0, 0, *shape)
    return expand_box(box, expansion, min_size, shape)


class ZoomIn:
    """RITM's zoom-in as a transform (batch of one): from click `skip_clicks + 1` on, crop the region of the previous
    mask and positive clicks; the crop is recomputed only when a positive click falls outside it or its IoU with the
    new region is below `recompute_iou`. The crop is resized so that its longer side is `target_size`. Before that,
    the whole image is resized so that its longer side is `full_size` (None: left as it is)."""

    def __init__(self, target_size: int = 400, expansion: float = 1.4, min_size: int = 200,
                 recompute_iou: float = 0.5, skip_clicks: int = 1, threshold: float = 0.5,
                 full_size: int | None = None):
        self.target_size, self.expansion, self.min_size = target_size, expansion, min_size
        self.recompute_iou, self.skip_clicks, self.threshold = recompute_iou, skip_clicks, threshold
        self.full = Resize(full_size) if full_size else None
        self.crop: Crop | None = None
        self._active = False

    def reset(self) -> None:
        """Forget the crop (new image)."""
        self.crop, self._active = None, False
        self.full = Resize(self.full.long_side) if self.full else None

    def transform(self, image: Tensor, prev: Tensor, clicks: Clicks) -> tuple[Tensor, Tensor, Clicks]:
        if image.shape[0] != 1:
            raise ValueError(f"ZoomIn works on a batch of one image, got {image.shape[0]}")
        self._active = len(clicks[0]) > self.skip_clicks
        if not self._active:
            return self.full.transform(image, prev, clicks) if self.full else (image, prev, clicks)
        roi = ritm_roi(prev[0, 0], clicks[0], self.expansion, self.min_size, self.threshold)
        if (self.crop is None or not all(self.crop.roi.contains(c) for c in clicks[0] if c.is_positive)
                or roi.iou(self.crop.roi) < self.recompute_iou):
            self.crop = Crop(roi, self.target_size)
        return self.crop.transform(image, prev, clicks)

    def inv_transform(self, prob: Tensor) -> Tensor:
        if self._active:
            return self.crop.inv_transform(prob)
        return self.full.inv_transform(prob) if self.full else prob
