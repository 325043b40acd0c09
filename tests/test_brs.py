"""f-BRS-B at inference: it makes the clicked discs right where the network ignores the clicks, refines the cascade's
fine stage only, leaves the output bit-identical when off, and its setting travels to every front end."""

import numpy as np
import pytest
import torch

from iseg.clicks import Click
from iseg.inference import CascadePredictor, SingleNetPredictor
from iseg.inference.brs import FeatureBRS, ScaleBiasRefiner, brs_mode, click_loss, click_masks
from iseg.models import build_model, clicks_to_points
from iseg.models.checkpoint import model_payload, save_checkpoint
from iseg.predictor import load_predictor
from iseg.protocol import PRED_THRESHOLD
from iseg.runs import predictor_settings

IMAGE = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
IMAGE[:, :40] //= 4  # two halves the features tell apart


@pytest.fixture(scope="module")
def deaf():
    """A tiny network whose output ignores the clicks and the previous mask (its click encoder is zero)."""
    torch.manual_seed(0)
    model = build_model("ifpn_tiny")
    with torch.no_grad():
        for p in model.click_encoder.parameters():
            p.zero_()
        model.head.classifier.weight.mul_(20)  # outputs that depend on the features, not a constant
    return model


def disc(click: Click, radius: int = 2) -> np.ndarray:
    rows, cols = np.ogrid[:IMAGE.shape[0], :IMAGE.shape[1]]
    return (rows - click.row) ** 2 + (cols - click.col) ** 2 <= radius ** 2


@pytest.mark.parametrize("flip", [False, True])
def test_refinement_makes_the_clicked_discs_right_where_the_network_ignores_the_clicks(deaf, one_thread, flip):
    plain = SingleNetPredictor(deaf, zoom_in=False, flip=flip)
    plain.set_image(IMAGE)
    first = plain.predict([Click(32, 40, True)])
    low, high = (np.unravel_index(f(first), first.shape) for f in (np.argmin, np.argmax))
    clicks = [Click(int(low[0]), int(low[1]), True), Click(int(high[0]), int(high[1]), False)]
    assert first[disc(clicks[0])].max() < PRED_THRESHOLD  # the network's answer is wrong at the positive click
    refined = SingleNetPredictor(deaf, zoom_in=False, flip=flip, brs="f-BRS-B")
    refined.set_image(IMAGE)
    prob = refined.predict(clicks, refined.predict(clicks[:1]))
    assert prob[disc(clicks[0])].min() > PRED_THRESHOLD and prob[disc(clicks[1])].max() < PRED_THRESHOLD
    assert refined.refiner.evaluations[0] == 0 and 0 < refined.refiner.evaluations[1]
    assert refined.refiner.params is not None
    refined.set_image(IMAGE)
    assert refined.refiner.params is None and refined.refiner.evaluations == []


@pytest.mark.parametrize("warm", [True, False])
def test_each_click_starts_from_the_last_clicks_parameters_unless_warm_start_is_off(deaf, one_thread, monkeypatch,
                                                                                     warm):
    import iseg.inference.brs as brs

    starts = []
    real = brs.minimize

    def recording(fun, x0, **kwargs):
        starts.append(np.array(x0))
        return real(fun, x0, **kwargs)

    monkeypatch.setattr(brs, "minimize", recording)
    predictor = SingleNetPredictor(deaf, zoom_in=False, flip=False, brs="f-BRS-B")
    predictor.refiner.settings = FeatureBRS(warm_start=warm, stop_prob=0.0, min_iou_change=0.0)
    predictor.set_image(IMAGE)
    clicks = [Click(10, 10, True), Click(50, 70, False), Click(30, 20, True)]
    prob = None
    for k in range(1, 4):
        prob = predictor.predict(clicks[:k], prob)
    assert len(starts) == 2 and not starts[0].any()           # clicks 2 and 3 refine; click 2 from the network's own
    assert starts[1].any() == warm                            # click 3 from click 2's result only with a warm start


def test_off_is_bit_identical_to_the_network_alone(deaf, one_thread):
    clicks = [Click(20, 30, True), Click(50, 70, False)]
    prev = np.random.default_rng(1).random(IMAGE.shape[:2]).astype(np.float32)
    outputs = []
    for brs in (None, "none", "NoBRS"):
        predictor = SingleNetPredictor(deaf, zoom_in=False, flip=False, brs=brs)
        predictor.set_image(IMAGE)
        outputs.append(predictor.predict(clicks, prev))
        assert predictor.brs is None and predictor.refiner is None
    image = torch.from_numpy(IMAGE).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        model = predictor.model
        logits = model(image, clicks_to_points([clicks]), torch.from_numpy(prev)[None, None])["instances"]
    expected = torch.sigmoid(logits).clamp(0, 1)[0, 0].numpy()
    for output in outputs:
        np.testing.assert_array_equal(output, expected)


