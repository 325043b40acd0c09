"""Training: augmentation, multi-point click sampler, iterative clicks, losses, the loop (DDP) and its config."""

from iseg.training.config import TrainConfig, list_configs, load_config, parse_overrides
from iseg.training.trainer import train

__all__ = ["TrainConfig", "list_configs", "load_config", "parse_overrides", "train"]
