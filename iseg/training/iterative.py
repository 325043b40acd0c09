"""Iterative training clicks (RITM): extra clicks placed from the current prediction's errors.

Given the prediction for a batch, each sample gets one more click at a random pixel of the inner part
(distance > max / 2) of its larger error region: false negatives give a positive click, false positives a
negative one (FN wins only when its maximum distance is strictly larger). The click fills the first empty slot
of its half of the points array, with the next order number. A sample with no error or no free slot is left
as it is.
"""

from __future__ import annotations

import numpy as np
import torch

from iseg.protocol import PRED_THRESHOLD
from iseg.training.points_sampler import EMPTY, inner_distance, pick


def add_error_clicks(prob: torch.Tensor, target: torch.Tensor, points: torch.Tensor,
                     rng: np.random.Generator) -> torch.Tensor:
    """prob: (B, 1, H, W) in [0, 1]; target: (B, 1, H, W) with 1/0/-1; points: (B, 2P, 3).

    Returns a new (B, 2P, 3) points tensor with one click added per sample where possible."""
    pred = (prob > PRED_THRESHOLD).squeeze(1).cpu().numpy()
    gt = target.squeeze(1).cpu().numpy()
    out = points.detach().cpu().numpy().copy()
    for b in range(out.shape[0]):
        click = next_error_click(pred[b], gt[b], rng)
        if click is not None:
            _insert(out[b], *click)
    return torch.from_numpy(out).to(points.device)


def next_error_click(pred: np.ndarray, gt: np.ndarray,
                     rng: np.random.Generator) -> tuple[int, int, bool] | None:
    """(row, col, is_positive) from (H, W) bool prediction and (H, W) gt, or None when there is no error."""
    valid = gt != -1
    fn = inner_distance((gt == 1) & ~pred & valid)
    fp = inner_distance((gt == 0) & pred & valid)
    fn_max, fp_max = float(fn.max()), float(fp.max())
    if max(fn_max, fp_max) == 0:
        return None
    is_positive = fn_max > fp_max
    dist, top = (fn, fn_max) if is_positive else (fp, fp_max)
    row, col = pick(dist > top / 2, rng)
    return row, col, is_positive


def _insert(points: np.ndarray, row: int, col: int, is_positive: bool) -> None:
    """Write a click into the first empty slot of its half of a (2P, 3) array, in place (no-op when full)."""
    p = points.shape[0] // 2
    half = points[:p] if is_positive else points[p:]
    free = np.flatnonzero(half[:, 0] == EMPTY)
    if free.size:
        half[free[0]] = (row, col, points[:, 2].max() + 1)
