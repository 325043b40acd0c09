"""Fine-tune the default model on an annotated folder, and measure whether it helped, where it should and where
it must not get worse.

    python -m iseg.finetune --data runs/annotate/my_photos --out runs/finetune_mine
    python -m iseg.finetune --data runs/cvc_annotate_100/annotation --holdout 0 \
        --eval CVC_ClinicDB_test,GrabCut,Berkeley --mix 0.3 --out runs/finetune_cvc_100

The folder (`folder` format, e.g. written by notebook 06) is split by photo, never by object: `--holdout` of its
photos (those whose sha1 of "folder/<stem>" is smallest, so a folder always splits the same way) are never trained
on; `--holdout 0` trains on every photo and needs `--eval`: datasets to measure on (e.g. the held-out sequences of
a video dataset; the old domain, to see what fine-tuning forgot), whose photos are kept out of training by content.
`--mix S` draws a share S of the training samples from the base model's own training data (its checkpoint's
`data`), which keeps what it knew. With the project's trainer (`iseg.training.train`, configs
`finetune_coarse`/`finetune_fine`):
  1. coarse: the base model's coarse network fine-tuned on the rest of the photos;
  2. fine: the base model's fine network fine-tuned on the zoom-in crops of the new coarse network.
`--stages fine` fine-tunes the fine network only (the base coarse network stays). Then the base model (unless
`--no-before`: measured elsewhere) and the fine-tuned cascade are evaluated with the standard protocol on every
object of the held-out photos and the `--eval` sets (each stops at IoU 0.90 as in `iseg.evaluate`, or runs every
click with `--full-curve`) and the table printed. The networks serve at the base model's input sizes, before and
after.

Run folder (`--out`):
    split.json                  the photos of each part
    data/{train,holdout}/       the two parts as `folder` datasets (links to the annotated files)
    coarse/, fine/              the training runs (config.yaml, metrics.csv, checkpoints/last.pt, curves.png)
    model/                      the fine-tuned cascade as a model folder (fp16 checkpoints, manifest.json with
                                its training data and budget): `--predictor runs/<run>/model` for iseg.evaluate,
                                the demo and the annotator
    evaluate/                   results.csv and ious.csv, miou_<dataset>.{png,svg}, one folder per method
    finetune.json               the command, the split, the minutes of each stage, the checkpoints and the table
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

from iseg.atomic import write_text
from iseg.data import load_dataset, parse_dataset_spec
from iseg.data.io import find_images
from iseg.cli import add_debug_flag, reporting, require_positive
from iseg.protocol import MAX_CLICKS, TARGET_SIZE
from iseg.values import check_integer, split_names

STAGES = ("coarse", "fine")
BEFORE, AFTER = "before (base model)", "after (fine-tuned)"


def split_photos(stems: list[str], holdout: float) -> dict[str, list[str]]:
    """{"train": [...], "holdout": [...]} by photo: round(holdout x photos) (>= 1) photos, smallest sha1 first;
    holdout 0: every photo trains."""
    from iseg.training.data import held_out

    if holdout == 0 and stems:
        return {"train": list(stems), "holdout": []}
    if len(stems) < 2:
        raise ValueError(f"fine-tuning needs at least 2 annotated photos (one to train on, one to hold out), "
                         f"got {len(stems)}")
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be a share of the photos in [0, 1), got {holdout}")
    count = min(len(stems) - 1, max(1, round(holdout * len(stems))))
    kept = {stems[j] for j in held_out([f"folder/{s}" for s in stems], count)}
    return {"train": [s for s in stems if s not in kept], "holdout": [s for s in stems if s in kept]}


def link_part(source: Path, stems: list[str], target: Path) -> Path:
    """A `folder` dataset at `target` holding photos `stems` of the `folder` dataset `source` (symbolic links to
    its images and masks; copies where links are not allowed)."""
    images = find_images(source / "images")
    wanted = set(stems)
    pattern = re.compile(r"(?P<stem>.+?)(_\d+)?\.png")
    files = [images[s] for s in stems] + [p for p in sorted((source / "masks").iterdir())
                                         if (m := pattern.fullmatch(p.name)) and
                                         (p.stem in wanted or (m["stem"] in wanted and p.stem not in images))]
    for path in files:
        link = target / path.parent.name / path.name
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(path.resolve(), link)
        except OSError:
            shutil.copyfile(path, link)
    return target


def base_checkpoints(coarse: str | Path | None, fine: str | Path | None) -> dict[str, Path]:
    """The cascade to start from: the given checkpoints, or the shipped default model's."""
    if coarse is None and fine is None:
        from iseg.weights import default_checkpoints

        return default_checkpoints()
    if coarse is None or fine is None:
        raise ValueError(f"give both --coarse and --fine checkpoints of the base cascade, got coarse={coarse!r}, "
                         f"fine={fine!r}")
    return {"coarse": Path(coarse), "fine": Path(fine)}


