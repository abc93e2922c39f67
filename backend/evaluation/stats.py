"""Confidence intervals and paired tests for classification results (numpy and scipy only).

Every reported figure carries a 95% bootstrap interval: items are resampled *within each true class*
(stratified), so every resample has the test set's class counts and the interval reflects only which
items of each class were drawn. All resamples are drawn at once as one index matrix and the metrics of
every resample come from ``np.bincount`` over it, so 1,000 resamples of 1,000 items take milliseconds.

Point estimates equal scikit-learn's ``accuracy_score`` and ``f1_score(average="macro",
labels=range(k), zero_division=0)``: a class absent from the test set and never predicted counts as
F1 = 0. See docs/COMPARISON.md for how to read the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import binomtest


def _labels(values, k: int, what: str) -> np.ndarray:
    """Class indices as an int array, checked to lie in ``0..k-1``."""
    array = np.asarray(values, dtype=np.int64).ravel()
    if array.size and (array.min() < 0 or array.max() >= k):
        raise ValueError(f"{what} holds class indices outside 0..{k - 1} (the {k} class names given)")
    return array


def _check_pair(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} items but predictions have {y_pred.size}")


def _paired_labels(y_true, predictions: dict[str, Sequence[int]], k: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """``y_true`` and each named prediction as checked index arrays of one length; ValueError when
    a prediction's length differs or there are no items."""
    y_true = _labels(y_true, k, "y_true")
    arrays = [_labels(values, k, name) for name, values in predictions.items()]
    for array in arrays:
        _check_pair(y_true, array)
    if y_true.size == 0:
        raise ValueError("no paired items to compare: the two runs share no test item")
    return y_true, arrays


