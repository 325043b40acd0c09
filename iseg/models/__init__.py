"""Networks: backbones, click encoder, sparse click attention, OCR head, ISModel, configs and checkpoints."""

from iseg.models.checkpoint import CheckpointError, load_checkpoint, load_model, model_payload, save_checkpoint
from iseg.models.config import ModelConfig, list_models, load_model_config
from iseg.models.ismodel import ISModel, build_model
from iseg.models.points import clicks_to_points

__all__ = [
    "CheckpointError", "ISModel", "ModelConfig", "build_model", "clicks_to_points", "list_models", "load_checkpoint",
    "load_model", "load_model_config", "model_payload", "save_checkpoint",
]
