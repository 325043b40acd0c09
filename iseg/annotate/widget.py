"""The annotation tool as an ipywidgets app: a thin view over `AnnotationSession`, the model on a background thread."""

from __future__ import annotations

import html
import threading
from pathlib import Path

import cv2
import ipywidgets as widgets
import numpy as np
from ipyevents import Event

from iseg.annotate.coco import decode_mask
from iseg.annotate.session import AnnotationSession
from iseg.demo.frame import MAX_HEIGHT, MAX_WIDTH, FrameRenderer, FrameStyle, display_scale, encode_jpeg, outline
from iseg.demo.widget import CSS, PANEL_WIDTH, compact, status_html
from iseg.demo.worker import PredictionWorker

OTHER_COLOR = (0, 200, 255)
KEYS = {"n": "new", "N": "new", "z": "undo", "Z": "undo", "Backspace": "undo", "Delete": "delete",
        "ArrowRight": "next", "ArrowLeft": "previous"}
HELP = ("<b>Left click</b>: object. <b>Right click</b> or <b>Shift + click</b>: background. A click with no object "
        "selected starts a new one. Every change is saved at once.<br>Keys, with the pointer on the image: "
        "<b>N</b> new object, <b>Z</b> or <b>Backspace</b> undo, <b>Delete</b> delete object, "
        "<b>&larr;</b> / <b>&rarr;</b> previous / next photo.")


