"""COCO instance segmentation for annotated objects: compressed RLE masks written through pycocotools."""

from __future__ import annotations

import warnings

import numpy as np
from pycocotools import mask as mask_utils

CATEGORY = "object"


def check_category(name: str) -> str:
    """A category name stripped of surrounding spaces; an empty or non-text one is refused."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a category is a non-empty name such as 'polyp', got {name!r}")
    return name.strip()


def encode_mask(mask: np.ndarray) -> dict:
    """(H, W) bool mask -> {"segmentation": compressed RLE (counts as str), "area": pixels, "bbox": [x, y, w, h]};
    a mask of other values than 0 and 1 is refused (a label map is not one object)."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or (mask.dtype != bool and not np.isin(mask, (0, 1)).all()):
        found = np.unique(mask)[:5].tolist() if mask.size else []
        raise ValueError(f"encode_mask needs an (H, W) mask of 0/1 or bool values, got shape {mask.shape} dtype "
                         f"{mask.dtype} with values {found}")
    with warnings.catch_warnings():  # pycocotools' numpy-2 "copy keyword" deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        area, bbox = float(mask_utils.area(rle)), [float(v) for v in mask_utils.toBbox(rle)]
    return {"segmentation": {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")},
            "area": area, "bbox": bbox}


def decode_mask(segmentation: dict) -> np.ndarray:
    """A compressed RLE written by `encode_mask` -> (H, W) bool mask."""
    rle = {"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


def coco_document(images: list[dict], objects: list[list[dict]]) -> dict:
    """The COCO json: `images` ({"file_name", "height", "width"} each) and, per image, its objects (the
    `encode_mask` fields plus "id", "category" and "clicks"/"seconds"). Images are numbered 1.. in order,
    annotations 1..; categories 1.. in name order; each annotation keeps the object's number in `iseg_object` and
    its annotation cost."""
    names = sorted({check_category(obj["category"]) for image_objects in objects for obj in image_objects})
    category_ids = {name: number for number, name in enumerate(names, start=1)}
    document = {"info": {"description": "iseg annotations (clicks through an interactive segmentation model)"},
                "images": [], "annotations": [],
                "categories": [{"id": number, "name": name} for name, number in category_ids.items()]}
    for image_id, (image, image_objects) in enumerate(zip(images, objects), start=1):
        document["images"].append({"id": image_id, **image})
        for obj in image_objects:
            document["annotations"].append({
                "id": len(document["annotations"]) + 1, "image_id": image_id,
                "category_id": category_ids[check_category(obj["category"])], "iscrowd": 0,
                "segmentation": obj["segmentation"], "area": obj["area"], "bbox": obj["bbox"],
                "iseg_object": obj["id"], "clicks": obj["clicks"], "seconds": obj["seconds"]})
    return document
