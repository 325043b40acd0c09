"""Unit tests of iseg.training: augmentation, click sampler, iterative clicks, losses, cascade helpers, config."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from iseg.clicks import Click
from iseg.data import Sample
from iseg.models import build_model
from iseg.training import load_config, list_configs, parse_overrides
from iseg.training.augment import Augmentation
from iseg.training.cascade import choose_crop, crop, force_aspect, map_points, paste
from iseg.training.data import MixSampler, held_out, parse_data_arg
from iseg.training.iterative import add_error_clicks, next_error_click
from iseg.training.losses import binary_cross_entropy, normalized_focal_loss
from iseg.training.points_sampler import MultiPointSampler, clicks_to_points, inner_distance, points_to_clicks


def disk_sample(shape=(120, 160), centre=(60, 80), radius=25, with_objects=True) -> Sample:
    """An image whose red channel is 255 exactly on a disk object; a second object (square) in `objects`."""
    rows, cols = np.mgrid[:shape[0], :shape[1]]
    disk = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius ** 2
    mask = disk.astype(np.int8)
    mask[:3] = -1
    image = np.zeros((*shape, 3), np.uint8)
    image[..., 0] = disk * 255
    objects = None
    if with_objects:
        objects = disk.astype(np.int32)
        objects[5:25, 5:25] = 2
        objects[:3] = -1
    return Sample(image=image, mask=mask, id="t/disk", objects=objects)


# augmentation

def test_augmentation_keeps_image_and_mask_aligned():
    aug = Augmentation(crop_size=(64, 96), scale_range=(1.0, 1.0), brightness_contrast_prob=0, rgb_shift_prob=0)
    for seed in range(10):
        out = aug(disk_sample(), np.random.default_rng(seed))
        assert out.image.shape == (64, 96, 3) and out.image.dtype == np.uint8
        assert out.mask.shape == (64, 96) and out.mask.dtype == np.int8
        assert out.objects.shape == (64, 96)
        valid = out.mask != -1
        np.testing.assert_array_equal((out.image[..., 0] == 255)[valid], (out.mask == 1)[valid])
        np.testing.assert_array_equal(out.objects == 1, out.mask == 1)


def test_augmentation_rescale_mostly_aligned_and_object_survives():
    aug = Augmentation(crop_size=(64, 96), brightness_contrast_prob=0, rgb_shift_prob=0, min_object_pixels=50)
    small = disk_sample(shape=(300, 400), centre=(250, 350), radius=8)
    for seed in range(10):
        out = aug(small, np.random.default_rng(seed))
        assert (out.mask == 1).sum() >= 50
        valid = out.mask != -1
        agree = ((out.image[..., 0] > 127) == (out.mask == 1))[valid].mean()
        assert agree > 0.97


def test_augmentation_pads_with_ignore_and_black():
    aug = Augmentation(crop_size=(64, 96), scale_range=(1.0, 1.0), flip_prob=0, brightness_contrast_prob=0,
                       rgb_shift_prob=0)
    out = aug(disk_sample(shape=(40, 50), centre=(20, 25), radius=10), np.random.default_rng(0))
    assert out.mask.shape == (64, 96)
    assert (out.mask[40:] == -1).all() and (out.mask[:, 50:] == -1).all()
    assert (out.objects[40:] == -1).all()
    assert (out.image[40:] == 0).all()


def test_augmentation_colour_changes_pixels_within_limits():
    aug = Augmentation(crop_size=(40, 50), scale_range=(1.0, 1.0), flip_prob=0, brightness_contrast_prob=1,
                       rgb_shift_prob=1)
    sample = Sample(image=np.full((40, 50, 3), 128, np.uint8), mask=np.zeros((40, 50), np.int8), id="t/grey")
    out = aug(sample, np.random.default_rng(3))
    assert np.abs(out.image.astype(int) - 128).max() <= 128 * 0.25 + 0.25 * 255 + 10 + 1
    assert len(np.unique(out.image.reshape(-1, 3), axis=0)) == 1
    assert not np.array_equal(out.image, sample.image)


def test_augmentation_long_side_scales_relative_to_the_whole_image():
    aug = Augmentation(crop_size=(300, 400), scale_range=(1.0, 1.0), long_side=100, flip_prob=0,
                       brightness_contrast_prob=0, rgb_shift_prob=0)
    out = aug(disk_sample(shape=(300, 400), centre=(150, 200), radius=80), np.random.default_rng(0))
    # the 300x400 image became 75x100, the rest of the crop is padding
    assert (out.mask[75:] == -1).all() and (out.mask[:, 100:] == -1).all() and (out.mask[5:75, :100] != -1).all()
    assert (out.mask == 1).sum() == pytest.approx(math.pi * 20 ** 2, rel=0.1)


def test_augmentation_is_deterministic():
    aug = Augmentation(crop_size=(64, 96))
    a, b = (aug(disk_sample(), np.random.default_rng(7)) for _ in range(2))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask, b.mask)


# points sampler

def split(points: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Valid positive and negative rows of a (2P, 3) array."""
    pos, neg = points[:p], points[p:]
    return pos[pos[:, 0] >= 0], neg[neg[:, 0] >= 0]


