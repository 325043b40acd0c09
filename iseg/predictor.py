"""The predictor protocol (clicks -> probability map) and `load_predictor(spec)`."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from iseg.clicks import Click

SPECS_HELP = (
    '"grabcut" (classical baseline), "default" (the shipped model), a model folder or its manifest.json (e.g. a '
    "fine-tune's model/), a path to a .pt checkpoint (single network), or coarse= and fine= checkpoint paths "
    "(IFPN cascade)"
)


@runtime_checkable
class Predictor(Protocol):
    """Anything that turns clicks on an image into a foreground probability map."""

    def set_image(self, image: np.ndarray) -> None:
        """Do the once-per-image work for an (H, W, 3) uint8 RGB image and reset per-image state."""

    def predict(self, clicks: list[Click], prev_prob: np.ndarray | None) -> np.ndarray:
        """(H, W) float32 probabilities in [0, 1] given all clicks so far and the previous
        (H, W) float32 probabilities (zeros or None at the first click)."""


def load_predictor(spec: str | None, *, coarse: str | Path | None = None, fine: str | Path | None = None,
                   device: str = "cpu", flip: bool = True, target_size: int | None = None,
                   coarse_size: int | None = None, brs: str | None = None, **kw) -> Predictor:
    """Build a predictor from a spec: "grabcut", "default", a model folder (or its manifest.json), a .pt checkpoint,
    or coarse+fine checkpoints.

    `target_size` is the longer side of the networks' zoom-in crops (the protocol uses 600 on DAVIS) and
    `coarse_size` that of the whole image for the coarse network; None means the sizes the checkpoint records
    (the sizes it was trained at), or the protocol's 400 for a checkpoint that records none;
    the GrabCut baseline has none. `brs` ("f-BRS-B"; None or "none": off) refines a network predictor at
    inference (`iseg.inference.brs`). Extra keyword arguments go to the chosen constructor.
    """
    if coarse is not None or fine is not None:
        if coarse is None or fine is None:
            raise ValueError(f"the cascade needs both coarse and fine checkpoints, got coarse={coarse!r}, "
                             f"fine={fine!r}")
        if spec not in (None, "cascade"):
            raise ValueError(f"give either a predictor spec ({spec!r}) or coarse+fine checkpoints, not both")
        from iseg.inference import predictor_from_checkpoints

        return predictor_from_checkpoints(coarse, fine, device=device, flip=flip, target_size=target_size,
                                          coarse_size=coarse_size, brs=brs, **kw)
    if spec is None:
        raise ValueError(f"no predictor given; expected {SPECS_HELP}")
    if spec.lower() == "grabcut":
        from iseg.grabcut import GrabCutPredictor
        from iseg.inference.brs import brs_mode

        if brs_mode(brs) is not None:
            raise ValueError(f"brs={brs!r} refines a network predictor; the GrabCut baseline has no network")
        return GrabCutPredictor(**kw)
    from iseg.weights import MANIFEST, model_manifest, model_predictor

    manifest = MANIFEST if spec.lower() == "default" else model_manifest(spec)
    if manifest is not None:
        return model_predictor(manifest, device=device, flip=flip, target_size=target_size, coarse_size=coarse_size,
                               brs=brs, **kw)
    if spec.endswith(".pt"):
        if not Path(spec).is_file():
            raise FileNotFoundError(f"checkpoint {spec} does not exist")
        from iseg.inference import predictor_from_checkpoints

        return predictor_from_checkpoints(spec, None, device=device, flip=flip, target_size=target_size,
                                          coarse_size=coarse_size, brs=brs, **kw)
    raise ValueError(f"unknown predictor {spec!r}; expected {SPECS_HELP}")
