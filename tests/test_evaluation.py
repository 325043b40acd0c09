"""The evaluation loop and results table on a tiny synthetic dataset with scripted predictors."""

import numpy as np
import pandas as pd
import pytest

from iseg.clicks import Click
from iseg.data.sample import Sample
from iseg.evaluation import TABLE_COLUMNS, evaluate, published_results, results_table
from iseg.grabcut import GrabCutPredictor


class TinyDataset:
    """Three 40x50 images: a bright square object on a dark textured background, a 1-px ignore band."""

    name = "Tiny"

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.samples = []
        for i, (r, c, s) in enumerate([(8, 10, 16), (15, 20, 20), (5, 5, 12)]):
            image = rng.integers(0, 60, (40, 50, 3), dtype=np.uint8)
            image[r:r + s, c:c + s] = rng.integers(190, 255, (s, s, 3), dtype=np.uint8)
            mask = np.zeros((40, 50), np.int8)
            mask[r - 1:r + s + 1, c - 1:c + s + 1] = -1
            mask[r:r + s, c:c + s] = 1
            self.samples.append(Sample(image, mask, f"Tiny/{i}"))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]


class OraclePredictor:
    """Returns the ground truth of the current image (object = 1)."""

    def __init__(self, dataset: TinyDataset) -> None:
        self.masks = {s.image.tobytes(): s.mask == 1 for s in dataset.samples}

    def set_image(self, image):
        self.mask = self.masks[image.tobytes()]

    def predict(self, clicks, prev_prob):
        return self.mask.astype(np.float32)


class DiskPredictor:
    """Foreground = disks of radius 4 at positive clicks minus disks at negative clicks; records its inputs."""

    def set_image(self, image):
        self.shape = image.shape[:2]
        self.calls = []

    def predict(self, clicks, prev_prob):
        self.calls.append((list(clicks), None if prev_prob is None else prev_prob.copy()))
        rows, cols = np.mgrid[:self.shape[0], :self.shape[1]]
        prob = np.zeros(self.shape, np.float32)
        for c in clicks:
            prob[(rows - c.row) ** 2 + (cols - c.col) ** 2 <= 16] = float(c.is_positive)
        self.last = prob
        return prob


class EmptyPredictor:
    def set_image(self, image):
        self.shape = image.shape[:2]

    def predict(self, clicks, prev_prob):
        return np.zeros(self.shape, np.float32)


def test_oracle_reaches_every_threshold_at_first_click():
    data = TinyDataset()
    result = evaluate(OraclePredictor(data), data, progress=False)
    table = result.table()
    assert list(table.columns) == TABLE_COLUMNS
    row = table.iloc[0]
    assert row["dataset"] == "Tiny" and row["samples"] == 3
    assert row[["NoC@80", "NoC@85", "NoC@90"]].tolist() == [1.0, 1.0, 1.0]
    assert row[["NoF@85", "NoF@90"]].tolist() == [0, 0]
    assert row[["mIoU@1", "mIoU@5", "mIoU@10"]].tolist() == [1.0, 1.0, 1.0]
    assert row["SPC"] > 0
    assert result.sample_ids == ["Tiny/0", "Tiny/1", "Tiny/2"]
    assert [len(s) for s in result.ious] == [1, 1, 1]


def test_min_clicks_delays_the_stop():
    data = TinyDataset()
    result = evaluate(OraclePredictor(data), data, min_clicks=3, progress=False)
    assert [len(s) for s in result.ious] == [3, 3, 3]
    assert result.table().iloc[0]["NoC@90"] == 1.0


def test_never_reaching_target_runs_max_clicks_and_counts_failures():
    data = TinyDataset()
    result = evaluate(EmptyPredictor(), data, max_clicks=5, progress=False)
    row = result.table().iloc[0]
    assert [len(s) for s in result.ious] == [5, 5, 5]
    assert row["NoC@90"] == 5.0 and row["NoF@90"] == 3 and row["NoF@85"] == 3
    assert np.isnan(row["mIoU@10"])  # beyond max_clicks
    assert result.n_clicks == 15 and len(result.per_click()) == 15


def test_loop_feeds_last_probability_and_all_clicks():
    data = TinyDataset()
    predictor = DiskPredictor()
    result = evaluate(predictor, data, max_clicks=6, stop_early=False, progress=False, limit=1)
    assert len(result.ious) == 1 and len(result.ious[0]) == 6
    first_clicks, first_prev = predictor.calls[0]
    assert first_clicks == [Click(15, 17, True)]  # centre of the 16x16 square at (8, 10), first in row-major order
    assert first_prev.shape == (40, 50) and not first_prev.any()
    for k in range(1, 6):
        clicks, prev = predictor.calls[k]
        assert len(clicks) == k + 1 and clicks[:k] == predictor.calls[k - 1][0]
    np.testing.assert_array_equal(predictor.calls[-1][1], DiskPredictor.predict(predictor, clicks[:-1], None))


def test_stop_early_and_full_curve_agree_on_noc():
    data = TinyDataset()
    early = evaluate(DiskPredictor(), data, target_iou=0.85, progress=False)
    full = evaluate(DiskPredictor(), data, target_iou=0.85, stop_early=False, progress=False)
    t_early, t_full = early.table().iloc[0], full.table().iloc[0]
    assert t_early["NoC@85"] == t_full["NoC@85"] and t_early["NoC@80"] == t_full["NoC@80"]
    assert np.isnan(t_early["NoC@90"]) and np.isnan(t_early["NoF@90"])  # not measurable above the target
    assert not np.isnan(t_full["NoC@90"])
    assert all(len(s) == 20 for s in full.ious)
    for a, b in zip(early.ious, full.ious):
        np.testing.assert_array_equal(a, b[:len(a)])


