"""The batched on-device error clicks against OpenCV's: the same exact distances, the same click regions and slots."""

import cv2
import numpy as np
import pytest
import torch

from iseg.training.iterative import add_error_clicks_on_device, inner_distance_batch, next_error_click
from iseg.training.points_sampler import inner_distance


def random_masks(count: int, size=(61, 83), seed: int = 0) -> np.ndarray:
    """Ellipses, thin lines, specks and border-touching shapes."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((count, *size), bool)
    for b in range(count):
        m = np.zeros(size, np.uint8)
        for _ in range(int(rng.integers(1, 4))):
            center = (int(rng.integers(-10, size[1] + 10)), int(rng.integers(-10, size[0] + 10)))
            axes = (int(rng.integers(1, 40)), int(rng.integers(1, 40)))
            cv2.ellipse(m, center, axes, float(rng.integers(180)), 0, 360, 1, -1)
        cv2.line(m, (0, int(rng.integers(size[0]))), (size[1] - 1, int(rng.integers(size[0]))), 1, 1)
        masks[b] = m.astype(bool) ^ (rng.random(size) < 0.01)
    masks[0] = True  # the whole image: distances to the border only
    masks[1] = False
    return masks


def test_distances_equal_opencv_on_random_masks():
    masks = random_masks(12)
    ours = inner_distance_batch(torch.from_numpy(masks)).numpy()
    for mask, mine in zip(masks, ours):
        np.testing.assert_allclose(mine, inner_distance(mask), atol=1e-4)


def test_distances_equal_opencv_on_real_masks(shared_datasets):
    from iseg.data import load_dataset

    data = load_dataset("GrabCut")
    for i in range(0, 50, 10):
        mask = data[i].mask == 1
        ours = inner_distance_batch(torch.from_numpy(np.stack([mask, ~mask]))).numpy()
        np.testing.assert_allclose(ours[0], inner_distance(mask), atol=1e-3)
        np.testing.assert_allclose(ours[1], inner_distance(~mask), atol=1e-3)


def test_clicks_match_the_opencv_rule_sample_by_sample():
    gts = random_masks(10, seed=1).astype(np.int8)
    gts[3, :5] = -1  # ignored pixels are never errors
    preds = random_masks(10, seed=2)
    preds[4] = gts[4] == 1  # no error: left as it is
    points = torch.full((10, 6, 3), -1.0)
    points[:, 0] = torch.tensor([1.0, 1.0, 0.0])
    points[5, 3:] = torch.tensor([2.0, 2.0, 1.0])  # the negative half is full
    prob = torch.from_numpy(preds).float()[:, None]
    target = torch.from_numpy(gts).float()[:, None]
    for seed in range(3):
        out = add_error_clicks_on_device(prob, target, points, torch.Generator().manual_seed(seed))
        for b in range(10):
            reference = next_error_click(preds[b], gts[b], np.random.default_rng(seed))
            added = [k for k in range(6) if not torch.equal(out[b, k], points[b, k])]
            if reference is None or (b == 5 and not reference[2]):
                assert added == []
                continue
            _, _, positive = reference
            assert len(added) == 1 and (added[0] < 3) == positive  # the first free slot of its half
            assert added[0] == (1 if positive else 3)
            row, col, order = out[b, added[0]].tolist()
            assert order == 1 + points[b, :, 2].max().item()
            valid = gts[b] != -1
            error = ((gts[b] == 1) & ~preds[b] & valid) if positive else ((gts[b] == 0) & preds[b] & valid)
            dist = inner_distance(error)
            assert dist[int(row), int(col)] > dist.max() / 2  # in the reference's candidate region


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_clicks_stay_on_the_device():
    from iseg.training.iterative import add_error_clicks

    gt = torch.zeros(2, 1, 40, 40, device="cuda")
    gt[:, :, 10:30, 10:30] = 1
    points = torch.full((2, 4, 3), -1.0, device="cuda")
    out = add_error_clicks(torch.zeros_like(gt), gt, points, np.random.default_rng(0))
    assert out.device.type == "cuda" and (out[:, 0, 2] == 0).all() and (gt[0, 0, 10:30, 10:30] == 1).all()
