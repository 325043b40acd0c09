"""The shipped default model: checkpoints in `weights/`, listed with their sha256 in `weights/manifest.json`."""

from __future__ import annotations

import json
from pathlib import Path

from iseg.atomic import write_text
from iseg.checksum import sha256_of, verify_sha256

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


def export_checkpoint(source: Path | str, target: Path | str, half: bool = True) -> Path:
    """Write the model part of a training checkpoint (no optimizer state), floating tensors in fp16 if `half`."""
    from iseg.models.checkpoint import load_checkpoint, save_checkpoint

    payload = load_checkpoint(source)
    state = {k: v.half() if half and v.is_floating_point() else v for k, v in payload["model"].items()}
    extra = {k: payload[k] for k in ("epoch", "train_config", "input_sizes") if k in payload}
    return save_checkpoint(target, {"model_config": payload["model_config"], "model": state, **extra})


def export_default(checkpoints: dict[str, Path | str], weights_dir: Path | str = WEIGHTS_DIR) -> dict:
    """Export training checkpoints by stage ({"coarse": ..., "fine": ...}) as the default model: fp16 files
    `default_<stage>.pt` in `weights_dir` and their sha256 in its manifest.json (written last)."""
    weights_dir = Path(weights_dir)
    manifest = {}
    for stage, source in checkpoints.items():
        target = export_checkpoint(source, weights_dir / f"default_{stage}.pt")
        manifest[stage] = {"file": target.name, "sha256": sha256_of(target), "source": str(source)}
    write_text(weights_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def default_predictor(device: str = "cpu", flip: bool = True, **kwargs):
    """The default two-stage predictor (coarse intention net + fine net) from the shipped weights."""
    paths = default_checkpoints()
    from iseg.inference import predictor_from_checkpoints

    return predictor_from_checkpoints(paths["coarse"], paths.get("fine"), device=device, flip=flip, **kwargs)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m iseg.weights",
                                     description="Export trained checkpoints as the shipped default model.")
    parser.add_argument("--coarse", required=True, help="coarse-network training checkpoint")
    parser.add_argument("--fine", required=True, help="fine-network training checkpoint")
    parser.add_argument("--out", default=str(WEIGHTS_DIR), help="weights folder")
    args = parser.parse_args()
    print(json.dumps(export_default({"coarse": args.coarse, "fine": args.fine}, args.out), indent=2))
