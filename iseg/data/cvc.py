"""CVC-ClinicDB (Bernal et al. 2015): colonoscopy frames with one polyp mask each, split by video sequence.

Layout: `images/<NNN>.jpg`, `masks/<NNN>.png` (0 / 255) and `sequences.csv` (`frame,sequence`). Frames of one
sequence film the same polyp from nearby angles, so the split is by sequence, never by frame: the test split is
every third sequence (`TEST_SEQUENCES`), the training split the others. The registry names the splits
`CVC_ClinicDB_train` and `CVC_ClinicDB_test` (`CVC_ClinicDB`: every frame).
"""

from __future__ import annotations

import csv
from pathlib import Path

from iseg.data.base import require_file
from iseg.data.folder import FolderDataset, FolderLayout, MaskCoding

NAME = "CVC_ClinicDB"
SPLITS = ("train", "test")
TEST_SEQUENCES = frozenset(range(3, 30, 3))
LAYOUT = FolderLayout("images", "masks", ".png", MaskCoding(threshold=128))
SEQUENCES_FILE = "sequences.csv"


def read_sequences(root: Path) -> dict[str, int]:
    """{frame stem: sequence number} from `<root>/sequences.csv`."""
    path = require_file(NAME, Path(root) / SEQUENCES_FILE, f"{SEQUENCES_FILE} with columns frame,sequence")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"frame", "sequence"} <= set(rows[0]):
        raise ValueError(f"{NAME}: {path} must have the columns frame,sequence, got {list(rows[0]) if rows else []}")
    sequences = {}
    for number, row in enumerate(rows, start=2):
        try:
            sequences[row["frame"].strip()] = int(row["sequence"])
        except (TypeError, ValueError):
            raise ValueError(f"{NAME}: {path} line {number}: sequence {row['sequence']!r} is not a whole "
                             "number") from None
    return sequences


def split_of(sequence: int) -> str:
    """"test" for the held-out sequences, else "train"."""
    return "test" if sequence in TEST_SEQUENCES else "train"


class CVCClinicDBDataset(FolderDataset):
    """The frames of one split (`split`: "train", "test" or None for every frame), named `name`."""

    def __init__(self, root: str | Path, split: str | None = None, *, name: str = NAME, **options) -> None:
        if split not in (None, *SPLITS):
            raise ValueError(f"{NAME}: split must be one of {SPLITS} or None (every frame), got {split!r}")
        self.sequences = read_sequences(Path(root))
        super().__init__(name, root, LAYOUT, **options)
        unknown = [stem for stem in self.image_keys if stem not in self.sequences]
        if unknown:
            raise ValueError(f"{name}: {len(unknown)} frame(s) have no line in {Path(root) / SEQUENCES_FILE}, "
                             f"e.g. {unknown[:3]}; every frame needs its sequence to be split by sequence")
        self.split = split
        if split is not None:
            self.image_keys = [s for s in self.image_keys if split_of(self.sequences[s]) == split]