def stratified_resamples(y_true: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """An ``(n_resamples, n)`` matrix of item indices, drawn with replacement within each true class."""
    rng = np.random.default_rng(seed)
    columns = []
    for label in np.unique(y_true):
        members = np.flatnonzero(y_true == label)
        columns.append(members[rng.integers(0, members.size, size=(n_resamples, members.size))])
    return np.concatenate(columns, axis=1)


def _f1_per_class(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """Per-class F1 of each row: arrays of shape ``(r, n)`` give ``(r, k)`` (one bincount per count)."""
    r = y_true.shape[0]
    offsets = (np.arange(r) * k)[:, None]
    true_keys = offsets + y_true
    tp = np.bincount(true_keys[y_true == y_pred], minlength=r * k).reshape(r, k)
    true_counts = np.bincount(true_keys.ravel(), minlength=r * k).reshape(r, k)
    pred_counts = np.bincount((offsets + y_pred).ravel(), minlength=r * k).reshape(r, k)
    denominator = true_counts + pred_counts
    return np.divide(2.0 * tp, denominator, out=np.zeros((r, k)), where=denominator > 0)


def _percentile_interval(samples: np.ndarray, level: float) -> list[float]:
    """The equal-tailed percentile interval of bootstrap samples (last axis)."""
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(samples, [tail, 100.0 - tail], axis=-1)
    return [float(lo), float(hi)]


def _check_resampling(n_resamples: int, level: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1 (1,000 or more for a 95% interval), got {n_resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"the interval level must lie between 0 and 1 (e.g. 0.95), got {level}")


def bootstrap_metrics(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    class_names: Sequence[str],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Accuracy, macro-F1 and per-class F1 with stratified bootstrap intervals (JSON-plain dict).

    Keys: n, accuracy, accuracy_ci, macro_f1, macro_f1_ci, per_class_f1, per_class_f1_ci,
    n_resamples, level. Intervals are ``[lo, hi]``; with no items every figure is None.
    """
    _check_resampling(n_resamples, level)
    k = len(class_names)
    y_true, y_pred = _labels(y_true, k, "y_true"), _labels(y_pred, k, "y_pred")
    _check_pair(y_true, y_pred)
    result = {"n": int(y_true.size), "n_resamples": int(n_resamples), "level": float(level)}
    if y_true.size == 0:
        none_per_class = dict.fromkeys(class_names)
        return result | {
            "accuracy": None,
            "accuracy_ci": None,
            "macro_f1": None,
            "macro_f1_ci": None,
            "per_class_f1": none_per_class,
            "per_class_f1_ci": dict(none_per_class),
        }
    f1 = _f1_per_class(y_true[None, :], y_pred[None, :], k)[0]
    index = stratified_resamples(y_true, n_resamples, seed)
    f1_samples = _f1_per_class(y_true[index], y_pred[index], k)  # (r, k)
    accuracy_samples = (y_true[index] == y_pred[index]).mean(axis=1)
    return result | {
        "accuracy": float((y_true == y_pred).mean()),
        "accuracy_ci": _percentile_interval(accuracy_samples, level),
        "macro_f1": float(f1.mean()),
        "macro_f1_ci": _percentile_interval(f1_samples.mean(axis=1), level),
        "per_class_f1": {name: float(v) for name, v in zip(class_names, f1, strict=True)},
        "per_class_f1_ci": {name: _percentile_interval(f1_samples[:, i], level) for i, name in enumerate(class_names)},
    }


def mcnemar_exact_p(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, int, int]:
    """McNemar's exact test on paired per-item correctness: ``(p, b, c)``.

    ``b`` = items only A got right, ``c`` = items only B got right; p is the two-sided binomial test
    of b successes in b + c trials at 0.5 (1.0 when the runs never disagree).
    """
    b = int(np.sum(correct_a & ~correct_b))
    c = int(np.sum(~correct_a & correct_b))
    p = 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)
    return p, b, c


def paired_comparison(
    y_true: Sequence[int],
    pred_a: Sequence[int],
    pred_b: Sequence[int],
    class_names: Sequence[str],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """Compare two runs' predictions on the same items: differences are **A minus B**.

    The paired bootstrap resamples items (stratified by true class) with the same indices for both
    runs, so the interval of the difference reflects how the two runs differ item by item. Keys:
    n_paired, accuracy_a/b, macro_f1_a/b, macro_f1_diff, macro_f1_diff_ci, accuracy_diff,
    accuracy_diff_ci, mcnemar_p, discordant ([only A right, only B right]), alpha, significant.

    ``significant`` requires both tests to agree: McNemar p < alpha AND the (1 - alpha) interval of
    the macro-F1 difference excludes 0. A difference one test alone sees is reported as not significant.
    """
    _check_resampling(n_resamples, 1.0 - alpha)
    k = len(class_names)
    y_true, (pred_a, pred_b) = _paired_labels(y_true, {"pred_a": pred_a, "pred_b": pred_b}, k)
    f1_a = _f1_per_class(y_true[None, :], pred_a[None, :], k)[0].mean()
    f1_b = _f1_per_class(y_true[None, :], pred_b[None, :], k)[0].mean()
    correct_a, correct_b = y_true == pred_a, y_true == pred_b
    index = stratified_resamples(y_true, n_resamples, seed)
    f1_a_samples = _f1_per_class(y_true[index], pred_a[index], k).mean(axis=1)
    f1_diff = f1_a_samples - _f1_per_class(y_true[index], pred_b[index], k).mean(axis=1)
    accuracy_diff = correct_a[index].mean(axis=1) - correct_b[index].mean(axis=1)
    p, b, c = mcnemar_exact_p(correct_a, correct_b)
    f1_ci = _percentile_interval(f1_diff, 1.0 - alpha)
    excludes_zero = f1_ci[0] > 0 or f1_ci[1] < 0
    return {
        "n_paired": int(y_true.size),
        "accuracy_a": float(correct_a.mean()),
        "accuracy_b": float(correct_b.mean()),
        "macro_f1_a": float(f1_a),
        "macro_f1_b": float(f1_b),
        "macro_f1_diff": float(f1_a - f1_b),
        "macro_f1_diff_ci": f1_ci,
        "accuracy_diff": float(correct_a.mean() - correct_b.mean()),
        "accuracy_diff_ci": _percentile_interval(accuracy_diff, 1.0 - alpha),
        "mcnemar_p": p,
        "discordant": [b, c],
        "alpha": float(alpha),
        "n_resamples": int(n_resamples),
        "significant": bool(p < alpha and excludes_zero),
    }


def paired_gap_change(
    y_true: Sequence[int],
    a_reference: Sequence[int],
    a_test: Sequence[int],
    b_reference: Sequence[int],
    b_test: Sequence[int],
    class_names: Sequence[str],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """How much a gap between two inputs of the same items changed from run A to run B.

    Each run predicts every item twice (``reference``, e.g. the series as a CSV, and ``test``, the
    same series as a PNG); its gap is ``macro-F1(reference) - macro-F1(test)``. The change is
    **gap(B) - gap(A)** (negative: B closed the gap). One stratified resample of the items is used for
    all four predictions, so run-to-run noise shared by both inputs (a run that is better or worse
    on these items as a whole) cancels, which a comparison of two separately bootstrapped gaps
    cannot do. Keys: n_paired, gap_a, gap_b, change, change_ci, alpha, n_resamples, significant
    (the interval excludes 0).
    """
    _check_resampling(n_resamples, 1.0 - alpha)
    k = len(class_names)
    y_true, predictions = _paired_labels(y_true, {"a_reference": a_reference, "a_test": a_test,
                                                  "b_reference": b_reference, "b_test": b_test}, k)  # fmt: skip
    point = [_f1_per_class(y_true[None, :], p[None, :], k)[0].mean() for p in predictions]
    index = stratified_resamples(y_true, n_resamples, seed)
    samples = [_f1_per_class(y_true[index], p[index], k).mean(axis=1) for p in predictions]
    gap_a, gap_b = point[0] - point[1], point[2] - point[3]
    change = (samples[2] - samples[3]) - (samples[0] - samples[1])
    ci = _percentile_interval(change, 1.0 - alpha)
    return {
        "n_paired": int(y_true.size),
        "gap_a": float(gap_a),
        "gap_b": float(gap_b),
        "change": float(gap_b - gap_a),
        "change_ci": ci,
        "alpha": float(alpha),
        "n_resamples": int(n_resamples),
        "significant": bool(ci[0] > 0 or ci[1] < 0),
    }


def paired_over_seeds(
    y_true: Sequence[int],
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
    class_names: Sequence[str],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """An A/B of two recipes trained on several seeds, each pair ``(pred_a, pred_b)`` one seed's two
    runs, all predicting the same items: differences are **B minus A**, the change recipe B brings.

    The pooled difference is the mean over seeds of each seed's macro-F1 (and accuracy) difference.
    Its interval comes from one stratified resample of the items shared by every seed's pair, so it
    reflects which items were drawn, not how far a third seed could land: the seed-to-seed spread is
    shown by the per-seed figures (``per_pair``), not estimated (two or three seeds cannot).

    ``mcnemar_p`` is the exact sign test on the discordant items of all pairs together (only A right
    against only B right, summed over seeds), which treats each seed's discordant items as
    independent coin flips under the null of no recipe effect, as McNemar's test does within one seed.
    ``significant`` requires it below alpha AND the interval to exclude 0. ``same_sign``: every seed's
    macro-F1 difference points the same way as the pooled one (a zero difference counts as not).

    Keys: n_paired, n_pairs, macro_f1_a, macro_f1_b (means over seeds), macro_f1_diff,
    macro_f1_diff_ci, accuracy_diff, accuracy_diff_ci, mcnemar_p, discordant, per_pair (per seed:
    macro_f1_a, macro_f1_b, macro_f1_diff and its interval from the same resample, accuracy_diff,
    discordant, mcnemar_p: that seed's paired comparison), same_sign, alpha, n_resamples, significant.
    """
    _check_resampling(n_resamples, 1.0 - alpha)
    if not pairs:
        raise ValueError("no run pairs to compare: give one (pred_a, pred_b) pair per seed")
    k = len(class_names)
    named = {f"pair {i + 1} {side}": values for i, pair in enumerate(pairs) for side, values in zip("ab", pair, strict=True)}
    y_true, arrays = _paired_labels(y_true, named, k)
    index = stratified_resamples(y_true, n_resamples, seed)
    per_pair, f1_diffs, accuracy_diffs = [], [], []
    only_a = only_b = 0
    for pred_a, pred_b in zip(arrays[::2], arrays[1::2], strict=True):
        f1_a, f1_b = (_f1_per_class(y_true[None, :], p[None, :], k)[0].mean() for p in (pred_a, pred_b))
        correct_a, correct_b = y_true == pred_a, y_true == pred_b
        p_pair, b, c = mcnemar_exact_p(correct_a, correct_b)
        only_a, only_b = only_a + b, only_b + c
        f1_diffs.append(_f1_per_class(y_true[index], pred_b[index], k).mean(axis=1)
                        - _f1_per_class(y_true[index], pred_a[index], k).mean(axis=1))  # fmt: skip
        accuracy_diffs.append(correct_b[index].mean(axis=1) - correct_a[index].mean(axis=1))
        per_pair.append({
            "macro_f1_a": float(f1_a), "macro_f1_b": float(f1_b), "macro_f1_diff": float(f1_b - f1_a),
            "macro_f1_diff_ci": _percentile_interval(f1_diffs[-1], 1.0 - alpha),
            "accuracy_diff": float(correct_b.mean() - correct_a.mean()), "discordant": [b, c], "mcnemar_p": p_pair,
        })  # fmt: skip
    diff = float(np.mean([row["macro_f1_diff"] for row in per_pair]))
    ci = _percentile_interval(np.mean(f1_diffs, axis=0), 1.0 - alpha)
    p = 1.0 if only_a + only_b == 0 else float(binomtest(only_b, only_a + only_b, 0.5).pvalue)
    return {
        "n_paired": int(y_true.size),
        "n_pairs": len(per_pair),
        "macro_f1_a": float(np.mean([row["macro_f1_a"] for row in per_pair])),
        "macro_f1_b": float(np.mean([row["macro_f1_b"] for row in per_pair])),
        "macro_f1_diff": diff,
        "macro_f1_diff_ci": ci,
        "accuracy_diff": float(np.mean([row["accuracy_diff"] for row in per_pair])),
        "accuracy_diff_ci": _percentile_interval(np.mean(accuracy_diffs, axis=0), 1.0 - alpha),
        "mcnemar_p": p,
        "discordant": [only_a, only_b],
        "per_pair": per_pair,
        "same_sign": bool(diff != 0 and all(np.sign(row["macro_f1_diff"]) == np.sign(diff) for row in per_pair)),
        "alpha": float(alpha),
        "n_resamples": int(n_resamples),
        "significant": bool(p < alpha and (ci[0] > 0 or ci[1] < 0)),
    }


def format_interval(value: float | None, ci: Sequence[float] | None, digits: int = 3) -> str:
    """``0.909 [0.890, 0.927]``; the bare value when there is no interval, an em dash when no value."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    if ci is None or len(ci) != 2 or any(v is None for v in ci):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
