"""The simulated annotator: photos of a dataset annotated through an `AnnotationSession` by the protocol's user.

    python -m iseg.annotate.simulate --dataset CVC_ClinicDB_train --photos 100 --category polyp \
        --out runs/cvc_annotate_100

Each photo's object is clicked as the evaluation protocol clicks (`iseg.clicks.Clicker`: the deepest pixel of the
larger error against the ground truth) until the saved mask reaches `target_iou` against it or `max_clicks` clicks
were spent; the mask saved is the model's, as a user's would be, not the ground truth. The run folder is what a
user annotating by hand in notebook 06 gets, plus the cost:

    photos/                 links to the chosen photos (the session's photo folder)
    annotation/             the session's folder: `folder` dataset, COCO json, annotation_log.csv
    simulation.csv          per photo: its group (e.g. video sequence), clicks, IoU of the saved mask, seconds
    simulation.json         the command, the predictor, the totals

Which photos: `spread_photos` takes them in turns from each group (a dataset's `sequences`, e.g. CVC-ClinicDB's
videos; else every photo is its own group), so a budget covers as many groups as it can and a smaller budget's
photos are the first of a larger one's. One object per photo (the first of the photo's objects).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import defaultdict
from itertools import zip_longest
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from iseg.annotate.coco import CATEGORY
from iseg.annotate.session import AnnotationSession
from iseg.atomic import write_text
from iseg.cli import add_debug_flag, reporting, require_positive
from iseg.clicks import Clicker
from iseg.metrics import iou
from iseg.protocol import MAX_CLICKS, PRED_THRESHOLD
from iseg.values import check_integer


def spread_photos(keys: list[str], groups: dict[str, int] | None, count: int) -> list[str]:
    """`count` of `keys` taken in turns from each group (groups in number order, photos in name order)."""
    check_integer("photos", count)
    if count > len(keys):
        raise ValueError(f"asked for {count} photos, but the dataset has {len(keys)}")
    members: dict[object, list[str]] = defaultdict(list)
    for key in sorted(keys):
        members[groups[key] if groups else key].append(key)
    turns = zip_longest(*(members[group] for group in sorted(members)))
    return [key for turn in turns for key in turn if key is not None][:count]


def link_photos(paths: list[Path], folder: Path) -> Path:
    """A photo folder of links to `paths` (copies where links are not allowed); links already there are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        target = folder / path.name
        if target.exists():
            continue
        try:
            os.symlink(path.resolve(), target)
        except OSError:
            shutil.copyfile(path, target)
    return folder


def annotation_photos(dataset, count: int, folder: str | Path) -> Path:
    """The photo folder `folder` holding links to `count` photos of `dataset` spread over its groups
    (`spread_photos`): what notebook 06 offers to annotate by hand, and the simulated annotator annotates."""
    chosen = spread_photos(list(dataset.image_keys), getattr(dataset, "sequences", None), count)
    return link_photos([dataset.image_path(dataset.image_keys.index(key)) for key in chosen], Path(folder))


def annotate_photo(session: AnnotationSession, gt_mask, target_iou: float, max_clicks: int) -> tuple[int, float]:
    """Click the current photo's new object as the protocol's user until its mask reaches `target_iou`; (clicks,
    IoU of the saved mask)."""
    clicker = Clicker(gt_mask)
    pred = np.zeros(gt_mask.shape, bool)
    reached = 0.0
    for clicks in range(1, max_clicks + 1):
        click = clicker.make_next_click(pred)
        session.click(click.row, click.col, click.is_positive)
        pred = session.controller.prob > PRED_THRESHOLD
        reached = iou(gt_mask, pred)
        if reached >= target_iou:
            break
    return clicks, reached


