"""The click demo without a browser: controller logic, and the widget driven by synthetic events."""

from __future__ import annotations

import base64
import re
import threading
from datetime import datetime, timezone

import cv2
import numpy as np
import pytest
import torch

from iseg.clicks import Click
from iseg.data.sample import Sample
from iseg.demo import ClickController, load_image_bytes


def status(widget) -> str:
    """The widget's status line as the page shows its text (tags dropped, entities decoded)."""
    import html

    return html.unescape(re.sub(r"<[^>]+>", "", widget.status.value))


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


def test_queued_clicks_are_predicted_in_order_each_from_the_previous_mask(controller):
    assert controller.queue_click(30, 20, True) and controller.queue_click(30, 60, True)
    assert not controller.queue_click(99, 0, True)
    assert controller.pending == [Click(30, 20, True), Click(30, 60, True)] and controller.clicks == []
    assert controller.snapshot().prob is None and controller.predictor.calls == []
    assert controller.predict_next()
    assert controller.pending == [Click(30, 60, True)] and controller.clicks == [Click(30, 20, True)]
    assert controller.predict_next() and not controller.predict_next()
    first, second = controller.predictor.calls
    assert first[0] == [Click(30, 20, True)] and first[1] is None
    assert second[0] == [Click(30, 20, True), Click(30, 60, True)] and second[1] is not None


def test_undo_drops_a_queued_click_before_a_predicted_one(controller):
    controller.add_click(30, 20, True)
    controller.queue_click(30, 60, True)
    assert controller.undo()
    assert controller.pending == [] and controller.clicks == [Click(30, 20, True)]
    assert len(controller.predictor.calls) == 1


def test_undo_restores_the_time_of_the_kept_click(controller):
    controller.add_click(30, 20, True)
    first = controller.last_click_seconds
    controller.add_click(30, 60, True)
    controller._steps[-1] = controller._steps[-1].__class__(**{**vars(controller._steps[-1]), "seconds": 99.0})
    assert controller.last_click_seconds == 99.0
    controller.undo()
    assert controller.last_click_seconds == first
    controller.undo()
    assert controller.last_click_seconds is None


class FailingPredictor(DiskPredictor):
    def predict(self, clicks, prev_prob):
        if len(clicks) == 2:
            raise RuntimeError("model exploded")
        return super().predict(clicks, prev_prob)


def test_a_failed_prediction_drops_the_queue_and_keeps_the_state():
    controller = ClickController(FailingPredictor(), make_image())
    controller.add_click(30, 20, True)
    for col in (40, 60):
        controller.queue_click(30, col, True)
    with pytest.raises(RuntimeError, match="model exploded"):
        controller.predict_next()
    assert controller.pending == [] and controller.clicks == [Click(30, 20, True)]


