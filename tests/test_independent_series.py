"""The clean-room series generator in bench/independent_series.py: determinism, shapes, class properties, CSVs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.independent_series import CLASSES, MAX_LENGTH, MIN_LENGTH, generate, generate_with_info, main, write_dataset

SEEDS = range(12)


def _robust_z(values: np.ndarray) -> np.ndarray:
    med = np.median(values)
    mad = np.median(np.abs(values - med)) * 1.4826
    return np.abs(values - med) / mad


@pytest.mark.parametrize("name", CLASSES)
def test_same_seed_same_series(name):
    a = generate(name, np.random.default_rng(7))
    b = generate(name, np.random.default_rng(7))
    c = generate(name, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert len(a) != len(c) or not np.array_equal(a, c)


@pytest.mark.parametrize("name", CLASSES)
def test_finite_and_lengths(name):
    for seed in SEEDS:
        y = generate(name, np.random.default_rng(seed))
        assert y.ndim == 1 and MIN_LENGTH <= len(y) <= MAX_LENGTH
        assert np.isfinite(y).all() and np.std(y) > 0
    for length in (MIN_LENGTH, 777, MAX_LENGTH):
        y = generate(name, np.random.default_rng(length), length=length)
        assert len(y) == length and np.isfinite(y).all()


def test_unknown_class_and_short_length_rejected():
    with pytest.raises(ValueError):
        generate("not_a_class", np.random.default_rng(0))
    with pytest.raises(ValueError):
        generate("mean_shift", np.random.default_rng(0), length=20)


def test_mean_shift_levels_differ_clearly():
    for seed in SEEDS:
        _, info = generate_with_info("mean_shift", np.random.default_rng(seed))
        x, k, ramp = info["raw"], info["change"], info["ramp"]
        before, after = x[:k], x[k + ramp :]
        assert abs(after.mean() - before.mean()) > 2.0 * before.std()


def test_variance_shift_spread_ratio():
    for seed in SEEDS:
        _, info = generate_with_info("variance_shift", np.random.default_rng(seed))
        d, k = np.diff(info["raw"]), info["change"]
        ratio = d[k:].std() / d[: k - 1].std()
        assert max(ratio, 1 / ratio) > 1.8
        # the mean stays put: level difference small relative to the larger spread
        x = info["raw"]
        assert abs(x[k:].mean() - x[:k].mean()) < 0.5 * max(x[k:].std(), x[:k].std())


def test_point_anomaly_has_outlying_differences():
    for seed in SEEDS:
        _, info = generate_with_info("point_anomaly", np.random.default_rng(seed))
        z = _robust_z(np.diff(info["raw"]))
        assert z.max() > 4.5
        assert 1 <= len(info["positions"]) <= 4 and all(1 <= w <= 3 for w in info["widths"])


def test_trend_shift_continuous_level_and_slope_change():
    for seed in SEEDS:
        _, info = generate_with_info("trend_shift", np.random.default_rng(seed))
        x, k = info["raw"], info["change"]
        t = np.linspace(0, 1, len(x))
        p1, p2 = np.polyfit(t[:k], x[:k], 1), np.polyfit(t[k:], x[k:], 1)
        assert abs(np.polyval(p1, t[k]) - np.polyval(p2, t[k])) < 2.0  # level continuous (noise units)
        assert abs(p1[0] - p2[0]) > 8.0  # slope clearly changes


def test_stochastic_trend_wanders_and_volatility_clusters():
    for seed in SEEDS:
        x = generate_with_info("stochastic_trend", np.random.default_rng(seed))[1]["raw"]
        xc = x - x.mean()
        assert np.dot(xc[:-1], xc[1:]) / np.dot(xc, xc) > 0.8
    acfs = []
    for seed in range(24):
        x = generate_with_info("volatility", np.random.default_rng(seed))[1]["raw"]
        a = np.abs(x - x.mean())
        a -= a.mean()
        acfs.append(np.mean([np.dot(a[:-lag], a[lag:]) / np.dot(a, a) for lag in range(1, 6)]))
    assert np.median(acfs) > 0.1  # |x| is autocorrelated: bursts of high spread


def test_contextual_anomaly_stays_in_range():
    for seed in SEEDS:
        _, info = generate_with_info("contextual_anomaly", np.random.default_rng(seed))
        x, a, b = info["raw"], info["start"], info["end"]
        rest = np.concatenate([x[:a], x[b:]])
        margin = 0.1 * np.ptp(rest)
        lo, hi = np.percentile(x[a:b], [2, 98])  # robust to a single heavy-tailed noise sample
        assert rest.min() - margin <= lo and hi <= rest.max() + margin


def test_write_dataset_csvs(tmp_path):
    write_dataset(tmp_path / "a", per_class=2, seed=3, manifest=True)
    write_dataset(tmp_path / "b", per_class=2, seed=3)
    for name in CLASSES:
        files = sorted((tmp_path / "a" / name).glob("*.csv"))
        assert [f.name for f in files] == ["0.csv", "1.csv"]
        for f in files:
            assert f.read_bytes() == (tmp_path / "b" / name / f.name).read_bytes()
            df = pd.read_csv(f)
            assert list(df.columns) == ["timestamp", "value"]
            assert MIN_LENGTH <= len(df) <= MAX_LENGTH
            stamps = pd.to_datetime(df["timestamp"])
            assert stamps.is_monotonic_increasing and stamps.is_unique
            assert np.isfinite(df["value"].to_numpy(dtype=float)).all()
    manifest = pd.read_csv(tmp_path / "a" / "manifest.csv")
    assert len(manifest) == 2 * len(CLASSES)


def test_cli(tmp_path, capsys):
    main(["--out", str(tmp_path), "--per-class", "1", "--seed", "5"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(CLASSES)
    assert "wrote 9 series" in capsys.readouterr().out
