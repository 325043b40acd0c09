"""Training data: a weighted mix of datasets, augmented, with sampled clicks; and the held-out validation split.

Every random choice of a training sample (the reader's target draw, augmentation, clicks) comes from a generator
seeded by (seed, epoch, position in the epoch), and the epoch's draws of (dataset, image) from one seeded by
(seed, epoch): the data of an epoch is the same whatever the number of workers or processes, and a resumed run
sees exactly the data of an uninterrupted one.

Validation holds out the `val_size` images of the validation dataset whose sha1(id) hex digests are smallest
(id = "<dataset>/<image key>", e.g. "COCO_MVal/airplane01_12345"), one target per image drawn with a fixed seed,
at their own resolution (the predictors resize, as in evaluation); those photos are removed from every training
set by content (`iseg.data.overlap`), so a photo is never both trained and validated on, whatever its name.

No photo of an evaluation set (`TrainConfig.exclude`: GrabCut and Berkeley by default) reaches training or
validation: every image of every training and validation set is compared by content with every evaluation photo
(`iseg.data.overlap`), whatever its name, and dropped when it matches.
"""

from __future__ import annotations

import hashlib
import time
from typing import Iterator

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from iseg.data import Sample, canonical_name, load_dataset, parse_dataset_spec
from iseg.data.overlap import Fingerprints, dataset_fingerprints, overlapping_images
from iseg.training.augment import Augmentation
from iseg.training.points_sampler import MultiPointSampler
from iseg.values import split_names

EVALUATION_ONLY = ("GrabCut", "Berkeley", "CVC_ClinicDB_test")
SampleKey = tuple[int, int, int, int]  # (epoch, position in the epoch, dataset number, sample index)
LOADER_PHASES = ("load", "augment", "sample", "tensors")


def parse_data_arg(text: str) -> dict[str, float]:
    """'COCO_MVal:1,BSDS500=/data/BSDS:0.5' -> {'COCO_MVal': 1.0, 'BSDS500=/data/BSDS': 0.5} (weight default 1)."""
    mix = {}
    for item in split_names(text, "--data"):
        spec, sep, weight = item.rpartition(":")
        if not sep or "/" in weight or "\\" in weight:
            spec, weight = item, "1"
        try:
            mix[spec] = float(weight)
        except ValueError:
            raise ValueError(f"--data item {item!r}: expected NAME[=PATH][:WEIGHT] with a numeric weight") from None
    return mix


def open_dataset(spec: str, *, data_config: str | None, options: dict, per_instance: bool,
                 min_area: int) -> torch.utils.data.Dataset:
    """The reader of a 'NAME' or 'NAME=PATH' spec with its `data_options`."""
    name, root = parse_dataset_spec(spec)
    name = canonical_name(name)
    return load_dataset(name, root, config=data_config, per_instance=per_instance, min_area=min_area,
                        **options.get(name, {}))


def evaluation_fingerprints(names: tuple[str, ...], data_config: str | None) -> list[Fingerprints]:
    """Fingerprints of every photo of the evaluation sets `names` (clear error when one cannot be read)."""
    prints = []
    for spec in names:
        try:
            dataset = load_dataset(*parse_dataset_spec(spec), config=data_config)
        except (ValueError, FileNotFoundError) as error:
            raise ValueError(f"training excludes the photos of evaluation set {spec}, but it could not be read "
                             f"({error}); configure it in the data config, or remove it from `exclude`") from error
        prints.append(dataset_fingerprints(dataset))
    return prints


def without_photos(dataset, protected: list[Fingerprints], label: str) -> torch.utils.data.Dataset:
    """`dataset` (per-image reader or Subset of one) without the images that show a protected photo."""
    if not protected:
        return dataset
    found = overlapping_images(dataset, protected)
    if not found:
        return dataset
    base = getattr(dataset, "dataset", dataset)
    positions = list(getattr(dataset, "indices", range(len(base))))
    kept = [j for n, j in enumerate(positions) if n not in found]
    example = ", ".join(sorted(set(found.values()))[:3])
    if not kept:
        raise ValueError(f"{label}: every one of its {len(found)} image(s) is an evaluation or validation photo "
                         f"(e.g. {example}), so nothing is left to train on; train on other data, or change "
                         "`exclude` / `val` if this set is not meant for evaluation")
    print(f"{label}: {len(found)} image(s) that are evaluation or validation photos left out (e.g. {example})")
    return Subset(base, kept)


