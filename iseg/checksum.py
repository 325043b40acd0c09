"""File checksums: weights are loaded only when their sha256 matches the one recorded."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected: str, remedy: str = "") -> Path:
    """Return `path` if the file exists and its sha256 is `expected`, else raise an error naming both."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} is missing (expected sha256 {expected}). {remedy}".strip())
    actual = sha256_of(path)
    if actual != expected:
        raise ValueError(f"weights file {path} does not match its checksum: sha256 {actual}, expected {expected}; "
                         f"the file is corrupt or was replaced. {remedy}".strip())
    return path
