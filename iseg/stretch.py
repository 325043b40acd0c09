"""Continue training the default model in stretches: `python -m iseg.stretch coarse|fine --minutes M`.

A stretch warm-restarts one stage from the default model's weights (`<weights>/default_<stage>.pt`) with a fresh
cosine schedule fitted to M minutes (`budget_minutes`: the number of epochs follows from the first epoch's measured
pace, so the schedule is never cut), validates the starting weights and every epoch through the evaluation path
(the predictor `python -m iseg.evaluate` builds, on the trainer's held-out images), and ships the best epoch
(`iseg.weights.export_default`, the other stage kept as it is) only when it beats the starting weights. The fine
stage trains behind the default coarse network, as it serves. Every stretch, shipped or not, is appended to
`<weights>/stretches.csv` (the model card's log: date, samples, wall and training minutes, validation, cumulative
budget) and
`<weights>/stretches.png` is redrawn (validation against cumulative samples).

    python -m iseg.stretch coarse --minutes 60 --out runs/stretch_coarse_1
    python -m iseg.stretch fine --minutes 30 --out runs/stretch_fine_1
    cp -r weights runs/my_weights && python -m iseg.stretch coarse --minutes 5 --weights runs/my_weights --out runs/s

An interrupted stretch ships nothing; `python -m iseg.train <stage> --out <run> --resume` finishes it and
`python -m iseg.stretch <stage> --finish <run>` then decides and logs it.
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import time
from pathlib import Path

import pandas as pd

from iseg.atomic import write_text
from iseg.cli import add_debug_flag, reporting, require_positive
from iseg.models.checkpoint import load_checkpoint
from iseg.weights import STAGES, WEIGHTS_DIR, default_checkpoints, export_default

CONFIGS = {"coarse": "coarse_cpu", "fine": "fine_cpu"}
LOG_NAME = "stretches.csv"
PLOT_NAME = "stretches.png"
COLUMNS = ["date", "stage", "run", "config", "epochs", "samples", "minutes", "train_minutes", "samples_per_s",
           "start_val_score",
           "best_val_score", "best_epoch", "val_noc@90", "val_miou@1", "shipped", "cumulative_samples",
           "cumulative_minutes", "machine"]


def stretch_settings(stage: str, weights_dir: Path, minutes: float) -> dict:
    """The training settings of a stretch: start from the default's weights (the fine stage behind the default
    coarse network), fit the budget."""
    settings = {**start_settings(stage, "default", weights_dir), "budget_minutes": minutes}
    if stage == "fine":
        settings["coarse_checkpoint"] = str(default_checkpoints(weights_dir / "manifest.json")["coarse"])
    return settings


def start_settings(stage: str, start: str, weights_dir: Path = WEIGHTS_DIR) -> dict:
    """Training settings of a start: "scratch" (none) or "default" (a warm restart from the default model's weights
    of `stage`: validated first, best.pt holding them until an epoch beats them)."""
    if start not in ("scratch", "default"):
        raise ValueError(f"start must be 'scratch' or 'default', got {start!r}")
    if start == "scratch":
        return {}
    return {"init_checkpoint": str(default_checkpoints(weights_dir / "manifest.json")[stage])}


def read_log(weights_dir: Path) -> pd.DataFrame:
    """The stretch log of a weights folder (empty with the log's columns when there is none)."""
    path = weights_dir / LOG_NAME
    if not path.is_file():
        return pd.DataFrame(columns=COLUMNS)
    log = pd.read_csv(path)
    missing = sorted(set(COLUMNS) - set(log.columns))
    if missing:
        raise ValueError(f"{path} is not a stretch log: columns {missing} are missing")
    return log


def stretch_row(stage: str, run: Path, config: str, log: pd.DataFrame, wall_minutes: float | None = None) -> dict:
    """The log row of a finished stretch run folder (its metrics.csv and config.yaml). `minutes` is the stretch's
    wall time (data set-up and validation included) where known, else its epochs' training time; `train_minutes`
    the epochs' training time, which `samples_per_s` divides."""
    from iseg.bench import cpu_model
    from iseg.training.config import load_config
    from iseg.training.trainer import read_metrics

    cfg = load_config(run / "config.yaml")
    rows = read_metrics(run / "metrics.csv")
    trained = [r for r in rows if int(r["epoch"]) > 0]
    if not rows or int(rows[0]["epoch"]) != 0 or not trained:
        raise ValueError(f"{run} is not a finished stretch: metrics.csv needs the start row (epoch 0) and at least "
                         f"one trained epoch")
    start = float(rows[0]["val_score"])
    best = max(trained, key=lambda r: float(r["val_score"]))
    improved = float(best["val_score"]) > start
    chosen = best if improved else rows[0]
    samples = len(trained) * cfg.samples_per_epoch
    train_minutes = sum(float(r["seconds"]) for r in trained) / 60
    minutes = wall_minutes or train_minutes
    same_stage = log[log["stage"] == stage]
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"), "stage": stage,
            "run": str(run), "config": config, "epochs": len(trained), "samples": samples,
            "minutes": round(minutes, 1), "train_minutes": round(train_minutes, 1),
            "samples_per_s": round(samples / max(train_minutes * 60, 1e-9), 2),
            "start_val_score": start, "best_val_score": float(best["val_score"]), "best_epoch": int(best["epoch"]),
            "val_noc@90": float(chosen["val_noc@90"]), "val_miou@1": float(chosen["val_miou@1"]),
            "shipped": bool(improved),
            "cumulative_samples": int(same_stage["samples"].sum()) + samples,
            "cumulative_minutes": round(float(log["minutes"].sum()) + minutes, 1),
            "machine": f"{cpu_model()}, {cfg.threads} threads"}


