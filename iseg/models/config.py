"""Model configurations: the `ModelConfig` dataclass and the YAML registry in `iseg/configs/models/`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "models"
TUPLE_FIELDS = ("hrnet_modules", "half_fuse_kernels")
LEGACY_KEYS = ("backbone_lr_mult",)  # read from older checkpoints and ignored: the training config sets it


@dataclass
class ModelConfig:
    """Every knob of `ISModel`; the YAML files in `iseg/configs/models/` set a subset of these fields."""

    name: str = "custom"
    backbone: str = "hrnet"                 # "hrnet" | "mobilenet_v2"
    pretrained: str | None = None           # None (from scratch), "imagenet" (MobileNetV2 wheel) or a file path
    hrnet_width: int = 18                   # branch widths w, 2w, 4w, 8w at strides 4, 8, 16, 32
    hrnet_stem_width: int = 64              # stem channels; stage 1 outputs 4x this
    hrnet_stage1_blocks: int = 4
    hrnet_blocks: int = 4                   # basic blocks per branch in every module of stages 2-4
    hrnet_modules: tuple[int, int, int] = (1, 4, 3)   # modules in stages 2, 3, 4
    mobilenet_width_mult: float = 1.0
    fuse_channels: int | None = None        # 1x1 projection of the concatenated 1/4 features; None keeps the concat
    click_attention: bool = True            # IFPN sparse click attention (False: RITM)
    attention_heads: int = 3
    attention_dim: int = 90
    low_level: bool = True                  # IFPN cascade to 1/2 with the click-augmented stem feature
    half_channels: int | None = None        # width of the 1/2 features; None: same as the 1/4 features
    half_fuse_kernels: tuple[int, int] = (3, 3)   # kernel sizes of the two 1/2 fusion convs
    ocr_width: int = 64
    ocr_dropout: float = 0.05
    click_radius: int = 5
    click_hidden: int = 16
    click_scale: float = 0.05

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "model config") -> ModelConfig:
        """Build from a dict (YAML or checkpoint), rejecting unknown keys with the list of known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in values.items() if k not in LEGACY_KEYS}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in {source}; expected some of {sorted(known)}")
        values = dict(values)
        for key in TUPLE_FIELDS:
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of builtins (YAML- and `torch.load(weights_only=True)`-safe)."""
        values = dataclasses.asdict(self)
        for key in TUPLE_FIELDS:
            values[key] = list(values[key])
        return values


def list_models() -> list[str]:
    """Names of the model configs shipped in `iseg/configs/models/`."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def load_model_config(name_or_path: str | Path) -> ModelConfig:
    """A registered config name (see `list_models()`) or the path of a YAML file."""
    path = CONFIG_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        path = Path(name_or_path)
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
            raise ValueError(f"unknown model {str(name_or_path)!r}: expected one of {list_models()} "
                             "or the path of an existing .yaml model config")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"model config {path} must hold a mapping of ModelConfig fields, got {type(values).__name__}")
    values.setdefault("name", path.stem)
    return ModelConfig.from_dict(values, source=str(path))


def resolve_config(spec: str | Path | ModelConfig | dict[str, Any], **overrides: Any) -> ModelConfig:
    """A ModelConfig from a name, YAML path, dict or ModelConfig, with field overrides applied."""
    if isinstance(spec, ModelConfig):
        config = spec
    elif isinstance(spec, dict):
        config = ModelConfig.from_dict(spec)
    else:
        config = load_model_config(spec)
    if overrides:
        config = ModelConfig.from_dict({**config.to_dict(), **overrides}, source="build_model overrides")
    return config
