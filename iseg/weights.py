"""The shipped default model: checkpoints in `weights/`, listed with their sha256 in `weights/manifest.json`."""

from __future__ import annotations

import json
from pathlib import Path

from iseg.checksum import verify_sha256

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"


RESTORE = "Restore it with `git checkout -- weights/`."


def read_manifest(manifest: Path | str = MANIFEST) -> dict:
    """The manifest: {"coarse": {"file": ..., "sha256": ...}, "fine": {...}}."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(
            f"No default model: {manifest} is missing. Train one (weights/README.md) or pass a checkpoint."
        )
    return json.loads(manifest.read_text())


def default_checkpoints(manifest: Path | str = MANIFEST) -> dict[str, Path]:
    """Verified paths of the default model's checkpoints, by stage name ("coarse", "fine")."""
    manifest = Path(manifest)
    entries = read_manifest(manifest)
    return {stage: verify_sha256(manifest.parent / e["file"], e["sha256"], RESTORE) for stage, e in entries.items()}


def default_predictor(device: str = "cpu", flip: bool = True, **kwargs):
    """The default two-stage predictor (coarse intention net + fine net) from the shipped weights."""
    paths = default_checkpoints()
    from iseg.inference import predictor_from_checkpoints

    return predictor_from_checkpoints(paths["coarse"], paths.get("fine"), device=device, flip=flip, **kwargs)
