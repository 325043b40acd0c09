"""Notebook 06 executes with papermill on a folder of photos and starts (or resumes) the annotation folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from iseg.annotate import AnnotationSession
from iseg.predictor import load_predictor

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(600)
def test_annotation_notebook_runs_and_resumes(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    image = np.full((96, 128, 3), 40, np.uint8)
    image[20:70, 30:100] = (230, 200, 60)
    cv2.imwrite(str(photos / "one.jpg"), image)
    out = tmp_path / "annotated"
    session = AnnotationSession(photos, out, load_predictor("grabcut"))
    session.click(45, 65, True)                                        # a session that stopped mid-object
    del session
    command = [sys.executable, "-m", "papermill", "--cwd", str(ROOT / "notebooks"), "-k", "python3",
               str(ROOT / "notebooks/06_annotate.ipynb"), str(tmp_path / "06_annotate.ipynb"),
               "-p", "photos", str(photos), "-p", "out", str(out), "-p", "predictor", "grabcut"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    executed = (tmp_path / "06_annotate.ipynb").read_text()
    assert "'objects': 1" in executed and "photo 1/1: one" in executed                          # resumed
    assert 'iseg-keep\\">object 1</span> | <span class=\\"iseg-keep\\">1 click' in executed
    resumed = json.loads((out / "annotation.json").read_text())
    assert resumed["object"] == 1 and len(resumed["images"]["one"]["objects"][0]["clicks"]) == 1
    assert (out / "masks/one_1.png").exists() and (out / "annotations/instances_images.json").exists()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_annotation_notebook_fine_tunes_on_simulated_frames_and_measures_on_test_sequences(tmp_path,
                                                                                          shared_datasets):
    finetune_out = tmp_path / "finetune"
    command = [sys.executable, "-m", "papermill", "--cwd", str(ROOT / "notebooks"), "-k", "python3",
               str(ROOT / "notebooks/06_annotate.ipynb"), str(tmp_path / "06_annotate.ipynb"),
               "-p", "out", str(tmp_path / "annotated"), "-p", "demo_photos", "2", "-p", "run_finetune", "True",
               "-p", "simulate_photos", "3", "-p", "finetune_out", str(finetune_out), "-p", "finetune_epochs", "1",
               "-p", "finetune_samples_per_epoch", "8", "-p", "eval_limit", "2", "-p", "study_runs", "[]"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "cvc_frames").iterdir()) == ["001.jpg", "026.jpg"]
    simulated = json.loads((tmp_path / "finetune_annotation/simulation.json").read_text())
    assert simulated["photos"] == 3 and simulated["category"] == "polyp"
    summary = json.loads((finetune_out / "finetune.json").read_text())
    assert summary["photos"] == {"train": 3, "holdout": 0} and summary["evaluated_on"] == {"CVC_ClinicDB_test": 196}
    assert (finetune_out / "model/manifest.json").is_file()
