"""The one plot renderer: a series becomes an RGB image here, for generation and for CSV prediction.

``render_series(values)`` with the team style draws what the team's data looks like (8x6 in at
100 DPI, white background, one blue line, axes with ticks), so a CSV uploaded for prediction and the
PNG generated from the same values are the same pixels. ``varied_style(rng)`` draws a seeded random
style (size, DPI, light or dark theme, colours, markers, date axis, titles, legends, grids, fills)
for training and testing models on plots made by other tools.

Speed: a figure is built once per (style, size) per process and reused (only the data changes),
and the canvas buffer is read directly; a lock keeps the shared figure safe across threads.
matplotlib's Agg canvas is used without pyplot; torch is never imported.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import matplotlib
import matplotlib.dates as mdates
import matplotlib.style
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from backend.registry import Registry

PNG_COMPRESS_LEVEL = 1  # zlib level: fast; PNG is lossless at every level, so pixels never depend on it
MIN_SIZE, MAX_SIZE = 16, 4096  # pixels per side
MIN_DPI = 10.0  # below this FreeType cannot size the smallest theme fonts


@dataclass(frozen=True)
class RenderStyle:
    """How a plot looks. Frozen and hashable: a style (with a size) keys the figure cache."""

    width_in: float = 8.0  # figure width in inches
    height_in: float = 6.0  # figure height in inches
    dpi: float = 100  # pixels per inch: the image is width_in*dpi x height_in*dpi pixels
    theme: str = "default"  # a matplotlib style sheet, light ("default", "ggplot", ...) or dark
    face_color: str | None = None  # figure and axes background; None keeps the theme's
    line_color: str = "#1f77b4"  # matplotlib's default blue
    line_width: float = 1.5  # points
    marker: str = ""  # a matplotlib marker drawn at every sample; "" for none
    marker_size: float = 3.0  # points
    x_axis: str = "index"  # "index" (sample number) or "date" (timestamps, when given)
    title: str = ""
    x_label: str = ""
    y_label: str = ""
    legend: str = ""  # legend location such as "upper left"; "" for no legend
    grid: bool | None = None  # None keeps the theme's choice
    fill_alpha: float = 0.0  # opacity of a fill under the line; 0 for none
    font_size: float | None = None  # points; None keeps the theme's
    tight: bool = False  # fit the axes around titles and labels (constrained layout), as many tools do

    def pixel_size(self) -> tuple[int, int]:
        """(width, height) in pixels of an image drawn in this style at its own size."""
        return int(self.width_in * self.dpi + 1e-8), int(self.height_in * self.dpi + 1e-8)


TEAM_STYLE = RenderStyle()


@dataclass(frozen=True)
class PlotArea:
    """Where a drawn series lies in its image, in pixels from the top-left corner.

    ``left/top/right/bottom`` bound the axes (the plot area); ``first_x`` and ``last_x`` are the
    x-coordinates of the first and last samples. Samples are evenly spaced (by index, or by evenly
    spaced timestamps), so sample ``i`` of ``length`` lies at ``x(i)``, in pixel column ``int(x(i))``.
    """

    left: float
    top: float
    right: float
    bottom: float
    first_x: float
    last_x: float
    length: int  # samples in the series

    def x(self, index: float) -> float:
        """The x-coordinate in pixels of sample ``index`` (fractional indices interpolate)."""
        step = (self.last_x - self.first_x) / max(1, self.length - 1)
        return self.first_x + index * step

    def to_dict(self) -> dict:
        return {key: round(value, 3) if isinstance(value, float) else value
                for key, value in asdict(self).items()}

STYLES: Registry = Registry("render style")

_LIGHT_THEMES = ("default", "default", "ggplot", "bmh", "seaborn-v0_8-whitegrid", "seaborn-v0_8-darkgrid",
                 "seaborn-v0_8-ticks", "Solarize_Light2", "classic", "fivethirtyeight", "grayscale")
_LIGHT_FACES = ("#ffffff", "#f7f7f7", "#fbfbf2", "#eef2f7", "#fffdf5")
_DARK_FACES = ("#000000", "#121212", "#1e1e1e", "#22272e", "#2b2b2b", "#0d1b2a")
_LIGHT_LINES = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#17becf",
                "#000000", "#1a237e", "#333333", "#006d5b")
_DARK_LINES = ("#4fc3f7", "#ffeb3b", "#ff8a65", "#81c784", "#ffffff", "#ce93d8", "#00e5ff", "#f48fb1")
_MARKERS = (".", "o", "s", "x", "+", "^", "d")
_TITLES = ("Sensor {k}", "Time series", "Signal", "Measurement", "Daily load", "Request rate",
           "Temperature", "Throughput", "Metric {k}", "series_{k}", "Channel {k}", "Value over time")
_X_LABELS = ("time", "date", "t", "sample", "timestamp", "index")
_Y_LABELS = ("value", "reading", "amplitude", "signal", "measurement", "load (%)", "units")
_LEGEND_PLACES = ("upper left", "upper right", "lower left", "lower right")


@STYLES.register("team")
def team_style(rng: np.random.Generator) -> RenderStyle:
    """The team's plots: the same for every sample (the RNG is not used)."""
    return TEAM_STYLE


