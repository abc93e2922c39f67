"""ECE, reliability table, temperature scaling and the confidence threshold on synthetic data."""

from __future__ import annotations

import numpy as np
import pytest

from backend.evaluation.calibration import (
    choose_confidence_threshold,
    expected_calibration_error,
    fit_temperature,
    nll,
    reliability_table,
    softmax,
)


def calibrated_sample(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from those very probabilities: perfectly calibrated."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n, k))
    probs = softmax(logits)
    y = np.array([rng.choice(k, p=p) for p in probs])
    return probs, y


def test_softmax_rows_sum_to_one_and_temperature_keeps_the_winner():
    logits = np.array([[2.0, 1.0, -1.0], [0.0, 5.0, 1.0]])
    for t in (0.5, 1.0, 3.0):
        probs = softmax(logits, t)
        assert probs.sum(axis=1) == pytest.approx([1.0, 1.0])
        assert list(probs.argmax(axis=1)) == [0, 1]
    assert softmax(logits, 3.0).max() < softmax(logits).max()
    with pytest.raises(ValueError, match="temperature must be positive"):
        softmax(logits, 0.0)


def test_ece_of_perfectly_calibrated_probabilities_is_near_zero():
    probs, y = calibrated_sample(20_000, 5, seed=1)
    assert expected_calibration_error(probs, y) < 0.015


def test_ece_of_an_overconfident_model_is_large_and_table_is_consistent():
    probs, y = calibrated_sample(5000, 5, seed=2)
    sharp = softmax(np.log(probs), temperature=0.3)  # same winners, far too sure
    ece = expected_calibration_error(sharp, y)
    assert ece > 0.1
    table = reliability_table(sharp, y)
    assert list(table.columns) == ["bin", "lower", "upper", "count", "confidence", "accuracy"]
    assert len(table) == 15 and table["count"].sum() == 5000
    filled = table[table["count"] > 0]
    assert ((filled["confidence"] > filled["lower"]) & (filled["confidence"] <= filled["upper"])).all()
    manual = (filled["count"] * (filled["accuracy"] - filled["confidence"]).abs()).sum() / 5000
    assert ece == pytest.approx(manual)


def test_temperature_scaling_lowers_nll_of_an_overconfident_model():
    probs, y = calibrated_sample(3000, 9, seed=3)
    overconfident = np.log(probs) * 4.0  # the true temperature is 4
    t = fit_temperature(overconfident, y)
    assert t == pytest.approx(4.0, rel=0.15)
    assert nll(overconfident, y, t) < nll(overconfident, y) - 0.1
    scaled = softmax(overconfident, t)
    assert expected_calibration_error(scaled, y) < expected_calibration_error(softmax(overconfident), y) / 3


def test_fit_temperature_degenerate_input_returns_one():
    assert fit_temperature(np.zeros((0, 3)), []) == 1.0
    assert fit_temperature(np.array([[1.0], [2.0]]), [0, 0]) == 1.0
    assert fit_temperature(np.array([[np.inf, 0.0]]), [0]) == 1.0


def test_confidence_threshold_flags_at_most_the_allowed_share_of_right_answers():
    rng = np.random.default_rng(4)
    confidences = rng.random(1000)
    correct = rng.random(1000) < confidences
    threshold = choose_confidence_threshold(confidences, correct, max_flag_correct=0.10)
    flagged_right = np.mean(confidences[correct] < threshold)
    assert flagged_right <= 0.10
    # the largest such threshold: nudging it up flags one more right answer than allowed
    right = np.sort(confidences[correct])
    assert np.mean(right < np.nextafter(threshold, 1.0)) > 0.10
    assert choose_confidence_threshold([0.3, 0.9], [False, False]) == 0.0
    assert choose_confidence_threshold([0.3, 0.9], [True, True], max_flag_correct=0.0) == 0.3
    with pytest.raises(ValueError, match="share between 0 and 1"):
        choose_confidence_threshold([0.5], [True], max_flag_correct=10)
