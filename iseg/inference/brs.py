"""Backpropagating refinement at inference: f-BRS-B (Sofiiuk et al., CVPR 2020), as RITM ships it.

After the network's forward pass, a per-channel scale and bias on the features that enter the head
(`ISModel.head_input`) are optimised with L-BFGS so that the prediction at the clicks moves to their labels:
positive click discs towards probability 1, negative towards 0 (RITM's click loss), plus a regulariser that keeps
the scale near 1 and the bias near 0. Only the head runs per iteration: the backbone's features are computed once
per click, which is what makes it cheap. The optimisation stops after a bounded number of evaluations, once every
click disc is firmly on its side (`FeatureBRS.stop_prob`), or once the mask stops changing; the prediction with the
lowest loss is kept. The parameters carry over from click to click of one image (a warm start) and are reset by a new image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize
from torch import Tensor

from iseg.clicks import Click
from iseg.models import ISModel
from iseg.protocol import PRED_THRESHOLD

BRS_MODES = ("f-BRS-B",)
OFF = ("none", "off", "nobrs")


@dataclass(frozen=True)
class FeatureBRS:
    """The settings of f-BRS-B: RITM's, except the click discs and the stop rule. RITM stops once every click pixel
    is on its side of the threshold (stop_prob about 0.5 here); our networks already get their click pixels right
    nearly always, so that rule would stop before any refinement: the discs are larger and must be firm."""

    max_evaluations: int = 20   # loss and gradient evaluations of L-BFGS-B per click (RITM: maxfun 20)
    click_radius: int = 5       # radius of the click discs in the network's input pixels (RITM: a 3x3 square)
    stop_prob: float = 0.1      # stop once positive disc pixels exceed 1 - this and negative ones are below it
    reg_weight: float = 1e-3    # weight of the squared scale offset and bias
    bias_reg_mult: float = 10.0  # the bias's extra weight in the regulariser
    min_iou_change: float = 0.01  # stop once the mask changes less than this (1 - IoU with the last one)
    after_clicks: int = 1       # refine from click after_clicks + 1 on (the first click as the network gives)
    warm_start: bool = True     # start from the last click's scale and bias (False: from the network's own, 1 and 0)


def brs_mode(mode: str | None) -> str | None:
    """The refinement mode a setting names ("f-BRS-B"), None for off (None, "none", "off", "NoBRS")."""
    if mode is None or mode.lower() in OFF:
        return None
    for known in BRS_MODES:
        if mode.lower() == known.lower():
            return known
    raise ValueError(f"unknown brs mode {mode!r}; expected one of {', '.join(BRS_MODES)} or none")


def click_masks(clicks: list[list[Click]], size: tuple[int, int], radius: int,
                device: torch.device) -> tuple[Tensor, Tensor]:
    """(positive, negative) (B, 1, h, w) float32 maps: 1 within `radius` pixels of a click of that sign."""
    rows = torch.arange(size[0], device=device).view(-1, 1)
    cols = torch.arange(size[1], device=device).view(1, -1)
    pos = torch.zeros(len(clicks), 1, *size, device=device)
    neg = torch.zeros_like(pos)
    for b, item in enumerate(clicks):
        for c in item:
            disc = (rows - c.row) ** 2 + (cols - c.col) ** 2 <= radius ** 2
            (pos if c.is_positive else neg)[b, 0][disc] = 1.0
    return pos, neg


def click_loss(prob: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, float, float]:
    """RITM's BRS loss: mean squared error to 1 over positive disc pixels plus to 0 over negative ones;
    with the largest error of each sign (for the early stop)."""
    pos_err = (1 - prob) * pos
    neg_err = prob * neg
    loss = pos_err.pow(2).sum() / (pos.sum() + 1e-5) + neg_err.pow(2).sum() / (neg.sum() + 1e-5)
    return loss, pos_err.max().item(), neg_err.max().item()


def settled(mask: Tensor, last: Tensor | None, min_change: float) -> bool:
    """Whether the boolean mask changed by less than `min_change` (1 - IoU) since `last`; never for empty masks."""
    if last is None:
        return False
    union = (mask | last).sum()
    return bool(union > 0) and ((mask & last).sum() / union).item() > 1 - min_change


class ScaleBiasRefiner:
    """f-BRS-B for one network: `logits` replaces `model(...)["instances"]`; `reset` on a new image."""

    def __init__(self, settings: FeatureBRS | None = None):
        self.settings = settings or FeatureBRS()
        self.params: np.ndarray | None = None
        self.evaluations: list[int] = []   # evaluations spent per click (0 where the network's output was kept)

    def reset(self) -> None:
        """Forget the parameters of the last image."""
        self.params = None
        self.evaluations = []

    def logits(self, model: ISModel, image: Tensor, points: Tensor, prev: Tensor, clicks: list[list[Click]],
               n_clicks: int) -> Tensor:
        """(B, 1, h, w) logits of `model` on its inputs, refined once more than `after_clicks` clicks were given.
        The pairs of a flip batch share one scale and bias; each item's loss uses its own clicks."""
        size = tuple(image.shape[-2:])
        features = model.head_input(image, points, prev)
        if n_clicks <= self.settings.after_clicks:
            self.evaluations.append(0)
            return model.head_output(features, size)["instances"]
        pos, neg = click_masks(clicks, size, self.settings.click_radius, image.device)
        with torch.enable_grad():
            return self._optimise(model, features, size, pos, neg)

    def _optimise(self, model: ISModel, features: Tensor, size: tuple[int, int], pos: Tensor, neg: Tensor) -> Tensor:
        """L-BFGS-B (SciPy's, as RITM) on the scale and bias from the last click's values; the logits of the lowest
        loss seen. An evaluation that meets a stopping rule returns a zero gradient, which ends the search."""
        s, channels = self.settings, features.shape[1]
        if not s.warm_start or self.params is None or self.params.size != 2 * channels:
            self.params = np.zeros(2 * channels)
        best = {"loss": math.inf, "logits": None, "last_mask": None, "evaluations": 0}

        def loss_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
            best["evaluations"] += 1
            params = torch.tensor(x, dtype=features.dtype, device=features.device, requires_grad=True)
            scale, bias = params.chunk(2)
            shifted = features * (1 + scale).view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)
            logits = model.head_output(shifted, size)["instances"]
            prob = torch.sigmoid(logits.float())
            loss, pos_err, neg_err = click_loss(prob, pos, neg)
            loss = loss + s.reg_weight * (scale.pow(2).sum() + s.bias_reg_mult * bias.pow(2).sum())
            value = loss.item()
            if value < best["loss"]:
                best["loss"], best["logits"] = value, logits.detach()
            mask = prob.detach() > PRED_THRESHOLD
            done = (pos_err < s.stop_prob and neg_err < s.stop_prob) or settled(mask, best["last_mask"],
                                                                                s.min_iou_change)
            best["last_mask"] = mask
            if done:
                return value, np.zeros_like(x)
            loss.backward()
            return value, params.grad.double().cpu().numpy()

        result = minimize(loss_and_grad, self.params, jac=True, method="L-BFGS-B",
                          options={"maxcor": 20, "ftol": 0.0, "gtol": 1e-8, "maxfun": s.max_evaluations})
        self.params = result.x
        self.evaluations.append(best["evaluations"])
        return best["logits"]
