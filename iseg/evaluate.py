"""CLI: evaluate a predictor with the standard protocol and write a run folder.

    python -m iseg.evaluate --predictor grabcut --datasets GrabCut,Berkeley --out runs/baseline_grabcut

Writes `config.json` (arguments, device, threads, versions, date, and the `replay` block of `iseg.runs`: what
replaying a sample exactly needs) first, `ious.csv` (one row per sample and click: dataset, sample, click, iou,
seconds) as samples finish (Ctrl-C keeps them), and at the end `results.csv` (one row per dataset) and `clicks.csv`
(where each click went: dataset, sample, index, click, row, col, positive), then prints the table. Errors: one
line and exit status 2 (docs/errors.md).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import platform
import re
import sys
from pathlib import Path

import cv2
import pandas as pd

from iseg.atomic import write_text
from iseg.cli import LOCK_NAME, Interrupted, RunLock, add_debug_flag, parse_names, reporting, require_positive
from iseg.evaluation import PER_CLICK_COLUMNS, evaluate, per_click_rows, results_table
from iseg.predictor import SPECS_HELP, load_predictor
from iseg.protocol import DATASET_TARGET_SIZES, PRED_THRESHOLD
from iseg.runs import replay_info
from iseg.values import split_names


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="python -m iseg.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--predictor", help=f"predictor spec: {SPECS_HELP}")
    p.add_argument("--coarse", help="coarse-network checkpoint of an IFPN cascade (with --fine)")
    p.add_argument("--fine", help="fine-network checkpoint of an IFPN cascade (with --coarse)")
    p.add_argument("--datasets", required=True,
                   help="comma-separated NAME (folder from the data config) or NAME=PATH, e.g. GrabCut,Berkeley")
    p.add_argument("--data-config", help="data config YAML (default: data_configs/default.yaml)")
    p.add_argument("--out", required=True, type=Path, help="run folder, e.g. runs/<name>")
    p.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty --out folder")
    p.add_argument("--limit", type=int, help="evaluate only the first N samples of each dataset")
    p.add_argument("--max-clicks", type=int, default=20)
    p.add_argument("--target-iou", type=float, default=0.90, help="stop a sample once its IoU reaches this")
    p.add_argument("--full-curve", action="store_true", help="run all max clicks on every sample (mIoU curve)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch and OpenCV threads (default: torch's current setting)")
    p.add_argument("--no-flip", action="store_true", help="no test-time horizontal flip (network predictors)")
    p.add_argument("--target-size", type=int,
                   help="longer side of the networks' zoom-in crops (the protocol uses 600 on DAVIS); default: the "
                        "size the checkpoint was trained at, 400 for a checkpoint that records none")
    p.add_argument("--coarse-size", type=int,
                   help="longer side of the whole image for the coarse network; default: the size the checkpoint "
                        "was trained at, 400 for a checkpoint that records none")
    p.add_argument("--brs", default="none",
                   help="refinement at inference of network predictors: f-BRS-B (docs/models.md) or none")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_debug_flag(p)
    return p


def run_info(args: argparse.Namespace, threads: int) -> dict:
    """What config.json records: the arguments and the environment."""
    import torch

    return {
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "predictor": {"spec": args.predictor, "coarse": args.coarse, "fine": args.fine},
        "command": " ".join(["python -m iseg.evaluate", *sys.argv[1:]]),
        "device": args.device,
        "threads": threads,
        "torch": torch.__version__,
        "opencv": cv2.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def evaluate_to_folder(predictor, datasets: list, out: Path, info: dict, **options) -> tuple[pd.DataFrame,
                                                                                      pd.DataFrame]:
    """Evaluate one predictor on each dataset into `out`: config.json (`info`, its "predictor" the load_predictor
    arguments, plus the `replay` block of `iseg.runs.replay_info`) first, ious.csv one sample at a time as each
    finishes (Ctrl-C keeps them: `Interrupted` says how many), results.csv and clicks.csv at the end.

    `options` go to `iseg.evaluation.evaluate` (max_clicks, target_iou, stop_early, limit, progress).
    Returns (results table, per-click IoUs).
    """
    info = {**info, "replay": replay_info(predictor, info.get("predictor"), datasets,
                                          options.get("pred_thr", PRED_THRESHOLD))}
    out = Path(out)
    write_text(out / "config.json", json.dumps(info, indent=2, default=str) + "\n")
    (out / "results.csv").unlink(missing_ok=True)  # never beside the rows of another run
    results, finished = [], 0
    with open(out / "ious.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(PER_CLICK_COLUMNS)

        def keep(dataset: str, sample_id: str, ious, seconds) -> None:
            nonlocal finished
            writer.writerows(per_click_rows(dataset, sample_id, ious, seconds))
            f.flush()
            finished += 1

        try:
            for d in datasets:
                name = getattr(d, "name", type(d).__name__)
                results.append(evaluate(predictor, d, on_sample=lambda *row, name=name: keep(name, *row), **options))
        except KeyboardInterrupt:
            raise Interrupted(f"the {finished} finished sample(s) are in {out / 'ious.csv'}; results.csv is "
                              "written by a complete run only") from None
    table = results_table(results)
    write_text(out / "clicks.csv", pd.concat([r.clicks_table() for r in results]).to_csv(index=False))
    write_text(out / "results.csv", table.to_csv(index=False))
    return table, pd.concat([r.per_click() for r in results], ignore_index=True)


def slug(name: str) -> str:
    """A folder-safe version of a method name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "method"


