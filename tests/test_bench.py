"""The benchmark CLI end to end in a tiny mode (ifpn_tiny, small sizes, one repeat): files, columns, positive values."""

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import torch

from iseg import bench

TINY = ["--configs", "ifpn_tiny", "--threads", "1", "--repeats", "1", "--clicks", "2", "--size", "64",
        "--image", "60x80", "--target-size", "48", "--train-crop", "32x48", "--no-progress",
        "--training", "smoke,smoke_fine", "--training-steps", "1"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    table = bench.main([*TINY, "--out", str(out)])
    torch.set_num_threads(1)
    return out, table


def test_bench_writes_one_table_with_every_column(tiny_run):
    out, table = tiny_run
    assert sorted(p.name for p in out.iterdir()) == ["bench.csv", "bench.md", "machine.json", "training.csv",
                                                     "training.md"]
    saved = pd.read_csv(out / "bench.csv")
    assert list(saved.columns) == list(bench.LABELS)
    assert list(saved["config"])[:3] == ["ceiling: conv3x3 256->256 100x100 NCHW",
                                         "ceiling: conv3x3 256->256 100x100 NHWC", "ifpn_tiny"]
    from iseg.weights import model_predictor

    shipped = model_predictor()
    default = saved.iloc[3]
    assert default["config"] == f"default (shipped; coarse {shipped.coarse_size}, crop {shipped.target_size})"
    assert default["cascade_flip_click_s"] > 0 and default["cascade_click_s"] > 0
    refined = saved.iloc[4]
    assert refined["config"] == (f"default + f-BRS-B (shipped; coarse {shipped.coarse_size}, "
                                 f"crop {shipped.target_size})")
    assert refined["cascade_flip_click_s"] > 0 and np.isnan(refined["cascade_flip_model_s"])
    row = saved.iloc[2]
    assert (row.drop("config").astype(float) > 0).all()
    assert row["params_M"] == pytest.approx(sum(p.numel() for p in bench.build_model("ifpn_tiny").parameters()) / 1e6)
    assert saved["pct_of_ceiling"].iloc[:2].max() == pytest.approx(100)
    ceiling = saved.iloc[1]
    assert ceiling["forward_GFLOPs"] == pytest.approx(2 * 256 * 256 * 9 * 100 * 100 / 1e9, rel=1e-3)
    assert np.isnan(ceiling["cascade_click_s"])
    markdown = (out / "bench.md").read_text()
    assert "| config | params (M) | GFLOPs |" in markdown and "| ifpn_tiny |" in markdown
    assert table.shape == saved.shape


def test_training_rows_measure_each_stage_before_and_as_configured(tiny_run):
    out, _ = tiny_run
    rows = pd.read_csv(out / "training.csv")
    assert rows["config"].tolist() == ["smoke"] * 4 + ["smoke_fine"] * 4
    assert rows["variant"].tolist() == ["fp32, contiguous (before)", "bf16 autocast, contiguous",
                                        "fp32, channels-last", "as configured"] * 2
    assert (rows[["clicks_s", "forward_s", "backward_s", "step_s", "samples_per_s"]] >= 0).all().all()
    assert (rows["samples_per_s"] > 0).all() and rows["speedup"].iloc[[0, 4]].tolist() == [1.0, 1.0]
    assert rows["crops"].tolist() == ["64x96"] * 8
    assert rows["bf16"].tolist()[:3] == [False, True, False]
    assert rows["channels_last"].tolist()[:3] == [False, False, True]
    assert "| smoke_fine | as configured |" in (out / "training.md").read_text()


def test_training_variants_of_the_served_scale_fine_recipe():
    from iseg.training import load_config

    variants = bench.training_variants(load_config("fine_cpu"))
    assert list(variants) == ["fp32, contiguous, one 2:3 crop (before)", "bf16 autocast, contiguous, one 2:3 crop",
                              "fp32, channels-last, one 2:3 crop", "as configured, one 2:3 crop", "as configured"]
    assert variants["as configured, one 2:3 crop"] == {"fine_aspects": None, "fine_crop": [224, 336]}
    assert variants["as configured"] == {}
    assert len(bench.training_variants(load_config("coarse_cpu"))) == 4


def test_machine_info_records_the_environment(tiny_run):
    info = json.loads((tiny_run[0] / "machine.json").read_text())
    assert info["threads"] == 1 and info["cores"] >= 1 and info["torch"] == torch.__version__
    assert info["cpu"] and info["date"] and info["settings"]["configs"] == "ifpn_tiny"


def test_ablation_table(tmp_path):
    args = bench.build_parser().parse_args([*TINY, "--out", str(tmp_path)])
    table = bench.ablation_table(args)
    torch.set_num_threads(1)
    steps = list(table.loc[table["config"] == "ifpn_tiny", "step"])
    assert steps[0] == "eval + no_grad, NCHW, BN unfolded" and steps[-1] == "flip: one forward of batch 2"
    assert (table["seconds"] > 0).all() and (table["speedup"] > 0).all()
    assert len(table[table["config"] == "-"]) == 4


def test_forward_flops_count_two_per_multiply_accumulate():
    conv = torch.nn.Conv2d(4, 8, 3, padding=1, bias=False)
    flops = bench.count_flops(lambda: conv(torch.rand(1, 4, 10, 10)))
    assert flops == 2 * 4 * 8 * 9 * 10 * 10


def test_dummy_points_and_scene():
    points = bench.dummy_points(2, (40, 60), positive=2, negative=1)
    assert points.shape == (2, 4, 3)
    assert points[0, :2, :2].tolist() == [[10, 15], [20, 30]] and points[0, 2, :2].tolist() == [30, 45]
    assert points[0, 3].tolist() == [-1, -1, -1]
    image, mask = bench.synthetic_scene((60, 80))
    assert image.shape == (60, 80, 3) and image.dtype == np.uint8 and mask.dtype == np.int8
    assert mask[30, 40] == 1 and mask[0, 0] == 0 and 0.1 < mask.mean() < 0.3


def test_parse_size_error_names_the_value():
    assert bench.parse_size("480x854") == (480, 854)
    with pytest.raises(argparse.ArgumentTypeError, match="expected a size HEIGHTxWIDTH such as 480x854, got '480'"):
        bench.parse_size("480")


@pytest.mark.parametrize("args, message", [(["--size", "0"], "--size must be an integer from 1 to 4096, got 0"),
                                           (["--threads", "0"], "--threads must be an integer from 1 to 1024, got 0"),
                                           (["--image", "0x80"], "with sides from 1 to 4096"),
                                           (["--train-crop", "100000x80"], "got '100000x80'"),
                                           (["--configs", "nope"], "error: unknown model 'nope'")])
def test_unusable_arguments_are_one_line_errors_before_any_work(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        bench.main([*TINY, "--out", str(tmp_path / "b"), *args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "b").exists()
