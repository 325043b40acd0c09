"""The training loop on CPU with the tiny network: learning, resume equivalence, the frozen coarse net of stage 2."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from iseg.clicks import Clicker
from iseg.data import load_dataset
from iseg.metrics import iou
from iseg.models import build_model, load_checkpoint
from iseg.training import train
from iseg.training.data import resize_long_side
from iseg.training.losses import instance_loss
from iseg.training.points_sampler import clicks_to_points
from iseg.training.cascade import cascade
from iseg.training.trainer import batch_loss, build_networks
from test_training_helpers import as_stage, tiny_config


pytestmark = pytest.mark.usefixtures("one_thread")


def test_tiny_network_overfits_one_grabcut_sample():
    torch.manual_seed(0)
    sample = resize_long_side(load_dataset("GrabCut")[0], 96)
    clicker = Clicker(sample.mask)
    clicker.make_next_click(np.zeros(sample.mask.shape, bool))
    points = torch.from_numpy(clicks_to_points(clicker.clicks, 4))[None]
    image = torch.from_numpy(sample.image).permute(2, 0, 1)[None].float() / 255
    gt = torch.from_numpy(sample.mask)[None, None].float()
    prev = torch.zeros_like(gt)
    net = build_model("ifpn_tiny")
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    best = 0.0
    for step in range(1, 301):
        net.train()
        loss = instance_loss(net(image, points, prev), gt)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 25 == 0:
            net.eval()
            with torch.no_grad():
                pred = torch.sigmoid(net(image, points, prev)["instances"])[0, 0].numpy() > 0.49
            best = max(best, iou(sample.mask, pred))
            if best > 0.9:
                break
    assert best > 0.9


def weights(path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def test_interrupt_and_resume_equals_uninterrupted_run(tmp_path):
    full = train(tiny_config(tmp_path / "a", epochs=4), tmp_path / "a" / "run", progress=False)
    cfg = tiny_config(tmp_path / "b", epochs=2)
    part = train(cfg, tmp_path / "b" / "run", progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, part, progress=False)
    cfg.epochs = 4
    train(cfg, part, resume=True, progress=False)
    a, b = weights(full / "checkpoints" / "last.pt"), weights(part / "checkpoints" / "last.pt")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    rows = [(part / "metrics.csv").read_text().splitlines(), (full / "metrics.csv").read_text().splitlines()]
    assert len(rows[0]) == 5
    for x, y in zip(*rows):
        assert x.split(",")[:4] == y.split(",")[:4]
    state = load_checkpoint(part / "checkpoints" / "last.pt")
    assert state["epoch"] == 4 and set(state["rng"]) == {"torch", "numpy", "python"}
    assert sorted(p.name for p in (part / "checkpoints").iterdir()) == [
        "best.pt", "epoch_001.pt", "epoch_002.pt", "epoch_003.pt", "epoch_004.pt", "last.pt"]


def test_worker_processes_give_the_same_run(tmp_path):
    runs = [train(tiny_config(tmp_path / f"w{n}", epochs=1, num_workers=n), tmp_path / f"w{n}" / "run",
                  progress=False) for n in (0, 2)]
    a, b = (weights(run / "checkpoints" / "last.pt") for run in runs)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_stage2_frozen_coarse_gets_no_gradient(tmp_path):
    coarse_run = train(tiny_config(tmp_path, epochs=1), tmp_path / "coarse", progress=False)
    cfg = tiny_config(tmp_path / "f", stage="fine", coarse_checkpoint=str(coarse_run / "checkpoints" / "last.pt"))
    fine, coarse = build_networks(cfg, torch.device("cpu"))
    assert not coarse.training and not any(p.requires_grad for p in coarse.parameters())
    before = {k: v.clone() for k, v in coarse.state_dict().items()}
    image = torch.rand(2, 3, *cfg.crop_size)
    gt = torch.zeros(2, 1, *cfg.crop_size)
    gt[:, :, 20:40, 30:60] = 1
    points = torch.full((2, 2 * cfg.sampler.max_num_points, 3), -1.0)
    points[:, 0] = torch.tensor([30.0, 45.0, 0.0])
    loss = batch_loss(fine, coarse, image, gt, points, torch.zeros_like(gt), cfg)
    loss.backward()
    assert all(p.grad is None for p in coarse.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in fine.parameters())
    for key, value in coarse.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_validation_is_the_evaluation_of_the_checkpoint(tmp_path):
    """The trainer's validation numbers are those of `iseg.evaluate` on the same checkpoint and samples."""
    from iseg.evaluation import evaluate
    from iseg.predictor import load_predictor
    from iseg.training.data import build_data

    cfg = tiny_config(tmp_path, epochs=1, val_size=2, val_clicks=3)
    coarse_run = train(cfg, tmp_path / "coarse", progress=False)
    fine_cfg = tiny_config(tmp_path / "f", stage="fine", epochs=1, val_size=2, val_clicks=3,
                           coarse_checkpoint=str(coarse_run / "checkpoints" / "best.pt"))
    fine_run = train(fine_cfg, tmp_path / "fine", progress=False)
    _, _, samples = build_data(fine_cfg)
    for run, predictor in [
        (coarse_run, load_predictor(str(coarse_run / "checkpoints" / "best.pt"), flip=False)),
        (fine_run, load_predictor(None, coarse=coarse_run / "checkpoints" / "best.pt",
                                  fine=fine_run / "checkpoints" / "best.pt", flip=False)),
    ]:
        result = evaluate(predictor, samples, max_clicks=3, stop_early=False, progress=False)
        row = pd.read_csv(run / "metrics.csv").iloc[-1]
        np.testing.assert_allclose([row[f"val_miou@{k}"] for k in (1, 2, 3)], result.curve(), atol=1e-5)
        assert row["val_score"] == pytest.approx(result.score(), abs=1e-5)


