"""Checkpoints: atomic save, round trip, fp16 weights, and clear errors for missing, corrupt or foreign files."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from iseg.models import CheckpointError, build_model, load_checkpoint, load_model, model_payload, save_checkpoint
from iseg.models.checkpoint import FORMAT

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = build_model("ifpn_tiny").eval()
    with torch.no_grad():
        net.attention.gamma.fill_(0.3)
    return net


def outputs(net, points=None):
    torch.manual_seed(1)
    image, prev = torch.rand(1, 3, 33, 47), torch.rand(1, 1, 33, 47)
    points = torch.tensor([[[5.0, 7.0, 0.0], [20.0, 30.0, 1.0]]]) if points is None else points
    with torch.inference_mode():
        return net(image, points, prev)["instances"]


def test_round_trip(tmp_path, model):
    path = save_checkpoint(tmp_path / "run" / "last.pt", model_payload(model, epoch=3))
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left behind
    checkpoint = load_checkpoint(path)
    assert checkpoint["format"] == FORMAT and checkpoint["epoch"] == 3
    loaded = load_model(path)
    assert not loaded.training and loaded.config == model.config
    assert torch.equal(outputs(loaded), outputs(model))


def test_fp16_weights_load_as_fp32(tmp_path, model):
    payload = model_payload(model)
    payload["model"] = {k: v.half() if v.is_floating_point() else v for k, v in payload["model"].items()}
    loaded = load_model(save_checkpoint(tmp_path / "half.pt", payload))
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    assert torch.allclose(outputs(loaded), outputs(model), atol=1e-2)


def test_load_model_does_not_reload_imagenet_weights(tmp_path, monkeypatch):
    import iseg.models.mobilenet as mobilenet

    path = save_checkpoint(tmp_path / "lite.pt", model_payload(build_model("ifpn_lite")))

    def forbidden():
        raise AssertionError("ImageNet weights loaded for a checkpoint")

    monkeypatch.setattr(mobilenet, "mobilenet_v2_imagenet_path", forbidden)
    assert load_model(path).config.pretrained == "imagenet"


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pt does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")


def test_truncated_and_garbage_files(tmp_path, model):
    path = save_checkpoint(tmp_path / "full.pt", model_payload(model))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00hello, not a checkpoint" * 50)
    for bad in (truncated, garbage):
        with pytest.raises(CheckpointError, match=f"{bad.name} cannot be read"):
            load_model(bad)


def test_foreign_files(tmp_path, model):
    plain = tmp_path / "plain.pt"
    torch.save(model.state_dict(), plain)
    with pytest.raises(CheckpointError, match=f"not an iseg checkpoint: expected a dict with format '{FORMAT}'"
                                              r".*found a plain state dict of \d+ tensors"):
        load_checkpoint(plain)
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else", "weights": {}}, other)
    with pytest.raises(CheckpointError, match="found a dict with format 'something-else'"):
        load_checkpoint(other)
    listed = tmp_path / "list.pt"
    torch.save([1, 2], listed)
    with pytest.raises(CheckpointError, match="found a list"):
        load_checkpoint(listed)


def test_weights_not_matching_the_config(tmp_path, model):
    payload = model_payload(model)
    payload["model_config"] = {**payload["model_config"], "ocr_width": 4}
    with pytest.raises(CheckpointError, match="do not fit its model_config 'ifpn_tiny'"):
        load_model(save_checkpoint(tmp_path / "mismatch.pt", payload))


def test_save_requires_model_and_config(tmp_path):
    with pytest.raises(ValueError, match=r"lacks \['model_config'\]"):
        save_checkpoint(tmp_path / "x.pt", {"model": {}})
    assert not any(tmp_path.iterdir())


def test_random_or_code_bearing_file_error_gives_no_advice_to_load_it_unsafely(tmp_path):
    import os

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    random_file = tmp_path / "random.pt"
    random_file.write_bytes(bytes(range(256)) * 8)
    torch.save({"x": Payload()}, tmp_path / "evil.pt")
    for path in (random_file, tmp_path / "evil.pt"):
        with pytest.raises(CheckpointError, match=rf"{path.name} cannot be read .*never loaded") as error:
            load_checkpoint(path)
        assert "weights_only" not in str(error.value) and "\n" not in str(error.value)


def test_non_finite_weights_are_refused(tmp_path, model):
    for bad in (float("nan"), float("inf")):
        state = {k: v.clone() for k, v in model.state_dict().items()}
        name = next(k for k, v in state.items() if v.is_floating_point())
        state[name].view(-1)[0] = bad
        path = save_checkpoint(tmp_path / "bad.pt", {"model_config": model.config.to_dict(), "model": state})
        with pytest.raises(CheckpointError, match=rf"bad\.pt holds non-finite weights .* in '{name}'"):
            load_model(path)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.05, 0.95), st.integers(1, 255))
def test_a_flipped_byte_is_refused_or_harmless(tmp_path_factory, model, where, bits):
    path = save_checkpoint(tmp_path_factory.mktemp("flip") / "c.pt", model_payload(model))
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= bits
    path.write_bytes(bytes(data))
    try:
        loaded = load_model(path)
    except CheckpointError:
        return
    for name, value in model.state_dict().items():  # a flip in the zip's padding changes no weight
        assert torch.equal(loaded.state_dict()[name], value), name


def test_a_changed_weight_is_refused_by_its_recorded_sha256(tmp_path, model):
    path = save_checkpoint(tmp_path / "c.pt", model_payload(model))
    payload = torch.load(path, weights_only=True)
    next(v for v in payload["model"].values() if v.is_floating_point()).view(-1)[0] += 1
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"c\.pt is damaged: its weights do not match the sha256"):
        load_checkpoint(path)


def test_a_checkpoint_given_as_the_other_stage_is_refused(tmp_path, model):
    fine = save_checkpoint(tmp_path / "fine.pt", model_payload(model, train_config={"stage": "fine"}))
    assert load_model(fine, stage="fine") is not None and load_model(fine) is not None
    with pytest.raises(CheckpointError, match=r"fine\.pt is a fine network .* given as the coarse one"):
        load_model(fine, stage="coarse")


def test_a_failed_write_names_the_checkpoint(tmp_path, model, monkeypatch):
    def full_disk(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:595] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match=r"cannot write checkpoint .*c\.pt: the write failed .* is the disk full"):
        save_checkpoint(tmp_path / "c.pt", model_payload(model))
    assert not any(tmp_path.iterdir())
