"""Decoded uint8 cache of a dataset at one image size: decode every file once, never per epoch.

Decoding an 800x600 plot PNG and resizing it costs milliseconds; doing it every epoch starves a GPU
(``TARGETS.md``: 141-640 img/s against 3,600 with a decoded cache). Here every file is decoded once
with a thread pool into one ``(N, H, W, 3)`` uint8 array, saved as ``.npy`` under
``config.cache_dir()`` and keyed by a SHA-1 of the files' contents, the size and
:data:`CACHE_VERSION`: a changed file or size makes a new key, an unchanged set loads from disk.

Pixels are exactly those of ``images.load_image_rgb`` + ``plotarea.prepare_image`` (the optional
plot-area crop, ``images.resize_rgb``, the optional inversion of dark themes): what prediction uses.
Which of those steps apply is one ``preprocessing`` mapping (``TrainConfig.preprocessing()``, the
checkpoint's ``preprocessing``), part of the cache key.
Every file goes through PIL. ``torchvision.io.decode_png`` was about twice as fast, but a PNG whose
compressed pixel data is damaged (checksums intact) makes libpng's error path crash the whole
process, and datasets are user input: a training run must fail with a message, not vanish. The
decode happens once per dataset and size, so the safe decoder costs seconds, not throughput.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from backend import config
from backend.data.images import ImageError, load_image_rgb
from backend.data.plotarea import check_preprocessing, input_shape, prepare_image

CACHE_VERSION = 2  # bump when decoding or resizing changes, so old caches are not reused
_MAX_LISTED = 10  # unreadable files named in one error message


class UnreadableImages(ImageError):
    """Dataset files that cannot be decoded; ``failures`` maps a split name ("" if unnamed) to its
    ``"path: reason"`` lines, and the message counts and names them."""

    def __init__(self, failures: Mapping[str, list[str]]):
        self.failures = {split: list(lines) for split, lines in failures.items() if lines}
        lines = [line for split_lines in self.failures.values() for line in split_lines]
        per_split = ", ".join(f"{len(found)} in {split}" for split, found in self.failures.items() if split)
        listed = "; ".join(lines[:_MAX_LISTED])
        more = f"; and {len(lines) - _MAX_LISTED} more" if len(lines) > _MAX_LISTED else ""
        super().__init__(
            f"{len(lines)} image(s) could not be read{f' ({per_split})' if per_split else ''}: {listed}{more}. "
            "Remove or replace them (the Data page lists unreadable files)."
        )


def load_split_caches(
    splits: Mapping[str, Sequence], image_size: int, preprocessing: Mapping | None = None
) -> dict[str, np.ndarray]:
    """``load_dataset_cache`` of every split; unreadable files of all splits are reported together."""
    caches, failures = {}, {}
    for name, samples in splits.items():
        try:
            caches[name] = load_dataset_cache(samples, image_size, preprocessing=preprocessing)
        except UnreadableImages as e:
            failures[name] = [line for lines in e.failures.values() for line in lines]
    if failures:
        raise UnreadableImages(failures)
    return caches


def load_dataset_cache(
    samples: Sequence,
    image_size: int,
    cache_dir=None,
    workers: int | None = None,
    *,
    preprocessing: Mapping | None = None,
) -> np.ndarray:
    """Decoded images of ``samples`` (``Sample``s or paths) at ``image_size``, shape (N, H, W, 3) uint8
    (H = ``image_size``, W = ``round(image_size * aspect)``: ``plotarea.input_shape``).

    ``preprocessing`` says how each image is prepared (``backend.data.plotarea.prepare_image``: the
    ``crop`` before resizing with plot-area ``finder`` version, the ``resize`` to the ``aspect``, the
    ``polarity`` after it; missing entries as before they existed: whole images, bilinear, square,
    colours kept). It is
    part of the cache key, so different settings never share a cache file.

    Row ``i`` is ``samples[i]``. Loaded from the ``.npy`` cache when the same files were decoded at
    this size before; otherwise decoded with ``workers`` threads (default: one per CPU) and saved
    atomically. Any unreadable file raises :class:`UnreadableImages` naming every such file.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image size must be a positive whole number of pixels, got {image_size!r}")
    steps = check_preprocessing(preprocessing)
    paths = [Path(getattr(sample, "path", sample)) for sample in samples]
    workers = workers or min(32, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        digests = _run_all(pool, _file_digest, paths)
        target = Path(cache_dir or config.cache_dir()) / f"{image_size}px-{_cache_key(digests, image_size, steps)}.npy"
        shape = (len(paths), *input_shape(image_size, steps), 3)
        cached = _load_cached(target, shape)
        if cached is not None:
            return cached
        images = np.empty(shape, dtype=np.uint8)

        def decode_into(index: int) -> None:
            images[index] = decode_resized(paths[index], image_size, steps)

        _run_all(pool, decode_into, range(len(paths)), names=paths)
    _save_atomic(target, images)
    return images


def decode_resized(path: Path, image_size: int, preprocessing: Mapping | None = None) -> np.ndarray:
    """One file -> (H, W, 3) uint8 (:func:`input_shape`), exactly as prediction prepares an uploaded image."""
    return prepare_image(load_image_rgb(_read(path)), image_size, preprocessing)


def _read(path: Path) -> bytes:
    """File bytes, with a message for a missing or unreadable file."""
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        raise ImageError("file does not exist") from e
    except OSError as e:
        raise ImageError(f"cannot be read ({e.strerror or e})") from e


def _file_digest(path: Path) -> str:
    return hashlib.sha1(_read(path)).hexdigest()


def _cache_key(digests: list[str], image_size: int, preprocessing: Mapping | None = None) -> str:
    """SHA-1 of the version, the size, the crop (with the plot-area finder's version), the polarity,
    the resize, the aspect and every file's content digest, in sample order. A cache without a
    crop, an inversion, the ink resize or a non-square aspect keeps the key it had before those
    existed (and one cropped by finder 2 the key it had then)."""
    steps = check_preprocessing(preprocessing)
    crop, polarity, resize = steps["crop"], steps["polarity"], steps["resize"]
    crop_part = "" if crop == "none" else f"crop={crop}:v{steps['finder']}:"
    polarity_part = "" if polarity == "none" else f"polarity={polarity}:"
    resize_part = "" if resize == "bilinear" else f"resize={resize}:"
    aspect_part = "" if steps["aspect"] == 1 else f"aspect={steps['aspect']!r}:"
    key = hashlib.sha1(f"v{CACHE_VERSION}:{image_size}:{crop_part}{polarity_part}{resize_part}{aspect_part}".encode())
    for digest in digests:
        key.update(digest.encode())
    return key.hexdigest()


def _run_all(pool: ThreadPoolExecutor, fn, items, names=None) -> list:
    """Map ``fn`` over ``items`` in the pool; collect every ImageError and raise one listing them all."""
    items = list(items)
    names = list(names) if names is not None else items
    futures = [pool.submit(fn, item) for item in items]
    results, failures = [], []
    for name, future in zip(names, futures, strict=True):
        try:
            results.append(future.result())
        except ImageError as e:
            failures.append(f"{name}: {e}")
    if failures:
        raise UnreadableImages({"": failures})
    return results


def _load_cached(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached array if present and well-formed; None (rebuild) for a missing or damaged file."""
    if not path.is_file():
        return None
    try:
        array = np.load(path, mmap_mode=None, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return array if array.shape == shape and array.dtype == np.uint8 else None


def _save_atomic(path: Path, array: np.ndarray) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
