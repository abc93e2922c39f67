"""Augmentation presets, tensor conversion, GPU-style flips and TTA views, on small real arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.data.transforms import (
    AUGMENTATIONS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    TTA_MODES,
    LineWeight,
    gpu_flip_batch,
    severity_presets,
    to_pixels,
    to_tensor_batch,
    train_transform,
    tta_view_count,
    tta_views,
)


def plot_image(size: int, seed: int = 0) -> np.ndarray:
    """A white square with a dark random-walk line two pixels thick, like a tiny plot."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), 255, dtype=np.uint8)
    rows = np.clip(np.cumsum(rng.integers(-1, 2, size)) + size // 2, 1, size - 2)
    cols = np.arange(size)
    image[rows, cols] = (30, 60, 160)
    image[rows + 1, cols] = (30, 60, 160)
    return image


def ink(image: np.ndarray) -> np.ndarray:
    """Per-pixel distance from the image's own background colour (the median)."""
    background = np.median(image.reshape(-1, 3), axis=0)
    return np.abs(image.astype(int) - background).sum(axis=2)


def line_pixels(image: np.ndarray) -> int:
    """Pixels far from the background: what is left of the line."""
    return int((ink(image) > 90).sum())


def test_presets_are_registered():
    assert AUGMENTATIONS.names() == ["heavy", "light", "medium", "none", "plot"]
    with pytest.raises(ValueError, match="unknown augmentation preset 'wild'; choose one of: heavy, light"):
        train_transform("wild", 32)


@pytest.mark.parametrize("preset", AUGMENTATIONS.names())
@pytest.mark.parametrize("size", [32, 64])
def test_every_preset_keeps_size_and_dtype(preset, size):
    transform = train_transform(preset, size, seed=0)
    for seed in range(6):
        out = transform(image=plot_image(size, seed))["image"]
        assert out.shape == (size, size, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("preset", ["light", "medium", "heavy", "plot"])
def test_presets_change_images_and_are_seeded(preset):
    image = plot_image(64)
    draws = [train_transform(preset, 64, seed=s)(image=image)["image"] for s in range(6)]
    assert any(not np.array_equal(d, image) for d in draws)
    again = train_transform(preset, 64, seed=3)(image=image)["image"]
    np.testing.assert_array_equal(again, draws[3])


def test_none_is_the_identity():
    image = plot_image(32)
    np.testing.assert_array_equal(train_transform("none", 32)(image=image)["image"], image)


def test_plot_preset_keeps_the_line_visible():
    """Thinning, inversion, greyscale and crops must never erase the series (the label lives there)."""
    image = plot_image(64, seed=1)
    transform = train_transform("plot", 64, seed=0)
    for _ in range(40):
        out = transform(image=image)["image"]
        assert line_pixels(out) >= 0.3 * line_pixels(image)


def test_plot_preset_inverts_only_where_the_run_keeps_dark_plots():
    """Under polarity light the model never meets a dark face, so the plot preset stops making one;
    with colours as drawn (polarity none) it turns about a fifth of the light plots dark."""
    image = plot_image(64, seed=3)
    assert image.mean() > 128

    def dark_share(polarity: str) -> float:
        transform = train_transform("plot", 64, seed=0, polarity=polarity)
        return float(np.mean([transform(image=image)["image"].mean() < 128 for _ in range(200)]))

    assert 0.1 <= dark_share("none") <= 0.3
    assert dark_share("light") == 0.0
    medium = train_transform("medium", 64, seed=0, polarity="light")  # a preset without inversion: unchanged
    assert len(medium.transforms) == len(train_transform("medium", 64, seed=0).transforms)


@pytest.mark.parametrize("dark_theme", [False, True])
def test_line_weight_thickens_and_thins_on_either_theme(dark_theme):
    image = plot_image(64, seed=2)
    if dark_theme:
        image = 255 - image
    before = line_pixels(image)
    thick = LineWeight(p_thin=0.0, p=1.0)(image=image)["image"]
    thin = LineWeight(p_thin=1.0, p=1.0)(image=image)["image"]
    assert line_pixels(thick) > 1.3 * before
    assert ink(thin).sum() < 0.9 * ink(image).sum()  # lighter, thinner-looking line...
    assert line_pixels(thin) >= 0.9 * before  # ...that is still all there


def test_severity_moves_minority_classes_one_step_up():
    assert severity_presets([100, 40, 60, 10], "light") == ["light", "medium", "light", "medium"]
    assert severity_presets([100, 49, 50], "none") == ["none", "light", "none"]
    assert severity_presets([10, 1], "heavy") == ["heavy", "heavy"]
    assert severity_presets([5, 5], "medium") == ["medium", "medium"]
    with pytest.raises(ValueError, match="'plot' is not on that ladder"):
        severity_presets([10, 1], "plot")
    with pytest.raises(ValueError, match="need the class counts"):
        severity_presets([], "light")


def test_to_tensor_batch_normalises_to_nchw():
    images = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    out = to_tensor_batch(images, IMAGENET_MEAN, IMAGENET_STD, "cpu", channels_last=False)
    assert out.shape == (2, 3, 5, 7) and out.dtype == torch.float32 and out.is_contiguous()
    manual = (images.transpose(0, 3, 1, 2) / 255.0 - np.array(IMAGENET_MEAN)[:, None, None]) / np.array(IMAGENET_STD)[
        :, None, None
    ]
    np.testing.assert_allclose(out.numpy(), manual, atol=1e-5)
    from_tensor = to_tensor_batch(torch.from_numpy(images), IMAGENET_MEAN, IMAGENET_STD, "cpu", channels_last=True)
    assert from_tensor.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(from_tensor, out)


def test_to_tensor_batch_refuses_bad_batches():
    with pytest.raises(ValueError, match=r"uint8 \(N, H, W, 3\)"):
        to_tensor_batch(np.zeros((2, 3, 4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"uint8 \(N, H, W, 3\)"):
        to_tensor_batch(np.zeros((2, 4, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="std > 0"):
        to_tensor_batch(np.zeros((1, 4, 4, 3), dtype=np.uint8), std=(0.2, 0.0, 0.2))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_gpu_flip_batch_flips_each_image_or_leaves_it(dtype):
    batch = torch.arange(16 * 3 * 4 * 5).reshape(16, 3, 4, 5).to(dtype)
    torch.testing.assert_close(gpu_flip_batch(batch, 1.0, 0.0), batch.flip(3))
    torch.testing.assert_close(gpu_flip_batch(batch, 0.0, 1.0), batch.flip(2))
    torch.testing.assert_close(gpu_flip_batch(batch, 0.0, 0.0), batch)
    out = gpu_flip_batch(batch, 0.5, 0.5, generator=torch.Generator().manual_seed(0))
    kinds = set()
    for original, flipped in zip(batch, out, strict=True):
        matches = [i for i, view in enumerate((original, original.flip(2), original.flip(1), original.flip(1, 2)))
                   if torch.equal(view, flipped)]  # fmt: skip
        assert len(matches) == 1
        kinds.add(matches[0])
    assert len(kinds) >= 3  # per-image draws, not one flip for the whole batch
    again = gpu_flip_batch(batch, 0.5, 0.5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, out)


def test_gpu_flip_batch_keeps_channels_last_and_checks_probabilities():
    batch = torch.rand(4, 3, 6, 6).contiguous(memory_format=torch.channels_last)
    assert gpu_flip_batch(batch, 0.5, 0.5).is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match=r"p_vertical must be a probability in \[0, 1\]"):
        gpu_flip_batch(batch, 0.5, 1.5)


def test_tta_views_are_view_major():
    batch = torch.rand(3, 3, 4, 5)
    assert TTA_MODES.names() == ["flip4", "none"]
    assert tta_view_count("none") == 1 and tta_view_count("flip4") == 4
    torch.testing.assert_close(tta_views(batch, "none"), batch)
    views = tta_views(batch, "flip4")
    assert views.shape == (12, 3, 4, 5)
    expected = [batch, batch.flip(3), batch.flip(2), batch.flip(2, 3)]
    for v, view in enumerate(expected):
        for i in range(3):
            torch.testing.assert_close(views[v * 3 + i], view[i])
    # Callers reshape to (V, N, ...) and average over V.
    torch.testing.assert_close(views.view(4, 3, 3, 4, 5)[2], batch.flip(2))
    with pytest.raises(ValueError, match="unknown TTA mode 'ten_crop'; choose one of: flip4, none"):
        tta_views(batch, "ten_crop")


def test_tta_views_keep_channels_last():
    batch = torch.rand(2, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    assert tta_views(batch, "flip4").is_contiguous(memory_format=torch.channels_last)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_batch_path_matches_the_cpu():
    """The GPU-cache pipeline: uint8 batch to the device, normalise, flip there, TTA views there."""
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    cpu = to_tensor_batch(images, device="cpu", channels_last=True)
    gpu_cache = torch.from_numpy(images).cuda()
    gpu = to_tensor_batch(gpu_cache, device="cuda", channels_last=True)
    assert gpu.is_cuda and gpu.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(gpu.cpu(), cpu)
    flipped = gpu_flip_batch(gpu, 1.0, 0.0, generator=torch.Generator(device="cuda").manual_seed(0))
    torch.testing.assert_close(flipped.cpu(), cpu.flip(3))
    torch.testing.assert_close(tta_views(gpu, "flip4").cpu(), tta_views(cpu, "flip4"))


def test_to_pixels_undoes_to_tensor_batch_and_clamps():
    images = np.stack([plot_image(16, seed) for seed in range(2)])
    normalised = to_tensor_batch(images)
    pixels = to_pixels(normalised)
    assert pixels.shape == (2, 3, 16, 16) and pixels.dtype == torch.float32
    torch.testing.assert_close(pixels.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1), torch.from_numpy(images))
    assert to_pixels(normalised + 100).max() == 1.0 and to_pixels(normalised - 100).min() == 0.0
    custom = to_tensor_batch(images, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    torch.testing.assert_close(to_pixels(custom, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)), pixels)
