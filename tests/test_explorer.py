"""The explorer widget driven without a browser on two small real runs (and an older run without clicks)."""

import shutil

import cv2
import numpy as np
import pytest

from iseg.clicks import Click
from iseg.demo.frame import FrameRenderer
from iseg.explorer import (Explorer, iou_curve_png, make_explorer, overview_table, panel_size, replay_frame,
                           run_labels)
from iseg.inference.transforms import Roi
from iseg.replay import ReplayStep
from iseg.runs import load_runs


def decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def captions(explorer: Explorer) -> list[str]:
    return [panel.children[1].value for panel in explorer.replay.panels.children]


def test_two_runs_side_by_side_replayed_click_by_click(small_runs):
    explorer = make_explorer([small_runs])
    assert explorer.chosen == ["grabcut", "ifpn"] and explorer.labels == {"grabcut": "A", "ifpn": "B"}
    assert "A: grabcut" in explorer.overview.value and "B: ifpn" in explorer.overview.value
    assert decode(explorer.curves.value) is not None
    assert "Δ@90 B" in explorer.table.value and explorer.sort_by.value == "Δ@90 B"
    assert len(explorer.replay.sample_picker.options) == 2 and len(explorer.replay.panels.children) == 2
    assert all("click 1/" in c and "= recorded" in c for c in captions(explorer))
    first = [decode(p.children[0].value) for p in explorer.replay.panels.children]

    explorer.replay.slider.value = 2
    assert all("click 2/" in c or "stopped after click 1" in c for c in captions(explorer))
    assert all("= recorded" in c and "differs" not in c for c in captions(explorer))
    ifpn = captions(explorer)[1]
    assert "orange: coarse (intention) mask, yellow: zoom-in box" in ifpn or "stopped" in ifpn
    assert "not an IFPN cascade" in captions(explorer)[0]
    after = decode(explorer.replay.panels.children[0].children[0].value)
    assert after.shape == first[0].shape and not np.array_equal(after, first[0])  # the second click is drawn
    assert decode(explorer.replay.iou_curve.value) is not None and "click 2 of 3" in explorer.replay.status.value

    explorer.replay.intention.value = False
    assert "intention" not in captions(explorer)[1]
    shown = decode(explorer.replay.panels.children[1].children[0].value)
    explorer.replay.show_mask.value = False                                  # the layers: mask off, then gt off
    no_mask = decode(explorer.replay.panels.children[1].children[0].value)
    explorer.replay.show_gt.value = False
    bare = decode(explorer.replay.panels.children[1].children[0].value)
    assert np.abs(no_mask.astype(int) - shown).max() > 40 and np.abs(bare.astype(int) - no_mask).max() > 40


def test_three_runs_fit_one_row_and_the_reference_run_sets_the_differences(small_runs, tmp_path):
    for name in ("ifpn", "grabcut", "again"):
        shutil.copytree(small_runs / ("grabcut" if name == "again" else name), tmp_path / name)
    explorer = make_explorer([tmp_path], chosen=["again", "grabcut", "ifpn"])
    assert explorer.reference.options == ("A", "B", "C") and explorer.reference.value == "A"
    assert {"Δ@90 B", "Δ@90 C"} <= set(explorer.samples.columns) and "Δ@90 A" not in explorer.samples
    assert (explorer.samples["Δ@90 B"] == 0).all()                           # the same run twice: no difference
    widths = [int(panel.layout.width[:-2]) for panel in explorer.replay.panels.children]
    assert len(widths) == 3 and sum(widths) + 2 * 12 <= 880 and widths[0] == panel_size(3)[0]
    explorer.reference.value = "C"
    assert {"Δ@90 A", "Δ@90 B"} <= set(explorer.samples.columns) and explorer.sort_by.value == "Δ@90 A"
    assert (explorer.samples["Δ@90 A"] == explorer.samples["NoC@90 A"] - explorer.samples["NoC@90 C"]).all()
    explorer.run_picker.value = ("grabcut", "ifpn")                          # C gone: the reference falls back to A
    assert explorer.reference.value == "A" and list(explorer.reference.options) == ["A", "B"]


def test_sorting_orders_the_sample_picker_and_keeps_the_sample(small_runs):
    explorer = make_explorer([small_runs])
    explorer.sort_by.value = "sample"
    explorer.descending.value = False
    samples = [value[1] for _, value in explorer.replay.sample_picker.options]
    assert samples == sorted(samples)
    current = explorer.replay.sample_picker.value
    explorer.descending.value = True
    assert [v[1] for _, v in explorer.replay.sample_picker.options] == samples[::-1]
    assert explorer.replay.sample_picker.value == current
    explorer.replay.sample_picker.value = explorer.replay.sample_picker.options[-1][1]
    assert explorer.replay.slider.value == 1 and "click 1/" in captions(explorer)[0]


def test_one_run_and_an_older_run_without_clicks(small_runs, tmp_path):
    shutil.copytree(small_runs / "grabcut", tmp_path / "old")
    (tmp_path / "old" / "clicks.csv").unlink()
    shutil.copytree(small_runs / "grabcut", tmp_path / "new")
    explorer = make_explorer([tmp_path])
    assert explorer.chosen == ["new", "old"]
    assert "no clicks.csv" in explorer.legend.value
    new, old = captions(explorer)
    assert "= recorded" in new and "no clicks.csv" in old
    assert explorer.replay.panels.children[1].children[0].layout.display == "none"
    explorer.run_picker.value = ("new",)
    assert len(explorer.replay.panels.children) == 1 and "Δ@90" not in explorer.table.value


def test_no_runs_says_how_to_make_some_and_unknown_names_are_errors(tmp_path, small_runs):
    explorer = make_explorer([tmp_path])
    assert "No evaluation runs found" in explorer.replay.status.value and "make smoke" in explorer.replay.status.value
    with pytest.raises(ValueError, match="no run typo in .*; found: grabcut, ifpn"):
        make_explorer([small_runs], chosen=["typo"])
    with pytest.raises(ValueError, match="no dataset Berkeley"):
        make_explorer([small_runs], datasets=["Berkeley"])


def test_pieces(small_runs):
    runs = load_runs([small_runs])
    assert run_labels(["x", "y", "z"]) == ["A", "B", "C"]
    table = overview_table(runs, ["ifpn", "grabcut"], ["GrabCut"])
    assert table["run"].tolist() == ["ifpn", "grabcut"] and "NoC@90" in table
    assert decode(iou_curve_png({"A": ([0.2, 0.5], [0.2])}, 1, 3)).shape[2] == 3


def test_replay_frame_draws_ground_truth_mask_clicks_and_intention():
    image = np.full((60, 80, 3), 100, np.uint8)
    gt = np.zeros((60, 80), np.int8)
    gt[20:40, 30:50] = 1
    prob = np.zeros((60, 80), np.float32)
    step = ReplayStep(1, [Click(30, 40, True)], prob, 0.0, 0.0, gt.astype(np.float32), Roi(10, 20, 50, 60))
    renderer = FrameRenderer(image, 1.0)
    plain = replay_frame(step, renderer, gt, intention=False)
    assert (plain[20, 35] > 200).all() and (plain[5, 5] == 100).all()  # white ground-truth outline, image elsewhere
    assert plain[30, 40, 1] > 150 and plain[30, 40, 0] < 100  # the positive click (green)
    shown = replay_frame(step, renderer, gt, intention=True)
    assert shown[5, 5].max() < 100 and (shown[45, 25] == 100).all()  # dimmed outside the zoom-in box only
