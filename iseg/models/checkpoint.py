"""Checkpoint files: atomic save, safe load (`weights_only=True`) with clear errors, and model rebuilding.

A checkpoint records the sha256 of its model weights (`model_sha256`, written by `save_checkpoint`): loading
refuses weights that do not match it (a damaged file) and weights that are not finite (NaN or infinity), and a
network asked for as one stage ("coarse", "fine") when it records the other.
"""

from __future__ import annotations

import hashlib

from pathlib import Path
from typing import Any

import torch

from iseg.atomic import atomic_path
from iseg.interrupt import raise_pending
from iseg.models.config import ModelConfig
from iseg.models.ismodel import ISModel

FORMAT = "iseg-checkpoint-v1"
REQUIRED = ("model_config", "model")


class CheckpointError(ValueError):
    """A file that is not a readable iseg checkpoint."""


def model_payload(model: ISModel, **extra: Any) -> dict[str, Any]:
    """A checkpoint dict for `model` (format, model_config, model state dict) plus any extra entries."""
    return {"format": FORMAT, "model_config": model.config.to_dict(), "model": model.state_dict(), **extra}


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write `payload` atomically (temp file in the same folder + os.replace), with the format tag and the sha256 of
    its weights; raises a Ctrl-C that arrived during the write once the file is complete (`iseg.interrupt`)."""
    missing = [k for k in REQUIRED if k not in payload]
    if missing:
        raise ValueError(f"checkpoint payload for {path} lacks {missing}; expected keys {list(REQUIRED)}")
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            torch.save({"format": FORMAT, **payload, "model_sha256": weights_sha256(payload["model"])}, tmp)
        except RuntimeError as error:  # torch reports a failed write (a full disk) as "enforce fail at ..."
            raise OSError(f"cannot write checkpoint {path}: the write failed ({' '.join(str(error).split())[:160]}); "
                          "is the disk full?") from error
    raise_pending()  # a Ctrl-C that arrived during the write (and was dropped there) stops the run now
    return path


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    """Hex sha256 of a state dict: every entry's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_weights(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Refuse model weights that are not all tensors, differ from their recorded sha256, or are not finite."""
    state = checkpoint["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: 'model' must map parameter names to tensors")
    recorded = checkpoint.get("model_sha256")
    if recorded is not None and recorded != weights_sha256(state):
        raise CheckpointError(f"checkpoint {path} is damaged: its weights do not match the sha256 recorded when it "
                              "was saved; use another copy or retrain")
    for name, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"checkpoint {path} holds non-finite weights (NaN or infinity) in {name!r}: the "
                                  "training that wrote it diverged; use an earlier checkpoint")


def recorded_stage(checkpoint: dict[str, Any]) -> str | None:
    """The training stage ("coarse" or "fine") a checkpoint records, or None when it records none."""
    config = checkpoint.get("train_config")
    return config.get("stage") if isinstance(config, dict) else None


def _describe(obj: Any) -> str:
    """A short description of what a foreign file holds."""
    if isinstance(obj, dict):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return f"a plain state dict of {len(obj)} tensors"
        keys = sorted(map(str, obj))[:8]
        return f"a dict with format {obj.get('format')!r} and keys {keys}"
    return f"a {type(obj).__name__}"


def _load_failure(error: Exception) -> str:
    """torch.load's error in one line, without its advice to retry with weights_only=False (never safe here)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if lines and lines[0].startswith("Weights only load failed"):
        detail = [line for line in lines[1:] if not line.startswith(("Please file", "Check the documentation"))]
        return ("it is not a safe tensor file" + (f" ({detail[0]})" if detail else "")
                + "; a checkpoint that needs code to unpickle is never loaded")
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict at `path`; raises FileNotFoundError or CheckpointError with what was expected."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"checkpoint {path} cannot be read (truncated, corrupt or not a PyTorch file): "
                              f"{_load_failure(error)}") from error
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or any(k not in obj for k in REQUIRED):
        raise CheckpointError(f"{path} is not an iseg checkpoint: expected a dict with format {FORMAT!r} and keys "
                              f"{list(REQUIRED)}, found {_describe(obj)}")
    check_weights(obj, path)
    return obj


def read_input_sizes(path: str | Path) -> dict[str, int] | None:
    """The input sizes a checkpoint's network was trained to serve at ({"coarse": longer side of the whole image,
    "fine": longer side of the zoom-in crop}), or None when it records none."""
    sizes = load_checkpoint(path).get("input_sizes")
    if sizes is None:
        return None
    valid = isinstance(sizes, dict) and all(isinstance(sizes.get(k), int) and sizes[k] >= 1 for k in ("coarse", "fine"))
    if not valid:
        raise CheckpointError(f"{path}: input_sizes must map 'coarse' and 'fine' to positive integers, got {sizes!r}")
    return {"coarse": sizes["coarse"], "fine": sizes["fine"]}


def load_model(path: str | Path, device: str | torch.device = "cpu", stage: str | None = None) -> ISModel:
    """Rebuild the ISModel stored in a checkpoint (fp16-stored weights become fp32), in eval mode on `device`;
    with `stage`, a checkpoint that records another training stage is refused."""
    checkpoint = load_checkpoint(path)
    found = recorded_stage(checkpoint)
    if stage is not None and found not in (None, stage):
        raise CheckpointError(f"checkpoint {path} is a {found} network (trained as stage {found!r}), given as the "
                              f"{stage} one; swap --coarse and --fine?")
    config = ModelConfig.from_dict(checkpoint["model_config"], source=f"model_config of {path}")
    model = ISModel(ModelConfig.from_dict({**config.to_dict(), "pretrained": None}))
    state = {k: v.float() if v.is_floating_point() else v for k, v in checkpoint["model"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"weights in {path} do not fit its model_config {config.name!r}: {error}") from error
    model.config = config
    return model.to(device).eval()
