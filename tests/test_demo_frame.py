"""Frames of the click demo: display size, mask styles, click markers, IFPN's intention."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from iseg.clicks import Click
from iseg.demo.controller import Intention, Snapshot
from iseg.demo.frame import MAX_HEIGHT, MAX_WIDTH, FrameRenderer, FrameStyle, display_scale, encode_jpeg
from iseg.inference.transforms import Roi


def state(prob=None, clicks=(), pending=(), intention=None):
    return Snapshot(list(clicks), list(pending), prob, intention, None)


def square(shape, top, left, bottom, right):
    prob = np.zeros(shape, np.float32)
    prob[top:bottom, left:right] = 1
    return prob


@pytest.mark.parametrize("shape, expected", [
    ((321, 481, 3), 1.0),  # a Berkeley photo: natural size, never upscaled
    ((100, 120, 3), 1.0),
    ((481, 321, 3), MAX_HEIGHT / 481),  # portrait: limited by the height
    ((1000, 1600, 3), min(MAX_WIDTH / 1600, MAX_HEIGHT / 1000)),
    ((300, 2000, 3), MAX_WIDTH / 2000),  # panorama: limited by the width
])
def test_display_scale_never_upscales_and_fits_the_limits(shape, expected):
    scale = display_scale(shape)
    assert scale == pytest.approx(expected)
    assert scale <= 1 and shape[0] * scale <= MAX_HEIGHT + 0.5 and shape[1] * scale <= MAX_WIDTH + 0.5


def test_the_image_is_resized_once_and_clicks_map_back():
    image = np.random.default_rng(0).integers(0, 256, (1000, 1600, 3), dtype=np.uint8)
    renderer = FrameRenderer(image, 0.5)
    assert renderer.base.shape == (500, 800, 3) and renderer.size == (500, 800)
    assert renderer.to_full(100, 50) == (100, 200)
    assert renderer.to_full(799.9, 499.9) == (999, 1599)  # inside the frame stays inside the image
    assert renderer.to_full(800, 10)[1] >= 1600  # just right of the frame stays outside
    frame = renderer.render(state())
    assert frame.shape == (500, 800, 3) and frame is not renderer.base
    np.testing.assert_array_equal(frame, renderer.base)
    natural = FrameRenderer(image[:300, :400], 1.0)
    assert natural.base is not None and natural.size == (300, 400)


def test_mask_fill_opacity_and_outline_only():
    image = np.full((60, 80, 3), 128, np.uint8)
    renderer = FrameRenderer(image, 1.0)
    prob = square((60, 80), 20, 20, 40, 60)
    filled = renderer.render(state(prob), FrameStyle(opacity=0.6))
    light = renderer.render(state(prob), FrameStyle(opacity=0.2))
    outlined = renderer.render(state(prob), FrameStyle(opacity=0.6, outline_only=True))
    inside, edge, outside = (30, 40), (20, 40), (5, 5)
    assert np.abs(filled[inside].astype(int) - 128).sum() > np.abs(light[inside].astype(int) - 128).sum() > 0
    np.testing.assert_array_equal(outlined[inside], image[inside])  # outline only: the object stays visible
    assert not np.array_equal(outlined[edge], image[edge])
    for frame in (filled, light, outlined):
        np.testing.assert_array_equal(frame[outside], image[outside])


def test_pending_clicks_are_drawn_before_any_mask():
    image = np.full((120, 160, 3), 128, np.uint8)
    renderer = FrameRenderer(image, 1.0)
    frame = renderer.render(state(None, pending=[Click(30, 20, True), Click(30, 60, False)]))
    red, green, blue = (int(v) for v in frame[30, 20])
    assert green > red + 50 and green > blue + 50
    red, green, blue = (int(v) for v in frame[30, 60])
    assert red > green + 50 and red > blue + 50
    done = renderer.render(state(None, clicks=[Click(30, 20, True)]))
    assert not np.array_equal(frame[30, 28], done[30, 28])  # a queued click wears a ring
    changed = (np.abs(frame.astype(int) - image).max(axis=2) > 20).mean()
    assert 0 < changed < 0.1


def test_intention_dims_outside_the_zoom_in_box_and_outlines_the_coarse_mask():
    image = np.full((60, 80, 3), 200, np.uint8)
    renderer = FrameRenderer(image, 1.0)
    coarse = square((60, 80), 25, 30, 35, 50)
    snapshot = state(np.zeros((60, 80), np.float32), [Click(30, 40, True)],
                     intention=Intention(coarse, Roi(15, 20, 45, 60)))
    plain = renderer.render(snapshot, FrameStyle())
    shown = renderer.render(snapshot, FrameStyle(intention=True))
    np.testing.assert_array_equal(plain[5, 5], image[5, 5])
    assert shown[5, 5].max() < 120  # outside the box: dimmed
    np.testing.assert_array_equal(shown[20, 40], image[20, 40])  # inside the box, outside the coarse mask
    assert not np.array_equal(shown[25, 40], image[25, 40])  # the coarse mask's outline
    assert not np.array_equal(shown[15, 25], image[15, 25])  # the box's border


def test_the_coarse_outline_is_drawn_over_the_mask_fill():
    from iseg.demo.frame import INTENTION_COLOR

    image = np.full((60, 80, 3), 200, np.uint8)
    renderer = FrameRenderer(image, 1.0)
    coarse = square((60, 80), 25, 30, 35, 50)
    snapshot = state(square((60, 80), 10, 10, 50, 70), [Click(5, 5, True)],
                     intention=Intention(coarse, Roi(5, 5, 55, 75)))
    shown = renderer.render(snapshot, FrameStyle(intention=True, opacity=1.0))
    assert tuple(shown[25, 40]) == INTENTION_COLOR  # the coarse outline inside the filled fine mask reads at once


def test_the_mask_follows_the_threshold():
    renderer = FrameRenderer(np.full((60, 80, 3), 200, np.uint8), 1.0)
    prob = np.zeros((60, 80), np.float32)
    prob[10:30, 10:30] = 0.6
    low, high = (renderer.render(state(prob), FrameStyle(opacity=1.0, threshold=t)) for t in (0.49, 0.7))
    assert not np.array_equal(low[20, 20], np.full(3, 200)) and np.array_equal(high[20, 20], np.full(3, 200))


def test_zoom_keeps_the_point_under_the_pointer_and_clicks_map_to_their_pixel():
    image = np.zeros((100, 200, 3), np.uint8)
    image[40:60, 120:140] = 255                                # a white square
    renderer = FrameRenderer(image, 0.5)                       # a 50 x 100 frame of the whole image
    assert renderer.to_full(65, 25) == (50, 130)
    renderer.zoom_at(65, 25, 4.0)                              # 2 frame px per image px around (50, 130)
    assert renderer.zoom == 4.0 and renderer.to_full(65, 25) == (50, 130)
    assert renderer.to_full(66, 25) == (50, 130) and renderer.to_full(67, 25) == (50, 131)   # finer than before
    frame = renderer.render(state(clicks=[Click(50, 130, True)]), FrameStyle())
    x, y = renderer.to_display(50.5, 130.5)
    assert (x, y) == (66, 26) and frame[y, x, 1] > 150 and frame[y, x, 0] < 100       # the positive marker
    assert frame[20, 60].min() > 200 and frame[45, 5].max() == 0                       # the square, magnified
    renderer.pan(0.0, 10.0)                                    # far to the right: stops at the image's edge
    assert renderer.left == 150 and renderer.to_full(99, 49) == (62, 199)
    renderer.zoom_at(0, 0, 100.0)
    assert renderer.zoom == 8.0                                # at most 8x
    renderer.fit()
    assert renderer.zoom == 1.0 and renderer.to_full(65, 25) == (50, 130)


def test_encode_jpeg_round_trip():
    frame = np.zeros((30, 40, 3), np.uint8)
    frame[..., 0] = 200
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(encode_jpeg(frame), np.uint8), cv2.IMREAD_COLOR),
                           cv2.COLOR_BGR2RGB)
    assert decoded.shape == (30, 40, 3) and abs(int(decoded[15, 20, 0]) - 200) < 5
