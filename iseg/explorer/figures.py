"""The explorer's pictures and tables: plain functions (runs, arrays in; tables, PNG bytes, frames out)."""

from __future__ import annotations

import html
import io
import string
from collections.abc import Sequence

import cv2
import numpy as np
import pandas as pd

from iseg.demo.controller import Intention, Snapshot
from iseg.demo.frame import FrameRenderer, FrameStyle, outline
from iseg.replay import ReplayStep
from iseg.runs import Runs

OVERVIEW_COLUMNS = ["run", "dataset", "samples", "NoC@85", "NoC@90", "NoF@90", "mIoU@1", "mIoU@5", "SPC"]
PANEL_WIDTH = 420  # the widest replay panel: two side by side in the notebook area of a 1400 px wide window
PANEL_HEIGHT = 320
ROW_WIDTH = 880  # the replay panels' row: JupyterLab's notebook area of a 1400 px window, less margins
MIN_PANEL_WIDTH = 200
PANEL_GAP = 12
IOU_TOLERANCE = 1e-6
GT_COLOR = (255, 255, 255)


def run_labels(chosen: Sequence[str]) -> list[str]:
    """A, B, C, ... for the chosen runs, in order."""
    letters = string.ascii_uppercase
    return [letters[i] if i < len(letters) else f"R{i + 1}" for i in range(len(chosen))]


def panel_size(count: int) -> tuple[int, int]:
    """(width, height) of each of `count` replay panels so that they fit one row (down to MIN_PANEL_WIDTH)."""
    width = max(MIN_PANEL_WIDTH, min(PANEL_WIDTH, (ROW_WIDTH - PANEL_GAP * max(0, count - 1)) // max(1, count)))
    return width, round(PANEL_HEIGHT * width / PANEL_WIDTH)


def overview_table(runs: Runs, chosen: Sequence[str], datasets: Sequence[str]) -> pd.DataFrame:
    """The NoC table of the chosen runs on the chosen datasets (notebook 03's columns, `run` for `method`)."""
    rows = runs.results[runs.results.run.isin(chosen) & runs.results.dataset.isin(datasets)]
    order = {run: i for i, run in enumerate(chosen)}
    rows = rows.sort_values(["dataset", "run"], key=lambda c: c.map(order) if c.name == "run" else c)
    return rows[[c for c in OVERVIEW_COLUMNS if c in rows]].reset_index(drop=True)


def figure_png(fig) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return buffer.getvalue()


def curves_png(runs: Runs, chosen: Sequence[str], datasets: Sequence[str]) -> bytes:
    """mIoU against the number of clicks of the chosen runs, one plot per dataset (notebook 03's figure)."""
    from matplotlib.figure import Figure

    from iseg.visualize import plot_miou_curves

    rows = runs.clicks[runs.clicks.run.isin(chosen) & runs.clicks.dataset.isin(datasets)]
    names = [d for d in datasets if d in set(rows.dataset)]
    max_clicks = int(runs.runs[runs.runs.run.isin(chosen)]["max_clicks"].max())
    order = {run: j for j, run in enumerate(chosen)}
    labels = dict(zip(chosen, run_labels(chosen)))
    fig = Figure(figsize=(5 * max(1, len(names)), 3.6))
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        shown = rows[rows.dataset == name]
        shown = shown.sort_values("run", key=lambda c: c.map(order), kind="stable")
        shown = shown.assign(method=shown.run.map(lambda r: f"{labels[r]}: {r}"))
        plot_miou_curves(shown, ax=ax, max_clicks=max_clicks, title=name)
    return figure_png(fig)


def iou_curve_png(curves: dict[str, tuple[Sequence[float], Sequence[float]]], k: int, max_clicks: int) -> bytes:
    """IoU against the click of one sample: per label its recorded IoUs (line) and those replayed so far (dots),
    the current click `k` marked."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.4, 2.2))
    ax = fig.add_subplot()
    for label, (recorded, replayed) in curves.items():
        line, = ax.plot(range(1, len(recorded) + 1), recorded, marker="o", markersize=3, label=label)
        ax.plot(range(1, len(replayed) + 1), replayed, "x", color=line.get_color(), markersize=7)
    ax.axvline(k, color="0.3", linestyle="--", linewidth=1)
    ax.set(xlabel="click (line: recorded, x: replayed)", ylabel="IoU", ylim=(0, 1.02), xlim=(0.5, max_clicks + 0.5))
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(loc="lower right", fontsize=8)
    return figure_png(fig)


def replay_frame(step: ReplayStep, renderer: FrameRenderer, gt_mask: np.ndarray, intention: bool,
                 mask: bool = True, ground_truth: bool = True) -> np.ndarray:
    """The image at display size with the layers asked for: the mask and clicks after `step` (the clicks always),
    the ground truth's outline (white), IFPN's intention."""
    shown = Intention(step.coarse, step.roi) if intention and step.coarse is not None else None
    state = Snapshot(step.clicks, [], step.prob if mask else None, shown, None)
    frame = renderer.render(state, FrameStyle(intention=shown is not None))
    if ground_truth:
        gt = cv2.resize((gt_mask == 1).astype(np.float32), renderer.size[::-1], interpolation=cv2.INTER_AREA) > 0.5
        cv2.drawContours(frame, outline(gt), -1, GT_COLOR, 1, cv2.LINE_AA)
    return frame


def step_caption(label: str, run: str, step: ReplayStep, n: int, intention: bool) -> str:
    """HTML caption of a replayed click: run, click, IoU replayed against recorded, the intention's legend."""
    click = step.clicks[-1]
    sign = "positive" if click.is_positive else "negative"
    same = abs(step.iou - step.recorded_iou) <= IOU_TOLERANCE
    check = "= recorded" if same else f"<span class='iseg-note'>recorded {step.recorded_iou:.4f}: differs</span>"
    parts = [f"<b>{label}</b> {html.escape(run)}",
             f"click {step.k}/{n}: {sign} at (row {click.row}, col {click.col})",
             f"IoU <b>{step.iou:.4f}</b> {check} (white: ground truth)"]
    if intention:
        if step.coarse is None:
            parts.append("no intention view: not an IFPN cascade")
        else:
            box = "" if step.roi is None else f", yellow: zoom-in box {step.roi.width}x{step.roi.height}"
            parts.append(f"orange: coarse (intention) mask{box}")
    return "<br>".join(parts)
