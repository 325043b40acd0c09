"""Command line for training: `python -m iseg.train coarse|fine ...` (also under `torchrun -m iseg.train`).

Examples:
    python -m iseg.train coarse --config coarse_cpu --data COCO_MVal:1,BSDS500:0.5 --val COCO_MVal --out runs/c1
    python -m iseg.train fine --config fine_cpu --coarse runs/c1/checkpoints/last.pt --data COCO_MVal --out runs/f1
    python -m iseg.train coarse --out runs/c1 --resume --epochs 40      # continue a run (its config.yaml)

Settings are resolved in order: the config (a name in iseg/configs/train, a YAML path, or the run's config.yaml
on --resume), then the explicit flags, then `--set key=value` pairs (any TrainConfig field, values as YAML).
Errors end with one line and exit status 2; Ctrl-C says how to resume (docs/errors.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from iseg.cli import Interrupted, RunLock, add_debug_flag, reporting, require_positive
from iseg.data import canonical_name, parse_dataset_spec
from iseg.interrupt import guarded
from iseg.training.config import TrainConfig, list_configs, load_config, parse_overrides
from iseg.training.data import check_val_name, parse_data_arg

FLAGS = {"data_config": "data_config", "val": "val", "device": "device", "epochs": "epochs",
         "batch_size": "batch_size", "lr": "lr", "num_workers": "num_workers", "coarse": "coarse_checkpoint",
         "samples_per_epoch": "samples_per_epoch", "threads": "threads", "seed": "seed"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (subcommands coarse and fine share every option)."""
    parser = argparse.ArgumentParser(prog="python -m iseg.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["coarse", "fine"], help="stage 1 (coarse) or stage 2 (fine)")
    parser.add_argument("--config", help=f"training config name ({', '.join(list_configs())}) or YAML path")
    parser.add_argument("--data", help="training mix NAME[=PATH][:WEIGHT],... e.g. COCO_MVal:1,BSDS500:0.5")
    parser.add_argument("--data-config", help="data config YAML (dataset name -> folder)")
    parser.add_argument("--val", help="validation dataset (a held-out part of it; never GrabCut/Berkeley)")
    parser.add_argument("--out", required=True, help="run folder, e.g. runs/<name>")
    parser.add_argument("--coarse", help="stage 2: the coarse network's checkpoint")
    parser.add_argument("--device", help="cpu | cuda | cuda:N | auto")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, help="global batch size (split over processes)")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--samples-per-epoch", type=int)
    parser.add_argument("--num-workers", type=int)
    parser.add_argument("--threads", type=int, help="torch threads per process")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoints/last.pt")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_debug_flag(parser)
    return parser


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of the parsed arguments (see the module docstring for the order)."""
    base = args.config
    if args.resume and not (Path(args.out) / "checkpoints" / "last.pt").is_file():
        raise FileNotFoundError(f"--resume: {args.out} holds no run to resume (no checkpoints/last.pt); "
                                "start one without --resume")
    if base is None and args.resume:
        base = str(Path(args.out) / "config.yaml")
    overrides = {"stage": args.stage}
    if args.data is not None:
        overrides["data"] = parse_data_arg(args.data)
    overrides.update({key: getattr(args, flag) for flag, key in FLAGS.items() if getattr(args, flag) is not None})
    overrides.update(parse_overrides(args.set))
    cfg = load_config(base, overrides)
    check_dataset_names(cfg)
    return cfg


def check_dataset_names(cfg: TrainConfig) -> None:
    """Fail early, with the list of known names, on an unknown dataset in data or val, or a benchmark as val."""
    for spec in [*cfg.data, *([cfg.val] if cfg.val else [])]:
        try:
            canonical_name(parse_dataset_spec(spec)[0])
        except ValueError as error:
            raise ValueError(f"--data/--val {spec!r}: {error}") from None
    if cfg.val:
        check_val_name(cfg.val, cfg.exclude)


def main(argv: list[str] | None = None) -> int:
    """Parse, resolve the config, train; returns 0. A user error ends with one line and SystemExit(2), Ctrl-C
    with how to resume and SystemExit(130)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    require_positive(parser, args, "epochs", "batch_size", "samples_per_epoch", "threads")
    with reporting(parser.prog, args.debug):
        try:
            cfg = resolve_config(args)
        except (ValueError, FileNotFoundError) as error:
            parser.error(str(error))
        check_epochs_left(cfg, args)
        from iseg.training.trainer import train

        main_process = os.environ.get("RANK", "0") == "0"
        with RunLock(args.out) if main_process else contextlib.nullcontext():
            try:
                with guarded():
                    out = train(cfg, args.out, resume=args.resume, progress=not args.no_progress)
            except KeyboardInterrupt:
                raise Interrupted(resume_note(args)) from None
    if main_process:
        print(f"run folder: {out}")
    return 0


def finished_epochs(out: str | Path) -> int:
    """The last epoch recorded in a run folder's metrics.csv (0 when none)."""
    from iseg.training.trainer import read_metrics

    return max((int(row["epoch"]) for row in read_metrics(Path(out) / "metrics.csv")), default=0)


def check_epochs_left(cfg: TrainConfig, args: argparse.Namespace) -> None:
    """On --resume, raise when the run has already finished cfg.epochs (it would train nothing)."""
    done = finished_epochs(args.out) if args.resume else 0
    if done >= cfg.epochs:
        raise ValueError(f"--resume: {args.out} has already finished epoch {done} of {cfg.epochs}; pass "
                         f"--epochs N with N > {done} to train further")


def resume_note(args: argparse.Namespace) -> str:
    """What Ctrl-C kept of a training run and the command that continues it."""
    done = finished_epochs(args.out)
    if not done:
        return f"no epoch finished, nothing to resume in {args.out}: start again"
    return (f"{args.out} keeps epoch {done} (checkpoints/last.pt); continue with: "
            f"python -m iseg.train {args.stage} --out {args.out} --resume")


def to_argv(stage: str, out: str | Path, options: dict[str, Any]) -> list[str]:
    """CLI arguments from keyword options: {"epochs": 3, "resume": True, "set": {"lr": 1e-4}}; None/False/"" skipped
    (0 is a value, passed on)."""
    argv = [stage, "--out", str(out)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if key == "set":
            for name, setting in (value or {}).items():
                argv += ["--set", f"{name}={json.dumps(setting)}"]
        elif value is True:
            argv.append(flag)
        elif value is not None and value is not False and value != "":
            argv += [flag, str(value)]
    return argv


def launch(stage: str, out: str | Path, *, nproc: int = 1, **options: Any) -> Path:
    """Train from Python (e.g. a notebook): in this process for nproc 1, under torchrun for more.

    `options` are the CLI flags by name (config, data, val, epochs, batch_size, device, coarse, resume, set, ...).
    Raises RuntimeError when training fails; returns the run folder.
    """
    argv = to_argv(stage, out, options)
    if nproc <= 1:
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
        if code:
            raise RuntimeError(f"training failed (exit code {code}): python -m iseg.train {' '.join(argv)}")
        return Path(out)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "iseg.train", *argv]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            print(line, end="")
    if proc.returncode:
        raise RuntimeError(f"training failed (exit code {proc.returncode}): {' '.join(command)}")
    return Path(out)


if __name__ == "__main__":
    sys.exit(main())
