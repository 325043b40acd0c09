"""Predictors (the protocol of `iseg.predictor`): one network with RITM's zoom-in, or IFPN's coarse + fine cascade."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from iseg.clicks import Click
from iseg.inference.brs import ScaleBiasRefiner, brs_mode
from iseg.inference.transforms import Crop, Flip, Resize, Roi, Transform
from iseg.inference.zoom_in import ZoomIn, intention_roi
from iseg.models import ISModel, clicks_to_points, load_model
from iseg.models.checkpoint import read_input_sizes
from iseg.models.layers import fold_batchnorm
from iseg.protocol import TARGET_SIZE
from iseg.values import check_clicks, check_image, check_integer


def prepare_model(model: ISModel, device: str | torch.device) -> ISModel:
    """An eval-mode copy of `model` for inference: BN folded into the convs, on `device`, channels-last weights
    (1.5-2x faster convs on CPU; see docs/performance.md), no gradients for its weights."""
    return fold_batchnorm(model).to(device).to(memory_format=torch.channels_last).requires_grad_(False)


def image_to_tensor(image: np.ndarray, device: str | torch.device) -> Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float32 in [0, 1] on `device`."""
    check_image(image)
    return torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float().div_(255)


def prob_to_tensor(prev_prob: np.ndarray | None, size: tuple[int, int], device: str | torch.device) -> Tensor:
    """(H, W) probabilities (None: zeros) -> (1, 1, H, W) float32 on `device`."""
    if prev_prob is None:
        return torch.zeros(1, 1, *size, device=device)
    if prev_prob.shape != size:
        raise ValueError(f"prev_prob has shape {prev_prob.shape}, expected the image size {size}")
    outside = ~((prev_prob >= 0) & (prev_prob <= 1))  # NaN included
    if outside.any():
        raise ValueError(f"prev_prob must hold probabilities in [0, 1]; {int(outside.sum())} value(s) do not, "
                         f"e.g. {prev_prob[outside].flat[0]}")
    return torch.as_tensor(prev_prob, dtype=torch.float32, device=device)[None, None]


def run_network(model: ISModel, image: Tensor, prev: Tensor, clicks: list[Click],
                transforms: list[Transform], refiner: ScaleBiasRefiner | None = None) -> Tensor:
    """Probabilities (1, 1, H, W) of `model` on `image` (1, 3, H, W) through `transforms` (undone in reverse),
    refined at inference by `refiner` (f-BRS) when one is given."""
    batch = (image, prev, [clicks])
    for t in transforms:
        batch = t.transform(*batch)
    image_t, prev_t, clicks_t = batch
    points = clicks_to_points(clicks_t).to(image.device)
    if refiner is None:
        logits = model(image_t, points, prev_t)["instances"]
    else:
        logits = refiner.logits(model, image_t, points, prev_t, clicks_t, len(clicks))
    prob = torch.sigmoid(logits)
    for t in reversed(transforms):
        prob = t.inv_transform(prob)
    return prob.clamp_(0, 1)


class _ImagePredictor:
    """Holds the current image as a tensor on the device (the once-per-image work). Subclasses run copies of their
    networks made by `prepare_model` (later changes to the given models are not seen). With `brs` ("f-BRS-B")
    the network whose output is the final mask is refined at inference (`iseg.inference.brs`)."""

    def __init__(self, device: str | torch.device, brs: str | None = None):
        self.device = torch.device(device)
        self.image: Tensor | None = None
        self.set_brs(brs)

    def set_brs(self, brs: str | None) -> None:
        """Refinement at inference on ("f-BRS-B") or off (None, "none") from the next predict on."""
        self.brs = brs_mode(brs)
        self.refiner = ScaleBiasRefiner() if self.brs else None

    def set_image(self, image: np.ndarray) -> None:
        """Convert the (H, W, 3) uint8 RGB image once and reset the per-image state."""
        self.image = image_to_tensor(image, self.device)
        self.reset()

    def reset(self) -> None:
        """Forget the per-image state."""
        if self.refiner is not None:
            self.refiner.reset()

    @staticmethod
    def _grad_mode(refiner: ScaleBiasRefiner | None):
        """Inference mode, or no-grad mode when refining (its optimisation needs tensors autograd can record)."""
        return torch.inference_mode() if refiner is None else torch.no_grad()

    def _inputs(self, clicks: list[Click], prev_prob: np.ndarray | None) -> tuple[Tensor, Tensor]:
        """The image and previous probabilities as tensors, once the clicks are checked against the image."""
        if self.image is None:
            raise RuntimeError("call set_image(image) before predict(clicks, prev_prob)")
        check_clicks(clicks, tuple(self.image.shape[-2:]))
        return self.image, prob_to_tensor(prev_prob, tuple(self.image.shape[-2:]), self.device)


