"""``series_cnn``: a small ResNet-1D for the raw series of a CSV (input kind "series").

The image families classify a drawn plot; this one reads the numbers the plot was drawn from. A
series of any length becomes one fixed-size input by :func:`series_to_input` (numpy only, used by
training and prediction alike, so both see the same numbers):

1. **Resample to ``length`` points** (default 256). A longer series is cut into ``length`` equal
   stretches and each stretch gives its mean, minimum and maximum, so a one-point spike in a
   5,000-point series survives (a plain ``np.interp`` onto 256 points would step over it); a
   shorter one is linearly interpolated (``np.interp``: mean = min = max).
2. **Robust z-score per series**: minus the median, divided by 1.4826 x the median absolute
   deviation (the standard deviation when the MAD is 0, 1 when both are), clipped to +-20 so one
   enormous spike cannot swamp the rest; the three channels share the same centre and scale.

The result is a (3, length) float32 array: channels mean, min, max.

Test-time augmentation (:func:`series_tta_views`) reads the image families' mode names
(``backend.data.transforms.TTA_MODES``) in a series' terms: a plot's horizontal flip is the series
reversed in time and its vertical flip the series negated (min and max trade places), the same two
moves training draws at random (``backend.training.series_data.augment_series``), so ``flip4`` is
the series, reversed, negated, and both.

The network (ResNet-1D after Wang et al. 2017, "Time series classification from scratch with deep
neural networks", slimmed): a stem convolution, ``blocks`` residual blocks of kernel sizes 7-5-3 with
BatchNorm (widths w, 2w, 4w, then 4w; every block after the first halves the length), then the
average over ``head_bins`` equal stretches of the sequence (so the head keeps early from late, what
tells a trend shift from a trend) beside a global max (a short event anywhere), dropout and a linear
layer. Three blocks (the builder's default, so older checkpoints rebuild unchanged): about 270k
parameters at width 32 and a receptive field of about 73 of the 256 points; each further block
about doubles the receptive field (a fourth: 145 points, 534k parameters), which lets one unit
compare the slope before and after a bend.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from backend.models import WorkbenchModel, register_model

SERIES_CHANNELS = 3  # mean, min, max of each stretch
DEFAULT_LENGTH = 256
MIN_LENGTH, MAX_LENGTH = 32, 4096
Z_CLIP = 20.0
MAD_SCALE = 1.4826  # MAD -> standard deviation for normal data
MAX_BLOCKS = 5


def resample_series(values: np.ndarray, length: int) -> np.ndarray:
    """(3, length) float64: per-stretch mean, min and max of ``values`` (any length >= 2).

    Longer than ``length``: ``length`` equal stretches (``np.array_split`` boundaries) each give
    their mean, min and max. Otherwise: linear interpolation onto ``length`` evenly spaced points,
    the same curve in all three channels.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    n = len(values)
    if n < 2:
        raise ValueError(f"a series needs at least 2 values to resample, got {n}")
    if n <= length:
        curve = np.interp(np.linspace(0.0, n - 1.0, length), np.arange(n, dtype=np.float64), values)
        return np.stack([curve, curve, curve])
    edges = np.linspace(0, n, length + 1).round().astype(np.int64)
    starts = edges[:-1]
    means = np.add.reduceat(values, starts) / np.diff(edges)
    return np.stack([means, np.minimum.reduceat(values, starts), np.maximum.reduceat(values, starts)])


def robust_scale(values: np.ndarray) -> tuple[float, float]:
    """(centre, scale) of a series: median and 1.4826 x MAD; std, then 1, when that is 0."""
    values = np.asarray(values, dtype=np.float64)
    centre = float(np.median(values))
    scale = MAD_SCALE * float(np.median(np.abs(values - centre)))
    if not np.isfinite(scale) or scale <= 1e-12 * max(1.0, abs(centre)):
        scale = float(np.std(values))
    if not np.isfinite(scale) or scale <= 1e-12 * max(1.0, abs(centre)):
        scale = 1.0
    return centre, scale


