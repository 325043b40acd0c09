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
    (tmp_path / "manifest.json").write_text(json.dumps({"coarse": {"file": "c.pt", "sha256": "00"},
                                                        "fine": {"file": "f.pt", "sha256": "00"}}))
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
    fine = save_checkpoint(tmp_path / "fine.pt", model_payload(model, epoch=3))
    manifest = export_default({"coarse": trained, "fine": fine}, tmp_path / "weights")
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


def test_a_damaged_manifest_is_an_error_never_a_fallback(tmp_path):
    manifest = tmp_path / "manifest.json"
    for text in ('{"coarse": {"file": "c.pt", "sha256": "00"}}', "{not json", '["coarse"]',
                 '{"coarse": {"file": "c.pt", "sha256": "00"}, "fine": {"file": 3}}'):
        manifest.write_text(text)
        with pytest.raises(ValueError, match=r"manifest .*manifest\.json is damaged"):
            default_checkpoints(manifest)


def test_export_checks_both_checkpoints_before_replacing_and_needs_force(tmp_path, capsys):
    from iseg.models import build_model
    from iseg.models.checkpoint import model_payload, save_checkpoint
    from iseg.weights import export_default, main

    trained = save_checkpoint(tmp_path / "last.pt", model_payload(build_model("ifpn_tiny")))
    fine = save_checkpoint(tmp_path / "fine.pt", model_payload(build_model("ifpn_tiny")))
    weights = tmp_path / "weights"
    export_default({"coarse": trained, "fine": fine}, weights)
    before = {p.name: p.read_bytes() for p in weights.iterdir()}
    assert sorted(before) == ["default_coarse.pt", "default_fine.pt", "manifest.json"]

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    for args, message in ((["--fine", str(bad), "--force"], "bad.pt cannot be read"),
                          (["--fine", str(tmp_path / "nonexistent.pt")], "nonexistent.pt does not exist"),
                          (["--fine", str(trained), "--force"], "are the same file"),
                          (["--fine", str(fine)], "exist already; pass force=True (--force)")):
        with pytest.raises(SystemExit) as exit_info:
            main(["--coarse", str(trained), *args, "--out", str(weights)])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err and "Traceback" not in err
        assert {p.name: p.read_bytes() for p in weights.iterdir()} == before  # nothing replaced, nothing left
    assert set(default_checkpoints(weights / "manifest.json")) == {"coarse", "fine"}
    main(["--coarse", str(trained), "--fine", str(fine), "--out", str(weights), "--force"])
    assert set(default_checkpoints(weights / "manifest.json")) == {"coarse", "fine"}


def test_a_manifest_file_outside_its_folder_is_refused(tmp_path):
    for name in ("../../../../etc/hostname", "sub/c.pt", "..", ""):
        (tmp_path / "manifest.json").write_text(json.dumps({"coarse": {"file": name, "sha256": "00"},
                                                            "fine": {"file": "f.pt", "sha256": "00"}}))
        with pytest.raises(ValueError, match="is not a file name in"):
            default_checkpoints(tmp_path / "manifest.json")


def test_export_refuses_swapped_stages(tmp_path):
    from iseg.models import build_model
    from iseg.models.checkpoint import CheckpointError, model_payload, save_checkpoint
    from iseg.weights import export_default

    model = build_model("ifpn_tiny")
    paths = {stage: save_checkpoint(tmp_path / f"{stage}.pt", model_payload(model, train_config={"stage": stage}))
             for stage in ("coarse", "fine")}
    with pytest.raises(CheckpointError, match=r"fine\.pt is a fine network"):
        export_default({"coarse": paths["fine"], "fine": paths["coarse"]}, tmp_path / "weights")
    assert not (tmp_path / "weights").exists()
