"""Reading data files safely, with errors that name the file.

Files are read as bytes and decoded in memory (any file name works, even one that is not UTF-8); an image
that ends before its end marker (truncated), a mask whose alpha channel would change its meaning, a broken
link and a pickle that asks for anything but builtins and numpy arrays are errors, never silently used.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
from pathlib import Path

import cv2
import numpy as np

from iseg.values import MAX_IMAGE_PIXELS, check_pixels

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int", "float", "complex",
             "bool", "slice"}
PICKLE_GLOBALS = {
    "builtins": _BUILTINS,
    "__builtin__": _BUILTINS,  # the name in protocol-2 pickles
    "_codecs": {"encode"},
    "numpy": {"ndarray", "dtype"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy.core.numeric": {"_frombuffer"},  # protocol 5
    "numpy._core.numeric": {"_frombuffer"},
}


def printable(text: str) -> str:
    """`text` with undecodable file-name bytes shown as escapes (safe to print and to write as UTF-8)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def read_bytes(path: Path, what: str) -> bytes:
    """The bytes of a data file; a missing file, a broken link or an unreadable file is an error naming it."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise ValueError(f"cannot read {what} {path}: broken symbolic link to {os.readlink(path)}")
    try:
        return path.read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read {what} {path}: {error.strerror or error}") from error


def _jpeg_complete(data: bytes) -> bool:
    """Whether a JPEG stream reaches its end-of-image marker, walking its segments and entropy-coded data."""
    pos = 2
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return False
        marker = data[pos + 1]
        if marker == 0xD9:
            return True
        if marker in (0x00, 0x01, 0xFF) or 0xD0 <= marker <= 0xD8:  # stuffing, fill, markers without length
            pos += 1 if marker == 0xFF else 2
            continue
        if pos + 4 > len(data):
            return False
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")


def _png_complete(data: bytes) -> bool:
    """Whether a PNG stream's chunks are all present up to IEND."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return pos <= len(data)
    return False


def truncated(data: bytes) -> bool:
    """Whether a JPEG, PNG or BMP file ends before its format says it does (other formats: False)."""
    if data[:2] == b"\xff\xd8":
        return not _jpeg_complete(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return not _png_complete(data)
    if data[:2] == b"BM" and len(data) >= 6:
        return len(data) < int.from_bytes(data[2:6], "little")
    return False


def check_declared_pixels(data: bytes, name: str) -> None:
    """Refuse, before decoding, an encoded image whose header declares no pixel or more than MAX_IMAGE_PIXELS
    (iseg.values); bytes that Pillow cannot identify are left to the decoder."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Image.DecompressionBombError:
        raise ValueError(f"{name} declares more than the {MAX_IMAGE_PIXELS:,} pixels an image may have "
                         "(docs/errors.md); downscale it first") from None
    except Exception:  # not an image Pillow identifies: OpenCV's decoding decides
        return
    check_pixels(height, width, name)


def decode(path: Path, what: str, flags: int) -> np.ndarray:
    """Read and decode an image file with cv2 `flags`; truncated, corrupt, non-image files and images beyond the
    pixel limit are errors."""
    data = read_bytes(path, what)
    if truncated(data):
        raise ValueError(f"cannot read {what} {path}: the file is truncated (it ends before its end marker)")
    check_declared_pixels(data, f"{what} {path}")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    if decoded is None:
        raise ValueError(f"cannot read {what} {path}: corrupt or not an image file")
    return decoded


def read_image(path: Path) -> np.ndarray:
    """Read a colour image file as (H, W, 3) uint8 RGB (stored pixel order: EXIF rotation is not applied)."""
    image = decode(path, "image", cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_raw_mask(path: Path) -> np.ndarray:
    """Read a mask file as stored: (H, W) or (H, W, 3) uint8/uint16 (palette PNGs give RGB).

    A fully opaque alpha channel is dropped; one with transparent pixels is an error (which pixels are object
    would depend on whether alpha is read), and so are masks with more than four channels.
    """
    mask = decode(path, "mask", cv2.IMREAD_UNCHANGED)
    if mask.ndim == 3 and mask.shape[2] in (2, 4):
        alpha = mask[..., -1]
        if (alpha != np.iinfo(mask.dtype).max).any():
            raise ValueError(f"mask {path} has an alpha channel with transparent pixels: whether a pixel is "
                             "object would depend on it; expected an opaque mask (save it without alpha)")
        mask = mask[..., :-1] if mask.shape[2] == 4 else mask[..., 0]
    if mask.ndim == 3 and mask.shape[2] != 3:
        raise ValueError(f"mask {path} has {mask.shape[2]} channels; expected 1 (greyscale) or 3")
    return mask


def read_palette_mask(path: Path) -> np.ndarray:
    """Read a palette (indexed) or greyscale PNG as its (H, W) uint8 index values."""
    from PIL import Image, UnidentifiedImageError

    data = read_bytes(path, "mask")
    if truncated(data):
        raise ValueError(f"cannot read mask {path}: the file is truncated (it ends before its end marker)")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.mode not in ("P", "L"):
                raise ValueError(f"mask {path} has mode {image.mode}; expected a palette (P) or greyscale (L) PNG")
            return np.array(image)
    except (OSError, UnidentifiedImageError) as error:
        raise ValueError(f"cannot read mask {path}: {error}") from error


def read_mat(path: Path) -> dict:
    """Load a MATLAB .mat file with scipy, naming the file on failure."""
    import scipy.io

    data = read_bytes(path, ".mat file")
    try:
        return scipy.io.loadmat(io.BytesIO(data))
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"cannot read .mat file {path}: {error}") from error


class _DataUnpickler(pickle.Unpickler):
    """An unpickler that builds only builtins and numpy arrays: any other global is refused, never imported."""

    def find_class(self, module: str, name: str) -> object:
        if name in PICKLE_GLOBALS.get(module, ()):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it asks for {module}.{name}; only builtins and numpy arrays are allowed "
                                     "in a data pickle (nothing is executed)")


def read_pickle(path: Path, what: str) -> object:
    """Unpickle a data file without running code (only builtins and numpy arrays), naming it on failure."""
    data = read_bytes(path, what)
    try:
        return _DataUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise ValueError(f"cannot read {what} {path}: {error}") from error


def channel(mask: np.ndarray, index: int = 0) -> np.ndarray:
    """One channel of a (H, W) or (H, W, C) mask as (H, W)."""
    return mask if mask.ndim == 2 else mask[..., index]


def find_images(folder: Path) -> dict[str, Path]:
    """Image files of a folder by stem (extensions of IMAGE_EXTENSIONS, any case; broken links included, so
    that reading them names them); duplicate stems are an error."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS or not (path.is_file() or path.is_symlink()):
            continue
        if path.stem in found:
            raise ValueError(f"two images with the stem {path.stem!r}: {found[path.stem]} and {path}")
        found[path.stem] = path
    return found