def test_checkpoints_record_the_input_sizes_and_predictors_use_them(tmp_path):
    from iseg.inference import CascadePredictor, SingleNetPredictor
    from iseg.predictor import load_predictor

    run = train(tiny_config(tmp_path, epochs=1, coarse_size=80, fine_size=72), tmp_path / "run", progress=False)
    best = run / "checkpoints" / "best.pt"
    assert load_checkpoint(best)["input_sizes"] == {"coarse": 80, "fine": 72}
    single = load_predictor(str(best))
    assert isinstance(single, SingleNetPredictor) and (single.image_size, single.target_size) == (80, 72)
    fine = as_stage(best, "fine", tmp_path / "fine.pt")
    cascade = load_predictor(None, coarse=best, fine=fine)
    assert isinstance(cascade, CascadePredictor) and (cascade.coarse_size, cascade.target_size) == (80, 72)
    told = load_predictor(None, coarse=best, fine=fine, target_size=600, coarse_size=500)
    assert (told.coarse_size, told.target_size) == (500, 600)


def test_one_click_samples_get_no_iterative_clicks():
    from iseg.training.config import load_config
    from iseg.training.trainer import iterative_clicks

    cfg = load_config("smoke")
    net = build_model("ifpn_tiny").eval()
    image = torch.rand(2, 3, 64, 96)
    gt = torch.zeros(2, 1, 64, 96)
    gt[:, :, 10:50, 20:70] = 1
    points = torch.full((2, 12, 3), -1.0)
    points[:, 0] = torch.tensor([30.0, 45.0, 0.0])
    single = torch.tensor([True, False])
    out, prev = iterative_clicks(net, None, image, gt, points, single, 2, np.random.default_rng(0), cfg)
    torch.testing.assert_close(out[0], points[0])
    assert (prev[0] == 0).all()
    assert (out[1, :, 0] != -1).sum() == 3


def test_init_checkpoint_starts_from_its_weights(tmp_path):
    first = train(tiny_config(tmp_path / "a", epochs=1), tmp_path / "a" / "run", progress=False)
    start = first / "checkpoints" / "last.pt"
    net, _ = build_networks(tiny_config(tmp_path / "b", init_checkpoint=str(start)), torch.device("cpu"))
    for key, value in weights(start).items():
        torch.testing.assert_close(net.state_dict()[key], value, rtol=0, atol=0, msg=key)
    with pytest.raises(ValueError, match="does not fit model"):
        build_networks(tiny_config(tmp_path / "c", model="ifpn_lite", model_overrides={"pretrained": None},
                                   init_checkpoint=str(start)), torch.device("cpu"))


def test_a_time_budget_sets_the_epochs_and_ends_the_cosine_schedule_there(tmp_path):
    """budget_minutes: after epoch 1 the run keeps the epochs that fit; the cosine schedule reaches 0 at the last."""
    from iseg.training.config import load_config

    cfg = tiny_config(tmp_path, epochs=50, scheduler="cosine", budget_minutes=0.002, checkpoint_every=0)
    run = train(cfg, tmp_path / "run", progress=False)
    metrics = pd.read_csv(run / "metrics.csv")
    saved = load_config(run / "config.yaml")
    assert 1 <= saved.epochs < 50 and len(metrics) == saved.epochs  # ~0.1 s of budget: far fewer than 50 epochs
    expected = [cfg.lr * (1 + math.cos(math.pi * (e - 1) / saved.epochs)) / 2 for e in metrics["epoch"]]
    np.testing.assert_allclose(metrics["lr"].iloc[1:], expected[1:], rtol=1e-6)


