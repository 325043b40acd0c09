"""The GUI-free state of the click demo: one image, its clicks and the predictions after each click."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from iseg.atomic import atomic_path
from iseg.clicks import Click
from iseg.visualize import render as render_overlay

MASK_THRESHOLD = 0.49


def load_image_bytes(data: bytes, name: str = "upload") -> np.ndarray:
    """Decode an encoded image file (JPEG, PNG, BMP, ...) into (H, W, 3) uint8 RGB.

    Raises ValueError naming `name` when the bytes are not an image OpenCV can read.
    """
    buffer = np.frombuffer(bytes(data), dtype=np.uint8)
    image = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
    if image is None:
        raise ValueError(f"{name!r} is not an image file that can be read ({len(buffer)} bytes); "
                         "expected a JPEG, PNG, BMP or TIFF picture")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class ClickController:
    """Clicks in, masks out: what any front end (notebook widget, Tk, tests) drives.

    `predictor` follows the predictor protocol of docs/design.md: `set_image(image)` once per image,
    `predict(clicks, prev_prob) -> (H, W) float32`. Each click's probability map is kept, so `undo`
    restores the previous state without running the model again.
    """

    def __init__(self, predictor, image: np.ndarray | None = None, gt_mask: np.ndarray | None = None):
        self.predictor = predictor
        self.image: np.ndarray | None = None
        self.gt_mask: np.ndarray | None = None
        self._clicks: list[Click] = []
        self._probs: list[np.ndarray] = []
        self._last_click_seconds: float | None = None
        if image is not None:
            self.set_image(image, gt_mask)

    def set_image(self, image: np.ndarray, gt_mask: np.ndarray | None = None) -> None:
        """Start over on a new (H, W, 3) uint8 image, with an optional (H, W) gt mask (1, 0, -1 ignore)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        if gt_mask is not None and np.shape(gt_mask) != image.shape[:2]:
            raise ValueError(f"gt_mask must be {image.shape[:2]} like the image, got {np.shape(gt_mask)}")
        self.predictor.set_image(image)
        self.image = image
        self.gt_mask = None if gt_mask is None else np.asarray(gt_mask)
        self.reset()

    def _require_image(self) -> np.ndarray:
        if self.image is None:
            raise RuntimeError("no image: call set_image(image) first")
        return self.image

    def add_click(self, row: int, col: int, is_positive: bool) -> bool:
        """Add a click and predict; returns False (and changes nothing) for a click outside the image."""
        height, width = self._require_image().shape[:2]
        if not (0 <= row < height and 0 <= col < width):
            return False
        click = Click(int(row), int(col), bool(is_positive))
        prev_prob = self._probs[-1] if self._probs else None
        start = time.perf_counter()
        prob = np.asarray(self.predictor.predict([*self._clicks, click], prev_prob), dtype=np.float32)
        self._last_click_seconds = time.perf_counter() - start
        if prob.shape != (height, width):
            raise ValueError(f"predictor returned a {prob.shape} map, expected {(height, width)}")
        self._clicks.append(click)
        self._probs.append(prob)
        return True

    def undo(self) -> bool:
        """Remove the last click and go back to the prediction before it; False when there is none."""
        if not self._clicks:
            return False
        self._clicks.pop()
        self._probs.pop()
        return True

    def reset(self) -> None:
        """Remove every click (the image stays)."""
        self._clicks.clear()
        self._probs.clear()
        self._last_click_seconds = None

    @property
    def clicks(self) -> list[Click]:
        """The clicks so far, oldest first (a copy)."""
        return list(self._clicks)

    @property
    def prob(self) -> np.ndarray:
        """(H, W) float32 object probability after the last click (zeros before any)."""
        image = self._require_image()
        return self._probs[-1] if self._probs else np.zeros(image.shape[:2], np.float32)

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: prob > 0.49, the protocol's threshold."""
        return self.prob > MASK_THRESHOLD

    @property
    def iou(self) -> float | None:
        """IoU of the current mask with the gt mask, or None when the image has no gt."""
        if self.gt_mask is None:
            return None
        from iseg.metrics import iou

        return float(iou(self.gt_mask, self.mask))

    @property
    def last_click_seconds(self) -> float | None:
        """Wall-clock seconds the predictor took for the last click, None before any click."""
        return self._last_click_seconds

    def render(self) -> np.ndarray:
        """(H, W, 3) uint8: the image with the mask overlay and the clicks (green +, red -) drawn."""
        image = self._require_image()
        return render_overlay(image, self.mask if self._clicks else None, self._clicks)

    def save_mask(self, path: str | Path) -> Path:
        """Write the current mask as a 0/255 PNG (atomically) and return its path."""
        path = Path(path)
        ok, encoded = cv2.imencode(".png", self.mask.astype(np.uint8) * 255)
        if not ok:
            raise OSError(f"could not encode the mask as PNG for {path}")
        with atomic_path(path) as tmp:
            tmp.write_bytes(encoded.tobytes())
        return path