def test_results_table_has_one_row_per_dataset_and_per_click_frame():
    data = TinyDataset()
    results = [evaluate(OraclePredictor(data), data, progress=False, limit=n) for n in (1, 2)]
    table = results_table(results)
    assert table["samples"].tolist() == [1, 2]
    frame = results[1].per_click()
    assert list(frame.columns) == ["dataset", "sample", "click", "iou", "seconds"]
    assert frame["sample"].tolist() == ["Tiny/0", "Tiny/1"] and frame["iou"].tolist() == [1.0, 1.0]


def test_grabcut_segments_the_bright_squares():
    data = TinyDataset()
    # 3 px click disks: the default 8 px disks are sized for 400 px photos, these squares are 12-20 px
    result = evaluate(GrabCutPredictor(radius=3), data, max_clicks=5, progress=False)
    assert result.table().iloc[0]["NoC@90"] <= 2.0


def test_predictor_with_wrong_output_shape_is_reported():
    class Wrong(EmptyPredictor):
        def predict(self, clicks, prev_prob):
            return np.zeros((3, 3), np.float32)

    with pytest.raises(ValueError, match=r"\(3, 3\).*\(40, 50\)"):
        evaluate(Wrong(), TinyDataset(), progress=False)


def test_published_results_hold_the_reference_numbers():
    table = published_results()
    assert list(table.columns) == ["method", "backbone", "train_data", "dataset", "metric", "value", "source"]
    assert pd.api.types.is_float_dtype(table["value"])

    def value(method, backbone, train, dataset, metric):
        rows = table.query("method == @method and backbone == @backbone and train_data == @train "
                           "and dataset == @dataset and metric == @metric")
        assert len(rows) == 1
        return rows["value"].iloc[0]

    assert value("IFPN", "HRNet-18", "COCO+LVIS", "GrabCut", "NoC@90") == 1.68
    assert value("IFPN", "HRNet-18", "SBD", "SBD", "NoC@90") == 5.25
    assert value("RITM", "HRNet-18", "COCO+LVIS", "DAVIS", "NoC@85") == 4.36
    assert value("SAM", "ViT-H", "SA-1B", "SBD", "NoC@90") == 7.62
    assert set(table["metric"]) == {"NoC@85", "NoC@90", "SPC"}


def test_load_predictor_passes_the_zoom_in_size_to_network_predictors(tmp_path):
    from iseg.models import build_model
    from iseg.models.checkpoint import model_payload, save_checkpoint
    from iseg.predictor import load_predictor

    path = save_checkpoint(tmp_path / "tiny.pt", model_payload(build_model("ifpn_tiny")))
    assert load_predictor(str(path), target_size=600).zoom_in.target_size == 600
    assert load_predictor(None, coarse=path, fine=path).target_size == 400
    assert load_predictor("grabcut", target_size=600) is not None



def test_protocol_sizes_evaluate_davis_at_600_in_a_folder_of_its_own(tmp_path):
    import json

    from iseg.evaluate import compare, method_spec
    from iseg.models import build_model
    from iseg.models.checkpoint import model_payload, save_checkpoint

    class Davis(TinyDataset):
        name = "DAVIS"

    path = str(save_checkpoint(tmp_path / "tiny.pt", model_payload(build_model("ifpn_tiny"))))
    methods = {"net": {"spec": path}, "sized": {"spec": path, "target_size": 48}, "GrabCut": {"spec": "grabcut"}}
    table, _ = compare(methods, [TinyDataset(), Davis()], tmp_path / "evaluate", max_clicks=1, progress=False,
                       protocol_sizes=True, flip=False)
    assert sorted(p.name for p in (tmp_path / "evaluate").iterdir()) == ["GrabCut", "net", "net_target600", "sized"]
    settings = json.loads((tmp_path / "evaluate" / "net_target600" / "config.json").read_text())["replay"]["settings"]
    assert settings["target_size"] == 600
    davis_only = json.loads((tmp_path / "evaluate" / "net_target600" / "config.json").read_text())["replay"]
    assert [d["name"] for d in davis_only["datasets"]] == ["DAVIS"]
    assert table.groupby("method")["dataset"].apply(list).to_dict() == {
        "GrabCut": ["Tiny", "DAVIS"], "net": ["Tiny", "DAVIS"], "sized": ["Tiny", "DAVIS"]}
    assert method_spec({"spec": path}, "DAVIS", False) == {"spec": path}
    assert method_spec({"spec": "grabcut"}, "DAVIS", True) == {"spec": "grabcut"}


def test_load_present_skips_absent_folders_with_a_note(tmp_path, shared_datasets):
    from iseg.data import load_present

    config = {"GrabCut": shared_datasets / "GrabCut", "DAVIS": tmp_path / "DAVIS"}
    present, notes = load_present(["GrabCut", "DAVIS", f"Berkeley={tmp_path / 'nowhere'}"], config)
    assert [d.name for d in present] == ["GrabCut"]
    assert notes == [f"DAVIS: no folder at {tmp_path / 'DAVIS'}, skipped",
                     f"Berkeley: no folder at {tmp_path / 'nowhere'}, skipped"]
