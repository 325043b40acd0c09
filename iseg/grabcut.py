"""Classical baseline: OpenCV GrabCut driven by clicks.

Per click, GrabCut runs on the image downscaled to `work_size` px on its long side (None: the image as stored),
with the mask initialised as:
- sure foreground: disks of `radius` px (at work size) at the positive clicks;
- sure background: disks at the negative clicks;
- the rest: probable foreground where the previous probability is > 0.5, probable background
  elsewhere. When there is no previous foreground (first click, or everything was removed), the
  probable foreground is the box of the positive clicks grown by `init_box` x the image's long side
  on every side, clamped to the image (a square of side ~0.3 x the long side around a single click).
With no positive click the answer is empty. The result is upsampled bilinearly: probabilities in
[0, 1] that are 0/1 away from the object boundary. The RNG is reseeded before every call, so the
output depends only on the image and the clicks.

The defaults (400 px, radius 8, init_box 0.15, 3 iterations) are the best of `python -m iseg.grabcut_tune` on
held-out COCO-MVal validation images (the trainer's), never on an evaluation set: by NoC@90 they beat full
resolution (radius 5 or 8) and the earlier 0.25 first box and radius 5 (`runs/grabcut_tune/tuning.csv`;
README "Results").
"""

from __future__ import annotations

import cv2
import numpy as np

from iseg.clicks import Click
from iseg.values import check_clicks, check_image, check_integer


class GrabCutPredictor:
    """Click-driven GrabCut (see module docstring); follows the `iseg.predictor.Predictor` protocol."""

    def __init__(self, work_size: int | None = 400, radius: int = 8, iterations: int = 3, init_box: float = 0.15,
                 seed: int = 0) -> None:
        if work_size is not None:
            check_integer("work_size", work_size)
        check_integer("radius", radius)
        check_integer("iterations", iterations)
        if isinstance(init_box, bool) or not isinstance(init_box, (int, float)) or not 0 <= init_box <= 1:
            raise ValueError(f"init_box must be a share of the image's long side in [0, 1], got {init_box!r}")
        self.work_size = work_size
        self.radius = radius
        self.iterations = iterations
        self.init_box = init_box
        self.seed = seed
        self._full_shape: tuple[int, int] | None = None
        self._image: np.ndarray | None = None
        self._scale = 1.0

    def set_image(self, image: np.ndarray) -> None:
        """Store the (H, W, 3) uint8 image downscaled to the working size."""
        check_image(image)
        h, w = image.shape[:2]
        self._full_shape = (h, w)
        self._scale = 1.0 if self.work_size is None else min(1.0, self.work_size / max(h, w))
        size = (max(1, round(w * self._scale)), max(1, round(h * self._scale)))
        self._image = np.ascontiguousarray(
            image if self._scale == 1.0 else cv2.resize(image, size, interpolation=cv2.INTER_AREA))

    def predict(self, clicks: list[Click], prev_prob: np.ndarray | None) -> np.ndarray:
        """(H, W) float32 foreground probability after GrabCut with these clicks."""
        if self._image is None or self._full_shape is None:
            raise RuntimeError("call set_image before predict")
        h, w = self._full_shape
        check_clicks(clicks, (h, w))
        if not any(c.is_positive for c in clicks):
            return np.zeros((h, w), dtype=np.float32)
        mask = self._initial_mask(clicks, prev_prob)
        if not _has_fg_and_bg(mask):
            return np.ones((h, w), dtype=np.float32)
        bgd_model = np.zeros((1, 65), np.float64)
        fgd_model = np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(self.seed)
        cv2.grabCut(self._image, mask, None, bgd_model, fgd_model, self.iterations, cv2.GC_INIT_WITH_MASK)
        fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.float32)
        if fg.shape != (h, w):
            fg = cv2.resize(fg, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(fg, 0.0, 1.0)

    def _to_work(self, click: Click) -> tuple[int, int]:
        """(x, y) of a click in the working image."""
        hw, ww = self._image.shape[:2]
        row = min(hw - 1, max(0, round((click.row + 0.5) * self._scale - 0.5)))
        col = min(ww - 1, max(0, round((click.col + 0.5) * self._scale - 0.5)))
        return col, row

    def _initial_mask(self, clicks: list[Click], prev_prob: np.ndarray | None) -> np.ndarray:
        """(h, w) uint8 GrabCut labels at working size."""
        hw, ww = self._image.shape[:2]
        mask = np.full((hw, ww), cv2.GC_PR_BGD, dtype=np.uint8)
        prev_fg = None
        if prev_prob is not None:
            prev = np.asarray(prev_prob, dtype=np.float32)
            if prev.shape != (hw, ww):
                prev = cv2.resize(prev, (ww, hw), interpolation=cv2.INTER_LINEAR)
            prev_fg = prev > 0.5
        if prev_fg is not None and prev_fg.any():
            mask[prev_fg] = cv2.GC_PR_FGD
        else:
            mask[self._init_box(clicks)] = cv2.GC_PR_FGD
        for label, positive in ((cv2.GC_BGD, False), (cv2.GC_FGD, True)):
            for c in clicks:
                if c.is_positive == positive:
                    cv2.circle(mask, self._to_work(c), self.radius, int(label), thickness=-1)
        if not np.isin(mask, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
            frame = np.ones_like(mask, dtype=bool)
            frame[1:-1, 1:-1] = False
            mask[frame & (mask != cv2.GC_FGD)] = cv2.GC_PR_BGD
        return mask

    def _init_box(self, clicks: list[Click]) -> tuple[slice, slice]:
        """Slices of the probable-foreground square around the positive clicks (working size)."""
        hw, ww = self._image.shape[:2]
        pts = np.array([self._to_work(c) for c in clicks if c.is_positive])
        half = self.init_box * max(hw, ww)
        x0, y0 = pts.min(axis=0) - half
        x1, y1 = pts.max(axis=0) + half
        return (slice(max(0, int(y0)), min(hw, int(y1) + 1)), slice(max(0, int(x0)), min(ww, int(x1) + 1)))


def _has_fg_and_bg(mask: np.ndarray) -> bool:
    """True when a GrabCut label map holds both (probable or sure) foreground and background."""
    return bool(np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).any() and np.isin(mask, (cv2.GC_BGD, cv2.GC_PR_BGD)).any())
