"""Batched coarse -> zoom-in -> fine cascade for stage-2 training and validation (ifpn.md, "Stage 2").

Boxes are integer (top, left, bottom, right), bottom/right exclusive, in the full image. As in the inference
transforms (`iseg.inference.transforms.Crop`), a crop is resized to its network size (image and probabilities
bilinear, antialiased when shrinking; masks nearest), clicks map to the pixel whose centre they scale to, and a
fine prediction is resized back into its box and pasted into zeros.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from iseg.inference.transforms import long_side_size, resize
from iseg.inference.zoom_in import intention_roi
from iseg.training.points_sampler import EMPTY, points_to_clicks

Box = tuple[int, int, int, int]
Net = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], dict]


def force_aspect(box: Box, aspect: float, shape: tuple[int, int]) -> Box:
    """Grow the box's short side about its centre to height/width = aspect, then shift/clamp it into (H, W)."""
    top, left, bottom, right = box
    h, w = bottom - top, right - left
    if h < aspect * w:
        h = min(shape[0], round(aspect * w))
    else:
        w = min(shape[1], round(h / aspect))
    top = int(np.clip(round((box[0] + box[2] - h) / 2), 0, shape[0] - h))
    left = int(np.clip(round((box[1] + box[3] - w) / 2), 0, shape[1] - w))
    return top, left, top + h, left + w


def roi_boxes(prob: torch.Tensor, points: torch.Tensor) -> list[Box]:
    """IFPN intention ROI per sample of prob (B, 1, H, W) and points (B, 2P, 3)."""
    boxes = []
    for prob_b, points_b in zip(prob[:, 0].cpu().numpy(), points.cpu().numpy()):
        roi = intention_roi(prob_b, points_to_clicks(points_b))
        boxes.append((roi.top, roi.left, roi.bottom, roi.right))
    return boxes


def choose_crop(box: Box, crops: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The (h, w) crop a box trains at: among the crops whose aspect the box reaches by growing its shorter side
    only (so its longer side maps to the crop's longer side, as when it is served), the one closest in aspect;
    with none such, the closest in aspect."""
    aspect = (box[2] - box[0]) / max(box[3] - box[1], 1)
    reachable = [c for c in crops if aspect <= c[0] / c[1] <= 1 or 1 <= c[0] / c[1] <= aspect]
    return min(reachable or crops, key=lambda c: abs(math.log(c[0] / c[1] / aspect)))


def crop(tensor: torch.Tensor, boxes: list[Box], size: tuple[int, int], mode: str) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, h, w): each box resized to `size` ("bilinear" or "nearest")."""
    crops = [tensor[b:b + 1, :, t:bt, l:r].float() for b, (t, l, bt, r) in enumerate(boxes)]
    if mode == "nearest":
        return torch.cat([F.interpolate(c, size=size, mode="nearest") for c in crops])
    return torch.cat([resize(c, size) for c in crops])


def map_points(points: torch.Tensor, boxes: list[Box], size: tuple[int, int]) -> torch.Tensor:
    """(B, 2P, 3) full-image points -> crop coordinates; points outside their box are dropped (each half
    compacted, -1 padded), the order column is kept."""
    out = torch.full_like(points, EMPTY)
    p = points.shape[1] // 2
    for b, (top, left, bottom, right) in enumerate(boxes):
        sy, sx = size[0] / (bottom - top), size[1] / (right - left)
        for half in (slice(0, p), slice(p, 2 * p)):
            pts = points[b, half]
            r, c = pts[:, 0], pts[:, 1]
            keep = (r != EMPTY) & (r >= top) & (r < bottom) & (c >= left) & (c < right)
            mapped = torch.stack([torch.floor((r - top + 0.5) * sy).clamp(0, size[0] - 1),
                                  torch.floor((c - left + 0.5) * sx).clamp(0, size[1] - 1), pts[:, 2]], dim=1)[keep]
            out[b, half.start:half.start + len(mapped)] = mapped
    return out


def paste(prob: torch.Tensor, boxes: list[Box], shape: tuple[int, int]) -> torch.Tensor:
    """(B, 1, h, w) crop probabilities -> (B, 1, H, W), each resized into its box, zeros elsewhere."""
    full = prob.new_zeros((prob.shape[0], 1, *shape))
    for b, (top, left, bottom, right) in enumerate(boxes):
        full[b:b + 1, :, top:bottom, left:right] = resize(prob[b:b + 1], (bottom - top, right - left))
    return full


def coarse_probabilities(coarse: Net, image: torch.Tensor, points: torch.Tensor, prev: torch.Tensor,
                         coarse_size: int | None) -> torch.Tensor:
    """(B, 1, H, W) probabilities of the coarse network (no gradient) run on the image resized so that its longer
    side is `coarse_size` (None: as it is), as the predictors run it, brought back to (H, W)."""
    shape = tuple(image.shape[-2:])
    small = long_side_size(shape, coarse_size) if coarse_size else shape
    with torch.no_grad():
        if small == shape:
            return torch.sigmoid(coarse(image, points, prev)["instances"].float())
        scaled = scale_points(points, shape, small)
        logits = coarse(resize(image, small), scaled, resize(prev, small))["instances"].float()
        return resize(torch.sigmoid(logits), shape)


def scale_points(points: torch.Tensor, src: tuple[int, int], dst: tuple[int, int]) -> torch.Tensor:
    """(B, 2P, 3) points moved to the pixel whose centre they scale to in an image resized from `src` to `dst`."""
    out = points.clone()
    used = points[..., 0] != EMPTY
    for axis in (0, 1):
        moved = torch.floor((points[..., axis] + 0.5) * dst[axis] / src[axis]).clamp(0, dst[axis] - 1)
        out[..., axis] = torch.where(used, moved, points[..., axis])
    return out


@dataclass
class CropGroup:
    """The samples of a batch whose ROIs share one crop size, and the fine network's outputs on them."""

    indices: list[int]
    boxes: list[Box]
    size: tuple[int, int]
    outputs: dict


def cascade(coarse: Net, fine: Net, image: torch.Tensor, points: torch.Tensor, prev: torch.Tensor,
            crops: Sequence[tuple[int, int]], coarse_size: int | None = None) -> dict:
    """Run coarse (no gradient) on the full image (resized to `coarse_size`), take its intention ROI per sample,
    give it the crop size of `crops` (h, w) that `choose_crop` picks, grow it to that aspect (`force_aspect`), and
    run fine on each group of samples that share a crop size, at that size.

    image (B, 3, H, W) in [0, 1], points (B, 2P, 3), prev (B, 1, H, W).
    Returns {"groups": [CropGroup], "coarse_prob"}.
    """
    coarse_prob = coarse_probabilities(coarse, image, points, prev, coarse_size)
    shape = tuple(image.shape[-2:])
    rois = roi_boxes(coarse_prob, points)
    sizes = [choose_crop(box, crops) for box in rois]
    groups = []
    for size in dict.fromkeys(sizes):
        indices = [b for b, s in enumerate(sizes) if s == size]
        boxes = [force_aspect(rois[b], size[0] / size[1], shape) for b in indices]
        outputs = fine(crop(image[indices], boxes, size, "bilinear"), map_points(points[indices], boxes, size),
                       crop(coarse_prob[indices], boxes, size, "bilinear"))
        groups.append(CropGroup(indices, boxes, size, outputs))
    return {"groups": groups, "coarse_prob": coarse_prob}
