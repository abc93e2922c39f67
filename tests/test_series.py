"""The synthetic series: classes, determinism, variety, and each class's defining property."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backend.data.series import (
    CLASSES,
    FIVE_CLASS_PRESET,
    SUBKINDS,
    check_series_options,
    generate_series,
)

PROPERTY_LENGTH = 1500  # long enough for the statistics below to be stable


def _draw(class_name: str, count: int, seed: int = 0, **options) -> list:
    return [generate_series(class_name, np.random.default_rng([seed, i]), **options) for i in range(count)]


def _noise_units(series) -> np.ndarray:
    """Undo the random offset and scale: the generator's own units (base noise std = 1)."""
    return (series.values - series.params["offset"]) / series.params["scale"]


def test_nine_sorted_classes_each_with_several_subkinds():
    assert len(CLASSES) == 9 and list(CLASSES) == sorted(CLASSES)
    assert set(SUBKINDS) == set(CLASSES)
    assert all(len(SUBKINDS[c]) >= 3 for c in CLASSES)
    assert set(FIVE_CLASS_PRESET) < set(CLASSES) and len(FIVE_CLASS_PRESET) == 5


@pytest.mark.parametrize("class_name", CLASSES)
def test_same_rng_state_gives_the_same_series(class_name):
    a = generate_series(class_name, np.random.default_rng(7))
    b = generate_series(class_name, np.random.default_rng(7))
    c = generate_series(class_name, np.random.default_rng(8))
    assert np.array_equal(a.values, b.values) and a.params == b.params
    assert a.values.dtype == np.float64 and a.values.ndim == 1
    assert not np.array_equal(a.values[: len(c.values)], c.values[: len(a.values)])


@pytest.mark.parametrize("class_name", CLASSES)
def test_samples_of_one_class_vary_in_length_scale_offset_and_subkind(class_name):
    batch = _draw(class_name, 30)
    lengths = [s.params["length"] for s in batch]
    scales = [s.params["scale"] for s in batch]
    assert len(set(lengths)) >= 25 and min(lengths) >= 100 and max(lengths) <= 5000
    assert max(lengths) / min(lengths) > 5
    assert max(scales) / min(scales) > 1e3
    assert len({s.params["offset"] for s in batch}) > 10
    assert len({s.subkind for s in batch}) >= 3
    assert all(len(s.values) == s.params["length"] for s in batch)


def test_noise_types_and_backgrounds_vary():
    batch = [s for c in ("point_anomaly", "mean_shift", "variance_shift") for s in _draw(c, 40)]
    assert {s.params["noise"]["kind"] for s in batch} == {"white", "ar1", "student_t"}
    assert {s.params["background"]["kind"] for s in batch} == {"flat", "trend", "seasonal"}


def test_trends_and_walks_sometimes_carry_a_season():
    """A season is one more thing that varies: it must never be what tells a class."""
    for class_name in ("deterministic_trend", "stochastic_trend", "trend_shift"):
        kinds = {s.params["background"]["kind"] for s in _draw(class_name, 40)
                 if s.subkind != "seasonal"}
        assert kinds == {"flat", "seasonal"}, class_name


def test_every_subkind_appears_in_a_big_enough_run():
    for class_name in CLASSES:
        seen = {s.subkind for s in _draw(class_name, 60, length=200)}
        assert seen == set(SUBKINDS[class_name]), class_name


@pytest.mark.parametrize("class_name", CLASSES)
def test_params_are_json_and_locate_the_anomaly(class_name):
    for series in _draw(class_name, 8):
        params = json.loads(json.dumps(series.params))
        assert params["subkind"] == series.subkind in SUBKINDS[class_name]
        location = params["location"]
        assert {"start", "end"} <= set(location) or "indices" in location or "segments" in location
        assert np.all(np.asarray(params["magnitude"]) > 0)


def test_length_and_subkinds_options_are_respected():
    series = generate_series("mean_shift", np.random.default_rng(0), length=321, subkinds=["ramp_up"])
    assert len(series.values) == 321 and series.subkind == "ramp_up"
    assert {s.subkind for s in _draw("volatility", 10, subkinds=["garch", "bursts"])} == {"garch", "bursts"}


