"""The training loop, top to bottom: data, networks, optimiser, epochs of steps, validation, checkpoints, metrics.

`train(cfg, out_dir)` runs stage 1 (coarse) or stage 2 (fine) alone or under `torchrun` (one process per device;
the process group is initialised only when WORLD_SIZE > 1: NCCL on CUDA, gloo on CPU). Rank 0 logs and writes
the run folder: `config.yaml`, `metrics.csv` (one row per epoch), `checkpoints/{last,best,epoch_NNN}.pt`.

Validation is evaluation: after each epoch the network (stage 1: alone, as `SingleNetPredictor`, the whole image at
`coarse_size` and RITM's zoom-in; stage 2: the cascade as `CascadePredictor`) is wrapped in the same predictor that
`python -m iseg.evaluate` builds from its checkpoint, with the checkpoint's input sizes, no flip, and run through
`iseg.evaluation.evaluate` for `val_clicks` clicks on the held-out samples. metrics.csv gets NoC@85/90 and mIoU@k;
`best.pt` is the epoch with the best `val_score` (mean mIoU over clicks 1..5, `iseg.protocol.SCORE_CLICKS`).
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from iseg.evaluation import evaluate, first_clicks_score
from iseg.inference import CascadePredictor, SingleNetPredictor
from iseg.metrics import noc
from iseg.models import build_model, load_checkpoint, load_model, model_payload, save_checkpoint
from iseg.training.cascade import cascade, crop, paste
from iseg.training.config import TrainConfig, atomic_write_text
from iseg.training.data import SampleList, build_data, training_loader
from iseg.training.iterative import add_error_clicks
from iseg.training.losses import instance_loss, normalized_focal_loss
from iseg.training.precision import autocast, describe, use_amp

VAL_SCORES = "val_scores.csv"  # in the run folder: each validation photo's score per epoch


@dataclass
class Dist:
    """This process's place in the (possibly single-process) run."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available else cpu; other names as given (a missing CUDA is an error)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available; use --device cpu or auto")
    return device