@STYLES.register("varied")
def varied_style(rng: np.random.Generator) -> RenderStyle:
    """A seeded random plotting style, so models learn the series' shape rather than one look.

    320-1200 px wide, aspect 0.45-0.95, 60-150 DPI; 30% dark themes; line colour and width, markers
    (20%), date x-axis (50%, when timestamps are given), titles, axis labels, legends, grids, fills
    and a tight or default layout. Titles never name a class.
    """
    dark = rng.random() < 0.3
    dpi = float(rng.choice((60, 72, 80, 96, 100, 120, 150)))
    width_px = rng.uniform(320, 1200)
    height_px = width_px * rng.uniform(0.45, 0.95)
    palette = _DARK_LINES if dark else _LIGHT_LINES
    face = str(rng.choice(_DARK_FACES)) if dark else (str(rng.choice(_LIGHT_FACES)) if rng.random() < 0.3 else None)
    return RenderStyle(
        width_in=round(width_px / dpi, 2),
        height_in=round(height_px / dpi, 2),
        dpi=dpi,
        theme="dark_background" if dark else str(rng.choice(_LIGHT_THEMES)),
        face_color=face,
        line_color=str(rng.choice(palette)),
        line_width=round(float(rng.uniform(0.6, 2.6)), 2),
        marker=str(rng.choice(_MARKERS)) if rng.random() < 0.2 else "",
        marker_size=round(float(rng.uniform(1.5, 4.0)), 2),
        x_axis="date" if rng.random() < 0.5 else "index",
        title=str(rng.choice(_TITLES)).format(k=int(rng.integers(1, 100))) if rng.random() < 0.5 else "",
        x_label=str(rng.choice(_X_LABELS)) if rng.random() < 0.4 else "",
        y_label=str(rng.choice(_Y_LABELS)) if rng.random() < 0.4 else "",
        legend=str(rng.choice(_LEGEND_PLACES)) if rng.random() < 0.25 else "",
        grid=None if rng.random() < 0.5 else bool(rng.random() < 0.5),
        fill_alpha=round(float(rng.uniform(0.15, 0.4)), 2) if rng.random() < 0.2 else 0.0,
        font_size=round(float(rng.uniform(7.0, 12.0)), 1),
        tight=bool(rng.random() < 0.5),
    )


@STYLES.register("mixed")
def mixed_style(rng: np.random.Generator) -> RenderStyle:
    """Half team style, half varied: a training set that both predicts the team's plots and CSVs (drawn
    in team style) and holds up on plots from other tools (``docs/GENERALIZATION.md``)."""
    return TEAM_STYLE if rng.random() < 0.5 else varied_style(rng)


STYLE_TTA_COUNT = 4  # renderings of a CSV in other styles that prediction compares (style TTA)
STYLE_TTA_SEED = 20261203


def style_tta_styles(count: int = STYLE_TTA_COUNT) -> tuple[RenderStyle, ...]:
    """``count`` fixed "varied" styles (seeded, so a CSV's renderings never change between calls),
    drawn at most 640 px wide to keep the extra renderings cheap."""
    rng = np.random.default_rng(STYLE_TTA_SEED)
    styles = []
    for _ in range(count):
        style = varied_style(rng)
        scale = min(1.0, 640.0 / (style.width_in * style.dpi))
        styles.append(dataclasses.replace(style, width_in=round(style.width_in * scale, 2),
                                          height_in=round(style.height_in * scale, 2)))  # fmt: skip
    return tuple(styles)