@pytest.mark.parametrize("class_name", ["point_anomaly", "mean_shift", "collective_anomaly", "contextual_anomaly",
                                        "trend_shift", "deterministic_trend"])
def test_difficulty_divides_the_anomaly_magnitude(class_name):
    for i in range(5):
        easy = generate_series(class_name, np.random.default_rng(i), difficulty=1.0, subkinds=SUBKINDS[class_name][:1])
        hard = generate_series(class_name, np.random.default_rng(i), difficulty=2.0, subkinds=SUBKINDS[class_name][:1])
        assert np.ravel(hard.params["magnitude"])[0] < np.ravel(easy.params["magnitude"])[0]


@pytest.mark.parametrize(("options", "message"), [
    ({"class_name": "spikes"}, "unknown anomaly class 'spikes'; choose one of: collective_anomaly"),
    ({"class_name": "mean_shift", "length": 10}, "length must be a whole number >= 50"),
    ({"class_name": "mean_shift", "difficulty": 0}, "difficulty must be a positive number"),
    ({"class_name": "mean_shift", "subkinds": ["wobble"]}, "unknown sub-kind(s) wobble for mean_shift; choose from: step_up"),
])
def test_bad_options_say_what_to_change(options, message):
    with pytest.raises(ValueError) as error:
        check_series_options(**options)
    assert message in str(error.value)


# -- each class's defining property, on the generator's own units --------------------------------


def _batch(class_name: str, per_subkind: int = 4) -> list:
    return [s for k, sub in enumerate(SUBKINDS[class_name])
            for s in _draw(class_name, per_subkind, seed=100 + k, length=PROPERTY_LENGTH, subkinds=[sub])]


def _detrended(x: np.ndarray) -> np.ndarray:
    t = np.arange(len(x))
    return x - np.polyval(np.polyfit(t, x, 1), t)


def _deseasoned(series) -> np.ndarray:
    """The series in noise units less the season its params record (if any)."""
    x, background = _noise_units(series), series.params["background"]
    t = np.arange(len(x))
    for part in background.get("seasonality", []) if background["kind"] == "seasonal" else []:
        x = x - part["amplitude"] * np.sin(2 * np.pi * t / part["period"] + part["phase"])
    return x


