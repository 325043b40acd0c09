"""`load_predictor` and the `python -m iseg.evaluate` CLI end to end."""

import json
from pathlib import Path

import pandas as pd
import pytest

from iseg.evaluate import main
from iseg.evaluation import TABLE_COLUMNS
from iseg.grabcut import GrabCutPredictor
from iseg.predictor import load_predictor

GRABCUT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "GrabCut"


def test_load_predictor_grabcut_and_errors(tmp_path):
    assert isinstance(load_predictor("grabcut"), GrabCutPredictor)
    assert load_predictor("GrabCut", iterations=2).iterations == 2
    with pytest.raises(ValueError, match=r"unknown predictor 'foo'.*grabcut.*default.*\.pt.*coarse"):
        load_predictor("foo")
    with pytest.raises(ValueError, match="both coarse and fine"):
        load_predictor(None, coarse="a.pt")
    with pytest.raises(ValueError, match="not both"):
        load_predictor("grabcut", coarse="a.pt", fine="b.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_predictor(str(tmp_path / "missing.pt"))


def test_refuses_non_empty_out_folder(tmp_path, capsys):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(SystemExit):
        main(["--predictor", "grabcut", "--datasets", "GrabCut", "--out", str(tmp_path)])
    assert "not empty" in capsys.readouterr().err


def test_needs_a_predictor(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--datasets", "GrabCut", "--out", str(tmp_path / "run")])
    assert "--predictor" in capsys.readouterr().err


@pytest.mark.skipif(not GRABCUT.is_dir(), reason="shared GrabCut data not available")
def test_cli_end_to_end_on_two_grabcut_samples(tmp_path, capsys):
    out = tmp_path / "run"  # GrabCut twice: from the default data config and as NAME=PATH
    main(["--predictor", "grabcut", "--datasets", f"GrabCut,GrabCut={GRABCUT}",
          "--out", str(out), "--limit", "2", "--max-clicks", "3", "--threads", "1", "--no-progress"])
    assert sorted(p.name for p in out.iterdir()) == ["clicks.csv", "config.json", "ious.csv", "results.csv"]
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == TABLE_COLUMNS
    assert results["dataset"].tolist() == ["GrabCut", "GrabCut"] and results["samples"].tolist() == [2, 2]
    assert results["NoC@90"].between(1, 3).all()
    ious = pd.read_csv(out / "ious.csv")
    assert list(ious.columns) == ["dataset", "sample", "click", "iou", "seconds"]
    assert ious["sample"].nunique() == 2 and ious["click"].between(1, 3).all()
    assert ious["iou"].between(0, 1).all()
    config = json.loads((out / "config.json").read_text())
    assert config["threads"] == 1 and config["device"] == "cpu" and config["arguments"]["limit"] == 2
    assert {"torch", "date", "command"} <= config.keys()
    assert "NoC@90" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # a second run into the same folder needs --overwrite
        main(["--predictor", "grabcut", "--datasets", "GrabCut", "--out", str(out), "--limit", "1"])


@pytest.mark.parametrize("option", ["--target-size", "--max-clicks", "--limit", "--threads"])
def test_unusable_counts_stop_before_any_work(tmp_path, capsys, option):
    with pytest.raises(SystemExit) as exit_info:
        main(["--predictor", "grabcut", "--datasets", "GrabCut", "--out", str(tmp_path / "run"), option, "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{option} must be " in err and "got 0" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, message", [
    (["--coarse-size", "0"], "--coarse-size must be an integer from 1 to 4096, got 0"),
    (["--coarse-size", "-5"], "--coarse-size must be an integer from 1 to 4096, got -5"),
    (["--limit", "-2"], "--limit must be a positive number (1 or more), got -2"),
    (["--max-clicks", "99999999999999999999"], "--max-clicks must be an integer from 1 to 1000"),
    (["--target-size", "1000000"], "--target-size must be an integer from 1 to 4096, got 1000000"),
    (["--threads", "100000"], "--threads must be an integer from 1 to 1024, got 100000"),
    (["--brs", "f-BRS-Z"], "--brs: unknown brs mode 'f-BRS-Z'; expected one of f-BRS-B or none"),
])
def test_out_of_range_values_are_usage_errors_naming_the_option(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["--predictor", "grabcut", "--datasets", "GrabCut", "--out", str(tmp_path / "run"), *args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("datasets, message", [("GrabCut,GrabCut", "names 'GrabCut' twice"),
                                               ("GrabCut,", "has an empty item")])
def test_dataset_lists_with_repeated_or_empty_items_are_usage_errors(tmp_path, capsys, datasets, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["--predictor", "grabcut", "--datasets", datasets, "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2 and f"--datasets {datasets!r} {message}" in capsys.readouterr().err


def test_no_dataset_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--predictor", "grabcut", "--datasets", ",", "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2 and "--datasets ',' has an empty item" in capsys.readouterr().err


class _Samples:
    """A tiny dataset of `n` samples."""

    name = "tiny"

    def __init__(self, n: int = 4) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        import numpy as np

        from iseg.data import Sample

        mask = np.zeros((20, 30), np.int8)
        mask[5:15, 5:20] = 1
        return Sample(image=np.zeros((20, 30, 3), np.uint8), mask=mask, id=f"tiny/{i}")


class _InterruptedPredictor:
    """Predicts the whole image; Ctrl-C arrives at the image numbered `at`."""

    def __init__(self, at: int) -> None:
        self.at, self.images = at, 0

    def set_image(self, image):
        self.images += 1
        if self.images == self.at:
            raise KeyboardInterrupt

    def predict(self, clicks, prev_prob):
        import numpy as np

        return np.ones((20, 30), np.float32)


def fake_run(monkeypatch, predictor) -> None:
    """Make the CLI evaluate `predictor` on a `_Samples` dataset."""
    import iseg.data
    import iseg.evaluate

    monkeypatch.setattr(iseg.data, "load_dataset", lambda *a, **k: _Samples())
    monkeypatch.setattr(iseg.evaluate, "load_predictor", lambda *a, **k: predictor)


def test_ctrl_c_keeps_the_finished_samples(tmp_path, capsys, monkeypatch):
    fake_run(monkeypatch, _InterruptedPredictor(at=3))
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        try:
            main(["--predictor", "grabcut", "--datasets", "GrabCut", "--out", str(out), "--no-progress"])
        except KeyboardInterrupt:
            pytest.fail("Ctrl-C escaped the CLI")
    assert exit_info.value.code == 130
    err = capsys.readouterr().err
    assert "interrupted: the 2 finished sample(s) are in" in err and "Traceback" not in err
    ious = pd.read_csv(out / "ious.csv")
    assert ious.groupby("sample").size().to_dict() == {"tiny/0": 20, "tiny/1": 20}
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "ious.csv"]  # the lock is released


def test_out_in_use_by_another_run_or_not_writable_fails_before_work(tmp_path, capsys, monkeypatch):
    from iseg.cli import RunLock

    fake_run(monkeypatch, _InterruptedPredictor(at=0))
    out = tmp_path / "run"
    with RunLock(out):
        for extra in ([], ["--overwrite"]):
            with pytest.raises(SystemExit) as exit_info:
                main(["--predictor", "grabcut", "--datasets", "GrabCut", "--out", str(out), *extra])
            assert exit_info.value.code == 2
            assert "is in use by another run (pid" in capsys.readouterr().err
    assert not out.exists()  # the folder the lock created is removed with it
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit) as exit_info:
        main(["--predictor", "grabcut", "--datasets", "GrabCut", "--out", str(tmp_path / "file" / "run")])
    assert exit_info.value.code == 2
    assert "cannot write into the output folder" in capsys.readouterr().err


def test_user_errors_are_one_line_unless_debug(tmp_path, capsys, monkeypatch):
    args = ["--predictor", "grabcut", "--datasets", "Nope", "--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and "error: unknown dataset 'Nope'" in err and "--debug" in err
    for debug_args, env in ((["--debug"], "0"), ([], "1")):
        monkeypatch.setenv("ISEG_DEBUG", env)
        with pytest.raises(SystemExit):
            main([*args, *debug_args, "--overwrite"])
        err = capsys.readouterr().err
        assert "Traceback" in err and "unknown dataset 'Nope'" in err


def test_curves_figure_command_draws_runs_per_dataset(small_runs, tmp_path, capsys):
    from iseg.visualize import main

    out = tmp_path / "fig" / "curves"
    assert main(["--run", f"IFPN={small_runs / 'ifpn'}", "--run", f"GrabCut={small_runs / 'grabcut'}",
                 "--out", str(out), "--max-clicks", "3", "--formats", "png,svg"]) == 0
    assert out.with_suffix(".png").stat().st_size > 0 and out.with_suffix(".svg").is_file()
    for args, message in ((["--run", "nolabel"], "--run expects LABEL=FOLDER"),
                          (["--run", f"A={tmp_path}"], "ious.csv not found"),
                          (["--run", f"A={small_runs / 'ifpn'}", "--datasets", "DAVIS"], "no dataset DAVIS")):
        with pytest.raises(SystemExit) as exit_info:
            main([*args, "--out", str(tmp_path / "x")])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