@functools.lru_cache(maxsize=32)
def _theme_rc(theme: str, font_size: float | None) -> dict:
    """The full rcParams of a theme, independent of the user's matplotlibrc (so pixels are reproducible)."""
    if theme not in matplotlib.style.available and theme != "default":
        raise ValueError(f"unknown plot theme {theme!r}; choose one of: default, {', '.join(matplotlib.style.available)}")
    with matplotlib.style.context(theme):
        rc = {k: v for k, v in matplotlib.rcParams.items() if k not in ("backend", "interactive")}
    if font_size is not None:
        rc["font.size"] = font_size
    return rc


def _geometry(style: RenderStyle, size: tuple[int, int] | None) -> tuple[tuple[float, float], float]:
    """Figure size in inches and DPI; ``size`` in pixels keeps the style's proportions of text to plot.

    The DPI is scaled by the smaller of the two pixel ratios, so a 224x224 render looks like the
    800x600 plot resized to 224x224: the same relative font sizes and line widths. Very small sizes
    keep ``MIN_DPI``, so their text is relatively larger.
    """
    if size is None:
        return (style.width_in, style.height_in), style.dpi
    width, height = size
    native_width, native_height = style.pixel_size()
    dpi = max(MIN_DPI, style.dpi * min(width / native_width, height / native_height))
    return (width / dpi, height / dpi), dpi


def _rgb(rgba: np.ndarray) -> np.ndarray:
    """Drop the alpha channel; channel by channel is 4x faster than numpy's strided ``[..., :3].copy()``."""
    rgb = np.empty(rgba.shape[:2] + (3,), dtype=np.uint8)
    for channel in range(3):
        rgb[:, :, channel] = rgba[:, :, channel]
    return rgb


class _Plot:
    """One figure built for a style and size; ``draw`` swaps in new data and returns the pixels."""

    def __init__(self, style: RenderStyle, size: tuple[int, int] | None, dates: bool):
        self.style = style
        self.rc = _theme_rc(style.theme, style.font_size)
        figsize, dpi = _geometry(style, size)
        with matplotlib.rc_context(self.rc):
            self.figure = Figure(figsize=figsize, dpi=dpi, layout="constrained" if style.tight else None)
            self.canvas = FigureCanvasAgg(self.figure)
            self.axes = self.figure.add_subplot()
            (self.line,) = self.axes.plot([], [], color=style.line_color, linewidth=style.line_width,
                                          marker=style.marker or None, markersize=style.marker_size,
                                          label="value", zorder=2)
            self._decorate()
            if dates:
                locator = mdates.AutoDateLocator()
                self.axes.xaxis.set_major_locator(locator)
                self.axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        self.fill = None

    def _decorate(self) -> None:
        """The parts that do not depend on the data: face colour, title, labels, grid, legend."""
        style, axes = self.style, self.axes
        if style.face_color:
            self.figure.set_facecolor(style.face_color)
            axes.set_facecolor(style.face_color)
        if style.title:
            axes.set_title(style.title)
        # An axis without a label gets fixed label coordinates: matplotlib then skips measuring every
        # tick label to place an empty label, a sixth of the drawing time (the pixels are the same).
        if style.x_label:
            axes.set_xlabel(style.x_label)
        else:
            axes.xaxis.set_label_coords(0.5, 0.0)
        if style.y_label:
            axes.set_ylabel(style.y_label)
        else:
            axes.yaxis.set_label_coords(0.0, 0.5)
        if style.grid is not None:
            axes.grid(style.grid)
        if style.legend:
            axes.legend(loc=style.legend)

    def draw(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, PlotArea]:
        """Swap in new data, rescale the axes to it and return the drawn RGB pixels and the plot area."""
        with matplotlib.rc_context(self.rc):
            self.line.set_data(x, y)
            if self.style.fill_alpha:
                if self.fill is not None:
                    self.fill.remove()
                self.fill = self.axes.fill_between(x, y, np.nanmin(y), color=self.style.line_color,
                                                   alpha=self.style.fill_alpha, linewidth=0, zorder=1)
            self.axes.relim()
            self.axes.autoscale_view()
            self.canvas.draw()
            return _rgb(np.asarray(self.canvas.buffer_rgba())), self._area(x)

    def _area(self, x: np.ndarray) -> PlotArea:
        """The axes box and the first and last samples' x in image pixels (display y runs upwards)."""
        height = self.canvas.get_width_height()[1]
        box = self.axes.get_window_extent()
        first, last = self.axes.transData.transform([[x[0], 0.0], [x[-1], 0.0]])[:, 0]
        return PlotArea(left=float(box.x0), top=float(height - box.y1), right=float(box.x1),
                        bottom=float(height - box.y0), first_x=float(first), last_x=float(last), length=len(x))


