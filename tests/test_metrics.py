"""IoU, NoC/NoF and the mIoU curve against hand-worked values and the reference formulas."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iseg.metrics import clicks_to_reach, iou, miou_curve, noc


def reference_noc(all_ious, thr, max_clicks=20):
    """The reference formulas written out: argmax + 1 if reached, else max_clicks; failures count '== max'."""
    scores = np.array([np.argmax(a >= thr) + 1 if np.any(a >= thr) else max_clicks for a in all_ious])
    return scores.mean(), (scores == max_clicks).sum()


def test_iou_counts_only_non_ignored_pixels():
    gt = np.array([[1, 1, -1, 0], [0, 0, -1, 0]], np.int8)
    pred = np.array([[1, 0, 1, 1], [0, 0, 1, 0]], bool)
    assert iou(gt, pred) == pytest.approx(1 / 3)  # inter {(0,0)}, union {(0,0),(0,1),(0,3)}


def test_iou_custom_ignore_label():
    gt = np.array([[1, 255], [0, 0]])
    assert iou(gt, np.ones((2, 2), bool), ignore_label=255) == pytest.approx(1 / 3)


def test_iou_of_empty_union_is_one():
    gt = np.array([[0, -1], [0, 0]], np.int8)
    pred = np.array([[0, 1], [0, 0]], bool)
    assert iou(gt, pred) == 1.0


def test_iou_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        iou(np.zeros((2, 2)), np.zeros((3, 2), bool))


def test_noc_first_click_reaching_threshold():
    seqs = [np.array([0.5, 0.86, 0.91]), np.array([0.95])]
    assert noc(seqs, 0.85) == (1.5, 0)  # (2 + 1) / 2
    assert noc(seqs, 0.90) == (2.0, 0)  # (3 + 1) / 2


def test_noc_never_reached_is_max_and_a_failure():
    seqs = [np.full(20, 0.7), np.array([0.95])]
    assert noc(seqs, 0.9) == ((20 + 1) / 2, 1)


def test_reached_exactly_at_last_click_counts_as_failure_like_the_reference():
    seq = np.r_[np.full(19, 0.5), 0.93]
    assert clicks_to_reach(seq, 0.9) == 20
    assert noc([seq], 0.9) == (20.0, 1)


def test_noc_with_fewer_max_clicks_and_longer_sequence():
    seq = np.array([0.1, 0.2, 0.3, 0.95])
    assert clicks_to_reach(seq, 0.9, max_clicks=3) == 3  # only the first max_clicks IoUs count


def test_threshold_compared_in_float32_like_reference():
    assert clicks_to_reach([0.9 * (1 - 1e-9)], 0.9, max_clicks=5) == 1  # float32(iou) == float32(0.9)
    assert clicks_to_reach([9 / 10], 0.9, max_clicks=5) == 1


def test_miou_curve_carries_last_iou_forward():
    curve = miou_curve([np.array([0.5, 0.9]), np.array([0.2, 0.4, 0.6])], max_clicks=4)
    np.testing.assert_allclose(curve, [0.35, 0.65, 0.75, 0.75], rtol=1e-6)


def test_empty_inputs_are_rejected():
    with pytest.raises(ValueError, match="at least one sample"):
        noc([], 0.9)
    with pytest.raises(ValueError, match="non-empty"):
        noc([np.array([])], 0.9)


iou_seqs = st.lists(st.lists(st.floats(0, 1, width=32), min_size=1, max_size=20), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(seqs=iou_seqs, thr=st.sampled_from([0.8, 0.85, 0.9]))
def test_same_sequences_give_reference_noc_and_nof_to_the_last_digit(seqs, thr):
    arrays = [np.array(s, dtype=np.float32) for s in seqs]
    mean_noc, nof = noc(arrays, thr)
    ref_mean, ref_nof = reference_noc(arrays, thr)
    assert mean_noc == ref_mean
    assert nof == ref_nof
    assert all(1 <= clicks_to_reach(a, thr) <= 20 for a in arrays)