def test_the_first_click_is_the_networks_own(deaf, one_thread):
    results = []
    for brs in (None, "f-BRS-B"):
        predictor = CascadePredictor(deaf, deaf, target_size=48, coarse_size=64, brs=brs)
        predictor.set_image(IMAGE)
        results.append(predictor.predict([Click(30, 40, True)]))
    np.testing.assert_array_equal(*results)


def test_the_cascade_refines_its_fine_stage_only(deaf, one_thread):
    clicks = [Click(30, 50, True), Click(10, 10, False)]
    runs = {}
    for brs in (None, "f-BRS-B"):
        predictor = CascadePredictor(deaf, deaf, flip=False, target_size=48, coarse_size=64, brs=brs)
        predictor.set_image(IMAGE)
        prob = predictor.predict(clicks, predictor.predict(clicks[:1]))
        runs[brs] = (predictor.last_coarse, predictor.last_roi, prob)
    np.testing.assert_array_equal(runs[None][0], runs["f-BRS-B"][0])
    assert runs[None][1] == runs["f-BRS-B"][1]
    assert np.abs(runs[None][2] - runs["f-BRS-B"][2]).max() > 1e-3


def test_switching_during_a_session_takes_effect_at_the_next_click(deaf, one_thread):
    predictor = SingleNetPredictor(deaf, zoom_in=False, flip=False)
    predictor.set_image(IMAGE)
    predictor.predict([Click(30, 40, True)])
    predictor.set_brs("f-bRS-b")
    assert predictor.brs == "f-BRS-B" and isinstance(predictor.refiner, ScaleBiasRefiner)
    predictor.predict([Click(30, 40, True), Click(5, 5, False)])
    assert predictor.refiner.evaluations[-1] > 0
    predictor.set_brs(None)
    assert predictor.refiner is None


def test_mode_names_and_errors():
    assert brs_mode("f-brs-b") == "f-BRS-B" and brs_mode(None) is None and brs_mode("off") is None
    with pytest.raises(ValueError, match="unknown brs mode 'f-BRS-C'; expected one of f-BRS-B or none"):
        brs_mode("f-BRS-C")
    with pytest.raises(ValueError, match="GrabCut baseline has no network"):
        load_predictor("grabcut", brs="f-BRS-B")
    assert load_predictor("grabcut", brs="none") is not None


def test_click_discs_and_loss():
    pos, neg = click_masks([[Click(2, 2, True), Click(0, 7, False)]], (5, 8), 1, torch.device("cpu"))
    assert pos.shape == (1, 1, 5, 8) and pos.sum() == 5 and neg.sum() == 3 and pos[0, 0, 2, 2] == 1
    prob = torch.full((1, 1, 5, 8), 0.25)
    loss, pos_err, neg_err = click_loss(prob, pos, neg)
    assert loss.item() == pytest.approx(0.75 ** 2 + 0.25 ** 2, rel=1e-4)
    assert (pos_err, neg_err) == (0.75, 0.25)


def test_settings_default_to_ritms_optimiser():
    settings = FeatureBRS()
    assert (settings.max_evaluations, settings.reg_weight, settings.bias_reg_mult, settings.after_clicks) == (
        20, 1e-3, 10.0, 1)


def test_the_setting_travels_through_checkpoints_and_replay_settings(deaf, tmp_path):
    from iseg.replay import load_run_predictor

    path = save_checkpoint(tmp_path / "deaf.pt", model_payload(deaf))
    predictor = load_predictor(str(path), brs="f-BRS-B")
    settings = predictor_settings(predictor)
    assert settings["brs"] == "f-BRS-B" and predictor_settings(load_predictor(str(path)))["brs"] is None
    rebuilt, notes = load_run_predictor({"replay": {"predictor": {"spec": str(path), "brs": "f-BRS-B"},
                                                    "settings": settings}})
    assert rebuilt.brs == "f-BRS-B" and notes == []
    old = {k: v for k, v in predictor_settings(load_predictor(str(path))).items() if k != "brs"}
    rebuilt, notes = load_run_predictor({"replay": {"predictor": {"spec": str(path)}, "settings": old}})
    assert rebuilt.brs is None and notes == []  # a run from before the setting existed replays without a note


def test_evaluate_records_the_setting_and_the_explorer_replays_it(deaf, tmp_path, shared_datasets, one_thread):
    import json

    from iseg.evaluate import main
    from iseg.replay import load_run_predictor

    path = save_checkpoint(tmp_path / "deaf.pt", model_payload(deaf))
    out = tmp_path / "run"
    main(["--predictor", str(path), "--brs", "f-BRS-B", "--datasets", "GrabCut", "--out", str(out), "--limit", "1",
          "--max-clicks", "2", "--target-size", "64", "--coarse-size", "64", "--no-progress"])
    config = json.loads((out / "config.json").read_text())
    assert config["replay"]["settings"]["brs"] == "f-BRS-B"
    predictor, notes = load_run_predictor(config)
    assert predictor.brs == "f-BRS-B" and notes == []
