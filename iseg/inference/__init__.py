"""Inference: test-time transforms, zoom-in regions, and the single-network and cascade predictors."""

from iseg.inference.predictors import CascadePredictor, SingleNetPredictor, predictor_from_checkpoints
from iseg.inference.transforms import Crop, Flip, Resize, Roi
from iseg.inference.zoom_in import ZoomIn, intention_roi, ritm_roi

__all__ = ["CascadePredictor", "Crop", "Flip", "Resize", "Roi", "SingleNetPredictor", "ZoomIn", "intention_roi",
           "predictor_from_checkpoints", "ritm_roi"]
