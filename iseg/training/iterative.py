"""Iterative training clicks (RITM): extra clicks placed from the current prediction's errors.

Given the prediction for a batch, each sample gets one more click at a random pixel of the inner part
(distance > max / 2) of its larger error region: false negatives give a positive click, false positives a
negative one (FN wins only when its maximum distance is strictly larger). The click fills the first empty slot
of its half of the points array, with the next order number. A sample with no error or no free slot is left
as it is.

Two implementations of the same rule: on an accelerator the whole batch stays on the device (an exact Euclidean
distance transform in torch, `inner_distance_batch`: no copy to the host, no per-sample loop, no synchronisation
but one); on the CPU OpenCV's transform per sample, about 10x faster there (docs/gpu.md). Tests hold the two to the
same distances and the same click regions.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from iseg.protocol import PRED_THRESHOLD
from iseg.training.points_sampler import EMPTY, inner_distance, pick


def add_error_clicks(prob: Tensor, target: Tensor, points: Tensor, rng: np.random.Generator) -> Tensor:
    """prob: (B, 1, H, W) in [0, 1]; target: (B, 1, H, W) with 1/0/-1; points: (B, 2P, 3).

    Returns a new (B, 2P, 3) points tensor, on the device of `points`, with one click added per sample where
    possible (on the device itself unless it is the CPU)."""
    if points.device.type == "cpu":
        return _add_error_clicks_host(prob, target, points, rng)
    generator = torch.Generator(points.device)
    generator.manual_seed(int(rng.integers(2 ** 62)))
    return add_error_clicks_on_device(prob, target, points, generator)


def _add_error_clicks_host(prob: Tensor, target: Tensor, points: Tensor, rng: np.random.Generator) -> Tensor:
    """`add_error_clicks` with OpenCV's distance transform, one sample at a time."""
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


def inner_distance_batch(regions: Tensor) -> Tensor:
    """(B, H, W) bool -> (B, H, W) float32: the exact Euclidean distance of each region pixel to the nearest pixel
    outside its region, the image border counting as outside (0 outside the region), computed on the regions'
    device. Separable: the distance g to the nearest outside pixel of the same column (two cumulative scans),
    then d^2(r, c) = min over k of g(r, c + k)^2 + k^2, where only |k| <= max g can win."""
    batch, height, width = regions.shape
    rows = torch.arange(height, device=regions.device).view(1, height, 1).expand(batch, height, width)
    outside = ~regions
    above = torch.where(outside, rows, -1).cummax(dim=1).values  # the row -1 is outside
    below = torch.where(outside, rows, height).flip(1).cummin(dim=1).values.flip(1)  # so is the row H
    g = torch.minimum(rows - above, below - rows)
    g2 = g.float() ** 2
    cols = torch.arange(width, device=regions.device, dtype=torch.float32)
    d2 = torch.minimum(g2, torch.minimum((cols + 1) ** 2, (width - cols) ** 2))  # the columns -1 and W are outside
    for k in range(1, min(int(g.max()), width - 1) + 1):
        d2[..., :-k] = torch.minimum(d2[..., :-k], g2[..., k:] + k * k)
        d2[..., k:] = torch.minimum(d2[..., k:], g2[..., :-k] + k * k)
    return d2.sqrt() * regions


def add_error_clicks_on_device(prob: Tensor, target: Tensor, points: Tensor, generator: torch.Generator) -> Tensor:
    """`add_error_clicks` batched on the device of its tensors: the same rule, the random pixel drawn with
    `generator` (a torch.Generator on that device)."""
    pred = (prob > PRED_THRESHOLD).squeeze(1)
    gt = target.squeeze(1)
    valid = gt != -1
    batch = pred.shape[0]
    dist = inner_distance_batch(torch.cat([(gt == 1) & ~pred & valid, (gt == 0) & pred & valid]))
    fn, fp = dist[:batch], dist[batch:]
    fn_max, fp_max = fn.flatten(1).amax(1), fp.flatten(1).amax(1)
    positive = fn_max > fp_max
    top = torch.maximum(fn_max, fp_max)
    chosen = torch.where(positive[:, None, None], fn, fp)
    candidates = chosen > top[:, None, None] / 2
    scores = torch.rand(chosen.shape, generator=generator, device=chosen.device).masked_fill_(~candidates, -1.0)
    index = scores.flatten(1).argmax(1)  # a uniformly random candidate pixel
    click = torch.stack([index // chosen.shape[-1], index % chosen.shape[-1]], dim=1).to(points.dtype)
    half = points.shape[1] // 2
    slot = torch.arange(2 * half, device=points.device)
    own = (slot[None] < half) == positive[:, None]
    free = own & (points[..., 0] == EMPTY)
    first = free.int().argmax(1)  # the first free slot of the click's half
    add = (top > 0) & free.any(1)
    order = points[..., 2].amax(1) + 1
    row = torch.cat([click, order[:, None]], dim=1)
    out = points.clone()
    out[torch.arange(batch, device=points.device), first] = torch.where(
        add[:, None], row, points[torch.arange(batch, device=points.device), first])
    return out
