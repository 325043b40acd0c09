"""The one sample type every dataset reader returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE = -1


@dataclass
class Sample:
    """An RGB image with one target object.

    image: (H, W, 3) uint8 RGB. mask: (H, W) int8, 1 object, 0 background, -1 ignore.
    objects: optional (H, W) int32 label map of all objects in the image (0 none, k > 0 object k,
    -1 ignore), used by training samplers for negative points and object merges.
    """

    image: np.ndarray
    mask: np.ndarray
    id: str
    objects: np.ndarray | None = None
