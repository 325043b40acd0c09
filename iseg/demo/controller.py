"""The GUI-free state of the click demo: one image, its clicks and the predictions after each click.

Clicks can be queued (`queue_click`, instant) and predicted later in order (`predict_next`, slow), so that a front
end draws a click's marker at once and runs the model in the background; `add_click` does both at once.
The state is guarded by a lock: one thread may predict while another queues clicks and draws frames.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from iseg.atomic import atomic_path
from iseg.clicks import Click
from iseg.data.io import check_declared_pixels
from iseg.inference.transforms import Roi
from iseg.protocol import PRED_THRESHOLD



def decode_upload(data: bytes, name: str, flags: int, expected: str) -> np.ndarray:
    """Decode the bytes of an uploaded image file with OpenCV `flags`; ValueError naming `name` and what was
    `expected` when they are not an image it can read."""
    check_declared_pixels(bytes(data), repr(name))
    buffer = np.frombuffer(bytes(data), dtype=np.uint8)
    decoded = cv2.imdecode(buffer, flags) if buffer.size else None
    if decoded is None:
        raise ValueError(f"{name!r} is not an image file that can be read ({len(buffer)} bytes); expected {expected}")
    return decoded


def load_image_bytes(data: bytes, name: str = "upload") -> np.ndarray:
    """Decode an encoded image file (JPEG, PNG, BMP, ...) into (H, W, 3) uint8 RGB.

    Raises ValueError naming `name` when the bytes are not an image OpenCV can read.
    """
    image = decode_upload(data, name, cv2.IMREAD_COLOR, "a JPEG, PNG, BMP or TIFF picture")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_mask_bytes(data: bytes, name: str, shape: tuple[int, int]) -> np.ndarray:
    """Decode a mask file (PNG, ...; object > 127 in its first channel, as `mask_png` writes) of an image of
    `shape` (H, W) into an (H, W) bool mask; ValueError naming `name` for a file that is not an image or another
    size."""
    raw = decode_upload(data, name, cv2.IMREAD_UNCHANGED, "a PNG of 0 (background) and 255 (object)")
    values = raw if raw.ndim == 2 else raw[..., 0]
    if values.shape != tuple(shape):
        raise ValueError(f"mask {name!r} is {values.shape[0]}x{values.shape[1]} (HxW) but the image is "
                         f"{shape[0]}x{shape[1]}; expected a mask of the image shown")
    return values > 127


def mask_png(mask: np.ndarray) -> bytes:
    """(H, W) bool mask -> the bytes of a 0/255 PNG."""
    ok, encoded = cv2.imencode(".png", mask.astype(np.uint8) * 255)
    if not ok:
        raise OSError(f"could not encode a {mask.shape} mask as PNG")
    return encoded.tobytes()


def predictor_state(predictor) -> dict:
    """What `predictor` carries from one click to the next besides the previous mask: RITM's zoom-in crop
    (`SingleNetPredictor.zoom_in`) and f-BRS's scale and bias (`refiner.params`). The cascade without f-BRS and
    GrabCut keep only caches, so theirs is empty."""
    state = {}
    zoom_in = getattr(predictor, "zoom_in", None)
    if zoom_in is not None:
        state["zoom_in"] = dict(vars(zoom_in))
    refiner = getattr(predictor, "refiner", None)
    if refiner is not None:
        state["brs_params"] = refiner.params  # replaced, never changed in place, by each refinement
    return state


def restore_predictor_state(predictor, state: dict) -> None:
    """Put back a state taken by `predictor_state` (undo must predict as a fresh replay of the kept clicks)."""
    if "zoom_in" in state:
        vars(predictor.zoom_in).update(state["zoom_in"])
    refiner = getattr(predictor, "refiner", None)
    if refiner is not None:  # a step taken before f-BRS was switched on starts it afresh
        refiner.params = state.get("brs_params")


@dataclass(frozen=True)
class Intention:
    """What IFPN's coarse network intended at a click: its (H, W) float32 probabilities and the zoom-in box it chose
    for the fine network."""

    coarse: np.ndarray
    roi: Roi | None


@dataclass(frozen=True)
class Step:
    """One predicted click: the probabilities after it, the seconds the predictor took, the coarse network's
    intention (None for predictors without one) and the predictor's state before it (restored by undo)."""

    click: Click
    prob: np.ndarray
    seconds: float
    intention: Intention | None
    state_before: dict