def test_sampler_points_inside_object_and_background():
    sample = disk_sample()
    sampler = MultiPointSampler(max_num_points=24, merge_objects_prob=0)
    dist = inner_distance(sample.mask == 1)
    for seed in range(30):
        points, target, single = sampler(sample.mask, sample.objects, np.random.default_rng(seed))
        assert not single
        assert points.shape == (48, 3) and points.dtype == np.float32
        np.testing.assert_array_equal(target, sample.mask)
        pos, neg = split(points, 24)
        assert len(pos) >= 1
        assert all(target[int(r), int(c)] == 1 for r, c, _ in pos)
        assert all(target[int(r), int(c)] == 0 for r, c, _ in neg)
        first = points[0]
        assert first[2] == 0 and dist[int(first[0]), int(first[1])] > dist.max() / 1.7
        orders = np.concatenate([pos[:, 2], neg[:, 2]])
        np.testing.assert_array_equal(np.sort(orders), np.arange(len(orders)))


def test_sampler_padding_layout_and_determinism():
    sample = disk_sample()
    sampler = MultiPointSampler(max_num_points=5)
    for seed in range(20):
        points, _, _ = sampler(sample.mask, sample.objects, np.random.default_rng(seed))
        for half in (points[:5], points[5:]):
            used = half[:, 0] >= 0
            assert not (np.diff(used.astype(int)) > 0).any(), "empty rows must come after used ones"
            assert (half[~used] == -1).all()
    a, _, _ = sampler(sample.mask, sample.objects, np.random.default_rng(11))
    b, _, _ = sampler(sample.mask, sample.objects, np.random.default_rng(11))
    np.testing.assert_array_equal(a, b)


def test_sampler_count_distribution_decays():
    sampler = MultiPointSampler(max_num_points=24, prob_gamma=0.8, merge_objects_prob=0)
    rng = np.random.default_rng(0)
    counts = [sampler._count(1, rng) for _ in range(4000)]
    freq = np.bincount(counts, minlength=4)[1:4] / len(counts)
    assert freq[0] > freq[1] > freq[2]
    assert freq[1] / freq[0] == pytest.approx(0.8, abs=0.08)


def test_sampler_merges_another_object_with_its_own_first_click():
    sample = disk_sample()
    sampler = MultiPointSampler(merge_objects_prob=1.0)
    square = sample.objects == 2
    for seed in range(20):
        points, target, _ = sampler(sample.mask, sample.objects, np.random.default_rng(seed))
        assert (target[square] == 1).all()
        assert (target[sample.mask == 1] == 1).all()
        pos, _ = split(points, 24)
        in_square = [square[int(r), int(c)] for r, c, _ in pos]
        in_disk = [sample.mask[int(r), int(c)] == 1 for r, c, _ in pos]
        assert any(in_square) and any(in_disk), "every merged object gets a first click"
        square_dist = inner_distance(square)
        assert any(square_dist[int(r), int(c)] > square_dist.max() / 1.7 for r, c, _ in pos)


