"""The click demo as an ipywidgets app: a thin view over `ClickController`, with the model on a background thread."""

from __future__ import annotations

import base64
import html
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import ipywidgets as widgets
import numpy as np
from ipyevents import Event

from iseg.atomic import unused_path
from iseg.data.sample import Sample
from iseg.demo.controller import ClickController, load_image_bytes, load_mask_bytes
from iseg.demo.frame import MAX_HEIGHT, MAX_WIDTH, FrameRenderer, FrameStyle, display_scale, encode_jpeg
from iseg.demo.worker import PredictionWorker
from iseg.inference.brs import BRS_MODES
from iseg.protocol import PRED_THRESHOLD
from iseg.resources import project_root

DEFAULT_SAVE_DIR = project_root() / "runs" / "demo"
UNDO_KEYS = ("z", "Z", "Backspace")
RESET_KEYS = ("r", "R")
SAVE_KEYS = ("s", "S")
INTENTION_KEYS = ("i", "I")
OUTLINE_KEYS = ("o", "O")
BRS_KEYS = ("b", "B")
ZOOM_IN_KEYS, ZOOM_OUT_KEYS, FIT_KEYS = ("+", "="), ("-", "_"), ("f", "F")
PAN_KEYS = {"ArrowUp": (-0.25, 0.0), "ArrowDown": (0.25, 0.0), "ArrowLeft": (0.0, -0.25), "ArrowRight": (0.0, 0.25)}
ZOOM_STEP = 2.0
BRS_MODE = BRS_MODES[0]  # what the f-BRS toggle switches on
PANEL_WIDTH = 300
HELP = ("<b>Left click</b>: object. <b>Right</b> or <b>Shift + click</b>: background.<br>"
        "Keys (pointer on the image or a button): <b>Z</b>/<b>Backspace</b> undo, <b>R</b> reset, <b>S</b> save, "
        "<b>O</b> outline, <b>I</b> intention, <b>B</b> f-BRS, <b>+</b>/<b>-</b> zoom at the last click, "
        "arrows pan, <b>F</b> fit.")
# The frame keeps its size (a flex box would stretch it to the cell's width); a crosshair to aim; while the model
# runs, a "working" badge on the image and an amber border. Status and help wrap in the 300 px panel.
CSS = """<style>
.iseg-demo .iseg-image { cursor: crosshair; max-width: 100%; height: auto; object-fit: contain;
  outline: 3px solid transparent; outline-offset: -3px; }
.iseg-demo .iseg-image.iseg-busy { outline-color: #ffb000; }
.iseg-demo .iseg-frame { position: relative; align-self: flex-start; margin-right: 12px; }
.iseg-demo .iseg-frame:has(> .iseg-busy)::after { content: "working\\2026"; position: absolute; top: 6px; left: 6px;
  padding: 1px 8px; border-radius: 3px; background: rgba(0, 0, 0, 0.7); color: #ffd24d; font: 600 12px sans-serif;
  pointer-events: none; }
.iseg-demo .iseg-panel > * { max-width: 100%; }
.iseg-demo .iseg-status, .iseg-demo .iseg-status * { white-space: normal; overflow-wrap: break-word;
  line-height: 1.4; }
.iseg-demo .iseg-status .iseg-keep { white-space: nowrap; }
.iseg-demo .iseg-status { margin: 6px 0; }
.iseg-demo .iseg-help, .iseg-demo .iseg-help * { color: var(--jp-ui-font-color2, #666); font-size: 12px;
  line-height: 1.4; }
.iseg-demo a.iseg-download { display: inline-block; padding: 0 10px; line-height: 28px; height: 28px;
  border-radius: 2px; background: var(--jp-layout-color2, #eee); color: var(--jp-ui-font-color1, #000);
  text-decoration: none; font-size: 13px; }
.iseg-demo a.iseg-download:hover { box-shadow: 0 1px 2px rgba(0, 0, 0, 0.3); }
</style>"""


