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
