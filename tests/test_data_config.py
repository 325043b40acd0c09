"""Data configs, dataset names and command-line dataset specs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from iseg.data import DATASETS, canonical_name, load_data_config, load_dataset, parse_dataset_spec
from iseg.resources import project_root


def test_default_config_lists_every_format_but_folder_and_split_names() -> None:
    from iseg.data.registry import SPLIT_NAMES

    config = load_data_config()
    assert set(config) == set(DATASETS) - {"folder", *SPLIT_NAMES}
    assert all(path.is_absolute() for path in config.values())
    assert config["DAVIS"] == project_root() / "datasets" / "DAVIS"


def test_relative_paths(tmp_path: Path) -> None:
    in_repo_style = tmp_path / "data_configs" / "mine.yaml"
    in_repo_style.parent.mkdir()
    in_repo_style.write_text("Berkeley: data/Berkeley\nGrabCut: /abs/GrabCut\n")
    assert load_data_config(in_repo_style) == {"Berkeley": tmp_path / "data" / "Berkeley",
                                               "GrabCut": Path("/abs/GrabCut")}
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text("DAVIS: DAVIS\n")
    assert load_data_config(elsewhere) == {"DAVIS": tmp_path / "DAVIS"}


def test_bad_configs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_data_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ValueError, match="mapping of dataset name"):
        load_data_config(bad)


def test_names_are_case_insensitive() -> None:
    assert canonical_name("coco_mval") == "COCO_MVal" and canonical_name("BSDS500") == "BSDS500"
    with pytest.raises(ValueError, match="unknown dataset 'ImageNet'.*GrabCut"):
        canonical_name("ImageNet")


def test_load_dataset_through_config(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "gt").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "x.jpg"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "gt" / "x.png"), np.full((8, 8), 255, np.uint8))
    config = tmp_path / "data.yaml"
    config.write_text(f"davis: {tmp_path}\n")
    assert len(load_dataset("DAVIS", config=config)) == 1
    assert len(load_dataset("davis", config={"DAVIS": tmp_path})) == 1
    with pytest.raises(ValueError, match="no folder for dataset SBD in the data config .*data.yaml"):
        load_dataset("sbd", config=config)


def test_parse_dataset_spec() -> None:
    assert parse_dataset_spec("Berkeley=/x") == ("Berkeley", Path("/x"))
    assert parse_dataset_spec("GrabCut") == ("GrabCut", None)
    for bad in ("=/x", "Berkeley="):
        with pytest.raises(ValueError, match="NAME=PATH"):
            parse_dataset_spec(bad)
