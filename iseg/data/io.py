"""Reading image and mask files with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def read_image(path: Path) -> np.ndarray:
    """Read a colour image file as (H, W, 3) uint8 RGB (stored pixel order: EXIF rotation is not applied)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise ValueError(f"cannot read image {path}: missing, corrupt or not an image file")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_raw_mask(path: Path) -> np.ndarray:
    """Read a mask file unchanged: (H, W) or (H, W, C) uint8/uint16 as stored (palette PNGs give RGB)."""
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise ValueError(f"cannot read mask {path}: missing, corrupt or not an image file")
    return mask


def read_palette_mask(path: Path) -> np.ndarray:
    """Read a palette (indexed) or greyscale PNG as its (H, W) uint8 index values."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise ValueError(f"mask {path} has mode {image.mode}; expected a palette (P) or greyscale (L) PNG")
            return np.array(image)
    except (OSError, UnidentifiedImageError) as error:
        raise ValueError(f"cannot read mask {path}: {error}") from error


def read_mat(path: Path) -> dict:
    """Load a MATLAB .mat file with scipy, naming the file on failure."""
    import scipy.io

    try:
        return scipy.io.loadmat(str(path))
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"cannot read .mat file {path}: {error}") from error


def channel(mask: np.ndarray, index: int = 0) -> np.ndarray:
    """One channel of a (H, W) or (H, W, C) mask as (H, W)."""
    return mask if mask.ndim == 2 else mask[..., index]


def find_images(folder: Path) -> dict[str, Path]:
    """Image files of a folder by stem (extensions of IMAGE_EXTENSIONS, any case); duplicate stems are an error."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
            continue
        if path.stem in found:
            raise ValueError(f"two images with the stem {path.stem!r}: {found[path.stem]} and {path}")
        found[path.stem] = path
    return found