def compare(methods: dict[str, dict], datasets: list, out: Path | str, *, device: str = "cpu", flip: bool = True,
            protocol_sizes: bool = False, **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate several predictors on the same datasets, each into out/<method slug>/.

    `methods` maps a display name to `load_predictor` arguments, e.g. {"GrabCut": {"spec": "grabcut"},
    "IFPN": {"coarse": "c.pt", "fine": "f.pt"}}. With `protocol_sizes`, a network predictor whose arguments set no
    `target_size` evaluates the datasets where the protocol uses another zoom-in size (DAVIS at 600:
    `iseg.protocol.DATASET_TARGET_SIZES`) at that size, into out/<method slug>_target<size>/. Returns (results
    table, per-click IoUs), both with a `method` column first. `options` go to `iseg.evaluation.evaluate`.
    """
    with RunLock(out):
        return _compare(methods, datasets, Path(out), device, flip, protocol_sizes, options)


def protocol_size(method: dict, dataset: str, protocol_sizes: bool) -> int | None:
    """The zoom-in size the protocol sets for a network predictor without a size of its own on `dataset` (DAVIS:
    600), when `protocol_sizes`; None: the method's own."""
    network = str(method.get("spec", "")).lower() != "grabcut" and "target_size" not in method
    return DATASET_TARGET_SIZES.get(dataset) if protocol_sizes and network else None


def method_spec(method: dict, dataset: str, protocol_sizes: bool) -> dict:
    """The load_predictor arguments `method` runs with on `dataset` (see `protocol_size`)."""
    size = protocol_size(method, dataset, protocol_sizes)
    return dict(method) if size is None else {**method, "target_size": size}


def size_groups(method: dict, datasets: list, protocol_sizes: bool) -> list[tuple[int | None, list]]:
    """[(protocol size or None, datasets)] in the order the datasets come (see `protocol_size`)."""
    groups: dict[int | None, list] = {}
    for d in datasets:
        groups.setdefault(protocol_size(method, getattr(d, "name", ""), protocol_sizes), []).append(d)
    return list(groups.items())


def _compare(methods: dict[str, dict], datasets: list, out: Path, device: str, flip: bool, protocol_sizes: bool,
             options: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`compare` with the lock of `out` held."""
    tables, per_clicks = [], []
    for name, method in methods.items():
        for size, group in size_groups(method, datasets, protocol_sizes):
            spec = method_spec(method, getattr(group[0], "name", ""), protocol_sizes)
            info = {"method": name, "predictor": dict(spec), "device": device, "flip": flip, "options": options}
            predictor = load_predictor(spec.pop("spec", None), device=device, flip=flip, **spec)
            folder = Path(out) / (slug(name) if size is None else f"{slug(name)}_target{size}")
            table, per_click = evaluate_to_folder(predictor, group, folder, info, **options)
            tables.append(table.assign(method=name))
            per_clicks.append(per_click.assign(method=name))
    first = ["method"]
    table = pd.concat(tables, ignore_index=True)
    per_click = pd.concat(per_clicks, ignore_index=True)
    return table[first + [c for c in table if c not in first]], per_click[first + [c for c in per_click
                                                                                 if c not in first]]


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run the evaluation and return the results table; a user error or Ctrl-C ends it (SystemExit 2 / 130)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.predictor is None and args.coarse is None:
        parser.error(f"give --predictor ({SPECS_HELP}) or --coarse and --fine")
    require_positive(parser, args, "max_clicks", "limit", "threads", "target_size", "coarse_size")
    if not 0 < args.target_iou <= 1:
        parser.error(f"--target-iou must be in (0, 1], got {args.target_iou}")
    parse_names(parser, "--datasets", args.datasets)
    check_brs(parser, args.brs)
    with reporting(parser.prog, args.debug):
        if args.out.exists() and any(p.name != LOCK_NAME for p in args.out.iterdir()) and not args.overwrite:
            parser.error(f"output folder {args.out} is not empty; choose another --out or pass --overwrite")
        with RunLock(args.out):
            return run(args)


def check_brs(parser: argparse.ArgumentParser, mode: str) -> None:
    """Refuse an unknown --brs mode before any work."""
    from iseg.inference.brs import brs_mode

    try:
        brs_mode(mode)
    except ValueError as error:
        parser.error(f"--brs: {error}")


def run(args: argparse.Namespace) -> pd.DataFrame:
    """The evaluation of parsed arguments, with the lock of --out held."""
    import torch

    from iseg.data import load_dataset, parse_dataset_spec

    if args.threads is not None:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    threads = torch.get_num_threads()

    specs = [parse_dataset_spec(s) for s in split_names(args.datasets, "--datasets")]
    datasets = [load_dataset(name, root, config=args.data_config) for name, root in specs]
    predictor = load_predictor(args.predictor, coarse=args.coarse, fine=args.fine, device=args.device,
                               flip=not args.no_flip, target_size=args.target_size,
                               coarse_size=args.coarse_size, brs=args.brs)
    table, _ = evaluate_to_folder(predictor, datasets, args.out, run_info(args, threads),
                                  max_clicks=args.max_clicks, target_iou=args.target_iou,
                                  stop_early=not args.full_curve, limit=args.limit, progress=not args.no_progress)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"device {args.device}, {threads} threads; written to {args.out}")
    return table


if __name__ == "__main__":
    main()