def image_ids(dataset) -> list[str]:
    """'<name>/<image key>' per image of a per-image reader (index positions when it has no image_keys)."""
    keys = getattr(dataset, "image_keys", None) or [str(j) for j in range(len(dataset))]
    return [f"{dataset.name}/{key}" for key in keys]


def held_out(ids: list[str], size: int) -> list[int]:
    """Indices of the `size` ids with the smallest sha1 hex digest, in that order."""
    order = sorted(range(len(ids)), key=lambda j: hashlib.sha1(ids[j].encode()).hexdigest())
    return order[:size]


def draw(dataset, index: int, seed: int) -> Sample:
    """dataset[index] with torch's global RNG (readers draw targets with it) seeded by `seed`, then restored."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return dataset[index]


def resize_long_side(sample: Sample, long_side: int) -> Sample:
    """The sample resized so that its longer side is `long_side` (image bilinear, mask nearest)."""
    h, w = sample.mask.shape
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = cv2.resize(sample.image, size, interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(sample.mask.astype(np.int16), size, interpolation=cv2.INTER_NEAREST).astype(np.int8)
    return Sample(image=image, mask=mask, id=sample.id)


class TrainingSet(Dataset):
    """Map-style dataset indexed by `SampleKey`s (see `MixSampler`) -> dict of tensors:
    image (3, h, w) uint8, mask (1, h, w) int8 (1/0/-1), points (2P, 3) float32, single () bool (a one-click
    sample: no iterative clicks)."""

    def __init__(self, datasets: list, augment: Augmentation, sampler: MultiPointSampler, seed: int) -> None:
        self.datasets, self.augment, self.sampler, self.seed = datasets, augment, sampler, seed

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        return self.timed(key)[0]

    def timed(self, key: SampleKey) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """The item and the CPU seconds (this process) of its phases: `load` (photo and annotation read),
        `augment`, `sample` (the clicks) and `tensors`."""
        epoch, position, d, j = key
        rng = np.random.default_rng([self.seed, epoch, position])
        marks = [time.process_time()]
        sample = draw(self.datasets[d], j, int(rng.integers(2**62)))
        marks.append(time.process_time())
        sample = self.augment(sample, rng)
        marks.append(time.process_time())
        points, target, single = self.sampler(sample.mask, sample.objects, rng)
        marks.append(time.process_time())
        item = {"image": torch.from_numpy(sample.image).permute(2, 0, 1).contiguous(),
                "mask": torch.from_numpy(np.ascontiguousarray(target)).unsqueeze(0),
                "points": torch.from_numpy(points), "single": torch.tensor(single)}
        marks.append(time.process_time())
        return item, {phase: b - a for phase, a, b in zip(LOADER_PHASES, marks, marks[1:])}


class MixSampler(Sampler[SampleKey]):
    """Per epoch, `samples_per_epoch` draws: a dataset with probability proportional to its weight, then an image
    uniformly; this process takes positions rank, rank + world_size, ... (the distributed share)."""

    def __init__(self, sizes: list[int], weights: list[float], samples_per_epoch: int, seed: int,
                 rank: int = 0, world_size: int = 1) -> None:
        if any(s == 0 for s in sizes):
            raise ValueError(f"every training dataset must have samples; sizes {sizes}")
        self.sizes, self.seed, self.rank, self.world_size = np.array(sizes), seed, rank, world_size
        total = float(sum(weights))
        if total <= 0 or any(w < 0 for w in weights):
            raise ValueError(f"dataset weights must be >= 0 with a positive sum, got {weights}")
        self.probs = np.array(weights, dtype=np.float64) / total
        self.per_rank = samples_per_epoch // world_size
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose draws __iter__ yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self) -> Iterator[SampleKey]:
        n = self.per_rank * self.world_size
        rng = np.random.default_rng([self.seed, self.epoch])
        datasets = rng.choice(len(self.sizes), size=n, p=self.probs)
        indices = (rng.random(n) * self.sizes[datasets]).astype(np.int64)
        for position in range(self.rank, n, self.world_size):
            yield self.epoch, position, int(datasets[position]), int(indices[position])


def training_loader(train_set: TrainingSet, weights: list[float], cfg, *, rank: int = 0, world_size: int = 1,
                    pin_memory: bool = False) -> DataLoader:
    """The trainer's loader: this process's share of each epoch's mix draws, `cfg.num_workers` spawned workers."""
    sampler = MixSampler([len(d) for d in train_set.datasets], weights, cfg.samples_per_epoch, cfg.seed, rank,
                         world_size)
    # spawned workers: forked ones can deadlock on thread pools (OpenCV, OpenMP) the parent has already used
    return DataLoader(train_set, batch_size=cfg.batch_size // world_size, sampler=sampler, drop_last=True,
                      generator=torch.Generator().manual_seed(cfg.seed), num_workers=cfg.num_workers,
                      persistent_workers=cfg.num_workers > 0,
                      multiprocessing_context="spawn" if cfg.num_workers > 0 else None,
                      worker_init_fn=worker_init, pin_memory=pin_memory)