def test_sampler_single_click_samples():
    sample = disk_sample()
    sampler = MultiPointSampler(single_click_prob=1.0, merge_objects_prob=1.0)
    dist = inner_distance(sample.mask == 1)
    for seed in range(10):
        points, target, single = sampler(sample.mask, sample.objects, np.random.default_rng(seed))
        pos, neg = split(points, 24)
        assert single and len(pos) == 1 and len(neg) == 0
        np.testing.assert_array_equal(target, sample.mask)  # nothing merged
        assert dist[int(pos[0, 0]), int(pos[0, 1])] > dist.max() / 1.7
    shares = [MultiPointSampler(single_click_prob=0.3)(sample.mask, sample.objects, np.random.default_rng(s))[2]
              for s in range(400)]
    assert np.mean(shares) == pytest.approx(0.3, abs=0.07)


def test_sampler_erosion_is_decided_per_object():
    sample = disk_sample(radius=30)
    obj = sample.mask == 1
    eroded = cv2.erode(obj.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=3) > 0
    always = MultiPointSampler(merge_objects_prob=0, positive_erode_prob=1.0, prob_gamma=0.99)
    never = MultiPointSampler(merge_objects_prob=0, positive_erode_prob=0.0, prob_gamma=0.99)
    outside = {"always": 0, "never": 0}
    for seed in range(30):
        for name, sampler in (("always", always), ("never", never)):
            pos, _ = split(sampler(sample.mask, sample.objects, np.random.default_rng(seed))[0], 24)
            outside[name] += sum(not eroded[int(r), int(c)] for r, c, _ in pos[1:])
    assert outside["always"] == 0 and outside["never"] > 0


def test_sampler_other_objects_strategy_falls_back_to_the_whole_background():
    """As RITM's: with no other object, "other" negatives come from anywhere in the background, not the border."""
    sample = disk_sample(with_objects=False)
    sampler = MultiPointSampler(max_num_points=6, prob_gamma=1.0, negative_probs=(0.0, 1.0, 0.0))
    ring = sampler._border(sample.mask == 1)
    negatives = []
    for seed in range(40):
        points, _, _ = sampler(sample.mask, None, np.random.default_rng(seed))
        negatives += [(int(r), int(c)) for r, c, _ in points[6:] if r != -1]
    assert negatives and all(sample.mask[r, c] == 0 for r, c in negatives)
    outside_ring = sum(not ring[r, c] for r, c in negatives) / len(negatives)
    assert outside_ring > 0.5  # the ring is a small part of the background: uniform draws mostly miss it


def test_fine_crops_keep_the_longer_side_of_every_roi():
    crops = load_config("fine_cpu").fine_crops
    assert crops == [(224, 336), (336, 336), (336, 224)]
    assert choose_crop((0, 0, 100, 300), crops) == (224, 336)   # wide: grows its height to 2:3
    assert choose_crop((0, 0, 100, 120), crops) == (336, 336)   # nearly square: a landscape crop would shrink it
    assert choose_crop((0, 0, 100, 80), crops) == (336, 336)
    assert choose_crop((0, 0, 300, 100), crops) == (336, 224)   # tall: portrait, at the scale it is served at
    assert choose_crop((0, 0, 300, 100), [(224, 336)]) == (224, 336)  # one crop: every ROI forced into it
    assert load_config("fine_cpu", {"fine_aspects": None, "fine_crop": [64, 96]}).fine_crops == [(64, 96)]
    with pytest.raises(ValueError, match="fine_aspects"):
        load_config("fine_cpu", {"fine_aspects": [0]})


def test_sampler_rejects_bad_settings():
    with pytest.raises(ValueError, match="max_num_points"):
        MultiPointSampler(max_num_points=0)
    with pytest.raises(ValueError, match="single_click_prob"):
        MultiPointSampler(single_click_prob=1.5)


def test_clicks_points_round_trip():
    clicks = [Click(3, 4, True), Click(5, 6, False), Click(7, 8, True)]
    points = clicks_to_points(clicks, 4)
    np.testing.assert_array_equal(points[:2], [[3, 4, 0], [7, 8, 2]])
    np.testing.assert_array_equal(points[4], [5, 6, 1])
    assert points_to_clicks(points) == clicks


# iterative clicks