def _moving_average(x: np.ndarray, window: int) -> np.ndarray:
    padded = np.pad(x, window // 2, mode="edge")
    return np.convolve(padded, np.ones(window) / window, mode="valid")[: len(x)]


def _swings(x: np.ndarray, level: float) -> int:
    """How many times ``x`` goes from above +level to below -level or back (half-cycles)."""
    sides = np.sign(x[np.abs(x - x.mean()) > level] - x.mean())
    return int(np.count_nonzero(np.diff(sides)))


def test_point_anomalies_are_the_most_isolated_points():
    for series in _batch("point_anomaly"):
        x = _noise_units(series)
        window = np.lib.stride_tricks.sliding_window_view(np.pad(x, 4, mode="edge"), 9)
        residual = np.abs(x - np.median(window, axis=1))
        indices = series.params["location"]["indices"]
        assert 1 <= len(indices) <= 3
        assert set(np.argsort(residual)[-len(indices):]) == set(indices), series.params


def test_mean_shift_moves_the_level_by_its_magnitude_for_good():
    for series in _batch("mean_shift"):
        x, p = _noise_units(series), series.params
        start, end = p["location"]["start"], p["location"]["end"]
        change = x[end:].mean() - x[:start].mean()
        assert np.sign(change) == p["direction"]
        assert abs(change - p["direction"] * p["magnitude"]) < 0.5 * p["magnitude"], p
        assert 0.2 * len(x) <= start <= 0.8 * len(x)


def test_variance_shift_changes_the_noise_level_once():
    for series in _batch("variance_shift"):
        x, p = _noise_units(series), series.params
        start, end = p["location"]["start"], p["location"]["end"]
        ratio = np.diff(x[end:]).std() / np.diff(x[:start]).std()
        if p["std_ratio"] > 1:
            assert ratio > 1.8, p
        else:
            assert ratio < 1 / 1.8, p


def test_trend_shift_changes_the_slope_without_a_jump():
    for series in _batch("trend_shift"):
        x, p = _noise_units(series), series.params
        change = p["location"]["start"]
        t = np.arange(len(x))
        before, after = np.polyfit(t[:change], x[:change], 1), np.polyfit(t[change:], x[change:], 1)
        assert abs(after[0] - before[0]) > 0.5 * abs(p["slopes"][1] - p["slopes"][0]), p
        jump = np.polyval(after, change) - np.polyval(before, change)
        assert abs(jump) < 0.15 * p["magnitude"], p


def test_collective_anomaly_is_one_segment_that_returns_to_normal():
    for series in _batch("collective_anomaly"):
        x, p = _noise_units(series), series.params
        start, end = p["location"]["start"], p["location"]["end"]
        assert 0.1 * len(x) <= start < end <= 0.9 * len(x) + 1, p
        inside, outside = x[start:end], np.concatenate([x[:start], x[end:]])
        if series.subkind == "flatline":
            assert np.ptp(inside) == 0
        elif series.subkind in ("bump", "dip", "dropout"):
            t = np.arange(len(x))
            outside_t = np.concatenate([t[:start], t[end:]])
            residual = x - np.polyval(np.polyfit(outside_t, outside, 1), t)  # the background's trend removed
            shift = abs(np.median(residual[start:end]))
            assert shift > 1.5 * np.std(np.diff(outside)) / np.sqrt(2), p
            assert abs(np.median(residual[:start])) < 0.5 * shift and abs(np.median(residual[end:])) < 0.5 * shift
        elif series.subkind == "frequency":  # the season runs faster: more swings per sample
            season = p["background"]["seasonality"][0]
            smooth = _moving_average(x, max(3, int(season["period"] / 10)))
            level = season["amplitude"] / 2
            rate_inside = _swings(smooth[start:end], level) / (end - start)
            rate_outside = (_swings(smooth[:start], level) + _swings(smooth[end:], level)) / (len(x) - end + start)
            assert rate_inside > 1.8 * rate_outside, p
        elif series.subkind in ("oscillation", "amplitude"):  # the segment swings wider than the rest
            assert np.std(_detrended(inside)) > 1.3 * np.std(_detrended(outside)), p
        else:  # the cycle_* sub-kinds: checked against the recorded season in test_subkinds_periodic.py
            assert series.subkind.startswith("cycle_") and p["magnitude"] > 0, p


def test_contextual_anomaly_is_seasonal_and_stays_in_the_normal_range():
    for series in _batch("contextual_anomaly"):
        x, p = _noise_units(series), series.params
        assert p["background"]["kind"] == "seasonal"
        start, end = p["location"]["start"], p["location"]["end"]
        rest = _detrended(x)
        inside, outside = rest[start:end], np.concatenate([rest[:start], rest[end:]])
        assert outside.min() <= np.quantile(inside, 0.01) and np.quantile(inside, 0.99) <= outside.max(), p
        assert end - start <= 1.3 * p["background"]["seasonality"][0]["period"]


def test_deterministic_trend_is_a_smooth_curve_inside_a_constant_band():
    for series in _batch("deterministic_trend"):
        x = _noise_units(series)
        smooth = _moving_average(x, 25)
        residual = (x - smooth)[25:-25]
        assert np.ptp(smooth) > 4 * residual.std(), series.params
        halves = np.array_split(residual, 2)
        assert 0.5 < halves[0].std() / halves[1].std() < 2.0


def test_stochastic_trend_wanders_without_reverting():
    for series in _batch("stochastic_trend"):
        y = _detrended(_deseasoned(series))
        lag = len(y) // 50
        assert np.corrcoef(y[:-lag], y[lag:])[0, 1] > 0.4, series.params


def test_volatility_has_repeated_clustered_changes_of_noise_level():
    for series in _batch("volatility"):
        y = _detrended(_noise_units(series))
        p = series.params
        if series.subkind == "bursts":
            assert len(p["location"]["segments"]) >= 3
            inside = np.concatenate([y[a:b] for a, b in p["location"]["segments"]])
            assert inside.std() > 2 * np.median(np.abs(y)) / 0.6745, p
        else:  # clustering: big moves follow big moves, while the values themselves barely correlate
            squared = y * y - np.mean(y * y)
            assert np.corrcoef(squared[:-1], squared[1:])[0, 1] > 0.05, p
            assert abs(np.corrcoef(y[:-1], y[1:])[0, 1]) < 0.2, p
