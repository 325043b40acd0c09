"""What a training step asks of the host's CPUs, the network left out: `python -m iseg.training.hostcost`.

A GPU run keeps its GPU busy only while the host delivers batches faster than the GPU consumes them. Measured
here, on a training config's own data (`build_data`), sampler draws and loader:

- per sample, in one process (CPU seconds, `time.process_time`): `load` (decode the photo, read its annotation),
  `augment`, `sample` (the clicks) and `tensors`, the phases of `TrainingSet.timed`;
- per batch, in the main process: `collate` (the loader's default collate of `batch_size` items);
- per iterative-click round: `clicks_host`, the next-click search of a batch as the CPU trainer runs it (OpenCV,
  one sample at a time), on the targets of real samples and stub predictions (each target shifted by a few
  pixels): on a GPU the trainer runs it on the device instead (`iseg.training.iterative`), so this is what the
  host would pay without that;
- the loader's throughput (samples per second, wall clock) with `--workers` worker processes on this machine.

`docs/gpu.md` derives from them whether the host keeps up with the GPU step and the time limits of
`make gpu-train`.

    python -m iseg.training.hostcost --configs coarse_gpu,fine_gpu --out runs/host_costs
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import default_collate

from iseg.atomic import write_text
from iseg.cli import add_debug_flag, reporting, require_positive
from iseg.training.config import TrainConfig, load_config, parse_overrides
from iseg.training.data import LOADER_PHASES, MixSampler, TrainingSet, build_data, training_loader
from iseg.training.iterative import add_error_clicks


def sample_keys(train_set: TrainingSet, weights: list[float], count: int, seed: int) -> list:
    """The first `count` sample keys of the training sampler's first epoch."""
    sampler = MixSampler([len(d) for d in train_set.datasets], weights, count, seed)
    return list(sampler)


def per_sample_costs(train_set: TrainingSet, keys: list) -> tuple[dict[str, float], list[dict]]:
    """Mean CPU seconds per sample of each loader phase, and the items."""
    totals = dict.fromkeys(LOADER_PHASES, 0.0)
    items = []
    for key in keys:
        item, seconds = train_set.timed(key)
        items.append(item)
        for phase in LOADER_PHASES:
            totals[phase] += seconds[phase]
    return {phase: totals[phase] / len(keys) for phase in LOADER_PHASES}, items


def collate_cost(items: list[dict], batch_size: int, repeats: int = 3) -> float:
    """CPU seconds of collating one batch of `batch_size` items (the items reused as needed), best of `repeats`."""
    batch = [items[k % len(items)] for k in range(batch_size)]
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        default_collate(batch)
        best = min(best, time.process_time() - started)
    return best


def stub_predictions(mask: torch.Tensor, shift: int = 6) -> torch.Tensor:
    """Predictions with errors on both sides of every object: each target shifted `shift` pixels right and down."""
    target = (mask == 1).float()
    return torch.roll(target, shifts=(shift, shift), dims=(-2, -1))


def click_round_cost(items: list[dict], batch_size: int, seed: int) -> float:
    """CPU seconds of one next-click round of a batch on the host (OpenCV), with stub predictions."""
    batch = default_collate([items[k % len(items)] for k in range(batch_size)])
    prob = stub_predictions(batch["mask"])
    started = time.process_time()
    add_error_clicks(prob, batch["mask"].float(), batch["points"], np.random.default_rng(seed))
    return time.process_time() - started


def loader_throughput(cfg: TrainConfig, train_set: TrainingSet, weights: list[float], workers: int,
                      batches: int) -> float:
    """Samples per second (wall clock) of the trainer's loader with `workers` workers, over `batches` batches after
    the first (worker start-up left out)."""
    cfg = replace(cfg, num_workers=workers, samples_per_epoch=cfg.batch_size * (batches + 1))
    loader = iter(training_loader(train_set, weights, cfg))
    next(loader)
    started = time.perf_counter()
    for _ in range(batches):
        next(loader)
    return cfg.batch_size * batches / (time.perf_counter() - started)


def measure(config: str, *, samples: int, workers: int | None, batches: int, overrides: dict | None = None) -> dict:
    """One config's host-side row (see the module docstring); `workers` None: the config's own."""
    cfg = load_config(config, overrides)
    workers = cfg.num_workers if workers is None else workers
    train_set, weights, _ = build_data(cfg)
    costs, items = per_sample_costs(train_set, sample_keys(train_set, weights, samples, cfg.seed))
    per_sample = sum(costs.values())
    row = {"config": config, "batch_size": cfg.batch_size, "crop": "x".join(map(str, cfg.augment.crop_size)),
           "samples": samples, **{f"{phase}_ms": 1000 * costs[phase] for phase in LOADER_PHASES},
           "per_sample_ms": 1000 * per_sample,
           "collate_ms": 1000 * collate_cost(items, cfg.batch_size),
           "clicks_host_ms": 1000 * click_round_cost(items, cfg.batch_size, cfg.seed),
           "configured_workers": cfg.num_workers,
           "workers": workers, "loader_samples_per_s": loader_throughput(cfg, train_set, weights, workers, batches)}
    row["per_core_samples_per_s"] = 1 / per_sample
    row["configured_samples_per_s"] = cfg.num_workers / per_sample
    return row


def main(argv: list[str] | None = None) -> int:
    """Command line: measure each config, write host_costs.csv and host_costs.json into --out."""
    parser = argparse.ArgumentParser(prog="python -m iseg.training.hostcost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="coarse_gpu,fine_gpu", help="comma-separated training configs")
    parser.add_argument("--out", type=Path, required=True, help="output folder, e.g. runs/host_costs")
    parser.add_argument("--samples", type=int, default=200, help="samples timed one by one per config")
    parser.add_argument("--workers", type=int,
                        help="loader workers of the throughput measurement (default: each config's num_workers)")
    parser.add_argument("--batches", type=int, default=6, help="batches timed for the loader's throughput")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of every config (e.g. batch_size=8)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    require_positive(parser, args, "samples", "workers", "batches")
    with reporting(parser.prog, args.debug):
        torch.set_num_threads(1)
        overrides = parse_overrides(args.set)
        rows = [measure(name.strip(), samples=args.samples, workers=args.workers, batches=args.batches,
                        overrides=overrides) for name in args.configs.split(",") if name.strip()]
        table = pd.DataFrame(rows).round(2)
        args.out.mkdir(parents=True, exist_ok=True)
        write_text(args.out / "host_costs.csv", table.to_csv(index=False))
        about = {"command": "python -m iseg.training.hostcost " + " ".join(argv if argv is not None else sys.argv[1:]),
                 "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "overrides": overrides}
        write_text(args.out / "host_costs.json", json.dumps({**about, "rows": rows}, indent=2) + "\n")
    print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