def test_error_click_goes_to_inner_part_of_larger_error():
    gt = np.zeros((40, 40), np.int8)
    gt[5:35, 5:35] = 1
    pred = np.zeros((40, 40), bool)
    pred[5:35, 5:15] = True
    pred[0:2, 0:2] = True
    for seed in range(10):
        row, col, positive = next_error_click(pred, gt, np.random.default_rng(seed))
        assert positive and 15 <= col < 35 and gt[row, col] == 1
        fn = inner_distance((gt == 1) & ~pred)
        assert fn[row, col] > fn.max() / 2
    assert next_error_click(gt == 1, gt, np.random.default_rng(0)) is None


def test_error_clicks_fill_the_first_free_slot_in_batch():
    gt = torch.zeros(2, 1, 20, 20)
    gt[0, :, 5:15, 5:15] = 1
    prob = torch.zeros(2, 1, 20, 20)
    prob[1, :, 2:18, 2:18] = 0.9
    points = torch.full((2, 6, 3), -1.0)
    points[:, 0] = torch.tensor([10.0, 10.0, 0.0])
    out = add_error_clicks(prob, gt, points, np.random.default_rng(0))
    assert out[0, 1, 2] == 1 and gt[0, 0, int(out[0, 1, 0]), int(out[0, 1, 1])] == 1
    assert (out[0, 3:] == -1).all()
    assert out[1, 3, 2] == 1 and prob[1, 0, int(out[1, 3, 0]), int(out[1, 3, 1])] > 0.5
    assert (out[1, 1:3] == -1).all()


# losses

def test_nfl_single_valid_pixel_hand_value():
    logits = torch.zeros(1, 1, 1, 2)
    target = torch.tensor([[[[1.0, -1.0]]]])
    # p = 0.5, p_t = 0.5, beta = 0.25, rescale = 1 / 0.25, alpha = 0.5: 0.5 * 0.25 * 4 * ln 2
    assert normalized_focal_loss(logits, target).item() == pytest.approx(0.5 * math.log(2), rel=1e-5)


def test_nfl_two_pixels_hand_value_and_ignore():
    logits = torch.tensor([[[[0.0, 2.0, 5.0]]]], requires_grad=True)
    target = torch.tensor([[[[1.0, 0.0, -1.0]]]])
    p = 1 / (1 + math.exp(-2))
    pt = [0.5, 1 - p]
    beta = [(1 - t) ** 2 for t in pt]
    scale = 2 / sum(beta)
    expected = -(0.5 * beta[0] * scale * math.log(pt[0]) + 0.5 * beta[1] * scale * math.log(pt[1])) / 2
    loss = normalized_focal_loss(logits, target)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert logits.grad[0, 0, 0, 2] == 0
    changed = logits.detach().clone()
    changed[..., 2] = -7.0
    assert normalized_focal_loss(changed, target).item() == pytest.approx(expected, rel=1e-5)


def test_bce_ignores_ignore_pixels():
    logits = torch.tensor([[[[0.3, -1.2, 4.0]]]])
    target = torch.tensor([[[[1.0, 0.0, -1.0]]]])
    expected = F.binary_cross_entropy_with_logits(logits[..., :2], target[..., :2])
    assert binary_cross_entropy(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)


# stage-2 crop helpers

def test_force_aspect_inside_image():
    for box in [(10, 10, 20, 60), (0, 0, 100, 10), (90, 140, 100, 150), (0, 0, 100, 150)]:
        top, left, bottom, right = force_aspect(box, 2 / 3, (100, 150))
        assert 0 <= top < bottom <= 100 and 0 <= left < right <= 150
        assert (bottom - top) / (right - left) == pytest.approx(2 / 3, abs=0.02)
        assert top <= box[0] or bottom - top == 100
        assert left <= box[1] or right - left == 150


def test_map_points_drops_outside_and_scales():
    points = torch.tensor([[[10.0, 20.0, 0.0], [90.0, 5.0, 2.0], [-1, -1, -1], [15.0, 40.0, 1.0]]])
    out = map_points(points, [(10, 20, 30, 60)], (40, 80))
    assert out[0, 0].tolist() == [1.0, 1.0, 0.0]
    assert (out[0, 1] == -1).all()
    assert out[0, 2].tolist() == [11.0, 41.0, 1.0]


