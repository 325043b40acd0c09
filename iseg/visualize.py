"""Drawing masks and clicks on images, and the figures every paper of the field shows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from iseg.atomic import atomic_path
from iseg.clicks import Click
from iseg.protocol import PRED_THRESHOLD

POSITIVE_COLOR = (40, 200, 60)
NEGATIVE_COLOR = (230, 40, 40)
MASK_COLOR = (30, 144, 255)


def overlay_mask(image: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = MASK_COLOR,
                 alpha: float = 0.45, contour: bool = True) -> np.ndarray:
    """Blend a binary mask (H, W) onto an RGB uint8 image (H, W, 3); returns a new image."""
    out = image.copy()
    region = mask > 0
    tint = np.array(color, dtype=np.float32)
    out[region] = (out[region].astype(np.float32) * (1 - alpha) + tint * alpha).astype(np.uint8)
    if contour:
        contours, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, color, max(1, round(max(image.shape[:2]) / 400)))
    return out


def draw_clicks(image: np.ndarray, clicks: Iterable[Click], radius: int | None = None) -> np.ndarray:
    """Draw clicks as filled discs with a white outline (green positive, red negative)."""
    out = image.copy()
    radius = radius or max(3, round(max(image.shape[:2]) / 100))
    for click in clicks:
        center = (int(click.col), int(click.row))
        cv2.circle(out, center, radius + 1, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(out, center, radius, POSITIVE_COLOR if click.is_positive else NEGATIVE_COLOR, -1, cv2.LINE_AA)
    return out


def render(image: np.ndarray, mask: np.ndarray | None, clicks: Sequence[Click]) -> np.ndarray:
    """The image with the mask overlay and the clicks drawn on top."""
    shown = image if mask is None else overlay_mask(image, mask)
    return draw_clicks(shown, clicks)


def plot_miou_curves(ious: pd.DataFrame, ax=None, max_clicks: int = 20, title: str | None = None,
                     colors: dict[str, str] | None = None):
    """mIoU against the number of clicks, one line per `method` (ious.csv rows of one dataset).

    `ious` has columns method, sample, click, iou; samples that stopped early carry their last IoU forward.
    `colors` fixes a method's colour (the same method in several panels).
    """
    import matplotlib.pyplot as plt

    from iseg.metrics import miou_curve

    ax = ax or plt.subplots(figsize=(5, 4))[1]
    clicks = np.arange(1, max_clicks + 1)
    for method, rows in ious.groupby("method", sort=False):
        sequences = [g.sort_values("click")["iou"].to_numpy() for _, g in rows.groupby("sample")]
        ax.plot(clicks, miou_curve(sequences, max_clicks=max_clicks), marker="o", markersize=3, label=method,
                color=(colors or {}).get(method))
    ax.set_xlabel("number of clicks")
    ax.set_ylabel("mIoU")
    ax.set_xticks(clicks[::2] if max_clicks > 10 else clicks)
    ax.set_xlim(1, max_clicks)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title)
    return ax


def save_figure(fig, stem: Path | str, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Save a matplotlib figure as stem.png and stem.svg (atomically) and return the paths."""
    paths = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
        paths.append(path)
    return paths


def _grid(n: int, ncols: int, size: float = 3.0):
    """A figure with n image axes (axis lines off) in rows of ncols."""
    import matplotlib.pyplot as plt

    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, list(axes.flat)[:n]


def samples_figure(samples: Sequence, ncols: int = 4):
    """A grid of `iseg.data.Sample`s, each image with its object mask overlaid and ignore pixels in grey."""
    fig, axes = _grid(len(samples), ncols)
    for ax, sample in zip(axes, samples):
        shown = overlay_mask(sample.image, sample.mask == 1)
        shown[sample.mask < 0] = (shown[sample.mask < 0] * 0.5 + 64).astype(np.uint8)
        ax.imshow(shown)
        ax.set_title(sample.id, fontsize=8)
    return fig