def setup_distributed(device_name: str) -> Dist:
    """Read torchrun's environment; init the process group when WORLD_SIZE > 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = resolve_device(device_name)
    if world_size > 1:
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(rank, world_size, device)


def train(cfg: TrainConfig, out_dir: str | Path, *, resume: bool = False, progress: bool = True) -> Path:
    """Train per `cfg` into run folder `out_dir` (resuming from its last.pt if `resume`); returns the folder."""
    env = setup_distributed(cfg.device)
    try:
        return _train(cfg, Path(out_dir), env, resume, progress)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: TrainConfig, out: Path, env: Dist, resume: bool, progress: bool) -> Path:
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    ckpt_dir = out / "checkpoints"
    if not resume and (ckpt_dir / "last.pt").exists():
        raise FileExistsError(f"{out} already holds a run ({ckpt_dir / 'last.pt'}); pass --resume or another --out")
    if cfg.batch_size % env.world_size:
        raise ValueError(f"batch_size {cfg.batch_size} must be divisible by the {env.world_size} processes")
    if cfg.stage == "fine" and not cfg.coarse_checkpoint:
        raise ValueError("stage 'fine' needs coarse_checkpoint (python -m iseg.train fine --coarse PATH)")
    seed_everything(cfg.seed)

    train_set, weights, val_samples = build_data(cfg)
    loader = training_loader(train_set, weights, cfg, rank=env.rank, world_size=env.world_size,
                             pin_memory=env.device.type == "cuda")
    if len(loader) == 0:
        raise ValueError(f"samples_per_epoch {cfg.samples_per_epoch} gives no full batch of {cfg.batch_size}")

    net, coarse = build_networks(cfg, env.device)
    if env.main:
        tqdm.write(f"precision: {'bf16 autocast' if use_amp(cfg.amp, env.device) else 'fp32'} (amp: {cfg.amp}; "
                   f"{describe(env.device)}), {'channels-last' if cfg.channels_last else 'contiguous'} tensors")
    optimizer = torch.optim.Adam(param_groups(net, cfg.lr, cfg.backbone_lr_mult), lr=cfg.lr, betas=cfg.betas)
    scheduler = make_scheduler(optimizer, cfg)
    start, best, rows = 1, -math.inf, []
    if resume:
        start, best, rows = restore(ckpt_dir / "last.pt", net, optimizer, scheduler, out / "metrics.csv")
    elif cfg.init_checkpoint and env.main and val_samples:
        # a warm start is validated first: best.pt holds its weights (epoch 0) until an epoch beats them
        metrics, scores = validate(net, coarse, val_samples, cfg, env.device)
        rows = [{"epoch": 0, **metrics}]
        record_val_scores(out / VAL_SCORES, 0, scores)
        best = rows[0]["val_score"]
        write_metrics(out / "metrics.csv", rows)
        save_checkpoint(ckpt_dir / "best.pt", checkpoint_payload(net, cfg, 0, best, optimizer, scheduler))
    if env.main:
        cfg.save(out / "config.yaml")
    model = DistributedDataParallel(net) if env.world_size > 1 else net

    epoch = start - 1
    while epoch < cfg.epochs:  # not a range: a time budget sets cfg.epochs after the first epoch
        epoch += 1
        loader.sampler.set_epoch(epoch)
        started = time.time()
        lr = optimizer.param_groups[-1]["lr"]
        loss = train_epoch(model, net, coarse, loader, optimizer, cfg, epoch, env, progress)
        scheduler.step()
        seconds = time.time() - started
        metrics, scores = validate(net, coarse, val_samples, cfg, env.device) if env.main else ({}, {})
        if epoch == 1 and cfg.budget_minutes:
            fit_budget(cfg, scheduler, time.time() - started, env)
            if env.main:
                cfg.save(out / "config.yaml")
        if not env.main:
            continue
        row = {"epoch": epoch, "train_loss": loss, "lr": lr, **metrics,
               "seconds": round(seconds, 3), "samples_per_s": round(len(loader) * cfg.batch_size / seconds, 3)}
        rows.append(row)
        if progress:
            tqdm.write(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
        write_metrics(out / "metrics.csv", rows)
        record_val_scores(out / VAL_SCORES, epoch, scores)
        score = row.get("val_score", -loss)
        is_best = score > best
        best = max(best, score)
        payload = checkpoint_payload(net, cfg, epoch, best, optimizer, scheduler)
        save_checkpoint(ckpt_dir / "last.pt", payload)
        if is_best:
            save_checkpoint(ckpt_dir / "best.pt", payload)
        if cfg.checkpoint_every and epoch % cfg.checkpoint_every == 0:
            save_checkpoint(ckpt_dir / f"epoch_{epoch:03d}.pt", payload)
    if env.world_size > 1:
        dist.barrier()
    return out


def fit_budget(cfg: TrainConfig, scheduler, first_epoch_seconds: float, env: Dist) -> None:
    """Set cfg.epochs to the number of epochs of `first_epoch_seconds` (training and validation, as measured on
    rank 0) that fit cfg.budget_minutes (at least 1), and stretch or shrink a cosine schedule to end there."""
    pace = torch.tensor([first_epoch_seconds], dtype=torch.float64, device=env.device)  # NCCL: on the device
    if env.world_size > 1:
        dist.broadcast(pace, 0)
    cfg.epochs = max(1, math.floor(cfg.budget_minutes * 60 / float(pace)))
    if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
        scheduler.T_max = cfg.epochs
        remaining = (1 + math.cos(math.pi * scheduler.last_epoch / cfg.epochs)) / 2
        for group, base in zip(scheduler.optimizer.param_groups, scheduler.base_lrs):
            group["lr"] = scheduler.eta_min + (base - scheduler.eta_min) * remaining
        scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]
    if env.main:
        tqdm.write(f"budget {cfg.budget_minutes:g} min at {float(pace):.0f} s per epoch: {cfg.epochs} epochs")


def train_epoch(model, net, coarse, loader: DataLoader, optimizer, cfg: TrainConfig, epoch: int, env: Dist,
                progress: bool) -> float:
    """One pass over the epoch's batches; returns the mean loss (averaged over processes)."""
    model.train()
    total, steps = 0.0, 0
    bar = tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", disable=not progress or not env.main, leave=False)
    for step, batch in enumerate(bar):
        image = memory_layout(batch["image"].to(env.device).float() / 255, cfg.channels_last)
        gt = batch["mask"].to(env.device).float()
        points = batch["points"].to(env.device)
        single = batch["single"].to(env.device)
        # every random choice of a step is a function of (seed, epoch, step, rank): the same with any number of
        # data workers and after a resume; the number of extra clicks is the same on every rank
        extra = int(np.random.default_rng([cfg.seed, epoch, step]).integers(cfg.max_iterative_clicks + 1))
        click_rng = np.random.default_rng([cfg.seed, epoch, step, env.rank])
        torch.manual_seed(int(click_rng.integers(2**62)))
        points, prev = iterative_clicks(net, coarse, image, gt, points, single, extra, click_rng, cfg)
        with autocast(env.device, cfg.amp):
            loss = batch_loss(model, coarse, image, gt, points, prev, cfg)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total, steps = total + loss.item(), steps + 1
        if not math.isfinite(total):
            raise ValueError(f"epoch {epoch}, step {step + 1}: the training loss is {loss.item()} (not finite): the "
                             f"run diverged; lower the learning rate (lr {cfg.lr}) or check the data")
        bar.set_postfix(loss=f"{total / steps:.4f}")
    mean = torch.tensor(total / max(steps, 1), device=env.device)
    if env.world_size > 1:
        dist.all_reduce(mean)
        mean /= env.world_size
        for buffer in net.buffers():  # BN statistics: every rank ends the epoch with rank 0's
            dist.broadcast(buffer, 0)
    return float(mean)