def series_to_input(values: np.ndarray, length: int = DEFAULT_LENGTH) -> np.ndarray:
    """A raw series (any length >= 2, finite) -> the model's (3, length) float32 input (module docstring)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(values)):
        raise ValueError("the series has missing or infinite values; read it with read_series_csv first")
    centre, scale = robust_scale(values)
    channels = (resample_series(values, length) - centre) / scale
    return np.clip(channels, -Z_CLIP, Z_CLIP).astype(np.float32)


def reverse_series(batch: Tensor) -> Tensor:
    """(N, 3, L) model inputs read back to front: the plot flipped left to right."""
    return batch.flip(-1)


def negate_series(batch: Tensor) -> Tensor:
    """(N, 3, L) model inputs negated: mean, min, max -> -mean, -max, -min (the plot upside down)."""
    return -batch[:, [0, 2, 1]]


def _as_is(batch: Tensor) -> Tensor:
    return batch


def _reverse_and_negate(batch: Tensor) -> Tensor:
    return negate_series(reverse_series(batch))


# The series counterpart of each image TTA mode, view for view (backend.data.transforms.TTA_MODES).
SERIES_TTA_VIEWS: dict[str, tuple[Callable[[Tensor], Tensor], ...]] = {
    "none": (_as_is,),
    "flip4": (_as_is, reverse_series, negate_series, _reverse_and_negate),
}


def series_tta_view_count(mode: str) -> int:
    """How many views ``mode`` makes of each series; ValueError for a mode with no series counterpart."""
    if mode not in SERIES_TTA_VIEWS:
        raise ValueError(f"unknown test-time augmentation {mode!r} for a series model; known: {', '.join(SERIES_TTA_VIEWS)}")
    return len(SERIES_TTA_VIEWS[mode])


def series_tta_views(batch: Tensor, mode: str) -> Tensor:
    """(N, 3, L) -> (V*N, 3, L), view-major like ``backend.data.transforms.tta_views``."""
    if batch.ndim != 3:
        raise ValueError(f"expected an (N, channels, length) batch, got shape {tuple(batch.shape)}")
    series_tta_view_count(mode)  # an unknown mode fails here
    views = SERIES_TTA_VIEWS[mode]
    return views[0](batch) if len(views) == 1 else torch.cat([view(batch) for view in views])


class ResBlock1d(nn.Module):
    """Three conv-BN layers (kernels 7, 5, 3) with ReLUs and a 1x1 (strided) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(c_in, c_out, 7, stride=stride, padding=3, bias=False),
            nn.BatchNorm1d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv1d(c_out, c_out, 5, padding=2, bias=False),
            nn.BatchNorm1d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv1d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm1d(c_out),
        )
        self.shortcut = nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class SeriesCNN(WorkbenchModel):
    """Stem -> ``blocks`` residual blocks (width, 2w, 4w, 4w, ...) -> [avg over ``head_bins`` stretches,
    global max] -> dropout -> linear."""

    input_kind = "series"

    def __init__(self, num_classes: int, length: int, width: int, dropout: float, head_bins: int, blocks: int = 3):
        super().__init__()
        self.length = length
        self.stem = nn.Sequential(
            nn.Conv1d(SERIES_CHANNELS, width, 7, padding=3, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True)
        )
        widths = [width * min(2**i, 4) for i in range(blocks)]
        self.blocks = nn.Sequential(
            *(
                ResBlock1d(c_in, c_out, 1 if i == 0 else 2)
                for i, (c_in, c_out) in enumerate(zip([width, *widths], widths, strict=False))
            )
        )
        self.avg = nn.AdaptiveAvgPool1d(head_bins)
        self.max = nn.AdaptiveMaxPool1d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(widths[-1] * (head_bins + 1), num_classes)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``x``: (N, 3, length) float from :func:`series_to_input`; logits and the pooled features."""
        h = self.blocks(self.stem(x))
        features = torch.cat([self.avg(h).flatten(1), self.max(h).flatten(1)], dim=1)
        return {"logits": self.fc(self.dropout(features)), "features": features}


@register_model(
    input_kind="series",
    defaults={
        "batch_size": 64,
        "lr": 3e-3,
        "optimizer": "adamw",
        "weight_decay": 1e-2,
        "scheduler": "onecycle",
        # 30 -> 60 on 2026-12-08: +1.6 points [+0.9, +2.3] on the own split over two seeds, both up
        # (trend classes +6), and no set worse (docs/BENCHMARKS_series.md, "Sixty epochs").
        "epochs": 60,
        "augmentation": "light",  # for a series model: random time reversal and sign flip (series_data.py)
        # New runs get four blocks (docs/BENCHMARKS_series.md: +2 points on every set against three);
        # the builder's own default stays 3 so checkpoints without the key rebuild as they were.
        "model_kwargs": {"blocks": 4},
    },
)
def series_cnn(
    num_classes: int, image_size: int, length: int = DEFAULT_LENGTH, width: int = 32, dropout: float = 0.2,
    head_bins: int = 4, blocks: int = 3,
) -> SeriesCNN:  # fmt: skip
    """ResNet-1D on a CSV's series resampled to ``length`` points (3 channels: mean, min, max).

    ``image_size`` is part of the common builder signature and unused (the input is a series).
    ``blocks`` (2-5) residual blocks; the length must stay at least 8 points after the halvings.
    """
    checks = (("length", length, MIN_LENGTH), ("width", width, 4), ("head_bins", head_bins, 1), ("blocks", blocks, 2))
    for name, value, least in checks:
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be a whole number of at least {least}, got {value!r}")
    if length > MAX_LENGTH:
        raise ValueError(f"length must be at most {MAX_LENGTH} points, got {length}")
    if blocks > MAX_BLOCKS:
        raise ValueError(f"blocks must be at most {MAX_BLOCKS}, got {blocks}")
    if length // 2 ** (blocks - 1) < 8:
        raise ValueError(f"{blocks} blocks halve {length} points to under 8: use a longer length or fewer blocks")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout}")
    return SeriesCNN(num_classes, length, width, float(dropout), head_bins, blocks)
