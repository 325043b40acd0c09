"""Training losses: RITM's normalized focal loss and an ignore-aware binary cross-entropy.

Targets are (B, 1, H, W) float tensors with 1 object, 0 background and -1 ignore; ignored pixels contribute
nothing. Both losses return the mean over the batch of a per-sample loss. They are computed in fp32 whatever the
logits' dtype, with autocast off: under bf16 autocast a sigmoid of bf16 logits is off by tens of per cent.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
import torch.nn.functional as F

IGNORE = -1
EPS = 1e-12


def in_fp32(loss: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Run `loss` with autocast off and its tensor arguments cast to fp32."""

    @functools.wraps(loss)
    def wrapper(logits: torch.Tensor, target: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        with torch.autocast(logits.device.type, enabled=False):
            return loss(logits.float(), target.float(), *args, **kwargs)

    return wrapper


@in_fp32
def normalized_focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.5,
                          gamma: float = 2.0) -> torch.Tensor:
    """Normalized focal loss (RITM's NFL): focal weights (1 - p_t)^gamma rescaled per sample so that they sum
    to the number of valid pixels (the rescale factor carries no gradient), summed and divided by that number.

    logits, target: (B, 1, H, W). Returns a scalar.
    """
    valid = (target != IGNORE).float()
    positive = target > 0.5
    prob = torch.sigmoid(logits)
    weight_alpha = torch.where(positive, alpha * valid, (1 - alpha) * valid)
    p_t = torch.where(valid > 0, 1.0 - (target - prob).abs(), torch.ones_like(prob))
    beta = (1.0 - p_t) ** gamma
    dims = (1, 2, 3)
    scale = (valid.sum(dims, keepdim=True) / (beta.sum(dims, keepdim=True) + EPS)).detach()
    loss = -weight_alpha * beta * scale * torch.log(torch.clamp(p_t + EPS, max=1.0))
    return (loss.sum(dims) / (valid.sum(dims) + EPS)).mean()


@in_fp32
def binary_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample mean BCE-with-logits over valid pixels, averaged over the batch. (B, 1, H, W) -> scalar."""
    valid = (target != IGNORE).float()
    loss = F.binary_cross_entropy_with_logits(logits, target.clamp(min=0), reduction="none") * valid
    dims = (1, 2, 3)
    return (loss.sum(dims) / (valid.sum(dims) + EPS)).mean()


def instance_loss(outputs: dict[str, torch.Tensor], target: torch.Tensor, aux_weight: float = 0.4) -> torch.Tensor:
    """NFL on outputs["instances"] plus aux_weight x BCE on outputs["instances_aux"] (skipped when the weight is 0
    or the output is absent)."""
    loss = normalized_focal_loss(outputs["instances"], target)
    if aux_weight > 0 and outputs.get("instances_aux") is not None:
        loss = loss + aux_weight * binary_cross_entropy(outputs["instances_aux"], target)
    return loss
