"""Training, validation and test batches for a series model (input kind "series"), from each plot's CSV.

A series model trains on **the same split as the image models**: the dataset is scanned and
de-duplicated exactly as for them (``load_split``: PNG files, sha256 of their bytes), and each
sample's PNG is then paired with its CSV, which holds the series the plot was drawn from. So a
series run's test items are the image runs' test items: its stored predictions carry the PNG's
``item_hash`` and Compare pairs the two runs item by item.

Where a sample's CSV is found (:func:`csv_for_png`), first match wins:

1. the dataset's ``manifest.json`` (``backend generate`` writes ``png`` and ``csv`` for every sample:
   ``train/<class>/<id>.png`` <-> ``csv/train/<class>/<id>.csv``);
2. ``<id>.csv`` beside ``<id>.png``;
3. ``<root>/csv/<same relative path>.csv``.

Every CSV is parsed by ``backend.data.csvseries.read_series_csv`` (what prediction uses) and turned
into the model's (3, length) input by ``backend.models.series1d.series_to_input``, once, before the
first epoch; batches are gathered from that float32 array on the device. Augmentation: preset
``none`` = none; any other preset = each training series reversed in time with probability 1/2 and
negated with probability 1/2 (every class of the generator keeps its label under both), and, with
probability :data:`PLOT_READ_PROBABILITY`, replaced by the series read back out of the sample's own
PNG (``backend.data.digitize.digitize_plot``, as prediction reads an uploaded plot image): the model
learns what a series read from a plot looks like (pixel-column resolution, the line's width, several
samples squeezed into one column), so a PNG given to a series model scores close to its CSV
(``docs/DIGITIZE.md``). Those series are read once and cached beside the image caches (keyed by the
PNGs' contents, the length and :data:`PLOT_READ_VERSION`); a PNG whose line cannot be read keeps its
CSV. Validation and test always read the CSVs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from backend import config as paths_config
from backend.data.cache import _file_digest, _save_atomic
from backend.data.csvseries import CSVError, read_series_csv
from backend.data.dataset import MANIFEST, DatasetInfo
from backend.data.digitize import digitize_plot
from backend.data.images import ImageError, load_image_rgb
from backend.device import Runtime
from backend.models.series1d import DEFAULT_LENGTH, negate_series, series_to_input
from backend.training.config import ConfigError
from backend.training.regularize import build_sampler

EVAL_BATCH_SIZE = 256
PLOT_READ_PROBABILITY = 0.5  # share of training series replaced by their PNG's line read back (augmentation on)
PLOT_READ_VERSION = 3  # bump when backend.data.digitize changes what it reads, so old caches are not reused
# 3: plot-area finder 3 (frameless plots read inside their line's extent, fivethirtyeight past its grid)
_MAX_LISTED = 5

Batch = tuple[torch.Tensor, torch.Tensor]


class MissingSeries(ConfigError):
    """A dataset whose images have no CSV series beside them: a series model cannot train on it."""


def csv_index(root: Path) -> dict[Path, Path]:
    """PNG path -> CSV path from ``root/manifest.json`` (empty when there is none or it lists no pairs)."""
    manifest = Path(root) / MANIFEST
    try:
        samples = json.loads(manifest.read_text(encoding="utf-8")).get("samples", [])
    except (OSError, ValueError, AttributeError):
        return {}
    index = {}
    for sample in samples if isinstance(samples, list) else []:
        if isinstance(sample, dict) and isinstance(sample.get("png"), str) and isinstance(sample.get("csv"), str):
            index[(Path(root) / sample["png"]).resolve()] = Path(root) / sample["csv"]
    return index


def csv_for_png(png: Path, root: Path, index: dict[Path, Path] | None = None) -> Path | None:
    """The CSV holding the series ``png`` was drawn from (module docstring), or None."""
    png, root = Path(png), Path(root)
    candidates = []
    if index:
        listed = index.get(png.resolve())
        if listed is not None:
            candidates.append(listed)
    candidates.append(png.with_suffix(".csv"))
    try:
        candidates.append(root / "csv" / png.relative_to(root).with_suffix(".csv"))
    except ValueError:
        pass
    return next((path for path in candidates if path.is_file()), None)


def series_files(split: DatasetInfo, splits: Sequence[str] = ("train", "val", "test")) -> dict[str, list[Path]]:
    """The CSV of every sample of ``splits`` (same order); :class:`MissingSeries` names the images without one."""
    index = csv_index(split.root)
    found: dict[str, list[Path]] = {}
    missing: list[str] = []
    total = 0
    for name in splits:
        paths = []
        for sample in getattr(split, name):
            total += 1
            path = csv_for_png(sample.path, split.root, index)
            if path is None:
                missing.append(_relative(sample.path, split.root))
            paths.append(path)
        found[name] = paths
    if missing:
        listed = ", ".join(missing[:_MAX_LISTED]) + (", ..." if len(missing) > _MAX_LISTED else "")
        raise MissingSeries(
            f"a series model trains on the CSV each plot was drawn from, and {len(missing)} of the {total} images "
            f"of dataset {split.root} have none ({listed}); make the dataset with `python -m backend generate` "
            "(it writes csv/<split>/<class>/<id>.csv), or put <id>.csv beside each <id>.png, or choose an image model"
        )
    return found


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def load_series_inputs(paths: Sequence[Path], length: int, workers: int = 4) -> np.ndarray:
    """(N, 3, length) float32 model inputs of the CSV files, parsed as prediction parses them."""

    def one(path: Path) -> np.ndarray:
        try:
            return series_to_input(read_series_csv(Path(path)).values, length)
        except (CSVError, ValueError, OSError) as e:
            raise ConfigError(f"cannot read the series {path}: {e}") from e

    if not paths:
        return np.zeros((0, 3, length), dtype=np.float32)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return np.stack(list(pool.map(one, paths)))


def load_plot_read_inputs(pngs: Sequence[Path], fallback: np.ndarray, length: int,
                          workers: int = 4) -> tuple[np.ndarray, int]:  # fmt: skip
    """(N, 3, length) float32 inputs of the series read back out of each PNG, and how many PNGs had no
    readable line (those rows are ``fallback``'s: the CSV's input). Cached under ``cache_dir()`` as one
    array whose unreadable rows are NaN."""
    if not len(pngs):
        return fallback.copy(), 0
    key = hashlib.sha1(f"plot-read-v{PLOT_READ_VERSION}:{length}".encode())
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for digest in pool.map(_file_digest, pngs):
            key.update(digest.encode())
    target = Path(paths_config.cache_dir()) / f"series-read-{length}-{key.hexdigest()}.npy"
    read = _load_read_cache(target, fallback.shape)
    if read is None:

        def one(path: Path) -> np.ndarray:
            try:
                return series_to_input(digitize_plot(load_image_rgb(Path(path))).values, length)
            except (ValueError, ImageError, OSError):
                return np.full(fallback.shape[1:], np.nan, dtype=np.float32)  # no line: the CSV stands in

        with ThreadPoolExecutor(max_workers=workers) as pool:
            read = np.stack(list(pool.map(one, pngs))).astype(np.float32)
        _save_atomic(target, read)
    unreadable = np.isnan(read).any(axis=(1, 2))
    return np.where(unreadable[:, None, None], fallback, read).astype(np.float32), int(unreadable.sum())


def _load_read_cache(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached read-back inputs if present and well-formed; None (read again) otherwise."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return array if array.shape == shape and array.dtype == np.float32 else None


def augment_series(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Reverse each series in time (p=1/2) and negate it (p=1/2; min and max trade places)."""
    n = batch.shape[0]
    reverse = torch.rand(n, generator=generator, device=generator.device) < 0.5
    negate = torch.rand(n, generator=generator, device=generator.device) < 0.5
    reverse, negate = reverse.to(batch.device), negate.to(batch.device)
    batch = torch.where(reverse.view(n, 1, 1), batch.flip(-1), batch)
    return torch.where(negate.view(n, 1, 1), negate_series(batch), batch)