def plural(count: int, noun: str) -> str:
    """'1 object', '2 objects'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


class AnnotationWidget(widgets.HBox):
    """Photos of a folder, several objects each, made with clicks; see `AnnotationSession` for what is saved.

    The selected object is drawn as in the click demo (fill, outline, clicks); the photo's other objects are
    outlined in cyan with their numbers.
    """

    def __init__(self, session: AnnotationSession, max_width: int = MAX_WIDTH, max_height: int = MAX_HEIGHT):
        self.session = session
        self.worker = PredictionWorker(session.controller, self._on_predicted)
        self.max_width, self.max_height = max_width, max_height
        self.renderer: FrameRenderer | None = None
        self._others: list[tuple[int, list[np.ndarray]]] = []
        self._frame_lock = threading.RLock()
        self._updating = False

        def button(description: str, icon: str, tooltip: str, action) -> widgets.Button:
            control = compact(widgets.Button(description=description, icon=icon, tooltip=tooltip))
            control.on_click(lambda _: action())
            return control

        self.previous_button = button("Previous", "arrow-left", "Previous photo (Left arrow)", self.previous_image)
        self.next_button = button("Next", "arrow-right", "Next photo (Right arrow)", self.next_image)
        self.new_button = button("New object", "plus", "Start a new object (N)", self.new_object)
        self.delete_button = button("Delete object", "trash", "Delete the selected object (Delete)",
                                    self.delete_object)
        self.undo_button = button("Undo", "undo", "Undo the selected object's last click (Z)", self.undo)
        self.objects = compact(widgets.Dropdown(options=[], value=None, description="Object"))
        self.objects.observe(self._on_select, names="value")
        self.category = compact(widgets.Combobox(value=session.category, options=self._categories(),
                                                 description="Category", ensure_option=False,
                                                 continuous_update=False,
                                                 tooltip="Category of the selected object and of new ones "
                                                         "(the COCO export's category names)"))
        self.category.observe(self._on_category, names="value")
        self.photo = widgets.HTML()
        self.photo.add_class("iseg-help")  # one .iseg-status per view: the browser tests read the first
        self.status = widgets.HTML()
        self.status.add_class("iseg-status")
        self.image = widgets.Image(format="jpeg")
        self.image.add_class("iseg-image")
        frame = widgets.Box([self.image])
        frame.add_class("iseg-frame")
        self.help = widgets.HTML(HELP)
        self.help.add_class("iseg-help")
        self.events = Event(source=self.image, watched_events=["click", "contextmenu", "keydown"],
                            prevent_default_action=True)
        self.events.on_dom_event(self.handle_event)

        row = widgets.Layout(flex_flow="row wrap", align_items="center")
        panel = widgets.VBox([
            widgets.HTML(CSS), widgets.HBox([self.previous_button, self.next_button], layout=row), self.photo,
            self.objects, self.category,
            widgets.HBox([self.new_button, self.delete_button, self.undo_button], layout=row),
            self.status, self.help,
        ], layout=widgets.Layout(width=f"{PANEL_WIDTH}px", flex="0 0 auto"))
        panel.add_class("iseg-panel")
        super().__init__([frame, panel], layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start"))
        self.add_class("iseg-demo")
        self._new_photo()

    # ---- actions ------------------------------------------------------------------------------------------------

    def handle_event(self, event: dict) -> bool:
        """An ipyevents click/contextmenu dict -> a queued click on the selected object (a new one when none is);
        a keydown -> its shortcut. True if a click was queued."""
        if event.get("type") == "keydown":
            action = KEYS.get(event.get("key", ""))
            if action:
                getattr(self, {"new": "new_object", "undo": "undo", "delete": "delete_object",
                               "next": "next_image", "previous": "previous_image"}[action])()
            return False
        if event.get("type") not in ("click", "contextmenu"):
            return False
        is_positive = event["type"] == "click" and not event.get("shiftKey", False)
        row, col = self.renderer.to_full(event["dataX"], event["dataY"])
        height, width = self.session.image.shape[:2]
        if not (0 <= row < height and 0 <= col < width):
            return False
        with self._frame_lock:
            created = self.session.current is None
            self.session.ensure_object()
            if created:
                self._refresh_objects()
            queued = self.worker.click(row, col, is_positive)
            self._show()
        return queued

    def _on_predicted(self, error: BaseException | None) -> None:
        """On the worker thread once no click is queued: save the object, draw the frame."""
        self.session.record()
        self._refresh_objects()
        self._show(f"Prediction failed, queued clicks dropped: {error!r}" if error else "saved")

    def wait(self) -> None:
        """Block until every queued click is predicted and saved."""
        self.worker.wait()

    def undo(self) -> None:
        """Undo the selected object's last click (a queued one at once) and save."""
        self.session.undo()
        self._refresh_objects()
        self._show("saved")

    def new_object(self) -> None:
        """Start a new object."""
        self.wait()
        self.session.new_object()
        self._changed_objects()

    def delete_object(self) -> None:
        """Delete the selected object."""
        self.wait()
        if self.session.current is None:
            self._show("No object selected: pick one in the list to delete it.")
            return
        self.session.delete_object()
        self._changed_objects()

    def next_image(self) -> None:
        """Go to the next photo."""
        self.wait()
        if self.session.next_image():
            self._new_photo()

    def previous_image(self) -> None:
        """Go to the previous photo."""
        self.wait()
        if self.session.previous_image():
            self._new_photo()

    def _on_select(self, change: dict) -> None:
        if self._updating or change["new"] is None or change["new"] == self.session.current:
            return
        self.wait()
        self.session.select_object(change["new"])
        self._changed_objects()

    def _categories(self) -> list[str]:
        """Every category used in the folder so far, and the session's current one."""
        used = {o.category for objects in self.session.objects.values() for o in objects}
        return sorted(used | {self.session.category})

    def _on_category(self, change: dict) -> None:
        """The category field changed: new objects and the selected one get it (an empty name is refused)."""
        try:
            self.session.set_category(change["new"])
        except ValueError as error:
            self._show(str(error))
            return
        self.category.options = self._categories()
        self._show(f"category: {self.session.category}")

    # ---- the view -----------------------------------------------------------------------------------------------

    def _new_photo(self) -> None:
        with self._frame_lock:
            image = self.session.image
            self.renderer = FrameRenderer(image, display_scale(image.shape, self.max_width, self.max_height))
            self.image.layout.width = f"{self.renderer.size[1]}px"
            self._changed_objects()

    def _changed_objects(self) -> None:
        """After a new photo or a change of the selected object: the list and the other objects' outlines."""
        with self._frame_lock:
            self._others = []
            for obj in self.session.image_objects:
                if obj.id != self.session.current and obj.encoded is not None:
                    mask = decode_mask(obj.encoded["segmentation"]).astype(np.uint8)
                    small = cv2.resize(mask, self.renderer.size[::-1], interpolation=cv2.INTER_NEAREST) > 0
                    self._others.append((obj.id, outline(small)))
            self._refresh_objects()
            self._show()

    def _refresh_objects(self) -> None:
        """The object list, with the selected object chosen (without selecting it again)."""
        options = [(f"object {o.id}: {plural(len(o.clicks), 'click')}", o.id) for o in self.session.image_objects]
        self._updating = True
        try:
            self.objects.options = options
            self.objects.value = self.session.current
        finally:
            self._updating = False

    def render(self) -> np.ndarray:
        """The frame: the selected object as in the click demo, the others outlined and numbered."""
        frame = self.renderer.render(self.session.controller.snapshot(), FrameStyle())
        for object_id, contours in self._others:
            cv2.drawContours(frame, contours, -1, OTHER_COLOR, 2, cv2.LINE_AA)
            if contours:
                x, y, _, _ = cv2.boundingRect(np.concatenate(contours))
                cv2.putText(frame, str(object_id), (x + 3, y + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, OTHER_COLOR, 2)
        return frame

    def status_text(self) -> str:
        """Photo, selected object and its clicks, what the model does, and the folder's totals."""
        s = self.session
        state = s.controller.snapshot()
        selected = "no object selected" if s.current is None else f"object {s.current}"
        if s.current is not None:
            selected += f" | {plural(len(state.clicks), 'click')}"
        parts = [f"photo {s.index + 1}/{len(s.names)}: {s.name}", selected]
        if state.pending:
            parts.append(f"working\u2026 {len(state.pending)} queued")
        total = s.summary()
        parts.append(f"{plural(total['objects'], 'object')} on {plural(total['annotated_photos'], 'photo')}")
        return " | ".join(parts)

    def _show(self, message: str = "") -> None:
        """Draw the current state: frame, busy sign, photo line, status."""
        with self._frame_lock:
            busy = bool(self.session.controller.pending)
            with self.image.hold_sync():
                self.image.value = encode_jpeg(self.render())
                if busy:
                    self.image.add_class("iseg-busy")
                else:
                    self.image.remove_class("iseg-busy")
            self.photo.value = html.escape(f"Saved as you go in {self.session.out}")
            self.status.value = status_html(" | ".join(p for p in (self.status_text(), message) if p))


def make_annotator(photos: str | Path, out: str | Path, predictor: str = "default", device: str = "cpu",
                   flip: bool = False, **session_options) -> AnnotationWidget:
    """The annotation widget over the photos of `photos`, saving into `out`, with a predictor from
    `iseg.predictor.load_predictor(predictor)` (no flip by default: half the time per click)."""
    from iseg.predictor import load_predictor

    session = AnnotationSession(photos, out, load_predictor(predictor, device=device, flip=flip), **session_options)
    return AnnotationWidget(session)