def test_fit_budget_divides_the_budget_by_the_first_epochs_pace():
    from iseg.training.config import load_config
    from iseg.training.trainer import Dist, fit_budget

    cfg = load_config("smoke", {"epochs": 20, "scheduler": "cosine", "budget_minutes": 10, "lr": 1.0})
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=20)
    optimizer.step()
    scheduler.step()
    fit_budget(cfg, scheduler, 100.0, Dist(0, 1, torch.device("cpu")))
    assert cfg.epochs == 6 and scheduler.T_max == 6
    assert optimizer.param_groups[0]["lr"] == pytest.approx((1 + math.cos(math.pi / 6)) / 2)


def test_a_warm_start_is_validated_first_and_best_needs_to_beat_it(tmp_path):
    """With init_checkpoint, metrics.csv starts with epoch 0 (the starting weights), and best.pt holds them until an
    epoch's val_score beats them."""
    first = train(tiny_config(tmp_path / "a", epochs=1), tmp_path / "first", progress=False)
    cfg = tiny_config(tmp_path / "b", epochs=2, lr=1e-12, init_checkpoint=str(first / "checkpoints" / "last.pt"))
    run = train(cfg, tmp_path / "second", progress=False)
    metrics = pd.read_csv(run / "metrics.csv")
    assert metrics["epoch"].tolist() == [0, 1, 2]
    start = pd.read_csv(first / "metrics.csv")["val_score"].iloc[-1]
    assert metrics["val_score"].iloc[0] == pytest.approx(start, abs=1e-5)  # the same weights, the same score
    best_epoch = int(metrics["epoch"].iloc[metrics["val_score"].to_numpy().argmax()])  # the first of equals
    assert load_checkpoint(run / "checkpoints" / "best.pt")["epoch"] == best_epoch


def test_stage2_crop_groups_give_the_per_sample_mean_loss(tmp_path):
    """A batch split into crop-size groups (fine_aspects) has the loss of its samples taken one by one."""
    coarse_run = train(tiny_config(tmp_path, epochs=1), tmp_path / "coarse", progress=False)
    cfg = tiny_config(tmp_path / "f", stage="fine", fine_aspects=[0.6667, 1.0, 1.5],
                      coarse_checkpoint=str(coarse_run / "checkpoints" / "last.pt"))
    fine, _ = build_networks(cfg, torch.device("cpu"))
    fine.eval()  # BN statistics of the running buffers: a sample's output does not depend on its batch
    gt = torch.zeros(3, 1, 64, 96)
    gt[0, :, 28:32, 20:76] = 1   # wide
    gt[1, :, 5:60, 44:48] = 1    # tall
    gt[2, :, 24:40, 40:56] = 1   # square
    image = torch.rand(3, 3, 64, 96)
    image[:, :1] = gt

    def coarse(image, points, prev):  # a coarse network that outlines the object drawn into the red channel
        return {"instances": image[:, :1] * 20 - 10}

    points = torch.full((3, 2 * cfg.sampler.max_num_points, 3), -1.0)
    points[:, 0] = torch.tensor([[30.0, 40.0, 0.0], [30.0, 46.0, 0.0], [32.0, 48.0, 0.0]])
    prev = torch.zeros_like(gt)
    groups = cascade(coarse, fine, image, points, prev, cfg.fine_crops, cfg.coarse_size)["groups"]
    assert sorted(g.size for g in groups) == sorted(cfg.fine_crops) and all(len(g.indices) == 1 for g in groups)
    with torch.no_grad():
        whole = batch_loss(fine, coarse, image, gt, points, prev, cfg)
        one_by_one = [batch_loss(fine, coarse, image[b:b + 1], gt[b:b + 1], points[b:b + 1], prev[b:b + 1], cfg)
                      for b in range(3)]
    assert whole.item() == pytest.approx(float(np.mean(one_by_one)), rel=1e-5)


def test_a_non_finite_loss_stops_training_naming_the_epoch_and_the_setting(tmp_path, monkeypatch):
    import iseg.training.trainer as trainer

    monkeypatch.setattr(trainer, "batch_loss", lambda model, *args: model.parameters().__next__().sum() * math.nan)
    with pytest.raises(ValueError, match=r"epoch 1, step 1: the training loss is nan .* \(lr 0\.001\)"):
        train(tiny_config(tmp_path, epochs=1, lr=1e-3, max_iterative_clicks=0), tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()
