"""Classification losses, one family per class, looked up by name (``LOSSES``).

Every loss maps ``(logits (N, C), target)`` to a scalar, where ``target`` is class indices (N,) or
class probabilities (N, C) (what MixUp / CutMix produce), with optional label smoothing. Each
checks its arguments in ``__init__`` and keeps its class weights or priors as a registered buffer,
so ``loss.to(device)`` moves them with it.

All of them share one formula: ``mean_i sum_c w_c * y_ic * l_c(logits_i)``, with ``y`` the
(smoothed) target distribution, ``w`` the class weights (1 when none) and ``l_c`` the per-class
term of the family: ``-log p_c`` (ce), ``-(1 - p_c)^gamma log p_c`` (focal) or ``-log softmax(z +
tau log prior)_c`` (logit_adjusted). So weighting, soft targets and smoothing mean the same in each.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backend.data import dataset
from backend.registry import Registry

LOSSES = Registry("loss")
CLASS_WEIGHTINGS = Registry("class weighting")


class ClassificationLoss(nn.Module):
    """Base: target handling, label smoothing and class weights; subclasses give ``per_class_loss``."""

    def __init__(self, weight: Sequence[float] | Tensor | None = None, label_smoothing: float = 0.0):
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), e.g. 0.1; got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self.register_buffer("weight", None if weight is None else _check_weight(weight))

    def per_class_loss(self, logits: Tensor) -> Tensor:
        """(N, C) loss of each sample against each class, before targets and weights."""
        raise NotImplementedError

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        logits = logits.float()  # log-probabilities in fp32, also under autocast
        probs = self.target_distribution(target, logits.shape)
        if self.weight is not None:
            probs = probs * self.weight
        return (probs * self.per_class_loss(logits)).sum(dim=1).mean()

    def target_distribution(self, target: Tensor, shape: torch.Size) -> Tensor:
        """Class indices (N,) or probabilities (N, C) -> smoothed (N, C) probabilities."""
        num_classes = shape[1]
        if self.weight is not None and self.weight.numel() != num_classes:
            raise ValueError(
                f"the loss has {self.weight.numel()} class weights but the logits have {num_classes} classes"
            )
        if target.dim() == 1 and not target.is_floating_point() and target.shape[0] == shape[0]:
            probs = F.one_hot(target.long(), num_classes).float()
        elif target.dim() == 2 and target.is_floating_point() and tuple(target.shape) == tuple(shape):
            probs = target.float()
        else:
            raise ValueError(
                f"target must be class indices of shape ({shape[0]},) or probabilities of shape "
                f"({shape[0]}, {num_classes}); got {target.dtype} of shape {tuple(target.shape)}"
            )
        if self.label_smoothing:
            probs = probs * (1.0 - self.label_smoothing) + self.label_smoothing / num_classes
        return probs


@LOSSES.register("ce")
class CrossEntropyLoss(ClassificationLoss):
    """Cross-entropy, optionally class-weighted (``weight`` per class) and label-smoothed."""

    def per_class_loss(self, logits: Tensor) -> Tensor:
        return -F.log_softmax(logits, dim=1)


@LOSSES.register("focal")
class FocalLoss(ClassificationLoss):
    """Focal loss (Lin et al. 2017): ``-(1 - p)^gamma log p`` puts the weight on hard examples.

    ``weight`` plays the role of the paper's alpha; ``gamma=0`` is cross-entropy.
    """

    def __init__(
        self, gamma: float = 2.0, weight: Sequence[float] | Tensor | None = None, label_smoothing: float = 0.0
    ):
        super().__init__(weight, label_smoothing)
        if not (math.isfinite(gamma) and gamma >= 0):
            raise ValueError(f"gamma must be a finite number >= 0 (0 = plain cross-entropy, 2 is usual); got {gamma}")
        self.gamma = float(gamma)

    def per_class_loss(self, logits: Tensor) -> Tensor:
        log_probs = F.log_softmax(logits, dim=1)
        return -((1.0 - log_probs.exp()).pow(self.gamma) * log_probs)


@LOSSES.register("cb_focal")
class ClassBalancedFocalLoss(FocalLoss):
    """Class-balanced focal loss (Cui et al. 2019): focal loss weighted per class by the inverse
    effective number of samples, ``(1 - beta) / (1 - beta^n_c)``, normalised to mean 1."""

    def __init__(
        self, class_counts: Sequence[int], beta: float = 0.9999, gamma: float = 2.0, label_smoothing: float = 0.0
    ):
        super().__init__(gamma, effective_number_weights(class_counts, beta), label_smoothing)


@LOSSES.register("logit_adjusted")
class LogitAdjustedLoss(ClassificationLoss):
    """Logit-adjusted cross-entropy (Menon et al. 2021): CE on ``logits + tau * log(prior)``.

    The adjustment lives only in the loss: the model's raw logits, used for prediction, are thereby
    pushed to be balanced across classes. ``tau=0`` is cross-entropy.
    """

    def __init__(
        self,
        class_counts: Sequence[int],
        tau: float = 1.0,
        weight: Sequence[float] | Tensor | None = None,
        label_smoothing: float = 0.0,
    ):
        super().__init__(weight, label_smoothing)
        if not (math.isfinite(tau) and tau >= 0):
            raise ValueError(f"tau must be a finite number >= 0 (0 = plain cross-entropy, 1 is usual); got {tau}")
        counts = _check_counts(class_counts)
        self.tau = float(tau)
        self.register_buffer("log_prior", torch.log(counts / counts.sum()).float())

    def per_class_loss(self, logits: Tensor) -> Tensor:
        if logits.shape[1] != self.log_prior.numel():
            raise ValueError(
                f"the loss has {self.log_prior.numel()} class counts but the logits have {logits.shape[1]} classes"
            )
        return -F.log_softmax(logits + self.tau * self.log_prior, dim=1)


@CLASS_WEIGHTINGS.register("none")
def no_class_weights(class_counts: Sequence[int], beta: float) -> None:
    """Every class weighs the same."""
    return None


@CLASS_WEIGHTINGS.register("balanced")
def balanced_weights(class_counts: Sequence[int], beta: float) -> Tensor:
    """``n / (k * n_c)``: each class contributes as much as if the data were balanced."""
    return _weight_tensor(dataset.balanced_class_weights(_by_label(class_counts)))


@CLASS_WEIGHTINGS.register("effective")
def effective_number_weights(class_counts: Sequence[int], beta: float) -> Tensor:
    """``(1 - beta) / (1 - beta^n_c)`` normalised to mean 1 (Cui et al. 2019); beta=0 is uniform,
    beta -> 1 approaches ``balanced``."""
    return _weight_tensor(dataset.effective_number_weights(_by_label(class_counts), beta))


def _by_label(class_counts: Sequence[int]) -> dict[str, int]:
    """Counts in label order as the mapping the dataset's weight formulas take (after our checks)."""
    _check_counts(class_counts)
    return {str(label): int(count) for label, count in enumerate(class_counts)}


