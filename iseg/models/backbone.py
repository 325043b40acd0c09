"""The backbone interface shared by HRNet and MobileNetV2, and the factory that builds one from a ModelConfig."""

from __future__ import annotations

from torch import Tensor, nn

from iseg.models.config import ModelConfig


class Backbone(nn.Module):
    """Multi-resolution features with a hook after the first stride-2 conv.

    `stem(image)` -> (B, stem_channels, ceil(H/2), ceil(W/2)): where the click features are added.
    `features(stem)` -> features at strides 4, 8, 16, 32 with `feature_channels` channels.
    """

    stem_channels: int
    feature_channels: tuple[int, ...]

    def stem(self, image: Tensor) -> Tensor:
        raise NotImplementedError

    def features(self, stem: Tensor) -> list[Tensor]:
        raise NotImplementedError


def build_backbone(config: ModelConfig) -> Backbone:
    """The backbone named by `config.backbone`, initialised as `config.pretrained` says."""
    from iseg.models.hrnet import HRNet
    from iseg.models.mobilenet import MobileNetV2Backbone

    if config.backbone == "hrnet":
        return HRNet(config.hrnet_width, config.hrnet_stem_width, config.hrnet_stage1_blocks,
                     config.hrnet_blocks, config.hrnet_modules, pretrained=config.pretrained)
    if config.backbone == "mobilenet_v2":
        return MobileNetV2Backbone(config.mobilenet_width_mult, pretrained=config.pretrained)
    raise ValueError(f"unknown backbone {config.backbone!r} in model config {config.name!r}; "
                     "expected 'hrnet' or 'mobilenet_v2'")
