"""Where each benchmark comes from (the official archives of the field's table) and fetching it."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm


@dataclass(frozen=True)
class Source:
    """One downloadable archive: the dataset it holds and how its folder is laid out once unpacked."""

    name: str
    url: str
    layout: str
    note: str = ""


FBRS = "https://github.com/saic-vul/fbrs_interactive_segmentation/releases/download/v1.0"
RITM = "https://github.com/saic-vul/ritm_interactive_segmentation/releases/download/v1.0"
SBD_URL = "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz"
VOC_URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"

SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source("GrabCut", f"{FBRS}/GrabCut.zip",
               "GrabCut/data_GT, GrabCut/boundary_GT"),
        Source("Berkeley", f"{FBRS}/Berkeley.zip",
               "Berkeley/images, Berkeley/masks"),
        Source("DAVIS", f"{FBRS}/DAVIS.zip",
               "DAVIS/img, DAVIS/gt"),
        Source("COCO_MVal", f"{FBRS}/COCO_MVal.zip",
               "COCO_MVal/img, COCO_MVal/gt", "an evaluation set in the paper protocol"),
        Source("SBD", SBD_URL,
               "benchmark_RELEASE/dataset/{img,inst,train.txt,val.txt}: point the config at .../dataset"),
        Source("PascalVOC", VOC_URL,
               "VOCdevkit/VOC2012/{JPEGImages,SegmentationObject,ImageSets}: point the config at .../VOC2012"),
        Source("COCO_LVIS", f"{RITM}/cocolvis_annotation.tar.gz",
               "RITM's combined annotations; the images are COCO 2017's (cocodataset.org), placed in <split>/images",
               "about 25 GB with the images"),
    ]
}


def _download(url: str, dest: Path, progress: bool = True) -> None:
    """Stream a URL to a file, with a byte-count progress bar."""
    with urllib.request.urlopen(url) as response, open(dest, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
                bar.update(len(chunk))


def _unpack(archive: Path, into: Path) -> None:
    """Unpack a zip or tar archive, refusing members that would land outside `into`."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            names = z.namelist()
            _check_members(names, into)
            z.extractall(into)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            _check_members(t.getnames(), into)
            t.extractall(into, filter="data")
    else:
        raise ValueError(f"{archive} is neither a zip nor a tar archive.")


def _check_members(names: list[str], into: Path) -> None:
    root = into.resolve()
    for name in names:
        if not (root / name).resolve().is_relative_to(root):
            raise ValueError(f"Archive member {name!r} would be written outside {into}.")


def fetch(name: str, dest: Path | str, url: str | None = None, progress: bool = True) -> Path:
    """Download and unpack dataset `name` into folder `dest` (needs internet); returns `dest`.

    The archive is unpacked in a temporary folder next to `dest` and moved in only when complete.
    """
    if name not in SOURCES:
        raise KeyError(f"No known source for dataset {name!r}; known: {', '.join(SOURCES)}.")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=f".{name}-") as tmp:
        tmp = Path(tmp)
        archive = tmp / Path(url or SOURCES[name].url).name
        _download(url or SOURCES[name].url, archive, progress)
        unpacked = tmp / "unpacked"
        _unpack(archive, unpacked)
        for item in unpacked.iterdir():
            target = dest / item.name
            if target.exists():
                raise FileExistsError(f"{target} exists already; remove it to fetch {name} again.")
            shutil.move(str(item), target)
    return dest
