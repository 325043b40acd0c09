"""RITM's multi-point click sampler for training, re-implemented (protocol.md, "Training-time click simulation").

Per sample: with probability `single_click_prob` the sample is one positive click deep inside the target and nothing
else (no negative click, no merged object, and the trainer adds no iterative click to it): the state of a user's
first click, which the other draws almost never produce. Otherwise, with probability `merge_objects_prob` the
target is merged with other objects of the image (at most `max_num_merged_objects` objects in all). The number of
positive points k in 1..P is drawn with probability proportional to prob_gamma^(k-1), the number of negative
points in 0..P proportional to prob_gamma^k. Each object of the target gets its own first click deep inside it
(distance to the border > max distance / `first_click_center`, RITM's 1.7); the other positive points go to a
random object of the target, inside its eroded mask if that object was chosen for erosion (once per object, with
probability `positive_erode_prob`), else anywhere in it. Each negative point follows a strategy drawn among
"border" (a ring around the object, width `border_ratio` x sqrt(object area)), "other" (other objects of
`Sample.objects`, or the whole background where the image has no other object, as in RITM) and "bg" (anywhere in
the background), with probabilities renormalised over the strategies that have candidates. Ignored pixels are never
sampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from iseg.clicks import Click
from iseg.values import check_number

EMPTY = -1.0
NEGATIVE_STRATEGIES = ("border", "other", "bg")


@dataclass(frozen=True)
class MultiPointSampler:
    """Call with a target mask, the objects label map and a numpy Generator; see the module docstring."""

    max_num_points: int = 24
    prob_gamma: float = 0.8
    merge_objects_prob: float = 0.15
    max_num_merged_objects: int = 2
    single_click_prob: float = 0.0
    first_click_center: float = 1.7
    positive_erode_prob: float = 0.9
    positive_erode_iters: int = 3
    negative_probs: tuple[float, float, float] = (0.5, 0.4, 0.1)
    border_ratio: float = 0.1

    def __post_init__(self) -> None:
        if self.max_num_points < 1:
            raise ValueError(f"sampler max_num_points must be >= 1, got {self.max_num_points}")
        for name in ("merge_objects_prob", "single_click_prob", "positive_erode_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"sampler {name} must be a probability in [0, 1], got {getattr(self, name)}")
        check_number("sampler first_click_center", self.first_click_center, low=1)
        check_number("sampler prob_gamma", self.prob_gamma, low=0)
        check_number("sampler border_ratio", self.border_ratio, low=0)
        object.__setattr__(self, "negative_probs", tuple(self.negative_probs))
        for p in self.negative_probs:
            check_number("sampler negative_probs (each)", p, low=0)
        if len(self.negative_probs) != 3 or sum(self.negative_probs) <= 0:
            raise ValueError(f"sampler negative_probs must be 3 weights with a positive sum, got {self.negative_probs}")

    def __call__(self, mask: np.ndarray, objects: np.ndarray | None,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, bool]:
        """mask: (H, W) int8 target (1 object, 0 background, -1 ignore); objects: (H, W) int32 label map or None.

        Returns (points, target, single): points (2P, 3) float32 rows (row, col, order), first P positive, last
        P negative, unused rows -1; target (H, W) int8, the mask the points were drawn for (merged objects
        included); single: True for a one-click sample (no iterative clicks may be added to it).
        """
        if rng.random() < self.single_click_prob:
            obj = mask == 1
            positives = [pick(self._first_click_region(obj), rng)] if obj.any() else []
            return self._layout(positives, [], rng), mask, True
        parts = self._merge(mask, objects, rng)
        target = mask.copy()
        for part in parts[1:]:
            target[part] = 1
        obj, valid = target == 1, target != -1
        others = np.zeros_like(obj) if objects is None else (objects > 0) & ~obj
        positives = self._positive_points(parts, rng)
        negatives = self._negative_points(obj, valid, others, rng)
        return self._layout(positives, negatives, rng), target, False

    def _merge(self, mask: np.ndarray, objects: np.ndarray | None, rng: np.random.Generator) -> list[np.ndarray]:
        """The target's objects as (H, W) bool masks: the target, then up to max_num_merged_objects - 1 other
        objects drawn at random."""
        parts = [mask == 1]
        if objects is None or self.max_num_merged_objects < 2 or rng.random() >= self.merge_objects_prob:
            return parts
        labels = np.unique(objects[(objects > 0) & (mask != 1)])
        if labels.size == 0:
            return parts
        count = int(rng.integers(1, min(self.max_num_merged_objects - 1, labels.size) + 1))
        chosen = rng.choice(labels, size=count, replace=False)
        return parts + [(objects == label) & (mask != -1) & ~parts[0] for label in chosen]

    def _count(self, low: int, rng: np.random.Generator) -> int:
        """A number of points in low..P with probability proportional to prob_gamma^(n - low)."""
        counts = np.arange(low, self.max_num_points + 1)
        probs = self.prob_gamma ** (counts - low)
        return int(rng.choice(counts, p=probs / probs.sum()))

    def _first_click_region(self, obj: np.ndarray) -> np.ndarray:
        """(H, W) bool pixels of a non-empty object farther from its border than max distance / first_click_center."""
        dist = inner_distance(obj)
        return dist > dist.max() / self.first_click_center

    def _positive_points(self, parts: list[np.ndarray], rng: np.random.Generator) -> list[tuple[int, int]]:
        """Positive (row, col) points: a first click deep inside each non-empty object, then the rest of the
        drawn count in random objects (eroded or not, decided once per object); [] when no object has a pixel."""
        parts = [p for p in parts if p.any()]
        if not parts:
            return []
        points = [pick(self._first_click_region(p), rng) for p in parts]
        regions = []
        for part in parts:
            eroded = cv2.erode(part.astype(np.uint8), np.ones((3, 3), np.uint8),
                               iterations=self.positive_erode_iters) > 0
            regions.append(eroded if eroded.any() and rng.random() < self.positive_erode_prob else part)
        for _ in range(max(0, self._count(1, rng) - len(points))):
            points.append(pick(regions[int(rng.integers(len(regions)))], rng))
        return points[:self.max_num_points]

    def _negative_points(self, obj: np.ndarray, valid: np.ndarray, others: np.ndarray,
                         rng: np.random.Generator) -> list[tuple[int, int]]:
        """Negative (row, col) points drawn by strategy."""
        background = valid & ~obj
        # as RITM's: with no other object in the image, the "other objects" strategy draws from the whole background
        other = others & background
        regions = {"border": self._border(obj) & background, "other": other if other.any() else background,
                   "bg": background}
        available = [(name, p) for name, p in zip(NEGATIVE_STRATEGIES, self.negative_probs) if regions[name].any()]
        if not available:
            return []
        names = [name for name, _ in available]
        probs = np.array([p for _, p in available], dtype=np.float64)
        count = self._count(0, rng)
        return [pick(regions[names[int(rng.choice(len(names), p=probs / probs.sum()))]], rng) for _ in range(count)]

    def _border(self, obj: np.ndarray) -> np.ndarray:
        """(H, W) bool ring around the object, width max(3, border_ratio * sqrt(area)) pixels."""
        width = max(3, int(round(self.border_ratio * np.sqrt(obj.sum()))))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
        return (cv2.dilate(obj.astype(np.uint8), kernel) > 0) & ~obj

    def _layout(self, positives: list[tuple[int, int]], negatives: list[tuple[int, int]],
                rng: np.random.Generator) -> np.ndarray:
        """(2P, 3) float32 points; the first positive gets order 0, the rest a random order 1..n-1."""
        negatives = negatives[:self.max_num_points]
        p = self.max_num_points
        points = np.full((2 * p, 3), EMPTY, dtype=np.float32)
        rest = positives[1:] + negatives
        orders = 1 + rng.permutation(len(rest))
        slots = list(range(len(positives))) + [p + j for j in range(len(negatives))]
        for slot, (row, col), order in zip(slots, positives[:1] + rest, [0, *orders.tolist()]):
            points[slot] = (row, col, order)
        return points


def inner_distance(region: np.ndarray) -> np.ndarray:
    """(H, W) float32 L2 distance of region pixels to the nearest pixel outside it (image border = outside)."""
    padded = np.pad(region.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]


def pick(region: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """A uniformly random (row, col) pixel of a non-empty (H, W) bool region."""
    rows, cols = np.nonzero(region)
    k = int(rng.integers(rows.size))
    return int(rows[k]), int(cols[k])


def clicks_to_points(clicks: list[Click], max_num_points: int) -> np.ndarray:
    """Clicks -> (2P, 3) float32 points (row, col, click index); clicks beyond P of one sign are dropped."""
    points = np.full((2 * max_num_points, 3), EMPTY, dtype=np.float32)
    used = [0, 0]
    for order, click in enumerate(clicks):
        half = 0 if click.is_positive else 1
        if used[half] < max_num_points:
            points[half * max_num_points + used[half]] = (click.row, click.col, order)
            used[half] += 1
    return points


def points_to_clicks(points: np.ndarray) -> list[Click]:
    """(2P, 3) points (first P positive, -1 empty) -> clicks sorted by their order column."""
    p = points.shape[0] // 2
    rows = [(o, int(r), int(c), k < p) for k, (r, c, o) in enumerate(points) if r != EMPTY]
    return [Click(r, c, positive) for _, r, c, positive in sorted(rows)]
