"""The standard evaluation loop (protocol.md) and the results table."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
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
PER_CLICK_COLUMNS = ["dataset", "sample", "click", "iou", "seconds"]
CLICK_COLUMNS = ["dataset", "sample", "index", "click", "row", "col", "positive"]
PUBLISHED_CSV = Path(__file__).with_name("reference") / "published.csv"


@dataclass
class EvaluationResult:
    """Everything measured on one dataset.

    ious[i]: (n_i,) float32 IoU after each click of sample i (n_i <= max_clicks; shorter when it
    stopped early). click_seconds[i]: (n_i,) wall-clock seconds of each click (click simulation +
    predictor). image_seconds: (N,) seconds of each `set_image`. clicks[i]: the n_i clicks of sample i, in order.
    """

    dataset: str
    sample_ids: list[str]
    ious: list[np.ndarray]
    click_seconds: list[np.ndarray]
    image_seconds: np.ndarray
    max_clicks: int = MAX_CLICKS
    target_iou: float = 0.90
    stop_early: bool = True
    clicks: list[list[Click]] = field(default_factory=list)

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
        rows = [row for sid, ious, secs in zip(self.sample_ids, self.ious, self.click_seconds)
                for row in per_click_rows(self.dataset, sid, ious, secs)]
        return pd.DataFrame(rows, columns=PER_CLICK_COLUMNS)

    def clicks_table(self) -> pd.DataFrame:
        """One row per sample and click: dataset, sample, index (the sample's number in the dataset), click
        (1-based), row, col, positive."""
        rows = [(self.dataset, sid, i, k + 1, c.row, c.col, c.is_positive)
                for i, (sid, clicks) in enumerate(zip(self.sample_ids, self.clicks)) for k, c in enumerate(clicks)]
        return pd.DataFrame(rows, columns=CLICK_COLUMNS)


def per_click_rows(dataset: str, sample_id: str, ious: np.ndarray, seconds: np.ndarray) -> list[tuple]:
    """The PER_CLICK_COLUMNS rows of one sample: (dataset, sample, click (1-based), iou, seconds)."""
    return [(dataset, sample_id, k + 1, float(v), float(t)) for k, (v, t) in enumerate(zip(ious, seconds))]


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
                    stop_early: bool = True) -> tuple[np.ndarray, np.ndarray, float, list[Click]]:
    """Run the protocol's click loop on one (H, W, 3) uint8 image and (H, W) int mask.

    Returns ((n,) float32 IoUs, (n,) float64 seconds per click, set_image seconds, the n clicks).
    """
    start = time.perf_counter()
    predictor.set_image(image)
    image_seconds = time.perf_counter() - start
    ious: list[float] = []
    seconds: list[float] = []
    clicks: list[Click] = []
    for k, step in enumerate(click_steps(predictor, gt_mask, max_clicks, pred_thr), start=1):
        ious.append(step.iou)
        seconds.append(step.seconds)
        clicks = step.clicks
        if stop_early and step.iou >= target_iou and k >= min_clicks:
            break
    return np.array(ious, dtype=np.float32), np.array(seconds), image_seconds, clicks


def evaluate(predictor: Predictor, dataset, max_clicks: int = MAX_CLICKS, target_iou: float = 0.90, min_clicks: int = 1,
             pred_thr: float = PRED_THRESHOLD, progress: bool = True, stop_early: bool = True,
             limit: int | None = None,
             on_sample: Callable[[str, np.ndarray, np.ndarray], None] | None = None) -> EvaluationResult:
    """Evaluate a predictor on a dataset of `iseg.data.Sample` (the first `limit` samples if given).

    With stop_early a sample stops once IoU >= target_iou (after min_clicks); without it every sample
    runs max_clicks clicks (the full mIoU curve). `on_sample(sample_id, ious, seconds)` is called as each
    sample finishes (e.g. to write its rows at once).
    """
    if max_clicks < 1 or (limit is not None and limit < 1):
        raise ValueError(f"max_clicks and limit must be positive, got max_clicks={max_clicks}, limit={limit}")
    n = len(dataset) if limit is None else min(limit, len(dataset))
    name = getattr(dataset, "name", type(dataset).__name__)
    ids, ious, click_seconds, image_seconds, clicks = [], [], [], [], []
    for i in tqdm(range(n), desc=f"eval {name}", unit="sample", disable=not progress):
        sample = dataset[i]
        sample_ious, secs, image_secs, sample_clicks = evaluate_sample(
            predictor, sample.image, sample.mask, max_clicks, target_iou, min_clicks, pred_thr, stop_early)
        if on_sample is not None:
            on_sample(sample.id, sample_ious, secs)
        ids.append(sample.id)
        ious.append(sample_ious)
        click_seconds.append(secs)
        image_seconds.append(image_secs)
        clicks.append(sample_clicks)
    return EvaluationResult(name, ids, ious, click_seconds, np.array(image_seconds), max_clicks, target_iou,
                            stop_early, clicks)


def published_results() -> pd.DataFrame:
    """Published numbers (iseg/reference/published.csv): method, backbone, train_data, dataset, metric,
    value, source."""
    return pd.read_csv(PUBLISHED_CSV, keep_default_na=False, na_values={"value": [""]})
