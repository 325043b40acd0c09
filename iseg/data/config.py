"""Data config: a YAML file mapping dataset names to folders (`data_configs/default.yaml`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import yaml

from iseg.resources import project_root, shipped

DEFAULT_CONFIG = shipped("data_configs") / "default.yaml"


def config_base(path: Path) -> Path:
    """Folder that relative paths of a config file are resolved against.

    For the default config, the project root (the clone, or the current directory for a wheel install); for
    another file in a `data_configs` folder, that folder's parent; else the file's own folder.
    """
    folder = path.resolve().parent
    if folder == DEFAULT_CONFIG.resolve().parent:
        return project_root()
    return folder.parent if folder.name == "data_configs" else folder


def load_data_config(path: str | Path | None = None) -> dict[str, Path]:
    """Read a data config (default: `data_configs/default.yaml`) as {dataset name: absolute folder}."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"data config {path} not found; expected a YAML file of `name: folder` lines")
    try:
        entries = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"data config {path} is not valid YAML: {error}") from error
    if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
        raise ValueError(f"data config {path} must be a mapping of dataset name -> folder path (strings)")
    base = config_base(path)
    return {str(name): (base / Path(folder).expanduser()).resolve() for name, folder in entries.items()}


def parse_dataset_spec(spec: str) -> tuple[str, Path | None]:
    """Split a command-line dataset spec "NAME" or "NAME=PATH" into (name, path or None)."""
    name, sep, path = spec.partition("=")
    if not name.strip() or (sep and not path.strip()):
        raise ValueError(f"dataset spec {spec!r}: expected NAME or NAME=PATH, e.g. Berkeley=/data/Berkeley")
    return name.strip(), Path(path.strip()).expanduser() if sep else None


def config_paths(config: str | Path | Mapping[str, str | Path] | None) -> dict[str, Path]:
    """Dataset folders from a config file path, an already loaded mapping, or the default config."""
    if isinstance(config, Mapping):
        return {str(k): Path(v) for k, v in config.items()}
    return load_data_config(config)
