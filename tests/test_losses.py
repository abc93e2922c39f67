"""Classification losses: agreement with cross-entropy where the maths says so, soft targets,
class weighting on imbalanced batches, and clear errors for bad arguments."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from backend.training.losses import (
    ClassBalancedFocalLoss,
    CrossEntropyLoss,
    FocalLoss,
    LogitAdjustedLoss,
    build_loss,
    effective_number_weights,
    list_losses,
)

COUNTS = [90, 30, 10]  # an imbalanced three-class training set


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 3, generator=generator) * 2
    labels = torch.tensor([0, 0, 0, 0, 0, 1, 1, 2])  # as imbalanced as the counts
    return logits, labels


def one_hot(labels: torch.Tensor) -> torch.Tensor:
    return F.one_hot(labels, 3).float()


def test_registry_names_the_four_losses():
    assert list_losses() == ["cb_focal", "ce", "focal", "logit_adjusted"]
    with pytest.raises(ValueError, match="unknown loss 'dice'; choose one of: cb_focal, ce, focal, logit_adjusted"):
        build_loss("dice", class_counts=COUNTS)


@pytest.mark.parametrize("name", ["ce", "focal", "cb_focal", "logit_adjusted"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_every_loss_is_a_finite_differentiable_scalar_for_index_and_soft_targets(name, smoothing, batch):
    logits, labels = batch
    loss_fn = build_loss(name, class_counts=COUNTS, label_smoothing=smoothing)
    mixed = 0.7 * one_hot(labels) + 0.3 * one_hot(labels.flip(0))  # a MixUp target
    for target in (labels, mixed):
        leaf = logits.clone().requires_grad_()
        loss = loss_fn(leaf, target)
        assert loss.dim() == 0 and torch.isfinite(loss)
        loss.backward()
        assert torch.isfinite(leaf.grad).all() and leaf.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["ce", "focal", "logit_adjusted"])
def test_soft_targets_mix_the_losses_of_their_classes(name, batch):
    """A MixUp target lam*a + (1-lam)*b costs lam*loss(a) + (1-lam)*loss(b), as the paper assumes."""
    logits, labels = batch
    loss_fn = build_loss(name, class_counts=COUNTS)
    other = labels.flip(0)
    mixed = loss_fn(logits, 0.7 * one_hot(labels) + 0.3 * one_hot(other))
    torch.testing.assert_close(mixed, 0.7 * loss_fn(logits, labels) + 0.3 * loss_fn(logits, other))


def test_ce_equals_torch_cross_entropy(batch):
    logits, labels = batch
    torch.testing.assert_close(CrossEntropyLoss()(logits, labels), F.cross_entropy(logits, labels))
    torch.testing.assert_close(CrossEntropyLoss()(logits, one_hot(labels)), F.cross_entropy(logits, labels))
    torch.testing.assert_close(
        CrossEntropyLoss(label_smoothing=0.1)(logits, labels), F.cross_entropy(logits, labels, label_smoothing=0.1)
    )


def test_class_weights_sum_per_sample_and_average_over_the_batch(batch):
    """Weighted: mean over samples of w[y] * CE (torch's soft-target rule), the same for index targets."""
    logits, labels = batch
    weight = torch.tensor([0.5, 1.0, 4.0])
    expected = (weight[labels] * F.cross_entropy(logits, labels, reduction="none")).mean()
    torch.testing.assert_close(CrossEntropyLoss(weight)(logits, labels), expected)
    torch.testing.assert_close(
        CrossEntropyLoss(weight)(logits, labels), F.cross_entropy(logits, one_hot(labels), weight=weight)
    )


@pytest.mark.parametrize("weighting", ["balanced", "effective"])
@pytest.mark.parametrize("name", ["ce", "focal", "logit_adjusted"])
def test_class_weighting_changes_the_loss_on_an_imbalanced_batch(name, weighting, batch):
    logits, labels = batch
    plain = build_loss(name, class_counts=COUNTS)(logits, labels)
    weighted = build_loss(name, class_counts=COUNTS, class_weighting=weighting, beta=0.99)(logits, labels)
    assert not torch.isclose(plain, weighted)


def test_focal_with_gamma_zero_is_ce_and_discounts_easy_examples(batch):
    logits, labels = batch
    ce = F.cross_entropy(logits, labels)
    torch.testing.assert_close(FocalLoss(gamma=0.0)(logits, labels), ce)
    assert FocalLoss(gamma=2.0)(logits, labels) < ce
    weight = [1.0, 2.0, 3.0]
    torch.testing.assert_close(
        FocalLoss(gamma=0.0, weight=weight)(logits, labels), CrossEntropyLoss(weight)(logits, labels)
    )


def test_logit_adjusted_adds_tau_log_prior_to_the_logits(batch):
    logits, labels = batch
    torch.testing.assert_close(LogitAdjustedLoss(COUNTS, tau=0.0)(logits, labels), F.cross_entropy(logits, labels))
    prior = torch.tensor(COUNTS, dtype=torch.float32) / sum(COUNTS)
    expected = F.cross_entropy(logits + 1.5 * prior.log(), labels)
    torch.testing.assert_close(LogitAdjustedLoss(COUNTS, tau=1.5)(logits, labels), expected)
    assert "log_prior" in dict(LogitAdjustedLoss(COUNTS).named_buffers())


def test_class_balanced_focal_uses_effective_number_weights(batch):
    logits, labels = batch
    loss_fn = ClassBalancedFocalLoss(COUNTS, beta=0.99, gamma=2.0)
    raw = torch.tensor([(1 - 0.99) / (1 - 0.99**n) for n in COUNTS])
    torch.testing.assert_close(loss_fn.weight, raw * 3 / raw.sum())
    assert loss_fn.weight[2] > loss_fn.weight[1] > loss_fn.weight[0]  # rarer class, larger weight
    assert "weight" in dict(loss_fn.named_buffers())
    # beta = 0 counts every class as one sample: uniform weights, plain focal loss
    torch.testing.assert_close(
        ClassBalancedFocalLoss(COUNTS, beta=0.0)(logits, labels), FocalLoss(gamma=2.0)(logits, labels)
    )


def test_balanced_and_effective_weightings_agree_as_beta_nears_one():
    balanced = build_loss("ce", class_counts=COUNTS, class_weighting="balanced").weight
    torch.testing.assert_close(balanced, torch.tensor([130 / 270, 130 / 90, 130 / 30]))
    effective = effective_number_weights(COUNTS, beta=0.999999)
    torch.testing.assert_close(effective / effective.mean(), balanced / balanced.mean(), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: FocalLoss(gamma=-1.0), "gamma must be a finite number >= 0"),
        (lambda: ClassBalancedFocalLoss(COUNTS, beta=1.0), r"beta must be in \[0, 1\)"),
        (lambda: build_loss("cb_focal", class_counts=COUNTS, beta=-0.1), r"beta must be in \[0, 1\)"),
        (lambda: build_loss("ce", class_counts=[10, 0, 5]), "class index 1 has no training images"),
        (lambda: LogitAdjustedLoss([7]), "at least two classes"),
        (lambda: LogitAdjustedLoss(COUNTS, tau=-1.0), "tau must be a finite number >= 0"),
        (lambda: CrossEntropyLoss(weight=[1.0, -2.0, 1.0]), "class weights must be finite, >= 0"),
        (lambda: CrossEntropyLoss(label_smoothing=1.0), r"label_smoothing must be in \[0, 1\)"),
        (lambda: build_loss("ce", class_counts=COUNTS, class_weighting="inverse"), "unknown class weighting 'inverse'"),
        (lambda: build_loss("cb_focal", class_counts=COUNTS, class_weighting="balanced"), "use class_weighting 'none'"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_mismatched_class_counts_and_targets_raise_clear_errors(batch):
    logits, labels = batch
    with pytest.raises(ValueError, match="the loss has 2 class weights but the logits have 3 classes"):
        CrossEntropyLoss(weight=[1.0, 2.0])(logits, labels)
    with pytest.raises(ValueError, match="the loss has 4 class counts but the logits have 3 classes"):
        LogitAdjustedLoss([5, 5, 5, 5])(logits, labels)
    with pytest.raises(
        ValueError, match=r"target must be class indices of shape \(8,\) or probabilities of shape \(8, 3\)"
    ):
        CrossEntropyLoss()(logits, labels[:4])
    with pytest.raises(ValueError, match="target must be class indices"):
        CrossEntropyLoss()(logits, labels.float())
