"""Packing training data into one folder under a size budget (iseg.training.pack) and `make gpu-train` in tiny form."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import pandas as pd
import yaml

from iseg.data import load_dataset, parse_dataset_spec
from iseg.data.overlap import dataset_fingerprints, shared_photos
from iseg.training.pack import BUDGET_MIB, MIB, QUALITIES, folder_size, pack
from iseg.training import load_config
from iseg.training.data import build_data

REPO = Path(__file__).resolve().parents[1]
COCO_IMAGES = 5
BSDS_IMAGES = 3


def centre_mask(shape: tuple[int, ...]) -> np.ndarray:
    """A 0/255 mask of the image's central half (an object with background around it)."""
    mask = np.zeros(shape, np.uint8)
    h, w = shape[:2]
    mask[h // 4:3 * h // 4, w // 4:3 * w // 4] = 255
    return mask


@pytest.fixture
def sources(tmp_path: Path, shared_datasets: Path) -> Path:
    """A data config (returned) over small copies of COCO-MVal and BSDS500 `test`, and evaluation sets GrabCut and
    Berkeley holding one photo of each, renamed and (GrabCut) rotated."""
    src = tmp_path / "src"
    coco = sorted((shared_datasets / "COCO_MVal" / "img").glob("*.jpg"))[::150][:COCO_IMAGES]  # 5 categories
    for folder in ("img", "gt"):
        (src / "COCO_MVal" / folder).mkdir(parents=True)
    for path in coco:
        shutil.copy(path, src / "COCO_MVal" / "img")
        shutil.copy(shared_datasets / "COCO_MVal" / "gt" / f"{path.stem}.png", src / "COCO_MVal" / "gt")
    data = shared_datasets / "BSDS500" / "BSR" / "BSDS500" / "data"
    bsds = sorted((data / "images" / "test").glob("*.jpg"))[:BSDS_IMAGES]
    target = src / "BSDS500" / "BSR" / "BSDS500" / "data"
    for folder in ("images", "groundTruth"):
        (target / folder / "test").mkdir(parents=True)
    for path in bsds:
        shutil.copy(path, target / "images" / "test")
        shutil.copy(data / "groundTruth" / "test" / f"{path.stem}.mat", target / "groundTruth" / "test")
    for folder in ("GrabCut/data_GT", "GrabCut/boundary_GT", "Berkeley/images", "Berkeley/masks"):
        (src / folder).mkdir(parents=True)
    photo = cv2.imread(str(coco[1]))
    cv2.imwrite(str(src / "GrabCut" / "data_GT" / "renamed.jpg"), np.rot90(photo))
    cv2.imwrite(str(src / "GrabCut" / "boundary_GT" / "renamed.bmp"), np.rot90(centre_mask(photo.shape)))
    photo = cv2.imread(str(bsds[0]))
    cv2.imwrite(str(src / "Berkeley" / "images" / "other.png"), photo)
    cv2.imwrite(str(src / "Berkeley" / "masks" / "other.png"), centre_mask(photo.shape))
    config = tmp_path / "data.yaml"
    config.write_text(yaml.safe_dump({name: str(src / name) for name in ("COCO_MVal", "BSDS500", "GrabCut",
                                                                         "Berkeley")}))
    return config


def overrides(data_config: Path) -> dict:
    """coarse_cpu's data on the small copies: one validation image, BSDS500 `test` only."""
    return {"data_config": str(data_config), "val_size": 1, "data_options": {"BSDS500": {"split": "test"}}}


def packed_sets(out: Path) -> dict:
    """The packed training sets as training reads them (the GPU configs' formats)."""
    return {"COCO_MVal": load_dataset("folder", out / "COCO_MVal"),
            "BSDS500": load_dataset("BSDS500", out / "BSDS500", split="train+val+test")}


def test_pack_leaves_out_evaluation_photos_and_validation_images(tmp_path, sources, monkeypatch):
    out = tmp_path / "datasets" / "packed"
    manifest = pack("coarse_cpu", out, overrides=overrides(sources), weights=False)
    assert manifest["images"] == {"COCO_MVal": COCO_IMAGES - 2, "BSDS500": BSDS_IMAGES - 1}
    assert manifest["formats"] == {"COCO_MVal": "folder", "BSDS500": "BSDS500"}
    assert manifest["image_quality"] == QUALITIES[0] and folder_size(out) <= BUDGET_MIB * MIB
    assert json.loads((out / "manifest.json").read_text())["images"] == manifest["images"]
    evaluation = [dataset_fingerprints(load_dataset(name, config=sources)) for name in ("GrabCut", "Berkeley")]
    packed = {**packed_sets(out), "val": load_dataset("folder", out / "val")}
    for name, dataset in packed.items():
        assert not any(shared_photos(dataset_fingerprints(dataset), other) for other in evaluation), name
    (val_id,) = manifest["val"]["images"]
    assert val_id.split("/")[1] not in packed["COCO_MVal"].image_keys
    assert len(manifest["excluded_photos"]["COCO_MVal"]) == 2
    original = load_dataset("COCO_MVal", config=sources)
    assert packed["val"][0].image.shape == original[original.image_keys.index(val_id.split("/")[1])].image.shape
    monkeypatch.chdir(tmp_path)  # the GPU configs read datasets/packed/: every packed training image, the val images
    train_set, _, val_samples = build_data(load_config("coarse_gpu"))
    assert [len(d) for d in train_set.datasets] == list(manifest["images"].values()) and len(val_samples) == 1


def test_pack_keeps_photo_resolution_and_every_bsds500_annotator(tmp_path, sources):
    """The fine stage cuts its crops from the photos' own pixels, and BSDS500 samples draw any annotator."""
    out = tmp_path / "packed"
    pack("coarse_cpu", out, overrides=overrides(sources), weights=False)
    packed = packed_sets(out)
    coco, bsds = load_dataset("COCO_MVal", config=sources), load_dataset("BSDS500", config=sources, split="test")
    for i, key in enumerate(packed["COCO_MVal"].image_keys):
        source = coco[coco.image_keys.index(key)]
        sample = packed["COCO_MVal"][i]
        assert sample.image.shape == source.image.shape and (sample.mask == source.mask).all()
    assert packed["BSDS500"].image_keys
    for i, key in enumerate(packed["BSDS500"].image_keys):
        j = bsds.image_keys.index(key)
        assert packed["BSDS500"].split_of(i) == bsds.split_of(j) == "test"
        kept, source = packed["BSDS500"].segmentations(i), bsds.segmentations(j)
        assert len(source) > 1 and len(kept) == len(source)
        assert all(a.shape == b.shape and (a == b).all() for a, b in zip(kept, source))
        photo = cv2.imread(str(packed["BSDS500"].image_path(i)))
        assert photo.shape[:2] == source[0].shape
        assert np.abs(photo.astype(int) - cv2.imread(str(bsds.image_path(j))).astype(int)).mean() < 8
    small = pack("coarse_cpu", tmp_path / "small", overrides=overrides(sources), weights=False, long_side=200)
    assert small["long_side"] == 200
    for i in range(len(packed["BSDS500"].image_keys)):
        maps = load_dataset("BSDS500", tmp_path / "small" / "BSDS500", split="test").segmentations(i)
        assert max(maps[0].shape) == 200 and len(maps) == len(packed["BSDS500"].segmentations(i))


def test_pack_fits_the_budget_or_fails_without_writing(tmp_path, sources):
    first = pack("coarse_cpu", tmp_path / "a", overrides=overrides(sources), weights=False)
    budget = 0.75 * first["mib"]
    second = pack("coarse_cpu", tmp_path / "b", overrides=overrides(sources), weights=False, budget_mib=budget)
    assert second["image_quality"] < first["image_quality"] and folder_size(tmp_path / "b") <= budget * MIB
    with pytest.raises(ValueError, match="over the budget of 0.0 MiB"):
        pack("coarse_cpu", tmp_path / "c", overrides=overrides(sources), weights=False, budget_mib=0.01)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "data.yaml", "src"]
    with pytest.raises(FileExistsError, match="--overwrite"):
        pack("coarse_cpu", tmp_path / "a", overrides=overrides(sources), weights=False)


