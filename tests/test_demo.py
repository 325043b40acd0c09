"""The click demo without a browser: controller logic, and the widget driven by synthetic events."""

from __future__ import annotations

from datetime import datetime, timezone

import cv2
import numpy as np
import pytest

from iseg.clicks import Click
from iseg.data.sample import Sample
from iseg.demo import ClickController, load_image_bytes

RADIUS = 10


class DiskPredictor:
    """Stand-in model: object = disks of RADIUS px around positive clicks minus disks around negative ones."""

    def __init__(self):
        self.images = 0
        self.calls: list[tuple[list[Click], np.ndarray | None]] = []

    def set_image(self, image):
        self.images += 1
        self.shape = image.shape[:2]

    def predict(self, clicks, prev_prob):
        self.calls.append((list(clicks), prev_prob))
        rows, cols = np.mgrid[: self.shape[0], : self.shape[1]]
        prob = np.zeros(self.shape, np.float32)
        for click in clicks:
            prob[(rows - click.row) ** 2 + (cols - click.col) ** 2 <= RADIUS**2] = float(click.is_positive)
        return prob


def make_image(height=60, width=80):
    """(H, W, 3) uint8 mid-grey image."""
    return np.full((height, width, 3), 128, np.uint8)


def disk(shape, row, col, radius=RADIUS):
    """(H, W) bool disk."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (rows - row) ** 2 + (cols - col) ** 2 <= radius**2


@pytest.fixture
def controller():
    return ClickController(DiskPredictor(), make_image())


def test_positive_click_predicts_a_mask(controller):
    assert controller.add_click(30, 40, True)
    assert controller.clicks == [Click(30, 40, True)]
    assert controller.prob.shape == (60, 80) and controller.prob.dtype == np.float32
    np.testing.assert_array_equal(controller.mask, disk((60, 80), 30, 40))
    assert controller.last_click_seconds is not None and controller.last_click_seconds >= 0


def test_previous_probability_is_fed_back(controller):
    controller.add_click(30, 40, True)
    first = controller.prob
    controller.add_click(30, 45, False)
    calls = controller.predictor.calls
    assert calls[0][1] is None
    assert calls[1][1] is first
    assert calls[1][0] == [Click(30, 40, True), Click(30, 45, False)]


@pytest.mark.parametrize("row, col", [(-1, 5), (5, -1), (60, 5), (5, 80), (1000, 1000)])
def test_click_outside_the_image_is_ignored(controller, row, col):
    assert not controller.add_click(row, col, True)
    assert controller.clicks == [] and controller.predictor.calls == []
    assert not controller.mask.any()


def test_undo_restores_the_previous_state_without_the_model(controller):
    controller.add_click(30, 40, True)
    after_one = controller.prob.copy()
    controller.add_click(30, 40, False)
    assert not controller.mask.any()
    assert controller.undo()
    assert len(controller.predictor.calls) == 2
    assert controller.clicks == [Click(30, 40, True)]
    np.testing.assert_array_equal(controller.prob, after_one)
    assert controller.undo() and controller.clicks == []
    assert not controller.prob.any()
    assert not controller.undo()


def test_reset_clears_clicks_and_keeps_the_image(controller):
    controller.add_click(30, 40, True)
    controller.reset()
    assert controller.clicks == [] and not controller.mask.any() and controller.last_click_seconds is None
    assert controller.image is not None and controller.predictor.images == 1


def test_set_image_resets_and_validates(controller):
    controller.add_click(30, 40, True)
    controller.set_image(make_image(20, 30))
    assert controller.clicks == [] and controller.prob.shape == (20, 30) and controller.predictor.images == 2
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        controller.set_image(np.zeros((20, 30), np.uint8))
    with pytest.raises(ValueError, match="gt_mask"):
        controller.set_image(make_image(20, 30), np.zeros((5, 5), np.int8))


def test_no_image_is_a_clear_error():
    with pytest.raises(RuntimeError, match="set_image"):
        ClickController(DiskPredictor()).add_click(0, 0, True)


def test_iou_against_the_gt_mask():
    gt = disk((60, 80), 30, 40).astype(np.int8)
    gt[0, 0] = -1
    controller = ClickController(DiskPredictor(), make_image(), gt)
    assert controller.iou == 0.0
    controller.add_click(30, 40, True)
    assert controller.iou == pytest.approx(1.0)
    assert ClickController(DiskPredictor(), make_image()).iou is None


def test_render_draws_overlay_and_clicks(controller):
    plain = controller.render()
    np.testing.assert_array_equal(plain, controller.image)
    controller.add_click(30, 20, True)
    controller.add_click(30, 60, False)
    frame = controller.render()
    assert frame.shape == (60, 80, 3) and frame.dtype == np.uint8
    red, green, blue = (int(v) for v in frame[30, 20])
    assert green > red + 50 and green > blue + 50
    red, green, blue = (int(v) for v in frame[30, 60])
    assert red > green + 50 and red > blue + 50
    assert not np.array_equal(frame[30, 27], controller.image[30, 27])  # overlay inside the disk
    np.testing.assert_array_equal(frame[2, 40], controller.image[2, 40])  # untouched far away


def test_save_mask_writes_a_0_255_png(controller, tmp_path):
    controller.add_click(30, 40, True)
    path = controller.save_mask(tmp_path / "out" / "mask.png")
    saved = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert saved.shape == (60, 80) and set(np.unique(saved)) == {0, 255}
    np.testing.assert_array_equal(saved == 255, controller.mask)
    assert sorted(p.name for p in path.parent.iterdir()) == ["mask.png"]


def test_load_image_bytes_decodes_rgb():
    image = np.zeros((4, 5, 3), np.uint8)
    image[..., 0] = 200  # red in RGB
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(load_image_bytes(png.tobytes()), image)


@pytest.mark.parametrize("data", [b"", b"hello, not an image", b"\x89PNG\r\n\x1a\n broken"])
def test_load_image_bytes_rejects_non_images(data):
    with pytest.raises(ValueError, match="'notes.txt' is not an image file"):
        load_image_bytes(data, "notes.txt")


# ---- the widget, driven without a browser ---------------------------------------------------------------

widgets = pytest.importorskip("ipywidgets")
from iseg.demo.widget import ClickDemo, display_scale, make_demo  # noqa: E402


def click_event(x, y, kind="click", shift=False):
    """The dict ipyevents sends for a click at (x, y) in the displayed frame's pixels."""
    return {"type": kind, "button": 2 if kind == "contextmenu" else 0, "dataX": x, "dataY": y,
            "shiftKey": shift, "ctrlKey": False, "altKey": False}


