"""Metrics of the standard protocol: IoU, NoC / NoF and the mIoU-per-click curve.

IoU sequences are stored as float32, as the reference code stores them, and thresholds are compared
in float32 too, so that NoC/NoF match the reference to the last digit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def iou(gt_mask: np.ndarray, pred_mask: np.ndarray, ignore_label: int = -1) -> float:
    """IoU of the object (gt == 1) and the (H, W) bool prediction, counted where gt != ignore_label.

    An empty union (no object and nothing predicted outside ignored pixels) is a perfect answer: 1.0.
    """
    gt_mask = np.asarray(gt_mask)
    pred = np.asarray(pred_mask, dtype=bool)
    if pred.shape != gt_mask.shape:
        raise ValueError(f"pred_mask shape {pred.shape} differs from gt_mask shape {gt_mask.shape}")
    valid = gt_mask != ignore_label
    obj = gt_mask == 1
    union = int(np.count_nonzero((obj | pred) & valid))
    if union == 0:
        return 1.0
    return int(np.count_nonzero(obj & pred & valid)) / union


def _as_iou_array(ious: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(ious, dtype=np.float32)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"an IoU sequence must be a non-empty 1-D sequence, got shape {arr.shape}")
    return arr


def clicks_to_reach(ious: Sequence[float] | np.ndarray, iou_thr: float, max_clicks: int = 20) -> int:
    """1-based index of the first click among the first max_clicks with IoU >= iou_thr, else max_clicks."""
    reached = _as_iou_array(ious)[:max_clicks] >= np.float32(iou_thr)
    return int(np.argmax(reached)) + 1 if reached.any() else max_clicks


def noc(ious_per_sample: Sequence[Sequence[float] | np.ndarray], iou_thr: float,
        max_clicks: int = 20) -> tuple[float, int]:
    """(mean NoC@iou_thr over samples, NoF = number of samples whose NoC equals max_clicks).

    As in the reference code, a sample that reaches the threshold exactly at click max_clicks also
    counts as a failure.
    """
    if len(ious_per_sample) == 0:
        raise ValueError("noc needs at least one sample")
    nocs = np.array([clicks_to_reach(s, iou_thr, max_clicks) for s in ious_per_sample])
    return float(nocs.mean()), int(np.count_nonzero(nocs == max_clicks))


def miou_curve(ious_per_sample: Sequence[Sequence[float] | np.ndarray], max_clicks: int = 20) -> np.ndarray:
    """(max_clicks,) float64 mean IoU after k = 1..max_clicks clicks; a sample that stopped early keeps
    its last IoU."""
    if len(ious_per_sample) == 0:
        raise ValueError("miou_curve needs at least one sample")
    rows = []
    for s in ious_per_sample:
        arr = _as_iou_array(s)[:max_clicks].astype(np.float64)
        rows.append(np.pad(arr, (0, max_clicks - arr.size), mode="edge"))
    return np.mean(rows, axis=0)
