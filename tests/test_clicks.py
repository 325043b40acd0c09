"""The evaluation click simulator, rule by rule on hand-worked masks, and properties on random masks."""

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from iseg.clicks import Click, Clicker


def reference_click(gt: np.ndarray, pred: np.ndarray, clicked: list[tuple[int, int]]) -> Click:
    """The protocol's formulas written out literally (np.where order, explicit padding), for comparison."""
    obj, valid = gt == 1, gt != -1
    fn = np.logical_and(np.logical_and(obj, np.logical_not(pred)), valid)
    fp = np.logical_and(np.logical_and(np.logical_not(obj), pred), valid)
    not_clicked = np.ones(gt.shape, dtype=bool)
    for r, c in clicked:
        not_clicked[r, c] = False
    dts = []
    for region in (fn, fp):
        padded = np.pad(region, ((1, 1), (1, 1)), "constant").astype(np.uint8)
        dts.append(cv2.distanceTransform(padded, cv2.DIST_L2, 0)[1:-1, 1:-1] * not_clicked)
    fn_dt, fp_dt = dts
    positive = fn_dt.max() > fp_dt.max()
    dt = fn_dt if positive else fp_dt
    rows, cols = np.where(dt == dt.max())
    return Click(int(rows[0]), int(cols[0]), bool(positive))


def test_first_click_is_centre_of_square_object():
    gt = np.zeros((7, 7), np.int8)
    gt[1:6, 1:6] = 1
    click = Clicker(gt).make_next_click(np.zeros_like(gt, dtype=bool))
    assert click == Click(3, 3, True)


def test_border_counts_as_outside_thanks_to_padding():
    # The object fills the image: only the zero padding gives the distance transform a background.
    gt = np.ones((5, 5), np.int8)
    click = Clicker(gt).make_next_click(np.zeros_like(gt, dtype=bool))
    assert click == Click(2, 2, True)


def test_first_pixel_in_row_major_order_wins():
    gt = np.zeros((4, 6), np.int8)
    gt[1:3, 1:5] = 1  # 2x4 block: distance 1 everywhere inside
    click = Clicker(gt).make_next_click(np.zeros_like(gt, dtype=bool))
    assert click == Click(1, 1, True)


def test_tie_between_fn_and_fp_gives_negative():
    gt = np.zeros((5, 9), np.int8)
    gt[2, 1] = 1  # one missed object pixel: FN distance 1
    pred = np.zeros_like(gt, dtype=bool)
    pred[2, 6] = True  # one wrong pixel: FP distance 1
    assert Clicker(gt).make_next_click(pred) == Click(2, 6, False)


def test_larger_fp_region_gives_negative_click():
    gt = np.zeros((9, 9), np.int8)
    gt[0, 0] = 1
    pred = np.zeros_like(gt, dtype=bool)
    pred[2:7, 2:7] = True
    assert Clicker(gt).make_next_click(pred) == Click(4, 4, False)


def test_ignore_pixels_are_never_errors():
    gt = np.full((5, 5), -1, np.int8)
    gt[2, 2] = 1
    pred = np.ones_like(gt, dtype=bool)  # wrong everywhere, but only ignored pixels are wrong
    pred[2, 2] = False
    assert Clicker(gt).make_next_click(pred) == Click(2, 2, True)


def test_ignored_pixels_bound_the_error_region():
    gt = np.zeros((5, 9), np.int8)
    gt[:, 4:] = -1  # predicted everywhere: the FP region is only the 5x4 block left of the ignored part
    click = Clicker(gt).make_next_click(np.ones_like(gt, dtype=bool))
    assert click == Click(1, 1, False)  # max distance 2, first reached at (1, 1); (2, 2) would be 3 without ignore


def test_clicked_pixel_has_zero_distance():
    gt = np.zeros((7, 7), np.int8)
    gt[1:6, 1:6] = 1
    clicker = Clicker(gt)
    empty = np.zeros_like(gt, dtype=bool)
    first = clicker.make_next_click(empty)
    second = clicker.make_next_click(empty)  # same prediction: the centre is taken, next best is distance 2
    assert first == Click(3, 3, True)
    assert second == Click(2, 2, True)
    assert clicker.clicks == [first, second]


def test_empty_error_regions_click_negative_at_origin():
    gt = np.zeros((4, 4), np.int8)
    gt[1:3, 1:3] = 1
    clicker = Clicker(gt)
    assert clicker.make_next_click(gt == 1) == Click(0, 0, False)
    assert clicker.make_next_click(gt == 1) == Click(0, 0, False)  # again: (0, 0) is still the first max (0)


def test_all_error_pixels_clicked_falls_back_to_origin():
    gt = np.zeros((3, 3), np.int8)
    gt[1, 1] = 1
    clicker = Clicker(gt)
    empty = np.zeros_like(gt, dtype=bool)
    assert clicker.make_next_click(empty) == Click(1, 1, True)
    assert clicker.make_next_click(empty) == Click(0, 0, False)


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        Clicker(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match=r"\(3, 3\).*\(2, 2\)"):
        Clicker(np.zeros((2, 2))).make_next_click(np.zeros((3, 3), bool))


masks = arrays(np.int8, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.sampled_from([-1, 0, 1]))


@settings(max_examples=150, deadline=None)
@given(gt=masks, seed=st.integers(0, 2**16), n_clicks=st.integers(1, 4))
def test_matches_reference_formulas_and_lands_in_larger_error_region(gt, seed, n_clicks):
    rng = np.random.default_rng(seed)
    clicker = Clicker(gt)
    clicked = []
    for _ in range(n_clicks):
        pred = rng.random(gt.shape) < 0.5
        expected = reference_click(gt, pred, clicked)
        click = clicker.make_next_click(pred)
        assert click == expected
        clicked.append((click.row, click.col))
        fn = (gt == 1) & ~pred
        fp = (gt == 0) & pred
        if click != Click(0, 0, False):
            assert gt[click.row, click.col] != -1
            assert (fn if click.is_positive else fp)[click.row, click.col]
            assert clicked.count((click.row, click.col)) == 1
