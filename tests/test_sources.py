import zipfile

import pytest

from iseg.data.sources import SOURCES, fetch


def _zip_with(tmp_path, members: dict[str, bytes]):
    archive = tmp_path / "GrabCut.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return archive


def test_fetch_unpacks_archive_into_destination(tmp_path):
    archive = _zip_with(tmp_path, {"GrabCut/data_GT/a.jpg": b"x", "GrabCut/boundary_GT/a.bmp": b"y"})
    dest = tmp_path / "datasets"
    fetch("GrabCut", dest, url=archive.as_uri(), progress=False)
    assert (dest / "GrabCut/data_GT/a.jpg").read_bytes() == b"x"
    assert sorted(p.name for p in dest.iterdir()) == ["GrabCut"]


def test_fetch_refuses_to_overwrite_and_leaves_nothing_half_written(tmp_path):
    archive = _zip_with(tmp_path, {"GrabCut/data_GT/a.jpg": b"x"})
    dest = tmp_path / "datasets"
    (dest / "GrabCut").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="GrabCut"):
        fetch("GrabCut", dest, url=archive.as_uri(), progress=False)
    assert sorted(p.name for p in dest.iterdir()) == ["GrabCut"]


def test_fetch_rejects_members_outside_destination(tmp_path):
    archive = _zip_with(tmp_path, {"../evil.txt": b"x"})
    with pytest.raises(ValueError, match="outside"):
        fetch("GrabCut", tmp_path / "d", url=archive.as_uri(), progress=False)
    assert not (tmp_path / "evil.txt").exists()


def test_unknown_dataset_names_the_known_ones():
    with pytest.raises(KeyError, match="GrabCut"):
        fetch("Nope", "/tmp/x")
    assert {"GrabCut", "Berkeley", "DAVIS", "SBD", "PascalVOC", "COCO_MVal", "COCO_LVIS"} <= set(SOURCES)
