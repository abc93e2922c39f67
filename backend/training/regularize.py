"""Regularisers around the training step: the sampler registry (imbalance), MixUp/CutMix on a batch,
and an exponential moving average of the weights.

Each comes from a well-kept library (torch.utils.data samplers, torchvision's v2 MixUp/CutMix,
torch.optim.swa_utils) and is built from TrainConfig values; the loop only calls what is built.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import RandomSampler, Sampler, WeightedRandomSampler
from torchvision.transforms import v2

from backend.registry import Registry

SAMPLERS: Registry = Registry("sampler")

BatchMix = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@SAMPLERS.register()
def none(labels: np.ndarray, generator: torch.Generator) -> Sampler[int]:
    """Every training image once per epoch, shuffled."""
    return RandomSampler(range(len(labels)), generator=generator)


@SAMPLERS.register()
def weighted(labels: np.ndarray, generator: torch.Generator) -> Sampler[int]:
    """Draw with replacement so each class is seen equally often (weight 1 / class count)."""
    counts = np.bincount(labels)
    weights = torch.as_tensor(1.0 / counts[labels], dtype=torch.double)
    return WeightedRandomSampler(weights, num_samples=len(labels), replacement=True, generator=generator)


def build_sampler(name: str, labels: np.ndarray, generator: torch.Generator) -> Sampler[int]:
    """The sampler ``name`` over training ``labels`` (indices drawn with ``generator``)."""
    return SAMPLERS.get(name)(np.asarray(labels, dtype=np.int64), generator)


def build_batch_mix(mixup_alpha: float, cutmix_alpha: float, num_classes: int) -> BatchMix | None:
    """MixUp and/or CutMix on a normalised batch -> (mixed images, soft targets); None when both are off.

    With both on, each batch picks one of the two at random (as timm and torchvision's references do).
    """
    mixes = []
    if mixup_alpha > 0:
        mixes.append(v2.MixUp(alpha=mixup_alpha, num_classes=num_classes))
    if cutmix_alpha > 0:
        mixes.append(v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes))
    if not mixes:
        return None
    return mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)


EMA_WARMUP = 10.0  # the decay at update n is min(decay, (1 + n) / (EMA_WARMUP + n))


def ema_decay_at(decay: float, updates: int) -> float:
    """The decay used at the ``updates``-th averaging step (0 = the copy): ``decay``, warmed up.

    A fixed 0.999 from the first step keeps ``0.999 ** steps`` of the random initial weights in the
    average (65% after 430 steps, 6% after a whole 20-epoch run of 2,870), so the averaged model
    scored chance for the first epochs of a product-sized run and still held its start at the end.
    Warmed up, the average follows the model at first (decay 0.18 at step 1, 0.5 at step 8, 0.9 at
    step 81) and reaches ``decay`` after about ``9 / (1 - decay)`` steps (timm's and TensorFlow's
    ``num_updates`` rule)."""
    return min(decay, (1.0 + updates) / (EMA_WARMUP + updates))


def build_ema(model: torch.nn.Module, decay: float) -> AveragedModel | None:
    """An EMA copy of ``model`` (weights and BatchNorm buffers) with the warmed-up decay of
    :func:`ema_decay_at`; None when ``decay`` is 0 (off)."""
    if decay <= 0:
        return None
    holder: list[AveragedModel] = []

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], _) -> None:
        # the count lives on the CPU: reading it does not wait for an accelerator
        step = ema_decay_at(decay, int(holder[0].n_averaged))
        get_ema_multi_avg_fn(step)(averaged, current, None)

    ema = AveragedModel(model, multi_avg_fn=update, use_buffers=True)
    holder.append(ema)
    return ema
