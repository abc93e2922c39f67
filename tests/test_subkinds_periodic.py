"""The periodic collective sub-kinds and the small in-range contextual ones: generated into a real
dataset, recorded in its manifest, and their anomaly is where the manifest says."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from backend.data.generate import generate_dataset
from backend.data.series import SUBKINDS, generate_series

NEW = {
    "collective_anomaly": ("cycle_frequency", "cycle_damped", "cycle_shape", "cycle_level"),
    "contextual_anomaly": ("inner_dip", "inner_peak"),
}


@pytest.fixture(scope="module")
def periodic_dataset(tmp_path_factory):
    """Only the new sub-kinds, drawn strong (difficulty 0.5) and small: 8 series per class."""
    out = tmp_path_factory.mktemp("periodic") / "set"
    generate_dataset(out, train_per_class=6, test_per_class=2, seed=4, classes=list(NEW),
                     subkinds={c: list(s) for c, s in NEW.items()}, difficulty=0.5, size=(64, 48), workers=1)
    return out


def season_of(params: dict, n: int) -> np.ndarray:
    """The normal seasonal pattern the manifest records, in noise units (no anomaly, no noise)."""
    t = np.arange(n)
    total = np.zeros(n)
    for part in params["background"]["seasonality"]:
        angle = 2 * np.pi * t / part["period"] + part["phase"]
        total += part["amplitude"] * (np.sin(angle) + part.get("harmonic", 0.0) * np.sin(2 * angle))
    return total + np.linspace(0.0, params["background"].get("trend_change", 0.0), n)


def test_the_new_subkinds_are_registered():
    for class_name, names in NEW.items():
        assert set(names) <= set(SUBKINDS[class_name])


def test_every_new_subkind_is_in_the_manifest_with_its_window(periodic_dataset):
    manifest = json.loads((periodic_dataset / "manifest.json").read_text())
    found = {(r["class"], r["subkind"]) for r in manifest["samples"]}
    assert found == {(c, s) for c, names in NEW.items() for s in names}
    for record in manifest["samples"]:
        values = pd.read_csv(periodic_dataset / record["csv"])["value"].to_numpy()
        params = record["params"]
        location = params["location"]
        assert 0 < location["start"] < location["end"] <= len(values) == params["length"]
        # what is left after the recorded season: noise outside the window, the anomaly inside it
        residual = (values - params["offset"]) / params["scale"] - season_of(params, len(values))
        smooth = np.convolve(residual, np.ones(5) / 5, mode="same")
        inside = np.zeros(len(values), dtype=bool)
        inside[location["start"] : location["end"]] = True
        near = np.zeros(len(values), dtype=bool)  # the window and the 2 samples the smoothing spreads it to
        near[max(0, location["start"] - 2) : location["end"] + 2] = True
        assert np.abs(smooth[~near]).max() < np.abs(smooth[inside]).max(), record["id"]
        assert np.median(np.abs(residual[~inside])) < 1.5, record["id"]  # outside: unit noise only


@pytest.mark.parametrize("subkind", NEW["contextual_anomaly"])
def test_the_small_dips_and_peaks_stay_inside_the_cycle_and_weaken_with_difficulty(subkind):
    depths = {}
    for difficulty in (1.0, 3.0):
        series = generate_series("contextual_anomaly", np.random.default_rng(7), subkinds=[subkind],
                                 difficulty=difficulty)  # fmt: skip
        params = series.params
        shape = (series.values - params["offset"]) / params["scale"]  # noise units
        season = season_of(params, len(shape))
        window = slice(params["location"]["start"], params["location"]["end"])
        smooth = np.convolve(shape, np.ones(3) / 3, mode="same")[window]
        assert season.min() - 2.5 < smooth.min() and smooth.max() < season.max() + 2.5  # in range (+ noise)
        change = np.convolve(shape - season, np.ones(3) / 3, mode="same")[window]
        depths[difficulty] = float(-change.min() if subkind == "inner_dip" else change.max())
    assert depths[1.0] > 1.0  # a dip (a peak) clear of the noise at difficulty 1
    assert depths[3.0] < depths[1.0]


def test_cycle_level_and_frequency_record_their_strength():
    level = generate_series("collective_anomaly", np.random.default_rng(1), subkinds=["cycle_level"])
    assert level.params["magnitude"] == pytest.approx(abs(level.params["shift"])) and level.params["magnitude"] > 0
    assert "offset" in level.params and level.params["offset"] != level.params["shift"]  # the series' own offset
    faster_or_slower = generate_series("collective_anomaly", np.random.default_rng(2), subkinds=["cycle_frequency"])
    factor = faster_or_slower.params["factor"]
    assert factor != 1.0 and (factor >= 1.5 or factor <= 1 / 1.5)
