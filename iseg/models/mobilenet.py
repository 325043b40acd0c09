"""MobileNetV2 (torchvision) as a multi-resolution backbone, optionally initialised from ImageNet weights."""

from __future__ import annotations

import logging

import torchvision
from torch import Tensor, nn

from iseg.models.backbone import Backbone
from iseg.models.pretrained import load_pretrained, mobilenet_v2_imagenet_path

log = logging.getLogger(__name__)

# Ranges of torchvision's `mobilenet_v2().features` ending at strides 4, 8, 16, 32 (index 0 is the stem,
# the final 1x1 conv to 1280 channels is not used).
STAGES = ((1, 4), (4, 7), (7, 14), (14, 18))


class MobileNetV2Backbone(Backbone):
    """MobileNetV2 split into the stride-2 stem conv and four stages (24/32/96/320 channels at width 1.0)."""

    def __init__(self, width_mult: float = 1.0, pretrained: str | None = None):
        super().__init__()
        net = torchvision.models.mobilenet_v2(width_mult=width_mult)
        if pretrained:
            path = mobilenet_v2_imagenet_path() if pretrained == "imagenet" else pretrained
            load_pretrained(net, path, "MobileNetV2")
        else:
            log.info("MobileNetV2 backbone starts from scratch (pretrained is not set)")
        self.stem_layer = net.features[0]
        self.stages = nn.ModuleList(nn.Sequential(*net.features[a:b]) for a, b in STAGES)
        self.stem_channels = net.features[0].out_channels
        self.feature_channels = tuple(net.features[b - 1].out_channels for _, b in STAGES)

    def stem(self, image: Tensor) -> Tensor:
        return self.stem_layer(image)

    def features(self, stem: Tensor) -> list[Tensor]:
        out = []
        x = stem
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out
