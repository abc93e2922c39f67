"""Feature-space distance for unfamiliar inputs (backend/evaluation/ood.py) on planted Gaussian clusters."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backend.evaluation.ood import MAX_DIMS, distance_threshold, feature_distance, fit_feature_density


def clusters(rng, n_per_class: int, dims: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated classes in ``dims`` dimensions; ``shift`` moves every point away."""
    centres = np.zeros((3, dims))
    centres[np.arange(3), np.arange(3)] = 6.0
    labels = np.repeat(np.arange(3), n_per_class)
    return centres[labels] + rng.normal(size=(len(labels), dims)) + shift, labels


def test_familiar_inputs_score_low_and_shifted_ones_are_flagged():
    rng = np.random.default_rng(0)
    train, labels = clusters(rng, 200, 16)
    stats = fit_feature_density(train, labels)
    val, _ = clusters(rng, 100, 16)
    threshold = distance_threshold(feature_distance(stats, val), 0.95)
    fresh, _ = clusters(rng, 300, 16)
    shifted, _ = clusters(rng, 300, 16, shift=3.0)
    assert np.mean(feature_distance(stats, fresh) > threshold) == pytest.approx(0.05, abs=0.04)
    assert np.mean(feature_distance(stats, shifted) > threshold) > 0.95
    # Distance is to the nearest class: a point at a class mean scores about zero.
    assert feature_distance(stats, np.array(stats["class_means"]))[0] == pytest.approx(0.0, abs=1e-6)


def test_wide_features_are_projected_and_the_statistics_stay_small_and_plain():
    rng = np.random.default_rng(1)
    train, labels = clusters(rng, 100, 600)
    stats = fit_feature_density(train, labels)
    assert np.array(stats["components"]).shape == (MAX_DIMS, 600)
    assert np.array(stats["precision"]).shape == (MAX_DIMS, MAX_DIMS)
    assert len(json.dumps(stats)) < 4_000_000  # plain lists: weights_only-loadable, JSON-able
    shifted, _ = clusters(rng, 50, 600, shift=2.0)
    assert feature_distance(stats, shifted).mean() > feature_distance(stats, train).mean()


def test_bad_inputs_say_what_is_wrong():
    stats = fit_feature_density(np.eye(4), np.array([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="features have 3 dimensions; these statistics were fitted on 4"):
        feature_distance(stats, np.ones((2, 3)))
    with pytest.raises(ValueError, match="4 feature rows but 3 labels"):
        fit_feature_density(np.eye(4), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="quantile must be in"):
        distance_threshold(np.ones(3), 1.5)