@functools.lru_cache(maxsize=4)
def _plot_for(style: RenderStyle, size: tuple[int, int] | None, dates: bool) -> _Plot:
    return _Plot(style, size, dates)


_LOCK = threading.Lock()  # one shared figure per style: Streamlit sessions render from several threads


def check_size(size: Sequence[int] | None) -> tuple[int, int] | None:
    """Validate a render size ``(width, height)`` in pixels; None means the style's own size."""
    if size is None:
        return None
    if len(size) != 2 or not all(int(s) == s and MIN_SIZE <= s <= MAX_SIZE for s in size):
        raise ValueError(f"size must be (width, height) in whole pixels, each {MIN_SIZE}-{MAX_SIZE}; got {size!r}")
    return int(size[0]), int(size[1])


def _check_values(values) -> np.ndarray:
    y = np.asarray(values, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"a series must be one-dimensional; got an array of shape {y.shape}")
    if np.isinf(y).any():
        raise ValueError(f"the series has {int(np.isinf(y).sum())} infinite value(s); remove or replace them")
    if np.isfinite(y).sum() < 2:
        raise ValueError(f"a series needs at least 2 numeric values to plot; got {int(np.isfinite(y).sum())}")
    return y


def _x_values(n: int, timestamps, style: RenderStyle) -> tuple[np.ndarray, bool]:
    """Sample numbers, or matplotlib date numbers when the style asks for dates and they are given."""
    if style.x_axis != "date" or timestamps is None:
        return np.arange(n, dtype=np.float64), False
    stamps = np.asarray(timestamps, dtype="datetime64[ms]")
    if stamps.shape != (n,):
        raise ValueError(f"got {stamps.size} timestamps for {n} values; give one timestamp per value")
    return mdates.date2num(stamps), True


def render_series(values, *, timestamps=None, style: RenderStyle = TEAM_STYLE,
                  size: tuple[int, int] | None = None) -> np.ndarray:
    """Draw ``values`` as a line plot and return it as an (H, W, 3) uint8 RGB array.

    ``timestamps`` (one per value) label the x-axis when the style uses dates; otherwise the x-axis is
    the sample number. ``size=(width_px, height_px)`` renders at that size instead of the style's
    own. NaNs leave gaps. The same values, style and size always give the same pixels.
    """
    return render_plot(values, timestamps=timestamps, style=style, size=size)[0]


def render_plot(values, *, timestamps=None, style: RenderStyle = TEAM_STYLE,
                size: tuple[int, int] | None = None) -> tuple[np.ndarray, PlotArea]:
    """``render_series`` and where the plot lies in the image: what the generator records per sample."""
    y = _check_values(values)
    size = check_size(size)
    x, dates = _x_values(len(y), timestamps, style)
    with _LOCK:
        return _plot_for(style, size, dates).draw(x, y)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 image: same pixels, same bytes (no timestamps or other metadata).

    A minimal writer (8-bit RGB, filter type 0, zlib level ``PNG_COMPRESS_LEVEL``) rather than PIL:
    PIL tries every row filter, which made encoding 3x slower than drawing the plot; files stay
    about as small because plots are mostly flat colour. Any PNG reader (PIL, torchvision) decodes it.
    """
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image; got dtype {array.dtype} and shape {array.shape}")
    height, width = array.shape[:2]
    rows = np.empty((height, 1 + 3 * width), dtype=np.uint8)
    rows[:, 0] = 0  # filter type "None" for every row
    rows[:, 1:] = array.reshape(height, 3 * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit truecolour, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), PNG_COMPRESS_LEVEL)) + _png_chunk(b"IEND", b""))
