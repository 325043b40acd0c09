"""IFPN sparse click attention: every pixel attends over the features gathered at the click positions only."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def gather_at_clicks(features: Tensor, points: Tensor, stride: int) -> tuple[Tensor, Tensor]:
    """Features at the clicks and the slot validity.

    features: (B, C, h, w) at `stride`; points: (B, N, 3) rows (row, col, order) in the input frame, empty = -1.
    Returns (B, C, N) features at (row // stride, col // stride) (clamped to the map) and (B, N) bool valid.
    """
    batch, _, height, width = features.shape
    valid = (points[..., 0] >= 0) & (points[..., 1] >= 0)
    rows = torch.div(points[..., 0], stride, rounding_mode="floor").long().clamp(0, height - 1)
    cols = torch.div(points[..., 1], stride, rounding_mode="floor").long().clamp(0, width - 1)
    # indexing reads only the clicked pixels in any memory format (a flatten would copy a channels-last map)
    samples = torch.arange(batch, device=features.device)[:, None]
    return features[samples, :, rows, cols].transpose(1, 2), valid


class ClickAttention(nn.Module):
    """Multi-head attention of pixel queries over click keys/values, residual with a zero-initialised gamma.

    out = conv1x1+BN+ReLU(values + mean_h(gamma_h * attended_h)); heads attend with softmax over the valid clicks
    (scale 1/sqrt(dim)); with no valid click the attended term is 0.
    """

    def __init__(self, query_channels: int, value_channels: int, heads: int, dim: int):
        super().__init__()
        self.heads, self.dim = heads, dim
        self.query = nn.Conv2d(query_channels, heads * dim, 1)
        self.key = nn.Conv1d(query_channels, heads * dim, 1)
        self.value = nn.Conv1d(value_channels, heads * value_channels, 1)
        self.gamma = nn.Parameter(torch.zeros(heads))
        self.out = nn.Sequential(nn.Conv2d(value_channels, value_channels, 1, bias=False),
                                 nn.BatchNorm2d(value_channels), nn.ReLU(inplace=True))

    def forward(self, query_features: Tensor, values: Tensor, points: Tensor, stride: int) -> Tensor:
        """query_features (B, Cq, h, w) and values (B, Cv, h, w) at `stride`; points (B, N, 3) -> (B, Cv, h, w)."""
        batch, channels, height, width = values.shape
        key_src, valid = gather_at_clicks(query_features, points, stride)
        value_src, _ = gather_at_clicks(values, points, stride)
        slots = valid.shape[1]
        queries = self.query(query_features).view(batch, self.heads, self.dim, height * width)
        keys = self.key(key_src).view(batch, self.heads, self.dim, slots)
        logits = torch.einsum("bhdp,bhdn->bhpn", queries, keys) * self.dim ** -0.5
        mask = valid[:, None, None, :]
        logits = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
        weights = torch.softmax(logits, dim=-1) * mask
        # Fold gamma and the mean over heads into the values, then one matmul over (head, click) pairs.
        scaled = self.value(value_src).view(batch, self.heads, channels, slots) * (self.gamma / self.heads)[:, None, None]
        scaled = scaled.permute(0, 2, 1, 3).reshape(batch, channels, self.heads * slots)
        attended = torch.bmm(scaled, weights.permute(0, 1, 3, 2).reshape(batch, self.heads * slots, height * width))
        return self.out(values + attended.view(batch, channels, height, width))
