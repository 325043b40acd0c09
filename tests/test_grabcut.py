"""The click-driven GrabCut baseline."""

import numpy as np
import pandas as pd
import pytest

from iseg.clicks import Click
from iseg.data.sample import Sample
from iseg.grabcut import GrabCutPredictor
from iseg.grabcut_tune import GRID, read_grid, tune
from iseg.metrics import iou
from iseg.predictor import Predictor
from iseg.training.data import SampleList


def scene(h: int = 60, w: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 noisy image with a red disk object and its (H, W) int8 mask."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
    rows, cols = np.mgrid[:h, :w]
    obj = (rows - h // 2) ** 2 + (cols - w // 2) ** 2 <= (min(h, w) // 4) ** 2
    image[obj] = [220, 40, 40] + rng.integers(0, 30, (int(obj.sum()), 3))
    return image, obj.astype(np.int8)


def test_follows_protocol_and_segments_from_one_click():
    image, mask = scene()
    predictor = GrabCutPredictor()
    assert isinstance(predictor, Predictor)
    predictor.set_image(image)
    prob = predictor.predict([Click(30, 40, True)], np.zeros(mask.shape, np.float32))
    assert prob.shape == mask.shape and prob.dtype == np.float32
    assert prob.min() >= 0 and prob.max() <= 1
    assert iou(mask, prob > 0.49) > 0.9


def test_is_deterministic():
    image, _ = scene(seed=3)
    clicks = [Click(30, 40, True), Click(5, 5, False)]
    outputs = []
    for _ in range(2):
        predictor = GrabCutPredictor()
        predictor.set_image(image)
        outputs.append(predictor.predict(clicks, None))
    np.testing.assert_array_equal(*outputs)


def test_no_positive_click_gives_empty_mask():
    image, _ = scene()
    predictor = GrabCutPredictor()
    predictor.set_image(image)
    assert not predictor.predict([Click(2, 2, False)], None).any()


def test_negative_click_removes_and_previous_mask_is_kept():
    image, mask = scene()
    predictor = GrabCutPredictor()
    predictor.set_image(image)
    prev = np.zeros(mask.shape, np.float32)
    prev[10:50, 20:60] = 1  # a previous answer far too large
    prob = predictor.predict([Click(30, 40, True), Click(12, 22, False)], prev)
    assert prob[12, 22] == 0 and prob[30, 40] == 1
    assert iou(mask, prob > 0.49) > 0.8


def test_large_image_is_processed_at_work_size_and_upsampled():
    image, mask = scene(900, 1200, seed=1)
    predictor = GrabCutPredictor(work_size=200)
    predictor.set_image(image)
    assert predictor._image.shape == (150, 200, 3)
    prob = predictor.predict([Click(450, 600, True)], None)
    assert prob.shape == (900, 1200)
    assert iou(mask, prob > 0.49) > 0.9


def test_input_errors():
    predictor = GrabCutPredictor()
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.predict([Click(0, 0, True)], None)
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8.*float"):
        predictor.set_image(np.zeros((4, 4, 3), np.float32))


def test_full_resolution_works_on_the_image_as_stored():
    image, mask = scene(90, 120, seed=2)
    predictor = GrabCutPredictor(work_size=None)
    predictor.set_image(image)
    assert predictor._image.shape == image.shape
    assert iou(mask, predictor.predict([Click(45, 60, True)], None) > 0.49) > 0.9
    with pytest.raises(ValueError, match="work_size"):
        GrabCutPredictor(work_size=0)


def test_tuner_ranks_candidates_by_noc90_then_noc85(tmp_path):
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text("candidates:\n  - {work_size: full, init_box: 0.1, radius: 3, iterations: 1}\n"
                         "  - {work_size: 40, init_box: 0.3, radius: 1, iterations: 1}\n")
    grid = read_grid(grid_file)
    assert grid[0]["work_size"] is None and grid[1]["work_size"] == 40
    samples = SampleList("val_tiny", [Sample(*scene(seed=s), id=f"tiny/{s}") for s in range(2)])
    table = tune(grid, samples, tmp_path, max_clicks=3)
    written = pd.read_csv(tmp_path / "tuning.csv")
    assert list(written["work_size"].astype(str)) == list(table["work_size"].astype(str))
    assert set(written["work_size"].astype(str)) == {"full", "40"}
    keys = list(zip(written["NoC@90"], written["NoC@85"]))
    assert keys == sorted(keys) and {"radius", "init_box", "iterations", "SPC", "mIoU@1"} <= set(written.columns)


def test_tuner_refuses_unknown_settings(tmp_path):
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text("candidates:\n  - {work_size: 400, box: 0.1}\n")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['box'\]"):
        read_grid(grid_file)


def test_packaged_grid_holds_the_defaults_and_full_resolution():
    grid = read_grid(GRID)
    defaults = {k: getattr(GrabCutPredictor(), k) for k in ("work_size", "init_box", "radius", "iterations")}
    assert defaults in grid and any(c["work_size"] is None for c in grid)


@pytest.mark.parametrize("text, message", [("candidates: [{work_size: 400,", "while parsing"),
                                           ("candidates:\n  - {radius: 0}\n", "candidate 1: radius must be"),
                                           ("candidates:\n  - {init_box: -1}\n", "candidate 1: init_box must be"),
                                           ("candidates:\n  - {iterations: x}\n", "candidate 1: iterations must")])
def test_tuner_grid_errors_are_one_line(tmp_path, capsys, text, message):
    from iseg.grabcut_tune import main

    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(text)
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "out"), "--grid", str(grid_file)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
