"""Calibration of a classifier's probabilities: ECE, reliability table, temperature scaling, and the
confidence threshold below which a prediction is flagged as unsure (numpy, scipy, pandas only).

A model is *calibrated* when, among the answers it gives with confidence about 0.8, about 80% are
right. Temperature scaling divides the logits by one scalar T fitted on the validation split (T > 1
softens an overconfident model); it never changes which class wins, only how sure it claims to be.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

TEMPERATURE_BOUNDS = (0.05, 20.0)


def _logits(logits) -> np.ndarray:
    array = np.asarray(logits, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"logits must be a 2-D array (items x classes), got shape {array.shape}")
    return array


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (numerically stable)."""
    _check_temperature(temperature)
    return np.exp(log_softmax(_logits(logits) / temperature, axis=1))


def nll(logits, y_true, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true classes under ``softmax(logits / temperature)``."""
    _check_temperature(temperature)
    logits = _logits(logits)
    y_true = np.asarray(y_true, dtype=np.int64)
    log_probs = log_softmax(logits / temperature, axis=1)
    return float(-log_probs[np.arange(y_true.size), y_true].mean())


def fit_temperature(logits, y_true) -> float:
    """The temperature minimising the NLL of ``y_true`` (search over log T within TEMPERATURE_BOUNDS).

    Returns 1.0 (no change) when there is nothing to fit: no items, one class, non-finite logits.
    """
    logits = _logits(logits)
    y_true = np.asarray(y_true, dtype=np.int64)
    if y_true.size == 0 or logits.shape[1] < 2 or not np.isfinite(logits).all():
        return 1.0
    lo, hi = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(lambda log_t: nll(logits, y_true, float(np.exp(log_t))), bounds=(lo, hi),
                             method="bounded", options={"xatol": 1e-4})  # fmt: skip
    return float(np.exp(result.x)) if result.success else 1.0


def _confidences(probs, y_true) -> tuple[np.ndarray, np.ndarray]:
    """Top-class confidence and whether the top class is the true one, per item."""
    probs = _logits(probs)
    y_true = np.asarray(y_true, dtype=np.int64)
    if probs.shape[0] != y_true.size:
        raise ValueError(f"probabilities have {probs.shape[0]} rows but there are {y_true.size} labels")
    return probs.max(axis=1), probs.argmax(axis=1) == y_true


def _check_bins(n_bins: int) -> None:
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1 (15 is usual), got {n_bins}")


def reliability_table(probs, y_true, n_bins: int = 15) -> pd.DataFrame:
    """One row per equal-width confidence bin ``(lower, upper]``: bin, lower, upper, count, confidence
    (mean top-class probability), accuracy (share right); empty bins have count 0 and NaN means."""
    _check_bins(n_bins)
    confidence, correct = _confidences(probs, y_true)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(bins, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(bins, weights=correct.astype(float), minlength=n_bins) / count
    return pd.DataFrame({"bin": np.arange(n_bins), "lower": edges[:-1], "upper": edges[1:], "count": count,
                         "confidence": mean_confidence, "accuracy": accuracy})  # fmt: skip


def expected_calibration_error(probs, y_true, n_bins: int = 15) -> float:
    """ECE: the count-weighted mean of |accuracy - confidence| over equal-width confidence bins."""
    table = reliability_table(probs, y_true, n_bins)
    filled = table[table["count"] > 0]
    if filled.empty:
        return 0.0
    gaps = (filled["accuracy"] - filled["confidence"]).abs()
    return float((gaps * filled["count"]).sum() / filled["count"].sum())


def choose_confidence_threshold(confidences, correct, *, max_flag_correct: float = 0.10) -> float:
    """The largest threshold t such that flagging ``confidence < t`` flags at most ``max_flag_correct``
    of the right answers (chosen on validation). 0.0 (flag nothing) when no answer is right."""
    if not 0.0 <= max_flag_correct <= 1.0:
        raise ValueError(f"max_flag_correct is a share between 0 and 1, got {max_flag_correct}")
    confidences = np.asarray(confidences, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    right = np.sort(confidences[correct])
    if right.size == 0:
        return 0.0
    allowed = int(np.floor(max_flag_correct * right.size + 1e-9))
    if allowed >= right.size:
        return float(np.nextafter(right[-1], np.inf))
    return float(right[allowed])