def memory_layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A 4-d tensor (or module) in channels-last memory format when `channels_last`, else as it is."""
    return x.to(memory_format=torch.channels_last) if channels_last else x


def batch_loss(model, coarse, image, gt, points, prev, cfg: TrainConfig) -> torch.Tensor:
    """Stage 1: NFL + aux BCE of the network on the full sample. Stage 2: NFL of the fine network on the
    intention crop of the frozen coarse network's output."""
    if coarse is None:
        return instance_loss(model(image, points, prev), gt, cfg.aux_loss_weight)
    groups = cascade(coarse, model, image, points, prev, cfg.fine_crops, cfg.coarse_size)["groups"]
    losses = [normalized_focal_loss(g.outputs["instances"], crop(gt[g.indices], g.boxes, g.size, "nearest"))
              * len(g.indices) for g in groups]
    return sum(losses) / image.shape[0]


def predict(net, coarse, image, points, prev, cfg: TrainConfig) -> torch.Tensor:
    """(B, 1, H, W) probability of the network (stage 1) or of the whole cascade pasted back (stage 2), with
    stage-2 crops at the training crop sizes (`TrainConfig.fine_crops`)."""
    if coarse is None:
        return torch.sigmoid(net(image, points, prev)["instances"])
    full = image.new_zeros((image.shape[0], 1, *image.shape[-2:]))
    for group in cascade(coarse, net, image, points, prev, cfg.fine_crops, cfg.coarse_size)["groups"]:
        prob = torch.sigmoid(group.outputs["instances"].float())
        full[group.indices] = paste(prob, group.boxes, tuple(image.shape[-2:]))
    return full