def _weight_tensor(weights: dict[str, float]) -> Tensor:
    return torch.tensor(list(weights.values()), dtype=torch.float32)


def build_loss(
    name: str,
    *,
    class_counts: Sequence[int],
    class_weighting: str = "none",
    beta: float = 0.9999,
    gamma: float = 2.0,
    tau: float = 1.0,
    label_smoothing: float = 0.0,
) -> ClassificationLoss:
    """The loss ``name`` for a training set with ``class_counts`` images per class (label order).

    ``class_weighting`` ("none", "balanced", "effective") sets per-class weights for the losses that
    take them; ``cb_focal`` weights classes itself, so it only combines with "none". Each loss gets
    only the options it uses (``beta`` for cb_focal and "effective", ``gamma`` for the focal
    losses, ``tau`` for logit_adjusted).
    """
    loss_cls = LOSSES.get(name)
    _check_counts(class_counts)  # every loss: a class without training images is a broken dataset
    weight = CLASS_WEIGHTINGS.get(class_weighting)(class_counts, beta)
    accepted = inspect.signature(loss_cls).parameters
    if weight is not None and "weight" not in accepted:
        raise ValueError(
            f"loss {name!r} sets its own class weights; use class_weighting 'none' with it, "
            f"or the loss 'focal' with class_weighting {class_weighting!r}"
        )
    options = dict(
        class_counts=class_counts, weight=weight, beta=beta, gamma=gamma, tau=tau, label_smoothing=label_smoothing
    )
    return loss_cls(**{key: value for key, value in options.items() if key in accepted})


def list_losses() -> list[str]:
    """Registered loss names, sorted (CLI choices and the Train page)."""
    return LOSSES.names()


def _check_counts(class_counts: Sequence[int]) -> Tensor:
    """Training images per class as float64: at least two classes, every one with an image."""
    counts = [int(c) for c in class_counts]
    if len(counts) < 2:
        raise ValueError(f"class_counts needs one count per class and at least two classes, got {counts}")
    empty = [i for i, c in enumerate(counts) if c <= 0]
    if empty:
        raise ValueError(
            f"class_counts must all be positive, got {counts}: class index {', '.join(map(str, empty))} "
            "has no training images; add images to that class or remove its folder"
        )
    return torch.tensor(counts, dtype=torch.float64)


def _check_weight(weight: Sequence[float] | Tensor) -> Tensor:
    """Class weights as a float32 1-D tensor of finite non-negative values, not all zero."""
    tensor = torch.as_tensor(weight, dtype=torch.float32).detach().clone()
    if tensor.dim() != 1 or tensor.numel() < 2:
        raise ValueError(f"class weights must be one number per class (at least two), got shape {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all() or (tensor < 0).any() or not (tensor > 0).any():
        raise ValueError(f"class weights must be finite, >= 0 and not all 0; got {tensor.tolist()}")
    return tensor