def mixed_data(train_dir: Path, base_config: dict, mix: float) -> tuple[dict[str, float], dict]:
    """(data weights, data options) of a stage: the annotated folder, and a share `mix` of the samples from the
    base network's own training data (`base_config`: its checkpoint's train_config)."""
    folder = f"folder={train_dir.resolve()}"
    original = base_config.get("data") or {}
    if mix == 0:
        return {folder: 1.0}, {}
    if not original:
        raise ValueError("mix needs the base model's training data, but its checkpoint records none")
    total = sum(original.values())
    return ({folder: 1.0 - mix, **{spec: mix * weight / total for spec, weight in original.items()}},
            dict(base_config.get("data_options") or {}))


def stage_config(stage: str, train_dir: Path, init: Path, sizes: dict[str, int], coarse: Path | None,
                 overrides: dict, mix: float = 0.0, protect: tuple[str, ...] = ()):
    """The TrainConfig of one fine-tuning stage (config `finetune_<stage>`, then the folder (and a share `mix` of
    the base network's data), the starting network and the base model's input sizes, then `overrides`); the
    datasets of `protect` are added to its `exclude` (kept out of training by content)."""
    from iseg.models import load_checkpoint
    from iseg.training.config import load_config

    payload = load_checkpoint(init)
    data, options = mixed_data(train_dir, payload.get("train_config") or {}, mix)
    settings = {"data": data, "data_options": options, "init_checkpoint": str(init),
                "model": payload["model_config"].get("name", "custom"),
                "coarse_size": sizes["coarse"], "fine_size": sizes["fine"]}
    if stage == "coarse":
        settings["augment.long_side"] = sizes["coarse"]
    else:
        settings["coarse_checkpoint"] = str(coarse)
    cfg = load_config(f"finetune_{stage}", {**settings, **overrides})
    return replace(cfg, exclude=(*cfg.exclude, *(spec for spec in protect if spec not in cfg.exclude)))


