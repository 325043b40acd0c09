"""Frames of the click demo: the image at display size with the mask, the clicks and IFPN's intention drawn on it.

The per-image work (the display-size copy of the image) is done once in `FrameRenderer(image)`; a frame then costs
one resize of the probability map, some drawing and a JPEG encoding, all at display size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from iseg.clicks import Click
from iseg.demo.controller import Snapshot
from iseg.inference.transforms import Roi
from iseg.protocol import PRED_THRESHOLD
from iseg.visualize import MASK_COLOR, NEGATIVE_COLOR, POSITIVE_COLOR

# Display limits: images are never upscaled, and the largest frame fits beside the demo's 300 px control panel in
# a 1400 x 900 browser window with JupyterLab's file browser open, below the notebook's title and parameters. A
# portrait photo is limited by the height, a landscape one by the width.
MAX_WIDTH = 640
MAX_HEIGHT = 420
JPEG_QUALITY = 90
MARKER_RADIUS = 5
INTENTION_COLOR = (255, 160, 0)
ZOOM_COLOR = (255, 230, 0)
PENDING_COLOR = (255, 230, 0)
OUTSIDE_ZOOM_DIMMING = 0.45
MAX_ZOOM = 8.0


@dataclass(frozen=True)
class FrameStyle:
    """How the mask is drawn: fill `opacity` in [0, 1], `outline_only` (no fill), `intention` (IFPN's coarse
    mask and zoom-in box of the last click) and the probability `threshold` of the mask."""

    opacity: float = 0.4
    outline_only: bool = False
    intention: bool = False
    threshold: float = PRED_THRESHOLD


def display_scale(shape: tuple[int, ...], max_width: int = MAX_WIDTH, max_height: int = MAX_HEIGHT) -> float:
    """Factor (<= 1, never an upscale) that fits an image of `shape` (H, W, ...) into max_width x max_height."""
    return min(1.0, max_width / shape[1], max_height / shape[0])


def encode_jpeg(frame: np.ndarray) -> bytes:
    """(h, w, 3) uint8 RGB -> JPEG bytes (no chroma subsampling: thin coloured outlines stay sharp)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
              cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"could not encode a {frame.shape} frame as JPEG")
    return encoded.tobytes()


