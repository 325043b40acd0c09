"""Inference: zoom-in regions on hand-worked boxes, transforms, and the single and cascade predictors."""

import numpy as np
import pytest
import torch

import iseg.inference.predictors as predictors
import iseg.inference.transforms as transforms
from iseg.clicks import Click
from iseg.inference import (CascadePredictor, Crop, Flip, Resize, Roi, SingleNetPredictor, ZoomIn, intention_roi,
                            predictor_from_checkpoints, ritm_roi)
from iseg.models import build_model, model_payload, save_checkpoint

torch.set_num_threads(1)


def square_mask(size: int, start: int, stop: int) -> np.ndarray:
    prob = np.zeros((size, size), np.float32)
    prob[start:stop, start:stop] = 0.9
    return prob


def test_intention_roi_small_object():
    # 20x20 box in 100x100: ratio 2.5 - 4 * sqrt(0.04) = 1.7 -> 34 px about the centre 50.
    assert intention_roi(square_mask(100, 40, 60), [Click(50, 50, True)]) == Roi(33, 33, 67, 67)


def test_intention_roi_large_object_uses_1_4_and_clamps():
    # 80x80 box: 2.5 - 4 * 0.8 < 1.4 -> 112 px about 50 -> [-6, 106) clamped to the image.
    assert intention_roi(square_mask(100, 10, 90), []) == Roi(0, 0, 100, 100)


def test_intention_roi_unites_positive_clicks_only():
    # Box rows [40, 80) x cols [40, 60): area 800, 2.5 - 4 sqrt(0.08) = 1.37 -> 1.4; 56 x 28 px about (60, 50).
    clicks = [Click(79, 59, True), Click(5, 5, False)]
    assert intention_roi(square_mask(100, 40, 60), clicks) == Roi(32, 36, 88, 64)
    assert intention_roi(torch.as_tensor(square_mask(100, 40, 60)), clicks) == Roi(32, 36, 88, 64)


def test_intention_roi_has_no_minimum_size_and_empty_gives_the_image():
    prob = np.zeros((100, 120), np.float32)
    prob[10, 10] = 1.0  # 1 px box: ratio 2.5 - 4 sqrt(1/12000) = 2.46 -> [9, 12)
    assert intention_roi(prob, []) == Roi(9, 9, 12, 12)
    assert intention_roi(np.zeros((7, 9), np.float32), [Click(1, 1, False)]) == Roi(0, 0, 7, 9)


def test_ritm_roi_minimum_size():
    # 10 px box at [100, 110) in 300x300: 14 px < 200 -> 200 px about 105 -> [5, 205).
    assert ritm_roi(square_mask(300, 100, 110), []) == Roi(5, 5, 205, 205)
    assert ritm_roi(square_mask(300, 100, 110), [], min_size=0) == Roi(98, 98, 112, 112)