@pytest.mark.parametrize("stage", ["coarse_gpu", "fine_gpu"])
def test_gpu_configs_read_what_the_packer_writes(stage):
    cfg, source = load_config(stage), load_config("coarse_cpu")
    folders = [parse_dataset_spec(spec)[1] for spec in cfg.data]
    assert folders == [Path("datasets/packed") / name for name in source.data]
    assert [parse_dataset_spec(spec)[0] for spec in cfg.data] == ["folder", "BSDS500"]  # the pack's formats
    assert cfg.data_options == source.data_options and cfg.min_object_area == source.min_object_area
    assert list(cfg.data.values()) == list(source.data.values())
    assert parse_dataset_spec(cfg.val)[1] == Path("datasets/packed/val") and cfg.val_size == source.val_size
    assert cfg.amp and cfg.device == "cuda" and cfg.batch_size >= 32 and cfg.exclude == ()


def test_make_gpu_first_and_gpu_train_in_tiny_form_on_cpu(tmp_path, sources):
    """The Makefile's first GPU command (environment, host costs, smokes) and the pipeline it goes on with (pack,
    coarse, fine, evaluation), with tiny settings in a fresh folder, all in one run folder."""
    pack_args = (f"--limit 2 --no-weights --set data_config={sources} --set val_size=1 "
                 "--set 'data_options={BSDS500: {split: test}}'")
    train_args = ("--device cpu --epochs 1 --samples-per-epoch 2 --batch-size 2 --num-workers 0 --threads 1 "
                  "--set model=ifpn_tiny --set amp=false --set val_size=1 --set val_clicks=1 --set coarse_size=96 "
                  "--set fine_size=96 --set 'augment={crop_size: [64, 96], long_side: null}' --set budget_minutes=null")
    check_args = ("--smoke-samples 2 --host-samples 2 "
                  "--host-args '--workers 1 --batches 1 --set batch_size=2 --set val_size=1'")
    work = tmp_path / "work"
    work.mkdir()
    command = ["make", "-s", "-f", str(REPO / "Makefile"), "-C", str(work), "gpu-first", f"GPU_PY={sys.executable}",
               "GPU_DEVICE=cpu", f"PACK_ARGS={pack_args}", f"TRAIN_ARGS={train_args}", f"CHECK_ARGS={check_args}",
               f"EVAL_DATASETS=GrabCut={tmp_path / 'src' / 'GrabCut'}", "EVAL_ARGS=--max-clicks 2 --threads 1",
               "COARSE_LIMIT=900", "FINE_LIMIT=900", "EVAL_LIMIT=900"]  # the GPU limits are not for a busy CPU
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (work / "datasets" / "packed" / "manifest.json").is_file()
    first = work / "runs" / "gpu_first"
    environment = json.loads((first / "environment.json").read_text())
    assert environment["device"] == "cpu" and environment["packed"]["formats"]["BSDS500"] == "BSDS500"
    assert list(pd.read_csv(first / "host_costs.csv")["config"]) == ["coarse_gpu", "fine_gpu"]
    smoke = pd.read_csv(first / "smoke.csv")
    assert list(smoke["stage"]) == ["coarse", "fine"] and smoke["precision"].str.startswith("fp32").all()
    for stage in ("coarse", "fine"):
        assert (first / f"gpu_{stage}" / "checkpoints" / "best.pt").is_file()
        assert yaml.safe_load((first / f"gpu_{stage}" / "config.yaml").read_text())["device"] == "cpu"
    assert "NoC@90" in (first / "gpu_eval" / "results.csv").read_text()
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "exists and is not empty" in again.stdout + again.stderr
    train = [c.replace("gpu-first", "gpu-train") for c in command] + [f"GPU_RUN={first}/gpu"]
    refused = subprocess.run(train, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "exists: move it away" in refused.stdout + refused.stderr


@pytest.mark.parametrize("args, message", [(["--long-side", "0"], "--long-side must be an integer from 1 to 4096"),
                                           (["--limit", "-2"], "--limit must be a positive number (1 or more)"),
                                           (["--budget-mib", "0"], "budget_mib must be a positive number")])
def test_unusable_pack_arguments_are_one_line_errors(tmp_path, capsys, args, message):
    from iseg.training.pack import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "packed"), *args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "packed").exists()


