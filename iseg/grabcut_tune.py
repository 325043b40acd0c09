"""Tuning the GrabCut baseline on validation data: `python -m iseg.grabcut_tune --out runs/<name>`.

Each candidate setting of `iseg.grabcut.GrabCutPredictor` (a YAML list, by default
`iseg/configs/grabcut/tune.yaml`) runs the standard protocol (stop at IoU 0.90, at most `--max-clicks` clicks) on
the validation images of a training config (by default `coarse_cpu`: the held-out COCO-MVal images with the
smallest sha1(id), GrabCut and Berkeley photos left out by content: `iseg.training.data.validation_samples`, the
images the trainer validates on), never on an evaluation set. `--limit N` takes the first N of them.
Writes `<out>/tuning.csv` (one row per candidate: its settings, then the results table's columns, best first by
NoC@90, ties by NoC@85), rewritten after every candidate, and `<out>/config.json`; prints the table. OpenCV runs
one thread per process; `--jobs N` evaluates N candidates at once.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import pandas as pd
import yaml

from iseg.atomic import write_text
from iseg.cli import add_debug_flag, reporting, require_positive
from iseg.evaluation import evaluate
from iseg.grabcut import GrabCutPredictor

GRID = Path(__file__).resolve().parent / "configs" / "grabcut" / "tune.yaml"
SETTINGS = ("work_size", "init_box", "radius", "iterations")
FULL = "full"


def read_grid(path: Path) -> list[dict[str, Any]]:
    """The candidate settings of a grid YAML (`candidates:` list of mappings); `work_size: full` -> None."""
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    candidates = data.get("candidates") if isinstance(data, dict) else None
    if not candidates or not all(isinstance(c, dict) for c in candidates):
        raise ValueError(f"{path}: expected `candidates:` as a non-empty list of mappings of {SETTINGS}")
    grid = []
    for n, candidate in enumerate(candidates, start=1):
        unknown = sorted(set(candidate) - set(SETTINGS))
        if unknown:
            raise ValueError(f"{path}: candidate {n} has unknown key(s) {unknown}; known: {list(SETTINGS)}")
        settings = dict(candidate)
        if settings.get("work_size") == FULL:
            settings["work_size"] = None
        try:
            GrabCutPredictor(**settings)  # refuses invalid values with a clear error
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: candidate {n}: {error}") from None
        grid.append(settings)
    return grid


def validation_set(config: str, size: int):
    """The first `size` held-out validation images of training config `config` (evaluation photos left out)."""
    from iseg.training.config import load_config
    from iseg.training.data import evaluation_fingerprints, validation_samples

    cfg = load_config(config, {"val_size": size})
    if not cfg.val:
        raise ValueError(f"training config {config!r} names no validation set (`val`)")
    samples, _ = validation_samples(cfg, evaluation_fingerprints(cfg.exclude, cfg.data_config))
    return samples


def ranked(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The tuning table, best first: lowest NoC@90, then lowest NoC@85."""
    table = pd.DataFrame(rows)
    return table.sort_values(["NoC@90", "NoC@85"], kind="stable").reset_index(drop=True)


def candidate_row(settings: dict[str, Any], samples, max_clicks: int) -> dict[str, Any]:
    """One candidate's row: its settings (work_size None as "full"), the results table's columns, seconds."""
    cv2.setNumThreads(1)
    start = time.perf_counter()
    result = evaluate(GrabCutPredictor(**settings), samples, max_clicks=max_clicks, progress=False)
    row = {**settings, **result.table().iloc[0].to_dict(), "seconds": time.perf_counter() - start}
    row["work_size"] = FULL if settings["work_size"] is None else settings["work_size"]
    return row


def tune(grid: list[dict[str, Any]], samples, out: Path, max_clicks: int = 20, jobs: int = 1) -> pd.DataFrame:
    """Evaluate every candidate on `samples` (in `jobs` processes); write and return the ranked table."""
    rows = []
    work = functools.partial(candidate_row, samples=samples, max_clicks=max_clicks)
    with multiprocessing.get_context("spawn").Pool(jobs) if jobs > 1 else contextlib.nullcontext() as pool:
        for row in (pool.imap_unordered(work, grid) if pool else map(work, grid)):
            rows.append(row)
            print(" ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                  flush=True)
            write_text(out / "tuning.csv", ranked(rows).to_csv(index=False))
    return ranked(rows)


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m iseg.grabcut_tune", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="run folder, e.g. runs/grabcut_tune")
    p.add_argument("--grid", type=Path, default=GRID, help="candidate settings YAML")
    p.add_argument("--config", default="coarse_cpu", help="training config whose validation images are used")
    p.add_argument("--limit", type=int, default=12, help="number of validation images")
    p.add_argument("--max-clicks", type=int, default=20)
    p.add_argument("--jobs", type=int, default=1, help="candidates evaluated in parallel (one process each)")
    p.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out folder")
    add_debug_flag(p)
    return p


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Tune and print the ranked table."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()) and not args.overwrite:
        parser.error(f"output folder {args.out} is not empty; choose another --out or pass --overwrite")
    require_positive(parser, args, "limit", "max_clicks", "jobs")
    with reporting(parser.prog, args.debug):
        return run(args, argv)


def run(args: argparse.Namespace, argv: list[str] | None) -> pd.DataFrame:
    """The tuning of parsed arguments."""
    grid = read_grid(args.grid)
    samples = validation_set(args.config, args.limit)
    info = {"command": " ".join(["python -m iseg.grabcut_tune", *(argv if argv is not None else sys.argv[1:])]),
            "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "samples": [s.id for s in samples], "opencv": cv2.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    write_text(args.out / "config.json", json.dumps(info, indent=2) + "\n")
    table = tune(grid, samples, args.out, args.max_clicks, args.jobs)
    print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