def test_roi_iou():
    assert Roi(0, 0, 10, 10).iou(Roi(5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_ritm_zoom_in_from_the_second_click_and_recompute_rule():
    zoom = ZoomIn(target_size=50)
    image, prev = torch.rand(1, 3, 300, 300), torch.as_tensor(square_mask(300, 100, 110))[None, None]
    one = [[Click(105, 105, True)]]
    assert zoom.transform(image, prev, one)[0] is image and zoom.crop is None
    two = [[Click(105, 105, True), Click(150, 150, False)]]
    out, _, clicks = zoom.transform(image, prev, two)
    assert zoom.crop.roi == Roi(5, 5, 205, 205) and out.shape == (1, 3, 50, 50)
    assert clicks == [[Click(25, 25, True), Click(36, 36, False)]]
    crop = zoom.crop
    shifted = torch.as_tensor(square_mask(300, 120, 130))[None, None]  # region IoU 0.67 with the crop: kept
    zoom.transform(image, shifted, two)
    assert zoom.crop is crop
    far = torch.as_tensor(square_mask(300, 200, 210))[None, None]
    zoom.transform(image, far, [[Click(205, 205, True)] * 2])
    assert zoom.crop.roi == Roi(105, 105, 300, 300)  # 200 px about 205, clamped (not shifted)
    zoom.reset()
    assert zoom.crop is None


def test_flip_round_trip_and_click_mirroring():
    flip = Flip()
    image, prev = torch.rand(1, 3, 5, 7), torch.rand(1, 1, 5, 7)
    out, out_prev, clicks = flip.transform(image, prev, [[Click(1, 2, True)]])
    assert out.shape == (2, 3, 5, 7) and torch.equal(out[1], image[0].flip(-1))
    assert clicks == [[Click(1, 2, True)], [Click(1, 4, True)]]
    assert torch.allclose(flip.inv_transform(out_prev), prev)
    assert flip.transform(image, prev, [[]])[0] is out  # cached per image


def test_resize_and_crop():
    image, prev = torch.rand(1, 3, 50, 100), torch.rand(1, 1, 50, 100)
    resize = Resize(40)
    out, out_prev, clicks = resize.transform(image, prev, [[Click(49, 99, True), Click(0, 0, False)]])
    assert out.shape == (1, 3, 20, 40) and out_prev.shape == (1, 1, 20, 40)
    assert clicks == [[Click(19, 39, True), Click(0, 0, False)]]
    assert resize.inv_transform(out_prev).shape == (1, 1, 50, 100)
    crop = Crop(Roi(10, 20, 30, 60), target_size=80)
    out, out_prev, clicks = crop.transform(image, prev, [[Click(15, 25, True), Click(40, 25, False)]])
    assert out.shape == (1, 3, 40, 80) and clicks == [[Click(11, 11, True)]]  # pixel 5 -> centre of [10, 12)
    assert torch.allclose(out_prev, torch.nn.functional.interpolate(prev[..., 10:30, 20:60], size=(40, 80),
                                                                    mode="bilinear", align_corners=False))
    pasted = crop.inv_transform(torch.ones(1, 1, 40, 80))
    assert pasted.shape == (1, 1, 50, 100) and pasted.sum() == 20 * 40 and pasted[0, 0, 10:30, 20:60].min() == 1


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = build_model("ifpn_tiny")
    with torch.no_grad():
        model.attention.gamma.fill_(0.5)
    return model


def random_image(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def make_predictor(kind: str, model, flip: bool):
    if kind == "single":
        return SingleNetPredictor(model, flip=flip, target_size=48)
    return CascadePredictor(model, model, flip=flip, target_size=48)


@pytest.mark.parametrize("kind", ["single", "cascade"])
@pytest.mark.parametrize("flip", [True, False])
def test_predictors_return_probabilities_at_odd_sizes(kind, flip, tiny):
    predictor = make_predictor(kind, tiny, flip)
    predictor.set_image(random_image(53, 71))
    clicks, prob = [], None
    for click in (Click(26, 35, True), Click(3, 68, False), Click(50, 2, True)):
        clicks.append(click)
        prob = predictor.predict(clicks, prob)
        assert prob.shape == (53, 71) and prob.dtype == np.float32
        assert 0 <= prob.min() and prob.max() <= 1


def test_flip_of_a_symmetric_input_is_symmetric(tiny):
    image = random_image(41, 63)
    image = np.ascontiguousarray(np.concatenate([image[:, :32], image[:, :31][:, ::-1]], axis=1))
    predictor = SingleNetPredictor(tiny, zoom_in=False, flip=True)
    predictor.set_image(image)
    prob = predictor.predict([Click(20, 31, True)], None)
    assert np.allclose(prob, prob[:, ::-1], atol=1e-6)


def test_per_image_work_is_done_once(tiny, monkeypatch):
    calls = []
    original_to_tensor, original_resize = predictors.image_to_tensor, transforms.resize
    monkeypatch.setattr(predictors, "image_to_tensor", lambda *a: calls.append("tensor") or original_to_tensor(*a))
    predictor = CascadePredictor(tiny, tiny, target_size=48)

    def counting_resize(x, size):
        if x is predictor.image:
            calls.append("resize")
        return original_resize(x, size)

    monkeypatch.setattr(transforms, "resize", counting_resize)
    predictor.set_image(random_image(53, 71))
    clicks, prob = [], None
    for click in (Click(26, 35, True), Click(3, 68, False), Click(50, 2, True)):
        clicks.append(click)
        prob = predictor.predict(clicks, prob)
    assert calls == ["tensor", "resize"]
    predictor.set_image(random_image(53, 71))
    predictor.predict(clicks[:1], None)
    assert calls == ["tensor", "resize", "tensor", "resize"]


def test_single_predictor_reuses_the_zoom_crop_and_resets_per_image(tiny):
    predictor = SingleNetPredictor(tiny, target_size=48)
    predictor.set_image(random_image(53, 71))
    clicks = [Click(26, 35, True), Click(3, 68, False)]
    prev = np.zeros((53, 71), np.float32)
    predictor.predict(clicks, prev)
    crop = predictor.zoom_in.crop
    predictor.predict(clicks + [Click(30, 30, True)], prev)
    assert predictor.zoom_in.crop is crop
    predictor.set_image(random_image(53, 71))
    assert predictor.zoom_in.crop is None


def test_predict_needs_an_image_and_a_matching_prev(tiny):
    predictor = SingleNetPredictor(tiny)
    with pytest.raises(RuntimeError, match="call set_image"):
        predictor.predict([Click(1, 1, True)], None)
    predictor.set_image(random_image(10, 12))
    with pytest.raises(ValueError, match=r"prev_prob has shape \(12, 10\), expected the image size \(10, 12\)"):
        predictor.predict([Click(1, 1, True)], np.zeros((12, 10), np.float32))
    for bad in (np.nan, 5.0, -0.5):
        prev = np.zeros((10, 12), np.float32)
        prev[3, 4] = bad
        with pytest.raises(ValueError, match=r"prev_prob must hold probabilities in \[0, 1\]; 1 value\(s\) do not"):
            predictor.predict([Click(1, 1, True)], prev)
    predictor.predict([Click(1, 1, True)], np.ones((10, 12), np.int64))  # a 0/1 mask of any dtype is fine
    with pytest.raises(ValueError, match="expected an \\(H, W, 3\\) uint8 RGB image"):
        predictor.set_image(np.zeros((10, 12), np.uint8))


def test_predictor_from_checkpoints(tmp_path, tiny):
    path = save_checkpoint(tmp_path / "tiny.pt", model_payload(tiny))
    single = predictor_from_checkpoints(path, flip=False)
    assert isinstance(single, SingleNetPredictor) and single.zoom_in is not None
    cascade = predictor_from_checkpoints(path, path, target_size=32)
    assert isinstance(cascade, CascadePredictor) and cascade.target_size == 32
    cascade.set_image(random_image(20, 30))
    assert cascade.predict([Click(10, 15, True)], None).shape == (20, 30)