def outline(mask: np.ndarray) -> list[np.ndarray]:
    """The outer contours of an (h, w) bool mask."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return list(contours)


class FrameRenderer:
    """Draws the frames of one (H, W, 3) uint8 image at `scale` (see `display_scale`), optionally zoomed in.

    The frame keeps its display size; `zoom_at` and `pan` choose which part of the image it shows (zoom 1: all of
    it). Every drawing and `to_full` go through the same view, so a click lands on the photo pixel under it at any
    zoom.
    """

    def __init__(self, image: np.ndarray, scale: float):
        self.scale = scale
        self.image = image
        self.full_size = image.shape[:2]
        self.size = (max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale)))
        self.base = image if self.size == self.full_size else cv2.resize(
            image, self.size[::-1], interpolation=cv2.INTER_AREA)
        self.zoom, self.top, self.left = 1.0, 0.0, 0.0

    @property
    def pixels_per_image_pixel(self) -> float:
        """Frame pixels per image pixel in the current view."""
        return self.scale * self.zoom

    def zoom_at(self, x: float, y: float, factor: float) -> None:
        """Zoom by `factor` (>1 in, <1 out; between 1x and MAX_ZOOM) keeping the image point under frame point
        (x, y) where it is."""
        step = self.pixels_per_image_pixel
        row, col = self.top + y / step, self.left + x / step
        self.zoom = min(MAX_ZOOM, max(1.0, self.zoom * factor))
        step = self.pixels_per_image_pixel
        self._move(row - y / step, col - x / step)

    def pan(self, down: float, right: float) -> None:
        """Move the view by these shares of its own height and width (negative: up, left)."""
        self._move(self.top + down * self.size[0] / self.pixels_per_image_pixel,
                   self.left + right * self.size[1] / self.pixels_per_image_pixel)

    def fit(self) -> None:
        """Show the whole image again."""
        self.zoom, self.top, self.left = 1.0, 0.0, 0.0

    def _move(self, top: float, left: float) -> None:
        """The view's top-left corner, kept inside the image."""
        step = self.pixels_per_image_pixel
        self.top = min(max(0.0, top), max(0.0, self.full_size[0] - self.size[0] / step))
        self.left = min(max(0.0, left), max(0.0, self.full_size[1] - self.size[1] / step))

    def to_full(self, x: float, y: float) -> tuple[int, int]:
        """(row, col) in the full image of a point (x, y) in the frame's pixels; a point inside the frame stays
        inside the image despite rounding, one outside stays outside."""
        return self._to_full(y, 0, self.top), self._to_full(x, 1, self.left)

    def _to_full(self, value: float, axis: int, offset: float) -> int:
        full = round(offset + value / self.pixels_per_image_pixel)
        return min(full, self.full_size[axis] - 1) if 0 <= value < self.size[axis] else full

    def to_display(self, row: float, col: float) -> tuple[int, int]:
        """(x, y) in the frame of the image point (row, col) (may lie outside the frame when zoomed in; the image's
        last row and column stay on the frame's last ones despite rounding)."""
        step = self.pixels_per_image_pixel
        x, y = int((col - self.left) * step), int((row - self.top) * step)
        return (x - 1 if x == self.size[1] else x), (y - 1 if y == self.size[0] else y)

    def _view(self, picture: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """An image-sized array as the frame shows it (display size, the current view)."""
        if self.zoom == 1.0:
            if self.size == self.full_size:
                return picture
            return cv2.resize(picture, self.size[::-1], interpolation=cv2.INTER_AREA)
        step = self.pixels_per_image_pixel
        matrix = np.float32([[step, 0, -self.left * step], [0, step, -self.top * step]])
        return cv2.warpAffine(picture, matrix, self.size[::-1], flags=interpolation, borderMode=cv2.BORDER_REPLICATE)

    def _shrink(self, prob: np.ndarray, threshold: float = PRED_THRESHOLD) -> np.ndarray:
        """(H, W) probabilities -> (h, w) bool mask of the frame (resized before the threshold: smooth edges)."""
        return self._view(prob) > threshold

    def render(self, state: Snapshot, style: FrameStyle = FrameStyle()) -> np.ndarray:
        """(h, w, 3) uint8: the image, optionally the intention's zoom-in box, the mask (fill and outline), the
        intention's coarse outline over it (both read at once), then the clicks."""
        frame = self.base.copy() if self.zoom == 1.0 else self._view(self.image)
        intention = state.intention if style.intention else None
        if intention is not None and intention.roi is not None:
            self._draw_zoom_box(frame, intention.roi)
        if state.prob is not None:
            self._draw_mask(frame, self._shrink(state.prob, style.threshold), style)
        if intention is not None:
            cv2.drawContours(frame, outline(self._shrink(intention.coarse)), -1, INTENTION_COLOR, 2, cv2.LINE_AA)
        for click in state.clicks:
            self._draw_click(frame, click, pending=False)
        for click in state.pending:
            self._draw_click(frame, click, pending=True)
        return frame

    def _draw_mask(self, frame: np.ndarray, mask: np.ndarray, style: FrameStyle) -> None:
        if not style.outline_only and style.opacity > 0:
            tint = np.array(MASK_COLOR, np.float32)
            frame[mask] = (frame[mask] * (1 - style.opacity) + tint * style.opacity).astype(np.uint8)
        cv2.drawContours(frame, outline(mask), -1, MASK_COLOR, 2, cv2.LINE_AA)

    def _draw_zoom_box(self, frame: np.ndarray, roi: Roi) -> None:
        """Dim what lies outside the zoom-in box and draw the box."""
        left, top = self.to_display(roi.top, roi.left)
        right, bottom = (v + 1 for v in self.to_display(roi.bottom - 1e-6, roi.right - 1e-6))
        top, left = max(top, 0), max(left, 0)
        inside = frame[top:bottom, left:right].copy()
        frame[:] = (frame * OUTSIDE_ZOOM_DIMMING).astype(np.uint8)
        frame[top:bottom, left:right] = inside
        cv2.rectangle(frame, (left, top), (right - 1, bottom - 1), ZOOM_COLOR, 2)
        cv2.putText(frame, "zoom-in", (left + 4, max(top + 16, 16)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, ZOOM_COLOR,
                    1, cv2.LINE_AA)

    def _draw_click(self, frame: np.ndarray, click: Click, pending: bool) -> None:
        """A filled disc with a white rim (green positive, red negative); a click waiting for the model gets a
        yellow ring around it."""
        center = self.to_display(click.row + 0.5, click.col + 0.5)
        if not (0 <= center[0] < self.size[1] and 0 <= center[1] < self.size[0]):
            return  # outside the zoomed-in view
        if pending:
            cv2.circle(frame, center, MARKER_RADIUS + 4, PENDING_COLOR, 2, cv2.LINE_AA)
        cv2.circle(frame, center, MARKER_RADIUS + 1, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(frame, center, MARKER_RADIUS, POSITIVE_COLOR if click.is_positive else NEGATIVE_COLOR, -1,
                   cv2.LINE_AA)
