"""Reading a series back out of a plot image (``backend.data.digitize``): the line comes back with its
step and its spike from team, varied and dark plots and from plain matplotlib figures with grids,
inward ticks, legends inside the axes, markers and scatter; what is not a line is refused in words;
series training reads its PNGs back once and caches them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from backend.data.digitize import DigitizeError, digitize_plot, line_problem
from backend.data.render import TEAM_STYLE, encode_png, render_series
from backend.models.series1d import resample_series, series_to_input
from backend.training.series_data import load_plot_read_inputs, load_series_inputs

N = 600
STEP, SPIKE = 360, 180  # sample indices


def signal() -> np.ndarray:
    """A slow wave, a level step at 60% and one spike at 30%: shape, level and a single sample."""
    t = np.arange(N)
    values = np.sin(t / 40.0) + np.where(t >= STEP, 3.0, 0.0)
    values[SPIKE] += 6.0
    return values


def read_back(image: np.ndarray) -> np.ndarray:
    """The digitized series on the truth's 256-point grid (mean channel, robust z-scored)."""
    return series_to_input(digitize_plot(image).values)[0]


def assert_reads(image: np.ndarray, values: np.ndarray) -> None:
    """The read series follows the truth (correlation), keeps the step's size and finds the spike."""
    got, truth = read_back(image), series_to_input(values)[0]
    assert np.corrcoef(got, truth)[0, 1] > 0.95
    step_at = round(STEP / N * 256)
    assert got[step_at + 10 :].mean() - got[: step_at - 10].mean() > 0.8 * (
        truth[step_at + 10 :].mean() - truth[: step_at - 10].mean()
    )
    peak = np.argmax(resample_series(digitize_plot(image).values, 256)[2])  # max channel
    assert abs(peak - SPIKE / N * 256) <= 4, f"spike read at {peak} of 256, drawn at {SPIKE / N * 256:.0f}"


def matplotlib_plot(values, *, style="default", scatter=False, legend_inside=False, grid=False,
                    colour="#d62728", width=7.0, dpi=90) -> np.ndarray:  # fmt: skip
    import matplotlib.style

    with matplotlib.style.context(style):
        figure = Figure(figsize=(width, width * 0.5), dpi=dpi)
        canvas = FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        x = np.arange(len(values))
        if scatter:
            axes.scatter(x, values, s=4, color=colour, label="value")
        else:
            axes.plot(x, values, color=colour, linewidth=1.2, label="value")
        if grid:
            axes.grid(True, color=colour, linewidth=0.8)  # the grid in the line's own colour
        if legend_inside:
            axes.legend(loc="lower right")
        axes.set_title("Sensor 7")
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


@pytest.mark.parametrize(
    "style",
    [
        TEAM_STYLE,
        replace(
            TEAM_STYLE,
            theme="ggplot",
            line_color="#2ca02c",
            marker="o",
            marker_size=2.0,
            legend="upper left",
            width_in=6.0,
            height_in=3.0,
            dpi=80,
            title="Daily load",
        ),  # fmt: skip
        replace(TEAM_STYLE, theme="dark_background", line_color="#ffeb3b", grid=True, line_width=2.4),
        replace(TEAM_STYLE, theme="seaborn-v0_8-darkgrid", fill_alpha=0.3, legend="lower left", tight=True),
    ],
    ids=["team", "ggplot-markers-legend", "dark-grid", "darkgrid-fill-legend"],
)
def test_the_line_is_read_back_from_the_products_own_renderings(style):
    values = signal()
    assert_reads(render_series(values, style=style), values)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"style": "classic", "legend_inside": True},  # inward ticks on all four sides, a legend in the corner
        {"style": "default", "grid": True, "legend_inside": True},  # a grid in the line's colour
        {"style": "bmh", "scatter": True, "width": 10.0, "dpi": 60},  # dots only: gaps between columns
        {"style": "Solarize_Light2", "colour": "#000000", "width": 4.0, "dpi": 60},  # 600 points in ~200 columns
    ],
    ids=["classic-ticks-legend", "grid-in-line-colour", "scatter", "squeezed"],
)
def test_the_line_is_read_back_from_other_tools_plots(kwargs):
    values = signal()
    assert_reads(matplotlib_plot(values, **kwargs), values)


