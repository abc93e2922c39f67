"""Plot-area crop: finds the axes on team, varied and dark plots and on plain matplotlib figures with
planted frames, keeps every drawn sample of the series, and is recorded in checkpoints (old ones
keep whole images)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from backend.data.cache import load_dataset_cache
from backend.data.images import resize_rgb
from backend.data.plotarea import (
    PLOT_AREA_VERSION,
    apply_crop,
    apply_polarity,
    apply_resize,
    crop_plot_area,
    find_plot_area,
    is_dark,
    prepare_image,
    preprocessing_of,
)
from backend.data.render import TEAM_STYLE, RenderStyle, encode_png, render_plot
from backend.data.series import generate_series
from backend.models import create_model
from backend.predict import Predictor
from backend.runs.lifecycle import build_config
from backend.training.checkpoint import build_checkpoint, load_checkpoint, save_checkpoint
from backend.training.config import ConfigError, TrainConfig

LINE = "#d62728"  # a colour no theme uses for its frame, text or grid


def assert_near(box, area, tolerance: float) -> None:
    """The found box matches the rendered axes within ``tolerance`` pixels on every side."""
    found = (box.left, box.top, box.right, box.bottom)
    truth = (area.left, area.top, area.right, area.bottom)
    assert np.allclose(found, truth, atol=tolerance), f"found {found}, axes at {truth}"


def line_pixels(image: np.ndarray) -> np.ndarray:
    """Boolean mask of the pixels drawn in exactly the line's colour."""
    rgb = np.array(matplotlib.colors.to_rgb(LINE)) * 255
    return (np.abs(image.astype(int) - rgb.round()).max(axis=2) <= 2)


def series(kind: str = "point_anomaly", seed: int = 0) -> np.ndarray:
    return generate_series(kind, np.random.default_rng(seed)).values


@pytest.mark.parametrize("kind", ["volatility", "point_anomaly", "mean_shift", "contextual_anomaly"])
def test_team_plots_crop_to_their_axes_at_full_and_tiny_size(kind):
    for size, tolerance in ((None, 3), ((96, 72), 2)):
        image, area = render_plot(series(kind), size=size)
        assert_near(find_plot_area(image), area, tolerance)


STYLES = {
    "dark": RenderStyle(theme="dark_background", line_color="#4fc3f7", title="Sensor 4", x_axis="date"),
    "dark_face": RenderStyle(theme="dark_background", face_color="#22272e", grid=True, marker="o"),
    "ggplot": RenderStyle(theme="ggplot", width_in=5, height_in=3, dpi=120, legend="upper left", tight=True),
    "seaborn_dark": RenderStyle(theme="seaborn-v0_8-darkgrid", fill_alpha=0.3, y_label="value", font_size=11),
    "classic": RenderStyle(theme="classic", width_in=9, height_in=4, dpi=72, x_label="time"),
    "bmh": RenderStyle(theme="bmh", width_in=4, height_in=4, dpi=150, marker="x", line_width=0.7),
    "solarized": RenderStyle(theme="Solarize_Light2", title="Daily load", x_axis="date"),
}


@pytest.mark.parametrize("name", sorted(STYLES))
def test_varied_and_dark_theme_plots_crop_to_their_axes(name):
    values = series("mean_shift", seed=3)
    stamps = np.datetime64("2024-01-01") + np.arange(len(values)) * np.timedelta64(1, "h")
    image, area = render_plot(values, timestamps=stamps, style=STYLES[name])
    assert_near(find_plot_area(image), area, tolerance=0.01 * max(image.shape) + 2)


