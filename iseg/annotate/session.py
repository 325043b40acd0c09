"""Annotating a folder of photos with clicks, object by object: the GUI-free state, saved after every change.

`AnnotationSession(images_dir, out_dir, predictor)` walks the photos of `images_dir` (next / previous) and keeps
several objects per photo (new, select, delete), each made with clicks through a `ClickController` (undo within
the object). After every change it writes into `out_dir`, each file atomically (`iseg.atomic`):

    annotation.json                     the state: per photo its objects (clicks, seconds, RLE mask), where it stopped
    images/<photo>                      a copy of every photo with at least one object
    masks/<stem>_<k>.png                object k of a photo, 0/255: the `folder` format (docs/data.md)
    annotations/instances_images.json   COCO instance segmentation, compressed RLE masks (pycocotools)
    annotation_log.csv                  per object: clicks (positive, negative) and seconds spent: the annotation cost

The state is written first and the other files are views of it; opening a session rewrites what a crash between
two writes left behind, so a dying kernel loses at most the click being predicted. Reopening resumes on the photo
and object where the last session stopped, replaying that object's clicks so that the next click continues it
exactly. `out_dir` is then a `folder` dataset (`load_dataset("folder", out_dir)`) and a COCO one
(`load_dataset("COCO", out_dir, split="images")`).
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from iseg.annotate.coco import CATEGORY, check_category, coco_document, decode_mask, encode_mask
from iseg.atomic import atomic_path, write_text
from iseg.clicks import Click
from iseg.data.io import find_images, read_image
from iseg.demo.controller import ClickController, mask_png
from iseg.protocol import PRED_THRESHOLD

FORMAT = "iseg-annotation-v1"
STATE_FILE = "annotation.json"
COCO_FILE = Path("annotations") / "instances_images.json"
LOG_FILE = "annotation_log.csv"
LOG_COLUMNS = ["image", "object", "category", "mask", "clicks", "positive_clicks", "negative_clicks", "seconds"]


@dataclass
class AnnotatedObject:
    """One object of a photo: its number k (masks/<stem>_<k>.png), clicks, seconds spent on it, its mask as
    `encode_mask` fields (None while it has no pixel) and its category (the COCO export's)."""

    id: int
    clicks: list[Click] = field(default_factory=list)
    seconds: float = 0.0
    encoded: dict | None = None
    category: str = CATEGORY

    def to_json(self) -> dict:
        """The object as saved in annotation.json."""
        return {"id": self.id, "category": self.category,
                "clicks": [[c.row, c.col, int(c.is_positive)] for c in self.clicks],
                "seconds": round(self.seconds, 3), "mask": self.encoded}

    @classmethod
    def from_json(cls, data: dict) -> AnnotatedObject:
        """The object from annotation.json (a file written before categories: every object an "object")."""
        clicks = [Click(int(r), int(c), bool(p)) for r, c, p in data["clicks"]]
        return cls(int(data["id"]), clicks, float(data["seconds"]), data.get("mask"),
                   check_category(data.get("category", CATEGORY)))


def mask_file(stem: str, object_id: int) -> str:
    """The `folder` format's file name of object `object_id` of photo `stem`."""
    return f"{stem}_{object_id}.png"


def check_stems(stems: list[str], folder: Path) -> None:
    """Refuse photo names whose object masks would be read as another photo's (`a` object 1 and photo `a_1`)."""
    names = set(stems)
    for stem in stems:
        match = re.fullmatch(r"(.+)_\d+", stem)
        if match and match[1] in names:
            raise ValueError(f"photos {match[1]!r} and {stem!r} in {folder}: the masks of {match[1]!r} would be "
                             f"named like photo {stem!r}; rename one of them")


class AnnotationSession:
    """Photos of `images_dir` annotated into `out_dir` through `predictor` (docs/design.md protocol).

    `category` is the category new objects get (change it with `set_category`, which also renames the selected
    object's). `clock` (seconds, monotonic) measures the time spent on each object: from selecting or creating it to its
    last click or undo, summed over visits; an object started by a click with none selected also gets the time
    since the photo was shown or the last object was let go.
    """

    def __init__(self, images_dir: str | Path, out_dir: str | Path, predictor, *, category: str = CATEGORY,
                 clock: Callable[[], float] = time.monotonic):
        self.images_dir, self.out, self.clock = Path(images_dir), Path(out_dir), clock
        self.category = check_category(category)
        if not self.images_dir.is_dir():
            raise FileNotFoundError(f"photo folder {self.images_dir} does not exist")
        self.photos = find_images(self.images_dir)
        if not self.photos:
            raise FileNotFoundError(f"no photos (.jpg, .jpeg, .png, .bmp) in {self.images_dir}")
        if (self.out / "images").resolve() == self.images_dir.resolve():
            raise ValueError(f"annotation folder {self.out} would write into the photo folder {self.images_dir}; "
                             "choose another annotation folder (photos are copied into its images/)")
        self.names = sorted(self.photos)
        check_stems(self.names, self.images_dir)
        self.controller = ClickController(predictor)
        self.files: dict[str, str] = {stem: path.name for stem, path in self.photos.items()}
        self.objects: dict[str, list[AnnotatedObject]] = {}
        self.index = 0
        self.current: int | None = None
        self._lock = threading.RLock()
        self._visit_start, self._seconds_before, self._idle_since = 0.0, 0.0, clock()
        stem, current = self._load_state()
        if stem in self.files:
            self._sync_masks(stem, rewrite=True)  # the photo being annotated when the last session stopped
        for name in self.objects:
            self._sync_masks(name)
        self._write_views()
        self.go_to(self.names.index(stem) if stem in self.names else 0, current)

    # ---- navigation ---------------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The stem of the current photo."""
        return self.names[self.index]

    @property
    def image(self) -> np.ndarray:
        """The current photo, (H, W, 3) uint8 RGB."""
        return self.controller.image

    @property
    def image_objects(self) -> list[AnnotatedObject]:
        """The objects of the current photo (the session's list: do not modify)."""
        return self.objects.get(self.name, [])

    def go_to(self, index: int, object_id: int | None = None) -> None:
        """Show photo number `index` (0-based, clamped), with object `object_id` selected (None: no object, the
        next click starts a new one)."""
        with self._lock:
            self.index = min(max(int(index), 0), len(self.names) - 1)
            self.controller.set_image(read_image(self.photos[self.name]))
            self._let_go()
            if object_id is not None and any(o.id == object_id for o in self.image_objects):
                self.select_object(object_id)
            self._write_state()

    def next_image(self) -> bool:
        """Go to the next photo; False at the last one."""
        if self.index + 1 >= len(self.names):
            return False
        self.go_to(self.index + 1)
        return True

    def previous_image(self) -> bool:
        """Go to the previous photo; False at the first one."""
        if self.index == 0:
            return False
        self.go_to(self.index - 1)
        return True

    # ---- objects ------------------------------------------------------------------------------------------------

    def _object(self, object_id: int) -> AnnotatedObject:
        for obj in self.image_objects:
            if obj.id == object_id:
                return obj
        raise ValueError(f"photo {self.name!r} has no object {object_id}; its objects: "
                         f"{[o.id for o in self.image_objects]}")

    def _let_go(self) -> None:
        """No object selected from now on: the next click starts a new one."""
        self.current, self._idle_since = None, self.clock()

    def _start_visit(self, obj: AnnotatedObject) -> None:
        self.current = obj.id
        self._visit_start, self._seconds_before = self.clock(), obj.seconds

    def new_object(self) -> int:
        """Start a new, empty object on the current photo and select it; its number."""
        with self._lock:
            obj = AnnotatedObject(max((o.id for o in self.image_objects), default=0) + 1, category=self.category)
            self.objects.setdefault(self.name, []).append(obj)
            self.controller.reset()
            self._start_visit(obj)
            self._write_state()
            return obj.id

    def select_object(self, object_id: int) -> None:
        """Make object `object_id` of the current photo the one clicks edit (its clicks are replayed)."""
        with self._lock:
            obj = self._object(object_id)
            self.controller.reset()
            for click in obj.clicks:
                self.controller.add_click(click.row, click.col, click.is_positive)
            self._start_visit(obj)
            self._write_state()

    def set_category(self, name: str) -> None:
        """The category of new objects from now on, and of the selected object (saved)."""
        with self._lock:
            self.category = check_category(name)
            if self.current is not None:
                self._object(self.current).category = self.category
                self._write_state()
                self._write_views()

    def ensure_object(self) -> int:
        """The selected object's number, after starting a new one when none is selected."""
        with self._lock:
            if self.current is None:
                self.new_object()
                self._visit_start = self._idle_since
            return self.current

    def delete_object(self, object_id: int | None = None) -> None:
        """Remove object `object_id` (default: the selected one) of the current photo and its mask."""
        with self._lock:
            object_id = self.current if object_id is None else object_id
            if object_id is None:
                raise ValueError("no object selected to delete")
            obj = self._object(object_id)
            self.objects[self.name].remove(obj)
            if self.current == object_id:
                self._let_go()
                self.controller.reset()
            self._write_state()
            self._sync_masks(self.name)
            self._write_views()

    # ---- clicks -------------------------------------------------------------------------------------------------

    def click(self, row: int, col: int, is_positive: bool) -> bool:
        """Add a click to the selected object (a new one when none is), predict and save; False (nothing changes)
        for a click outside the photo."""
        with self._lock:
            if not (0 <= row < self.image.shape[0] and 0 <= col < self.image.shape[1]):
                return False
            self.ensure_object()
            self.controller.add_click(row, col, is_positive)
            self.record()
            return True

    def undo(self) -> bool:
        """Remove the selected object's last click and save; False when it has none."""
        with self._lock:
            if self.current is None or not self.controller.undo():
                return False
            self.record()
            return True

    def record(self) -> None:
        """Save the selected object as the controller has it now (its predicted clicks and mask, seconds spent):
        the state first, then its mask file, the photo copy, the COCO json and the log."""
        with self._lock:
            if self.current is None:
                return
            obj = self._object(self.current)
            state = self.controller.snapshot()
            mask = None if state.prob is None else state.prob > PRED_THRESHOLD
            obj.clicks = state.clicks
            obj.seconds = self._seconds_before + self.clock() - self._visit_start
            obj.encoded = encode_mask(mask) if mask is not None and mask.any() else None
            self._write_state()
            if mask is not None and mask.any():
                self._write_mask(self.name, obj.id, mask)
            self._sync_masks(self.name)
            self._write_views()

    # ---- files --------------------------------------------------------------------------------------------------

    def _load_state(self) -> tuple[str | None, int | None]:
        """Read annotation.json when there is one; (photo stem, object) where it stopped."""
        path = self.out / STATE_FILE
        if not path.is_file():
            return None, None
        try:
            state = json.loads(path.read_text())
            if state.get("format") != FORMAT:
                raise ValueError(f"format {state.get('format')!r} is not {FORMAT!r}")
            for stem, entry in state["images"].items():
                self.files.setdefault(stem, entry["file"])
                self.objects[stem] = [AnnotatedObject.from_json(o) for o in entry["objects"]]
            return state.get("image"), state.get("object")
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"cannot resume from {path}: {error!r}; move it away to start over") from error

    def _write_state(self) -> None:
        images = {stem: {"file": self.files[stem], "objects": [o.to_json() for o in objects]}
                  for stem, objects in self.objects.items() if objects}
        state = {"format": FORMAT, "images_dir": str(self.images_dir.resolve()), "image": self.name,
                 "object": self.current, "images": images}
        write_text(self.out / STATE_FILE, json.dumps(state, indent=1) + "\n")

    def _write_mask(self, stem: str, object_id: int, mask: np.ndarray) -> None:
        encoded = mask_png(mask)
        with atomic_path(self.out / "masks" / mask_file(stem, object_id)) as tmp:
            tmp.write_bytes(encoded)

    def _sync_masks(self, stem: str, rewrite: bool = False) -> None:
        """Make masks/ and images/ of photo `stem` match the state: write missing masks (all with `rewrite`),
        remove those of deleted objects, copy the photo while it has objects and remove the copy otherwise."""
        kept = {mask_file(stem, o.id): o for o in self.objects.get(stem, []) if o.encoded is not None}
        masks = self.out / "masks"
        pattern = re.compile(re.escape(stem) + r"_\d+\.png")
        present = {p.name for p in masks.glob("*.png") if pattern.fullmatch(p.name)} if masks.is_dir() else set()
        for name in present - set(kept):
            (masks / name).unlink()
        for name, obj in kept.items():
            if rewrite or name not in present:
                self._write_mask(stem, obj.id, decode_mask(obj.encoded["segmentation"]))
        copy = self.out / "images" / self.files[stem]
        if kept and not copy.is_file() and stem in self.photos:
            with atomic_path(copy) as tmp:
                shutil.copyfile(self.photos[stem], tmp)
        elif not kept and copy.is_file():
            copy.unlink()

    def _annotated(self) -> list[tuple[str, list[AnnotatedObject]]]:
        """(stem, objects with a mask) of every photo with at least one, in name order."""
        pairs = ((stem, [o for o in self.objects[stem] if o.encoded is not None]) for stem in sorted(self.objects))
        return [(stem, objects) for stem, objects in pairs if objects]

    def _write_views(self) -> None:
        """The COCO json and the annotation log, from the state."""
        annotated = self._annotated()
        images = [{"file_name": self.files[stem], "height": objects[0].encoded["segmentation"]["size"][0],
                   "width": objects[0].encoded["segmentation"]["size"][1]} for stem, objects in annotated]
        objects = [[{**o.encoded, "id": o.id, "category": o.category, "clicks": len(o.clicks),
                     "seconds": round(o.seconds, 3)} for o in image_objects] for _, image_objects in annotated]
        write_text(self.out / COCO_FILE, json.dumps(coco_document(images, objects)) + "\n")
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(LOG_COLUMNS)
        for stem in sorted(self.objects):
            for o in self.objects[stem]:
                positive = sum(c.is_positive for c in o.clicks)
                writer.writerow([self.files[stem], o.id, o.category, mask_file(stem, o.id) if o.encoded else "",
                                 len(o.clicks), positive, len(o.clicks) - positive, f"{o.seconds:.3f}"])
        write_text(self.out / LOG_FILE, text.getvalue())

    def summary(self) -> dict[str, float]:
        """Photos with objects, objects with masks, clicks and seconds (to the millisecond, as the log) over the
        whole folder."""
        annotated = self._annotated()
        objects = [o for _, image_objects in annotated for o in image_objects]
        return {"photos": len(self.names), "annotated_photos": len(annotated), "objects": len(objects),
                "clicks": sum(len(o.clicks) for o in objects), "seconds": round(sum(o.seconds for o in objects), 3)}
