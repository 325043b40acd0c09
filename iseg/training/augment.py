"""Joint image + mask augmentation for training (ifpn.md, "Augmentation").

Random rescale (uniform 0.75-1.40; with `long_side` set, relative to the image resized so that its longer side is
`long_side`, so that a network learns objects at the scale it will see them when it runs on whole images resized
that way), horizontal flip, pad and random crop to the crop size, random
brightness/contrast (+-0.25, p 0.75) and RGB shift (+-10, p 0.75). The target mask and the `objects` label map
follow the image (nearest-neighbour). Padding is *ignore* (-1) in the mask and the label map, and black in the
image: padded pixels then count neither as background in the loss nor as candidates for negative clicks (RITM pads
masks with 0, which teaches the network that black borders are background; we prefer not to). A crop that keeps
fewer than `min_object_pixels` target pixels is redrawn (up to `max_tries` times), then centred on a random object
pixel, so the target always survives.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from iseg.data.sample import IGNORE, Sample
from iseg.values import check_number


@dataclass(frozen=True)
class Augmentation:
    """Augmentation parameters; call with a `Sample` and a numpy `Generator` to get the augmented `Sample`."""

    crop_size: tuple[int, int] = (320, 480)
    scale_range: tuple[float, float] = (0.75, 1.40)
    long_side: int | None = None
    flip_prob: float = 0.5
    brightness_contrast: float = 0.25
    brightness_contrast_prob: float = 0.75
    rgb_shift: float = 10.0
    rgb_shift_prob: float = 0.75
    min_object_pixels: int = 64
    max_tries: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "crop_size", tuple(self.crop_size))
        object.__setattr__(self, "scale_range", tuple(self.scale_range))
        if len(self.crop_size) != 2 or min(self.crop_size) < 1:
            raise ValueError(f"augment crop_size must be (h, w) with positive sides, got {self.crop_size!r}")
        if len(self.scale_range) != 2 or not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ValueError(f"augment scale_range must be (low, high) with 0 < low <= high, got {self.scale_range!r}")
        if self.long_side is not None and self.long_side < 1:
            raise ValueError(f"augment long_side must be a positive number of pixels or null, got {self.long_side}")
        for name in ("flip_prob", "brightness_contrast_prob", "rgb_shift_prob"):
            check_number(f"augment {name}", getattr(self, name), low=0, high=1)
        for name in ("brightness_contrast", "rgb_shift"):
            check_number(f"augment {name}", getattr(self, name), low=0)
        for bound in self.scale_range:
            check_number("augment scale_range (each)", bound, low=0)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        """Augmented copy of `sample`: image (h, w, 3) uint8, mask (h, w) int8, objects (h, w) int32 or None,
        with (h, w) = crop_size."""
        image, mask, objects = sample.image, sample.mask, sample.objects
        scale = rng.uniform(*self.scale_range)
        if self.long_side is not None:
            scale *= self.long_side / max(mask.shape)
        image, mask, objects = rescale(image, mask, objects, scale)
        if rng.random() < self.flip_prob:
            image, mask = image[:, ::-1], mask[:, ::-1]
            objects = None if objects is None else objects[:, ::-1]
        image, mask, objects = pad_to(image, mask, objects, self.crop_size)
        top, left = self._crop_origin(mask, rng)
        h, w = self.crop_size
        window = (slice(top, top + h), slice(left, left + w))
        image = self._colour(image[window], rng)
        crop_objects = None if objects is None else np.ascontiguousarray(objects[window])
        return Sample(image=image, mask=np.ascontiguousarray(mask[window]), id=sample.id, objects=crop_objects)

    def _crop_origin(self, mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
        """(top, left) of a crop that keeps >= min_object_pixels target pixels when possible."""
        h, w = self.crop_size
        max_top, max_left = mask.shape[0] - h, mask.shape[1] - w
        target = mask == 1
        need = min(self.min_object_pixels, int(target.sum()))
        for _ in range(self.max_tries):
            top, left = int(rng.integers(0, max_top + 1)), int(rng.integers(0, max_left + 1))
            if target[top:top + h, left:left + w].sum() >= need:
                return top, left
        rows, cols = np.nonzero(target)
        if rows.size == 0:
            return top, left
        k = int(rng.integers(rows.size))
        return int(np.clip(rows[k] - h // 2, 0, max_top)), int(np.clip(cols[k] - w // 2, 0, max_left))

    def _colour(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Random brightness/contrast then RGB shift of (h, w, 3) uint8 -> (h, w, 3) uint8."""
        out = image.astype(np.float32)
        if rng.random() < self.brightness_contrast_prob:
            contrast = 1.0 + rng.uniform(-self.brightness_contrast, self.brightness_contrast)
            brightness = 255.0 * rng.uniform(-self.brightness_contrast, self.brightness_contrast)
            out = out * contrast + brightness
        if rng.random() < self.rgb_shift_prob:
            out = out + rng.uniform(-self.rgb_shift, self.rgb_shift, size=3).astype(np.float32)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def rescale(image: np.ndarray, mask: np.ndarray, objects: np.ndarray | None,
            scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Resize image (bilinear), mask and objects (nearest) by `scale`."""
    h, w = mask.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(mask.astype(np.int16), size, interpolation=cv2.INTER_NEAREST).astype(np.int8)
    if objects is not None:
        objects = cv2.resize(objects, size, interpolation=cv2.INTER_NEAREST)
    return image, mask, objects


def pad_to(image: np.ndarray, mask: np.ndarray, objects: np.ndarray | None,
           size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Pad bottom/right to at least `size` (h, w): image with 0, mask and objects with IGNORE."""
    pad_h, pad_w = max(0, size[0] - mask.shape[0]), max(0, size[1] - mask.shape[1])
    if pad_h == 0 and pad_w == 0:
        return image, mask, objects
    image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)))
    mask = np.pad(mask, ((0, pad_h), (0, pad_w)), constant_values=IGNORE)
    if objects is not None:
        objects = np.pad(objects, ((0, pad_h), (0, pad_w)), constant_values=IGNORE)
    return image, mask, objects