def worst_samples_figure(predictor, samples: dict, ious: pd.DataFrame, k: int = 6, iou_thr: float = 0.90,
                         max_clicks: int = 20, ncols: int = 3):
    """The k samples that needed the most clicks to reach iou_thr, replayed with their clicks drawn.

    `samples` maps sample id -> Sample; `ious` holds one method's per-click rows (sample, click, iou).
    """
    from iseg.evaluation import click_steps
    from iseg.metrics import clicks_to_reach

    sequences = {sid: g.sort_values("click")["iou"].to_numpy() for sid, g in ious.groupby("sample")}
    nocs = {sid: clicks_to_reach(seq, iou_thr, max_clicks) for sid, seq in sequences.items()}
    worst = sorted(nocs, key=lambda sid: (-nocs[sid], sequences[sid][-1]))[:k]
    fig, axes = _grid(len(worst), ncols, size=4.0)
    for ax, sid in zip(axes, worst):
        sample = samples[sid]
        predictor.set_image(sample.image)
        steps = list(click_steps(predictor, sample.mask, max_clicks=nocs[sid]))
        shown = render(sample.image, steps[-1].prob > PRED_THRESHOLD, steps[-1].clicks)
        contours, _ = cv2.findContours((sample.mask == 1).astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(shown, contours, -1, (255, 220, 0), 1)
        ax.imshow(shown)
        ax.set_title(f"{sid}\nNoC@{round(iou_thr * 100)} {nocs[sid]}, IoU {steps[-1].iou:.2f}", fontsize=8)
    return fig


def plot_training_curves(metrics: pd.DataFrame, title: str | None = None):
    """Training loss and every validation column (val_*) against the epoch, from a run's metrics.csv."""
    import matplotlib.pyplot as plt

    fig, (loss_ax, val_ax) = plt.subplots(1, 2, figsize=(10, 3.5))
    loss_ax.plot(metrics["epoch"], metrics["train_loss"], marker="o", markersize=3)
    loss_ax.set(xlabel="epoch", ylabel="training loss")
    for column in (c for c in metrics if c.startswith("val_")):
        val_ax.plot(metrics["epoch"], metrics[column], marker="o", markersize=3, label=column)
    val_ax.set(xlabel="epoch", ylabel="validation")
    if val_ax.lines:  # a run without validation has no val_* column: no legend to draw
        val_ax.legend(loc="lower right", fontsize=8)
    for ax in (loss_ax, val_ax):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def read_curves(runs: Sequence[tuple[str, Path | str]]) -> pd.DataFrame:
    """The per-click IoUs (ious.csv) of evaluation run folders, as (label, folder) pairs, with `method` = label."""
    frames = []
    for label, folder in runs:
        path = Path(folder) / "ious.csv"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; expected an evaluation run folder (python -m iseg.evaluate "
                                    f"--out {folder})")
        frames.append(pd.read_csv(path).assign(method=label))
    return pd.concat(frames, ignore_index=True)


def curves_figure(ious: pd.DataFrame, datasets: Sequence[str] | None = None, max_clicks: int = 20):
    """mIoU against the number of clicks, one panel per dataset (in the order given, or as found), one line per
    `method`."""
    import matplotlib.pyplot as plt

    names = list(datasets) if datasets else list(dict.fromkeys(ious["dataset"]))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colors = {method: cycle[j % len(cycle)] for j, method in enumerate(dict.fromkeys(ious["method"]))}
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        plot_miou_curves(ious[ious["dataset"] == name], ax=ax, max_clicks=max_clicks, title=name, colors=colors)
    return fig


def main(argv: list[str] | None = None) -> int:
    """`python -m iseg.visualize --run LABEL=FOLDER ... --out STEM`: the mIoU curves of evaluation runs as
    STEM.png (and other `--formats`; the figures of the model card and docs/annotate.md)."""
    import argparse

    import matplotlib

    matplotlib.use("Agg")
    from iseg.cli import add_debug_flag, reporting

    parser = argparse.ArgumentParser(prog="python -m iseg.visualize", description=main.__doc__.split("\n")[0])
    parser.add_argument("--run", action="append", required=True, metavar="LABEL=FOLDER",
                        help="an evaluation run folder and its label in the legend (repeat for each line)")
    parser.add_argument("--out", required=True, help="figure path without extension (STEM.png, ...)")
    parser.add_argument("--formats", default="png", help="comma-separated file formats, e.g. png,svg")
    parser.add_argument("--datasets", help="comma-separated panels, in order (default: every dataset found)")
    parser.add_argument("--max-clicks", type=int, default=20)
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    pairs = [item.split("=", 1) for item in args.run]
    if any(len(pair) != 2 or not all(pair) for pair in pairs):
        parser.error(f"--run expects LABEL=FOLDER, got {args.run}")
    with reporting(parser.prog, args.debug):
        ious = read_curves([(label, folder) for label, folder in pairs])
        datasets = [d.strip() for d in args.datasets.split(",")] if args.datasets else None
        unknown = sorted(set(datasets or ()) - set(ious["dataset"]))
        if unknown:
            raise ValueError(f"no dataset {', '.join(unknown)} in the runs' ious.csv; found: "
                             f"{', '.join(sorted(set(ious['dataset'])))}")
        formats = [f.strip() for f in args.formats.split(",") if f.strip()]
        paths = save_figure(curves_figure(ious, datasets, args.max_clicks), args.out, formats=formats)
    print("written:", ", ".join(map(str, paths)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