def frame_shape(demo):
    """(H, W, 3) of the JPEG frame currently shown."""
    return cv2.imdecode(np.frombuffer(demo.image.value, np.uint8), cv2.IMREAD_COLOR).shape


@pytest.fixture
def demo():
    samples = [Sample(make_image(), disk((60, 80), 30, 40).astype(np.int8), "toy/0"),
               Sample(make_image(40, 50), np.zeros((40, 50), np.int8), "toy/1")]
    return ClickDemo(DiskPredictor(), samples)


def test_events_become_positive_and_negative_clicks(demo):
    assert "toy/0" in demo.status.value and "0 clicks" in demo.status.value
    assert demo.handle_event(click_event(40, 30))
    assert demo.handle_event(click_event(70, 10, kind="contextmenu"))
    assert demo.handle_event(click_event(5, 50, shift=True))
    assert demo.controller.clicks == [Click(30, 40, True), Click(10, 70, False), Click(50, 5, False)]
    assert "3 clicks" in demo.status.value and "IoU 1.000" in demo.status.value
    assert "s/click" in demo.status.value
    assert "iseg-status" in demo.status._dom_classes and "iseg-image" in demo.image._dom_classes
    assert demo.events.watched_events == ["click", "contextmenu"] and demo.events.prevent_default_action


