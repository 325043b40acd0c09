"""Bad inputs are reported clearly, naming the dataset and the file, and never silently used."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from iseg.data import load_dataset

H, W = 30, 40


def make_pairs(root: Path, stems: tuple[str, ...] = ("a", "b")) -> None:
    """A DAVIS-layout folder of valid image/mask pairs."""
    (root / "img").mkdir(parents=True)
    (root / "gt").mkdir()
    for stem in stems:
        cv2.imwrite(str(root / "img" / f"{stem}.jpg"), np.full((H, W, 3), 90, np.uint8))
        mask = np.zeros((H, W), np.uint8)
        mask[5:15, 5:15] = 255
        cv2.imwrite(str(root / "gt" / f"{stem}.png"), mask)


def test_missing_root_names_dataset_path_and_layout(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("GrabCut", missing)
    message = str(error.value)
    assert "GrabCut" in message and str(missing) in message and "boundary_GT/<stem>.bmp" in message


@pytest.mark.parametrize("name, needed", [("SBD", "inst/<id>.mat"), ("PascalVOC", "SegmentationObject"),
                                          ("COCO", "instances_<split>.json"), ("COCO_LVIS", "hannotation.pickle"),
                                          ("BSDS500", "groundTruth"), ("folder", "masks/<stem>.png"),
                                          ("DAVIS", "gt/<stem>.png")])
def test_wrong_root_for_every_format(tmp_path: Path, name: str, needed: str) -> None:
    with pytest.raises(FileNotFoundError) as error:
        load_dataset(name, tmp_path)
    assert name in str(error.value) and str(tmp_path) in str(error.value) and needed in str(error.value)


def test_image_without_mask_is_reported(tmp_path: Path) -> None:
    make_pairs(tmp_path)
    (tmp_path / "gt" / "b.png").unlink()
    with pytest.raises(ValueError, match=r"DAVIS: 1 image\(s\) .* have no mask .*b\.jpg"):
        load_dataset("DAVIS", tmp_path)


def test_corrupt_image(tmp_path: Path) -> None:
    make_pairs(tmp_path)
    (tmp_path / "img" / "b.jpg").write_bytes(b"not a jpeg at all")
    dataset = load_dataset("DAVIS", tmp_path)
    assert dataset[0].id == "DAVIS/a"
    with pytest.raises(ValueError, match=r"cannot read image .*b\.jpg"):
        dataset[1]
    problems = dataset.validate()
    assert len(problems) == 1 and "b.jpg" in problems[0]


def test_corrupt_mask(tmp_path: Path) -> None:
    make_pairs(tmp_path)
    (tmp_path / "gt" / "a.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match=r"cannot read mask .*a\.png"):
        load_dataset("DAVIS", tmp_path)[0]


def test_mask_of_another_size(tmp_path: Path) -> None:
    make_pairs(tmp_path)
    cv2.imwrite(str(tmp_path / "gt" / "b.png"), np.full((H + 1, W), 255, np.uint8))
    dataset = load_dataset("DAVIS", tmp_path)
    with pytest.raises(ValueError, match=r"mask .*b\.png is 31x40 .* but image .*b\.jpg is 30x40"):
        dataset[1]
    assert len(dataset.validate()) == 1
    with pytest.raises(ValueError, match=r"DAVIS: 1 problem"):
        dataset.validate(strict=True)
    training = load_dataset("DAVIS", tmp_path, per_instance=False)
    with pytest.raises(ValueError, match=r"b\.png is 31x40"):
        training[1]


def test_empty_mask(tmp_path: Path) -> None:
    make_pairs(tmp_path)
    cv2.imwrite(str(tmp_path / "gt" / "a.png"), np.zeros((H, W), np.uint8))
    dataset = load_dataset("DAVIS", tmp_path)
    with pytest.raises(ValueError, match=r"a\.png.* no object pixel"):
        dataset[0]
    problems = dataset.validate()
    assert len(problems) == 1 and "a.png" in problems[0] and "no object pixel" in problems[0]
    with pytest.raises(ValueError, match=r"a\.png has no object pixel"):
        load_dataset("DAVIS", tmp_path, per_instance=False)[0]


def test_sbd_mat_without_gtinst(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    (tmp_path / "inst").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "x.jpg"), np.zeros((H, W, 3), np.uint8))
    scipy.io.savemat(tmp_path / "inst" / "x.mat", {"GTcls": {"Segmentation": np.ones((H, W), np.uint8)}})
    (tmp_path / "val.txt").write_text("x\n")
    dataset = load_dataset("SBD", tmp_path)
    with pytest.raises(ValueError, match=r"x\.mat has no GTinst\.Segmentation"):
        len(dataset)
    assert "x.mat" in dataset.validate()[0]


def test_split_list_naming_a_missing_file(tmp_path: Path) -> None:
    for folder in ("img", "inst"):
        (tmp_path / folder).mkdir()
    (tmp_path / "val.txt").write_text("ghost\n")
    problems = load_dataset("SBD", tmp_path).validate()
    assert len(problems) == 1 and "ghost" in problems[0]


def test_single_object_formats_have_no_split(tmp_path: Path) -> None:
    make_pairs(tmp_path)
    with pytest.raises(ValueError, match="DAVIS has no splits"):
        load_dataset("DAVIS", tmp_path, split="val")


class _Payload:
    """A pickle that runs code when loaded (a file is created)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_coco_lvis_pickle_with_code_is_refused_before_it_runs(tmp_path: Path) -> None:
    import pickle

    split = tmp_path / "train"
    for folder in ("images", "masks"):
        (split / folder).mkdir(parents=True)
    marker = tmp_path / "pwned"
    (split / "hannotation.pickle").write_bytes(pickle.dumps({"a": {"num_instance_masks": 1, "x": _Payload(marker)}}))
    with pytest.raises(ValueError, match=r"hannotation\.pickle.*builtins\.exec.*only builtins and numpy arrays"):
        load_dataset("COCO_LVIS", tmp_path)
    assert not marker.exists()


