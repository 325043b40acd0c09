"""Click encoding ("Conv1S"): disk maps of the clicks plus the previous mask, turned into stem-sized features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def disk_kernel(radius: int) -> Tensor:
    """(1, 1, 2r+1, 2r+1) float32 indicator of the pixels within `radius` of the centre."""
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    return ((offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius ** 2).float()[None, None]


def click_disks(points: Tensor, size: tuple[int, int], radius: int) -> Tensor:
    """(B, 2, H, W) float maps, 1 within `radius` px of a positive (channel 0) or negative (channel 1) click.

    points: (B, 2P, 3) rows (row, col, order), first P positive, empty rows -1; points outside the image are ignored.
    """
    batch, slots, _ = points.shape
    height, width = size
    rows, cols = points[..., 0].round().long(), points[..., 1].round().long()
    valid = (points[..., 0] >= 0) & (points[..., 1] >= 0) & (rows < height) & (cols < width)
    channel = (torch.arange(slots, device=points.device) >= slots // 2).long().expand(batch, slots)
    plane = torch.arange(batch, device=points.device)[:, None] * 2 + channel
    index = (plane * height + rows) * width + cols
    canvas = torch.zeros(batch * 2 * height * width, device=points.device)
    canvas[index[valid]] = 1.0
    kernel = disk_kernel(radius).to(points.device)
    counts = F.conv2d(canvas.view(batch * 2, 1, height, width), kernel, padding=radius)
    return (counts > 0.5).to(points.dtype).view(batch, 2, height, width)


class ClickEncoder(nn.Module):
    """prev mask + click disks -> 1x1 conv -> LeakyReLU -> 3x3 stride-2 conv, times a learnable scale."""

    def __init__(self, out_channels: int, hidden: int = 16, radius: int = 5, scale: float = 0.05):
        super().__init__()
        self.radius = radius
        self.transform = nn.Sequential(
            nn.Conv2d(3, hidden, 1), nn.LeakyReLU(0.2), nn.Conv2d(hidden, out_channels, 3, stride=2, padding=1))
        self.scale = nn.Parameter(torch.tensor(float(scale)))

    def forward(self, points: Tensor, prev_mask: Tensor) -> Tensor:
        """points (B, 2P, 3), prev_mask (B, 1, H, W) -> (B, out_channels, ceil(H/2), ceil(W/2))."""
        disks = click_disks(points, prev_mask.shape[-2:], self.radius).to(prev_mask.dtype)
        return self.transform(torch.cat([prev_mask, disks], dim=1)) * self.scale