class SingleNetPredictor(_ImagePredictor):
    """One network on the whole image (resized so that its longer side is `image_size`; None: as it is), with RITM's
    zoom-in from the second click (crops resized to a longer side of `target_size`) and horizontal-flip averaging."""

    def __init__(self, model: ISModel, zoom_in: bool = True, flip: bool = True, target_size: int = TARGET_SIZE,
                 device: str | torch.device = "cpu", image_size: int | None = None, brs: str | None = None):
        super().__init__(device, brs)
        check_integer("target_size", target_size)
        if image_size is not None:
            check_integer("image_size", image_size)
        self.model = prepare_model(model, self.device)
        self.use_zoom_in, self.flip, self.image_size, self.target_size = zoom_in, flip, image_size, target_size
        self.reset()

    def reset(self) -> None:
        super().reset()
        # Fresh transforms per image: Resize, ZoomIn and Flip cache their per-image results across clicks.
        self.zoom_in = ZoomIn(self.target_size, full_size=self.image_size) if self.use_zoom_in else None
        first = self.zoom_in or (Resize(self.image_size) if self.image_size else None)
        self.transforms: list[Transform] = [t for t in (first, Flip() if self.flip else None) if t is not None]

    def predict(self, clicks: list[Click], prev_prob: np.ndarray | None = None) -> np.ndarray:
        """(H, W) float32 probabilities in [0, 1] for all clicks so far and the previous (H, W) probabilities."""
        refiner = self.refiner  # one setting for the whole click, even if set_brs is called meanwhile
        with self._grad_mode(refiner):
            image, prev = self._inputs(clicks, prev_prob)
            return run_network(self.model, image, prev, clicks, self.transforms, refiner)[0, 0].cpu().numpy()


class CascadePredictor(_ImagePredictor):
    """IFPN: the coarse network on the whole image (resized so its longer side is `coarse_size`), the intention ROI
    from its probabilities, the fine network on that crop (longer side `target_size`) with the cropped coarse
    probabilities as its previous mask; the result, pasted into a zero map, is the final (and next previous) mask."""

    def __init__(self, coarse: ISModel, fine: ISModel, flip: bool = True, target_size: int = TARGET_SIZE,
                 device: str | torch.device = "cpu", coarse_size: int = TARGET_SIZE, brs: str | None = None):
        super().__init__(device, brs)
        check_integer("target_size", target_size)
        check_integer("coarse_size", coarse_size)
        self.coarse = prepare_model(coarse, self.device)
        self.fine = prepare_model(fine, self.device)
        self.flip, self.target_size, self.coarse_size = flip, target_size, coarse_size
        self.reset()

    def reset(self) -> None:
        super().reset()
        # Fresh transforms per image: Resize and Flip cache their per-image results across clicks.
        self.coarse_transforms: list[Transform] = [Resize(self.coarse_size)] + ([Flip()] if self.flip else [])
        self.fine_flip = [Flip()] if self.flip else []
        self.last_roi: Roi | None = None
        self.last_coarse: np.ndarray | None = None  # (H, W) float32 coarse probabilities of the last predict
        self._crop: Crop | None = None

    def predict(self, clicks: list[Click], prev_prob: np.ndarray | None = None) -> np.ndarray:
        """(H, W) float32 probabilities in [0, 1] for all clicks so far and the previous (H, W) probabilities."""
        refiner = self.refiner  # one setting for the whole click, even if set_brs is called meanwhile
        with self._grad_mode(refiner):
            image, prev = self._inputs(clicks, prev_prob)
            coarse = run_network(self.coarse, image, prev, clicks, self.coarse_transforms)
            self.last_coarse = coarse[0, 0].cpu().numpy()
            self.last_roi = intention_roi(coarse[0, 0], clicks)
            if self._crop is None or self._crop.roi != self.last_roi:  # the same ROI reuses its resized image crop
                self._crop = Crop(self.last_roi, self.target_size)
            fine = run_network(self.fine, image, coarse, clicks, [self._crop, *self.fine_flip], refiner)
            return fine[0, 0].cpu().numpy()


def predictor_from_checkpoints(coarse_path: str | Path, fine_path: str | Path | None = None,
                               device: str | torch.device = "cpu", flip: bool = True,
                               target_size: int | None = None,
                               coarse_size: int | None = None,
                               brs: str | None = None) -> SingleNetPredictor | CascadePredictor:
    """A SingleNetPredictor (RITM zoom-in) from one checkpoint, or a CascadePredictor from coarse + fine;
    `brs` ("f-BRS-B" or None) refines the network whose output is the final mask at inference.

    Sizes left None are the ones the checkpoint records (`input_sizes`: the fine one's for a cascade), else the
    protocol's TARGET_SIZE: `coarse_size` is the longer side of the whole image, `target_size` of the zoom-in crop.
    """
    recorded = read_input_sizes(fine_path or coarse_path) or {}
    coarse_size = recorded.get("coarse", TARGET_SIZE) if coarse_size is None else coarse_size
    target_size = recorded.get("fine", TARGET_SIZE) if target_size is None else target_size
    if fine_path is None:
        return SingleNetPredictor(load_model(coarse_path, device), flip=flip, target_size=target_size, device=device,
                                  image_size=coarse_size, brs=brs)
    coarse, fine = load_model(coarse_path, device, stage="coarse"), load_model(fine_path, device, stage="fine")
    return CascadePredictor(coarse, fine, flip=flip, target_size=target_size,
                            device=device, coarse_size=coarse_size, brs=brs)
