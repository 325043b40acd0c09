"""HRNetV2: four parallel branches (widths w, 2w, 4w, 8w at strides 4, 8, 16, 32) with repeated multi-scale fusion.

Parameter names follow the official HRNet ImageNet checkpoints (conv1, bn1, layer1, transition1, stage2, ...), so a
user's HRNet-W18 ImageNet checkpoint loads with `pretrained: PATH`.
"""

from __future__ import annotations

import logging

import torch.nn.functional as F
from torch import Tensor, nn

from iseg.models.backbone import Backbone
from iseg.models.layers import conv_bn
from iseg.models.pretrained import load_pretrained

log = logging.getLogger(__name__)


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (channels unchanged)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(out)) + x, inplace=True)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (x4 channels) with a residual connection, projected when the widths differ."""

    def __init__(self, cin: int, planes: int):
        super().__init__()
        cout = 4 * planes
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = conv_bn(cin, cout, kernel=1, relu=False) if cin != cout else None

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        out = self.bn3(self.conv3(out))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(out + skip, inplace=True)


def fuse_layer(channels: list[int], i: int, j: int) -> nn.Module | None:
    """The path from branch j to branch i: 1x1 conv (upsampled in forward), identity, or stride-2 3x3 convs."""
    if j > i:
        return conv_bn(channels[j], channels[i], kernel=1, relu=False)
    if j == i:
        return None
    steps = [conv_bn(channels[j], channels[j], stride=2) for _ in range(i - j - 1)]
    steps.append(conv_bn(channels[j], channels[i], stride=2, relu=False))
    return nn.Sequential(*steps)


class HighResolutionModule(nn.Module):
    """Basic blocks on every branch, then every branch receives the sum of all branches resampled to its size."""

    def __init__(self, channels: list[int], blocks: int):
        super().__init__()
        self.branches = nn.ModuleList(nn.Sequential(*[BasicBlock(c) for _ in range(blocks)]) for c in channels)
        n = len(channels)
        self.fuse_layers = nn.ModuleList(nn.ModuleList(fuse_layer(channels, i, j) for j in range(n)) for i in range(n))

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        out = []
        for i, layers in enumerate(self.fuse_layers):
            y = xs[i]
            for j, layer in enumerate(layers):
                if j == i:
                    continue
                z = layer(xs[j])
                if j > i:
                    z = F.interpolate(z, size=y.shape[-2:], mode="bilinear", align_corners=False)
                y = y + z
            out.append(F.relu(y))
        return out


def transition(prev: list[int], cur: list[int]) -> nn.ModuleList:
    """Adapt the branches of one stage to the next: a 3x3 conv where widths differ, a stride-2 conv for a new branch."""
    layers: list[nn.Module | None] = []
    for i, c in enumerate(cur):
        if i < len(prev):
            layers.append(conv_bn(prev[i], c) if prev[i] != c else None)
        else:
            layers.append(nn.Sequential(conv_bn(prev[-1], c, stride=2)))
    return nn.ModuleList(layers)


class HRNet(Backbone):
    """HRNetV2 backbone; `stem` is conv1+bn1+relu (stride 2, `stem_width` channels)."""

    def __init__(self, width: int = 18, stem_width: int = 64, stage1_blocks: int = 4, blocks: int = 4,
                 modules: tuple[int, int, int] = (1, 4, 3), pretrained: str | None = None):
        super().__init__()
        self.stem_channels = stem_width
        self.feature_channels = tuple(width * 2 ** i for i in range(4))
        self.conv1 = nn.Conv2d(3, stem_width, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.conv2 = nn.Conv2d(stem_width, stem_width, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(stem_width)
        self.layer1 = nn.Sequential(*[Bottleneck(stem_width if k == 0 else 4 * stem_width, stem_width)
                                      for k in range(stage1_blocks)])
        prev = [4 * stem_width]
        for stage, count in enumerate(modules, start=2):
            cur = list(self.feature_channels[:stage])
            setattr(self, f"transition{stage - 1}", transition(prev, cur))
            setattr(self, f"stage{stage}", nn.Sequential(*[HighResolutionModule(cur, blocks) for _ in range(count)]))
            prev = cur
        self.num_stages = len(modules)
        if pretrained == "imagenet":
            raise ValueError("no HRNet ImageNet weights ship with iseg; set `pretrained` to the path of your "
                             "HRNet ImageNet checkpoint (e.g. hrnetv2_w18_imagenet_pretrained.pth) or to null")
        if pretrained:
            load_pretrained(self, pretrained, f"HRNet-W{width}")
        else:
            log.info("HRNet-W%d backbone starts from scratch (no `pretrained` checkpoint given)", width)

    def stem(self, image: Tensor) -> Tensor:
        return F.relu(self.bn1(self.conv1(image)), inplace=True)

    def features(self, stem: Tensor) -> list[Tensor]:
        x = self.layer1(F.relu(self.bn2(self.conv2(stem)), inplace=True))
        xs = [x]
        for stage in range(2, self.num_stages + 2):
            layers = getattr(self, f"transition{stage - 1}")
            xs = [xs[min(i, len(xs) - 1)] if t is None else t(xs[min(i, len(xs) - 1)]) for i, t in enumerate(layers)]
            xs = getattr(self, f"stage{stage}")(xs)
        return xs
