"""Every bad value is refused with a one-line error naming it (issue 20): sizes, counts, lists, images, clicks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from iseg.clicks import Click
from iseg.grabcut import GrabCutPredictor
from iseg.inference import CascadePredictor, SingleNetPredictor
from iseg.models import build_model
from iseg.values import (MAX_CLICKS, MAX_IMAGE_PIXELS, MAX_SIDE, check_clicks, check_image, check_integer,
                         range_error, split_names)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("ifpn_tiny")


@given(st.integers(min_value=-10**30, max_value=10**30))
def test_a_size_is_accepted_exactly_inside_its_range(value):
    assert (range_error("target_size", value) is None) == (1 <= value <= MAX_SIDE)
    assert (range_error("max_clicks", value) is None) == (1 <= value <= MAX_CLICKS)
    assert (range_error("limit", value) is None) == (value >= 1)


@pytest.mark.parametrize("value", [0, -5, 10**20, 1.5, True, "3", None])
def test_check_integer_names_the_value(value):
    with pytest.raises(ValueError, match=r"^coarse_size must be an integer from 1 to 4096, got "):
        check_integer("coarse_size", value)


@pytest.mark.parametrize("text, message", [("GrabCut,GrabCut", "names 'GrabCut' twice"),
                                           ("GrabCut,grabcut:0.5", "twice"), ("f=/a:1,f=/a", "twice"),
                                           ("GrabCut,", "empty item"),
                                           (",GrabCut", "empty item"), ("A,,B", "empty item"),
                                           ("", "names no dataset"), ("  ", "names no dataset")])
def test_name_lists_refuse_empty_and_repeated_items(text, message):
    with pytest.raises(ValueError, match=message):
        split_names(text, "--datasets")


def test_name_lists_keep_their_items():
    assert split_names(" GrabCut , Berkeley=/d:0.5", "--datasets") == ["GrabCut", "Berkeley=/d:0.5"]
    assert split_names("folder=/a,folder=/b,GrabCut=/c", "--data") == ["folder=/a", "folder=/b", "GrabCut=/c"]


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 5, 3), (5, 0, 3)])
def test_an_image_without_pixels_is_refused(shape):
    with pytest.raises(ValueError, match="has no pixel"):
        check_image(np.zeros(shape, np.uint8))


def test_an_image_over_the_pixel_limit_is_refused():
    side = int(MAX_IMAGE_PIXELS ** 0.5) + 1
    huge = np.lib.stride_tricks.as_strided(np.zeros(3, np.uint8), (side, side, 3), (0, 0, 1))
    with pytest.raises(ValueError, match="more than the 67,108,864 pixels"):
        check_image(huge)


BAD_CLICKS = [
    ([], "at least one click"),
    ([Click(-1, 0, True)], "outside the 10x12"),
    ([Click(0, -1, True)], "outside"),
    ([Click(10, 0, True)], "outside"),
    ([Click(0, 12, True)], "outside"),
    ([Click(10**12, 0, True)], "outside"),
    ([Click(1.5, 2, True)], "non-integer"),
    ([Click(np.float32(2), 2, True)], "non-integer"),
    ([Click(1, 2, True), Click(1, 2, 1)], "click 1 .* is_positive 1"),
    ([(1, 2, True)], "expected iseg.clicks.Click"),
]


@pytest.mark.parametrize("clicks, message", BAD_CLICKS)
def test_bad_clicks_are_refused(clicks, message):
    with pytest.raises(ValueError, match=message):
        check_clicks(clicks, (10, 12))


@settings(max_examples=50, deadline=None)
@given(st.integers(-50, 50), st.integers(-50, 50))
def test_a_click_is_accepted_exactly_inside_the_image(row, col):
    inside = 0 <= row < 10 and 0 <= col < 12
    try:
        check_clicks([Click(row, col, True)], (10, 12))
        assert inside
    except ValueError:
        assert not inside


def test_numpy_integer_clicks_are_accepted():
    check_clicks([Click(np.int64(3), np.int32(4), np.bool_(True))], (10, 12))


def predictors(tiny) -> list:
    """One of each predictor class, on a 10x12 image."""
    image = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    made = [GrabCutPredictor(), SingleNetPredictor(tiny, target_size=32), CascadePredictor(tiny, tiny, target_size=32,
                                                                                          coarse_size=32)]
    for predictor in made:
        predictor.set_image(image)
    return made


@pytest.mark.parametrize("clicks, message", [BAD_CLICKS[0], BAD_CLICKS[1], BAD_CLICKS[5], BAD_CLICKS[6]])
def test_every_predictor_refuses_bad_clicks(tiny, clicks, message):
    for predictor in predictors(tiny):
        with pytest.raises(ValueError, match=message):
            predictor.predict(clicks, None)


def test_every_predictor_refuses_an_empty_image(tiny):
    for predictor in predictors(tiny):
        with pytest.raises(ValueError, match="has no pixel"):
            predictor.set_image(np.zeros((0, 0, 3), np.uint8))


@pytest.mark.parametrize("size", [0, -400, 10**6])
def test_predictor_sizes_are_checked(tiny, size):
    with pytest.raises(ValueError, match="target_size must be an integer from 1 to 4096"):
        SingleNetPredictor(tiny, target_size=size)
    with pytest.raises(ValueError, match="coarse_size must be an integer from 1 to 4096"):
        CascadePredictor(tiny, tiny, coarse_size=size)
    with pytest.raises(ValueError, match="work_size must be an integer from 1 to 4096"):
        GrabCutPredictor(work_size=size)


@pytest.mark.parametrize("sizes", [{"target_size": 0}, {"coarse_size": -400}, {"target_size": 10**6}])
def test_load_predictor_refuses_unusable_sizes(tmp_path, tiny, sizes):
    from iseg.models import model_payload, save_checkpoint
    from iseg.predictor import load_predictor

    path = save_checkpoint(tmp_path / "tiny.pt", model_payload(tiny))
    for kwargs in ({"spec": str(path)}, {"spec": None, "coarse": path, "fine": path}):
        with pytest.raises(ValueError, match=r"_size must be an integer from 1 to 4096"):
            load_predictor(**kwargs, **sizes)


def test_a_cascade_refuses_swapped_stages(tmp_path, tiny):
    from iseg.models import CheckpointError, model_payload, save_checkpoint
    from iseg.predictor import load_predictor

    paths = {stage: save_checkpoint(tmp_path / f"{stage}.pt", model_payload(tiny, train_config={"stage": stage}))
             for stage in ("coarse", "fine")}
    assert load_predictor(None, coarse=paths["coarse"], fine=paths["fine"]) is not None
    with pytest.raises(CheckpointError, match=r"fine\.pt is a fine network .* given as the coarse one"):
        load_predictor(None, coarse=paths["fine"], fine=paths["coarse"])
