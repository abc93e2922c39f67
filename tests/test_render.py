"""The one renderer: team style, size override, varied styles, reuse determinism, PNG bytes."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

from backend.data import render
from backend.data.render import TEAM_STYLE, RenderStyle, encode_png, render_series, varied_style

SMALL = (64, 48)


def _series(seed: int, n: int = 300) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).normal(size=n))


def _is_blue(image: np.ndarray) -> np.ndarray:
    r, g, b = (image[..., k].astype(int) for k in range(3))
    return (b - r > 80) & (b - g > 40)


def test_team_style_is_an_800x600_white_plot_with_one_blue_line():
    image = render_series(_series(0))
    assert image.shape == (600, 800, 3) and image.dtype == np.uint8
    assert (image[0, 0] == 255).all() and (image[-1, -1] == 255).all()
    assert _is_blue(image).sum() > 500
    assert (image.sum(axis=2) < 100).sum() > 200  # black axes, ticks and tick labels


def test_size_override_gives_exact_pixel_sizes():
    for size in [(224, 224), (96, 72), (16, 16), (1000, 123)]:
        assert render_series(_series(1), size=size).shape == (size[1], size[0], 3)


@pytest.mark.parametrize("style", [TEAM_STYLE, RenderStyle(tight=True, title="Load", y_label="value", fill_alpha=0.3)])
def test_same_input_same_pixels_whether_the_figure_is_fresh_or_reused(style):
    first = render_series(_series(2), style=style, size=SMALL)
    render_series(_series(3, n=4000) * 1e5, style=style, size=SMALL)  # a very different series, same figure
    again = render_series(_series(2), style=style, size=SMALL)
    render._plot_for.cache_clear()
    fresh = render_series(_series(2), style=style, size=SMALL)
    assert np.array_equal(first, again) and np.array_equal(first, fresh)
    assert not np.array_equal(first, render_series(_series(4), style=style, size=SMALL))


def test_concurrent_threads_get_the_same_pixels_as_sequential_calls():
    expected = [render_series(_series(k), size=SMALL) for k in range(6)]
    results: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda k=k: results.update({k: render_series(_series(k), size=SMALL)}))
               for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(np.array_equal(expected[k], results[k]) for k in range(6))


def test_nan_values_leave_gaps_instead_of_failing():
    values = _series(5)
    values[100:120] = np.nan
    assert render_series(values, size=SMALL).shape == (48, 64, 3)


@pytest.mark.parametrize(("values", "options", "message"), [
    (np.ones((3, 3)), {}, "one-dimensional"),
    ([1.0, np.inf, 2.0], {}, "1 infinite value(s)"),
    ([1.0], {}, "at least 2 numeric values"),
    ([1.0, 2.0], {"size": (8, 8)}, "each 16-4096"),
    ([1.0, 2.0], {"size": (100,)}, "(width, height)"),
    ([1.0, 2.0], {"timestamps": ["2020-01-01"], "style": RenderStyle(x_axis="date")}, "got 1 timestamps for 2 values"),
])
def test_bad_input_says_what_is_wrong(values, options, message):
    with pytest.raises(ValueError) as error:
        render_series(values, **options)
    assert message in str(error.value)


def test_dates_change_the_x_axis_only_when_the_style_asks_for_them():
    values = _series(6, n=200)
    stamps = np.datetime64("2021-03-01") + np.arange(200) * np.timedelta64(1, "D")
    assert np.array_equal(render_series(values, timestamps=stamps, size=SMALL), render_series(values, size=SMALL))
    dated = RenderStyle(x_axis="date")
    assert not np.array_equal(render_series(values, timestamps=stamps, style=dated), render_series(values, style=dated))


def test_varied_style_is_deterministic_per_seed_and_actually_varies():
    assert varied_style(np.random.default_rng(3)) == varied_style(np.random.default_rng(3))
    styles = [varied_style(np.random.default_rng(seed)) for seed in range(60)]
    assert len({s.pixel_size() for s in styles}) > 50
    assert "dark_background" in {s.theme for s in styles} and len({s.theme for s in styles}) >= 5
    assert len({s.line_color for s in styles}) >= 8
    assert any(s.marker for s in styles) and any(s.fill_alpha for s in styles) and any(s.title for s in styles)
    assert {s.x_axis for s in styles} == {"index", "date"}


def test_varied_styles_render_at_their_own_size_with_their_own_background():
    styles = [varied_style(np.random.default_rng(seed)) for seed in range(40)]
    dark = next(s for s in styles if s.theme == "dark_background")
    light = next(s for s in styles if s.theme == "default" and s.face_color is None)
    dark_image, light_image = render_series(_series(7), style=dark), render_series(_series(7), style=light)
    assert dark_image.shape == (dark.pixel_size()[1], dark.pixel_size()[0], 3)
    assert dark_image[0, 0].max() < 60 and light_image[0, 0].min() == 255


def test_encode_png_is_deterministic_and_lossless():
    image = render_series(_series(8), size=SMALL)
    data = encode_png(image)
    assert data == encode_png(image.copy())
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), image)
    with pytest.raises(ValueError, match="uint8"):
        encode_png(image.astype(np.float32))


def test_team_style_is_the_default_and_matches_the_design():
    assert TEAM_STYLE.pixel_size() == (800, 600)
    assert TEAM_STYLE.x_axis == "index" and TEAM_STYLE.theme == "default"
