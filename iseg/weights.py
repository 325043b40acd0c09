"""The shipped default model: checkpoints in `weights/`, listed with their sha256 in `weights/manifest.json`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from iseg.atomic import write_text
from iseg.checksum import sha256_of, verify_sha256
from iseg.resources import installed_from_wheel, shipped

WEIGHTS_DIR = shipped("weights")
MANIFEST = WEIGHTS_DIR / "manifest.json"


RESTORE = "Reinstall iseg to restore it." if installed_from_wheel() else "Restore it with `git checkout -- weights/`."
STAGES = ("coarse", "fine")


def read_manifest(manifest: Path | str = MANIFEST) -> dict:
    """The manifest: {"coarse": {"file": ..., "sha256": ...}, "fine": {...}}; a damaged one is an error."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(
            f"No default model: {manifest} is missing. Train one (weights/README.md) or pass a checkpoint."
        )
    try:
        entries = json.loads(manifest.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"the default model's manifest {manifest} is damaged (not JSON: {error}). "
                         f"{RESTORE}") from None
    for stage in STAGES:
        entry = entries.get(stage) if isinstance(entries, dict) else None
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("file", "sha256")):
            raise ValueError(f"the default model's manifest {manifest} is damaged: expected a {stage!r} entry "
                             f'{{"file": ..., "sha256": ...}} for each of {list(STAGES)}. {RESTORE}')
        if Path(entry["file"]).name != entry["file"] or entry["file"] in ("", ".", ".."):
            raise ValueError(f"the default model's manifest {manifest} is damaged: its {stage!r} file "
                             f"{entry['file']!r} is not a file name in {manifest.parent}. {RESTORE}")
    return entries


def default_checkpoints(manifest: Path | str = MANIFEST) -> dict[str, Path]:
    """Verified paths of the default model's checkpoints, by stage name ("coarse", "fine")."""
    manifest = Path(manifest)
    entries = read_manifest(manifest)
    return {stage: verify_sha256(manifest.parent / entries[stage]["file"], entries[stage]["sha256"], RESTORE)
            for stage in STAGES}


def export_checkpoint(source: Path | str, target: Path | str, half: bool = True) -> Path:
    """Write the model part of a training checkpoint (no optimizer state), floating tensors in fp16 if `half`."""
    from iseg.models.checkpoint import load_checkpoint, save_checkpoint

    payload = load_checkpoint(source)
    state = {k: v.half() if half and v.is_floating_point() else v for k, v in payload["model"].items()}
    extra = {k: payload[k] for k in ("epoch", "train_config", "input_sizes") if k in payload}
    return save_checkpoint(target, {"model_config": payload["model_config"], "model": state, **extra})


def export_default(checkpoints: dict[str, Path | str], weights_dir: Path | str = WEIGHTS_DIR,
                   force: bool = False, about: dict | None = None) -> dict:
    """Export training checkpoints by stage ({"coarse": ..., "fine": ...}) as the default model: fp16 files
    `default_<stage>.pt` in `weights_dir` and their sha256 in its manifest.json (written last), with `about`
    (e.g. the training data and budget of a fine-tune) under its "about" key.

    Both checkpoints are loaded and exported to temporary files before anything is replaced; existing files
    are replaced only with `force`.
    """
    from iseg.cli import RunLock
    from iseg.models.checkpoint import load_model

    weights_dir = Path(weights_dir)
    if sorted(checkpoints) != sorted(STAGES):
        raise ValueError(f"the default model needs checkpoints for {list(STAGES)}, got {sorted(checkpoints)}")
    if Path(checkpoints["coarse"]).resolve() == Path(checkpoints["fine"]).resolve():
        raise ValueError(f"--coarse and --fine are the same file {checkpoints['coarse']}; the default model needs "
                         "the coarse network's checkpoint and the fine network's")
    for stage, source in checkpoints.items():  # a missing, foreign, damaged or swapped checkpoint stops here
        load_model(source, stage=stage)
    targets = {stage: weights_dir / f"default_{stage}.pt" for stage in STAGES}
    existing = [str(p) for p in [*targets.values(), weights_dir / "manifest.json"] if p.exists()]
    if existing and not force:
        raise FileExistsError(f"{', '.join(existing)} exist already; pass force=True (--force) to replace them")
    # a stage given as its own shipped file is kept as it is: file, checksum and provenance
    kept = {stage: read_manifest(weights_dir / "manifest.json")[stage] for stage in STAGES
            if Path(checkpoints[stage]).resolve() == targets[stage].resolve()}
    for stage, entry in kept.items():
        verify_sha256(targets[stage], entry["sha256"], RESTORE)
    with RunLock(weights_dir):
        staged = {stage: weights_dir / f".{target.name}.new" for stage, target in targets.items() if stage not in kept}
        try:
            for stage in staged:
                export_checkpoint(checkpoints[stage], staged[stage])
            manifest = {stage: kept.get(stage) or {"file": targets[stage].name, "sha256": sha256_of(staged[stage]),
                                                   "source": str(checkpoints[stage])} for stage in STAGES}
            if about:
                manifest["about"] = about
            for stage in staged:
                os.replace(staged[stage], targets[stage])
        finally:
            for path in staged.values():
                path.unlink(missing_ok=True)
        write_text(weights_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def model_manifest(spec: str | Path) -> Path | None:
    """The manifest of a model folder given as the folder or its manifest.json (e.g. a fine-tune's `model/`),
    or None when `spec` is neither."""
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "manifest.json").is_file():
        return path / "manifest.json"
    return path if path.name == "manifest.json" and path.is_file() else None


def model_predictor(manifest: Path | str = MANIFEST, device: str = "cpu", flip: bool = True, **kwargs):
    """The two-stage predictor (coarse intention net + fine net) of a model folder's manifest (default: the
    shipped weights)."""
    paths = default_checkpoints(manifest)
    from iseg.inference import predictor_from_checkpoints

    return predictor_from_checkpoints(paths["coarse"], paths["fine"], device=device, flip=flip, **kwargs)


def main(argv: list[str] | None = None) -> dict:
    """`python -m iseg.weights`: export two training checkpoints as the default model; prints the manifest."""
    import argparse

    from iseg.cli import add_debug_flag, reporting

    parser = argparse.ArgumentParser(prog="python -m iseg.weights",
                                     description="Export trained checkpoints as the shipped default model.")
    parser.add_argument("--coarse", required=True, help="coarse-network training checkpoint")
    parser.add_argument("--fine", required=True, help="fine-network training checkpoint")
    parser.add_argument("--out", default=str(WEIGHTS_DIR), help="weights folder")
    parser.add_argument("--force", action="store_true", help="replace the default model already in --out")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    with reporting(parser.prog, args.debug):
        manifest = export_default({"coarse": args.coarse, "fine": args.fine}, args.out, force=args.force)
    print(json.dumps(manifest, indent=2))
    return manifest


if __name__ == "__main__":
    main()
