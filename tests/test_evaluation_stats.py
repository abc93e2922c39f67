"""Bootstrap intervals and the paired comparison on planted predictions with a known truth."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, f1_score

from backend.evaluation.stats import (
    bootstrap_metrics,
    format_interval,
    paired_comparison,
    paired_gap_change,
    paired_over_seeds,
)

CLASSES = [f"c{i}" for i in range(9)]


def planted(n: int, accuracy: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Balanced labels over nine classes and predictions right on exactly ``accuracy`` of them."""
    rng = np.random.default_rng(seed)
    y_true = np.repeat(np.arange(9), n // 9)
    y_pred = y_true.copy()
    wrong = rng.choice(y_true.size, size=round((1 - accuracy) * y_true.size), replace=False)
    y_pred[wrong] = (y_true[wrong] + rng.integers(1, 9, size=wrong.size)) % 9
    return y_true, y_pred


def test_point_estimates_equal_sklearn_including_absent_classes():
    y_true, y_pred = planted(900, 0.8, seed=1)
    y_pred[y_pred == 8] = 0  # class 8 never predicted
    result = bootstrap_metrics(y_true, y_pred, CLASSES + ["never_seen"])
    labels = list(range(10))
    assert result["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert result["macro_f1"] == pytest.approx(
        f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    )
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    assert list(result["per_class_f1"].values()) == pytest.approx(list(per_class))
    assert result["per_class_f1"]["never_seen"] == 0.0 and result["n"] == 900


def test_accuracy_interval_covers_truth_with_binomial_width():
    """Accuracy 0.9 on 900 items: width about 2 * 1.96 * sqrt(.9 * .1 / 900) = 0.039."""
    y_true, y_pred = planted(900, 0.9, seed=2)
    result = bootstrap_metrics(y_true, y_pred, CLASSES, n_resamples=2000, seed=3)
    lo, hi = result["accuracy_ci"]
    assert lo < 0.9 < hi
    assert hi - lo == pytest.approx(2 * 1.96 * np.sqrt(0.9 * 0.1 / 900), abs=0.006)
    lo, hi = result["macro_f1_ci"]
    assert lo < result["macro_f1"] < hi and 0.02 < hi - lo < 0.06
    for name in CLASSES:
        lo, hi = result["per_class_f1_ci"][name]
        assert lo <= result["per_class_f1"][name] <= hi


def test_intervals_cover_the_population_value_in_about_95_percent_of_samples():
    """Draw test sets from a model that is right with probability 0.85: the interval covers 0.85."""
    rng = np.random.default_rng(7)
    covered = 0
    for trial in range(100):
        y_true = rng.integers(0, 9, size=400)
        right = rng.random(400) < 0.85
        y_pred = np.where(right, y_true, (y_true + rng.integers(1, 9, size=400)) % 9)
        lo, hi = bootstrap_metrics(y_true, y_pred, CLASSES, seed=trial)["accuracy_ci"]
        covered += lo <= 0.85 <= hi
    assert covered >= 88


def test_seeded_stratified_and_fast():
    y_true, y_pred = planted(999, 0.9, seed=4)
    timings = []
    for _ in range(3):  # best of three: the machine is shared, the first call warms numpy up
        start = time.perf_counter()
        first = bootstrap_metrics(y_true, y_pred, CLASSES, n_resamples=1000, seed=5)
        timings.append(time.perf_counter() - start)
    assert min(timings) < 1.0
    assert bootstrap_metrics(y_true, y_pred, CLASSES, n_resamples=1000, seed=5) == first
    assert bootstrap_metrics(y_true, y_pred, CLASSES, n_resamples=1000, seed=6) != first
    # every item right: each stratified resample is also all right, so the interval is a point
    perfect = bootstrap_metrics(y_true, y_true, CLASSES)
    assert perfect["accuracy_ci"] == [1.0, 1.0] and perfect["macro_f1_ci"] == [1.0, 1.0]


def test_empty_input_and_bad_labels():
    empty = bootstrap_metrics([], [], CLASSES)
    assert empty["n"] == 0 and empty["accuracy"] is None and empty["macro_f1_ci"] is None
    with pytest.raises(ValueError, match="outside 0..8"):
        bootstrap_metrics([0, 9], [0, 1], CLASSES)
    with pytest.raises(ValueError, match="2 items but predictions have 3"):
        bootstrap_metrics([0, 1], [0, 1, 2], CLASSES)


def test_mcnemar_p_equals_binomtest_on_discordant_counts():
    y_true, pred_a = planted(900, 0.9, seed=8)
    _, pred_b = planted(900, 0.86, seed=9)
    result = paired_comparison(y_true, pred_a, pred_b, CLASSES)
    correct_a, correct_b = pred_a == y_true, pred_b == y_true
    b, c = int(np.sum(correct_a & ~correct_b)), int(np.sum(~correct_a & correct_b))
    assert result["discordant"] == [b, c]
    assert result["mcnemar_p"] == pytest.approx(binomtest(b, b + c, 0.5).pvalue)
    assert result["accuracy_diff"] == pytest.approx(correct_a.mean() - correct_b.mean())  # A minus B
    assert result["n_paired"] == 900


def test_identical_predictions_are_not_significant():
    y_true, y_pred = planted(900, 0.9, seed=10)
    result = paired_comparison(y_true, y_pred, y_pred.copy(), CLASSES)
    assert result["mcnemar_p"] == 1.0 and result["discordant"] == [0, 0]
    assert result["macro_f1_diff"] == 0.0 and result["macro_f1_diff_ci"] == [0.0, 0.0]
    assert not result["significant"]


def test_large_planted_difference_is_significant_and_small_one_is_not():
    y_true, strong = planted(900, 0.95, seed=11)
    weak = strong.copy()
    flip = np.flatnonzero(strong == y_true)[:90]  # B loses 90 items A gets right
    weak[flip] = (y_true[flip] + 1) % 9
    result = paired_comparison(y_true, strong, weak, CLASSES)
    assert result["significant"] and result["macro_f1_diff"] > 0.08
    assert result["macro_f1_diff_ci"][0] > 0
    slightly = strong.copy()
    slightly[flip[:3]] = (y_true[flip[:3]] + 1) % 9  # 3 items of 900: noise
    result = paired_comparison(y_true, strong, slightly, CLASSES)
    assert not result["significant"] and result["mcnemar_p"] > 0.05


def _wrong(y_true: np.ndarray, y_pred: np.ndarray, items: np.ndarray) -> np.ndarray:
    out = y_pred.copy()
    out[items] = (y_true[items] + 1) % 9
    return out


def test_gap_change_equals_the_difference_of_sklearn_gaps():
    y_true, csv_a = planted(360, 0.95, seed=20)
    rng = np.random.default_rng(21)
    png_a = _wrong(y_true, csv_a, rng.choice(360, 30, replace=False))
    csv_b = _wrong(y_true, csv_a, rng.choice(360, 10, replace=False))
    png_b = _wrong(y_true, csv_b, rng.choice(360, 12, replace=False))

    def f1(pred):
        return f1_score(y_true, pred, average="macro", labels=range(9), zero_division=0)

    result = paired_gap_change(y_true, csv_a, png_a, csv_b, png_b, CLASSES)
    assert result["gap_a"] == pytest.approx(f1(csv_a) - f1(png_a))
    assert result["gap_b"] == pytest.approx(f1(csv_b) - f1(png_b))
    assert result["change"] == pytest.approx(result["gap_b"] - result["gap_a"])
    assert result["change_ci"][0] <= result["change"] <= result["change_ci"][1]


def test_a_closed_gap_is_significant_and_noise_shared_by_both_inputs_cancels():
    y_true, csv = planted(900, 0.95, seed=22)
    right = np.flatnonzero(csv == y_true)
    png_a = _wrong(y_true, csv, right[:90])  # run A loses 90 series as PNGs
    png_b = _wrong(y_true, csv, right[:9])  # run B loses 9
    closed = paired_gap_change(y_true, csv, png_a, csv, png_b, CLASSES)
    assert closed["change"] < -0.07 and closed["change_ci"][1] < 0 and closed["significant"]
    # run B is worse on 60 series whichever way they come, with the same PNG losses as A: the runs
    # differ, their gaps do not, and the interval of the change is exactly zero
    shared = right[200:260]
    same = paired_gap_change(y_true, csv, csv, _wrong(y_true, csv, shared), _wrong(y_true, csv, shared), CLASSES)
    assert same["change"] == 0.0 and same["change_ci"] == [0.0, 0.0] and not same["significant"]


def test_gap_change_rejects_unpaired_predictions():
    y_true, pred = planted(90, 0.9, seed=23)
    with pytest.raises(ValueError, match="90 items"):
        paired_gap_change(y_true, pred, pred, pred, pred[:-1], CLASSES)
    with pytest.raises(ValueError, match="no paired items"):
        paired_gap_change([], [], [], [], [], CLASSES)


def test_one_seed_over_seeds_is_the_paired_comparison_turned_round():
    y_true, pred_a = planted(900, 0.9, seed=30)
    _, pred_b = planted(900, 0.93, seed=31)
    single = paired_comparison(y_true, pred_a, pred_b, CLASSES)  # A minus B
    pooled = paired_over_seeds(y_true, [(pred_a, pred_b)], CLASSES)  # B minus A
    assert pooled["n_pairs"] == 1 and pooled["n_paired"] == 900
    assert pooled["macro_f1_diff"] == pytest.approx(-single["macro_f1_diff"])
    assert pooled["macro_f1_diff_ci"] == pytest.approx([-single["macro_f1_diff_ci"][1], -single["macro_f1_diff_ci"][0]])
    assert pooled["discordant"] == single["discordant"] and pooled["mcnemar_p"] == pytest.approx(single["mcnemar_p"])
    (seed,) = pooled["per_pair"]  # the seed's own comparison, from the same resample
    assert seed["macro_f1_diff_ci"] == pytest.approx(pooled["macro_f1_diff_ci"])
    assert seed["mcnemar_p"] == pytest.approx(single["mcnemar_p"]) and seed["discordant"] == single["discordant"]


def test_seeds_pool_their_differences_and_discordant_items():
    y_true, base = planted(900, 0.9, seed=32)
    right = np.flatnonzero(base == y_true)
    wrong = np.flatnonzero(base != y_true)

    def f1(pred):
        return f1_score(y_true, pred, average="macro", labels=range(9), zero_division=0)

    # seed 1: B fixes 12 of A's errors; seed 2: B fixes 6 and loses 2 others A gets right
    a1, b1 = base, base.copy()
    b1[wrong[:12]] = y_true[wrong[:12]]
    a2, b2 = _wrong(y_true, base, right[:5]), base.copy()
    b2[wrong[20:26]] = y_true[wrong[20:26]]
    b2 = _wrong(y_true, b2, right[100:102])
    result = paired_over_seeds(y_true, [(a1, b1), (a2, b2)], CLASSES)
    per_seed = [f1(b1) - f1(a1), f1(b2) - f1(a2)]
    assert [row["macro_f1_diff"] for row in result["per_pair"]] == pytest.approx(per_seed)
    assert result["macro_f1_diff"] == pytest.approx(np.mean(per_seed))
    assert result["macro_f1_a"] == pytest.approx((f1(a1) + f1(a2)) / 2)
    assert result["per_pair"][1]["discordant"] == [2, 5 + 6]  # only A right, only B right
    assert result["discordant"] == [2, 12 + 11]
    assert result["mcnemar_p"] == pytest.approx(binomtest(23, 25, 0.5).pvalue)
    assert result["same_sign"] and result["significant"] and result["macro_f1_diff_ci"][0] > 0
    assert result["accuracy_diff"] == pytest.approx(((b1 == y_true).mean() - (a1 == y_true).mean()
                                                     + (b2 == y_true).mean() - (a2 == y_true).mean()) / 2)  # fmt: skip


def test_seeds_that_disagree_cancel_and_are_flagged():
    y_true, base = planted(900, 0.9, seed=33)
    wrong = np.flatnonzero(base != y_true)
    better = base.copy()
    better[wrong[:15]] = y_true[wrong[:15]]  # the same 15 items, fixed by B in seed 1 and by A in seed 2
    result = paired_over_seeds(y_true, [(base, better), (better, base)], CLASSES)
    assert result["macro_f1_diff"] == pytest.approx(0.0, abs=1e-12)
    assert result["discordant"] == [15, 15] and result["mcnemar_p"] == 1.0
    assert not result["same_sign"] and not result["significant"]
    with pytest.raises(ValueError, match="no run pairs"):
        paired_over_seeds(y_true, [], CLASSES)
    with pytest.raises(ValueError, match="900 items"):
        paired_over_seeds(y_true, [(base, better[:-1])], CLASSES)


def test_format_interval():
    assert format_interval(0.9091, [0.8904, 0.9271]) == "0.909 [0.890, 0.927]"
    assert format_interval(0.9091, None) == "0.909"
    assert format_interval(None, None) == "—"
    assert format_interval(0.5, [0.25, 0.75], digits=2) == "0.50 [0.25, 0.75]"
