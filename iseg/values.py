"""The accepted range of every kind of user value, checked in one place: counts and sizes, name lists, images, clicks.

Command lines check their options through `iseg.cli` (a usage error naming the option) and the Python API through
the same functions here (a ValueError naming the argument); docs/errors.md lists the limits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from numbers import Integral

import numpy as np

from iseg.clicks import Click

MAX_SIDE = 4096                  # px: the longer side a network input or a packed image is resized to
MAX_CLICKS = 1000                # clicks per sample
MAX_THREADS = 1024               # torch / OpenCV threads
MAX_IMAGE_PIXELS = 1 << 26       # 67,108,864 px (8192 x 8192): the largest image read or predicted on

# option / argument name -> (least, greatest) accepted integer; any other count is (1, None): 1 or more
RANGES: dict[str, tuple[int, int]] = {
    "max_clicks": (1, MAX_CLICKS), "clicks": (1, MAX_CLICKS), "threads": (1, MAX_THREADS), "jobs": (1, MAX_THREADS),
    "target_size": (1, MAX_SIDE), "coarse_size": (1, MAX_SIDE), "size": (1, MAX_SIDE), "long_side": (1, MAX_SIDE),
    "image_size": (1, MAX_SIDE), "work_size": (1, MAX_SIDE),
}


def integer_range(name: str) -> tuple[int, int | None]:
    """(least, greatest or None) of the integer value `name` (an option or argument name with underscores)."""
    return RANGES.get(name, (1, None))


def range_error(name: str, value: object) -> str | None:
    """Why `value` is not an accepted integer `name` (see RANGES), or None when it is."""
    low, high = integer_range(name)
    if isinstance(value, Integral) and not isinstance(value, bool) and low <= value and (high is None or value <= high):
        return None
    if high is not None:
        return f"must be an integer from {low} to {high}, got {value!r}"
    return f"must be a positive number (1 or more), got {value!r}"


def check_integer(name: str, value: object) -> int:
    """`value` as an int when it is in the range of `name` (RANGES), else a ValueError naming `name`."""
    error = range_error(name, value)
    if error:
        raise ValueError(f"{name} {error}")
    return int(value)


def check_number(name: str, value: object, low: float | None = None, high: float | None = None) -> float:
    """`value` when it is a finite real number within [low, high] (a None bound: none), else a ValueError naming
    `name` and the range."""
    real = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if real and math.isfinite(value) and (low is None or value >= low) and (high is None or value <= high):
        return value
    if low is not None and high is not None:
        wanted = f"a finite number from {low} to {high}"
    elif low is not None:
        wanted = f"a finite number >= {low}"
    else:
        wanted = "a finite number"
    raise ValueError(f"{name} must be {wanted}, got {value!r}")


def split_names(text: str, what: str) -> list[str]:
    """The items of a comma-separated list of NAME[=PATH][:WEIGHT]; an empty item or a dataset given twice
    (the same name, case-insensitive, and path) is an error naming `what`."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip():
        raise ValueError(f"{what} {text!r} names no dataset; expected e.g. GrabCut,Berkeley")
    if "" in items:
        raise ValueError(f"{what} {text!r} has an empty item; expected names separated by single commas, "
                         "e.g. GrabCut,Berkeley")
    specs = [_spec_key(item) for item in items]
    for i, spec in enumerate(specs):
        if spec in specs[:i]:
            raise ValueError(f"{what} {text!r} names {items[i]!r} twice; give each dataset once")
    return items


def _spec_key(item: str) -> str:
    """What identifies a NAME[=PATH][:WEIGHT] item: the name (case-insensitive) and the path, without the weight."""
    name, sep, path = re.sub(r":[^/\\:=]*$", "", item).partition("=")
    return name.strip().lower() + sep + path.strip()


def check_pixels(height: int, width: int, name: str) -> None:
    """Refuse an image of `name` with no pixel or more than MAX_IMAGE_PIXELS pixels."""
    if height < 1 or width < 1:
        raise ValueError(f"{name} is {width}x{height} pixels: it has no pixel")
    if height * width > MAX_IMAGE_PIXELS:
        raise ValueError(f"{name} is {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS:,} pixels an image "
                         "may have (docs/errors.md); downscale it first")


def check_image(image: np.ndarray, name: str = "the image") -> np.ndarray:
    """`image` when it is an (H, W, 3) uint8 RGB array within the pixel limit, else a ValueError."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        shape, dtype = getattr(image, "shape", None), getattr(image, "dtype", type(image).__name__)
        raise ValueError(f"{name}: expected an (H, W, 3) uint8 RGB image, got shape {shape} dtype {dtype}")
    check_pixels(image.shape[0], image.shape[1], name)
    return image


def check_clicks(clicks: Sequence[Click], shape: tuple[int, int]) -> None:
    """Refuse an empty click list, or a click that is not a Click with integer (row, col) inside an image of
    `shape` (H, W) and a bool `is_positive`, naming the click."""
    if len(clicks) == 0:
        raise ValueError("predict needs at least one click; got an empty click list")
    h, w = shape
    for i, click in enumerate(clicks):
        if not isinstance(click, Click):
            raise ValueError(f"click {i} is {click!r}; expected iseg.clicks.Click(row, col, is_positive)")
        coords = (click.row, click.col)
        if not all(isinstance(v, Integral) and not isinstance(v, bool) for v in coords):
            raise ValueError(f"click {i} {click} has non-integer coordinates; expected integer pixel (row, col)")
        if not (0 <= click.row < h and 0 <= click.col < w):
            raise ValueError(f"click {i} {click} is outside the {h}x{w} (rows x cols) image; expected "
                             f"0 <= row < {h} and 0 <= col < {w}")
        if not isinstance(click.is_positive, (bool, np.bool_)):
            raise ValueError(f"click {i} {click} has is_positive {click.is_positive!r}; expected True or False")
