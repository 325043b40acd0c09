"""Small building blocks shared by the backbones and heads."""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1, relu: bool = True) -> nn.Sequential:
    """Conv (no bias, same padding) + BN (+ ReLU)."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def conv_bn_pairs(module: nn.Module) -> list[tuple[str, str]]:
    """Names of the (conv, BN) children of `module` where the BN directly follows the conv: consecutive items of an
    nn.Sequential, or attributes named `conv<k>` and `bn<k>` (the HRNet blocks and stem)."""
    children = dict(module.named_children())
    if isinstance(module, nn.Sequential):
        names = list(children)
        candidates = list(zip(names, names[1:]))
    else:
        candidates = [(name, "bn" + name[4:]) for name in children if name.startswith("conv")]
    return [(c, b) for c, b in candidates
            if isinstance(children.get(c), nn.Conv2d) and isinstance(children.get(b), nn.BatchNorm2d)]


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of `model` with every BN that follows a conv (see `conv_bn_pairs`) folded into that conv
    (same outputs in eval mode, fewer passes over memory); the original model is left untouched."""
    folded = copy.deepcopy(model).eval()
    for module in list(folded.modules()):
        for conv, bn in conv_bn_pairs(module):
            setattr(module, conv, fuse_conv_bn_eval(getattr(module, conv), getattr(module, bn)))
            setattr(module, bn, nn.Identity())
    return folded