def simulate(dataset, out: str | Path, predictor, *, photos: int, category: str = CATEGORY,
             target_iou: float = 0.90, max_clicks: int = MAX_CLICKS, progress: bool = True) -> pd.DataFrame:
    """Annotate `photos` photos of `dataset` (an `ObjectsDataset`, per-object) into the run folder `out` with
    `predictor`; returns the per-photo table (see the module docstring)."""
    out = Path(out)
    check_integer("max_clicks", max_clicks)
    if not 0 < target_iou <= 1:
        raise ValueError(f"target_iou must be in (0, 1], got {target_iou}")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"run folder {out} is not empty; choose another --out")
    groups = getattr(dataset, "sequences", None)
    chosen = spread_photos(list(dataset.image_keys), groups, photos)
    paths = {key: dataset.image_path(dataset.image_keys.index(key)) for key in chosen}
    session = AnnotationSession(link_photos(list(paths.values()), out / "photos"), out / "annotation", predictor,
                                category=category)
    first_sample = {}
    for j, (i, _) in enumerate(dataset.index):
        first_sample.setdefault(dataset.image_keys[i], j)
    rows = []
    for key in tqdm(chosen, desc="simulated annotation", disable=not progress):
        sample = dataset[first_sample[key]]
        session.go_to(session.names.index(paths[key].stem))
        start = time.perf_counter()
        clicks, reached = annotate_photo(session, sample.mask, target_iou, max_clicks)
        rows.append({"photo": key, "group": groups[key] if groups else "", "clicks": clicks,
                     "iou": round(reached, 5), "seconds": round(time.perf_counter() - start, 3)})
    table = pd.DataFrame(rows)
    write_text(out / "simulation.csv", table.to_csv(index=False))
    summary = {"command": " ".join(["python -m iseg.annotate.simulate", *sys.argv[1:]]), "dataset": dataset.name,
               "photos": len(table), "groups": int(table["group"].nunique()), "category": category,
               "target_iou": target_iou, "max_clicks": max_clicks, "clicks": int(table["clicks"].sum()),
               "clicks_per_photo": round(float(table["clicks"].mean()), 3),
               "reached_target": int((table["iou"] >= target_iou).sum()),
               "mean_iou": round(float(table["iou"].mean()), 4), "seconds": round(float(table["seconds"].sum()), 1)}
    write_text(out / "simulation.json", json.dumps(summary, indent=2) + "\n")
    return table


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="python -m iseg.annotate.simulate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", required=True, help="dataset to annotate, NAME or NAME=PATH (e.g. CVC_ClinicDB_train)")
    p.add_argument("--photos", type=int, required=True, help="how many photos to annotate (the budget)")
    p.add_argument("--out", required=True, type=Path, help="run folder, e.g. runs/cvc_annotate_100")
    p.add_argument("--category", default=CATEGORY, help="category of the objects in the COCO export")
    p.add_argument("--predictor", default="default", help="the model that annotates (iseg.predictor spec)")
    p.add_argument("--target-iou", type=float, default=0.90, help="stop clicking a photo at this IoU")
    p.add_argument("--max-clicks", type=int, default=MAX_CLICKS, help="most clicks spent on one photo")
    p.add_argument("--flip", action="store_true", help="test-time flip (the annotator's default is without)")
    p.add_argument("--data-config", help="data config YAML (default: data_configs/default.yaml)")
    p.add_argument("--threads", type=int, help="torch threads")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_debug_flag(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse, annotate, print the totals; a user error ends with one line and SystemExit(2)."""
    import torch

    from iseg.data import load_dataset, parse_dataset_spec
    from iseg.predictor import load_predictor

    parser = build_parser()
    args = parser.parse_args(argv)
    require_positive(parser, args, "photos", "max_clicks", "threads")
    if args.threads:
        torch.set_num_threads(args.threads)
    with reporting(parser.prog, args.debug):
        dataset = load_dataset(*parse_dataset_spec(args.dataset), config=args.data_config)
        predictor = load_predictor(args.predictor, device=args.device, flip=args.flip)
        simulate(dataset, args.out, predictor, photos=args.photos, category=args.category,
                 target_iou=args.target_iou, max_clicks=args.max_clicks, progress=not args.no_progress)
    print((args.out / "simulation.json").read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
