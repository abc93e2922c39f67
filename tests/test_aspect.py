"""A non-square model input (``aspect``): more columns for the time axis at the same pixel count.

The crop is squeezed to ``image_size`` rows by ``round(image_size * aspect)`` columns, in the
training cache and at prediction alike, recorded in the checkpoint's ``preprocessing``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime
import pandas as pd
import pytest

from backend import store
from backend.config import run_dir
from backend.data.cache import _cache_key, load_dataset_cache
from backend.data.images import resize_rgb
from backend.data.plotarea import apply_resize, crop_plot_area, input_shape, prepare_image
from backend.data.render import encode_png, render_plot
from backend.data.series import generate_series
from backend.data.transforms import to_tensor_batch
from backend.export import export_run
from backend.predict import Predictor
from backend.runs.lifecycle import build_config, train_run
from backend.training.checkpoint import load_checkpoint
from backend.training.config import ConfigError
from dashboard.train_form import applies

CROP = {"crop": "plot_area", "finder": 3}


def two_lines(gap: int) -> np.ndarray:
    """A white 800x600 page with two one-pixel black lines down it, ``gap`` pixels apart."""
    page = np.full((600, 800, 3), 255, np.uint8)
    page[:, 400] = page[:, 400 + gap] = 0
    return page


def dark_runs(image: np.ndarray) -> int:
    """How many separate groups of columns hold something darker than the white face."""
    dark = image.min(axis=(0, 2)) < 250
    return int(dark[0]) + int(np.count_nonzero(dark[1:] & ~dark[:-1]))


def test_a_wide_input_has_its_columns_and_tells_close_features_apart():
    image, _ = render_plot(generate_series("point_anomaly", np.random.default_rng(0)).values, size=(800, 600))
    wide = prepare_image(image, 32, {**CROP, "aspect": 2.0})
    assert wide.shape == (32, 64, 3)
    np.testing.assert_array_equal(wide, resize_rgb(crop_plot_area(image, 3), 32, 64))
    assert prepare_image(image, 32, CROP).shape == (32, 32, 3)  # square when the aspect is not given
    assert input_shape(32, None) == (32, 32) and input_shape(90, {"aspect": 2}) == (90, 180)
    assert input_shape(64, {"aspect": 0.5}) == (64, 32)

    # Two lines 16 source columns apart: one smudge at 32 columns (25 source columns each), two
    # lines with a light column between them at 128 (6.25 each).
    page = two_lines(16)
    assert dark_runs(prepare_image(page, 32, {"aspect": 1.0})) == 1
    assert dark_runs(prepare_image(page, 32, {"aspect": 4.0})) == 2
    # the ink resize thickens by the squeeze factor of each direction: 6 columns at 128 wide
    thin = apply_resize(page, 32, "bilinear", 128)
    inked = apply_resize(page, 32, "ink", 128)
    assert inked.shape == thin.shape == (32, 128, 3) and inked.min() < thin.min() - 100


@pytest.mark.parametrize("aspect", [0.1, 5, "2", True, float("nan")])
def test_an_aspect_out_of_range_is_refused(aspect):
    with pytest.raises(ValueError, match=r"aspect \(input width / height\) must be a number from 0.25 to 4"):
        prepare_image(two_lines(4), 32, {"aspect": aspect})


def test_each_aspect_has_its_own_cache_and_square_keys_are_kept(tmp_path):
    image, _ = render_plot(generate_series("mean_shift", np.random.default_rng(1)).values, size=(400, 300))
    path = tmp_path / "plot.png"
    path.write_bytes(encode_png(image))
    cache = tmp_path / "cache"
    for aspect, width in ((1.0, 32), (2.0, 64), (0.5, 16)):
        steps = {**CROP, "aspect": aspect}
        cached = load_dataset_cache([path], 32, cache_dir=cache, preprocessing=steps)
        assert cached.shape == (1, 32, width, 3)
        np.testing.assert_array_equal(cached[0], prepare_image(image, 32, steps))
    assert len(list(cache.glob("*.npy"))) == 3
    digests = ["0" * 40]  # a cache decoded before the aspect was recorded keeps its key
    assert _cache_key(digests, 32, CROP) == _cache_key(digests, 32, {**CROP, "aspect": 1.0})
    assert _cache_key(digests, 32, CROP) != _cache_key(digests, 32, {**CROP, "aspect": 2.0})


def test_the_config_checks_the_aspect_and_the_form_offers_it_where_it_applies(tiny_dataset):
    base = {"data": str(tiny_dataset), "model": "visual_cnn"}
    assert build_config(base).aspect == 1.0
    assert build_config({**base, "aspect": "2"}).preprocessing()["aspect"] == 2.0  # as the CLI's --aspect 2 gives it
    with pytest.raises(ConfigError, match="aspect .* must be a number from 0.25 to 4, got 0.0"):
        build_config({**base, "aspect": 0})
    with pytest.raises(ConfigError, match="an input 8 pixels wide; it must be at least 16"):
        build_config({**base, "image_size": 16, "aspect": 0.5})
    with pytest.raises(ConfigError, match="vae_classifier reconstructs square images: it needs aspect 1, got 2"):
        build_config({**base, "model": "vae_classifier", "aspect": 2})
    assert build_config({**base, "model": "vae_classifier"}).aspect == 1.0
    assert applies("aspect", {"model": "visual_cnn"}) and applies("aspect", {"model": "resnet50"})
    assert not applies("aspect", {"model": "vae_classifier"}) and not applies("aspect", {"model": "series_cnn"})


def test_a_wide_run_predicts_and_exports_at_the_shape_it_trained(tiny_dataset, tmp_path):
    config = build_config({"data": str(tiny_dataset), "model": "visual_cnn", "image_size": 32, "aspect": 2,
                           "epochs": 1, "batch_size": 8, "device": "cpu", "precision": "fp32",
                           "model_kwargs": {"width": 4}})  # fmt: skip
    result = train_run(config)
    assert result.status == "completed"
    run = store.get_run(result.run_id)
    _, checkpoint = load_checkpoint(run.checkpoint_path)
    assert checkpoint["preprocessing"]["aspect"] == 2.0 and checkpoint["image_size"] == 32

    predictor = Predictor.from_run(run.id, device="cpu", precision="fp32")
    assert predictor.input_shape == (32, 64) and "64x32 px" in predictor.describe()
    stored = pd.read_csv(run_dir(run.id) / "test_predictions.csv")
    files = [Path(f) for f in stored["file"]]
    seen = load_dataset_cache(files, 32, preprocessing=checkpoint["preprocessing"])
    assert seen.shape == (len(files), 32, 64, 3)
    probabilities, _ = predictor.predict_batch(seen)
    names = checkpoint["class_names"]
    assert [names[i] for i in probabilities.argmax(axis=1)] == list(stored["predicted"])  # as the run scored them
    uploaded = predictor.predict_files([(f.name, f) for f in files[:4]])  # the upload path prepares alike
    assert [p.predicted for p in uploaded] == list(stored["predicted"][:4])
    with pytest.raises(ValueError, match=r"expected uint8 images of shape \(N, 32, 64, 3\)"):
        predictor.predict_batch(np.zeros((1, 32, 32, 3), np.uint8))

    sidecar = export_run(run.id, "onnx", tmp_path / "wide.onnx")
    assert sidecar["input"]["shape"] == ["batch", 3, 32, 64] and sidecar["aspect"] == 2.0
    assert sidecar["parity"]["passed"] and "round(image_size * aspect) columns" in sidecar["preprocessing"]
    assert json.loads((tmp_path / "wide.onnx.json").read_text()) == sidecar
    session = onnxruntime.InferenceSession(str(tmp_path / "wide.onnx"), providers=["CPUExecutionProvider"])
    batch = to_tensor_batch(seen, predictor.mean, predictor.std).numpy()
    logits = session.run(None, {"images": batch})[0]
    assert [names[i] for i in logits.argmax(axis=1)] == list(stored["predicted"])