def test_frame_changes_with_the_mask(demo):
    before = demo.image.value
    demo.handle_event(click_event(40, 30))
    assert demo.image.value != before and demo.image.format == "jpeg"


def test_click_outside_the_image_is_ignored_with_a_message(demo):
    assert not demo.handle_event(click_event(85, 30))
    assert demo.controller.clicks == [] and "outside the image" in demo.status.value


def test_big_images_are_downscaled_and_clicks_mapped_back():
    assert display_scale((1000, 1600, 3)) == 0.5 and display_scale((300, 400, 3)) == 1.0
    demo = ClickDemo(DiskPredictor())
    assert "upload an image" in demo.status.value
    demo.load(make_image(1000, 1600), name="big")
    assert frame_shape(demo) == (500, 800, 3)
    assert demo.handle_event(click_event(100, 50))
    assert demo.controller.clicks == [Click(100, 200, True)]
    assert demo.to_image_coords(799.9, 499.9) == (999, 1599)
    assert not demo.handle_event(click_event(800, 10))  # just right of the frame
    assert len(demo.controller.clicks) == 1


def test_buttons_fire_undo_reset_and_save(demo, tmp_path):
    demo.save_dir = tmp_path
    demo.handle_event(click_event(40, 30))
    demo.handle_event(click_event(10, 10, kind="contextmenu"))
    demo.undo_button.click()
    assert demo.controller.clicks == [Click(30, 40, True)] and "1 click |" in demo.status.value
    demo.save_button.click()
    saved = cv2.imread(str(tmp_path / "toy_0_mask.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(saved == 255, demo.controller.mask)
    assert "Saved" in demo.status.value
    demo.reset_button.click()
    assert demo.controller.clicks == [] and "0 clicks" in demo.status.value


def test_picking_a_sample_loads_it_with_its_gt(demo):
    demo.handle_event(click_event(40, 30))
    demo.picker.value = 1
    assert demo.controller.clicks == [] and demo.controller.image.shape == (40, 50, 3)
    assert demo.image_name == "toy/1" and frame_shape(demo) == (40, 50, 3)
    demo.handle_event(click_event(25, 20))
    assert "IoU 0.000" in demo.status.value


def upload(demo, name, content):
    """Simulate the FileUpload widget receiving one file."""
    demo.upload.value = ({"name": name, "type": "", "size": len(content), "content": memoryview(content),
                          "last_modified": datetime.now(timezone.utc)},)


def test_uploading_a_non_image_shows_a_message(demo):
    upload(demo, "notes.txt", b"not an image at all")
    assert "Upload ignored" in demo.status.value and "'notes.txt' is not an image file" in demo.status.value
    assert demo.image_name == "toy/0" and demo.controller.image.shape == (60, 80, 3)


def test_uploading_an_image_shows_it_without_gt(demo):
    ok, jpeg = cv2.imencode(".jpg", make_image(30, 20))
    upload(demo, "my photo.jpg", jpeg.tobytes())
    assert demo.controller.image.shape == (30, 20, 3) and demo.controller.gt_mask is None
    assert demo.picker.value is None and demo.image_name == "my photo" and demo.upload.value == ()
    demo.handle_event(click_event(10, 10))
    assert "1 click" in demo.status.value and "IoU" not in demo.status.value


def test_make_demo_falls_back_to_grabcut_without_default_weights(monkeypatch, capsys):
    import iseg.predictor

    def fake_load(spec, **kw):
        if spec != "grabcut":
            raise FileNotFoundError(f"{spec}: no such weights")
        return DiskPredictor()

    monkeypatch.setattr(iseg.predictor, "load_predictor", fake_load)
    demo = make_demo("default", dataset=None)
    assert isinstance(demo.controller.predictor, DiskPredictor)
    assert "using the GrabCut baseline" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError):
        make_demo("missing.pt", dataset=None)
