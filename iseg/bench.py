"""CLI: model sizes and CPU speed in one table: parameters, FLOPs, forward time, seconds per click (single network
with RITM's zoom-in and the IFPN cascade, flip on and off), training samples per second, the clicker's share of a
click, and this machine's ceiling (GFLOP/s of one large convolution), all measured in the same run.

    python -m iseg.bench --out runs/bench --threads 2

Writes `bench.csv`, `bench.md` and `machine.json` into `--out` (and with `--ablation` also `ablation.csv` and
`ablation.md`: what each inference optimisation gains). Networks have random weights: speed does not depend on
training. FLOPs count 2 per multiply-accumulate (torch.utils.flop_counter), the convention of RITM's 31.0 GFLOPs
for HRNet18-OCR64. Times are the best of `--repeats` runs, except seconds per click: the median over `--clicks`
simulated clicks of one session. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode
from tqdm.auto import tqdm

from iseg.atomic import write_text
from iseg.cli import RunLock, add_debug_flag, reporting, require_positive
from iseg.clicks import Click, Clicker
from iseg.inference import CascadePredictor, SingleNetPredictor
from iseg.inference.predictors import prepare_model
from iseg.inference.transforms import long_side_size, resize
from iseg.metrics import iou
from iseg.models import ISModel, build_model, clicks_to_points
from iseg.models.config import load_model_config
from iseg.models.layers import fold_batchnorm
from iseg.protocol import PRED_THRESHOLD
from iseg.values import MAX_SIDE

DEFAULT_CONFIGS = "ritm_hrnet18,ifpn_hrnet18,ifpn_lite"
TRAINING_CONFIGS = "coarse_cpu,fine_cpu"
BEFORE = {"amp": False, "channels_last": False}  # the trainer's settings before bf16 autocast and channels-last
CEILING = {"channels": 256, "size": 100}
PREDICTORS = {"single_flip": ("single", True), "single": ("single", False),
              "cascade_flip": ("cascade", True), "cascade": ("cascade", False)}
LABELS = {
    "config": "config", "params_M": "params (M)", "forward_GFLOPs": "GFLOPs", "forward_s": "forward (s)",
    "GFLOP_per_s": "GFLOP/s", "pct_of_ceiling": "% of ceiling",
    "single_flip_click_s": "click 1-net flip (s)", "single_flip_model_s": "model (s)",
    "single_click_s": "click 1-net (s)", "single_model_s": "model (s)",
    "cascade_flip_click_s": "click 2-stage flip (s)", "cascade_flip_model_s": "model (s)",
    "cascade_click_s": "click 2-stage (s)", "cascade_model_s": "model (s)",
    "clicker_iou_s": "clicker+IoU (s)", "clicker_pct": "clicker % of 2-stage click",
    "train_samples_per_s": "train (samples/s)",
}


def parse_size(text: str) -> tuple[int, int]:
    """'480x854' -> (480, 854)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size HEIGHTxWIDTH such as 480x854, got {text!r}") from None
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise argparse.ArgumentTypeError(f"expected a size HEIGHTxWIDTH with sides from 1 to {MAX_SIDE} such as "
                                         f"480x854, got {text!r}")
    return height, width


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="python -m iseg.bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/bench"), help="output folder")
    p.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated model configs (iseg/configs/models)")
    p.add_argument("--threads", type=int, default=2, help="torch and OpenCV threads")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions (best of) for forward, training, ceiling")
    p.add_argument("--clicks", type=int, default=10, help="simulated clicks per session (median seconds per click)")
    p.add_argument("--quick", action="store_true", help="development mode: 2 repeats, 3 clicks (noisier)")
    p.add_argument("--size", type=int, default=400, help="square input of the FLOPs and forward-time columns")
    p.add_argument("--image", type=parse_size, default=(480, 854), help="image of the click sessions (HxW)")
    p.add_argument("--target-size", type=int, default=400, help="predictors' zoom-in / cascade target size")
    p.add_argument("--train-crop", type=parse_size, default=(320, 480), help="training crop (HxW)")
    p.add_argument("--train-batch", type=int, default=2)
    p.add_argument("--training", default=TRAINING_CONFIGS,
                   help="training configs whose step is measured at their own settings (training.md); '' = none")
    p.add_argument("--training-steps", type=int, default=8, help="timed training steps per row")
    p.add_argument("--no-default", action="store_true", help="skip the shipped default model's click row")
    p.add_argument("--ablation", action="store_true", help="also measure what each inference optimisation gains")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_debug_flag(p)
    return p


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where available)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info(args: argparse.Namespace) -> dict:
    """What machine.json records: CPU, cores, library versions, threads, date and the run's settings."""
    return {
        "cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__, "opencv": cv2.__version__,
        "python": platform.python_version(), "platform": platform.platform(), "threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(), "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }


def precision_note() -> str:
    """This CPU's bf16 units, as `amp: auto` sees them."""
    from iseg.training.precision import describe

    return describe(torch.device("cpu"))


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Seconds of the fastest of `repeats` calls of `fn`, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs (2 per multiply-accumulate) of the convolutions and matrix products run by `fn`."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def dummy_points(batch: int, size: tuple[int, int], positive: int = 1, negative: int = 1,
                 slots: int | None = None) -> Tensor:
    """(B, 2P, 3) points of `positive` + `negative` clicks spread over an image of `size` (H, W)."""
    height, width = size
    clicks = [Click(height * (k + 1) // (positive + negative + 1), width * (k + 1) // (positive + negative + 1),
                    k < positive) for k in range(positive + negative)]
    return clicks_to_points([clicks] * batch, slots)


def network_inputs(batch: int, size: tuple[int, int], channels_last: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Random (image (B, 3, H, W), points (B, 2, 3), prev mask (B, 1, H, W)) of a forward pass."""
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, *size, generator=generator)
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    return image, dummy_points(batch, size), torch.zeros(batch, 1, *size)


def forward_fn(model: nn.Module, batch: int, size: tuple[int, int], channels_last: bool = False) -> Callable[[], Tensor]:
    """A no-argument inference-mode forward of `model` on random inputs."""
    inputs = network_inputs(batch, size, channels_last)

    def run() -> Tensor:
        with torch.inference_mode():
            return model(*inputs)["instances"]
    return run


def synthetic_scene(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A random (H, W, 3) uint8 image and an (H, W) int8 elliptic object mask covering about a fifth of it."""
    height, width = size
    rows, cols = np.mgrid[:height, :width]
    mask = (((rows - height / 2) / (height / 4)) ** 2 + ((cols - width / 2) / (width / 4)) ** 2 < 1).astype(np.int8)
    image = np.random.default_rng(0).integers(0, 200, (height, width, 3), dtype=np.uint8)
    image[mask == 1] += 55
    return image, mask


def networks(predictor: object) -> list[nn.Module]:
    """The networks a predictor runs (its nn.Module attributes)."""
    return [v for v in vars(predictor).values() if isinstance(v, nn.Module)]


class ForwardTimer:
    """Adds up the wall time spent inside the forward passes of some modules."""

    def __init__(self, modules: list[nn.Module]):
        self.seconds = 0.0
        self._start = 0.0
        for module in modules:
            module.register_forward_pre_hook(self._enter)
            module.register_forward_hook(self._exit)

    def _enter(self, *_: object) -> None:
        self._start = time.perf_counter()

    def _exit(self, *_: object) -> None:
        self.seconds += time.perf_counter() - self._start


def click_session(predictor: SingleNetPredictor | CascadePredictor, image: np.ndarray, gt: np.ndarray,
                  clicks: int) -> dict[str, float]:
    """Median seconds per click over `clicks` simulated clicks on (image, gt): the whole click (clicker, predict,
    threshold and IoU), the networks' forwards alone, and the clicker + IoU alone. One untimed click first."""
    timer = ForwardTimer(networks(predictor))
    predictor.set_image(image)
    predictor.predict([Click(gt.shape[0] // 2, gt.shape[1] // 2, True)], None)
    predictor.set_image(image)
    clicker, pred, prob = Clicker(gt), np.zeros(gt.shape, bool), None
    totals, models, clickers = [], [], []
    for _ in range(clicks):
        timer.seconds = 0.0
        start = time.perf_counter()
        clicker.make_next_click(pred)
        predict_start = time.perf_counter()
        prob = predictor.predict(clicker.clicks, prob)
        predict_end = time.perf_counter()
        pred = prob > PRED_THRESHOLD
        iou(gt, pred)
        end = time.perf_counter()
        totals.append(end - start)
        models.append(timer.seconds)
        clickers.append(end - start - (predict_end - predict_start))
    return {"click_s": statistics.median(totals), "model_s": statistics.median(models),
            "clicker_s": statistics.median(clickers)}


def make_predictor(kind: str, model: ISModel, flip: bool, target_size: int) -> SingleNetPredictor | CascadePredictor:
    """RITM's single network with zoom-in, or the IFPN cascade with `model` as both coarse and fine network."""
    if kind == "single":
        return SingleNetPredictor(model, flip=flip, target_size=target_size)
    return CascadePredictor(model, model, flip=flip, target_size=target_size)


def train_step_fn(model: ISModel, batch: int, size: tuple[int, int]) -> Callable[[], None]:
    """One training step (forward, BCE on both outputs, backward, Adam) on random inputs."""
    model.train()
    optimizer = torch.optim.Adam(model.param_groups(5e-4, backbone_lr_mult=1.0))  # timing only
    image, _, prev = network_inputs(batch, size)
    points = dummy_points(batch, size, positive=3, negative=2, slots=24)
    target = (torch.rand(batch, 1, *size, generator=torch.Generator().manual_seed(1)) > 0.5).float()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        out = model(image, points, prev)
        loss = (F.binary_cross_entropy_with_logits(out["instances"], target)
                + 0.4 * F.binary_cross_entropy_with_logits(out["instances_aux"], target))
        loss.backward()
        optimizer.step()
    return step


def ceiling_rows(repeats: int) -> list[dict]:
    """GFLOP/s of one 3x3 conv (CEILING channels in and out, CEILING size square), NCHW and channels-last."""
    channels, size = CEILING["channels"], CEILING["size"]
    rows = []
    for layout, memory_format in (("NCHW", torch.contiguous_format), ("NHWC", torch.channels_last)):
        conv = nn.Conv2d(channels, channels, 3, padding=1).eval().to(memory_format=memory_format)
        x = torch.rand(1, channels, size, size).contiguous(memory_format=memory_format)

        def run() -> Tensor:
            with torch.inference_mode():
                return conv(x)
        flops, seconds = count_flops(run), best_time(run, repeats)
        rows.append({"config": f"ceiling: conv3x3 {channels}->{channels} {size}x{size} {layout}",
                     "params_M": sum(p.numel() for p in conv.parameters()) / 1e6, "forward_GFLOPs": flops / 1e9,
                     "forward_s": seconds, "GFLOP_per_s": flops / 1e9 / seconds})
    return rows


def config_row(name: str, args: argparse.Namespace, progress: Callable[[str], None]) -> dict:
    """All the columns of one model config."""
    model = build_model(name, pretrained=None)
    size = (args.size, args.size)
    prepared = prepare_model(model, "cpu")
    run = forward_fn(prepared, 1, size)
    flops, seconds = count_flops(run), best_time(run, args.repeats)
    row = {"config": name, "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
           "forward_GFLOPs": flops / 1e9, "forward_s": seconds, "GFLOP_per_s": flops / 1e9 / seconds}
    image, gt = synthetic_scene(args.image)
    for key, (kind, flip) in PREDICTORS.items():
        progress(f"{name}: {key} clicks")
        times = click_session(make_predictor(kind, model, flip, args.target_size), image, gt, args.clicks)
        row[f"{key}_click_s"], row[f"{key}_model_s"] = times["click_s"], times["model_s"]
        if key == "cascade":
            row["clicker_iou_s"] = times["clicker_s"]
            row["clicker_pct"] = 100 * times["clicker_s"] / times["click_s"]
    progress(f"{name}: training")
    step = train_step_fn(build_model(name, pretrained=None), args.train_batch, args.train_crop)
    row["train_samples_per_s"] = args.train_batch / best_time(step, max(1, args.repeats // 2))
    return row


def training_variants(cfg) -> dict[str, dict]:
    """Settings to measure a training config at, by name: before this project's speed-ups (fp32, contiguous), each
    speed-up alone, and as configured. A stage-2 config with several crop sizes (`fine_aspects`) is measured at the
    old single 2:3 crop first (the same work per sample as before), then as configured."""
    one_crop = {}
    if cfg.stage == "fine" and cfg.fine_aspects:
        one_crop = {"fine_aspects": None, "fine_crop": [round(cfg.fine_size * 2 / 3), cfg.fine_size]}
    suffix = ", one 2:3 crop" if one_crop else ""
    variants = {f"fp32, contiguous{suffix} (before)": {**BEFORE, **one_crop},
                f"bf16 autocast, contiguous{suffix}": {"amp": True, "channels_last": False, **one_crop},
                f"fp32, channels-last{suffix}": {"amp": False, "channels_last": True, **one_crop}}
    if one_crop:
        variants[f"as configured{suffix}"] = one_crop
    variants["as configured"] = {}
    return variants


def training_rows(args: argparse.Namespace) -> list[dict]:
    """Samples per second of each `--training` config's own step (`iseg.training.probe`), per variant; speedup
    against the stage's first row. Stage 2 trains behind the shipped default coarse network unless its config
    names one."""
    from iseg.training.config import load_config
    from iseg.training.probe import measure
    from iseg.weights import default_checkpoints

    rows = []
    for name in [n.strip() for n in args.training.split(",") if n.strip()]:
        base = load_config(name, {"threads": args.threads})
        extra = {"threads": args.threads}
        if base.stage == "fine" and not base.coarse_checkpoint:
            extra["coarse_checkpoint"] = str(default_checkpoints()["coarse"])
        first = None
        for variant, overrides in training_variants(base).items():
            cfg = load_config(name, {**extra, **overrides})
            crops = cfg.fine_crops if cfg.stage == "fine" else [cfg.crop_size]
            result = measure(cfg, args.training_steps)
            first = first or result["samples_per_s"]
            rows.append({"config": name, "variant": variant, "bf16": result["bf16"],
                         "channels_last": cfg.channels_last, "batch": cfg.batch_size,
                         "crops": " ".join(f"{h}x{w}" for h, w in crops), "iterative_clicks": cfg.max_iterative_clicks,
                         **{k: result[k] for k in ("clicks_s", "forward_s", "backward_s", "step_s", "samples_per_s")},
                         "speedup": result["samples_per_s"] / first})
    return rows


def format_value(value: object) -> str:
    """A table cell: 3 significant digits for floats, '' for missing values."""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def markdown_table(table: pd.DataFrame, labels: dict[str, str] | None = None) -> str:
    """The table as GitHub markdown, columns renamed by `labels`."""
    labels = labels or {}
    header = [labels.get(c, c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(format_value(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def bench_caption(args: argparse.Namespace, info: dict) -> str:
    """The lines above the markdown table: machine, settings and what the columns mean."""
    height, width = args.image
    return (f"{info['cpu']}, {info['cores']} cores, {info['threads']} threads, torch {info['torch']}, "
            f"{info['date']} (load average at start {info['load_average']}).\n\n"
            f"GFLOPs (2 per multiply-accumulate), forward and GFLOP/s: one network, batch 1, {args.size}x{args.size}, "
            f"best of {args.repeats}. Clicks: median seconds per click over {args.clicks} clicks on a {height}x{width} "
            f"image, target size {args.target_size}, including the clicker and IoU; 'model' = inside the networks. "
            f"1-net = SingleNetPredictor (RITM zoom-in), 2-stage = CascadePredictor (same config coarse and fine). "
            f"Training: batch {args.train_batch} at {args.train_crop[0]}x{args.train_crop[1]}, forward + backward "
            f"+ Adam. % of ceiling: against the faster layout of the large convolution.\n\n")


def default_row(args: argparse.Namespace, brs: str | None = None) -> dict:
    """Seconds per click of the shipped default model (trained weights) at the input sizes its checkpoints record,
    flip on and off: what `--predictor default`, the demo and `make smoke` run; with `brs` ("f-BRS-B") refining
    the fine stage at inference (its "model" column is left empty: the refinement runs the head outside the
    networks' forward passes)."""
    from iseg.weights import model_predictor

    image, gt = synthetic_scene(args.image)
    row: dict = {}
    for key, flip in (("cascade_flip", True), ("cascade", False)):
        predictor = model_predictor(flip=flip, brs=brs)
        times = click_session(predictor, image, gt, args.clicks)
        row[f"{key}_click_s"] = times["click_s"]
        row[f"{key}_model_s"] = float("nan") if brs else times["model_s"]
    name = "default" if brs is None else f"default + {brs}"
    row["config"] = f"{name} (shipped; coarse {predictor.coarse_size}, crop {predictor.target_size})"
    return row


def bench_table(args: argparse.Namespace, progress: bool = True) -> pd.DataFrame:
    """Measure every config, the shipped default model (unless --no-default) and the ceiling; one row each."""
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    bar = tqdm(total=len(names) + 2, desc="bench", disable=not progress)
    rows = ceiling_rows(args.repeats)
    bar.update()
    for name in names:
        rows.append(config_row(name, args, bar.set_postfix_str))
        bar.update()
    if not args.no_default:
        bar.set_postfix_str("default model clicks")
        rows += [default_row(args), default_row(args, brs="f-BRS-B")]
    bar.update()
    bar.close()
    table = pd.DataFrame(rows, columns=list(LABELS))
    ceiling = table["GFLOP_per_s"].iloc[:2].max()
    table["pct_of_ceiling"] = 100 * table["GFLOP_per_s"] / ceiling
    return table


def resize_rows(args: argparse.Namespace) -> list[dict]:
    """Seconds of the predictors' resizes with torch (antialiased bilinear) and OpenCV (INTER_AREA / LINEAR):
    the image to the target size and a probability map back to the image size; speedup against torch."""
    height, width = args.image
    small = long_side_size((height, width), args.target_size)
    image = synthetic_scene(args.image)[0]
    image_t = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255)
    prob = np.random.default_rng(0).random(small, dtype=np.float32)
    prob_t = torch.from_numpy(prob)[None, None]
    pairs = {
        "resize image to target": (lambda: resize(image_t, small),
                                   lambda: cv2.resize(image, small[::-1], interpolation=cv2.INTER_AREA)),
        "resize prob to image": (lambda: resize(prob_t, (height, width)),
                                 lambda: cv2.resize(prob, (width, height), interpolation=cv2.INTER_LINEAR)),
    }
    rows = []
    for step, (with_torch, with_cv2) in pairs.items():
        reference = best_time(with_torch, args.repeats)
        rows.append({"config": "-", "step": f"{step}: torch", "seconds": reference, "speedup": 1.0})
        seconds = best_time(with_cv2, args.repeats)
        rows.append({"config": "-", "step": f"{step}: cv2", "seconds": seconds, "speedup": reference / seconds})
    return rows


def ablation_table(args: argparse.Namespace) -> pd.DataFrame:
    """Forward seconds at --size as each inference optimisation is added, per config (speedup against the first
    row); flip as one batch of 2 (speedup against two batches of 1); and the resize options."""
    rows = []
    size = (args.size, args.size)
    for name in [n.strip() for n in args.configs.split(",") if n.strip()]:
        model = build_model(name, pretrained=None).eval()
        prepared = prepare_model(model, "cpu")

        inputs = network_inputs(1, size)

        def no_grad_forward() -> Tensor:
            with torch.no_grad():
                return model(*inputs)["instances"]
        baseline = best_time(no_grad_forward, args.repeats)
        steps = {
            "eval + no_grad, NCHW, BN unfolded": baseline,
            "+ inference_mode": best_time(forward_fn(model, 1, size), args.repeats),
            "+ BN folded": best_time(forward_fn(fold_batchnorm(model), 1, size), args.repeats),
            "+ channels-last (prepare_model)": best_time(forward_fn(prepared, 1, size), args.repeats),
        }
        rows += [{"config": name, "step": step, "seconds": s, "speedup": baseline / s} for step, s in steps.items()]
        two = 2 * best_time(forward_fn(prepared, 1, size), args.repeats)
        one = best_time(forward_fn(prepared, 2, size), args.repeats)
        rows += [{"config": name, "step": "flip: two forwards of batch 1", "seconds": two, "speedup": 1.0},
                 {"config": name, "step": "flip: one forward of batch 2", "seconds": one, "speedup": two / one}]
    return pd.DataFrame(rows + resize_rows(args), columns=["config", "step", "seconds", "speedup"])


def write_outputs(out: Path, stem: str, table: pd.DataFrame, caption: str, labels: dict[str, str] | None = None) -> str:
    """Write `stem`.csv and `stem`.md into `out` (atomically); returns the markdown."""
    markdown = caption + markdown_table(table, labels)
    write_text(out / f"{stem}.csv", table.to_csv(index=False))
    write_text(out / f"{stem}.md", markdown)
    return markdown


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run the benchmark, print and save the table; returns it. A user error or Ctrl-C ends it (SystemExit 2 / 130)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    require_positive(parser, args, "threads", "repeats", "clicks", "size", "target_size", "train_batch",
                     "training_steps")
    with reporting(parser.prog, args.debug):
        for name in [n.strip() for n in args.configs.split(",") if n.strip()]:
            load_model_config(name)  # an unknown config stops here, before any measurement
        with RunLock(args.out):
            return run(args)


def run(args: argparse.Namespace) -> pd.DataFrame:
    """The benchmark of parsed arguments, with the lock of --out held."""
    if args.quick:
        args.repeats, args.clicks, args.training_steps = 2, 3, 2
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    info = machine_info(args)
    table = bench_table(args, progress=not args.no_progress)
    write_text(args.out / "machine.json", json.dumps(info, indent=2) + "\n")
    print(write_outputs(args.out, "bench", table, bench_caption(args, info), LABELS))
    if args.training.strip():
        caption = (f"Training steps of each config at its own settings (`iseg.training.probe`: iterative clicks, "
                   f"forward + loss, backward + Adam; synthetic batches, no data loading), mean of "
                   f"{args.training_steps} steps, {info['threads']} threads, {info['date']}; {precision_note()}.\n\n")
        print(write_outputs(args.out, "training", pd.DataFrame(training_rows(args)), caption))
    if args.ablation:
        caption = (f"Forward seconds of one network at {args.size}x{args.size} (best of {args.repeats}), "
                   f"{info['threads']} threads, {info['date']}.\n\n")
        print(write_outputs(args.out, "ablation", ablation_table(args), caption))
    print(f"written to {args.out}")
    return table


if __name__ == "__main__":
    main()