def mask_name(image_name: str) -> str:
    """The file name of an image's mask: its name with unsafe characters replaced, then `_mask.png`."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", image_name).strip("_") or "image"
    return f"{stem}_mask.png"


KEEP_TOGETHER = 36  # status parts up to this many characters never wrap inside ("0.47 s/click", "IoU 0.912")


def status_html(text: str) -> str:
    """A status line of " | "-separated parts as HTML: a short part never wraps inside (a value stays with its
    unit), a long one wraps between words."""
    parts = [html.escape(part) for part in text.split(" | ") if part]
    return " | ".join(f'<span class="iseg-keep">{part}</span>' if len(part) <= KEEP_TOGETHER else part
                      for part in parts)


def compact(widget: widgets.Widget) -> widgets.Widget:
    """The widget at its natural width (ipywidgets gives buttons and dropdowns a wide fixed one)."""
    widget.layout.width = "auto"
    return widget


class ClickDemo(widgets.HBox):
    """Pick an image (dataset sample or upload), click on it, see the mask; undo, reset, save, download.

    Left click adds a positive click, right click (or shift + click) a negative one. A click's marker is drawn at
    once; the model runs on a background thread (`self.worker`), in click order, and the frame after the last
    queued click shows the mask. `controller_or_predictor` is a `ClickController` or a predictor (docs/design.md
    protocol); `samples` are `iseg.data.Sample`s offered in a dropdown, the first one shown at start.
    """

    def __init__(self, controller_or_predictor, samples: Sequence[Sample] | None = None,
                 save_dir: str | Path = DEFAULT_SAVE_DIR, max_width: int = MAX_WIDTH, max_height: int = MAX_HEIGHT):
        self.controller = (controller_or_predictor if isinstance(controller_or_predictor, ClickController)
                           else ClickController(controller_or_predictor))
        self.worker = PredictionWorker(self.controller, self._on_predicted)
        self.samples = list(samples or [])
        self.uploads: list[tuple[str, np.ndarray]] = []  # (name, image) of every readable upload, in order
        self.save_dir = Path(save_dir)
        self.max_width, self.max_height = max_width, max_height
        self.renderer: FrameRenderer | None = None
        self.image_name = ""
        self.message = ""
        self._frame_lock = threading.RLock()  # frames leave in the order of the states they show

        self.picker = compact(widgets.Dropdown(options=[(s.id, i) for i, s in enumerate(self.samples)],
                                               value=None, description="Sample"))
        self.upload = compact(widgets.FileUpload(accept="image/*", multiple=False, description="Upload",
                                                 tooltip="Upload your own image (JPEG, PNG, BMP, TIFF)"))
        self.start_upload = compact(widgets.FileUpload(
            accept=".png,image/*", multiple=False, description="Start mask",
            tooltip="Start from an existing mask of this image (a 0/255 PNG, e.g. one saved here): the next click "
                    "refines it; Reset goes back to it"))
        self.undo_button = compact(widgets.Button(description="Undo", icon="undo", tooltip="Undo the last click (Z)"))
        self.reset_button = compact(widgets.Button(description="Reset", icon="refresh",
                                                   tooltip="Remove every click (R)"))
        self.save_button = compact(widgets.Button(description="Save", icon="save",
                                                  tooltip=f"Save the mask as a PNG in {self.save_dir} (S)"))
        self.zoom_in_button = compact(widgets.Button(icon="search-plus", tooltip="Zoom in at the last click (+)"))
        self.zoom_out_button = compact(widgets.Button(icon="search-minus", tooltip="Zoom out (-)"))
        self.fit_button = compact(widgets.Button(icon="expand", tooltip="Show the whole image (F); arrows pan"))
        self.download = widgets.HTML()
        self.opacity = widgets.FloatSlider(value=FrameStyle.opacity, min=0.0, max=1.0, step=0.05,
                                           description="Mask fill", readout_format=".2f",
                                           layout=widgets.Layout(width="260px"))
        self.threshold = widgets.FloatSlider(value=FrameStyle.threshold, min=0.05, max=0.95, step=0.01,
                                             description="Threshold", readout_format=".2f",
                                             tooltip="Probability above which a pixel is object: the mask, its IoU, "
                                                     "Save and Download (0.49: the evaluation protocol's)",
                                             layout=widgets.Layout(width="260px"))
        self.outline_only = compact(widgets.Checkbox(value=False, description="Outline only", indent=False))
        self.intention = compact(widgets.ToggleButton(
            value=False, description="IFPN intention", icon="eye",
            tooltip="Show what the coarse network intended and where it zoomed in for the last click (I)"))
        refinable = hasattr(self.controller.predictor, "set_brs")
        self.refine = compact(widgets.ToggleButton(
            value=refinable and getattr(self.controller.predictor, "brs", None) is not None, description="f-BRS",
            icon="magic", disabled=not refinable,
            tooltip=(f"Refine each prediction at the clicks ({BRS_MODE}, docs/models.md): slower; it helps where a "
                     "mask stops improving and may disturb one that is nearly done (B)" if refinable
                     else "f-BRS refines network predictors")))
        self.status = widgets.HTML()
        self.status.add_class("iseg-status")
        self.image = widgets.Image(format="jpeg")
        self.image.add_class("iseg-image")
        self.frame = widgets.Box([self.image])
        self.frame.add_class("iseg-frame")
        self.help = widgets.HTML(HELP)
        self.help.add_class("iseg-help")
        self.events = Event(source=self.image, watched_events=["click", "contextmenu", "keydown"],
                            prevent_default_action=True)
        # The keys work with the pointer on the image or on any button (not on the sliders, whose readouts take
        # typed numbers): JupyterLab gets none of them there.
        self.key_events = [Event(source=control, watched_events=["keydown"], prevent_default_action=True)
                           for control in (self.undo_button, self.reset_button, self.save_button,
                                           self.zoom_in_button, self.zoom_out_button, self.fit_button,
                                           self.intention, self.refine)]

        self.picker.observe(self._on_pick, names="value")
        self.upload.observe(self._on_upload, names="value")
        self.start_upload.observe(self._on_start_mask, names="value")
        self.events.on_dom_event(self.handle_event)
        for events in self.key_events:
            events.on_dom_event(self.handle_event)
        self.undo_button.on_click(lambda _: self.undo())
        self.reset_button.on_click(lambda _: self.reset())
        self.save_button.on_click(lambda _: self.save())
        self.zoom_in_button.on_click(lambda _: self.zoom(ZOOM_STEP))
        self.zoom_out_button.on_click(lambda _: self.zoom(1 / ZOOM_STEP))
        self.fit_button.on_click(lambda _: self.zoom(0.0))
        for control in (self.opacity, self.outline_only, self.intention):
            control.observe(lambda _: self._show(self.message), names="value")
        self.threshold.observe(self._on_threshold, names="value")
        self.refine.observe(self._on_refine, names="value")

        row = widgets.Layout(flex_flow="row wrap", align_items="center")
        panel = widgets.VBox([
            widgets.HTML(CSS), self.picker, widgets.HBox([self.upload, self.start_upload], layout=row),
            widgets.HBox([self.undo_button, self.reset_button, self.save_button, self.zoom_in_button,
                          self.zoom_out_button, self.fit_button], layout=row),
            self.download, self.opacity, self.threshold,
            widgets.HBox([self.outline_only, self.intention, self.refine], layout=row),
            self.status, self.help,
        ], layout=widgets.Layout(width=f"{PANEL_WIDTH}px", flex="0 0 auto"))
        panel.add_class("iseg-panel")
        super().__init__([self.frame, panel],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"))
        self.add_class("iseg-demo")
        if self.samples:
            self.picker.value = 0
        elif self.controller.image is not None:
            self._show_new_image("image")
        else:
            self._show(message="Pick a sample or upload an image.")

    # ---- images --------------------------------------------------------------------------------------------

    def load(self, image: np.ndarray, gt_mask: np.ndarray | None = None, name: str = "image") -> None:
        """Show a new (H, W, 3) uint8 image (optional (H, W) gt mask) with no clicks."""
        with self._frame_lock:
            self.controller.set_image(image, gt_mask)
            self._show_new_image(name)

    def _show_new_image(self, name: str) -> None:
        """The once-per-image work of the view: the display-size copy of the image and the frame's size."""
        with self._frame_lock:
            self.image_name = name
            image = self.controller.image
            self.renderer = FrameRenderer(image, display_scale(image.shape, self.max_width, self.max_height))
            self.image.layout.width = f"{self.renderer.size[1]}px"
            self._show()

    def _on_pick(self, change: dict) -> None:
        """A sample (its number) or an uploaded image (("upload", its number)) chosen in the picker."""
        if change["new"] is None:
            return
        if isinstance(change["new"], tuple):
            name, image = self.uploads[change["new"][1]]
            self.load(image, None, name)
            return
        sample = self.samples[change["new"]]
        self.load(sample.image, sample.mask, sample.id)

    def _on_upload(self, change: dict) -> None:
        """Each readable uploaded file joins the picker (as "upload: <name>") and is shown; the upload button keeps
        counting the files it holds."""
        for upload in change["new"]:
            try:
                image = load_image_bytes(upload["content"], upload["name"])
            except ValueError as error:
                self._show(message=f"Upload ignored: {error}")
                continue
            self.uploads.append((Path(upload["name"]).stem, image))
            choice = ("upload", len(self.uploads) - 1)
            self.picker.options = [*self.picker.options, (f"upload: {upload['name']}", choice)]
            self.picker.value = choice

    def _on_start_mask(self, change: dict) -> None:
        """A mask file for the image shown: every click removed, the mask is where the next click starts."""
        if change["new"] and self.controller.image is None:
            self._show(message="Start mask ignored: pick or upload the image first")
            return
        for upload in change["new"]:
            try:
                mask = load_mask_bytes(upload["content"], upload["name"], self.controller.image.shape[:2])
            except ValueError as error:
                self._show(message=f"Start mask ignored: {error}")
                continue
            self.worker.wait()
            self.controller.set_start_mask(mask)
            self._show(message=f"started from mask {upload['name']} ({mask.mean():.0%} of the image)")

    # ---- clicks, keys and buttons -----------------------------------------------------------------------------

    def to_image_coords(self, x: float, y: float) -> tuple[int, int]:
        """(row, col) in the full image of a point (x, y) in the displayed frame's pixels."""
        return self.renderer.to_full(x, y)

    def handle_event(self, event: dict) -> bool:
        """Turn an ipyevents click/contextmenu dict into a queued click (its marker drawn at once), or a keydown
        into its shortcut; True if a click was queued."""
        if self.controller.image is None:
            return False
        if event.get("type") == "keydown":
            self._on_key(event.get("key", ""))
            return False
        if event.get("type") not in ("click", "contextmenu"):
            return False
        is_positive = event["type"] == "click" and not event.get("shiftKey", False)
        row, col = self.to_image_coords(event["dataX"], event["dataY"])
        with self._frame_lock:
            queued = self.worker.click(row, col, is_positive)
            self._show(message="" if queued else f"Click at ({row}, {col}) is outside the image: ignored.")
        return queued

    def _on_key(self, key: str) -> None:
        if key in UNDO_KEYS:
            self.undo()
        elif key in RESET_KEYS:
            self.reset()
        elif key in SAVE_KEYS:
            self.save()
        elif key in INTENTION_KEYS:
            self.intention.value = not self.intention.value
        elif key in OUTLINE_KEYS:
            self.outline_only.value = not self.outline_only.value
        elif key in BRS_KEYS and not self.refine.disabled:
            self.refine.value = not self.refine.value
        elif key in ZOOM_IN_KEYS + ZOOM_OUT_KEYS + FIT_KEYS:
            self.zoom(ZOOM_STEP if key in ZOOM_IN_KEYS else 1 / ZOOM_STEP if key in ZOOM_OUT_KEYS else 0.0)
        elif key in PAN_KEYS:
            self.renderer.pan(*PAN_KEYS[key])
            self._show(self.message)

    def zoom(self, factor: float) -> None:
        """Zoom the frame by `factor` at the last click (the view's centre before any); 0: fit the whole image."""
        if self.renderer is None:
            return
        with self._frame_lock:
            if factor == 0.0:
                self.renderer.fit()
            else:
                clicks = self.controller.snapshot().clicks
                if clicks:
                    x, y = self.renderer.to_display(clicks[-1].row + 0.5, clicks[-1].col + 0.5)
                else:
                    x, y = self.renderer.size[1] / 2, self.renderer.size[0] / 2
                self.renderer.zoom_at(x, y, factor)
            self._show(self.message)

    def _on_refine(self, change: dict) -> None:
        """Switch f-BRS on or off for the clicks that follow."""
        self.controller.predictor.set_brs(BRS_MODE if change["new"] else None)
        self._show(message=f"{BRS_MODE} {'on' if change['new'] else 'off'} from the next click")

    def undo(self) -> None:
        """Remove the last click (a queued one at once; a predicted one restores the mask before it)."""
        if self.controller.image is not None:
            self.controller.undo()
            self._show()

    def reset(self) -> None:
        """Remove every click."""
        if self.controller.image is not None:
            self.controller.reset()
            self._show()

    def wait(self) -> None:
        """Block until the model has predicted every queued click and the frame after the last one is shown."""
        self.worker.wait()

    def save(self) -> Path | None:
        """Save the mask after every queued click as <save_dir>/<image name>_mask.png, numbered (_mask_2.png, ...)
        when an earlier save of the image is there: never overwritten. The path (None without an image)."""
        if self.controller.image is None:
            self._show(message="Nothing to save: no image.")
            return None
        self.wait()
        path = self.controller.save_mask(unused_path(self.save_dir / mask_name(self.image_name)))
        self._show(message=f"Saved {path}")
        return path

    def _on_predicted(self, error: BaseException | None) -> None:
        """Called on the worker thread once no click is queued: the frame after the last click."""
        self._show(message=f"Prediction failed, queued clicks dropped: {error!r}" if error else "")

    # ---- the view ----------------------------------------------------------------------------------------------

    def _on_threshold(self, change: dict) -> None:
        """The threshold slider moved: the mask, IoU, Save and Download follow it."""
        self.controller.set_threshold(change["new"])
        self._show(self.message)

    @property
    def style(self) -> FrameStyle:
        """The frame style the controls choose."""
        return FrameStyle(self.opacity.value, self.outline_only.value, self.intention.value, self.threshold.value)

    def status_text(self) -> str:
        """Image, click count, IoU when the gt is known, seconds of the last click, and what the model is doing."""
        if self.controller.image is None:
            return ""
        state = self.controller.snapshot()
        n = len(state.clicks)
        parts = [self.image_name, f"{n} click{'s' if n != 1 else ''}"]
        if n and self.controller.iou is not None:
            parts.append(f"IoU {self.controller.iou:.3f}")
        if self.controller.threshold != PRED_THRESHOLD:
            parts.append(f"threshold {self.controller.threshold:.2f}")
        if self.renderer is not None and self.renderer.zoom > 1:
            parts.append(f"zoom {self.renderer.zoom:g}x")
        if state.seconds is not None:
            parts.append(f"{state.seconds:.2f} s/click")
        if state.pending:
            parts.append(f"working\u2026 {len(state.pending)} click{'s' if len(state.pending) != 1 else ''} queued")
        if self.intention.value and n:
            parts.append(self._intention_text(state))
        return " | ".join(parts)

    def _intention_text(self, state) -> str:
        if state.intention is None:
            return "no intention view: this predictor has no coarse network"
        roi = state.intention.roi
        coarse = float((state.intention.coarse > 0.5).mean())
        box = "" if roi is None else f", yellow: zoom-in box {roi.width}x{roi.height} at ({roi.left}, {roi.top})"
        return f"intention of the last click: orange: coarse mask ({coarse:.0%} of the image){box}"

    def _show(self, message: str = "") -> None:
        """Draw the current state: frame, busy sign, status (ending with `message`), download link."""
        with self._frame_lock:
            self.message = message
            busy = bool(self.controller.image is not None and self.controller.pending)
            with self.image.hold_sync():  # one message: the browser shows the frame and its busy sign together
                if self.renderer is not None and self.controller.image is not None:
                    self.image.value = encode_jpeg(self.renderer.render(self.controller.snapshot(), self.style))
                if busy:
                    self.image.add_class("iseg-busy")
                else:
                    self.image.remove_class("iseg-busy")
            if not busy and self.controller.image is not None:
                self._update_download()
            self.status.value = status_html(" | ".join(p for p in (self.status_text(), self.message) if p))

    def _update_download(self) -> None:
        """The download link of the current mask (a data: URL of its PNG)."""
        data = base64.b64encode(self.controller.mask_png()).decode("ascii")
        self.download.value = (f'<a class="iseg-download" download="{html.escape(mask_name(self.image_name))}" '
                               f'href="data:image/png;base64,{data}" title="Download the mask as a 0/255 PNG">'
                               '<i class="fa fa-download"></i> Download mask</a>')


def make_demo(predictor: str = "default", dataset: str | None = "GrabCut", n_samples: int = 10,
              device: str = "cpu", flip: bool = False, brs: str | None = None, **demo_options) -> ClickDemo:
    """The demo with a predictor from `iseg.predictor.load_predictor(predictor)` and the first `n_samples`.

    `flip` (horizontal-flip averaging) is off by default: it doubles the model's time per click
    (docs/performance.md), and the demo's first aim is to answer within a fraction of a second; so is `brs`
    (f-BRS refinement, "f-BRS-B"), which the demo's toggle switches on.
    When the shipped default model is unavailable, falls back to the GrabCut baseline with a printed note.
    """
    from iseg.predictor import load_predictor

    try:
        model = load_predictor(predictor, device=device, flip=flip, brs=brs)
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