def test_images_without_a_line_are_refused_in_words():
    with pytest.raises(DigitizeError, match="nothing is drawn inside the plot area"):
        digitize_plot(np.full((300, 400, 3), 255, dtype=np.uint8))
    empty_axes = matplotlib_plot(np.array([np.nan, np.nan]), grid=False)
    with pytest.raises(DigitizeError):
        digitize_plot(empty_axes)
    with pytest.raises(ValueError, match=r"expects an \(H, W, 3\) uint8 array"):
        digitize_plot(np.zeros((30, 40), dtype=np.uint8))


def empty_axes(style: str, *, grid: bool = False, rule: bool = False) -> np.ndarray:
    """Axes drawn with nothing plotted in them (a tool's empty template), or only a straight rule."""
    import matplotlib.style

    with matplotlib.style.context(style):
        figure = Figure(figsize=(5, 3), dpi=80)
        canvas = FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.set_xlim(0, 100)
        axes.set_title("Sensor 7")
        if grid:
            axes.grid(True)
        if rule:
            axes.axhline(0.5, color="#d62728")
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (lambda: empty_axes("default"), "nothing is drawn inside the plot area"),
        (lambda: empty_axes("dark_background"), "nothing is drawn inside the plot area"),
        (lambda: empty_axes("seaborn-v0_8-darkgrid"), "nothing is drawn inside the plot area"),
        (lambda: empty_axes("default", grid=True), "only straight lines"),
        (lambda: empty_axes("ggplot", rule=True), "only straight lines"),
    ],
    ids=["empty", "empty-dark", "empty-darkgrid", "grid-only", "a-rule-only"],
)
def test_axes_without_a_series_line_are_named(image, reason):
    assert reason in line_problem(image())


@pytest.mark.parametrize(
    "image",
    [
        lambda: render_series(signal()),
        lambda: render_series(signal(), style=replace(TEAM_STYLE, theme="dark_background", line_color="#ffeb3b")),
        lambda: matplotlib_plot(signal(), style="bmh", scatter=True, width=10.0, dpi=60),
        lambda: matplotlib_plot(np.linspace(0.0, 1.0, 50), style="ggplot", grid=True),  # a straight diagonal
        lambda: render_series(signal(), style=replace(TEAM_STYLE, width_in=0.4, height_in=0.3, dpi=40)),
    ],
    ids=["team", "dark", "scatter", "diagonal-line", "thumbnail"],
)
def test_plots_with_a_line_and_thumbnails_have_no_problem(image):
    """A line (even a straight diagonal, even dots) is a line; a plot area too small to read is not
    called empty (the image model can still look at it)."""
    assert line_problem(image()) is None


def test_series_training_reads_each_png_back_once_and_keeps_the_csv_where_no_line_is_found(tmp_path, monkeypatch):
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    pngs, csvs = [], []
    for i, values in enumerate([signal(), -signal(), np.cumsum(np.random.default_rng(0).standard_normal(400))]):
        pngs.append(tmp_path / f"{i}.png")
        pngs[-1].write_bytes(encode_png(render_series(values)))
        csvs.append(tmp_path / f"{i}.csv")
        csvs[-1].write_text("value\n" + "\n".join(map(repr, values.tolist())))
    blank = tmp_path / "blank.png"
    blank.write_bytes(encode_png(np.full((200, 300, 3), 255, dtype=np.uint8)))
    fallback = load_series_inputs([*csvs, csvs[0]], 256)
    read, unreadable = load_plot_read_inputs([*pngs, blank], fallback, 256)
    assert unreadable == 1 and read.shape == fallback.shape and read.dtype == np.float32
    np.testing.assert_array_equal(read[3], fallback[3])  # no line: the CSV's input stands in
    for row in range(3):  # a read series is not the CSV's, but it is the same shape
        assert not np.allclose(read[row], fallback[row])
        assert np.corrcoef(read[row, 0], fallback[row, 0])[0, 1] > 0.9
    cached = list((tmp_path / "artifacts" / "cache").glob("series-read-256-*.npy"))
    assert len(cached) == 1
    again, _ = load_plot_read_inputs([*pngs, blank], fallback, 256)
    np.testing.assert_array_equal(again, read)
    cached[0].write_bytes(b"damaged")  # a damaged cache is read again, not trusted
    np.testing.assert_array_equal(load_plot_read_inputs([*pngs, blank], fallback, 256)[0], read)
