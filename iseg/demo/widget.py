"""The click demo as an ipywidgets app: a thin view over `ClickController`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import ipywidgets as widgets
import numpy as np
from ipyevents import Event

from iseg.data.sample import Sample
from iseg.demo.controller import ClickController, load_image_bytes
from iseg.resources import project_root

MAX_SIDE = 800
JPEG_QUALITY = 90
DEFAULT_SAVE_DIR = project_root() / "runs" / "demo"


def display_scale(shape: tuple[int, ...], max_side: int = MAX_SIDE) -> float:
    """Factor (<= 1) that brings an image of `shape` (H, W, ...) to at most `max_side` px on its long side."""
    return min(1.0, max_side / max(shape[:2]))


def encode_frame(image: np.ndarray, scale: float) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG bytes, resized by `scale` first when it is below 1."""
    if scale < 1:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"could not encode a {image.shape} frame as JPEG")
    return encoded.tobytes()


class ClickDemo(widgets.VBox):
    """Pick an image (dataset sample or upload), click on it, see the mask; undo, reset, save.

    Left click adds a positive click, right click (or shift + click) a negative one.
    `controller_or_predictor` is a `ClickController` or a predictor (docs/design.md protocol);
    `samples` are `iseg.data.Sample`s offered in a dropdown, the first one shown at start.
    """

    def __init__(self, controller_or_predictor, samples: Sequence[Sample] | None = None,
                 save_dir: str | Path = DEFAULT_SAVE_DIR, max_side: int = MAX_SIDE):
        self.controller = (controller_or_predictor if isinstance(controller_or_predictor, ClickController)
                           else ClickController(controller_or_predictor))
        self.samples = list(samples or [])
        self.save_dir = Path(save_dir)
        self.max_side = max_side
        self.scale = 1.0
        self.image_name = ""

        self.picker = widgets.Dropdown(options=[(s.id, i) for i, s in enumerate(self.samples)],
                                       value=None, description="Sample")
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Your image")
        self.image = widgets.Image(format="jpeg")
        self.image.add_class("iseg-image")
        self.events = Event(source=self.image, watched_events=["click", "contextmenu"],
                            prevent_default_action=True)
        self.undo_button = widgets.Button(description="Undo", icon="undo")
        self.reset_button = widgets.Button(description="Reset", icon="refresh")
        self.save_button = widgets.Button(description="Save mask", icon="save")
        self.status = widgets.Label()
        self.status.add_class("iseg-status")

        self.picker.observe(self._on_pick, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.events.on_dom_event(self.handle_event)
        self.undo_button.on_click(lambda _: self._act(self.controller.undo))
        self.reset_button.on_click(lambda _: self._act(self.controller.reset))
        self.save_button.on_click(lambda _: self.save())

        super().__init__([
            widgets.HBox([self.picker, self.upload]),
            self.image,
            widgets.HBox([self.undo_button, self.reset_button, self.save_button]),
            self.status,
        ])
        if self.samples:
            self.picker.value = 0
        elif self.controller.image is not None:
            self._show_new_image("image")
        else:
            self._refresh("Pick a sample or upload an image.")

    def load(self, image: np.ndarray, gt_mask: np.ndarray | None = None, name: str = "image") -> None:
        """Show a new (H, W, 3) uint8 image (optional (H, W) gt mask) with no clicks."""
        self.controller.set_image(image, gt_mask)
        self._show_new_image(name)

    def _show_new_image(self, name: str) -> None:
        self.image_name = name
        self.scale = display_scale(self.controller.image.shape, self.max_side)
        self._refresh()

    def _on_pick(self, change: dict) -> None:
        if change["new"] is None:
            return
        sample = self.samples[change["new"]]
        self.load(sample.image, sample.mask, sample.id)

    def _on_upload(self, change: dict) -> None:
        for upload in change["new"]:
            try:
                image = load_image_bytes(upload["content"], upload["name"])
            except ValueError as error:
                self._refresh(f"Upload ignored: {error}")
                continue
            self.picker.value = None
            self.load(image, None, Path(upload["name"]).stem)
        if change["new"]:
            self.upload.value = ()

    def to_image_coords(self, x: float, y: float) -> tuple[int, int]:
        """(row, col) in the full image of a point (x, y) in the displayed frame's pixels."""
        height, width = self.controller.image.shape[:2]
        return self._to_full(y, height), self._to_full(x, width)

    def _to_full(self, value: float, size: int) -> int:
        """Scale one coordinate back; a point inside the frame stays inside the image despite rounding."""
        full = round(value / self.scale)
        return min(full, size - 1) if 0 <= value < round(size * self.scale) else full

    def handle_event(self, event: dict) -> bool:
        """Turn an ipyevents click/contextmenu dict into a click; True if one was added."""
        if self.controller.image is None or event.get("type") not in ("click", "contextmenu"):
            return False
        is_positive = event["type"] == "click" and not event.get("shiftKey", False)
        row, col = self.to_image_coords(event["dataX"], event["dataY"])
        added = self.controller.add_click(row, col, is_positive)
        self._refresh("" if added else f"Click at ({row}, {col}) is outside the image: ignored.")
        return added

    def _act(self, action) -> None:
        if self.controller.image is not None:
            action()
            self._refresh()

    def save(self) -> Path | None:
        """Save the current mask as <save_dir>/<image name>.png; returns the path (None without an image)."""
        if self.controller.image is None:
            self._refresh("Nothing to save: no image.")
            return None
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", self.image_name).strip("_") or "image"
        path = self.controller.save_mask(self.save_dir / f"{stem}_mask.png")
        self._refresh(f"Saved {path}")
        return path

    def status_text(self) -> str:
        """One line: image, click count, IoU when the gt is known, seconds for the last click."""
        if self.controller.image is None:
            return ""
        n = len(self.controller.clicks)
        parts = [self.image_name, f"{n} click{'s' if n != 1 else ''}"]
        if n and self.controller.iou is not None:
            parts.append(f"IoU {self.controller.iou:.3f}")
        if n and self.controller.last_click_seconds is not None:
            parts.append(f"{self.controller.last_click_seconds:.2f} s/click")
        return " | ".join(parts)

    def _refresh(self, message: str = "") -> None:
        if self.controller.image is not None:
            self.image.value = encode_frame(self.controller.render(), self.scale)
        self.status.value = " | ".join(p for p in (self.status_text(), message) if p)


def make_demo(predictor: str = "default", dataset: str | None = "GrabCut", n_samples: int = 10,
              device: str = "cpu", **demo_options) -> ClickDemo:
    """The demo with a predictor from `iseg.predictor.load_predictor(predictor)` and the first `n_samples`.

    When the shipped default model is unavailable, falls back to the GrabCut baseline with a printed note.
    """
    from iseg.predictor import load_predictor

    try:
        model = load_predictor(predictor, device=device)
    except FileNotFoundError as error:  # no shipped weights in this checkout
        if predictor != "default":
            raise
        print(f"Note: the default model is not available ({error}); using the GrabCut baseline instead.")
        model = load_predictor("grabcut")
    samples = []
    if dataset:
        from iseg.data import load_dataset

        data = load_dataset(dataset)
        samples = [data[i] for i in range(min(n_samples, len(data)))]
    return ClickDemo(model, samples, **demo_options)
