"""Datasets by name: `load_dataset("Berkeley")` finds the folder in the data config and builds its reader."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Mapping

from iseg.data import folder, labelmap
from iseg.data.base import ObjectsDataset
from iseg.data.bsds import BSDS500Dataset
from iseg.data.coco import CocoDataset
from iseg.data.coco_lvis import CocoLvisDataset
from iseg.data.config import DEFAULT_CONFIG, config_paths, parse_dataset_spec
from iseg.data.cvc import CVCClinicDBDataset

DATASETS = ("GrabCut", "Berkeley", "DAVIS", "COCO_MVal", "SBD", "PascalVOC", "COCO", "COCO_LVIS", "BSDS500",
            "CVC_ClinicDB", "CVC_ClinicDB_train", "CVC_ClinicDB_test", "folder")
# Names of one fixed split of a dataset: (the dataset's name in the data config, the split).
SPLIT_NAMES = {"CVC_ClinicDB_train": ("CVC_ClinicDB", "train"), "CVC_ClinicDB_test": ("CVC_ClinicDB", "test")}


def canonical_name(name: str) -> str:
    """The registered spelling of a dataset name given in any case."""
    for known in DATASETS:
        if known.lower() == name.lower():
            return known
    raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)} (any case)")


def dataset_root(name: str, config: str | Path | Mapping[str, str | Path] | None = None) -> Path:
    """The folder of a dataset according to a data config (default: data_configs/default.yaml); a split name
    (`CVC_ClinicDB_test`) has its dataset's folder."""
    name = SPLIT_NAMES.get(canonical_name(name), (canonical_name(name),))[0]
    paths = config_paths(config)
    for key, path in paths.items():
        if key.lower() == name.lower():
            return path
    where = "the given mapping" if isinstance(config, Mapping) else config or DEFAULT_CONFIG
    raise ValueError(f"no folder for dataset {name} in the data config {where}; "
                     f"add a line `{name}: /path/to/{name}` or pass root=")


def load_dataset(name: str, root: str | Path | None = None, *, config: str | Path | Mapping | None = None,
                 split: str | None = None, **options: Any) -> ObjectsDataset:
    """Build the reader of dataset `name` (case-insensitive) on `root`, or on the config's folder for it.

    Options: `per_instance` (default True), `min_area` (default 1000), `progress`; BSDS500 also takes
    `exclude_ids`, folder takes `ignore_255`. `split` applies to SBD, PascalVOC, COCO, COCO_LVIS, BSDS500 and
    CVC_ClinicDB; a split name (`SPLIT_NAMES`, e.g. CVC_ClinicDB_test) is its split already.
    """
    name = canonical_name(name)
    root = Path(root).expanduser() if root is not None else dataset_root(name, config)
    if name in SPLIT_NAMES:
        if split not in (None, SPLIT_NAMES[name][1]):
            raise ValueError(f"{name} is the {SPLIT_NAMES[name][1]!r} split already (got split={split!r})")
        return CVCClinicDBDataset(root, SPLIT_NAMES[name][1], name=name, **options)
    if name == "CVC_ClinicDB":
        return CVCClinicDBDataset(root, split, **options)
    if name in folder.LAYOUTS:
        if split is not None:
            raise ValueError(f"{name} has no splits (got split={split!r})")
        layout = folder.folder_layout(options.pop("ignore_255", False)) if name == "folder" else folder.LAYOUTS[name]
        return folder.FolderDataset(name, root, layout, **options)
    if name in labelmap.LAYOUTS:
        return labelmap.LabelMapDataset(name, root, labelmap.LAYOUTS[name], split=split, **options)
    readers = {"COCO": CocoDataset, "COCO_LVIS": CocoLvisDataset, "BSDS500": BSDS500Dataset}
    return readers[name](root, split=split, **options)


def load_present(specs: Sequence[str], config: str | Path | Mapping | None = None) -> tuple[list[ObjectsDataset],
                                                                                           list[str]]:
    """The datasets of `specs` (NAME or NAME=PATH) whose folders exist, and a note for each one that is absent
    (e.g. the paper's benchmarks that a machine does not hold)."""
    present, notes = [], []
    for spec in specs:
        name, root = parse_dataset_spec(spec)
        folder_path = Path(root).expanduser() if root is not None else dataset_root(name, config)
        if folder_path.is_dir():
            present.append(load_dataset(name, folder_path, config=config))
        else:
            notes.append(f"{canonical_name(name)}: no folder at {folder_path}, skipped")
    return present, notes
