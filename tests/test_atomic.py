import pytest

from iseg.atomic import atomic_path, write_text


def test_write_text_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "a.csv"
    write_text(target, "x,y\n")
    write_text(target, "z\n")
    assert target.read_text() == "z\n"
    assert [p.name for p in target.parent.iterdir()] == ["a.csv"]


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
