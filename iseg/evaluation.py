"""The standard evaluation loop (protocol.md) and the results table."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from iseg.clicks import Click, Clicker
from iseg.metrics import iou, miou_curve, noc
from iseg.predictor import Predictor
from iseg.protocol import MAX_CLICKS, MIOU_CLICKS, NOC_THRESHOLDS, NOF_THRESHOLDS, PRED_THRESHOLD, SCORE_CLICKS

TABLE_COLUMNS = ["dataset", "samples", *(f"NoC@{round(t * 100)}" for t in NOC_THRESHOLDS),
                 *(f"NoF@{round(t * 100)}" for t in NOF_THRESHOLDS), "SPC", *(f"mIoU@{k}" for k in MIOU_CLICKS)]
PUBLISHED_CSV = Path(__file__).with_name("reference") / "published.csv"


@dataclass
class EvaluationResult:
    """Everything measured on one dataset.

    ious[i]: (n_i,) float32 IoU after each click of sample i (n_i <= max_clicks; shorter when it
    stopped early). click_seconds[i]: (n_i,) wall-clock seconds of each click (click simulation +
    predictor). image_seconds: (N,) seconds of each `set_image`.
    """

    dataset: str
    sample_ids: list[str]
    ious: list[np.ndarray]
    click_seconds: list[np.ndarray]
    image_seconds: np.ndarray
    max_clicks: int = MAX_CLICKS
    target_iou: float = 0.90
    stop_early: bool = True

    @property
    def n_clicks(self) -> int:
        """Total number of clicks over all samples."""
        return int(sum(len(s) for s in self.ious))

    def spc(self) -> float:
        """Seconds per click: all wall-clock time (set_image included, as in the reference) / clicks."""
        total = float(sum(s.sum() for s in self.click_seconds) + self.image_seconds.sum())
        return total / max(1, self.n_clicks)

    def curve(self) -> np.ndarray:
        """(max_clicks,) mIoU after k = 1..max_clicks clicks (early-stopped samples carry their last IoU)."""
        return miou_curve(self.ious, self.max_clicks)

    def table(self) -> pd.DataFrame:
        """One-row results table (columns TABLE_COLUMNS).

        NoC/NoF at a threshold above target_iou are NaN when the run stopped early (not measurable);
        mIoU@k is NaN for k > max_clicks.
        """
        row: dict[str, object] = {"dataset": self.dataset, "samples": len(self.ious)}
        nocs = {t: noc(self.ious, t, self.max_clicks) for t in NOC_THRESHOLDS}
        for t, (mean_noc, nof) in nocs.items():
            measurable = not self.stop_early or t <= self.target_iou + 1e-9
            row[f"NoC@{round(t * 100)}"] = mean_noc if measurable else np.nan
            if t in NOF_THRESHOLDS:
                row[f"NoF@{round(t * 100)}"] = nof if measurable else np.nan
        row["SPC"] = self.spc()
        curve = self.curve()
        for k in MIOU_CLICKS:
            row[f"mIoU@{k}"] = float(curve[k - 1]) if k <= self.max_clicks else np.nan
        return pd.DataFrame([row], columns=TABLE_COLUMNS)

    def score(self) -> float:
        """The checkpoint-choice metric: mean mIoU over clicks 1..SCORE_CLICKS (rewards the first clicks)."""
        return first_clicks_score(self.curve())

    def per_click(self) -> pd.DataFrame:
        """One row per sample and click: dataset, sample, click (1-based), iou, seconds."""
        rows = [(self.dataset, sid, k + 1, float(v), float(t))
                for sid, ious, secs in zip(self.sample_ids, self.ious, self.click_seconds)
                for k, (v, t) in enumerate(zip(ious, secs))]
        return pd.DataFrame(rows, columns=["dataset", "sample", "click", "iou", "seconds"])


def first_clicks_score(curve: np.ndarray) -> float:
    """Mean of an mIoU-per-click curve over its first SCORE_CLICKS clicks."""
    return float(np.mean(curve[:SCORE_CLICKS]))


def results_table(results: Sequence[EvaluationResult]) -> pd.DataFrame:
    """Results table with one row per dataset (columns TABLE_COLUMNS)."""
    return pd.concat([r.table() for r in results], ignore_index=True)


@dataclass
class Step:
    """One click of the protocol's loop: all clicks so far, the predicted (H, W) probabilities, IoU, seconds."""

    clicks: list[Click]
    prob: np.ndarray
    iou: float
    seconds: float


