"""Datasets: the `Sample` type, readers of the field's benchmark formats and a user's own folder, data configs."""

from iseg.data.base import ImageObjects, ObjectsDataset
from iseg.data.config import load_data_config, parse_dataset_spec
from iseg.data.registry import DATASETS, canonical_name, load_dataset, load_present
from iseg.data.sample import IGNORE, Sample

__all__ = [
    "DATASETS",
    "IGNORE",
    "ImageObjects",
    "ObjectsDataset",
    "Sample",
    "canonical_name",
    "load_data_config",
    "load_dataset",
    "load_present",
    "parse_dataset_spec",
]
