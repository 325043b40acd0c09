"""Replaying one sample of an evaluation run click by click, exactly as it was evaluated.

The run's `config.json` (`replay` block, `iseg.runs`) rebuilds the predictor with the settings it resolved and
finds the sample in its dataset's folder; `clicks.csv` gives the clicks. The replay feeds the recorded clicks and
each previous probability map to the predictor as the protocol's loop did, so every click's IoU matches the
recorded one; it also keeps what IFPN's coarse network intended at each click (its mask and the zoom-in box).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from iseg.clicks import Click
from iseg.data.sample import Sample
from iseg.inference.transforms import Roi
from iseg.metrics import iou
from iseg.protocol import PRED_THRESHOLD
from iseg.runs import NO_CLICKS_NOTE, NO_REPLAY_NOTE, checkpoint_files, predictor_settings


class ReplayUnavailable(Exception):
    """A run or sample that cannot be replayed; the message says why."""


@dataclass(frozen=True)
class ReplayStep:
    """The state after click `k` (1-based): all clicks so far, (H, W) float32 probabilities, the IoU replayed and
    recorded, and IFPN's coarse (H, W) probabilities and zoom-in box (None for predictors without them)."""

    k: int
    clicks: list[Click]
    prob: np.ndarray
    iou: float
    recorded_iou: float
    coarse: np.ndarray | None
    roi: Roi | None


def replay_block(config: dict) -> dict:
    """config.json's `replay` block; ReplayUnavailable for a run without one."""
    if "replay" not in config:
        raise ReplayUnavailable(NO_REPLAY_NOTE)
    return config["replay"]


def load_run_predictor(config: dict, device: str | None = None):
    """(predictor rebuilt from a run's config.json, notes on anything that may make the replay differ)."""
    from iseg.predictor import load_predictor

    block = replay_block(config)
    spec, settings = dict(block["predictor"]), block["settings"]
    for key in ("flip", "target_size", "coarse_size", "brs", "device"):
        spec.pop(key, None)  # the resolved settings below decide
    try:
        predictor = load_predictor(spec.pop("spec", None), device=device or block.get("device", "cpu"),
                                   flip=settings.get("flip", True), target_size=settings.get("target_size"),
                                   coarse_size=settings.get("coarse_size", settings.get("image_size")),
                                   brs=settings.get("brs"), **spec)
    except (OSError, ValueError, RuntimeError) as error:
        raise ReplayUnavailable(f"cannot rebuild the run's predictor: {error}") from error
    notes = []
    resolved = {k: v for k, v in predictor_settings(predictor).items() if k in settings or v is not None}
    if resolved != settings:  # a setting added since the run counts as unchanged while it is off (None)
        notes.append(f"the predictor now resolves {predictor_settings(predictor)}, the run had {settings}")
    recorded, now = block.get("checkpoints", {}), checkpoint_files(block["predictor"])
    notes += [f"checkpoint {path} changed since the run" for path in recorded if recorded[path] != now.get(path)]
    return predictor, notes


def load_run_sample(config: dict, dataset: str, sample_id: str, index: int) -> Sample:
    """The sample `sample_id` of `dataset` as the run read it (its folder and split); `index` is its number there."""
    from iseg.data import load_dataset

    entries = [d for d in replay_block(config)["datasets"] if d["name"] == dataset]
    if not entries or entries[0]["root"] is None:
        raise ReplayUnavailable(f"the run records no folder for dataset {dataset}")
    entry = entries[0]
    try:
        data = load_dataset(entry["name"], entry["root"], split=entry.get("split"))
    except (OSError, ValueError) as error:
        raise ReplayUnavailable(f"cannot read dataset {dataset} at {entry['root']}: {error}") from error
    if index < len(data) and data[index].id == sample_id:
        return data[index]
    raise ReplayUnavailable(f"{dataset} at {entry['root']} has changed: sample {index} is no longer {sample_id}")


def recorded_clicks(rows: pd.DataFrame) -> list[Click]:
    """The clicks of one sample's rows (ordered by click) of `Runs.clicks`; ReplayUnavailable without them."""
    if rows[["row", "col", "positive"]].isna().any().any():
        raise ReplayUnavailable(NO_CLICKS_NOTE)
    return [Click(int(r), int(c), bool(p)) for r, c, p in zip(rows["row"], rows["col"], rows["positive"])]


class Replay:
    """One sample replayed with its recorded clicks; `step(k)` predicts the clicks up to k once, in order.

    The predictor is given the sample's image at construction: a predictor serves one Replay at a time.
    """

    def __init__(self, predictor, sample: Sample, clicks: list[Click], recorded_ious: list[float],
                 pred_thr: float):
        if len(clicks) != len(recorded_ious) or not clicks:
            raise ValueError(f"need one recorded IoU per click, got {len(clicks)} clicks, {len(recorded_ious)} IoUs")
        self.predictor, self.sample, self.clicks = predictor, sample, clicks
        self.recorded_ious, self.pred_thr = list(recorded_ious), pred_thr
        self.steps: list[ReplayStep] = []
        predictor.set_image(sample.image)

    def __len__(self) -> int:
        return len(self.clicks)

    def step(self, k: int) -> ReplayStep:
        """The state after click k (1 <= k <= len(self)), predicting the clicks not replayed yet."""
        if not 1 <= k <= len(self):
            raise IndexError(f"click {k} out of 1..{len(self)}")
        while len(self.steps) < k:
            n = len(self.steps) + 1
            prev = self.steps[-1].prob if self.steps else np.zeros(self.sample.mask.shape, np.float32)
            prob = self.predictor.predict(self.clicks[:n], prev)
            coarse = getattr(self.predictor, "last_coarse", None)
            self.steps.append(ReplayStep(n, self.clicks[:n], prob, iou(self.sample.mask, prob > self.pred_thr),
                                         self.recorded_ious[n - 1], None if coarse is None else coarse.copy(),
                                         getattr(self.predictor, "last_roi", None)))
        return self.steps[k - 1]


def replay_sample(runs, run: str, dataset: str, sample_id: str, predictor=None, device: str | None = None) -> Replay:
    """A Replay of one sample of a loaded run (`iseg.runs.Runs`); `predictor` reuses one built by
    `load_run_predictor` for this run. ReplayUnavailable (with the reason) when the run cannot be replayed."""
    config = runs.configs.get(run)
    if config is None:
        raise ReplayUnavailable(f"run {run} could not be read")
    rows = runs.sample_clicks(run, dataset, sample_id)
    if rows.empty:
        raise ReplayUnavailable(f"run {run} did not evaluate {sample_id}")
    clicks = recorded_clicks(rows)
    if predictor is None:
        predictor, _ = load_run_predictor(config, device)
    sample = load_run_sample(config, dataset, sample_id, int(rows["index"].iloc[0]))
    return Replay(predictor, sample, clicks, rows["iou"].tolist(), replay_block(config).get("pred_thr", PRED_THRESHOLD))

