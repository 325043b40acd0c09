"""Clicks and the evaluation click simulator of the standard protocol."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Click:
    """One user click at pixel (row, col); positive on the object, negative on background."""

    row: int
    col: int
    is_positive: bool


def _distance_inside(region: np.ndarray) -> np.ndarray:
    """(H, W) float32 L2 distance of each region pixel to the nearest pixel outside it, the image border
    counting as outside (the region is padded by one pixel of zeros before the exact transform)."""
    padded = np.pad(region.astype(np.uint8), 1, mode="constant")
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return dist[1:-1, 1:-1]


def _deepest(region: np.ndarray, not_clicked: np.ndarray) -> tuple[float, int, int]:
    """(distance, row, col): the largest distance inside `region` with already clicked pixels zeroed, at the first
    pixel in row-major order holding it; (0.0, 0, 0) when that distance is 0.

    The transform runs on the region's bounding box only: every pixel outside the box is outside the region, so
    the distances are exactly those of the whole image (the nearest outside pixel can always be moved onto the
    box's one-pixel frame without getting farther).
    """
    rows = np.flatnonzero(region.any(axis=1))
    if rows.size == 0:
        return 0.0, 0, 0
    cols = np.flatnonzero(region.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    dist = _distance_inside(region[box]) * not_clicked[box]
    index = int(np.argmax(dist))
    row, col = np.unravel_index(index, dist.shape)
    best = float(dist.flat[index])
    return (best, int(row + rows[0]), int(col + cols[0])) if best > 0 else (0.0, 0, 0)


class Clicker:
    """Simulated user of the standard evaluation protocol (protocol.md, "next_click").

    Each click goes to the pixel deepest inside the larger error region: false negatives
    (object & ~pred) against false positives (~object & pred), both outside ignored pixels.
    Positive iff the largest FN distance is strictly greater than the largest FP distance (ties
    are negative); the first pixel in row-major order holding the maximum wins. Already clicked
    pixels have their distance zeroed.

    When both error regions are empty (or all their pixels were already clicked), both maxima
    are 0 and the FP distance map is all zero: as with the reference formulas, the click is then
    negative at pixel (0, 0).
    """

    def __init__(self, gt_mask: np.ndarray, ignore_label: int = -1) -> None:
        """gt_mask: (H, W) int, 1 object, 0 background, ignore_label ignored."""
        gt_mask = np.asarray(gt_mask)
        if gt_mask.ndim != 2:
            raise ValueError(f"gt_mask must be (H, W), got shape {gt_mask.shape}")
        self.object = gt_mask == 1
        self.valid = gt_mask != ignore_label
        self.not_clicked = np.ones(gt_mask.shape, dtype=bool)
        self.clicks: list[Click] = []

    def make_next_click(self, pred_mask: np.ndarray) -> Click:
        """Add and return the next click for the current binary prediction, (H, W) bool."""
        pred = np.asarray(pred_mask, dtype=bool)
        if pred.shape != self.object.shape:
            raise ValueError(f"pred_mask shape {pred.shape} differs from gt_mask shape {self.object.shape}")
        fn = _deepest(self.object & ~pred & self.valid, self.not_clicked)
        fp = _deepest(~self.object & pred & self.valid, self.not_clicked)
        is_positive = fn[0] > fp[0]
        _, row, col = fn if is_positive else fp
        click = Click(row, col, is_positive)
        self.clicks.append(click)
        self.not_clicked[click.row, click.col] = False
        return click