@dataclass
class SeriesTrainingData:
    """The series of one dataset's splits as model inputs on the device (same interface as ``TrainingData``)."""

    class_names: list[str]
    train_labels: np.ndarray
    val_labels: np.ndarray
    test_labels: np.ndarray
    test_files: list[str]
    batch_size: int
    runtime: Runtime
    series_length: int
    train_inputs: torch.Tensor
    val_inputs: torch.Tensor
    test_inputs: torch.Tensor
    augment: bool
    sampler_name: str
    train_read_inputs: torch.Tensor | None  # the training PNGs' lines read back (augmentation), else None
    generator: torch.Generator
    path: str
    checkpoint_fields: dict = field(default_factory=dict)
    train_targets: torch.Tensor | None = None  # (N, C) float soft targets on the device (distillation), else None

    @property
    def steps_per_epoch(self) -> int:
        n = len(self.train_labels)
        return n // self.batch_size if n > self.batch_size else 1

    def train_batches(self) -> Iterator[Batch]:
        """One epoch of (augmented) training batches on the device: ``(inputs, labels)``, plus each
        series' soft target row when ``train_targets`` is set (distillation)."""
        order = torch.as_tensor(list(build_sampler(self.sampler_name, self.train_labels, self.generator)))
        labels = torch.as_tensor(self.train_labels)
        for step in range(self.steps_per_epoch):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            inputs = self.train_inputs[index.to(self.train_inputs.device)]
            if self.train_read_inputs is not None:
                read = torch.rand(len(index), generator=self.generator, device=self.generator.device)
                read = (read < PLOT_READ_PROBABILITY).to(inputs.device).view(-1, 1, 1)
                inputs = torch.where(read, self.train_read_inputs[index.to(inputs.device)], inputs)
            if self.augment:
                inputs = augment_series(inputs, self.generator)
            batch_labels = labels[index].to(self.runtime.device, non_blocking=True)
            if self.train_targets is None:
                yield inputs, batch_labels
            else:
                yield inputs, batch_labels, self.train_targets[index.to(self.train_targets.device)]

    def eval_batches(self, split: str, batch_size: int = EVAL_BATCH_SIZE) -> Iterator[Batch]:
        """A split ("train", "val" or "test") in order, unaugmented."""
        inputs, labels = self._split(split)
        labels = torch.as_tensor(labels)
        for start in range(0, len(labels), batch_size):
            yield inputs[start : start + batch_size], labels[start : start + batch_size].to(self.runtime.device)

    def _split(self, split: str) -> tuple[torch.Tensor, np.ndarray]:
        if split in ("train", "val", "test"):
            return getattr(self, f"{split}_inputs"), getattr(self, f"{split}_labels")
        raise ValueError(f"unknown split {split!r}; choose one of: train, val, test")


