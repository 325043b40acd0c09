"""Click encoding ("Conv1S"): disk maps of the clicks plus the previous mask, turned into stem-sized features."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def disk_offsets(radius: int) -> Tensor:
    """(K, 2) long (drow, dcol) offsets of the pixels within `radius` of a centre pixel."""
    steps = torch.arange(-radius, radius + 1)
    drow, dcol = torch.meshgrid(steps, steps, indexing="ij")
    inside = drow ** 2 + dcol ** 2 <= radius ** 2
    return torch.stack([drow[inside], dcol[inside]], dim=1)


def click_disks(points: Tensor, size: tuple[int, int], radius: int) -> Tensor:
    """(B, 2, H, W) maps, 1 within `radius` px of a positive (channel 0) or negative (channel 1) click, else 0.

    points: (B, 2P, 3) rows (row, col, order), first P positive, empty rows -1. Only the disk pixels of each
    click are written (O(clicks x disk area)); disks are clipped to the image.
    """
    batch, slots, _ = points.shape
    height, width = size
    offsets = disk_offsets(radius).to(points.device)
    rows = points[..., 0].round().long()[..., None] + offsets[:, 0]  # (B, 2P, K)
    cols = points[..., 1].round().long()[..., None] + offsets[:, 1]
    valid = ((points[..., 0] >= 0) & (points[..., 1] >= 0))[..., None]
    inside = valid & (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    channel = (torch.arange(slots, device=points.device) >= slots // 2).long()
    plane = torch.arange(batch, device=points.device)[:, None] * 2 + channel  # (B, 2P)
    index = (plane[..., None] * height + rows) * width + cols
    canvas = torch.zeros(batch * 2 * height * width, dtype=points.dtype, device=points.device)
    canvas[index[inside]] = 1
    return canvas.view(batch, 2, height, width)


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