def test_crop_and_paste_full_box_is_identity():
    prob = torch.rand(2, 1, 12, 18)
    boxes = [(0, 0, 12, 18), (0, 0, 12, 18)]
    torch.testing.assert_close(paste(crop(prob, boxes, (12, 18), "bilinear"), boxes, (12, 18)), prob)
    mask = torch.zeros(1, 1, 12, 18)
    mask[..., 3:6, 4:10] = 1
    cropped = crop(mask, [(3, 4, 6, 10)], (6, 12), "nearest")
    assert (cropped == 1).all()
    assert paste(torch.ones(1, 1, 6, 12), [(3, 4, 6, 10)], (12, 18)).sum() == 18


# config and data mix

def test_packaged_configs_load_and_build_their_models():
    assert {"coarse_paper", "fine_paper", "coarse_cpu", "fine_cpu", "smoke"} <= set(list_configs())
    for name in list_configs():
        cfg = load_config(name)
        model = build_model(cfg.model, pretrained=None, **cfg.model_overrides)
        assert model.config.name and cfg.to_dict()["augment"]["crop_size"] == list(cfg.augment.crop_size)
    paper = load_config("coarse_paper")
    assert (paper.batch_size, paper.lr, paper.epochs, paper.milestones) == (32, 5e-4, 55, (50, 53))
    assert load_config("fine_paper").lr == 5e-5


def test_config_overrides_and_errors():
    cfg = load_config("smoke", parse_overrides(["lr=1e-4", "augment.crop_size=[32, 48]", "data={COCO_MVal: 2}",
                                                "sampler={single_click_prob: 0.5}"]))
    assert cfg.lr == 1e-4 and cfg.crop_size == (32, 48) and cfg.data == {"COCO_MVal": 2}
    assert cfg.sampler.single_click_prob == 0.5 and cfg.sampler.max_num_points == 6  # merged into the YAML's
    assert isinstance(cfg.augment, Augmentation) and isinstance(cfg.sampler, MultiPointSampler)
    with pytest.raises(ValueError, match="unknown training config key.*'lrr'"):
        load_config("smoke", {"lrr": 1})
    with pytest.raises(ValueError, match="unknown key.*'crop'.*'augment'"):
        load_config("smoke", {"augment.crop": [1, 2]})
    with pytest.raises(ValueError, match="crop_size"):
        load_config("smoke", {"augment.crop_size": [0, 0]})
    with pytest.raises(ValueError, match="coarse_size.*>= 1"):
        load_config("smoke", {"coarse_size": 0})
    with pytest.raises(FileNotFoundError, match="no training config named 'nope'"):
        load_config("nope")
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["lr"])


def test_parse_data_arg():
    assert parse_data_arg("COCO_MVal:1,BSDS500:0.5") == {"COCO_MVal": 1.0, "BSDS500": 0.5}
    assert parse_data_arg("folder=/data/x,GrabCut") == {"folder=/data/x": 1.0, "GrabCut": 1.0}
    with pytest.raises(ValueError, match="numeric weight"):
        parse_data_arg("COCO_MVal:abc")


def test_held_out_is_by_id_and_stable():
    ids = [f"D/{k}" for k in range(50)]
    picked = held_out(ids, 5)
    assert len(set(picked)) == 5
    assert held_out(list(reversed(ids)), 5) == [49 - j for j in picked]


def test_mix_sampler_weights_shards_and_epochs():
    sampler = MixSampler([10, 1000], [3.0, 1.0], samples_per_epoch=4000, seed=0)
    keys = list(sampler)
    share = np.mean([d == 0 for _, _, d, _ in keys])
    assert share == pytest.approx(0.75, abs=0.03)
    assert all(j < (10, 1000)[d] for _, _, d, j in keys)
    shards = [list(MixSampler([10, 1000], [3.0, 1.0], 4000, 0, rank=r, world_size=2)) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == sorted(keys)
    sampler.set_epoch(2)
    assert list(sampler) != keys


def test_a_training_set_made_only_of_protected_photos_is_an_error_naming_it(tmp_path):
    from iseg.data import load_dataset
    from iseg.data.overlap import dataset_fingerprints
    from iseg.training.data import without_photos

    from test_training_helpers import make_folder_dataset

    dataset = load_dataset("folder", make_folder_dataset(tmp_path / "ds", count=3), per_instance=False)
    with pytest.raises(ValueError, match="training set GrabCut-like: every one of its 3 image"):
        without_photos(dataset, [dataset_fingerprints(dataset)], "training set GrabCut-like")
