import json

import pytest

from iseg.checksum import sha256_of, verify_sha256
from iseg.weights import default_checkpoints


def test_verify_sha256_accepts_matching_and_refuses_changed_file(tmp_path):
    f = tmp_path / "w.pt"
    f.write_bytes(b"weights")
    digest = sha256_of(f)
    assert verify_sha256(f, digest) == f
    f.write_bytes(b"weightz")
    with pytest.raises(ValueError, match=r"w\.pt does not match its checksum"):
        verify_sha256(f, digest)


def test_missing_manifest_and_missing_file_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json is missing"):
        default_checkpoints(tmp_path / "manifest.json")
    (tmp_path / "manifest.json").write_text(json.dumps({"coarse": {"file": "c.pt", "sha256": "00"}}))
    with pytest.raises(FileNotFoundError, match=r"c\.pt is missing"):
        default_checkpoints(tmp_path / "manifest.json")


def test_exported_default_model_loads_verified_and_refuses_a_changed_file(tmp_path):
    import numpy as np
    import torch

    from iseg.clicks import Click
    from iseg.models import build_model
    from iseg.models.checkpoint import load_model, model_payload, save_checkpoint
    from iseg.weights import export_default

    model = build_model("ifpn_tiny")
    trained = save_checkpoint(tmp_path / "last.pt", model_payload(model, optimizer={"state": {}}, epoch=3))
    manifest = export_default({"coarse": trained, "fine": trained}, tmp_path / "weights")
    paths = default_checkpoints(tmp_path / "weights/manifest.json")
    assert set(paths) == {"coarse", "fine"} and manifest["fine"]["file"] == "default_fine.pt"
    exported = torch.load(paths["coarse"], weights_only=True)
    assert "optimizer" not in exported and exported["epoch"] == 3
    assert all(v.dtype == torch.float16 for v in exported["model"].values() if v.is_floating_point())
    restored = load_model(paths["coarse"])
    for name, value in model.state_dict().items():
        assert torch.allclose(restored.state_dict()[name].float(), value.float(), atol=1e-2, rtol=1e-2), name

    from iseg.inference import predictor_from_checkpoints

    predictor = predictor_from_checkpoints(paths["coarse"], paths["fine"], flip=False)
    predictor.set_image(np.zeros((40, 50, 3), np.uint8))
    assert predictor.predict([Click(20, 25, True)], None).shape == (40, 50)

    paths["fine"].write_bytes(paths["fine"].read_bytes() + b"x")
    with pytest.raises(ValueError, match="default_fine.pt does not match its checksum"):
        default_checkpoints(tmp_path / "weights/manifest.json")
