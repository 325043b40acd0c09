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

from iseg.training.augment import Augmentation
from iseg.training.points_sampler import MultiPointSampler
from iseg.training.precision import check_amp
from iseg.values import check_number

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs" / "train"
STAGES = ("coarse", "fine")
NESTED = {"augment": Augmentation, "sampler": MultiPointSampler}


@dataclass
class TrainConfig:
    """Everything a training run depends on; `config.yaml` in the run folder is this, resolved."""

    stage: str = "coarse"                 # "coarse" (stage 1) or "fine" (stage 2, needs coarse_checkpoint)
    model: str = "ifpn_hrnet18"           # iseg.models config name or YAML path
    model_overrides: dict = field(default_factory=dict)
    init_checkpoint: str | None = None    # start from these weights (same model; fine-tuning, ablations)
    # data: dataset name (or NAME=PATH) -> sampling weight (share of each epoch's samples)
    data: dict = field(default_factory=lambda: {"COCO_LVIS": 1.0})
    data_config: str | None = None        # data config YAML (name -> path); None = the package default
    data_options: dict = field(default_factory=dict)  # dataset name -> extra load_dataset options
    # evaluation sets: none of their photos reaches training or validation (matched by content, iseg.data.overlap)
    exclude: tuple = ("GrabCut", "Berkeley")
    min_object_area: int = 1000           # targets are drawn among objects at least this big (pixels)
    val: str | None = None                # validation dataset name (never an evaluation set); None = no validation
    val_size: int = 50                    # images held out (the val_size ids with the smallest sha1)
    val_clicks: int = 10                  # protocol clicks per validation sample (no flip, no early stop)
    # the input sizes the networks serve at (recorded in checkpoints; predictors use them): the longer side of the
    # whole image for the coarse network, the longer side of the zoom-in crop for the fine network
    coarse_size: int = 400
    fine_size: int = 400
    fine_crop: tuple | None = None        # stage 2: (h, w) the fine network trains at; None = augment.crop_size
    augment: Augmentation = field(default_factory=Augmentation)
    sampler: MultiPointSampler = field(default_factory=MultiPointSampler)
    max_iterative_clicks: int = 3         # 0..N extra clicks per batch, chosen uniformly
    # optimisation
    batch_size: int = 32                  # global batch (split over DDP processes)
    epochs: int = 55
    samples_per_epoch: int = 30000
    lr: float = 5e-4
    betas: tuple = (0.9, 0.999)
    backbone_lr_mult: float = 0.1         # backbone, attention and cascade at lr x this; click encoder, heads at lr
    scheduler: str = "step"               # "step" (MultiStepLR at milestones) or "cosine" (to 0 at the last epoch)
    # wall-clock budget of the run (training + validation), minutes: after the first epoch, `epochs` becomes the
    # number of epochs that fit at its measured pace, so the schedule ends inside the budget, never cut; None = off
    budget_minutes: float | None = None
    milestones: tuple = (50, 53)
    gamma: float = 0.1
    aux_loss_weight: float = 0.4          # 0.4 x BCE on the auxiliary output (stage 1; stage 2 uses NFL only)
    amp: bool | str = False               # bf16 autocast of the networks: true, false, or "auto" (where the device
                                          # has bf16 units: CUDA, CPU with AVX512-BF16/AMX); losses stay fp32
    channels_last: bool = True            # networks and images in channels-last memory format (faster convolutions)
    # run
    num_workers: int = 4
    checkpoint_every: int = 5             # epoch_NNN.pt every N epochs (0 = never)
    seed: int = 0
    device: str = "auto"                  # "auto" | "cpu" | "cuda" | "cuda:N"
    threads: int = 0                      # torch.set_num_threads when > 0
    # stage 2
    coarse_checkpoint: str | None = None
    fine_init_from_coarse: bool = True    # else a fresh `model`
    # stage 2: the h/w aspects of the fine network's training crops, each with longer side fine_size; every ROI
    # trains at the one it reaches by growing its shorter side (its longer side at the size it is served at);
    # None = the single crop `crop_size`, every ROI grown to its aspect
    fine_aspects: tuple | None = None

    def __post_init__(self) -> None:
        for name in ("betas", "milestones", "exclude"):
            setattr(self, name, tuple(getattr(self, name)))
        for name, kind in NESTED.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, _nested(kind, value, name))
        if self.fine_aspects is not None:
            self.fine_aspects = tuple(self.fine_aspects)
            if not all(isinstance(a, (int, float)) and 0.1 <= a <= 10 for a in self.fine_aspects):
                raise ValueError(f"fine_aspects must be a list of h/w aspects between 0.1 and 10, got "
                                 f"{self.fine_aspects!r}")
        if self.fine_crop is not None:
            self.fine_crop = tuple(self.fine_crop)
            if len(self.fine_crop) != 2 or min(self.fine_crop) < 1:
                raise ValueError(f"fine_crop must be (h, w) with positive sides, got {self.fine_crop!r}")
        check_amp(self.amp)
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.scheduler not in ("step", "cosine"):
            raise ValueError(f"scheduler must be 'step' or 'cosine', got {self.scheduler!r}")
        least = {"coarse_size": 1, "fine_size": 1, "batch_size": 1, "epochs": 1, "samples_per_epoch": 1,
                 "val_size": 1, "val_clicks": 1, "num_workers": 0, "threads": 0, "checkpoint_every": 0,
                 "min_object_area": 0, "max_iterative_clicks": 0}
        for key, minimum in least.items():
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"training config key {key!r} must be an integer >= {minimum}, got {value!r}")
        if self.budget_minutes is not None and not (isinstance(self.budget_minutes, (int, float))
                                                    and 0 < self.budget_minutes < float("inf")):
            raise ValueError(f"training config key 'budget_minutes' must be a positive number of minutes or null, "
                             f"got {self.budget_minutes!r}")
        if not 0 < self.lr < float("inf"):
            raise ValueError(f"training config key 'lr' must be a positive finite number, got {self.lr!r}")
        for key in ("backbone_lr_mult", "gamma", "aux_loss_weight"):
            check_number(f"training config key {key!r}", getattr(self, key), low=0)
        if len(self.betas) != 2:
            raise ValueError(f"training config key 'betas' must be Adam's two betas, e.g. [0.9, 0.999], got "
                             f"{list(self.betas)!r}")
        for beta in self.betas:
            check_number("training config key 'betas' (each)", beta, low=0, high=0.9999)
        if not isinstance(self.data, dict) or not self.data:
            raise ValueError(f"training config key 'data' must map dataset names to sampling weights, e.g. "
                             f"{{COCO_MVal: 1.0}}, got {self.data!r}")
        for name, weight in self.data.items():
            check_number(f"training config key 'data' weight of {name}", weight, low=0)
        if sum(self.data.values()) <= 0:
            raise ValueError(f"training config key 'data' needs a positive weight, got {self.data!r}")

    @property
    def crop_size(self) -> tuple[int, int]:
        """(h, w) the trained network sees: the augmentation crop (stage 1) or the fine crop (stage 2)."""
        if self.stage == "fine" and self.fine_crop is not None:
            return self.fine_crop
        return self.augment.crop_size

    @property
    def fine_crops(self) -> list[tuple[int, int]]:
        """(h, w) sizes of the stage-2 training crops (see `fine_aspects`)."""
        if not self.fine_aspects:
            return [tuple(self.crop_size)]
        side = self.fine_size
        return [(round(side * a), side) if a <= 1 else (side, round(side / a)) for a in self.fine_aspects]

    @property
    def input_sizes(self) -> dict[str, int]:
        """What checkpoints record: {"coarse": longer side of the whole image, "fine": longer side of the crop}."""
        return {"coarse": self.coarse_size, "fine": self.fine_size}

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-able dict (tuples as lists, nested parts as mappings)."""
        return _plain(dataclasses.asdict(self))

    def save(self, path: Path) -> None:
        """Write as YAML, atomically."""
        atomic_write_text(Path(path), yaml.safe_dump(self.to_dict(), sort_keys=False))


def _plain(value: Any) -> Any:
    """Tuples -> lists, recursively (YAML and weights_only checkpoints take plain types)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _nested(kind: type, values: dict[str, Any], name: str) -> Any:
    """A nested config part (Augmentation, MultiPointSampler) from a mapping, unknown keys refused."""
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in training config part {name!r}; known keys: {sorted(known)}")
    return kind(**values)


def load_config(name_or_path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A config from a name in iseg/configs/train or a YAML path (None = defaults), then `overrides`.

    Override keys may be dotted to reach a nested part: {"augment.crop_size": [256, 384]}; a mapping given for a
    nested part is merged into it key by key."""
    values: dict[str, Any] = {}
    if name_or_path is not None:
        values = _read_yaml(resolve_config_path(name_or_path))
    for key, value in (overrides or {}).items():
        head, dot, rest = key.partition(".")
        if dot:
            value, key = {rest: value}, head
        if key in NESTED and isinstance(value, dict):
            value = {**(values.get(key) or {}), **value}
        values[key] = value
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
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise ValueError(f"override {key.strip()}: the value {value!r} is not YAML "
                             f"({' '.join(str(error).split())[:120]})") from None
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
