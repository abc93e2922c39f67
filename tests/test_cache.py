"""The decoded uint8 cache: same pixels as the prediction path, decoded once, keyed by content."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend import config
from backend.data.cache import load_dataset_cache
from backend.data.dataset import Sample
from backend.data.images import ImageError, load_image_rgb, resize_rgb

SIZE = 16


def plot_like(seed: int, h: int = 30, w: int = 40) -> np.ndarray:
    """White background with a random dark polyline-ish band, like a small plot."""
    rng = np.random.default_rng(seed)
    image = np.full((h, w, 3), 255, dtype=np.uint8)
    rows = np.clip(np.cumsum(rng.integers(-2, 3, w)) + h // 2, 0, h - 1)
    image[rows, np.arange(w)] = rng.integers(0, 120, 3)
    return image


def save(image: Image.Image, path: Path, fmt: str, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt, **kwargs)
    return path


@pytest.fixture
def mixed_files(tmp_path) -> list[Path]:
    """RGB, RGBA, opaque RGBA, greyscale and palette PNGs, a JPEG and a BMP."""
    files = [
        save(Image.fromarray(plot_like(i)), tmp_path / f"rgb{i}.png", "PNG", compress_level=i % 10) for i in range(4)
    ]
    rgba = np.dstack([plot_like(10), np.full((30, 40), 128, np.uint8)])
    files.append(save(Image.fromarray(rgba, "RGBA"), tmp_path / "rgba.png", "PNG"))
    opaque = np.dstack([plot_like(15), np.full((30, 40), 255, np.uint8)])  # like matplotlib's savefig
    files.append(save(Image.fromarray(opaque, "RGBA"), tmp_path / "opaque.png", "PNG"))
    files.append(save(Image.fromarray(plot_like(11)).convert("L"), tmp_path / "grey.png", "PNG"))
    files.append(save(Image.fromarray(plot_like(12)).quantize(8), tmp_path / "palette.png", "PNG"))
    files.append(save(Image.fromarray(plot_like(13)), tmp_path / "photo.jpg", "JPEG"))
    files.append(save(Image.fromarray(plot_like(14)), tmp_path / "bitmap.bmp", "BMP"))
    return files


def expected(paths: list[Path], size: int = SIZE) -> np.ndarray:
    """What prediction would feed the model: load_image_rgb + resize_rgb, file by file."""
    return np.stack([resize_rgb(load_image_rgb(path), size) for path in paths])


def damage_pixel_data(png: bytes) -> bytes:
    """The same PNG with its zlib stream's compression method changed and every CRC recomputed:
    headers and checksums pass, only decompressing the pixels fails (libpng: "unknown compression
    method"; torchvision's decoder used to crash the whole process on it)."""
    out, pos = bytearray(png[:8]), 8
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], bytearray(png[pos + 8 : pos + 8 + length])
        if kind == b"IDAT" and body:
            body[0] = (body[0] & 0xF0) | 0x0F  # CM = 15: not deflate
        out += struct.pack(">I", length) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        pos += 12 + length
    return bytes(out)


def test_png_with_damaged_pixel_data_is_an_error_naming_the_file_not_a_crash(mixed_files, tmp_path):
    bad = tmp_path / "damaged.png"
    bad.write_bytes(damage_pixel_data(mixed_files[0].read_bytes()))
    with pytest.raises(ImageError, match="damaged.png"):
        load_dataset_cache([*mixed_files, bad], SIZE, cache_dir=tmp_path / "cache", workers=2)


def test_cache_equals_the_prediction_path_for_every_kind_of_file(mixed_files, tmp_path):
    samples = [Sample(path, i % 2) for i, path in enumerate(mixed_files)]
    images = load_dataset_cache(samples, SIZE, cache_dir=tmp_path / "cache", workers=2)
    assert images.shape == (len(mixed_files), SIZE, SIZE, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, expected(mixed_files))


def test_second_call_loads_from_disk_without_decoding(mixed_files, tmp_path):
    cache = tmp_path / "cache"
    first = load_dataset_cache(mixed_files, SIZE, cache_dir=cache)
    (npy,) = cache.glob("*.npy")
    assert npy.name.startswith(f"{SIZE}px-")
    # Overwrite the cached pixels: if the second call decoded the files it would not see this.
    marked = first.copy()
    marked[0, 0, 0] = (1, 2, 3)
    np.save(npy, marked)
    second = load_dataset_cache(mixed_files, SIZE, cache_dir=cache)
    assert tuple(second[0, 0, 0]) == (1, 2, 3)
    assert list(cache.iterdir()) == [npy]  # nothing new written, no temp file left


def test_changed_file_or_size_makes_a_new_entry(tmp_path):
    paths = [save(Image.fromarray(plot_like(i)), tmp_path / f"{i}.png", "PNG") for i in range(3)]
    cache = tmp_path / "cache"
    load_dataset_cache(paths, SIZE, cache_dir=cache)
    save(Image.fromarray(plot_like(99)), paths[1], "PNG")
    changed = load_dataset_cache(paths, SIZE, cache_dir=cache)
    np.testing.assert_array_equal(changed, expected(paths))
    bigger = load_dataset_cache(paths, 24, cache_dir=cache)
    assert bigger.shape == (3, 24, 24, 3)
    assert len(list(cache.glob("*.npy"))) == 3


def test_damaged_cache_file_is_rebuilt(tmp_path):
    paths = [save(Image.fromarray(plot_like(i)), tmp_path / f"{i}.png", "PNG") for i in range(2)]
    cache = tmp_path / "cache"
    load_dataset_cache(paths, SIZE, cache_dir=cache)
    (npy,) = cache.glob("*.npy")
    npy.write_bytes(npy.read_bytes()[:100])
    np.testing.assert_array_equal(load_dataset_cache(paths, SIZE, cache_dir=cache), expected(paths))


def test_default_location_is_the_config_cache_dir(tmp_path):
    path = save(Image.fromarray(plot_like(42, 20, 20)), tmp_path / "x.png", "PNG")
    load_dataset_cache([path], 12)
    assert any(config.cache_dir().glob("12px-*.npy"))


def test_unreadable_images_fail_with_every_file_named(tmp_path):
    good = save(Image.fromarray(plot_like(0)), tmp_path / "good.png", "PNG")
    text = tmp_path / "text.png"
    text.write_text("timestamp,value\n")
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:60])
    with pytest.raises(ImageError) as raised:
        load_dataset_cache([good, text, cut], SIZE, cache_dir=tmp_path / "cache")
    message = str(raised.value)
    assert message.startswith("2 image(s) could not be read")
    assert f"{text}: image is not a PNG" in message and "is a truncated PNG" in message.split(f"{cut}:")[1]
    assert str(good) + ":" not in message
    assert not list((tmp_path / "cache").glob("*.npy"))


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "gone.png"
    with pytest.raises(ImageError, match=f"1 image\\(s\\) could not be read: {missing}: file does not exist"):
        load_dataset_cache([missing], SIZE, cache_dir=tmp_path / "cache")


def test_worker_count_does_not_change_the_result(mixed_files, tmp_path):
    one = load_dataset_cache(mixed_files, SIZE, cache_dir=tmp_path / "a", workers=1)
    four = load_dataset_cache(mixed_files, SIZE, cache_dir=tmp_path / "b", workers=4)
    np.testing.assert_array_equal(one, four)


def test_bad_image_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="positive whole number"):
        load_dataset_cache([], 0, cache_dir=tmp_path)
