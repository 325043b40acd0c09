"""Evaluation run folders as data: what a run records to be replayed exactly, and every run loaded into pandas.

A run folder (`python -m iseg.evaluate`, `iseg.evaluate.compare`) holds `config.json`, `results.csv` (one row per
dataset), `ious.csv` (one row per sample and click) and `clicks.csv` (where each click went). `config.json`'s
`replay` block names the predictor (load_predictor arguments, checkpoint paths made absolute, their sha256), the
settings the predictor resolved (flip, sizes), the datasets' folders and the protocol's threshold: what rebuilding
the predictor and the sample needs (`iseg.replay`). Runs of older versions lack clicks.csv or the block: they load
with a note saying what they cannot do.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from iseg.evaluation import CLICK_COLUMNS, PER_CLICK_COLUMNS
from iseg.metrics import clicks_to_reach
from iseg.protocol import MAX_CLICKS, PRED_THRESHOLD

RUN_FILES = ("config.json", "results.csv", "ious.csv")
CLICKS_FILE = "clicks.csv"
# Attributes a predictor resolves at construction that decide its output (network predictors: flip, input
# sizes and inference-time refinement; the GrabCut baseline: its parameters).
SETTING_NAMES = ("flip", "coarse_size", "image_size", "target_size", "use_zoom_in", "brs", "work_size", "radius",
                 "iterations", "init_box", "seed")
NO_CLICKS_NOTE = "no clicks.csv (a run of an older version): tables and curves only, no replay"
NO_REPLAY_NOTE = "config.json has no replay settings (a run of an older version): no replay"


def predictor_settings(predictor) -> dict:
    """The predictor's class and the settings it resolved (flip, sizes; None sizes become the checkpoint's)."""
    values = {name: getattr(predictor, name) for name in SETTING_NAMES if hasattr(predictor, name)}
    return {"class": type(predictor).__name__, **values}


def _absolute(value):
    """A checkpoint path or model folder made absolute; any other value as it is."""
    from iseg.weights import model_manifest

    if isinstance(value, (str, Path)) and (str(value).endswith(".pt") or model_manifest(value) is not None):
        return str(Path(value).expanduser().resolve())
    return value


def checkpoint_files(spec: Mapping) -> dict[str, str]:
    """sha256 of every checkpoint a predictor spec loads (a model folder's files; the shipped default model's
    for "default")."""
    from iseg.checksum import sha256_of
    from iseg.weights import MANIFEST, default_checkpoints, model_manifest

    paths = [v for v in spec.values() if isinstance(v, str) and v.endswith(".pt")]
    name = str(spec.get("spec", ""))
    manifest = MANIFEST if name.lower() == "default" else model_manifest(name) if name else None
    if manifest is not None:
        paths += [str(p) for p in default_checkpoints(manifest).values()]
    return {path: sha256_of(path) for path in paths if Path(path).is_file()}


def replay_info(predictor, spec: Mapping | None, datasets: Sequence, pred_thr: float = PRED_THRESHOLD) -> dict:
    """config.json's `replay` block: predictor spec (absolute paths), resolved settings, checkpoint sha256,
    device, datasets (name, folder, split) and the threshold."""
    spec = {k: _absolute(v) for k, v in (spec or {}).items() if v is not None}
    return {
        "predictor": spec,
        "settings": predictor_settings(predictor),
        "checkpoints": checkpoint_files(spec),
        "device": str(getattr(predictor, "device", "cpu")),
        "datasets": [dataset_info(d) for d in datasets],
        "pred_thr": pred_thr,
    }


def dataset_info(dataset) -> dict:
    """Name, absolute folder (None when the dataset has none) and split of a dataset."""
    root = getattr(dataset, "root", None)
    return {"name": getattr(dataset, "name", type(dataset).__name__),
            "root": None if root is None else str(Path(root).resolve()), "split": getattr(dataset, "split", None)}


@dataclass
class Runs:
    """Every run found: `runs` one row per run (run, path, method, date, max_clicks, replayable, note), `results`
    one row per run and dataset (run + results.csv), `clicks` one row per run, sample and click (run + ious.csv +
    index, row, col, positive from clicks.csv; NaN where a run has none). `configs` maps run -> config.json."""

    runs: pd.DataFrame
    results: pd.DataFrame
    clicks: pd.DataFrame
    configs: dict[str, dict]

    def path(self, run: str) -> Path:
        """The folder of a run."""
        return Path(self.runs.set_index("run").at[run, "path"])

    def sample_clicks(self, run: str, dataset: str, sample: str) -> pd.DataFrame:
        """The rows of one sample of one run, by click."""
        rows = self.clicks
        return rows[(rows.run == run) & (rows.dataset == dataset) & (rows["sample"] == sample)].sort_values("click")


def find_runs(folders: Iterable[Path | str]) -> list[Path]:
    """Run folders (config.json, results.csv and ious.csv in it) at or under each folder, sorted, no duplicates."""
    found: set[Path] = set()
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise FileNotFoundError(f"no folder {folder} to look for evaluation runs in")
        candidates = [folder, *(p.parent for p in folder.rglob(RUN_FILES[0]))]
        found.update(p.resolve() for p in candidates if all((p / name).is_file() for name in RUN_FILES))
    return sorted(found)


def run_names(paths: Sequence[Path]) -> list[str]:
    """Short unique names: each run's path relative to the deepest folder above all of them."""
    if not paths:
        return []
    common = Path(os.path.commonpath([p.parent for p in paths]))
    return [p.relative_to(common).as_posix() for p in paths]


