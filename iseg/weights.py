"""The shipped default model: checkpoints in `weights/`, listed with their sha256 in `weights/manifest.json`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"


def sha256_of(path: Path | str) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path | str, expected_sha256: str) -> Path:
    """Return the path if the file exists and matches its checksum, else raise a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Weights file {path} is missing (expected sha256 {expected_sha256}).")
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise ValueError(
            f"Weights file {path} does not match its checksum: sha256 {actual}, expected {expected_sha256}. "
            "The file is corrupt or was replaced; restore it with `git checkout -- weights/`."
        )
    return path


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
    return {stage: verify_file(manifest.parent / e["file"], e["sha256"]) for stage, e in entries.items()}


def default_predictor(device: str = "cpu", flip: bool = True, **kwargs):
    """The default two-stage predictor (coarse intention net + fine net) from the shipped weights."""
    paths = default_checkpoints()
    from iseg.inference import predictor_from_checkpoints

    return predictor_from_checkpoints(paths["coarse"], paths.get("fine"), device=device, flip=flip, **kwargs)
