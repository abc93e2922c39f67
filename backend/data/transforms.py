"""Every image transform the product uses: training augmentation, tensor conversion, TTA views.

- :data:`AUGMENTATIONS`: albumentations presets by name (``none``, ``light``, ``medium``, ``heavy``,
  ``plot``) working on uint8 HWC arrays at the training size and returning the same size and dtype.
  They run in DataLoader workers on the decoded cache (``backend.data.cache``).
- :func:`to_tensor_batch`: uint8 NHWC batch -> normalised float NCHW tensor on the device.
- :func:`gpu_flip_batch`: random flips of a batch already on the device, the light augmentation used
  when the cache lives on the GPU (no worker round trip).
- :data:`TTA_MODES`: test-time views of a batch, predicted in one forward pass and averaged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import albumentations as A
import cv2
import numpy as np
import torch

from backend.registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

AUGMENTATIONS: Registry = Registry("augmentation preset")
TTA_MODES: Registry = Registry("TTA mode")

# Presets from mildest to strongest; severity_presets moves minority classes one step up this ladder.
SEVERITY_LADDER = ("none", "light", "medium", "heavy")
MINORITY_FRACTION = 0.5  # a class with fewer than this fraction of the largest class's images is a minority

# Border handling for geometric transforms: repeat the edge (white margin or dark theme background)
# rather than paint black bars that no real plot has.
_EDGE = {"border_mode": cv2.BORDER_REPLICATE}


def train_transform(preset: str, image_size: int, seed: int | None = None, polarity: str = "none") -> A.Compose:
    """The albumentations pipeline of ``preset`` for images of ``image_size`` (uint8 HWC in and out).

    ``seed`` makes the pipeline reproducible. Compose keeps its own random state, so DataLoader
    workers forked from one pipeline repeat each other's draws unless each calls
    ``transform.set_random_seed(...)`` with a per-worker seed in its ``worker_init_fn``.

    ``polarity`` is the run's polarity step (``backend.data.plotarea``), applied before augmentation:
    under ``"light"`` every image the model is trained on or asked about has a light face, so a
    preset's inversion (``plot``'s ``InvertImg``) is left out: it would only teach the model a dark
    polarity it never meets, which is what the polarity step exists to spare it.
    """
    if image_size < 1:
        raise ValueError(f"image size must be a positive number of pixels, got {image_size}")
    transforms = AUGMENTATIONS.get(preset)(image_size)
    if polarity == "light":
        transforms = [t for t in transforms if not isinstance(t, A.InvertImg)]
    return A.Compose(transforms, seed=seed)


def severity_presets(counts: Sequence[int], base: str) -> list[str]:
    """Per-class preset: ``base`` for most classes, one step heavier for minority classes (seed 001).

    A class is a minority when its count is below ``MINORITY_FRACTION`` (half) of the largest
    class's count; it gets the next preset up :data:`SEVERITY_LADDER` (``heavy`` stays ``heavy``).
    Index ``i`` of the result is the preset for label ``i``.
    """
    if base not in SEVERITY_LADDER:
        raise ValueError(
            f"per-class severity steps through {', '.join(SEVERITY_LADDER)}; "
            f"{base!r} is not on that ladder: choose one of them or turn severity off"
        )
    if not counts:
        raise ValueError("severity presets need the class counts; got none")
    step = SEVERITY_LADDER.index(base)
    heavier = SEVERITY_LADDER[min(step + 1, len(SEVERITY_LADDER) - 1)]
    threshold = MINORITY_FRACTION * max(counts)
    return [heavier if count < threshold else base for count in counts]


class LineWeight(A.ImageOnlyTransform):
    """Thicken or thin the plotted lines, on a light or a dark theme (a morphological dilate/erode).

    The background is the majority colour: on a light one a minimum filter (erosion) grows the dark
    lines and a maximum filter (dilation) shrinks them; on a dark one the roles swap. albumentations'
    ``Morphological`` has a fixed operation, which on the other theme erases the line instead.
    Thinning is a 2x2 filter blended half-and-half with the original: the line's core stays and its
    edges fade, because a full filter wipes out the 1-2 px lines and tick labels of a 224 px plot.
    """

    def __init__(self, thicken_sizes: tuple[int, int] = (2, 3), p_thin: float = 0.3, p: float = 0.5):
        super().__init__(p=p)
        self.thicken_sizes = thicken_sizes
        self.p_thin = p_thin

    def get_params(self) -> dict:
        thin = self.py_random.random() < self.p_thin
        return {"thin": thin, "size": 2 if thin else self.py_random.randint(*self.thicken_sizes)}

    def apply(self, img: np.ndarray, thin: bool, size: int, **params) -> np.ndarray:
        kernel = np.ones((size, size), dtype=np.uint8)
        light_background = np.median(img) >= 128
        grow_dark = light_background != thin  # thicken on light or thin on dark: spread the dark pixels
        filtered = cv2.erode(img, kernel) if grow_dark else cv2.dilate(img, kernel)
        return cv2.addWeighted(img, 0.5, filtered, 0.5, 0) if thin else filtered

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("thicken_sizes", "p_thin")


# --- augmentation presets: each takes the image size and returns the transforms to compose ----


@AUGMENTATIONS.register("none")
def _no_augmentation(image_size: int) -> list:
    """Images unchanged."""
    return []


@AUGMENTATIONS.register()
def light(image_size: int) -> list:
    """Small shift/scale/rotate, brightness/contrast, horizontal flip."""
    return [
        A.Affine(translate_percent=(-0.04, 0.04), scale=(0.95, 1.05), rotate=(-3, 3), p=0.5, **_EDGE),
        A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=0.3),
        A.HorizontalFlip(p=0.5),
    ]


@AUGMENTATIONS.register()
def medium(image_size: int) -> list:
    """Light plus larger affine, mild noise or blur and JPEG artefacts."""
    return [
        A.Affine(translate_percent=(-0.06, 0.06), scale=(0.9, 1.1), rotate=(-7, 7), shear=(-4, 4), p=0.6, **_EDGE),
        A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
        A.OneOf([A.GaussNoise(std_range=(0.02, 0.06)), A.GaussianBlur(sigma_limit=(0.3, 1.0))], p=0.3),
        A.ImageCompression(quality_range=(60, 95), p=0.2),
        A.HorizontalFlip(p=0.5),
    ]


@AUGMENTATIONS.register()
def heavy(image_size: int) -> list:
    """Seeds 001/003: affine, perspective, elastic or grid distortion, noise, blur, CLAHE, dropout, JPEG."""
    hole = (max(1, image_size // 16), max(1, image_size // 7))  # ~32 px holes at 224, as in seed 003
    return [
        A.Affine(translate_percent=(-0.08, 0.08), scale=(0.85, 1.15), rotate=(-10, 10), shear=(-6, 6), p=0.7, **_EDGE),
        A.Perspective(scale=(0.02, 0.06), p=0.3, **_EDGE),
        A.OneOf(
            [A.ElasticTransform(alpha=1, sigma=50, **_EDGE), A.GridDistortion(num_steps=5, distort_limit=0.3, **_EDGE)],
            p=0.3,
        ),
        A.OneOf(
            [A.GaussNoise(std_range=(0.03, 0.1)), A.ISONoise(color_shift=(0.01, 0.05), intensity=(0.1, 0.4))], p=0.4
        ),
        A.OneOf([A.GaussianBlur(sigma_limit=(0.3, 1.5)), A.MotionBlur(blur_limit=(3, 5))], p=0.3),
        A.CLAHE(clip_limit=2.0, tile_grid_size=(8, 8), p=0.2),
        A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.25, p=0.5),
        A.CoarseDropout(num_holes_range=(1, 8), hole_height_range=hole, hole_width_range=hole, fill=255, p=0.3),
        A.ImageCompression(quality_range=(40, 95), p=0.3),
        A.HorizontalFlip(p=0.5),
    ]


@AUGMENTATIONS.register()
def plot(image_size: int) -> list:
    """For plots from other tools (issue 8): margins, scale and aspect, themes, line weight, JPEG.

    Margin crop/pad moves the axes box like another figure layout; independent x/y scale changes the
    aspect ratio; inversion turns a light theme dark (and back); greyscale drops line colour;
    :class:`LineWeight` thickens or thins the lines on either theme.
    """
    return [
        A.CropAndPad(percent=(-0.08, 0.08), keep_size=True, p=0.6, **_EDGE),
        A.Affine(scale={"x": (0.85, 1.15), "y": (0.85, 1.15)}, translate_percent=(-0.03, 0.03), p=0.6, **_EDGE),
        A.InvertImg(p=0.2),
        A.ToGray(p=0.2),
        LineWeight(p=0.3),
        A.ImageCompression(quality_range=(40, 95), p=0.3),
    ]


# --- tensors ---------------------------------------------------------------------------------


def to_tensor_batch(
    images_uint8: np.ndarray | torch.Tensor,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    device: torch.device | str = "cpu",
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 (N, H, W, 3) batch -> float32 (N, 3, H, W) ``(x / 255 - mean) / std`` on ``device``.

    The uint8 batch crosses to the device first (four times fewer bytes than float) and is converted
    there. An NHWC buffer seen as NCHW is already channels_last in memory, so that layout is free.
    """
    batch = (
        torch.from_numpy(np.ascontiguousarray(images_uint8)) if isinstance(images_uint8, np.ndarray) else images_uint8
    )
    if batch.dtype != torch.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"expected a uint8 (N, H, W, 3) batch, got {tuple(batch.shape)} {batch.dtype}")
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"mean and std need three values each with std > 0; got mean={mean}, std={std}")
    device = torch.device(device)
    scale, shift = _normalizer(tuple(mean), tuple(std), device)
    out = batch.to(device, non_blocking=True).permute(0, 3, 1, 2).float() * scale - shift
    return out.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def to_pixels(
    normalised: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """The inverse of ``to_tensor_batch``: a normalised (N, 3, H, W) batch -> float32 pixels in [0, 1]
    (clamped), on the batch's device."""
    mean_t = torch.tensor(tuple(mean), dtype=torch.float32, device=normalised.device).view(1, 3, 1, 1)
    std_t = torch.tensor(tuple(std), dtype=torch.float32, device=normalised.device).view(1, 3, 1, 1)
    return (normalised.float() * std_t + mean_t).clamp(0, 1)


@functools.lru_cache(maxsize=16)
def _normalizer(mean: tuple[float, ...], std: tuple[float, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    """``(x / 255 - mean) / std`` as one multiply-add; built once per device, not per batch (each
    new small tensor on a GPU is a host-to-device copy)."""
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    return 1.0 / (255.0 * std_t), mean_t / std_t


def gpu_flip_batch(
    batch: torch.Tensor, p_horizontal: float, p_vertical: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Flip each image of an NCHW batch (uint8 or float, on any device) left-right / up-down at random.

    The light augmentation for a cache kept on the GPU: no round trip to DataLoader workers. Each image
    is flipped independently; the memory format of ``batch`` is kept. ``generator`` must live on the
    batch's device.
    """
    for name, p in (("p_horizontal", p_horizontal), ("p_vertical", p_vertical)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
    if batch.ndim != 4:
        raise ValueError(f"expected an NCHW batch, got shape {tuple(batch.shape)}")
    n = batch.shape[0]
    flip_h = torch.rand(n, device=batch.device, generator=generator) < p_horizontal
    flip_v = torch.rand(n, device=batch.device, generator=generator) < p_vertical
    out = torch.where(flip_h.view(n, 1, 1, 1), batch.flip(3), batch)
    out = torch.where(flip_v.view(n, 1, 1, 1), out.flip(2), out)
    return out.contiguous(memory_format=_memory_format(batch))


def _memory_format(batch: torch.Tensor) -> torch.memory_format:
    channels_last = batch.is_contiguous(memory_format=torch.channels_last) and not batch.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format


# --- test-time augmentation ---------------------------------------------------------------------

View = Callable[[torch.Tensor], torch.Tensor]


def _identity(batch: torch.Tensor) -> torch.Tensor:
    return batch


def _hflip(batch: torch.Tensor) -> torch.Tensor:
    return batch.flip(-1)


def _vflip(batch: torch.Tensor) -> torch.Tensor:
    return batch.flip(-2)


def _hvflip(batch: torch.Tensor) -> torch.Tensor:
    return batch.flip(-2, -1)


@TTA_MODES.register("none")
def _no_tta() -> tuple[View, ...]:
    """The image as it is."""
    return (_identity,)


@TTA_MODES.register()
def flip4() -> tuple[View, ...]:
    """Original, horizontal flip, vertical flip and both (seed 001)."""
    return (_identity, _hflip, _vflip, _hvflip)


def tta_views(batch: torch.Tensor, mode: str) -> torch.Tensor:
    """(N, C, H, W) -> (V*N, C, H, W), view-major: ``views[v*N + i]`` is view ``v`` of image ``i``.

    Callers run the result through the model in one pass, reshape the softmax to (V, N, classes)
    and average over V.
    """
    if batch.ndim != 4:
        raise ValueError(f"expected an NCHW batch, got shape {tuple(batch.shape)}")
    views = TTA_MODES.get(mode)()
    if len(views) == 1:
        return views[0](batch)
    return torch.cat([view(batch) for view in views]).contiguous(memory_format=_memory_format(batch))


def tta_view_count(mode: str) -> int:
    """How many views ``mode`` makes of each image (the V of :func:`tta_views`)."""
    return len(TTA_MODES.get(mode)())
