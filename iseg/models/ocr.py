"""Object-contextual representations (OCR) head with its auxiliary head, for one foreground class."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from iseg.models.layers import conv_bn


class OCRHead(nn.Module):
    """Soft object region from the auxiliary logits -> object context -> fused with every pixel -> logits.

    With a single class, OCR's pixel-to-region softmax is identically 1, so every pixel receives the same
    transformed object context; the query/key transforms of the multi-class version would get no gradient and
    are left out. The context transforms have no BN so that a training batch of one works.
    """

    def __init__(self, in_channels: int, width: int = 64, dropout: float = 0.05):
        super().__init__()
        mid = 2 * width
        self.aux = nn.Sequential(nn.Conv2d(in_channels, in_channels, 1), nn.BatchNorm2d(in_channels),
                                 nn.ReLU(inplace=True), nn.Conv2d(in_channels, 1, 1))
        self.pre = conv_bn(in_channels, mid)
        self.context = nn.Sequential(nn.Conv2d(mid, width, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(width, mid, 1), nn.ReLU(inplace=True))
        self.fuse = nn.Sequential(conv_bn(2 * mid, mid, kernel=1), nn.Dropout2d(dropout))
        self.classifier = nn.Conv2d(mid, 1, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, h, w) -> (logits, aux logits), both (B, 1, h, w)."""
        aux = self.aux(x)
        feats = self.pre(x)
        region = torch.softmax(aux.flatten(2).float(), dim=-1).to(feats.dtype)  # (B, 1, hw)
        context = torch.einsum("bcp,bkp->bc", feats.flatten(2), region)[..., None, None]
        context = self.context(context).expand_as(feats)
        return self.classifier(self.fuse(torch.cat([context, feats], dim=1))), aux
