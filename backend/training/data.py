"""Training, validation and test batches from a dataset's decoded uint8 cache, on the device, ready for the model.

Every image is decoded once (``backend.data.cache``) into an (N, S, S, 3) uint8 array; no PNG is
decoded per epoch. From there a batch reaches the model along one of two paths:

- **batch path** (no DataLoader): the uint8 cache lives on the device (the GPU's memory on CUDA), a
  batch is gathered by index, normalised there and flipped there (``gpu_flip_batch``). Used for the
  validation and test splits always, and for training when the augmentation is ``none`` or, on CUDA, ``light``:
  there the light preset is reduced to its horizontal flip, since a worker round trip for a small
  affine jitter costs far more GPU time than it is worth (``TARGETS.md``: 99.5% of the model-only
  rate against 4-18%).
- **worker path**: a ``Dataset`` over the uint8 array applies the albumentations preset of each
  sample's class (per-class severity) in DataLoader workers; the uint8 batch crosses to the device
  and is normalised there. Persistent workers when ``workers > 0``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from backend.data.cache import load_split_caches
from backend.data.dataset import DatasetInfo
from backend.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    gpu_flip_batch,
    severity_presets,
    to_tensor_batch,
    train_transform,
)
from backend.device import Runtime
from backend.training.regularize import build_sampler

NORMALIZATION = {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
EVAL_BATCH_SIZE = 128

# Presets the batch path reproduces on the device, as (p_horizontal, p_vertical) flip probabilities.
BATCH_FLIPS = {"none": (0.0, 0.0), "light": (0.5, 0.0)}

Batch = tuple[torch.Tensor, torch.Tensor]  # normalised float (N, 3, S, S) on the device, int64 labels


class AugmentedImages(Dataset):
    """Images of a uint8 (N, S, S, 3) cache, each augmented with the albumentations pipeline of its class."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transforms: Sequence, targets: np.ndarray | None = None):
        self.images = images
        self.labels = labels
        self.transforms = list(transforms)  # one albumentations Compose per label
        self.targets = targets  # (N, C) soft targets (distillation), else None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple:
        """``(image, label)``, or ``(image, label, soft target)`` when distilling."""
        label = int(self.labels[index])
        image = self.transforms[label](image=self.images[index])["image"]
        return (image, label) if self.targets is None else (image, label, self.targets[index])

    def reseed(self, seed: int) -> None:
        """Give this process's copies of the pipelines their own random stream (DataLoader workers)."""
        for offset, transform in enumerate({id(t): t for t in self.transforms}.values()):
            transform.set_random_seed(seed + offset)


def _seed_worker(worker_id: int) -> None:
    """worker_init_fn: torch gives each worker its own seed; albumentations' pipelines take it too."""
    info = torch.utils.data.get_worker_info()
    info.dataset.reseed(info.seed % 2**31)


@dataclass
class TrainingData:
    """The decoded splits of one dataset and how their batches reach the device."""

    class_names: list[str]
    train_labels: np.ndarray
    val_labels: np.ndarray
    test_labels: np.ndarray
    test_files: list[str]
    batch_size: int
    runtime: Runtime
    train_images: torch.Tensor | None  # uint8 cache on the device (batch path), else None
    val_images: torch.Tensor
    test_images: torch.Tensor
    loader: DataLoader | None  # worker path, else None
    flips: tuple[float, float]
    sampler_name: str
    generator: torch.Generator  # shuffling / weighted draws (CPU)
    flip_generator: torch.Generator  # flips, on the batch's device
    path: str  # one line for the log: which path and why
    train_targets: torch.Tensor | None = None  # (N, C) float soft targets on the device (distillation), else None

    @property
    def steps_per_epoch(self) -> int:
        n = len(self.train_labels)
        return n // self.batch_size if drops_last(n, self.batch_size) else 1

    def train_batches(self) -> Iterator[Batch]:
        """One epoch of augmented, normalised training batches on the device: ``(images, labels)``,
        plus each image's soft target row when ``train_targets`` is set (distillation)."""
        if self.loader is not None:
            for images, labels, *targets in self.loader:
                yield (self._to_model(images), labels.to(self.runtime.device, non_blocking=True),
                       *(t.to(self.runtime.device, non_blocking=True) for t in targets))  # fmt: skip
            return
        order = torch.as_tensor(list(build_sampler(self.sampler_name, self.train_labels, self.generator)))
        labels = torch.as_tensor(self.train_labels)
        for step in range(self.steps_per_epoch):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            images = self._to_model(self.train_images[index.to(self.train_images.device)])
            if any(self.flips):
                images = gpu_flip_batch(images, *self.flips, generator=self.flip_generator)
            batch_labels = labels[index].to(self.runtime.device, non_blocking=True)
            if self.train_targets is None:
                yield images, batch_labels
            else:
                yield images, batch_labels, self.train_targets[index.to(self.train_targets.device)]

    def eval_batches(self, split: str, batch_size: int = EVAL_BATCH_SIZE) -> Iterator[Batch]:
        """A split ("train", "val" or "test") in order, unaugmented, normalised on the device."""
        images_uint8, labels = self._split(split)
        labels = torch.as_tensor(labels)
        for start in range(0, len(labels), batch_size):
            images = self._to_model(images_uint8[start : start + batch_size])
            yield images, labels[start : start + batch_size].to(self.runtime.device, non_blocking=True)

    def _split(self, split: str) -> tuple[torch.Tensor | np.ndarray, np.ndarray]:
        if split == "train":  # the worker path keeps train's uint8 cache in its Dataset, on the CPU
            images = self.train_images if self.train_images is not None else self.loader.dataset.images
            return images, self.train_labels
        if split == "val":
            return self.val_images, self.val_labels
        if split == "test":
            return self.test_images, self.test_labels
        raise ValueError(f"unknown split {split!r}; choose one of: train, val, test")

    def _to_model(self, images_uint8: torch.Tensor) -> torch.Tensor:
        return to_model_input(images_uint8, self.runtime)