def test_mask_png_is_the_mask(controller):
    controller.add_click(30, 40, True)
    decoded = cv2.imdecode(np.frombuffer(controller.mask_png(), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded == 255, controller.mask)


# ---- undo stays exact with the real predictors -------------------------------------------------------------

class DiskNet(torch.nn.Module):
    """A stand-in network for the real predictors: the previous mask, with a disk of 5 px set around each positive
    click and cleared around each negative one (in the network's own frame: after zoom-in and resizing)."""

    def forward(self, image, points, prev_mask):
        rows = torch.arange(image.shape[-2])[:, None]
        cols = torch.arange(image.shape[-1])[None]
        logits = prev_mask * 16 - 8
        half = points.shape[1] // 2
        for b, item in enumerate(points.tolist()):
            for k, (row, col, _) in enumerate(item):
                if row >= 0:
                    logits[b, 0][(rows - row) ** 2 + (cols - col) ** 2 <= 25] = 8.0 if k < half else -8.0
        return {"instances": logits, "instances_aux": logits}


def real_predictor(kind):
    from iseg.inference import CascadePredictor, SingleNetPredictor

    if kind == "single":
        return SingleNetPredictor(DiskNet(), flip=False, target_size=48)
    return CascadePredictor(DiskNet(), DiskNet(), flip=False, target_size=48)


# RITM's zoom-in crop after the third click (outside the crop of the first two) differs from the one a replay of the
# first two keeps, and the next click recomputes a crop from the first but keeps the second.
EXACT_CLICKS = [Click(60, 60, True), Click(100, 120, True), Click(230, 320, True)]
NEXT_CLICK = Click(150, 150, True)
IMAGE = np.random.default_rng(1).integers(0, 256, (260, 360, 3), dtype=np.uint8)


@pytest.mark.parametrize("kind", ["single", "cascade"])
def test_undo_then_click_equals_a_fresh_replay_of_the_kept_clicks(kind):
    used = ClickController(real_predictor(kind), IMAGE)
    for click in EXACT_CLICKS:
        used.add_click(click.row, click.col, click.is_positive)
    used.undo()
    used.add_click(NEXT_CLICK.row, NEXT_CLICK.col, NEXT_CLICK.is_positive)
    fresh = ClickController(real_predictor(kind), IMAGE)
    for click in [*EXACT_CLICKS[:2], NEXT_CLICK]:
        fresh.add_click(click.row, click.col, click.is_positive)
    assert used.clicks == fresh.clicks
    np.testing.assert_allclose(used.prob, fresh.prob, atol=1e-6)
    used.reset()
    used.add_click(NEXT_CLICK.row, NEXT_CLICK.col, NEXT_CLICK.is_positive)
    first = ClickController(real_predictor(kind), IMAGE)
    first.add_click(NEXT_CLICK.row, NEXT_CLICK.col, NEXT_CLICK.is_positive)
    np.testing.assert_allclose(used.prob, first.prob, atol=1e-6)


@pytest.mark.parametrize("kind", ["single", "cascade"])
def test_undo_with_f_brs_restores_its_scale_and_bias(kind):
    from iseg.inference import CascadePredictor, SingleNetPredictor
    from iseg.models import build_model

    torch.manual_seed(0)
    net = build_model("ifpn_tiny")

    def make():
        if kind == "single":
            return SingleNetPredictor(net, flip=False, target_size=48, brs="f-BRS-B")
        return CascadePredictor(net, net, flip=False, target_size=48, coarse_size=96, brs="f-BRS-B")

    image = IMAGE[:96, :128]
    used = ClickController(make(), image)
    for click in [Click(30, 40, True), Click(70, 100, False), Click(50, 60, True)]:
        used.add_click(click.row, click.col, click.is_positive)
    used.undo()
    used.add_click(NEXT_CLICK.row // 2, NEXT_CLICK.col // 2, True)
    fresh = ClickController(make(), image)
    for click in [*used.clicks]:
        fresh.add_click(click.row, click.col, click.is_positive)
    assert used.predictor.refiner.evaluations[-1] > 0
    np.testing.assert_allclose(used.prob, fresh.prob, atol=1e-5)


def test_cascade_steps_keep_the_intention_of_their_click():
    controller = ClickController(real_predictor("cascade"), IMAGE)
    assert controller.intention is None
    controller.add_click(30, 40, True)
    first = controller.intention
    assert first.coarse.shape == (260, 360) and first.coarse.dtype == np.float32 and first.roi is not None
    assert first.coarse is not controller.predictor.last_coarse  # a copy: the predictor's next run cannot change it
    controller.add_click(10, 10, False)
    controller.undo()
    assert controller.intention is first
    assert first.roi.contains(Click(30, 40, True)) and first.roi.area < IMAGE.shape[0] * IMAGE.shape[1]
    assert ClickController(DiskPredictor(), IMAGE).intention is None


# ---- the widget, driven without a browser ---------------------------------------------------------------

widgets = pytest.importorskip("ipywidgets")
from iseg.demo.widget import ClickDemo, make_demo  # noqa: E402


def click_event(x, y, kind="click", shift=False):
    """The dict ipyevents sends for a click at (x, y) in the displayed frame's pixels."""
    return {"type": kind, "button": 2 if kind == "contextmenu" else 0, "dataX": x, "dataY": y,
            "shiftKey": shift, "ctrlKey": False, "altKey": False}


def key_event(key):
    return {"type": "keydown", "key": key, "shiftKey": False, "ctrlKey": False, "altKey": False}


def frame_of(demo):
    """(h, w, 3) BGR of the JPEG frame currently shown."""
    return cv2.imdecode(np.frombuffer(demo.image.value, np.uint8), cv2.IMREAD_COLOR)


def changed_share(a, b):
    """Share of pixels that differ clearly between two frames."""
    return (np.abs(a.astype(np.int16) - b).max(axis=2) > 20).mean()


def clicked(demo, *events):
    """Send events and wait for the model's frame."""
    for event in events:
        demo.handle_event(event)
    demo.wait()


@pytest.fixture
def demo(tmp_path):
    samples = [Sample(make_image(), disk((60, 80), 30, 40).astype(np.int8), "toy/0"),
               Sample(make_image(40, 50), np.zeros((40, 50), np.int8), "toy/1")]
    return ClickDemo(DiskPredictor(), samples, save_dir=tmp_path)


def test_events_become_positive_and_negative_clicks(demo):
    assert "toy/0" in status(demo) and "0 clicks" in status(demo)
    clicked(demo, click_event(40, 30), click_event(70, 10, kind="contextmenu"), click_event(5, 50, shift=True))
    assert demo.controller.clicks == [Click(30, 40, True), Click(10, 70, False), Click(50, 5, False)]
    assert "3 clicks" in status(demo) and "IoU 1.000" in status(demo)
    assert "s/click" in status(demo)
    assert "iseg-status" in demo.status._dom_classes and "iseg-image" in demo.image._dom_classes
    assert demo.events.watched_events == ["click", "contextmenu", "keydown"] and demo.events.prevent_default_action


class GatedDiskPredictor(DiskPredictor):
    """DiskPredictor whose predictions wait until the test opens the gate."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()

    def predict(self, clicks, prev_prob):
        assert self.gate.wait(30), "the test never opened the gate"
        return super().predict(clicks, prev_prob)


def test_the_marker_and_the_busy_sign_come_before_the_mask():
    predictor = GatedDiskPredictor()
    demo = ClickDemo(predictor)
    demo.load(make_image(120, 160), name="toy")
    before = frame_of(demo)
    assert "iseg-busy" not in demo.image._dom_classes
    for x in (40, 60, 80):
        assert demo.handle_event(click_event(x, 60))  # returns while the model waits
    marked = frame_of(demo)
    assert "iseg-busy" in demo.image._dom_classes and "3 clicks queued" in status(demo)
    assert demo.controller.clicks == [] and len(demo.controller.pending) == 3
    assert 0 < changed_share(marked, before) < 0.1  # three markers, no mask yet
    predictor.gate.set()
    demo.wait()
    assert "iseg-busy" not in demo.image._dom_classes and "queued" not in status(demo)
    assert [c.col for c in demo.controller.clicks] == [40, 60, 80]
    assert changed_share(frame_of(demo), before) > changed_share(marked, before)


def test_frames_are_never_upscaled_and_the_image_keeps_its_size(demo):
    assert frame_of(demo).shape == (60, 80, 3) and demo.image.layout.width == "80px"
    demo.load(make_image(1000, 1600), name="big")
    height, width = frame_of(demo).shape[:2]
    assert height <= demo.max_height and width <= demo.max_width and demo.image.layout.width == f"{width}px"
    clicked(demo, click_event(width / 2, height / 2))
    assert demo.controller.clicks == [Click(500, 800, True)]
    assert not demo.handle_event(click_event(width, 10))  # just right of the frame
    assert len(demo.controller.clicks) == 1 and "outside the image" in status(demo)


def test_per_image_work_is_done_once_per_image(monkeypatch):
    demo = ClickDemo(DiskPredictor())
    demo.load(make_image(1000, 1600), name="big")  # shown at a scale below 1
    renderer, base, resize, resized = demo.renderer, demo.renderer.base, cv2.resize, []
    monkeypatch.setattr(cv2, "resize", lambda src, *a, **k: resized.append(src.shape) or resize(src, *a, **k))
    clicked(demo, click_event(40, 30), click_event(10, 10, kind="contextmenu"))
    demo.undo()
    demo.intention.value = True
    assert resized and all(len(shape) == 2 for shape in resized)  # probability maps only, never the image
    assert demo.renderer is renderer and demo.renderer.base is base and demo.controller.predictor.images == 1
    demo.load(make_image(1000, 1600), name="next")
    assert demo.renderer is not renderer and (1000, 1600, 3) in resized and demo.controller.predictor.images == 2


def test_buttons_fire_undo_reset_and_save_and_the_status_follows(demo, tmp_path):
    clicked(demo, click_event(40, 30))
    first_seconds = demo.controller.last_click_seconds
    clicked(demo, click_event(10, 10, kind="contextmenu"))
    demo.controller._steps[-1] = demo.controller._steps[-1].__class__(
        **{**vars(demo.controller._steps[-1]), "seconds": 42.0})
    demo.undo_button.click()
    assert demo.controller.clicks == [Click(30, 40, True)] and "1 click |" in status(demo)
    assert "42.00 s/click" not in status(demo) and f"{first_seconds:.2f} s/click" in status(demo)
    demo.save_button.click()
    saved = cv2.imread(str(tmp_path / "toy_0_mask.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(saved == 255, demo.controller.mask)
    assert "Saved" in status(demo)
    first = (tmp_path / "toy_0_mask.png").read_bytes()
    demo.undo_button.click()
    demo.save_button.click()  # a second save of the photo keeps the first one
    assert (tmp_path / "toy_0_mask.png").read_bytes() == first
    assert (tmp_path / "toy_0_mask_2.png").is_file() and f"Saved {tmp_path / 'toy_0_mask_2.png'}" in status(demo)
    demo.reset_button.click()
    assert demo.controller.clicks == [] and "0 clicks" in status(demo) and "s/click" not in status(demo)


def test_keyboard_shortcuts(demo, tmp_path):
    clicked(demo, click_event(40, 30), click_event(10, 10, kind="contextmenu"))
    demo.handle_event(key_event("z"))
    assert len(demo.controller.clicks) == 1
    demo.handle_event(key_event("s"))
    assert (tmp_path / "toy_0_mask.png").is_file()
    demo.handle_event(key_event("o"))
    assert demo.outline_only.value
    demo.handle_event(key_event("i"))
    assert demo.intention.value
    demo.handle_event(key_event("r"))
    assert demo.controller.clicks == []
    demo.handle_event(key_event("q"))  # not a shortcut: nothing happens
    for key in ("Z", "Backspace", "R", "S", "O", "I", "B"):
        assert key in demo.help.value.replace("<b>", "").replace("</b>", "") or key.upper() in demo.help.value


def test_download_link_carries_the_mask_png(demo):
    clicked(demo, click_event(40, 30))
    match = re.search(r'download="([^"]+)" href="data:image/png;base64,([^"]+)"', demo.download.value)
    assert match and match.group(1) == "toy_0_mask.png"
    decoded = cv2.imdecode(np.frombuffer(base64.b64decode(match.group(2)), np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(decoded == 255, demo.controller.mask)


def test_the_threshold_sets_the_mask_iou_save_and_download(tmp_path):
    from iseg.demo.widget import ClickDemo

    class HalfPredictor(DiskPredictor):
        def predict(self, clicks, prev_prob):
            return super().predict(clicks, prev_prob) * 0.6

    gt = disk((60, 80), 30, 40).astype(np.int8)
    view = ClickDemo(HalfPredictor(), [Sample(make_image(), gt, "toy_0")], save_dir=tmp_path)
    clicked(view, click_event(40, 30))
    assert view.controller.mask.sum() == disk((60, 80), 30, 40).sum() and "IoU 1.000" in status(view)
    view.threshold.value = 0.7
    assert not view.controller.mask.any() and "IoU 0.000" in status(view)
    assert "threshold 0.70" in status(view) and "0.49" in view.threshold.tooltip
    assert 'href="data:image/png;base64,' in view.download.value
    view.save()
    assert cv2.imread(str(tmp_path / "toy_0_mask.png"), cv2.IMREAD_UNCHANGED).max() == 0
    with pytest.raises(ValueError, match="threshold must be a probability"):
        view.controller.set_threshold(1.0)


def test_style_controls_redraw_the_frame(demo):
    clicked(demo, click_event(40, 30))
    filled = frame_of(demo)
    demo.opacity.value = 0.0
    assert changed_share(frame_of(demo), filled) > 0
    demo.opacity.value = 0.6
    demo.outline_only.value = True
    inside = frame_of(demo)[36, 44].astype(int)  # in the mask, beside the marker: the image shows through
    assert np.abs(inside - 128).max() < 20  # JPEG noise only
    demo.outline_only.value = False
    assert np.abs(frame_of(demo)[36, 44].astype(int) - 128).max() > 30


def test_intention_toggle_without_a_coarse_network_says_so(demo):
    clicked(demo, click_event(40, 30))
    demo.intention.value = True
    assert "no intention view" in status(demo)


def test_intention_toggle_draws_the_cascade_intention():
    demo = ClickDemo(real_predictor("cascade"))
    demo.load(IMAGE, name="noise")
    clicked(demo, click_event(100, 60))
    plain = frame_of(demo)
    demo.intention.value = True
    shown = frame_of(demo)
    roi = demo.controller.intention.roi
    assert "orange: coarse mask" in status(demo)
    assert f"zoom-in box {roi.width}x{roi.height}" in status(demo)
    assert changed_share(shown, plain) > 0.2  # outside the zoom-in box is dimmed
    demo.intention.value = False
    np.testing.assert_array_equal(frame_of(demo), plain)


def test_f_brs_toggle_switches_the_refinement_for_the_next_click():
    demo = ClickDemo(real_predictor("cascade"))
    demo.load(IMAGE, name="noise")
    assert not demo.refine.value and not demo.refine.disabled and "f-BRS" in demo.refine.tooltip
    demo.handle_event(key_event("b"))
    assert demo.controller.predictor.brs == "f-BRS-B" and "f-BRS-B on from the next click" in status(demo)
    demo.refine.value = False
    assert demo.controller.predictor.refiner is None


def test_f_brs_toggle_is_disabled_without_a_network(demo):
    assert demo.refine.disabled
    demo.handle_event(key_event("b"))
    assert not demo.refine.value


def test_upload_tooltip_and_controls_are_labelled(demo):
    assert demo.upload.tooltip and "image" in demo.upload.tooltip
    assert all(b.tooltip for b in (demo.undo_button, demo.reset_button, demo.save_button, demo.intention))


def test_picking_a_sample_loads_it_with_its_gt(demo):
    clicked(demo, click_event(40, 30))
    demo.picker.value = 1
    assert demo.controller.clicks == [] and demo.controller.image.shape == (40, 50, 3)
    assert demo.image_name == "toy/1" and frame_of(demo).shape == (40, 50, 3)
    clicked(demo, click_event(25, 20))
    assert "IoU 0.000" in status(demo)


def upload(demo, name, content):
    """Simulate the FileUpload widget receiving one file."""
    demo.upload.value = ({"name": name, "type": "", "size": len(content), "content": memoryview(content),
                          "last_modified": datetime.now(timezone.utc)},)


def test_a_start_mask_is_the_mask_before_the_first_click_and_its_previous_probabilities(demo, tmp_path):
    start = disk((60, 80), 30, 40, radius=15)
    demo.controller.set_start_mask(start)                       # through the controller, as any front end
    assert np.array_equal(demo.controller.mask, start) and demo.controller.clicks == []
    clicked(demo, click_event(10, 10, kind="contextmenu"))
    assert np.array_equal(demo.controller.predictor.calls[-1][1], start.astype(np.float32))   # the model sees it
    demo.reset_button.click()
    assert np.array_equal(demo.controller.mask, start)          # Reset goes back to the start mask
    demo.picker.value = 1
    assert not demo.controller.mask.any()                       # a new image starts from nothing


def test_the_start_mask_upload_checks_the_file_and_the_size(demo):
    small = disk((60, 80), 30, 40).astype(np.uint8) * 255
    ok, png = cv2.imencode(".png", small)
    demo.start_upload.value = ({"name": "m.png", "type": "", "size": len(png),
                                "content": memoryview(png.tobytes()), "last_modified": datetime.now(timezone.utc)},)
    assert "started from mask m.png" in status(demo) and np.array_equal(demo.controller.mask, small > 0)
    ok, wrong = cv2.imencode(".png", np.zeros((10, 10), np.uint8))
    demo.start_upload.value = ({"name": "w.png", "type": "", "size": len(wrong),
                                "content": memoryview(wrong.tobytes()), "last_modified": datetime.now(timezone.utc)},)
    assert "Start mask ignored: mask 'w.png' is 10x10 (HxW) but the image is 60x80" in status(demo)
    assert np.array_equal(demo.controller.mask, small > 0)      # the earlier start mask stays
    with pytest.raises(ValueError, match="start mask must be"):
        demo.controller.set_start_mask(np.zeros((5, 5), bool))


def test_zoom_keys_and_buttons_zoom_at_the_last_click_and_clicks_land_on_their_pixel(demo):
    clicked(demo, click_event(40, 30))
    demo.handle_event(key_event("+"))
    assert demo.renderer.zoom == 2.0 and "zoom 2x" in status(demo)
    assert demo.to_image_coords(*demo.renderer.to_display(30.5, 40.5)) == (30, 40)  # the last click stays put
    demo.handle_event(key_event("ArrowRight"))
    x, y = demo.renderer.to_display(20.5, 50.5)
    clicked(demo, click_event(x, y, kind="contextmenu"))
    assert demo.controller.clicks[-1] == Click(20, 50, False)
    demo.zoom_out_button.click()
    assert demo.renderer.zoom == 1.0 and "zoom" not in status(demo)
    demo.zoom_in_button.click()
    demo.handle_event(key_event("f"))
    assert demo.renderer.zoom == 1.0 and demo.to_image_coords(40, 30) == (30, 40)


def test_keys_work_with_the_pointer_on_a_button_too(demo):
    clicked(demo, click_event(40, 30), click_event(10, 10, kind="contextmenu"))
    sources = [events.source for events in demo.key_events]
    assert demo.undo_button in sources and demo.zoom_in_button in sources and demo.threshold not in sources
    demo.key_events[sources.index(demo.undo_button)]._dom_handlers(key_event("z"))
    assert len(demo.controller.clicks) == 1


def test_status_parts_keep_a_value_with_its_unit_and_long_parts_wrap():
    from iseg.demo.widget import KEEP_TOGETHER, status_html

    long = "intention of the last click: orange: coarse mask (12% of the image)"
    shown = status_html(f"a<b> | 0.47 s/click | {long}")
    assert shown == (f'<span class="iseg-keep">a&lt;b&gt;</span> | <span class="iseg-keep">0.47 s/click</span> | '
                     f"{long}") and len(long) > KEEP_TOGETHER


def test_uploading_a_non_image_shows_a_message(demo):
    upload(demo, "notes.txt", b"not an image at all")
    assert "Upload ignored" in status(demo) and "&#x27;notes.txt&#x27; is not an image file" in demo.status.value
    assert demo.image_name == "toy/0" and demo.controller.image.shape == (60, 80, 3)


def test_uploading_an_image_shows_it_without_gt(demo):
    ok, jpeg = cv2.imencode(".jpg", make_image(30, 20))
    upload(demo, "my photo.jpg", jpeg.tobytes())
    assert demo.controller.image.shape == (30, 20, 3) and demo.controller.gt_mask is None
    assert demo.picker.value == ("upload", 0) and demo.image_name == "my photo"
    assert demo.picker.options[-1][0] == "upload: my photo.jpg" and len(demo.upload.value) == 1  # "Upload (1)"
    clicked(demo, click_event(10, 10))
    assert "1 click" in status(demo) and "IoU" not in status(demo)
    demo.picker.value = 0                                                  # back to a sample, then to the upload
    assert demo.image_name == "toy/0" and demo.controller.gt_mask is not None
    demo.picker.value = ("upload", 0)
    assert demo.image_name == "my photo" and demo.controller.image.shape == (30, 20, 3)


def test_a_failing_model_is_reported_in_the_status():
    demo = ClickDemo(FailingPredictor())
    demo.load(make_image(), name="toy")
    clicked(demo, click_event(10, 10), click_event(20, 20))
    assert "Prediction failed" in status(demo) and "model exploded" in status(demo)
    assert "iseg-busy" not in demo.image._dom_classes and len(demo.controller.clicks) == 1


def test_make_demo_falls_back_to_grabcut_without_default_weights(monkeypatch, capsys):
    import iseg.predictor

    seen = {}

    def fake_load(spec, **kw):
        seen[spec] = kw
        if spec != "grabcut":
            raise FileNotFoundError(f"{spec}: no such weights")
        return DiskPredictor()

    monkeypatch.setattr(iseg.predictor, "load_predictor", fake_load)
    demo = make_demo("default", dataset=None)
    assert isinstance(demo.controller.predictor, DiskPredictor) and seen["default"]["flip"] is False
    assert "using the GrabCut baseline" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError):
        make_demo("missing.pt", dataset=None)