def finish(stage: str, run: Path, weights_dir: Path, config: str, wall_minutes: float | None = None) -> dict:
    """Ship a finished stretch's best epoch when it beat its start; append its row to the log; redraw the plot."""
    log = read_log(weights_dir)
    row = stretch_row(stage, run, config, log, wall_minutes)
    if row["shipped"]:
        best = run / "checkpoints" / "best.pt"
        if load_checkpoint(best).get("epoch") != row["best_epoch"]:
            raise ValueError(f"{best} is not the best epoch ({row['best_epoch']}) of {run / 'metrics.csv'}")
        current = default_checkpoints(weights_dir / "manifest.json")
        current[stage] = best
        export_default(current, weights_dir, force=True)
    log = pd.concat([log, pd.DataFrame([row])], ignore_index=True)[COLUMNS]
    text = io.StringIO()
    log.to_csv(text, index=False)
    write_text(weights_dir / LOG_NAME, text.getvalue())
    plot_log(log, weights_dir / PLOT_NAME)
    return row


def plot_log(log: pd.DataFrame, path: Path) -> None:
    """Validation score of each stage's default model against that stage's cumulative training samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for stage in STAGES:
        rows = log[log["stage"] == stage]
        if rows.empty:
            continue
        score = rows["best_val_score"].where(rows["shipped"].astype(bool), rows["start_val_score"])
        line, = ax.plot(rows["cumulative_samples"], score, marker="o", label=f"{stage} (shipped model)")
        rejected = rows[~rows["shipped"].astype(bool)]
        ax.scatter(rejected["cumulative_samples"], rejected["best_val_score"], marker="x", color=line.get_color(),
                   label=f"{stage}: stretch not shipped" if len(rejected) else None)
    ax.set_xlabel("training samples of the stage, cumulative")
    ax.set_ylabel("validation score (mean mIoU@1-5)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.new.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m iseg.stretch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--minutes", type=float, help="wall-clock budget of the stretch (training + validation)")
    parser.add_argument("--out", help="run folder of the stretch, e.g. runs/stretch_coarse_1")
    parser.add_argument("--config", help="training config (default: coarse_cpu / fine_cpu)")
    parser.add_argument("--weights", default=str(WEIGHTS_DIR), help="the default model's folder (default: %(default)s)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    parser.add_argument("--threads", type=int, help="torch threads")
    parser.add_argument("--finish", metavar="RUN", help="only decide, ship and log an already trained stretch run")
    parser.add_argument("--no-progress", action="store_true")
    add_debug_flag(parser)
    return parser


def main(argv: list[str] | None = None) -> dict:
    """Train a stretch (or --finish one), ship it when validation improved, log it; prints its log row."""
    parser = build_parser()
    args = parser.parse_args(argv)
    require_positive(parser, args, "threads")
    weights_dir = Path(args.weights)
    config = args.config or CONFIGS[args.stage]
    with reporting(parser.prog, args.debug):
        if args.finish:
            row = finish(args.stage, Path(args.finish), weights_dir, config)
        else:
            if args.minutes is None or not 0 < args.minutes < float("inf") or not args.out:
                parser.error("a stretch needs --minutes (a positive number) and --out (or --finish RUN)")
            from iseg.train import launch
            from iseg.training.config import parse_overrides

            settings = {**stretch_settings(args.stage, weights_dir, args.minutes), **parse_overrides(args.set)}
            started = time.time()
            launch(args.stage, args.out, config=config, threads=args.threads, set=settings,
                   no_progress=args.no_progress)
            row = finish(args.stage, Path(args.out), weights_dir, config, (time.time() - started) / 60)
    verdict = "shipped" if row["shipped"] else "not shipped (validation did not improve)"
    print(f"{args.stage} stretch: val_score {row['start_val_score']:.4f} -> best {row['best_val_score']:.4f} "
          f"(epoch {row['best_epoch']}), {row['samples']} samples in {row['minutes']} min: {verdict}")
    return row


if __name__ == "__main__":
    main()