def drops_last(num_images: int, batch_size: int) -> bool:
    """Drop a ragged final batch (a batch of one breaks BatchNorm) unless the set is one batch."""
    return num_images > batch_size


def to_model_input(images_uint8: torch.Tensor | np.ndarray, runtime: Runtime) -> torch.Tensor:
    """uint8 NHWC -> normalised float NCHW on the runtime's device and memory format."""
    return to_tensor_batch(images_uint8, IMAGENET_MEAN, IMAGENET_STD, runtime.device, runtime.channels_last)


def class_presets(config, train_counts: Sequence[int]) -> list[str]:
    """The augmentation preset of each class: the config's, or per-class severity's."""
    if config.severity:
        return severity_presets(list(train_counts), config.augmentation)
    return [config.augmentation] * len(train_counts)


def uses_batch_path(presets: Sequence[str], runtime: Runtime) -> bool:
    """True when the device can do the whole augmentation itself (see the module docstring)."""
    kinds = set(presets)
    if kinds == {"none"}:
        return True
    return runtime.device.type == "cuda" and len(kinds) == 1 and kinds <= set(BATCH_FLIPS)


def build_training_data(config, split: DatasetInfo, runtime: Runtime, *,
                        train_targets: np.ndarray | None = None) -> TrainingData:  # fmt: skip
    """Decode (or load the cached) splits at ``config.image_size``, prepared as ``config.preprocessing()``
    says (the plot-area crop, dark themes inverted), and set up their batches; ``train_targets``
    (N, C), when given, travel with their training images (distillation)."""
    train_labels, val_labels, test_labels = (np.array([s.label for s in samples], dtype=np.int64)
                                             for samples in (split.train, split.val, split.test))  # fmt: skip
    caches = load_split_caches({"train": split.train, "val": split.val, "test": split.test}, config.image_size,
                               config.preprocessing())  # fmt: skip
    train_cache, val_cache, test_cache = caches["train"], caches["val"], caches["test"]
    presets = class_presets(config, np.bincount(train_labels, minlength=len(split.classes)))
    generator = torch.Generator().manual_seed(config.seed)
    flip_generator = torch.Generator(device=runtime.device).manual_seed(config.seed)
    batch_path = uses_batch_path(presets, runtime)
    common = dict(
        class_names=list(split.classes), train_labels=train_labels, val_labels=val_labels, test_labels=test_labels,
        test_files=[str(s.path) for s in split.test], batch_size=config.batch_size, runtime=runtime,
        val_images=torch.from_numpy(val_cache).to(runtime.device),
        test_images=torch.from_numpy(test_cache).to(runtime.device), sampler_name=config.sampler,
        generator=generator, flip_generator=flip_generator,
    )  # fmt: skip
    if train_targets is not None:
        _require_rows(train_targets, train_labels)
    if batch_path:
        flips = BATCH_FLIPS[presets[0]]
        return TrainingData(
            **common, train_images=torch.from_numpy(train_cache).to(runtime.device), loader=None, flips=flips,
            train_targets=None if train_targets is None else torch.from_numpy(train_targets).float().to(runtime.device),
            path=f"uint8 cache on {runtime.device.type}, batches gathered and flipped there (preset {presets[0]})",
        )  # fmt: skip
    loader = _worker_loader(config, train_cache, train_labels, presets, generator, runtime, train_targets)
    return TrainingData(
        **common, train_images=None, loader=loader, flips=(0.0, 0.0),
        path=f"DataLoader, {config.workers} worker(s), albumentations per class: {', '.join(sorted(set(presets)))}",
    )  # fmt: skip


def _require_rows(targets: np.ndarray, labels: np.ndarray) -> None:
    if targets.ndim != 2 or len(targets) != len(labels):
        raise ValueError(f"train_targets must be one row per training image ({len(labels)}), got shape {targets.shape}")


def _worker_loader(config, images: np.ndarray, labels: np.ndarray, presets: Sequence[str],
                   generator: torch.Generator, runtime: Runtime,
                   targets: np.ndarray | None = None) -> DataLoader:  # fmt: skip
    """A DataLoader applying each class's albumentations preset to the uint8 cache in workers."""
    by_preset = {name: train_transform(name, config.image_size, seed=config.seed, polarity=config.polarity)
                 for name in set(presets)}  # fmt: skip
    dataset = AugmentedImages(images, labels, [by_preset[name] for name in presets], targets)
    sampler = build_sampler(config.sampler, labels, generator)
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.workers,
        persistent_workers=config.workers > 0,
        worker_init_fn=_seed_worker if config.workers > 0 else None,
        pin_memory=runtime.device.type == "cuda",
        drop_last=drops_last(len(labels), config.batch_size),
    )