def click_steps(predictor: Predictor, gt_mask: np.ndarray, max_clicks: int = MAX_CLICKS,
                pred_thr: float = PRED_THRESHOLD) -> Iterator[Step]:
    """The protocol's click loop on an image already given to `predictor.set_image`, one Step per click."""
    clicker = Clicker(gt_mask)
    prob = np.zeros(gt_mask.shape, dtype=np.float32)
    pred = np.zeros(gt_mask.shape, dtype=bool)
    for _ in range(max_clicks):
        start = time.perf_counter()
        clicker.make_next_click(pred)
        prob = predictor.predict(list(clicker.clicks), prob)
        seconds = time.perf_counter() - start
        if prob.shape != gt_mask.shape:
            raise ValueError(f"predictor returned shape {prob.shape}, expected {gt_mask.shape}")
        pred = prob > pred_thr
        yield Step(list(clicker.clicks), prob, iou(gt_mask, pred), seconds)


def evaluate_sample(predictor: Predictor, image: np.ndarray, gt_mask: np.ndarray, max_clicks: int = MAX_CLICKS,
                    target_iou: float = 0.90, min_clicks: int = 1, pred_thr: float = PRED_THRESHOLD,
                    stop_early: bool = True) -> tuple[np.ndarray, np.ndarray, float]:
    """Run the protocol's click loop on one (H, W, 3) uint8 image and (H, W) int mask.

    Returns ((n,) float32 IoUs, (n,) float64 seconds per click, set_image seconds).
    """
    start = time.perf_counter()
    predictor.set_image(image)
    image_seconds = time.perf_counter() - start
    ious: list[float] = []
    seconds: list[float] = []
    for k, step in enumerate(click_steps(predictor, gt_mask, max_clicks, pred_thr), start=1):
        ious.append(step.iou)
        seconds.append(step.seconds)
        if stop_early and step.iou >= target_iou and k >= min_clicks:
            break
    return np.array(ious, dtype=np.float32), np.array(seconds), image_seconds


def evaluate(predictor: Predictor, dataset, max_clicks: int = MAX_CLICKS, target_iou: float = 0.90, min_clicks: int = 1,
             pred_thr: float = PRED_THRESHOLD, progress: bool = True, stop_early: bool = True,
             limit: int | None = None, jobs: int = 1) -> EvaluationResult:
    """Evaluate a predictor on a dataset of `iseg.data.Sample` (the first `limit` samples if given).

    With stop_early a sample stops once IoU >= target_iou (after min_clicks); without it every sample
    runs max_clicks clicks (the full mIoU curve). With jobs > 1 the samples are shared out over that many
    processes (each with a copy of the predictor and one OpenCV/torch thread); the result is the same, and the
    seconds are each process's own wall-clock time.
    """
    n = len(dataset) if limit is None else min(limit, len(dataset))
    name = getattr(dataset, "name", type(dataset).__name__)
    options = dict(max_clicks=max_clicks, target_iou=target_iou, min_clicks=min_clicks, pred_thr=pred_thr,
                   stop_early=stop_early)
    if jobs > 1:
        with multiprocessing.get_context("spawn").Pool(jobs, initializer=_one_thread) as pool:
            parts = pool.starmap(_evaluate_samples, [(predictor, dataset, list(range(j, n, jobs)), options)
                                                     for j in range(jobs)])
        rows = sorted((row for part in parts for row in part), key=lambda row: row[0])
    else:
        rows = _evaluate_samples(predictor, dataset, range(n), options, progress, name)
    ids, ious, click_seconds, image_seconds = ([row[k] for row in rows] for k in range(1, 5))
    return EvaluationResult(name, ids, ious, click_seconds, np.array(image_seconds), max_clicks, target_iou,
                            stop_early)


def _evaluate_samples(predictor: Predictor, dataset, indices, options: dict, progress: bool = False,
                      name: str = "") -> list[tuple[int, str, np.ndarray, np.ndarray, float]]:
    """(index, sample id, IoUs, seconds per click, set_image seconds) of the samples at `indices`."""
    rows = []
    for i in tqdm(indices, desc=f"eval {name}", unit="sample", disable=not progress):
        sample = dataset[i]
        rows.append((i, sample.id, *evaluate_sample(predictor, sample.image, sample.mask, **options)))
    return rows


def _one_thread() -> None:
    """Worker setup for parallel evaluation: one OpenCV and one torch thread per process."""
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def published_results() -> pd.DataFrame:
    """Published numbers (iseg/reference/published.csv): method, backbone, train_data, dataset, metric,
    value, source."""
    return pd.read_csv(PUBLISHED_CSV, keep_default_na=False, na_values={"value": [""]})
