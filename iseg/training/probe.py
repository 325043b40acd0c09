"""Training throughput of a recipe: samples per second of the trainer's own step on synthetic batches.

The step is the trainer's (`iseg.training.trainer`): iterative clicks (0..max_iterative_clicks no-gradient
predictions, cycled so that their mean is the training mean), forward and loss under the config's precision,
backward and Adam; stage 2 runs the frozen coarse network and the fine network on its crop groups. Batches have the
config's batch size and crop (stage 2: the training window), an elliptic object of random size, aspect and place per
sample, and clicks from the config's sampler. Data loading is left out (it runs in a loader worker beside the step).
`python -m iseg.bench` reports it per stage (`training.md`).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from iseg.training.config import TrainConfig
from iseg.training.trainer import batch_loss, build_networks, iterative_clicks, memory_layout
from iseg.training.precision import autocast, use_amp

PHASES = ("clicks", "forward", "backward")


def synthetic_batch(cfg: TrainConfig, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """A batch like the loader's: image (B, 3, h, w) uint8, mask (B, 1, h, w), points (B, 2P, 3), single (B,)."""
    height, width = cfg.augment.crop_size
    rows, cols = np.mgrid[:height, :width]
    items = []
    for _ in range(cfg.batch_size):
        cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
        ry, rx = rng.uniform(0.1, 0.35) * height, rng.uniform(0.1, 0.35) * width
        mask = ((((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2) < 1).astype(np.int8)
        image = rng.integers(0, 200, (height, width, 3), dtype=np.uint8)
        image[mask == 1] += 55
        points, target, single = cfg.sampler(mask, None, rng)
        items.append((image, target, points, single))
    return {"image": torch.from_numpy(np.stack([i[0] for i in items])).permute(0, 3, 1, 2).contiguous(),
            "mask": torch.from_numpy(np.stack([i[1] for i in items]))[:, None],
            "points": torch.from_numpy(np.stack([i[2] for i in items])),
            "single": torch.tensor([i[3] for i in items])}


def measure(cfg: TrainConfig, steps: int = 8, seed: int = 0) -> dict[str, float]:
    """Seconds per step by phase, and samples per second, of `steps` timed training steps of `cfg` on the CPU
    (after one untimed warm-up step). Stage 2 needs cfg.coarse_checkpoint."""
    device = torch.device("cpu")
    net, coarse = build_networks(cfg, device)
    optimizer = torch.optim.Adam(net.param_groups(cfg.lr, cfg.backbone_lr_mult), lr=cfg.lr)
    rng = np.random.default_rng(seed)
    totals = dict.fromkeys(PHASES, 0.0)
    for step in range(steps + 1):
        batch = synthetic_batch(cfg, rng)
        image = memory_layout(batch["image"].float() / 255, cfg.channels_last)
        gt = batch["mask"].float()
        started = time.perf_counter()
        points, prev = iterative_clicks(net, coarse, image, gt, batch["points"], batch["single"],
                                        step % (cfg.max_iterative_clicks + 1), rng, cfg)
        clicked = time.perf_counter()
        with autocast(device, cfg.amp):
            loss = batch_loss(net, coarse, image, gt, points, prev, cfg)
        forward = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done = time.perf_counter()
        if step:
            for phase, seconds in zip(PHASES, (clicked - started, forward - clicked, done - forward)):
                totals[phase] += seconds
    row = {f"{phase}_s": totals[phase] / steps for phase in PHASES}
    row["step_s"] = sum(totals.values()) / steps
    row["samples_per_s"] = cfg.batch_size / row["step_s"]
    row["bf16"] = use_amp(cfg.amp, device)
    return row