def recorded_max_clicks(config: dict, ious: pd.DataFrame) -> int:
    """The run's max_clicks: from its arguments or options, else the most clicks of a sample (at least MAX_CLICKS
    when no sample reached it, as an early-stopped run's)."""
    for section in ("arguments", "options"):
        value = (config.get(section) or {}).get("max_clicks")
        if value:
            return int(value)
    return max(MAX_CLICKS, int(ious["click"].max()) if len(ious) else 0)


def checked_table(path: Path, columns: list[str]) -> pd.DataFrame:
    """A CSV table that holds `columns` and at least one row, else a ValueError naming the file."""
    table = pd.read_csv(path)
    missing = [c for c in columns if c not in table]
    if missing or table.empty:
        raise ValueError(f"{path} is damaged or empty: expected rows with columns {columns}, found "
                         f"{len(table)} rows with columns {list(table.columns)[:8]}")
    return table


def _read_run(path: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame, list[str]]:
    """(config, results, per-click rows with clicks, notes) of one run folder."""
    config = json.loads((path / "config.json").read_text())
    if not isinstance(config, dict):
        raise ValueError(f"{path / 'config.json'} is not a JSON object")
    results = checked_table(path / "results.csv", ["dataset"])
    ious = checked_table(path / "ious.csv", PER_CLICK_COLUMNS)
    if not pd.api.types.is_integer_dtype(ious["click"]) or not ious["iou"].between(0, 1).all():
        raise ValueError(f"{path / 'ious.csv'} is damaged: expected integer clicks and IoUs in [0, 1]")
    notes = []
    if (path / CLICKS_FILE).is_file():
        clicks = pd.read_csv(path / CLICKS_FILE)
        ious = ious.merge(clicks, on=["dataset", "sample", "click"], how="left")
    else:
        ious = ious.assign(**{c: pd.NA for c in CLICK_COLUMNS if c not in ious})
        notes.append(NO_CLICKS_NOTE)
    if "replay" not in config and not notes:
        notes.append(NO_REPLAY_NOTE)
    return config, results, ious, notes


def load_runs(folders: Iterable[Path | str] = ("runs",)) -> Runs:
    """Every evaluation run at or under `folders` (default runs/) into pandas; a run that cannot be read (a damaged
    config.json, a results.csv or ious.csv without its columns or rows) is listed with the reason in its note, not
    loaded, and named in a warning."""
    paths = find_runs(folders)
    rows, results, clicks, configs = [], [], [], {}
    for name, path in zip(run_names(paths), paths):
        try:
            config, table, ious, notes = _read_run(path)
        except (OSError, ValueError, KeyError, pd.errors.ParserError) as error:
            warnings.warn(f"evaluation run {path} could not be read: {error}", stacklevel=2)
            rows.append({"run": name, "path": str(path), "method": "", "date": "", "max_clicks": MAX_CLICKS,
                         "replayable": False, "note": f"could not be read: {error}"})
            continue
        configs[name] = config
        results.append(table.assign(run=name))
        clicks.append(ious.assign(run=name))
        rows.append({"run": name, "path": str(path), "method": config.get("method", ""),
                     "date": config.get("date", ""), "max_clicks": recorded_max_clicks(config, ious),
                     "replayable": not notes, "note": "; ".join(notes)})
    columns = ["run", "path", "method", "date", "max_clicks", "replayable", "note"]
    return Runs(pd.DataFrame(rows, columns=columns), _run_first(results, ["dataset"]),
                _run_first(clicks, [*CLICK_COLUMNS, "iou", "seconds"]), configs)


def _run_first(frames: list[pd.DataFrame], empty_columns: list[str]) -> pd.DataFrame:
    """The frames concatenated with their `run` column first (an empty frame with `empty_columns` if none)."""
    if not frames:
        return pd.DataFrame(columns=["run", *empty_columns])
    frame = pd.concat(frames, ignore_index=True)
    return frame[["run", *(c for c in frame if c != "run")]]


def sample_table(runs: Runs, chosen: Sequence[str], datasets: Sequence[str] | None = None,
                 thresholds: Sequence[float] = (0.85, 0.90), labels: Sequence[str] | None = None,
                 reference: int = 0) -> pd.DataFrame:
    """One row per (dataset, sample) of the chosen runs: NoC@t of each run (its max_clicks when never reached,
    NaN when it did not evaluate the sample) and, for every other run, its NoC minus that of the run number
    `reference` (`Δ@t <label>`: positive where the reference needs fewer clicks). Columns are named with `labels`
    (default: the run names)."""
    labels = list(labels or chosen)
    if not 0 <= reference < max(1, len(labels)):
        raise ValueError(f"reference must be the number of a chosen run (0 to {len(labels) - 1}), got {reference}")
    rows = runs.clicks[runs.clicks.run.isin(chosen)]
    if datasets is not None:
        rows = rows[rows.dataset.isin(datasets)]
    max_clicks = runs.runs.set_index("run")["max_clicks"]
    columns = {}
    for run, label in zip(chosen, labels):
        sequences = rows[rows.run == run].sort_values("click").groupby(["dataset", "sample"], sort=False)["iou"]
        for t in thresholds:
            columns[f"NoC@{round(t * 100)} {label}"] = sequences.agg(
                lambda s, t=t, run=run: clicks_to_reach(s.to_numpy(), t, int(max_clicks[run])))
    if not any(len(c) for c in columns.values()):
        return pd.DataFrame(columns=["dataset", "sample", *columns])
    table = pd.DataFrame(columns).sort_index()
    for label in (label for j, label in enumerate(labels) if j != reference):
        for t in thresholds:
            name = f"NoC@{round(t * 100)}"
            table[f"Δ@{round(t * 100)} {label}"] = table[f"{name} {label}"] - table[f"{name} {labels[reference]}"]
    return table.reset_index()
