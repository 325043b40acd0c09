"""Stand-in annotations for demonstrating the loop: BSDS500 photos with one annotator's human regions as a user's
objects, written in the `folder` format that the annotation session writes.

    python -m iseg.annotate.standin --out runs/bsds_test_standin --photos 32 --objects 3

BSDS500 `test` photos are disjoint from the GrabCut and Berkeley evaluation photos (docs/data.md); the training
that follows checks it again by content.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from iseg.atomic import atomic_path
from iseg.cli import add_debug_flag, reporting, require_positive
from iseg.data import load_dataset
from iseg.demo.controller import mask_png
from iseg.values import check_integer


def object_regions(masks: list[np.ndarray], count: int, min_area: int, max_share: float) -> list[np.ndarray]:
    """The `count` largest of `masks` with at least `min_area` pixels and at most `max_share` of the image."""
    fitting = [m for m in masks if min_area <= m.sum() <= max_share * m.size]
    return sorted(fitting, key=lambda m: -int(m.sum()))[:count]


def export_bsds(out: str | Path, *, split: str = "test", photos: int = 32, objects: int = 3, annotator: int = 0,
                min_area: int = 2000, max_share: float = 0.5, data_config: str | None = None) -> Path:
    """Write the first `photos` photos of BSDS500 `split` (by id) that have a fitting region, each with up to
    `objects` regions of annotator `annotator` (see `object_regions`), as images/<id>.jpg + masks/<id>_<k>.png."""
    out = Path(out)
    for name, value in (("photos", photos), ("objects", objects), ("min_area", min_area)):
        check_integer(name, value)
    if isinstance(annotator, bool) or not isinstance(annotator, int) or annotator < 0:
        raise ValueError(f"annotator must be an annotator number (0 or more), got {annotator!r}")
    if not 0 < max_share <= 1:
        raise ValueError(f"max_share must be in (0, 1], got {max_share!r}")
    dataset = load_dataset("BSDS500", split=split, config=data_config, per_instance=False)
    written, annotators = 0, set()
    for i, key in enumerate(dataset.image_keys):
        if written == photos:
            break
        found = dataset._read_objects(i)
        annotators.update(k.split(".")[0] for k in found.keys)
        masks = [m for m, k in zip(found.masks, found.keys) if k.split(".")[0] == str(annotator)]
        regions = object_regions(masks, objects, min_area, max_share)
        if not regions:
            continue
        for k, region in enumerate(regions, start=1):
            encoded = mask_png(region)
            with atomic_path(out / "masks" / f"{key}_{k}.png") as tmp:
                tmp.write_bytes(encoded)
        with atomic_path(out / "images" / f"{key}.jpg") as tmp:
            shutil.copyfile(dataset.image_path(i), tmp)
        written += 1
    if not written:
        raise ValueError(f"no BSDS500 {split} photo has a region of annotator {annotator} with {min_area} to "
                         f"{max_share:.0%} of the image's pixels; annotators found: {sorted(annotators, key=int)}")
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: python -m iseg.annotate.standin --out FOLDER [--photos N --objects K]."""
    parser = argparse.ArgumentParser(prog="python -m iseg.annotate.standin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--split", default="test", help="BSDS500 split (test: disjoint from GrabCut and Berkeley)")
    parser.add_argument("--photos", type=int, default=32)
    parser.add_argument("--objects", type=int, default=3, help="objects per photo (the largest fitting regions)")
    parser.add_argument("--annotator", type=int, default=0)
    parser.add_argument("--min-area", type=int, default=2000)
    parser.add_argument("--data-config", help="data config YAML (dataset name -> folder)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    require_positive(parser, args, "photos", "objects", "min_area")
    with reporting(parser.prog, args.debug):
        export_bsds(args.out, split=args.split, photos=args.photos, objects=args.objects, annotator=args.annotator,
                    min_area=args.min_area, data_config=args.data_config)
    print(f"{len(list((args.out / 'images').glob('*.jpg')))} photos written to {args.out}")


if __name__ == "__main__":
    main()


def demo_photos(split: str = "test", data_config: str | None = None) -> Path:
    """The folder of BSDS500 `split` photos in the data config, to try the annotation tool without photos of one's
    own."""
    return load_dataset("BSDS500", split=split, config=data_config).image_path(0).parent