def iterative_clicks(net, coarse, image, gt, points, single: torch.Tensor, count: int, rng: np.random.Generator,
                     cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Add `count` error clicks, each from a no-gradient eval-mode prediction fed back as the previous mask, to
    every sample but the one-click ones (`single`, (B,) bool), which keep their click and an empty previous mask.
    Returns (points, prev mask (B, 1, H, W))."""
    prev = torch.zeros_like(gt)
    if count == 0 or bool(single.all()):
        return points, prev
    net.eval()
    with torch.no_grad(), autocast(image.device, cfg.amp):
        for _ in range(count):
            prev = predict(net, coarse, image, points, prev, cfg).float()
            points = torch.where(single[:, None, None], points, add_error_clicks(prev, gt, points, rng))
    net.train()
    return points, prev * ~single[:, None, None, None]


def validation_predictor(net, coarse, cfg: TrainConfig, device: torch.device):
    """The predictor `python -m iseg.evaluate` builds from this stage's checkpoint, flip off."""
    if coarse is None:
        return SingleNetPredictor(net, flip=False, target_size=cfg.fine_size, device=device,
                                  image_size=cfg.coarse_size)
    return CascadePredictor(coarse, net, flip=False, target_size=cfg.fine_size, device=device,
                            coarse_size=cfg.coarse_size)


def validate(net, coarse, samples: SampleList, cfg: TrainConfig,
             device: torch.device) -> tuple[dict[str, float], dict[str, float]]:
    """Protocol metrics of the stage's predictor on the held-out samples (val_noc@85/90, val_miou@1..val_clicks
    and val_score, the checkpoint-choice metric) and each sample's own score by id (val_score is their mean);
    ({}, {}) without validation samples."""
    if not samples:
        return {}, {}
    predictor = validation_predictor(net, coarse, cfg, device)
    result = evaluate(predictor, samples, max_clicks=cfg.val_clicks, stop_early=False, progress=False)
    row = {f"val_noc@{t}": round(result_noc(result, t / 100), 4) for t in (85, 90)}
    row.update({f"val_miou@{k + 1}": round(float(v), 5) for k, v in enumerate(result.curve())})
    row["val_score"] = round(result.score(), 5)
    scores = {sample: round(first_clicks_score(ious), 5) for sample, ious in zip(result.sample_ids, result.ious)}
    return row, scores


def result_noc(result, threshold: float) -> float:
    """Mean NoC at `threshold` of an EvaluationResult (max_clicks counts as not reached)."""
    return noc(result.ious, threshold, result.max_clicks)[0]


def build_networks(cfg: TrainConfig, device: torch.device):
    """(trainable network, frozen coarse network or None) on `device`; the trainable one starts from
    `init_checkpoint`'s weights when given."""
    if cfg.stage == "coarse":
        net = initialised(build_model(cfg.model, **cfg.model_overrides), cfg.init_checkpoint).to(device)
        return memory_layout(net, cfg.channels_last), None
    if not cfg.coarse_checkpoint:
        raise ValueError("stage 'fine' needs coarse_checkpoint (python -m iseg.train fine --coarse PATH)")
    coarse = load_model(cfg.coarse_checkpoint, device=device, stage="coarse").eval()
    coarse.requires_grad_(False)
    if cfg.fine_init_from_coarse and not cfg.init_checkpoint:
        net = load_model(cfg.coarse_checkpoint, device=device)
    else:
        net = initialised(build_model(cfg.model, **cfg.model_overrides), cfg.init_checkpoint).to(device)
    return memory_layout(net.train(), cfg.channels_last), memory_layout(coarse, cfg.channels_last)


def initialised(net, checkpoint: str | None):
    """`net` with the weights of `checkpoint` (a checkpoint of the same model config), or as built when None."""
    if checkpoint:
        state = {k: v.float() if v.is_floating_point() else v for k, v in load_checkpoint(checkpoint)["model"].items()}
        try:
            net.load_state_dict(state)
        except RuntimeError as error:
            raise ValueError(f"init_checkpoint {checkpoint} does not fit model {net.config.name!r}: "
                             f"{str(error).splitlines()[0]}") from error
    return net


def param_groups(net, lr: float, backbone_mult: float) -> list[dict]:
    """The network's optimiser groups (ISModel.param_groups: backbone and attention vs click encoder and heads)
    with the backbone group at lr x backbone_mult; the heads' group comes last (metrics.csv logs its lr)."""
    return net.param_groups(lr, backbone_mult)


def make_scheduler(optimizer, cfg: TrainConfig):
    """MultiStepLR at `milestones` (epochs) or cosine annealing over `epochs`; stepped once per epoch."""
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.milestones), gamma=cfg.gamma)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Global RNG states as tensors and plain types (loadable with weights_only=True)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {"torch": torch.get_rng_state(),
            "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                      "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
            "python": {"version": py_state[0], "state": torch.tensor(py_state[1], dtype=torch.int64),
                       "gauss": py_state[2]}}


def set_rng_state(state: dict) -> None:
    """Restore what rng_state() returned."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))


def checkpoint_payload(net, cfg: TrainConfig, epoch: int, best: float, optimizer, scheduler) -> dict:
    """The model checkpoint of design.md plus the training state."""
    return model_payload(net, optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(), epoch=epoch,
                         best=best, rng=rng_state(), train_config=cfg.to_dict(), input_sizes=cfg.input_sizes)


def restore(path: Path, net, optimizer, scheduler, metrics_path: Path) -> tuple[int, float, list[dict]]:
    """Load last.pt into net/optimizer/scheduler and the RNGs; returns (next epoch, best score, metric rows)."""
    if not path.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint {path} to resume from")
    state = load_checkpoint(path)
    missing = [k for k in ("model", "optimizer", "scheduler", "epoch", "rng") if k not in state]
    if missing:
        raise ValueError(f"{path} is not a training checkpoint (missing {missing})")
    net.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    rows = read_metrics(metrics_path)
    return state["epoch"] + 1, state.get("best", -math.inf), [r for r in rows if int(r["epoch"]) <= state["epoch"]]


def write_metrics(path: Path, rows: list[dict]) -> None:
    """Rewrite metrics.csv atomically with every row so far (columns: union of keys, first-seen order)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


def record_val_scores(path: Path, epoch: int, scores: dict[str, float]) -> None:
    """Rewrite val_scores.csv (epoch, sample, score: each validation photo's score per epoch, for comparing epochs
    photo by photo) atomically with `epoch`'s scores in place of that epoch's and any later rows (a resumed run)."""
    if not scores:
        return
    kept = [row for row in read_metrics(path) if int(row["epoch"]) < epoch]
    rows = kept + [{"epoch": epoch, "sample": sample, "score": score} for sample, score in scores.items()]
    write_metrics(path, rows)


def read_metrics(path: Path) -> list[dict]:
    """Rows of an existing metrics.csv ([] when absent)."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
