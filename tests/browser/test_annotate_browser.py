"""The annotation notebook in a real browser (JupyterLab in Chromium): two objects on one photo, made with clicks and
the New object button on a CVC-ClinicDB frame (category "polyp"), then the files it wrote (folder-format masks,
COCO json with the category, state, cost log); the screenshot for docs/annotate.md goes to
runs/browser/annotate.png."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO
from test_demo_browser import KERNEL_READY, KERNEL_SECONDS, WINDOW, inside, publish, wait_idle

from iseg.data import load_dataset

NOTEBOOK = "06_annotate.ipynb"
RUN_SECONDS = 300  # run all: the kernel imports torch and loads the default model (minutes on a loaded machine)


def set_parameters(path, **values) -> None:
    """Append assignments to the notebook's parameters cell (as papermill would inject them)."""
    notebook = json.loads(path.read_text())
    cell = next(c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", []))
    cell["source"] = "".join(cell["source"]) + "".join(f"\n{k} = {v!r}" for k, v in values.items())
    path.write_text(json.dumps(notebook))


def largest_parts(mask: np.ndarray, count: int) -> list[np.ndarray]:
    """The `count` largest connected parts of a mask, largest first."""
    parts, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
    order = sorted(range(1, parts), key=lambda k: -stats[k, cv2.CC_STAT_AREA])
    return [labels == k for k in order[:count]]


def deepest_point(mask: np.ndarray) -> tuple[int, int]:
    """(row, col) of the object pixel farthest from its border and from the photo's edges."""
    distance = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(distance)), mask.shape)
    return int(row), int(col)


@pytest.mark.browser
@pytest.mark.timeout(600)  # a minute or two on a quiet machine; run-all alone took > 5 min at load 10
def test_annotate_two_objects_in_jupyterlab(page, lab, tmp_path, shared_datasets):
    frames = load_dataset("CVC_ClinicDB_train")          # a training sequence's frame, never a test frame
    index = frames.image_keys.index("070")               # its polyp is seen in two parts: two objects
    regions = largest_parts(frames._read_objects(index).masks[0], 2)
    stem = "070"
    photos, out = tmp_path / "photos", tmp_path / "annotated"
    photos.mkdir()
    shutil.copyfile(frames.image_path(index), photos / f"{stem}.jpg")
    height, width = regions[0].shape
    set_parameters(tmp_path / "notebooks" / NOTEBOOK, photos=str(photos), out=str(out), category="polyp")

    page.set_viewport_size(WINDOW)
    page.goto(f"{lab}/lab/tree/{NOTEBOOK}")
    page.wait_for_function(KERNEL_READY, timeout=KERNEL_SECONDS * 1000)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    wait_idle(page, rf"photo 1/1: {stem} \| no object selected", RUN_SECONDS)
    page.wait_for_timeout(1000)  # let JupyterLab finish its own scrolling after the run
    box = page.locator("img.iseg-image").bounding_box()
    visible = page.locator(".jp-NotebookPanel").bounding_box()  # Run all ends on the annotator, in the window
    assert inside(box, visible) and inside(page.locator(".iseg-status").bounding_box(), visible), (box, visible)

    def at(row: int, col: int) -> tuple[float, float]:
        return box["x"] + (col + 0.5) * box["width"] / width, box["y"] + (row + 0.5) * box["height"] / height

    page.mouse.click(*at(*deepest_point(regions[0])))                   # a click with no object: object 1
    wait_idle(page, r"object 1 \| 1 click .*1 object on 1 photo\b")
    page.locator(".iseg-demo button", has_text="New object").click()
    wait_idle(page, r"object 2 \| 0 clicks")
    page.mouse.click(*at(*deepest_point(regions[1])))
    wait_idle(page, r"object 2 \| 1 click .*2 objects on 1 photo\b")
    options = [t.replace("\xa0", " ") for t in page.locator(".iseg-demo select option").all_text_contents()]
    assert options == ["object 1: 1 click", "object 2: 1 click"]
    page.locator(".jp-OutputArea-output:has(.iseg-status)").screenshot(path=str(tmp_path / "annotate.png"))
    publish(tmp_path / "annotate.png", "annotate.png")

    masks = [cv2.imread(str(out / "masks" / f"{stem}_{k}.png"), cv2.IMREAD_GRAYSCALE) > 0 for k in (1, 2)]
    for mask, region in zip(masks, regions):
        assert mask.shape == (height, width) and mask[deepest_point(region)]   # each object where it was clicked
    assert (masks[0] != masks[1]).any()
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(out / "annotations/instances_images.json"))
    anns = coco.loadAnns(coco.getAnnIds())
    assert [coco.imgs[1]["file_name"]] == [f"{stem}.jpg"] and len(anns) == 2
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["polyp"]
    for ann, mask in zip(anns, masks):
        assert np.array_equal(coco.annToMask(ann).astype(bool), mask)
    state = json.loads((out / "annotation.json").read_text())
    assert [len(o["clicks"]) for o in state["images"][stem]["objects"]] == [1, 1]
    with open(out / "annotation_log.csv", newline="") as f:
        assert [(r["object"], r["clicks"]) for r in csv.DictReader(f)] == [("1", "1"), ("2", "1")]
    assert load_dataset("folder", out).image_keys == [stem]