@dataclass(frozen=True)
class Snapshot:
    """A consistent view of the controller for drawing a frame: predicted clicks, clicks waiting for the model,
    the probabilities after the last predicted click (None before any) and its intention."""

    clicks: list[Click]
    pending: list[Click]
    prob: np.ndarray | None
    intention: Intention | None
    seconds: float | None


def intention_of(predictor) -> Intention | None:
    """The coarse probabilities and zoom-in box of the predictor's last predict (IFPN's CascadePredictor), or None."""
    coarse = getattr(predictor, "last_coarse", None)
    if coarse is None:
        return None
    return Intention(np.array(coarse, dtype=np.float32), getattr(predictor, "last_roi", None))


class ClickController:
    """Clicks in, masks out: what any front end (notebook widget, Tk, tests) drives.

    `predictor` follows the predictor protocol of docs/design.md: `set_image(image)` once per image,
    `predict(clicks, prev_prob) -> (H, W) float32`. Each click's probability map is kept, so `undo`
    restores the previous state without running the model again. `set_start_mask` starts from an existing mask
    (RITM's "load mask"): it is the mask before the first click and the first click's previous probabilities.
    """

    def __init__(self, predictor, image: np.ndarray | None = None, gt_mask: np.ndarray | None = None):
        self.predictor = predictor
        self.image: np.ndarray | None = None
        self.gt_mask: np.ndarray | None = None
        self._steps: list[Step] = []
        self._pending: list[Click] = []
        self._start: np.ndarray | None = None
        self.threshold = PRED_THRESHOLD
        self._lock = threading.RLock()  # the click lists: held briefly
        self._model_lock = threading.Lock()  # the predictor: held while it runs, and by anything that resets it
        if image is not None:
            self.set_image(image, gt_mask)

    def set_image(self, image: np.ndarray, gt_mask: np.ndarray | None = None) -> None:
        """Start over on a new (H, W, 3) uint8 image, with an optional (H, W) gt mask (1, 0, -1 ignore)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        if gt_mask is not None and np.shape(gt_mask) != image.shape[:2]:
            raise ValueError(f"gt_mask must be {image.shape[:2]} like the image, got {np.shape(gt_mask)}")
        with self._model_lock, self._lock:
            self.predictor.set_image(image)
            self.image = image
            self.gt_mask = None if gt_mask is None else np.asarray(gt_mask)
            self._steps.clear()
            self._pending.clear()
            self._start = None

    def set_start_mask(self, mask: np.ndarray | None) -> None:
        """Remove every click and start from `mask` ((H, W) bool of the image; None: from nothing)."""
        image = self._require_image()
        if mask is not None and np.shape(mask) != image.shape[:2]:
            raise ValueError(f"start mask must be {image.shape[:2]} like the image, got {np.shape(mask)}")
        self.reset()
        with self._lock:
            self._start = None if mask is None else np.asarray(mask, dtype=bool).astype(np.float32)

    def _require_image(self) -> np.ndarray:
        if self.image is None:
            raise RuntimeError("no image: call set_image(image) first")
        return self.image

    def queue_click(self, row: int, col: int, is_positive: bool) -> bool:
        """Queue a click for `predict_next` (instant); False (nothing queued) for a click outside the image."""
        height, width = self._require_image().shape[:2]
        if not (0 <= row < height and 0 <= col < width):
            return False
        with self._lock:
            self._pending.append(Click(int(row), int(col), bool(is_positive)))
        return True

    def predict_next(self) -> bool:
        """Predict the oldest queued click (with every click before it); False when none is queued.

        The model runs outside the click lock, so clicks can be queued and frames drawn meanwhile; undo, reset and
        set_image wait for it. On an error the queue is dropped (the clicks after a failed one would be predicted
        from the wrong state) and the error raised.
        """
        with self._model_lock:
            return self._predict_next()

    def _predict_next(self) -> bool:
        with self._lock:
            if not self._pending:
                return False
            click, clicks = self._pending[0], [step.click for step in self._steps] + [self._pending[0]]
            prev_prob = self._steps[-1].prob if self._steps else self._start
            state = predictor_state(self.predictor)
            shape = self._require_image().shape[:2]
        try:
            start = time.perf_counter()
            prob = np.asarray(self.predictor.predict(clicks, prev_prob), dtype=np.float32)
            seconds = time.perf_counter() - start
            if prob.shape != shape:
                raise ValueError(f"predictor returned a {prob.shape} map, expected {shape}")
        except BaseException:
            with self._lock:
                restore_predictor_state(self.predictor, state)
                self._pending.clear()
            raise
        with self._lock:
            self._steps.append(Step(click, prob, seconds, intention_of(self.predictor), state))
            self._pending.pop(0)
        return True

    def add_click(self, row: int, col: int, is_positive: bool) -> bool:
        """Add a click and predict (with any queued before it); False (nothing changes) outside the image."""
        if not self.queue_click(row, col, is_positive):
            return False
        while self.predict_next():
            pass
        return True

    def undo(self) -> bool:
        """Remove the last click and go back to the prediction before it; False when there is none.

        A queued click is simply dropped; a predicted one restores the predictor's state before it, so the next
        click predicts what a fresh replay of the kept clicks would.
        """
        with self._model_lock, self._lock:
            if self._pending:
                self._pending.pop()
                return True
            if not self._steps:
                return False
            restore_predictor_state(self.predictor, self._steps.pop().state_before)
            return True

    def reset(self) -> None:
        """Remove every click (the image and the start mask stay)."""
        with self._model_lock, self._lock:
            if self._steps:
                restore_predictor_state(self.predictor, self._steps[0].state_before)
            self._steps.clear()
            self._pending.clear()

    def snapshot(self) -> Snapshot:
        """The state to draw, taken at one moment (predicted and queued clicks, last probabilities, intention)."""
        with self._lock:
            last = self._steps[-1] if self._steps else None
            return Snapshot([step.click for step in self._steps], list(self._pending),
                            self._start if last is None else last.prob, None if last is None else last.intention,
                            None if last is None else last.seconds)

    @property
    def clicks(self) -> list[Click]:
        """The predicted clicks so far, oldest first (a copy)."""
        with self._lock:
            return [step.click for step in self._steps]

    @property
    def pending(self) -> list[Click]:
        """The queued clicks waiting for `predict_next`, oldest first (a copy)."""
        with self._lock:
            return list(self._pending)

    @property
    def prob(self) -> np.ndarray:
        """(H, W) float32 object probability after the last click (before any: the start mask, or zeros)."""
        image = self._require_image()
        with self._lock:
            if self._steps:
                return self._steps[-1].prob
            return self._start if self._start is not None else np.zeros(image.shape[:2], np.float32)

    def set_threshold(self, value: float) -> None:
        """The probability above which a pixel is object in `mask`, the IoU, Save and Download (the protocol's
        0.49 at start); the model's own input, the previous probabilities, does not depend on it."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise ValueError(f"threshold must be a probability in (0, 1), got {value!r}")
        self.threshold = float(value)

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: prob > `threshold`."""
        return self.prob > self.threshold

    @property
    def intention(self) -> Intention | None:
        """The coarse network's intention at the last click (None before any or without a coarse network)."""
        with self._lock:
            return self._steps[-1].intention if self._steps else None

    @property
    def iou(self) -> float | None:
        """IoU of the current mask with the gt mask, or None when the image has no gt."""
        if self.gt_mask is None:
            return None
        from iseg.metrics import iou

        return float(iou(self.gt_mask, self.mask))

    @property
    def last_click_seconds(self) -> float | None:
        """Wall-clock seconds the predictor took for the last (kept) click, None before any click."""
        with self._lock:
            return self._steps[-1].seconds if self._steps else None

    def mask_png(self) -> bytes:
        """The current mask as the bytes of a 0/255 PNG (for a download)."""
        return mask_png(self.mask)

    def save_mask(self, path: str | Path) -> Path:
        """Write the current mask as a 0/255 PNG (atomically) and return its path."""
        path = Path(path)
        encoded = self.mask_png()
        with atomic_path(path) as tmp:
            tmp.write_bytes(encoded)
        return path
