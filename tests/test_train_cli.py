"""`python -m iseg.train` end to end on a tiny folder dataset, and its configuration errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import yaml

from iseg.models import load_checkpoint
from iseg.train import build_parser, main
from test_training_helpers import make_folder_dataset


@pytest.fixture
def data_config(tmp_path):
    root = make_folder_dataset(tmp_path / "ds")
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump({"folder": str(root)}))
    return path


def run(stage: str, config: str, data_config, out, *extra: str) -> int:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return main([stage, "--config", config, "--data", "folder:1", "--data-config", str(data_config),
                     "--val", "folder", "--set", "val_size=1",
                     "--set", "exclude=[]", "--out", str(out), "--no-progress", *extra])
    finally:
        torch.set_num_threads(threads)


def test_coarse_then_fine_write_run_folders(tmp_path, data_config):
    coarse = tmp_path / "runs" / "coarse"
    assert run("coarse", "smoke", data_config, coarse, "--epochs", "1", "--set", "lr=2e-3") == 0
    saved = yaml.safe_load((coarse / "config.yaml").read_text())
    assert saved["stage"] == "coarse" and saved["data"] == {"folder": 1.0}
    assert saved["epochs"] == 1 and saved["lr"] == 2e-3 and saved["val_size"] == 1
    with open(coarse / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1"]
    assert {"train_loss", "lr", "val_miou@1", "val_miou@2", "seconds", "samples_per_s"} <= set(rows[0])
    assert 0.0 <= float(rows[0]["val_miou@2"]) <= 1.0
    assert {p.name for p in (coarse / "checkpoints").iterdir()} == {"last.pt", "best.pt", "epoch_001.pt"}
    assert load_checkpoint(coarse / "checkpoints" / "last.pt")["train_config"]["stage"] == "coarse"

    fine = tmp_path / "runs" / "fine"
    coarse_ckpt = coarse / "checkpoints" / "last.pt"
    assert run("fine", "smoke_fine", data_config, fine, "--epochs", "1", "--coarse", str(coarse_ckpt)) == 0
    assert yaml.safe_load((fine / "config.yaml").read_text())["coarse_checkpoint"] == str(coarse_ckpt)
    assert (fine / "checkpoints" / "last.pt").is_file()

    assert run("coarse", "smoke", data_config, coarse, "--epochs", "2", "--resume") == 0
    with open(coarse / "metrics.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]


def test_bad_data_name_is_a_clear_error(tmp_path, data_config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["coarse", "--config", "smoke", "--data", "COCO_MVal:1,Nope:0.5", "--out", str(tmp_path / "r")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "'Nope'" in err and "COCO_MVal" in err and "BSDS500" in err
    assert not (tmp_path / "r").exists()


def test_config_errors_exit_2(tmp_path, data_config, capsys):
    for args, message in [(["--set", "lrr=1"], "unknown training config key"),
                          (["--val", "GrabCut"], "evaluation benchmark"),
                          (["--config", "no_such_config"], "no training config named")]:
        with pytest.raises(SystemExit) as exit_info:
            main(["coarse", "--config", "smoke", "--data", "folder", "--data-config", str(data_config),
                  "--out", str(tmp_path / "r"), *args])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_fine_without_coarse_checkpoint_fails(tmp_path, data_config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run("fine", "smoke_fine", data_config, tmp_path / "r")
    assert exit_info.value.code == 2
    assert "coarse_checkpoint" in capsys.readouterr().err


def test_launch_flags_become_cli_arguments():
    from iseg.train import to_argv

    argv = to_argv("fine", "runs/x", {"config": "fine_cpu", "epochs": 3, "data": "", "num_workers": 0,
                                       "val": None, "resume": True, "set": {"lr": 1e-4, "crop_size": [64, 96]}})
    assert argv == ["fine", "--out", "runs/x", "--config", "fine_cpu", "--epochs", "3", "--num-workers", "0",
                    "--resume", "--set", "lr=0.0001", "--set", "crop_size=[64, 96]"]
    assert build_parser().parse_args(argv).set == ["lr=0.0001", "crop_size=[64, 96]"]


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs must be a positive number (1 or more), got 0"),
    (["--threads", "0"], "--threads must be an integer from 1 to 1024, got 0"),
    (["--set", "augment={crop_size: [0, 0]}"], "augment crop_size must be (h, w) with positive sides"),
    (["--set", "sampler={max_num_points: 0}"], "sampler max_num_points must be >= 1"),
    (["--set", "lr=[1,"], "override lr: the value '[1,' is not YAML"),
    (["--lr", "inf"], "'lr' must be a positive finite number, got inf"),
    (["--set", "lr=.nan"], "'lr' must be a positive finite number, got nan"),
    (["--set", "gamma=.inf"], "'gamma' must be a finite number >= 0, got inf"),
    (["--set", "betas=[0.9, 1.5]"], "'betas' (each) must be a finite number from 0 to 0.9999, got 1.5"),
    (["--set", "augment={flip_prob: .nan}"], "augment flip_prob must be a finite number from 0 to 1, got nan"),
    (["--set", "augment={rgb_shift: -1}"], "augment rgb_shift must be a finite number >= 0, got -1"),
    (["--set", "sampler={first_click_center: .nan}"], "sampler first_click_center must be a finite number >= 1"),
    (["--set", "sampler={negative_probs: [0, 0, 0]}"], "negative_probs must be 3 weights with a positive sum"),
    (["--set", "betas=[0.9]"], "'betas' must be Adam's two betas, e.g. [0.9, 0.999], got [0.9]"),
    (["--set", "data=[]"], "'data' must map dataset names to sampling weights"),
    (["--set", "data={COCO_MVal: 0}"], "'data' needs a positive weight"),
    (["--threads", "100000"], "--threads must be an integer from 1 to 1024, got 100000"),
    (["--data", ""], "--data '' names no dataset"),
    (["--data", "folder,"], "--data 'folder,' has an empty item"),
    (["--data", "folder:1,folder:2"], "names 'folder:2' twice"),
])
def test_unusable_settings_stop_before_training(tmp_path, data_config, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        run("coarse", "smoke", data_config, tmp_path / "r", *args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_resume_without_a_run_is_an_error_not_the_paper_config(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["coarse", "--out", str(tmp_path / "empty"), "--resume"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "holds no run to resume" in err and "COCO_LVIS" not in err


def test_runtime_and_yaml_errors_are_one_line(tmp_path, data_config, capsys, monkeypatch):
    import iseg.training.trainer

    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["coarse", "--config", str(bad), "--out", str(tmp_path / "r")])
    assert exit_info.value.code == 2 and "Traceback" not in capsys.readouterr().err

    def no_device(*args, **kwargs):
        raise RuntimeError("device 'cuda' requested but CUDA is not available")

    monkeypatch.setattr(iseg.training.trainer, "train", no_device)
    with pytest.raises(SystemExit) as exit_info:
        run("coarse", "smoke", data_config, tmp_path / "r")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "CUDA is not available" in err


def test_ctrl_c_says_how_to_resume_and_two_runs_cannot_share_out(tmp_path, data_config, capsys, monkeypatch):
    import iseg.training.trainer
    from iseg.cli import RunLock

    out = tmp_path / "r"

    def interrupted_after_one_epoch(cfg, out_dir, **kwargs):
        (Path(out_dir) / "metrics.csv").write_text("epoch,train_loss\n1,0.5\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(iseg.training.trainer, "train", interrupted_after_one_epoch)
    with pytest.raises(SystemExit) as exit_info:
        try:
            run("coarse", "smoke", data_config, out)
        except KeyboardInterrupt:
            pytest.fail("Ctrl-C escaped the CLI")
    err = capsys.readouterr().err
    assert exit_info.value.code == 130
    assert (f"keeps epoch 1 (checkpoints/last.pt); continue with: python -m iseg.train coarse --out {out} "
            "--resume") in err
    assert not (out / ".iseg.lock").exists()

    with RunLock(out):
        with pytest.raises(SystemExit) as exit_info:
            run("coarse", "smoke", data_config, out)
    assert exit_info.value.code == 2 and "is in use by another run" in capsys.readouterr().err


def test_resume_of_a_finished_run_says_so(tmp_path, data_config, capsys):
    out = tmp_path / "r"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.pt").write_bytes(b"")
    (out / "config.yaml").write_text(yaml.safe_dump({"epochs": 2, "data": {"folder": 1.0},
                                                      "data_config": str(data_config)}))
    (out / "metrics.csv").write_text("epoch,train_loss\n1,0.5\n2,0.4\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["coarse", "--out", str(out), "--resume"])
    assert exit_info.value.code == 2 and "already finished epoch 2 of 2" in capsys.readouterr().err