def test_data_pickle_admits_builtins_and_numpy_arrays(tmp_path: Path) -> None:
    import pickle

    from iseg.data.io import read_pickle

    value = {"a": [np.arange(3, dtype=np.uint16), (np.int64(2), 1.5, "s", b"b", {1, 2}, None)]}
    for protocol in (2, 4, 5):
        path = tmp_path / f"p{protocol}.pickle"
        path.write_bytes(pickle.dumps(value, protocol=protocol))
        loaded = read_pickle(path, "test pickle")
        assert np.array_equal(loaded["a"][0], value["a"][0]) and loaded["a"][1] == value["a"][1]


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp"])
def test_truncated_image_is_refused_and_reported(tmp_path: Path, suffix: str) -> None:
    make_pairs(tmp_path)
    rng = np.random.default_rng(0)
    image = tmp_path / "img" / f"b{suffix}"
    (tmp_path / "img" / "b.jpg").unlink()
    cv2.imwrite(str(image), rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    image.write_bytes(image.read_bytes()[:-max(3, image.stat().st_size // 3)])
    dataset = load_dataset("DAVIS", tmp_path)
    with pytest.raises(ValueError, match=rf"b\{suffix}: .*truncated"):
        dataset[1]
    problems = dataset.validate()
    assert len(problems) == 1 and f"b{suffix}" in problems[0] and "truncated" in problems[0]


def test_jpeg_with_data_after_its_end_marker_is_complete(tmp_path: Path) -> None:
    from iseg.data.io import truncated

    image = np.random.default_rng(0).integers(0, 255, (H * 4, W * 4, 3), dtype=np.uint8)
    for params in ([], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], [cv2.IMWRITE_JPEG_RST_INTERVAL, 2]):
        data = cv2.imencode(".jpg", image, params)[1].tobytes()
        assert not truncated(data) and not truncated(data + b"trailer" * 300)
        assert all(truncated(data[:n]) for n in (len(data) - 2, len(data) // 2, 200))


def test_mask_alpha_channel(tmp_path: Path) -> None:
    make_pairs(tmp_path)
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[5:15, 5:15, :3] = 255
    rgba[..., 3] = 255  # opaque: the alpha channel is dropped
    cv2.imwrite(str(tmp_path / "gt" / "a.png"), rgba)
    dataset = load_dataset("DAVIS", tmp_path)
    assert (dataset[0].mask == 1).sum() == 100
    rgba[:10, :, 3] = 0  # transparent pixels: its meaning depends on whether alpha is read
    cv2.imwrite(str(tmp_path / "gt" / "a.png"), rgba)
    with pytest.raises(ValueError, match=r"a\.png has an alpha channel with transparent pixels"):
        dataset[0]
    with pytest.raises(ValueError, match=r"a\.png has an alpha channel"):
        load_dataset("DAVIS", tmp_path, per_instance=False)[0]
    assert "alpha" in dataset.validate()[0]


@pytest.mark.parametrize("mask", [np.full((H, W), 255, np.uint8), np.ones((H, W), np.uint16)],
                         ids=["all-one", "16-bit-background-1"])
def test_mask_without_background_is_refused(tmp_path: Path, mask: np.ndarray) -> None:
    make_pairs(tmp_path)
    mask = mask.copy()
    mask[5:15, 5:15] = 1000 if mask.dtype == np.uint16 else 255
    cv2.imwrite(str(tmp_path / "gt" / "a.png"), mask)
    dataset = load_dataset("DAVIS", tmp_path)
    with pytest.raises(ValueError, match=r"a\.png: object 0 covers the whole image \(no background pixel\)"):
        dataset[0]
    with pytest.raises(ValueError, match=r"no usable object.*a\.png.*no background pixel"):
        load_dataset("DAVIS", tmp_path, per_instance=False)[0]
    problems = dataset.validate()
    assert len(problems) == 1 and "no background pixel" in problems[0]


def test_broken_links_are_reported_not_dropped(tmp_path: Path) -> None:
    make_pairs(tmp_path, ("a", "b", "c"))
    (tmp_path / "img" / "b.jpg").unlink()
    (tmp_path / "img" / "b.jpg").symlink_to(tmp_path / "gone.jpg")
    (tmp_path / "gt" / "c.png").unlink()
    (tmp_path / "gt" / "c.png").symlink_to(tmp_path / "gone.png")
    dataset = load_dataset("DAVIS", tmp_path)
    assert len(dataset) == 3
    with pytest.raises(ValueError, match=r"image .*b\.jpg: broken symbolic link to .*gone\.jpg"):
        dataset[1]
    problems = dataset.validate()
    assert len(problems) == 2 and "b.jpg: broken symbolic link" in problems[0] and "c.png: broken" in problems[1]


def test_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    make_pairs(tmp_path, ("a",))
    stem = os.fsdecode(b"caf\xe9")  # Latin-1 bytes: not UTF-8
    for folder, suffix in (("img", ".jpg"), ("gt", ".png")):
        os.rename(tmp_path / folder / f"a{suffix}", tmp_path / folder / f"{stem}{suffix}")
    script = ("import sys; from iseg.data import load_dataset; d = load_dataset('DAVIS', sys.argv[1]); s = d[0]; "
              "s.id.encode('utf-8'); print(s.id, int(s.mask.sum()), d.validate())")
    # in a subprocess: reading such a name used to crash the interpreter (a segfault in cv2.imread)
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["DAVIS/caf\\xe9", "100", "[]"]


def png_declaring(width: int, height: int) -> bytes:
    """A complete PNG file whose header declares width x height greyscale pixels (its data holds one row)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * (width + 1)))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("width, height", [(60000, 60000), (9000, 8000)])
def test_an_image_beyond_the_pixel_limit_is_refused_naming_the_file(tmp_path, width, height):
    from iseg.data.io import read_image, read_raw_mask
    from iseg.demo import load_image_bytes

    path = tmp_path / "huge.png"
    path.write_bytes(png_declaring(width, height))
    for read in (read_image, read_raw_mask):
        with pytest.raises(ValueError, match=r"huge\.png .*pixels an image may have"):
            read(path)
    with pytest.raises(ValueError, match=r"'upload' .*pixels an image may have"):
        load_image_bytes(path.read_bytes())
