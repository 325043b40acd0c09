"""ISModel: the one interactive segmentation network (IFPN or RITM layout), built from a ModelConfig."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from iseg.models.attention import ClickAttention
from iseg.models.backbone import build_backbone
from iseg.models.click_encoder import ClickEncoder
from iseg.models.config import ModelConfig, resolve_config
from iseg.models.layers import conv_bn
from iseg.models.ocr import OCRHead

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_to(x: Tensor, size: torch.Size | tuple[int, int]) -> Tensor:
    """Bilinear resize of (B, C, h, w) to `size` (no-op when equal)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ISModel(nn.Module):
    """Click-based segmentation network.

    backbone (clicks added after its first stride-2 conv) -> concat of the 4 branches at 1/4 [-> 1x1 projection]
    [-> sparse click attention at 1/4] [-> cascade to 1/2 with the low-level stem feature and click attention at
    1/2] -> OCR head + auxiliary head -> logits upsampled to the input size.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config)
        self.click_encoder = ClickEncoder(self.backbone.stem_channels, config.click_hidden, config.click_radius,
                                          config.click_scale)
        concat = sum(self.backbone.feature_channels)
        quarter = config.fuse_channels or concat
        self.fuse = conv_bn(concat, quarter, 1) if config.fuse_channels else nn.Identity()
        self.attention = (ClickAttention(quarter, quarter, config.attention_heads, config.attention_dim)
                          if config.click_attention else None)
        out_channels = quarter
        if config.low_level:
            half = config.half_channels or quarter
            k1, k2 = config.half_fuse_kernels
            self.half_fuse = nn.Sequential(conv_bn(quarter + self.backbone.stem_channels, half, k1),
                                           conv_bn(half, half, k2))
            self.half_attention = (ClickAttention(quarter, half, 1, config.attention_dim)
                                   if config.click_attention else None)
            out_channels = half
        self.head = OCRHead(out_channels, config.ocr_width, config.ocr_dropout)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: Tensor, points: Tensor, prev_mask: Tensor) -> dict[str, Tensor]:
        """image (B, 3, H, W) RGB in [0, 1]; points (B, 2P, 3) rows (row, col, order), first P positive, empty -1;
        prev_mask (B, 1, H, W) in [0, 1] -> {"instances", "instances_aux"}: (B, 1, H, W) logits."""
        return self.head_output(self.head_input(image, points, prev_mask), image.shape[-2:])

    def head_input(self, image: Tensor, points: Tensor, prev_mask: Tensor) -> Tensor:
        """The features that enter the OCR head (B, C, h, w): everything but the head (f-BRS refines these)."""
        stem = self.backbone.stem((image - self.mean) / self.std) + self.click_encoder(points, prev_mask)
        branches = self.backbone.features(stem)
        x = self.fuse(torch.cat([resize_to(b, branches[0].shape[-2:]) for b in branches], dim=1))
        if self.attention is not None:
            x = self.attention(x, x, points, stride=4)
        if self.config.low_level:
            up = resize_to(x, stem.shape[-2:])
            x = self.half_fuse(torch.cat([up, stem], dim=1))
            if self.half_attention is not None:
                x = self.half_attention(up, x, points, stride=2)
        return x

    def head_output(self, x: Tensor, size: torch.Size | tuple[int, int]) -> dict[str, Tensor]:
        """The head on features `x` from `head_input`, logits upsampled to the input `size` (H, W)."""
        logits, aux = self.head(x)
        return {"instances": resize_to(logits, size), "instances_aux": resize_to(aux, size)}

    def param_groups(self, lr: float, backbone_lr_mult: float) -> list[dict[str, Any]]:
        """Optimizer groups: backbone, attention and cascade at lr x `backbone_lr_mult`; click encoder and
        OCR/aux heads at lr. Each group carries its "name"."""
        head_modules = (self.click_encoder, self.head)
        head_ids = {id(p) for m in head_modules for p in m.parameters()}
        backbone = [p for p in self.parameters() if id(p) not in head_ids and p.requires_grad]
        heads = [p for p in self.parameters() if id(p) in head_ids and p.requires_grad]
        return [{"name": "backbone", "params": backbone, "lr": lr * backbone_lr_mult},
                {"name": "heads", "params": heads, "lr": lr}]


def build_model(name_or_config: str | Path | ModelConfig | dict[str, Any], **overrides: Any) -> ISModel:
    """An ISModel from a registered config name (`list_models()`), a YAML path, a dict or a ModelConfig;
    keyword arguments override config fields (e.g. `pretrained=None`)."""
    return ISModel(resolve_config(name_or_config, **overrides))
