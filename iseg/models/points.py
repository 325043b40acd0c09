"""Conversion of click lists into the network's points tensor."""

from __future__ import annotations

import torch
from torch import Tensor

from iseg.clicks import Click

EMPTY = -1.0


def clicks_to_points(clicks_per_image: list[list[Click]], slots: int | None = None) -> Tensor:
    """(B, 2P, 3) float32 rows (row, col, order): first P positive, last P negative, empty rows -1.

    `order` is the click's index in its list. P is `slots`, or by default the largest number of positive or
    negative clicks of any image (at least 1).
    """
    counts = [max(sum(c.is_positive for c in clicks), sum(not c.is_positive for c in clicks))
              for clicks in clicks_per_image]
    needed = max(counts, default=0)
    if slots is None:
        slots = max(needed, 1)
    elif needed > slots:
        raise ValueError(f"{needed} clicks of one sign do not fit in {slots} slots")
    points = torch.full((len(clicks_per_image), 2 * slots, 3), EMPTY, dtype=torch.float32)
    for b, clicks in enumerate(clicks_per_image):
        used = [0, 0]
        for order, click in enumerate(clicks):
            side = 0 if click.is_positive else 1
            points[b, side * slots + used[side]] = torch.tensor([click.row, click.col, order], dtype=torch.float32)
            used[side] += 1
    return points
