"""The training configuration: a dataclass whose defaults are the paper's hyper-parameters (ifpn.md, "Training").

Named configs live in `iseg/configs/train/<name>.yaml`; a YAML file holds any subset of the fields. Every field
can be overridden with `key=value` strings (values parsed as YAML: `lr=1e-4`, `crop_size=[256,384]`,
`data={COCO_MVal: 1}`).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "train"
STAGES = ("coarse", "fine")


@dataclass
class TrainConfig:
    """Everything a training run depends on; `config.yaml` in the run folder is this, resolved."""

    stage: str = "coarse"                 # "coarse" (stage 1) or "fine" (stage 2, needs coarse_checkpoint)
    model: str = "ifpn_hrnet18"           # iseg.models config name or YAML path
    model_overrides: dict = field(default_factory=dict)
    # data: dataset name (or NAME=PATH) -> sampling weight (share of each epoch's samples)
    data: dict = field(default_factory=lambda: {"COCO_LVIS": 1.0})
    data_config: str | None = None        # data config YAML (name -> path); None = the package default
    data_options: dict = field(default_factory=dict)  # dataset name -> extra load_dataset options
    min_object_area: int = 1000           # targets are drawn among objects at least this big (pixels)
    val: str | None = None                # validation dataset name (never GrabCut/Berkeley); None = no validation
    val_size: int = 50                    # samples held out (the val_size ids with the smallest sha1)
    val_clicks: int = 3                   # mIoU after 1..val_clicks clicks; best.pt by mIoU@val_clicks
    # augmentation
    crop_size: tuple = (320, 480)         # (h, w)
    scale_range: tuple = (0.75, 1.40)
    # clicks
    max_num_points: int = 24
    prob_gamma: float = 0.8
    merge_objects_prob: float = 0.15
    max_num_merged_objects: int = 2
    max_iterative_clicks: int = 3         # 0..N extra clicks per batch, chosen uniformly
    # optimisation
    batch_size: int = 32                  # global batch (split over DDP processes)
    epochs: int = 55
    samples_per_epoch: int = 30000
    lr: float = 5e-4
    betas: tuple = (0.9, 0.999)
    backbone_lr_mult: float = 0.1
    scheduler: str = "step"               # "step" (MultiStepLR at milestones) or "cosine" (to 0 at the last epoch)
    milestones: tuple = (50, 53)
    gamma: float = 0.1
    aux_loss_weight: float = 0.4          # 0.4 x BCE on the auxiliary output (stage 1; stage 2 uses NFL only)
    # run
    num_workers: int = 4
    checkpoint_every: int = 5             # epoch_NNN.pt every N epochs (0 = never)
    seed: int = 0
    device: str = "auto"                  # "auto" | "cpu" | "cuda" | "cuda:N"
    threads: int = 0                      # torch.set_num_threads when > 0
    # stage 2
    coarse_checkpoint: str | None = None
    fine_init_from_coarse: bool = True    # else a fresh `model`
    target_aspect: float | None = None    # ROI h/w forced in stage 2; None = crop_size's (2:3)

    def __post_init__(self) -> None:
        for name in ("crop_size", "scale_range", "betas", "milestones"):
            setattr(self, name, tuple(getattr(self, name)))
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.scheduler not in ("step", "cosine"):
            raise ValueError(f"scheduler must be 'step' or 'cosine', got {self.scheduler!r}")
        if len(self.crop_size) != 2:
            raise ValueError(f"crop_size must be (h, w), got {self.crop_size!r}")
        self._check_numbers()

    def _check_numbers(self) -> None:
        """Raise, naming the key, on a count or size that no run can use (e.g. crop_size [0, 0], epochs 0)."""
        minimum = {"epochs": 1, "batch_size": 1, "samples_per_epoch": 1, "max_num_points": 1, "val_size": 1,
                   "val_clicks": 1, "num_workers": 0, "threads": 0, "checkpoint_every": 0, "min_object_area": 0,
                   "max_iterative_clicks": 0}
        for key, least in minimum.items():
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"training config key {key!r} must be an integer >= {least}, got {value!r}")
        if not all(isinstance(v, int) and v > 0 for v in self.crop_size):
            raise ValueError(f"crop_size must be two positive integers (h, w), got {list(self.crop_size)}")
        if not self.lr > 0 or not all(v > 0 for v in self.scale_range):
            raise ValueError(f"lr and scale_range must be positive, got lr={self.lr!r}, "
                             f"scale_range={list(self.scale_range)}")

    @property
    def aspect(self) -> float:
        """h / w of stage-2 ROIs."""
        return self.target_aspect or self.crop_size[0] / self.crop_size[1]

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-able dict (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def save(self, path: Path) -> None:
        """Write as YAML, atomically."""
        atomic_write_text(Path(path), yaml.safe_dump(self.to_dict(), sort_keys=False))


def load_config(name_or_path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A config from a name in iseg/configs/train or a YAML path (None = defaults), then `overrides`."""
    values: dict[str, Any] = {}
    if name_or_path is not None:
        values = _read_yaml(resolve_config_path(name_or_path))
    values.update(overrides or {})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown training config key(s) {unknown} in {name_or_path or 'overrides'}; "
                         f"known keys: {sorted(known)}")
    return TrainConfig(**{key: _coerce(key, value) for key, value in values.items()})


def _coerce(key: str, value: Any) -> Any:
    """Numbers that YAML read as strings ('1e-4' in YAML 1.1) become the field's numeric type."""
    hint = typing.get_type_hints(TrainConfig)[key]
    numeric = next((t for t in (float, int) if hint is t or t in typing.get_args(hint)), None)
    if numeric is None or not isinstance(value, str):
        return value
    try:
        return numeric(value)
    except ValueError:
        raise ValueError(f"training config key {key!r}: expected a {numeric.__name__}, got {value!r}") from None


def resolve_config_path(name_or_path: str | Path) -> Path:
    """Path of a named config (iseg/configs/train/<name>.yaml) or an existing YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise FileNotFoundError(f"training config file {path} not found")
        return path
    named = CONFIG_DIR / f"{name_or_path}.yaml"
    if not named.is_file():
        raise FileNotFoundError(f"no training config named {name_or_path!r}; known: {', '.join(list_configs())}")
    return named


def list_configs() -> list[str]:
    """Names of the packaged training configs."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """['lr=1e-4', 'crop_size=[256, 384]'] -> {'lr': 0.0001, 'crop_size': [256, 384]} (values parsed as YAML)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} must look like key=value")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from `path`, or a clear error."""
    with open(path) as f:
        values = yaml.safe_load(f) or {}
    if not isinstance(values, dict):
        raise ValueError(f"training config {path} must be a YAML mapping of keys to values")
    return values


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to `path` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