def check_val_name(spec: str, exclude: tuple[str, ...] = ()) -> str:
    """The canonical dataset name of a validation spec; GrabCut, Berkeley and the `exclude`d sets are refused."""
    name = canonical_name(parse_dataset_spec(spec)[0])
    if name in EVALUATION_ONLY or name in {canonical_name(parse_dataset_spec(e)[0]) for e in exclude}:
        raise ValueError(f"--val {spec}: {name} is an evaluation benchmark; validate on a held-out part "
                         f"of a training-scale dataset (e.g. COCO_MVal, BSDS500)")
    return name


class SampleList(list):
    """A named list of `Sample`s, usable as an evaluation dataset (`iseg.evaluation.evaluate`)."""

    def __init__(self, name: str, samples: list[Sample]) -> None:
        super().__init__(samples)
        self.name = name


def validation_samples(cfg, protected: list[Fingerprints]) -> tuple[SampleList, list[Fingerprints]]:
    """(the held-out validation samples of `cfg.val`, their photos' fingerprints as a one-item list), none of them
    a `protected` photo. One sample per photo: a photo's objects are never split between validation and training."""
    val_set = open_dataset(cfg.val, data_config=cfg.data_config, options=cfg.data_options, per_instance=False,
                           min_area=cfg.min_object_area)
    clean = without_photos(val_set, protected, f"validation set {cfg.val}")
    allowed = list(getattr(clean, "indices", range(len(val_set))))
    picked = [allowed[n] for n in held_out([image_ids(val_set)[j] for j in allowed], cfg.val_size)]
    name = canonical_name(parse_dataset_spec(cfg.val)[0])
    samples = SampleList(f"val_{name}", [draw(val_set, j, cfg.seed + j) for j in picked])
    return samples, [dataset_fingerprints(Subset(val_set, picked))]


def build_data(cfg) -> tuple[TrainingSet, list[float], SampleList]:
    """(training set, dataset weights, validation samples) for a TrainConfig. Training never sees a validation
    photo: the held-out images are left out of every training set by content, as the evaluation photos are."""
    protected = evaluation_fingerprints(cfg.exclude, cfg.data_config)
    val_samples, val_prints = SampleList("val", []), []
    if cfg.val:
        check_val_name(cfg.val, cfg.exclude)
        val_samples, val_prints = validation_samples(cfg, protected)
    datasets = []
    for spec in cfg.data:
        dataset = open_dataset(spec, data_config=cfg.data_config, options=cfg.data_options, per_instance=False,
                               min_area=cfg.min_object_area)
        datasets.append(without_photos(dataset, protected + val_prints, f"training set {spec}"))
    return (TrainingSet(datasets, cfg.augment, cfg.sampler, cfg.seed), [float(w) for w in cfg.data.values()],
            val_samples)


def worker_init(_: int) -> None:
    """DataLoader worker setup: one thread for torch and OpenCV."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)