def test_host_costs_of_the_gpu_configs_on_a_tiny_pack(tmp_path, sources, monkeypatch):
    """`python -m iseg.training.hostcost` reads the packed data as the GPU configs do and writes its table."""
    from iseg.training.hostcost import main

    pack("coarse_cpu", tmp_path / "datasets" / "packed", overrides=overrides(sources), weights=False)
    monkeypatch.chdir(tmp_path)
    assert main(["--out", "runs/host", "--samples", "3", "--workers", "1", "--batches", "1",
                 "--set", "batch_size=2", "--set", "val_size=1"]) == 0
    table = pd.read_csv(tmp_path / "runs" / "host" / "host_costs.csv")
    assert list(table["config"]) == ["coarse_gpu", "fine_gpu"] and (table["batch_size"] == 2).all()
    phases = table[["load_ms", "augment_ms", "sample_ms", "collate_ms", "clicks_host_ms"]]
    assert (phases >= 0).all().all() and (table["load_ms"] > 0).all() and (table["loader_samples_per_s"] > 0).all()
    assert np.allclose(table["per_sample_ms"], table[[f"{p}_ms" for p in ("load", "augment", "sample", "tensors")]]
                       .sum(axis=1), atol=0.05)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_gpu_first_stops_with_one_line_without_cuda_or_packed_data(tmp_path, capsys, monkeypatch):
    from iseg.training.gpucheck import main

    monkeypatch.chdir(tmp_path)
    for device, message in (("cuda", "finds no usable CUDA device"), ("cpu", "datasets/packed/manifest.json not found")):
        with pytest.raises(SystemExit) as exit_info:
            main(["--out", f"runs/{device}", "--device", device])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err and "Traceback" not in err
        assert not (tmp_path / "runs" / device / "environment.json").exists()