def planted(rect: tuple[float, float, float, float], *, face="white", axes_face=None, spine="black",
            spine_width=1.0, size=(7.0, 4.0), dpi=90, values=None, hide=(), label_size=None, grid=None,
            x_margin=None, ticks_in=False, legend_outside=False, date_labels=0, **plot) -> tuple[np.ndarray, tuple]:
    """A plain matplotlib figure (not our renderer) with its axes planted at ``rect`` (figure
    fractions): the pixels and the frame's box in pixels (left, top, right, bottom).

    ``label_size`` sets the tick labels' font size, ``grid`` a grid line style, ``x_margin`` the
    axes' horizontal margin (0: the line touches the spines), ``ticks_in`` inward ticks and
    ``legend_outside`` a legend to the right of the axes; ``date_labels`` that many x tick labels.
    ``values="dense"`` draws white noise that fills most of the axes."""
    figure = Figure(figsize=size, dpi=dpi, facecolor=face)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_axes(rect, facecolor=axes_face or face)
    for spine_artist in axes.spines.values():
        spine_artist.set_color(spine)
        spine_artist.set_linewidth(spine_width)
    for side in hide:
        axes.spines[side].set_visible(False)
    y = series("point_anomaly", seed=5) if values is None else values
    if isinstance(y, str):  # "dense": white noise whose thick line fills most of every column
        y = np.random.default_rng(2).normal(size=3000)
    axes.plot(y, color=LINE, label="value", **plot)
    axes.set_title("planted", color="grey")
    axes.tick_params(colors="grey", direction="in" if ticks_in else "out")
    if label_size:
        axes.tick_params(labelsize=label_size, pad=1)
    if date_labels:  # a label every few samples, nearly touching the next, as date axes draw them
        ticks = np.arange(0, len(y), max(1, len(y) // date_labels))
        axes.set_xticks(ticks, [f"2013-{1 + i % 12:02d}" for i in range(len(ticks))])
    if grid:
        axes.grid(True, linestyle=grid, color="#777777")
    if x_margin is not None:
        axes.margins(x=x_margin)
    if legend_outside:
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[:, :, :3].copy()
    width, height = canvas.get_width_height()
    left, bottom, w, h = rect
    return image, (left * width, (1 - bottom - h) * height, (left + w) * width, (1 - bottom) * height)


PLANTED = {
    "light": dict(rect=(0.1, 0.15, 0.8, 0.7)),
    "off_centre": dict(rect=(0.3, 0.05, 0.65, 0.5), spine="#444444", spine_width=2.5, size=(5.0, 5.0)),
    "dark": dict(rect=(0.2, 0.2, 0.7, 0.6), face="#101418", spine="#e0e0e0", marker="s", markersize=3),
    "grey_axes_face": dict(rect=(0.12, 0.1, 0.85, 0.8), axes_face="#e8e8e8", spine="#e8e8e8", dpi=150),
    "despined": dict(rect=(0.15, 0.12, 0.8, 0.75), hide=("top", "right"), spine="#333333", size=(6.0, 4.5)),
    "despined_dark": dict(rect=(0.1, 0.2, 0.85, 0.7), hide=("top", "right"), face="#1e1e1e", spine="#bbbbbb"),
    "wide_thin": dict(rect=(0.05, 0.3, 0.9, 0.4), size=(10.0, 2.5), dpi=60, linewidth=3),
    # despined axes other tools draw that plot-area version 1 missed (docs/CROP.md: 23 of 300
    # other-tool plots were off their axes, 5-9 after, mostly dark themes with no visible spines)
    "despined_tiny_legend": dict(rect=(0.2, 0.2, 0.55, 0.65), hide=("top", "right"), size=(1.6, 1.05), dpi=100,
                                 label_size=4, legend_outside=True),
    "despined_labels_at_spine": dict(rect=(0.12, 0.1, 0.8, 0.8), hide=("top", "right"), size=(5.0, 5.0), dpi=100,
                                     label_size=5, ticks_in=True, date_labels=9),
    "despined_big_labels": dict(rect=(0.12, 0.12, 0.8, 0.8), hide=("top", "right"), size=(9.0, 6.0), dpi=90,
                                label_size=22, grid="-."),
    "despined_line_on_spine": dict(rect=(0.12, 0.12, 0.8, 0.8), hide=("top", "right"), size=(11.0, 5.0),
                                   dpi=90, spine_width=3.0, x_margin=0, values="dense", linewidth=2),
    "despined_dark_grid": dict(rect=(0.12, 0.1, 0.83, 0.85), hide=("top", "right"), face="#0b0c10",
                               spine="#bbbbbb", size=(2.6, 1.5), dpi=100, label_size=4, grid="--", values="dense"),
}


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_planted_frames_in_other_tools_plots_are_found(name):
    image, (left, top, right, bottom) = planted(**PLANTED[name])
    box = find_plot_area(image)
    tolerance = 0.01 * max(image.shape) + 2
    assert np.allclose((box.left, box.top, box.right, box.bottom), (left, top, right, bottom), atol=tolerance)


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_the_crop_keeps_every_drawn_sample_and_the_spike(name):
    """The label lives in the line: all of it (the spike's tip included) survives the crop."""
    values = np.sin(np.linspace(0, 12, 200))
    values[120] = 4.0  # a point anomaly: the highest sample, drawn at the top of the axes
    image, truth = planted(**{**PLANTED[name], "values": values})
    box = find_plot_area(image)
    drawn = line_pixels(image)
    left, _, right, _ = (round(edge) for edge in truth)
    drawn[:, : left - 2], drawn[:, right + 2 :] = False, False  # a legend's sample stroke is not data
    kept = drawn[box.top : box.bottom, box.left : box.right].sum()
    assert kept >= 0.98 * drawn.sum()  # only anti-aliased pixels under a spine may go
    peak_row = np.flatnonzero(drawn.any(axis=1))[0]
    assert box.top <= peak_row < box.bottom


def test_a_plot_with_no_frame_is_cropped_to_its_line_by_finder_3_and_left_whole_by_finder_2():
    image, axes = planted(rect=(0.1, 0.1, 0.8, 0.8), spine="white")  # spines as white as the face
    whole = (0, 0, image.shape[1], image.shape[0])
    old = find_plot_area(image, version=2)
    assert (old.left, old.top, old.right, old.bottom) == whole
    box = find_plot_area(image)  # the line's extent and matplotlib's 5% margins: the axes
    assert np.allclose((box.left, box.top, box.right, box.bottom), axes, atol=0.01 * max(image.shape) + 2)
    drawn = line_pixels(image)
    assert drawn[box.top : box.bottom, box.left : box.right].sum() == drawn.sum()
    assert apply_crop(image, "plot_area", version=2).shape == image.shape


FRAMELESS = {
    # ggplot and seaborn darkgrid themes with the axes face overridden to the figure's: no frame,
    # no visible grid, only the line, its labels and a legend (finder 2 kept them whole)
    "ggplot_white_face": RenderStyle(theme="ggplot", face_color="#ffffff", legend="lower right", title="Channel 3"),
    "darkgrid_cream_face": RenderStyle(theme="seaborn-v0_8-darkgrid", face_color="#fffdf5", x_axis="date",
                                       width_in=6, height_in=4, dpi=100),
    "darkgrid_fill": RenderStyle(theme="seaborn-v0_8-darkgrid", face_color="#ffffff", fill_alpha=0.4, y_label="signal"),
    # fivethirtyeight: grid lines and no spines; finder 2 cropped to the outermost grid lines
    "fivethirtyeight": RenderStyle(theme="fivethirtyeight", title="Throughput", x_axis="date"),
    "fivethirtyeight_small": RenderStyle(theme="fivethirtyeight", width_in=5, height_in=3.2, dpi=80, font_size=7),
}


@pytest.mark.parametrize("name", sorted(FRAMELESS))
def test_frameless_and_grid_only_plots_crop_to_their_axes_with_finder_3(name):
    values = series("mean_shift", seed=4)
    stamps = np.datetime64("2024-01-01") + np.arange(len(values)) * np.timedelta64(1, "h")
    image, area = render_plot(values, timestamps=stamps, style=FRAMELESS[name])
    truth = np.array((area.left, area.top, area.right, area.bottom))

    def iou(box) -> float:
        inner = max(0, min(box.right, truth[2]) - max(box.left, truth[0])) * max(0, min(box.bottom, truth[3]) - max(box.top, truth[1]))
        return inner / (box.width * box.height + (truth[2] - truth[0]) * (truth[3] - truth[1]) - inner)

    new, old = find_plot_area(image), find_plot_area(image, version=2)
    assert iou(new) >= 0.9, (new, truth)  # on the axes, as bench/crop.py counts it (a legend may widen it)
    assert iou(old) < 0.9  # what finder 2 found: the whole image or the grid inside the axes


def test_a_frame_with_a_legend_against_it_is_not_widened():
    """A legend box drawn against the frame's top right continues the frame's top edge, not its
    bottom one: finder 3 leaves that frame as it is."""
    image, axes = planted(**PLANTED["light"], legend_outside=True)
    box = find_plot_area(image)
    assert np.allclose((box.left, box.top, box.right, box.bottom), axes, atol=0.01 * max(image.shape) + 2)
    assert find_plot_area(image) == find_plot_area(image, version=2)


def test_blank_and_tiny_images_are_left_whole_and_bad_input_is_refused():
    for image in (np.full((50, 80, 3), 255, np.uint8), np.zeros((10, 10, 3), np.uint8)):
        assert apply_crop(image, "plot_area").shape == image.shape
    with pytest.raises(ValueError, match="uint8"):
        find_plot_area(np.zeros((40, 40), np.uint8))
    with pytest.raises(ValueError, match="unknown crop 'edges'"):
        apply_crop(np.zeros((40, 40, 3), np.uint8), "edges")


def test_train_config_crops_by_default_and_refuses_unknown_crops(tiny_dataset):
    assert TrainConfig.from_dict({"data": str(tiny_dataset)}).crop == "plot_area"
    assert TrainConfig.from_dict({"data": str(tiny_dataset), "crop": "none"}).crop == "none"
    with pytest.raises(ConfigError, match="unknown crop 'frame'; choose one of: plot_area, none"):
        TrainConfig.from_dict({"data": str(tiny_dataset), "crop": "frame"})


def test_data_that_draws_an_l_is_not_taken_for_spines():
    """No spines at all; a long flat stretch of a thick, dense line meets a tall spike, which draws an
    L as solid as two spines would. Plot-area version 2 before its corner test cropped to that L and
    cut 70% of the line; nothing drawn may be cut."""
    values = np.random.default_rng(3).normal(scale=0.001, size=3000)
    values[300:700] *= 8  # bursts on either side of the spike, as a volatility plot has
    values[780:860] *= 20
    values[800] = 0.09
    image, _ = planted((0.08, 0.08, 0.9, 0.88), hide=("top", "right", "bottom", "left"), face="#f0f0f0",
                       size=(10.0, 6.7), dpi=100, values=values, linewidth=3)  # fmt: skip
    box = find_plot_area(image)
    drawn = line_pixels(image)
    assert drawn[box.top : box.bottom, box.left : box.right].sum() >= 0.98 * drawn.sum()


def test_the_cache_is_keyed_by_the_crop_and_holds_cropped_pixels(tmp_path):
    image, _ = render_plot(series(), style=replace(TEAM_STYLE, theme="dark_background"), size=(160, 120))
    path = tmp_path / "plot.png"
    path.write_bytes(encode_png(image))
    cache = tmp_path / "cache"
    whole = load_dataset_cache([path], 32, cache_dir=cache)
    cropped = load_dataset_cache([path], 32, cache_dir=cache, preprocessing={"crop": "plot_area"})
    assert len(list(cache.glob("*.npy"))) == 2  # one file per setting, never shared
    np.testing.assert_array_equal(whole[0], resize_rgb(image, 32))
    np.testing.assert_array_equal(cropped[0], resize_rgb(apply_crop(image, "plot_area"), 32))
    assert not np.array_equal(whole, cropped)


def test_each_plot_area_finder_has_its_own_cropped_cache_and_whole_images_share_one(tmp_path):
    """Boxes found by another finder version are never reused; whole-image caches do not depend on it,
    and a finder-2 crop keeps the key it had before the finder was recorded."""
    from backend.data.cache import _cache_key

    image, _ = planted(rect=(0.1, 0.1, 0.8, 0.8), spine="white")  # frameless: finders 2 and 3 differ
    path = tmp_path / "plot.png"
    path.write_bytes(encode_png(image))
    cache = tmp_path / "cache"
    found = {}
    for crop in ("none", "plot_area"):
        for finder in (2, 3):
            steps = {"crop": crop, "finder": finder}
            found[crop, finder] = load_dataset_cache([path], 32, cache_dir=cache, preprocessing=steps)[0]
            np.testing.assert_array_equal(found[crop, finder], prepare_image(image, 32, steps))
    assert len(list(cache.glob("*.npy"))) == 3  # one whole, one per finder
    np.testing.assert_array_equal(found["none", 2], found["none", 3])
    assert not np.array_equal(found["plot_area", 2], found["plot_area", 3])
    digests = ["0" * 40]
    assert _cache_key(digests, 32, {"crop": "plot_area"}) == _cache_key(digests, 32, {"crop": "plot_area", "finder": 2})
    with pytest.raises(ValueError, match="unknown plot-area finder version 9"):
        load_dataset_cache([path], 32, cache_dir=cache, preprocessing={"crop": "plot_area", "finder": 9})


def checkpoint_file(tmp_path: Path, preprocessing) -> Path:
    model = create_model("visual_cnn", num_classes=2, image_size=32, width=4)
    checkpoint = build_checkpoint(model, class_names=["a", "b"], image_size=32,
                                  normalization={"mean": [0.5] * 3, "std": [0.25] * 3}, epoch=1,
                                  metrics={}, config={}, preprocessing=preprocessing)  # fmt: skip
    if preprocessing is None:
        del checkpoint["preprocessing"]  # as written before the key existed
    return save_checkpoint(tmp_path / f"{preprocessing is None}.pt", checkpoint)


def test_old_checkpoints_predict_whole_images_and_new_ones_crop_as_they_trained(tmp_path):
    image, _ = render_plot(series(), size=(200, 150))
    old_path = checkpoint_file(tmp_path, None)
    assert "preprocessing" not in torch.load(old_path, weights_only=True)
    _, old = load_checkpoint(old_path)
    assert old["preprocessing"] == {"crop": "none", "polarity": "none", "finder": 2, "resize": "bilinear",
                                    "aspect": 1.0} == preprocessing_of({})
    old_predictor = Predictor.from_checkpoint(old_path, device="cpu", precision="fp32")
    np.testing.assert_array_equal(old_predictor.prepare(image), resize_rgb(image, 32))  # unchanged path

    new_predictor = Predictor.from_checkpoint(checkpoint_file(tmp_path, {"crop": "plot_area"}), "cpu", "fp32")
    assert new_predictor.preprocessing == {"crop": "plot_area", "polarity": "none", "finder": 2, "resize": "bilinear",
                                           "aspect": 1.0}  # written before all four
    expected = prepare_image(image, 32, {"crop": "plot_area"})
    np.testing.assert_array_equal(new_predictor.prepare(image), expected)
    assert not np.array_equal(expected, resize_rgb(image, 32))
    # the same image predicts differently through the two paths only because of the crop
    both = new_predictor.predict_images([image])[0].probabilities
    direct, _ = new_predictor.predict_batch(expected[None].copy())
    assert np.allclose(list(both.values()), direct[0], atol=1e-6)


def test_checkpoints_predict_with_the_plot_area_finder_they_trained_with(tmp_path):
    """A frameless plot: a checkpoint that records no finder (written under finder 2) still sees it
    whole, one written with finder 3 sees the line's extent, as each run's training cache did."""
    image, _ = planted(rect=(0.1, 0.1, 0.8, 0.8), spine="white")
    before = Predictor.from_checkpoint(checkpoint_file(tmp_path, {"crop": "plot_area"}), "cpu", "fp32")
    np.testing.assert_array_equal(before.prepare(image), resize_rgb(image, 32))
    (tmp_path / "finder3").mkdir()
    now = Predictor.from_checkpoint(checkpoint_file(tmp_path / "finder3", {"crop": "plot_area", "finder": 3}), "cpu", "fp32")
    assert now.preprocessing["finder"] == 3
    np.testing.assert_array_equal(now.prepare(image), resize_rgb(crop_plot_area(image, 3), 32))
    assert not np.array_equal(now.prepare(image), before.prepare(image))
    with pytest.raises(ValueError, match="unknown plot-area finder version 1"):
        prepare_image(image, 32, {"crop": "plot_area", "finder": 1})


def test_a_run_can_train_with_an_older_finder_and_keeps_it(tmp_path):
    """``finder`` picks the plot-area finder a run crops with (to A/B a finder or match an older run):
    validated, written into the checkpoint, and the one its stored predictions come from."""
    import pandas as pd

    from backend import store
    from backend.config import run_dir
    from backend.runs.lifecycle import train_run

    style = FRAMELESS["fivethirtyeight_small"]  # finders 2 and 3 crop these differently
    for split, count in (("train", 6), ("test", 3)):
        for kind in ("mean_shift", "point_anomaly"):
            folder = tmp_path / "grid_only" / split / kind
            folder.mkdir(parents=True)
            for i in range(count):
                image, _ = render_plot(series(kind, seed=50 * (split == "test") + i), style=style)
                (folder / f"{i}.png").write_bytes(encode_png(image))
    options = {"data": str(tmp_path / "grid_only"), "model": "visual_cnn", "image_size": 32, "epochs": 1,
               "batch_size": 6, "device": "cpu", "precision": "fp32", "model_kwargs": {"width": 4}}  # fmt: skip
    assert build_config(options).finder == PLOT_AREA_VERSION
    for bad, message in ((1, "unknown plot-area finder version 1; this build has 2, 3"), ("new", "finder must be a whole number")):
        with pytest.raises(ConfigError, match=message):
            build_config({**options, "finder": bad})

    result = train_run(build_config({**options, "finder": "2"}))  # as the CLI's --finder 2 gives it
    assert result.status == "completed"
    run = store.get_run(result.run_id)
    assert run.config["finder"] == 2
    _, checkpoint = load_checkpoint(run.checkpoint_path)
    assert checkpoint["preprocessing"]["finder"] == 2
    stored = pd.read_csv(run_dir(run.id) / "test_predictions.csv")
    files = [Path(f) for f in stored["file"]]
    seen = load_dataset_cache(files, 32, preprocessing=checkpoint["preprocessing"])
    newest = load_dataset_cache(files, 32, preprocessing={**checkpoint["preprocessing"], "finder": PLOT_AREA_VERSION})
    assert not np.array_equal(seen, newest)  # the older finder's crops, not the newest's
    predictor = Predictor.from_checkpoint(run.checkpoint_path, device="cpu", precision="fp32")
    direct, _ = predictor.predict_batch(seen)
    names = checkpoint["class_names"]
    assert [names[i] for i in direct.argmax(axis=1)] == list(stored["predicted"])


def test_gradcam_columns_and_overlay_follow_the_crop():
    from backend.explain import Explanation, anomaly_columns

    values = series("point_anomaly", seed=2)
    image, area = render_plot(values, size=(400, 300))
    box = find_plot_area(image)
    record = {"image_size": [400, 300], "plot_area": area.to_dict(), "params": {"location": {"indices": [40]}}}
    whole = anomaly_columns(record, 64)
    cropped = anomaly_columns(record, 64, (box.left, box.right))
    expected = (area.x(40) - box.left) * 64 / (box.right - box.left)  # the sample's column in the cropped map
    assert cropped[0][0] <= expected < cropped[0][1] and cropped != whole
    cam = np.zeros((64, 64), np.float32)
    cam[:, 30:34] = 1.0
    painted = Explanation("plot", image, cam, "point_anomaly", box=box).overlay()
    assert painted.shape == image.shape
    changed = np.abs(painted.astype(int) - image.astype(int)).max(axis=2) > 0
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    assert box.top <= rows.min() and rows.max() < box.bottom and box.left <= cols.min() and cols.max() < box.right


# --- polarity: dark themes reach the model as light ones -------------------------------------------

DARK = replace(TEAM_STYLE, theme="dark_background")


def test_light_polarity_inverts_dark_theme_plots_and_nothing_else():
    dark, _ = render_plot(series(), style=DARK, size=(160, 120))
    light, _ = render_plot(series(), size=(160, 120))
    assert is_dark(dark) and not is_dark(light)
    np.testing.assert_array_equal(apply_polarity(dark, "light"), 255 - dark)
    assert apply_polarity(light, "light") is light  # a light plot is left as drawn
    assert apply_polarity(dark, "none") is dark
    with pytest.raises(ValueError, match="unknown polarity 'dark'; choose one of: none, light"):
        apply_polarity(light, "dark")
    # the model-sized input: crop, resize, then invert; the light plot's input does not change
    steps = {"crop": "plot_area", "polarity": "light"}
    np.testing.assert_array_equal(prepare_image(dark, 32, steps), 255 - prepare_image(dark, 32, {"crop": "plot_area"}))
    np.testing.assert_array_equal(prepare_image(light, 32, steps), prepare_image(light, 32, {"crop": "plot_area"}))


def test_new_visual_cnn_runs_invert_dark_themes_and_unknown_polarities_are_refused(tiny_dataset):
    assert TrainConfig().polarity == "none"  # a config with no model defaults keeps the colours
    assert build_config({"data": str(tiny_dataset), "model": "visual_cnn"}).polarity == "light"  # registered
    assert build_config({"data": str(tiny_dataset), "model": "vae_classifier"}).polarity == "none"  # not A/B'ed
    assert build_config({"data": str(tiny_dataset), "model": "visual_cnn", "polarity": "none"}).polarity == "none"
    with pytest.raises(ConfigError, match="unknown polarity 'dark'; choose one of: none, light"):
        TrainConfig.from_dict({"data": str(tiny_dataset), "polarity": "dark"})


def test_the_cache_is_keyed_by_the_polarity(tmp_path):
    image, _ = render_plot(series(), style=DARK, size=(160, 120))
    path = tmp_path / "plot.png"
    path.write_bytes(encode_png(image))
    cache = tmp_path / "cache"
    as_drawn = load_dataset_cache([path], 32, cache_dir=cache, preprocessing={"crop": "plot_area"})
    inverted = load_dataset_cache([path], 32, cache_dir=cache, preprocessing={"crop": "plot_area", "polarity": "light"})
    assert len(list(cache.glob("*.npy"))) == 2  # one file per setting, never shared
    np.testing.assert_array_equal(inverted, 255 - as_drawn)


def test_a_run_trained_with_light_polarity_records_it_and_predicts_dark_plots_as_their_inverse(tmp_path):
    """End to end: a tiny visual_cnn trained on dark-theme plots with ``polarity="light"`` writes it
    into its checkpoint, its stored test predictions are reproduced from the inverted images, and the
    Predict path answers a dark plot as it answers the same plot inverted (a light one)."""
    import pandas as pd

    from backend import store
    from backend.config import run_dir
    from backend.data.images import load_image_rgb
    from backend.runs.lifecycle import train_run

    for split, count in (("train", 8), ("test", 3)):
        for kind in ("mean_shift", "point_anomaly"):
            folder = tmp_path / "dark" / split / kind
            folder.mkdir(parents=True)
            for i in range(count):
                image, _ = render_plot(series(kind, seed=100 * (split == "test") + i), style=DARK, size=(96, 72))
                (folder / f"{i}.png").write_bytes(encode_png(image))
    config = build_config({"data": str(tmp_path / "dark"), "model": "visual_cnn", "image_size": 32, "epochs": 1,
                           "batch_size": 8, "device": "cpu", "precision": "fp32", "polarity": "light",
                           "model_kwargs": {"width": 4}})  # fmt: skip
    result = train_run(config)
    assert result.status == "completed"
    run = store.get_run(result.run_id)
    _, checkpoint = load_checkpoint(run.checkpoint_path)
    assert checkpoint["preprocessing"] == {"crop": "plot_area", "polarity": "light", "finder": PLOT_AREA_VERSION,
                                           "resize": "bilinear", "aspect": 1.0}

    stored = pd.read_csv(run_dir(run.id) / "test_predictions.csv")
    files = [Path(f) for f in stored["file"]]
    seen = load_dataset_cache(files, 32, preprocessing=checkpoint["preprocessing"])
    assert (seen.reshape(len(files), -1).mean(axis=1) > 128).all()  # every dark plot reached the model light
    predictor = Predictor.from_checkpoint(run.checkpoint_path, device="cpu", precision="fp32")
    direct, _ = predictor.predict_batch(seen)
    names = checkpoint["class_names"]
    assert [names[i] for i in direct.argmax(axis=1)] == list(stored["predicted"])

    dark = load_image_rgb(files[0])
    answers = predictor.predict_images([dark, 255 - dark])
    assert np.allclose(list(answers[0].probabilities.values()), list(answers[1].probabilities.values()), atol=0.02)


# --- resize: thin strokes keep their contrast at the model's size --------------------------------


def test_the_ink_resize_keeps_a_one_pixel_line_dark_on_either_face():
    light = np.full((600, 800, 3), 255, np.uint8)
    light[300, 40:760] = (31, 119, 180)  # a one-pixel line across, in matplotlib's blue
    light[100:500, 400] = 0  # and one down
    drawn = apply_resize(light, 128, "bilinear")
    inked = apply_resize(light, 128, "ink")
    assert drawn.min() > 180  # squeezed 6x: the line keeps a sixth of its contrast
    assert inked.min() < 60 and (inked.min(axis=2) < 128).sum() >= 2 * 100  # both lines, dark and whole
    assert inked[:, :, 2].max() == 255 and inked[0, 0].tolist() == [255, 255, 255]  # the face stays white
    dark = 255 - light  # a light line on a dark face is widened the other way
    assert apply_resize(dark, 128, "ink").max() > 195 and apply_resize(dark, 128, "bilinear").max() < 75
    small = light[::8, ::8].copy()  # 75 x 100: not squeezed, nothing to thicken
    np.testing.assert_array_equal(apply_resize(small, 128, "ink"), resize_rgb(small, 128))
    with pytest.raises(ValueError, match="unknown resize 'nearest'; choose one of: bilinear, ink"):
        apply_resize(light, 128, "nearest")


def test_checkpoints_and_caches_keep_the_resize_they_trained_with(tmp_path, tiny_dataset):
    from backend.data.cache import _cache_key

    image, _ = render_plot(series(kind="point_anomaly"), size=(800, 600))  # the team's figure size
    path = tmp_path / "plot.png"
    path.write_bytes(encode_png(image))
    steps = {"crop": "plot_area", "finder": 3}
    inked = prepare_image(image, 64, {**steps, "resize": "ink"})
    plain = prepare_image(image, 64, steps)
    # the line reaches the model thicker: far more dark pixels (1,541 against 796 here). The darkest
    # pixel is the same (31) in both; an earlier `inked.min() < plain.min() - 40` passed only because
    # uint8 subtraction wrapped below 0.
    assert (inked.min(axis=2) < 128).sum() > 1.5 * (plain.min(axis=2) < 128).sum()
    cache = tmp_path / "cache"
    for resize in ("bilinear", "ink"):
        cached = load_dataset_cache([path], 64, cache_dir=cache, preprocessing={**steps, "resize": resize})[0]
        np.testing.assert_array_equal(cached, prepare_image(image, 64, {**steps, "resize": resize}))
    assert len(list(cache.glob("*.npy"))) == 2  # one file per setting
    digests = ["0" * 40]  # a cache decoded before the resize was recorded keeps its key
    assert _cache_key(digests, 64, steps) == _cache_key(digests, 64, {**steps, "resize": "bilinear"})

    (tmp_path / "ink").mkdir()
    predictor = Predictor.from_checkpoint(checkpoint_file(tmp_path / "ink", {**steps, "resize": "ink"}), "cpu", "fp32")
    assert predictor.preprocessing["resize"] == "ink"
    np.testing.assert_array_equal(predictor.prepare(image), prepare_image(image, 32, {**steps, "resize": "ink"}))
    assert build_config({"data": str(tiny_dataset), "model": "visual_cnn"}).resize == "bilinear"  # until A/B'ed
    assert build_config({"data": str(tiny_dataset), "model": "visual_cnn", "resize": "ink"}).preprocessing()["resize"] == "ink"
    with pytest.raises(ConfigError, match="unknown resize 'area'"):
        TrainConfig.from_dict({"data": str(tiny_dataset), "resize": "area"})


def test_tiny_team_plots_keep_their_frame_with_finder_3(tiny_dataset):
    """At 96x72 px a y tick label at the frame's corner touches its tick mark and looked like grid
    lines running on past the corner: finder 3 widened two of these frames over the labels."""
    for path in sorted(tiny_dataset.glob("*/*/*.png")):
        image = np.asarray(Image.open(path).convert("RGB"))
        assert find_plot_area(image) == find_plot_area(image, version=2), path.name


def test_run_lookups_read_the_same_runs_as_the_lines_themselves():
    """The L-frame search reads ink runs from each line's ink-free positions (bisect) instead of
    scanning the line; on random lines of every density both agree at every start, both ways."""
    from backend.data.plotarea import _clearest, _run, _run_after, _run_before

    rng = np.random.default_rng(0)
    for density in (0.0, 0.3, 0.9, 1.0):
        line = (rng.random(60) < density).astype(np.uint8)
        gaps = np.flatnonzero(line == 0).tolist()
        for start in range(60):
            assert _run_after(gaps, start, 60) == _run(line[start:])
            assert _run_before(gaps, start) == _run(line[start::-1])
    ink = (rng.random((30, 40)) < 0.5).astype(np.uint8)
    for index in (0, 5, 29):
        for reach in (-7, -1, 1, 7, 40):
            lines = [index + k * (1 if reach > 0 else -1) for k in range(1, abs(reach) + 1)]
            means = [ink[i].mean() for i in lines if 0 <= i < len(ink)]
            assert _clearest(ink, index, reach) == (min(means) if means else 0.0)