def plot_runs(out: Path, ious: pd.DataFrame, max_clicks: int, stages: list[str]) -> None:
    """evaluate/miou_<dataset>.{png,svg} (before and after) and each training run's curves.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from iseg.visualize import plot_miou_curves, plot_training_curves, save_figure

    for dataset, rows in ious.groupby("dataset", sort=False):
        title = "held-out photos" if dataset == "holdout" else dataset
        ax = plot_miou_curves(rows, max_clicks=max_clicks, title=title)
        save_figure(ax.figure, out / "evaluate" / f"miou_{dataset}")
        plt.close(ax.figure)
    for stage in stages:
        fig = plot_training_curves(pd.read_csv(out / stage / "metrics.csv"), title=f"fine-tuning: {stage}")
        save_figure(fig, out / stage / "curves", formats=("png",))
        plt.close(fig)


def finetune(data: str | Path, out: str | Path, *, coarse: str | Path | None = None,
             fine: str | Path | None = None, stages: tuple[str, ...] = STAGES, holdout: float = 0.25,
             eval_sets: tuple[str, ...] = (), before: bool = True, mix: float = 0.0, overrides: dict | None = None,
             max_clicks: int = MAX_CLICKS, full_curve: bool = False, flip: bool = True, device: str = "cpu",
             limit: int | None = None, data_config: str | Path | None = None, progress: bool = True) -> pd.DataFrame:
    """Split `data` by photo, fine-tune the base cascade (`coarse` + `fine`, default: the shipped model) on the
    training part (with a share `mix` of the base model's training data), export it as a model folder, evaluate it
    (and the base model, with `before`) on the held-out part and on the datasets `eval_sets`; returns the results
    table (see the module docstring for the run folder). `overrides` are TrainConfig settings for every stage
    (e.g. {"epochs": 2}); `limit` evaluates the first `limit` objects of each set only (a quick look)."""
    from iseg.evaluate import compare
    from iseg.models.checkpoint import read_input_sizes
    from iseg.training.trainer import train
    from iseg.weights import export_default

    data, out = Path(data), Path(out)
    unknown = set(stages) - set(STAGES)
    if unknown or not stages:
        raise ValueError(f"stages must be among {STAGES}, got {stages}")
    check_integer("max_clicks", max_clicks)
    if not 0 <= mix < 1:
        raise ValueError(f"mix must be a share of the training samples in [0, 1), got {mix}")
    if holdout == 0 and not eval_sets:
        raise ValueError("holdout 0 keeps no photo aside: give datasets to evaluate on (--eval), or a holdout share")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"run folder {out} is not empty; choose another --out")
    stems = load_dataset("folder", data).image_keys  # checks the folder (layout, masks for every photo)
    split = split_photos(list(stems), holdout)
    evaluation = [load_dataset(*parse_dataset_spec(spec), config=data_config) for spec in eval_sets]
    base = base_checkpoints(coarse, fine)
    sizes = read_input_sizes(base["fine"]) or {"coarse": TARGET_SIZE, "fine": TARGET_SIZE}
    settings = {"overrides": {**(overrides or {}), **({"data_config": str(data_config)} if data_config else {})},
                "mix": mix, "protect": tuple(eval_sets)}
    write_text(out / "split.json", json.dumps(split, indent=1) + "\n")
    parts = {part: link_part(data, split[part], out / "data" / part) for part in split}
    for stage in stages:  # every stage's settings are checked before any training
        stage_config(stage, parts["train"], base[stage], sizes, base["coarse"], **settings)
    tuned, minutes, samples = dict(base), {}, {}
    for stage in (s for s in STAGES if s in stages):
        start = time.monotonic()
        cfg = stage_config(stage, parts["train"], base[stage], sizes, tuned["coarse"], **settings)
        tuned[stage] = train(cfg, out / stage, progress=progress) / "checkpoints" / "last.pt"
        minutes[stage] = round((time.monotonic() - start) / 60, 2)
        samples[stage] = cfg.epochs * cfg.samples_per_epoch
    about = {"base": {k: str(v) for k, v in base.items()}, "data": str(data.resolve()),
             "photos": len(split["train"]), "stages": list(minutes), "mix": mix, "minutes": minutes,
             "samples": samples}
    export_default({k: tuned[k] for k in STAGES}, out / "model", about=about)

    if split["holdout"]:
        holdout_set = load_dataset("folder", parts["holdout"])
        holdout_set.name = "holdout"
        evaluation.insert(0, holdout_set)
    methods = {AFTER: {"spec": str(out / "model")}}
    if before:
        methods = {BEFORE: {"coarse": base["coarse"], "fine": base["fine"]}, **methods}
    table, ious = compare(methods, evaluation, out / "evaluate", device=device, flip=flip,
                          max_clicks=max_clicks, stop_early=not full_curve, limit=limit, progress=progress)
    write_text(out / "evaluate" / "results.csv", table.to_csv(index=False))
    write_text(out / "evaluate" / "ious.csv", ious.to_csv(index=False))
    plot_runs(out, ious, max_clicks, [s for s in STAGES if s in stages])
    summary = {"command": " ".join(["python -m iseg.finetune", *sys.argv[1:]]), "data": str(data),
               "photos": {part: len(stems) for part, stems in split.items()},
               "evaluated_on": {getattr(d, "name", ""): len(d) for d in evaluation}, "stages": list(stages),
               "mix": mix, "minutes": minutes, "input_sizes": sizes, "flip": flip, "max_clicks": max_clicks,
               "full_curve": full_curve, "limit": limit,
               "checkpoints": {"before": {k: str(v) for k, v in base.items()},
                               "after": {k: str(v) for k, v in tuned.items()}, "model": str(out / "model")},
               "results": table.to_dict(orient="records")}
    write_text(out / "finetune.json", json.dumps(summary, indent=2, default=str) + "\n")
    return table


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="python -m iseg.finetune", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="annotated folder (images/ + masks/, the `folder` format)")
    p.add_argument("--out", required=True, type=Path, help="run folder, e.g. runs/finetune_<name>")
    p.add_argument("--holdout", type=float, default=0.25,
                   help="share of the photos kept aside for evaluation (0: train on every photo; needs --eval)")
    p.add_argument("--eval", default="", metavar="DATASETS",
                   help="datasets to evaluate on too, NAME or NAME=PATH, comma-separated (e.g. "
                        "CVC_ClinicDB_test,GrabCut,Berkeley); their photos never reach training")
    p.add_argument("--no-before", action="store_true",
                   help="evaluate only the fine-tuned model (the base model measured elsewhere)")
    p.add_argument("--mix", type=float, default=0.0,
                   help="share of the training samples drawn from the base model's own training data (keeps what "
                        "it knew)")
    p.add_argument("--data-config", help="data config YAML (default: data_configs/default.yaml)")
    p.add_argument("--stages", default="coarse,fine", help="networks to fine-tune: coarse,fine or fine")
    p.add_argument("--coarse", help="base cascade's coarse checkpoint (default: the shipped default model)")
    p.add_argument("--fine", help="base cascade's fine checkpoint (with --coarse)")
    p.add_argument("--epochs", type=int, help="epochs of each stage (default: the finetune_* configs')")
    p.add_argument("--samples-per-epoch", type=int, help="training samples per epoch of each stage")
    p.add_argument("--threads", type=int, help="torch threads (training and evaluation)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any training config key, for every stage (e.g. lr=1e-4, exclude=[])")
    p.add_argument("--max-clicks", type=int, default=MAX_CLICKS)
    p.add_argument("--full-curve", action="store_true",
                   help="run all max clicks on every held-out object (else each stops at IoU 0.90, as iseg.evaluate)")
    p.add_argument("--no-flip", action="store_true", help="no test-time flip in the evaluation")
    p.add_argument("--limit", type=int, help="evaluate only the first N objects of each set (a quick look)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (training and evaluation)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_debug_flag(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse, fine-tune, print the before/after table; a user error ends with one line and SystemExit(2)."""
    import torch

    from iseg.training.config import parse_overrides

    parser = build_parser()
    args = parser.parse_args(argv)
    require_positive(parser, args, "epochs", "samples_per_epoch", "threads", "max_clicks", "limit")
    try:
        overrides = parse_overrides(args.set)
    except ValueError as error:
        parser.error(str(error))
    for key, value in (("epochs", args.epochs), ("samples_per_epoch", args.samples_per_epoch),
                       ("threads", args.threads), ("device", args.device)):
        if value is not None:
            overrides[key] = value
    if args.threads:
        torch.set_num_threads(args.threads)
    with reporting(parser.prog, args.debug):
        table = finetune(args.data, args.out, coarse=args.coarse, fine=args.fine,
                         stages=tuple(s.strip() for s in args.stages.split(",")), holdout=args.holdout,
                         eval_sets=tuple(split_names(args.eval, "--eval")) if args.eval else (),
                         before=not args.no_before, mix=args.mix, data_config=args.data_config,
                         overrides=overrides, max_clicks=args.max_clicks, full_curve=args.full_curve,
                         flip=not args.no_flip, device=args.device, limit=args.limit, progress=not args.no_progress)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
