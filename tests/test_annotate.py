"""The annotation session without a browser: photos, objects, undo, saving as you go, resuming after a crash,
and the files it writes (folder format, COCO json read back by pycocotools and by iseg's readers, the cost log)."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

import iseg.annotate.session as session_module
from iseg.annotate import AnnotationSession
from iseg.annotate.coco import decode_mask, encode_mask
from iseg.clicks import Click
from iseg.data import load_dataset


def status(widget) -> str:
    """The widget's status line as the page shows its text (tags dropped, entities decoded)."""
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", widget.status.value))


RADIUS = 6


class DiskPredictor:
    """Stand-in model: object = disks of RADIUS px around positive clicks minus disks around negative ones."""

    def set_image(self, image):
        self.shape = image.shape[:2]

    def predict(self, clicks, prev_prob):
        rows, cols = np.mgrid[: self.shape[0], : self.shape[1]]
        prob = np.zeros(self.shape, np.float32)
        for click in clicks:
            prob[(rows - click.row) ** 2 + (cols - click.col) ** 2 <= RADIUS**2] = float(click.is_positive)
        return prob


def disk(shape, row, col):
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (rows - row) ** 2 + (cols - col) ** 2 <= RADIUS**2


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def photos(tmp_path) -> Path:
    """Three small photos (two JPEG, one PNG) of different sizes."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, shape in (("a.jpg", (40, 60)), ("b.png", (50, 40)), ("c.jpg", (30, 30))):
        cv2.imwrite(str(folder / name), rng.integers(0, 255, (*shape, 3), dtype=np.uint8))
    return folder


def open_session(photos, out, clock=None):
    return AnnotationSession(photos, out, DiskPredictor(), clock=clock or Clock())


def read_mask(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 0


def test_objects_clicks_and_undo_write_folder_format_masks(photos, tmp_path):
    out = tmp_path / "out"
    s = open_session(photos, out)
    assert s.name == "a" and s.current is None
    assert s.click(10, 10, True)                      # the first click starts object 1
    assert s.current == 1
    s.click(10, 30, True)
    s.click(10, 30, False)                            # a correction
    assert s.undo()                                   # undone: back to two positive disks
    expected = disk((40, 60), 10, 10) | disk((40, 60), 10, 30)
    assert np.array_equal(read_mask(out / "masks/a_1.png"), expected)
    assert s.new_object() == 2
    s.click(30, 50, True)
    assert np.array_equal(read_mask(out / "masks/a_2.png"), disk((40, 60), 30, 50))
    s.select_object(1)                                # clicks edit object 1 again, continuing its state
    assert s.controller.clicks == [Click(10, 10, True), Click(10, 30, True)]
    s.click(10, 30, False)
    assert np.array_equal(read_mask(out / "masks/a_1.png"), expected & ~disk((40, 60), 10, 30))
    assert not s.click(40, 0, True)                   # outside the photo: ignored
    assert (out / "images/a.jpg").read_bytes() == (photos / "a.jpg").read_bytes()

    assert s.next_image() and s.name == "b" and s.current is None
    s.click(20, 20, True)
    s.delete_object()
    assert not (out / "masks/b_1.png").exists() and not (out / "images/b.png").exists()
    assert s.next_image() and not s.next_image() and s.name == "c"
    assert s.previous_image() and s.name == "b"

    data = load_dataset("folder", out)                # trainable and evaluable at once
    assert len(data) == 2 and {sample.id for sample in data} == {"folder/a#1", "folder/a#2"}


def test_delete_keeps_numbers_and_an_undo_to_no_click_removes_the_mask(photos, tmp_path):
    out = tmp_path / "out"
    s = open_session(photos, out)
    for col in (10, 30, 50):
        s.new_object()
        s.click(20, col, True)
    s.delete_object(2)
    assert [o.id for o in s.image_objects] == [1, 3] and s.current == 3
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["a_1.png", "a_3.png"]
    assert s.new_object() == 4
    s.select_object(3)
    assert s.undo() and not s.undo()                  # object 3 has no click left: no mask file
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["a_1.png"]
    with pytest.raises(ValueError, match="no object 2"):
        s.select_object(2)
    s.next_image()
    with pytest.raises(ValueError, match="photo 'b' has no object 1"):
        s.delete_object(1)


def test_reopening_resumes_where_it_stopped_and_continues_exactly(photos, tmp_path):
    out = tmp_path / "out"
    s = open_session(photos, out)
    s.next_image()
    s.click(10, 10, True)
    s.new_object()
    s.click(30, 20, True)
    s.click(35, 20, True)
    del s                                             # the kernel dies: no close, no export call

    again = open_session(photos, out)
    assert again.name == "b" and again.current == 2
    assert again.controller.clicks == [Click(30, 20, True), Click(35, 20, True)]   # replayed
    again.click(30, 20, False)
    expected = disk((50, 40), 35, 20) & ~disk((50, 40), 30, 20)
    assert np.array_equal(read_mask(out / "masks/b_2.png"), expected)
    assert np.array_equal(read_mask(out / "masks/b_1.png"), disk((50, 40), 10, 10))


def test_a_crash_between_writes_loses_nothing_saved(photos, tmp_path, monkeypatch):
    out = tmp_path / "out"
    s = open_session(photos, out)
    s.click(10, 10, True)
    saved = (out / "annotation.json").read_text()

    def crash(*args):
        raise KeyboardInterrupt("kernel killed while writing a mask")

    monkeypatch.setattr(session_module, "mask_png", crash)
    with pytest.raises(KeyboardInterrupt):
        s.click(10, 40, True)                         # state written, the mask write dies
    monkeypatch.undo()
    assert json.loads((out / "annotation.json").read_text()) != json.loads(saved)
    assert not any(p.name.startswith(".") for p in (out / "masks").iterdir())   # no half-written file
    stale = read_mask(out / "masks/a_1.png")
    assert np.array_equal(stale, disk((40, 60), 10, 10))

    again = open_session(photos, out)                 # reopening repairs the files from the state
    assert again.controller.clicks == [Click(10, 10, True), Click(10, 40, True)]
    assert np.array_equal(read_mask(out / "masks/a_1.png"), disk((40, 60), 10, 10) | disk((40, 60), 10, 40))


def test_a_corrupt_state_file_is_named(photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "annotation.json").write_text("{not json")
    with pytest.raises(ValueError, match="annotation.json"):
        open_session(photos, out)


def test_photo_names_that_would_clash_are_refused(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("shot.jpg", "shot_1.jpg"):
        cv2.imwrite(str(folder / name), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="'shot' and 'shot_1'"):
        open_session(folder, tmp_path / "out")


def test_the_photo_folder_is_never_written_into(photos, tmp_path):
    images = photos.rename(tmp_path / "images")       # annotating my_data/images into my_data itself
    with pytest.raises(ValueError, match="photo folder"):
        open_session(images, tmp_path)


def test_coco_json_round_trip_and_annotation_cost_log(photos, tmp_path):
    out = tmp_path / "out"
    clock = Clock()
    s = open_session(photos, out, clock)
    clock.now += 4.0
    s.click(10, 10, True)                             # object 1: 4 s to the first click
    clock.now += 2.5
    s.click(10, 30, True)
    s.new_object()
    clock.now += 1.0
    s.click(30, 50, True)
    s.next_image()
    s.click(20, 20, True)
    s.click(20, 20, False)                            # an object whose mask is empty: logged, not exported

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(out / "annotations/instances_images.json"))
    assert [coco.imgs[i]["file_name"] for i in sorted(coco.imgs)] == ["a.jpg"]
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert [a["iseg_object"] for a in anns] == [1, 2] and [a["clicks"] for a in anns] == [2, 1]
    for ann in anns:
        mask = coco.annToMask(ann).astype(bool)
        assert np.array_equal(mask, read_mask(out / f"masks/a_{ann['iseg_object']}.png"))
        assert ann["area"] == mask.sum()
    assert anns[0]["seconds"] == pytest.approx(6.5)

    coco_data = load_dataset("COCO", out, split="images")   # iseg's own COCO reader takes it too
    assert len(coco_data) == 2 and np.array_equal(coco_data[1].mask == 1, disk((40, 60), 30, 50))

    with open(out / "annotation_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["image"], r["object"], r["clicks"], r["positive_clicks"], r["mask"]) for r in rows] == [
        ("a.jpg", "1", "2", "2", "a_1.png"), ("a.jpg", "2", "1", "1", "a_2.png"), ("b.png", "1", "2", "1", "")]
    assert float(rows[0]["seconds"]) == pytest.approx(6.5) and float(rows[1]["seconds"]) == pytest.approx(1.0)
    clock.now += 0.1 + 0.2  # a sum of float seconds is shown to the millisecond, never 12.276000000000002
    s.click(20, 30, True)
    seconds = s.summary()["seconds"]
    assert seconds == round(seconds, 3) and len(repr(seconds).split(".")[-1]) <= 3


def test_objects_carry_categories_into_coco_the_log_and_a_resumed_session(photos, tmp_path):
    out = tmp_path / "out"
    s = open_session(photos, out)
    s.set_category(" polyp ")                         # new objects are polyps from now on
    s.click(10, 10, True)
    s.new_object()
    s.click(30, 50, True)
    s.set_category("instrument")                      # renames the selected object, and the next ones
    s.next_image()
    s.click(20, 20, True)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(out / "annotations/instances_images.json"))
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert sorted(names.values()) == ["instrument", "polyp"]
    found = [(coco.imgs[a["image_id"]]["file_name"], a["iseg_object"], names[a["category_id"]])
             for a in coco.loadAnns(coco.getAnnIds())]
    assert found == [("a.jpg", 1, "polyp"), ("a.jpg", 2, "instrument"), ("b.png", 1, "instrument")]
    with open(out / "annotation_log.csv", newline="") as f:
        assert [r["category"] for r in csv.DictReader(f)] == ["polyp", "instrument", "instrument"]
    again = open_session(photos, out)
    assert [o.category for o in again.objects["a"]] == ["polyp", "instrument"]
    with pytest.raises(ValueError, match="non-empty name"):
        s.set_category("  ")


def test_rle_encoding_round_trips():
    mask = np.zeros((7, 5), bool)
    mask[1:4, 2:5] = True
    encoded = encode_mask(mask)
    assert encoded["area"] == 9 and encoded["bbox"] == [2, 1, 3, 3]
    assert isinstance(encoded["segmentation"]["counts"], str)
    assert np.array_equal(decode_mask(encoded["segmentation"]), mask)


def test_widget_drives_the_session_with_synthetic_events(photos, tmp_path):
    from iseg.annotate import AnnotationWidget

    out = tmp_path / "out"
    view = AnnotationWidget(open_session(photos, out))
    assert "photo 1/3: a" in status(view) and "no object selected" in status(view)
    assert view.handle_event({"type": "click", "dataX": 10, "dataY": 10})
    view.wait()
    assert "object 1 | 1 click" in status(view) and view.objects.value == 1
    view.handle_event({"type": "keydown", "key": "n"})
    view.handle_event({"type": "contextmenu", "dataX": 50, "dataY": 30})   # negative only: empty mask
    view.handle_event({"type": "click", "dataX": 50, "dataY": 30, "shiftKey": False})
    view.wait()
    assert [label for label, _ in view.objects.options] == ["object 1: 1 click", "object 2: 2 clicks"]
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["a_1.png", "a_2.png"]
    view.handle_event({"type": "keydown", "key": "z"})
    assert "object 2 | 1 click" in status(view) and not (out / "masks/a_2.png").exists()
    view.objects.value = 1                                                   # select object 1 from the list
    assert view.session.current == 1 and "1 object on 1 photo" in status(view)
    view.handle_event({"type": "keydown", "key": "ArrowRight"})
    assert view.session.name == "b" and view.objects.options == ()
    view.handle_event({"type": "keydown", "key": "ArrowLeft"})
    assert view.session.current is None and [object_id for object_id, _ in view._others] == [1]   # outlined
    view.next_button.click()
    view.previous_button.click()
    view.objects.value = 1
    view.delete_button.click()
    assert [o.id for o in view.session.image_objects] == [2] and not (out / "masks/a_1.png").exists()
    view.objects.value = 2
    view.category.value = "polyp"                                            # the category field renames it
    assert view.session.image_objects[0].category == "polyp" and "polyp" in view.category.options
    view.category.value = " "
    assert "non-empty name" in status(view) and view.session.category == "polyp"


@pytest.mark.parametrize("args, message", [(["--photos", "0"], "--photos must be a positive number"),
                                           (["--photos", "2", "--max-clicks", "0"],
                                            "--max-clicks must be an integer from 1"),
                                           (["--photos", "9999"], "asked for 9999 photos, but the dataset has")])
def test_simulate_arguments_are_checked_before_any_work(tmp_path, capsys, args, message, shared_datasets):
    from iseg.annotate.simulate import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--dataset", "CVC_ClinicDB_train", "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("mask", [np.array([[0, 256]], np.int32), np.array([[0, 2]], np.uint8),
                                  np.array([[0.5, 1.0]]), np.zeros((2, 2, 2), bool)])
def test_encode_mask_refuses_masks_that_are_not_binary(mask):
    from iseg.annotate.coco import encode_mask

    with pytest.raises(ValueError, match="encode_mask needs an \\(H, W\\) mask of 0/1 or bool values"):
        encode_mask(mask)


def test_encode_mask_accepts_integer_binary_masks():
    from iseg.annotate.coco import encode_mask

    assert encode_mask(np.array([[0, 1], [1, 1]], np.int32))["area"] == 3