def build_series_training_data(config, split: DatasetInfo, runtime: Runtime, *,
                               train_targets: np.ndarray | None = None) -> SeriesTrainingData:  # fmt: skip
    """Read every sample's CSV into model inputs (``config.model_kwargs["length"]`` points) on the
    device; ``train_targets`` (N, C), when given, travel with their training series (distillation)."""
    length = int(config.model_kwargs.get("length", DEFAULT_LENGTH))
    files = series_files(split)
    labels = {name: np.array([s.label for s in getattr(split, name)], dtype=np.int64) for name in files}
    arrays = {name: load_series_inputs(paths, length) for name, paths in files.items()}
    inputs = {name: torch.from_numpy(array).to(runtime.device) for name, array in arrays.items()}
    augment = config.augmentation != "none"
    read_inputs, read_note = None, ""
    if augment:
        read, unreadable = load_plot_read_inputs([s.path for s in split.train], arrays["train"], length)
        read_inputs = torch.from_numpy(read).to(runtime.device)
        read_note = (f", half of the training series read back from their plots"
                     f"{f' ({unreadable} plots with no readable line keep their CSV)' if unreadable else ''}")  # fmt: skip
    return SeriesTrainingData(
        class_names=list(split.classes), train_labels=labels["train"], val_labels=labels["val"],
        test_labels=labels["test"], test_files=[str(s.path) for s in split.test], batch_size=config.batch_size,
        runtime=runtime, series_length=length, train_inputs=inputs["train"], val_inputs=inputs["val"],
        test_inputs=inputs["test"], augment=augment, sampler_name=config.sampler, train_read_inputs=read_inputs,
        generator=torch.Generator().manual_seed(config.seed),
        path=f"CSV series beside each plot, {length} points x 3 channels on {runtime.device.type}"
             f"{', time reversal and sign flips' if augment else ''}{read_note}",
        checkpoint_fields={"input_kind": "series", "series_length": length},
        train_targets=None if train_targets is None else torch.from_numpy(train_targets).float().to(runtime.device),
    )  # fmt: skip


def check_series_dataset(config, split: DatasetInfo) -> None:
    """Before a series run starts: every sample has a CSV, and the options make sense for a series."""
    if config.mixup_alpha > 0 or config.cutmix_alpha > 0:
        raise ConfigError("mixup_alpha and cutmix_alpha mix images; a series model cannot use them: set both to 0")
    series_files(split)
