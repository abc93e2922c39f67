"""Plot-area normalisation: find the axes' data area in a plot image and crop to it before resizing.

The same series drawn by two tools differs mostly *around* the data: margins, titles, tick labels,
legends outside the axes, figure aspect. Cropping every image to the inside of its axes frame
before it is squeezed to the model's square input removes most of that, so a CSV drawn in the team
style and a PNG from another tool reach the model looking alike (``docs/BENCHMARKS_crop.md``).

How the area is found (:func:`find_plot_area`), numpy + OpenCV, about a millisecond at 800x600:

1. the background is the median colour of the image's outer ring (the figure face colour);
2. a pixel is *ink* when one of its channels differs from the background by more than
   :data:`INK_THRESHOLD` (so light and dark themes and coloured faces all work);
3. a *long* row (column) is one where at least :data:`LONG_FRACTION` of the pixels are ink:
   the frame's spines, the axes' own face when it differs from the figure's (ggplot, seaborn
   darkgrid), grid lines, but also a row of tick labels, the top of a fill, a spike of the line;
4. the frame is the outermost long rows and columns that *close a rectangle* (:func:`_frame`):
   each edge is ink along 90% of the span between the two edges across it, and the line just
   outside it is mostly free of ink. Candidates that fail are replaced by the next one inwards;
5. an axes with only a left and a bottom spine (top and right hidden, as seaborn's ``despine``
   draws) is found where the two meet, each spine running the axes' full length
   (:func:`_open_frame`): the bottom-most long rows and left-most long columns are tried in turn
   (past rows of big tick labels), and a pair counts when they meet in a corner (past it they do
   not both run on further than a tick mark, as crossing grid lines or a flat stretch of a thick
   line meeting a spike do), within a few lines outside each spine some line holds at most tick
   marks (tick labels may sit right against it) and, inside, no line near it is solid (the data
   may touch a spine: zero margins, a dense series). When both a closed
   rectangle and such an L are found and the L holds the rectangle, the L wins: a rectangle of
   grid lines inside the spines is not the frame;
6. a thin run of long lines at an edge (a spine, at most :func:`_max_spine` pixels, followed by
   lines with little ink) is stepped over so the crop lies inside the frame, whatever the spine's
   colour or width; a thick run (an axes face) is kept;
7. a closed frame whose top and bottom edges both run on past its left and right edges (and its
   left and right edges past the top and bottom) by more than a tick mark is a rectangle of grid
   lines inside a frameless axes (``fivethirtyeight``): the box is widened to where those lines end,
   the axes' edges (:func:`_past_grid`, finder version 3), in images at least
   :data:`GRID_MIN_SIDE` pixels a side (smaller, a tick label touching its tick mark looks the same);
8. when no frame is found the box is the extent of the drawn line, the widest connected patch of
   ink, spanning at least :data:`LINE_SPAN` of the image across and :data:`MIN_SPAN` down, widened
   by :data:`LINE_MARGIN` of its size on every side as matplotlib's default axes margins are
   (:func:`_line_extent`, finder version 3): frameless plots whose axes face is the figure's
   (ggplot or seaborn darkgrid with a white face) are cropped like framed ones;
9. otherwise the whole image is kept: nothing is lost, only not normalised.

Limits: finder version 2 (checkpoints that do not record a ``finder``) skips steps 7 and 8:
a plot with no frame, no axes face and no grid (spines hidden, same face colours; dark themes whose
spines are drawn in the face's colour) is not cropped, and one with a grid but no frame
(``fivethirtyeight``) is cropped to its outermost grid lines, which can cut the tip of a spike
beyond the last grid line. Version 3's line extent assumes the data fill the axes but for default
margins; a scatter of separate markers has no wide patch and is left whole.

How often the box is off the true axes (IoU < 0.9; ``bench/plot_area.py``, docs/BENCHMARKS_crop.md):
on 1,350 mixed-style generated test plots 58 with finder 2, 7 with finder 3 (``fivethirtyeight``
plots whose outer grid line runs on less than a tick mark); on 600 plain-matplotlib plots in styles
the product never draws (``bench/crop.py``'s ``other_tool_png``) 8 and 3 (spine-less dark themes).

Preprocessing names (``TrainConfig.crop`` and the checkpoint's ``preprocessing["crop"]``):
``"plot_area"`` crops as above, ``"none"`` keeps the whole image (what checkpoints written before
this existed did). The checkpoint's ``preprocessing["finder"]`` is the finder version the run
trained with (:data:`PLOT_AREA_VERSION` for new runs; 2 for checkpoints written before it was
recorded), and prediction finds boxes with that version, so a model always sees crops like the
ones it learnt from.

Polarity (``TrainConfig.polarity``, the checkpoint's ``preprocessing["polarity"]``), after the crop
and the resize: ``"light"`` inverts an image whose majority colour is dark (a dark theme's axes
face), so every plot reaches the model as darker lines on a lighter face; ``"none"`` keeps the
colours (checkpoints written before this existed). A model trained on the product's mixed styles
reads dark-theme plots worse than light ones (0.864 accuracy against 0.90-0.96) and better when
they are inverted, even untrained for it (docs/BENCHMARKS_crop.md, "Where the mixed-style test split
loses").

Resize (``TrainConfig.resize``, the checkpoint's ``preprocessing["resize"]``): ``"bilinear"`` squeezes
the crop to the model's size with PIL's antialiased bilinear filter (every checkpoint before this
existed), so a 1-pixel line in an 800-pixel plot reaches a 128-pixel input at a sixth of its contrast
and a short spike almost vanishes; ``"ink"`` first thickens what is drawn by the squeeze factor
(a grey-level erosion on a light face, a dilation on a dark one, with a kernel of the factor in each
direction), so every stroke arrives at least about one model pixel wide at full contrast, however
large the plot was drawn (:func:`apply_resize`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from backend.data.images import resize_rgb

CROPS = ("plot_area", "none")
DEFAULT_CROP = "plot_area"  # new runs
POLARITIES = ("none", "light")
RESIZES = ("bilinear", "ink")
# Bump when find_plot_area finds different boxes (keeping the old behaviour behind ``version``), so
# cropped training caches are decoded again and old checkpoints still predict with their finder.
# 2: despined axes found past tick labels and beside data touching a spine; spines win over grids.
# 3: grid rectangles widened to the axes' edges; frameless plots cropped to the line's extent.
PLOT_AREA_VERSION = 3
FINDER_VERSIONS = (2, 3)  # what find_plot_area can reproduce (version 1 checkpoints predict with 2)
# Checkpoints without a "preprocessing" key, or without one of its entries, were prepared like this.
LEGACY_PREPROCESSING = {"crop": "none", "polarity": "none", "finder": 2, "resize": "bilinear", "aspect": 1.0}
# The input's width over its height: image_size rows by round(image_size * aspect) columns.
ASPECT_RANGE = (0.25, 4.0)
DARK_FACE = 128  # median grey level (0-255) under which an image counts as a dark theme

INK_THRESHOLD = 12  # per-channel difference (0-255) from the background that counts as drawn
LONG_FRACTION = 0.3  # share of a row's (column's) pixels that must be ink for a frame line
MIN_SPAN = 0.2  # the two outermost long lines must be at least this share of the image apart
FRAME_COVER = 0.9  # share of each frame edge that must be ink between the other two edges
OUTSIDE_COVER = 0.5  # most ink allowed on the line just outside a frame edge
SPINE_OUTSIDE_COVER = 0.2  # most ink on the clearest line just outside an open frame's spine (tick marks)
_L_TRIES = 40  # outermost candidates tried for each spine of an open (L-shaped) frame (past tick labels)
# Below this many pixels a side, a tick label touches its tick mark and reads as a line running on
# past the frame's corner (a 96x72 team plot), so finder 3 does not widen frames there.
GRID_MIN_SIDE = 120
_MAX_TRIES = 40  # candidate edges tried before giving up (no crop)
LINE_SPAN = 0.4  # the drawn line of a frameless plot spans at least this share of the image across
LINE_MARGIN = 0.05  # matplotlib's default axes margin: the data's span over 1 + 2 x this is the axes'


@dataclass(frozen=True)
class Box:
    """A crop box in pixels: rows ``top:bottom`` and columns ``left:right`` (end exclusive)."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top


def check_crop(crop: str) -> str:
    """``crop`` if it is a known crop name; ValueError listing the names otherwise."""
    if crop not in CROPS:
        raise ValueError(f"unknown crop {crop!r}; choose one of: {', '.join(CROPS)}")
    return crop


def check_finder(version) -> int:
    """``version`` if :func:`find_plot_area` can reproduce that finder; ValueError naming the ones it can."""
    if isinstance(version, bool) or version not in FINDER_VERSIONS:
        raise ValueError(f"unknown plot-area finder version {version!r}; this build has {', '.join(map(str, FINDER_VERSIONS))}")
    return int(version)


def check_polarity(polarity: str) -> str:
    """``polarity`` if it is a known polarity name; ValueError listing the names otherwise."""
    if polarity not in POLARITIES:
        raise ValueError(f"unknown polarity {polarity!r}; choose one of: {', '.join(POLARITIES)}")
    return polarity


def apply_polarity(image: np.ndarray, polarity: str) -> np.ndarray:
    """``image`` ((H, W, 3) uint8) as the polarity setting prepares it: ``"light"`` inverts it when
    its median grey level is under :data:`DARK_FACE` (most of it is a dark face), ``"none"`` and a
    light image are returned as they are."""
    if check_polarity(polarity) == "none" or not is_dark(image):
        return image
    return np.subtract(255, image, dtype=np.uint8)


def check_resize(resize: str) -> str:
    """``resize`` if it is a known resize name; ValueError listing the names otherwise."""
    if resize not in RESIZES:
        raise ValueError(f"unknown resize {resize!r}; choose one of: {', '.join(RESIZES)}")
    return resize


def check_aspect(aspect) -> float:
    """``aspect`` (the input's width over its height) as a float if it is a number in
    :data:`ASPECT_RANGE`; ValueError otherwise."""
    low, high = ASPECT_RANGE
    if isinstance(aspect, bool) or not isinstance(aspect, int | float) or not low <= aspect <= high:
        raise ValueError(f"aspect (input width / height) must be a number from {low:g} to {high:g}, got {aspect!r}")
    return float(aspect)


def input_shape(image_size: int, preprocessing: Mapping | None = None) -> tuple[int, int]:
    """The model input's (height, width) in pixels: ``image_size`` rows by ``round(image_size *
    aspect)`` columns (``preprocessing["aspect"]``, square when missing)."""
    aspect = check_aspect({**LEGACY_PREPROCESSING, **(preprocessing or {})}["aspect"])
    return int(image_size), max(1, round(image_size * aspect))


def size_text(height: int, width: int) -> str:
    """An input size as people read it: '128 px' for a square, '180x90 px' (width x height) otherwise."""
    return f"{height} px" if height == width else f"{width}x{height} px"


def apply_resize(image: np.ndarray, image_size: int, resize: str, width: int | None = None) -> np.ndarray:
    """``image`` ((H, W, 3) uint8) squeezed to ``image_size`` rows by ``width`` columns (default
    ``image_size``: a square) as the resize setting says.

    ``"ink"`` thickens the drawing first: a minimum filter (a maximum one when most of the image is
    dark, :func:`is_dark`) over a window of the squeeze factor in each direction (``H / image_size``
    rows by ``W / width`` columns, rounded), so a line one source pixel wide covers about one
    output pixel after the antialiased resize instead of a fraction of one. An image no larger than
    the input in a direction is not thickened in it; ``"bilinear"`` resizes as drawn.
    """
    width = image_size if width is None else width
    if check_resize(resize) == "ink":
        rows = max(1, round(image.shape[0] / image_size))
        cols = max(1, round(image.shape[1] / width))
        if rows > 1 or cols > 1:
            kernel = np.ones((rows, cols), np.uint8)
            image = cv2.dilate(image, kernel) if is_dark(image) else cv2.erode(image, kernel)
    return resize_rgb(image, image_size, width)


def is_dark(image: np.ndarray) -> bool:
    """Whether most of an (H, W, 3) uint8 image is dark: its median grey level is under :data:`DARK_FACE`."""
    step = max(1, min(image.shape[:2]) // 64)  # about 64 x 64 samples are plenty for a majority colour
    return bool(np.median(image[::step, ::step].mean(axis=2)) < DARK_FACE)


def preprocessing_of(checkpoint: Mapping) -> dict:
    """The checkpoint's ``preprocessing`` dict; checkpoints from before it existed did not crop."""
    found = checkpoint.get("preprocessing")
    return dict(LEGACY_PREPROCESSING) if not found else {**LEGACY_PREPROCESSING, **found}


def find_plot_area(image: np.ndarray, version: int = PLOT_AREA_VERSION) -> Box:
    """The axes' data area of an (H, W, 3) uint8 plot image (see the module docstring), as finder
    ``version`` finds it (one of :data:`FINDER_VERSIONS`; a checkpoint's ``preprocessing["finder"]``).

    Always a box inside the image; the whole image when neither a frame nor a line is found.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"find_plot_area expects an (H, W, 3) uint8 array, got {image.shape} {image.dtype}")
    check_finder(version)
    height, width = image.shape[:2]
    whole = Box(0, 0, width, height)
    if height < 16 or width < 16:
        return whole
    ink = _ink(image, _background(image))  # uint8 0/1
    rows = cv2.reduce(ink, 1, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()  # share of ink per row
    cols = cv2.reduce(ink, 0, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()  # per column
    long_rows, long_cols = np.flatnonzero(rows >= LONG_FRACTION), np.flatnonzero(cols >= LONG_FRACTION)
    frame, open_frame = _frame(ink, long_rows, long_cols), _open_frame(ink, long_rows, long_cols)
    is_open = open_frame is not None and (frame is None or _contains(open_frame, frame))
    if is_open:
        frame = open_frame  # a rectangle of grid lines inside the spines is not the frame
    if frame is not None and version >= 3 and min(height, width) >= GRID_MIN_SIDE:
        frame = _past_grid(ink, frame, is_open)  # grid lines in a frameless axes: to the axes' edges
    if frame is None:
        line = _line_extent(ink) if version >= 3 else None
        return whole if line is None else line
    top, bottom, left, right = frame
    top, bottom = _inside(rows, top, bottom)
    left, right = _inside(cols, left, right)
    return Box(left, top, right + 1, bottom + 1)


def crop_plot_area(image: np.ndarray, version: int = PLOT_AREA_VERSION) -> np.ndarray:
    """``image`` cropped to :func:`find_plot_area` (a view, no copy)."""
    box = find_plot_area(image, version)
    return image[box.top : box.bottom, box.left : box.right]


def apply_crop(image: np.ndarray, crop: str, version: int = PLOT_AREA_VERSION) -> np.ndarray:
    """``image`` as the crop setting ``crop`` (finder ``version``) prepares it, before resizing."""
    if check_crop(crop) == "none":
        return image
    return np.ascontiguousarray(crop_plot_area(image, version))


def check_preprocessing(preprocessing: Mapping | None) -> dict:
    """Every step of ``preprocessing`` (missing ones as before they were recorded: no crop, no
    inversion, finder 2), each checked; ValueError for an unknown name or version."""
    steps = {**LEGACY_PREPROCESSING, **(preprocessing or {})}
    unknown = set(steps) - set(LEGACY_PREPROCESSING)
    if unknown:
        raise ValueError(f"unknown preprocessing step(s) {', '.join(sorted(unknown))}; known: {', '.join(LEGACY_PREPROCESSING)}")
    check_crop(steps["crop"])
    check_polarity(steps["polarity"])
    check_finder(steps["finder"])
    check_resize(steps["resize"])
    steps["aspect"] = check_aspect(steps["aspect"])
    return steps


def prepare_image(image: np.ndarray, image_size: int, preprocessing: Mapping | None = None) -> np.ndarray:
    """The one way a decoded (H, W, 3) uint8 image becomes model-sized input: crop as
    ``preprocessing["crop"]`` says (with plot-area finder ``preprocessing["finder"]``), resize to
    :func:`input_shape` as ``preprocessing["resize"]`` says (:func:`apply_resize`), then the
    polarity of ``preprocessing["polarity"]`` (a missing entry: as before it was recorded).
    Training's cache and prediction both call this."""
    steps = check_preprocessing(preprocessing)
    cropped = apply_crop(image, steps["crop"], steps["finder"])
    height, width = input_shape(image_size, steps)
    return apply_polarity(apply_resize(cropped, height, steps["resize"], width), steps["polarity"])


def _background(image: np.ndarray) -> np.ndarray:
    """Median colour of the outer 2-pixel ring: the figure's face colour."""
    ring = np.concatenate(
        [image[:2].reshape(-1, 3), image[-2:].reshape(-1, 3), image[:, :2].reshape(-1, 3), image[:, -2:].reshape(-1, 3)]
    )
    return np.median(ring, axis=0).astype(np.int16)


def _ink(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    """(H, W) uint8 mask: 1 where a channel differs from the background by more than INK_THRESHOLD."""
    low = np.clip(background - INK_THRESHOLD, 0, 255).astype(float).tolist()
    high = np.clip(background + INK_THRESHOLD, 0, 255).astype(float).tolist()
    return 1 - cv2.inRange(image, np.array(low), np.array(high)) // 255


def _max_spine(length: int) -> int:
    """The most consecutive long lines that still count as one spine (not a filled axes face)."""
    return max(3, round(0.006 * length) + 2)


def _frame(ink: np.ndarray, long_rows: np.ndarray, long_cols: np.ndarray) -> tuple[int, int, int, int] | None:
    """The outermost long rows and columns that close a rectangle, as (top, bottom, left, right)
    inclusive, or None.

    Each edge must be ink along at least FRAME_COVER of the span between the two edges across it,
    and the line just outside it (past a spine's width) must be mostly free of ink (OUTSIDE_COVER):
    a frame has margin, title or tick labels outside, while a row inside a fill has more fill.
    Starting from the outermost candidates, the edge that covers least is replaced by the next
    candidate inwards until all four hold: a row of tick labels, the top of a fill, a spike or a
    step of the data line are long but do not close a rectangle with the rest.
    """
    height, width = ink.shape
    columns = np.ascontiguousarray(ink.T)  # columns as rows: reading a column of ink.T is strided
    edges = [0, len(long_rows) - 1, 0, len(long_cols) - 1]  # indices into the candidates
    gap_rows, gap_cols = _max_spine(height) + 1, _max_spine(width) + 1
    for _ in range(_MAX_TRIES):
        if edges[1] < edges[0] or edges[3] < edges[2]:
            return None
        top, bottom = int(long_rows[edges[0]]), int(long_rows[edges[1]])
        left, right = int(long_cols[edges[2]]), int(long_cols[edges[3]])
        if bottom - top < MIN_SPAN * height or right - left < MIN_SPAN * width:
            return None
        cover = (_cover(ink, top, left, right, -gap_rows), _cover(ink, bottom, left, right, gap_rows),
                 _cover(columns, left, top, bottom, -gap_cols), _cover(columns, right, top, bottom, gap_cols))  # fmt: skip
        worst = int(np.argmin(cover))
        if cover[worst] >= FRAME_COVER:
            return top, bottom, left, right
        edges[worst] += 1 if worst in (0, 2) else -1
    return None


def _open_frame(ink: np.ndarray, long_rows: np.ndarray, long_cols: np.ndarray) -> tuple[int, int, int, int] | None:
    """An axes with only its left and bottom spines (top and right hidden, as seaborn's despine and
    many tools draw): the two spines meet in a corner and each runs the axes' full length, so they
    give the whole box as (top, bottom, left, right), or None."""
    height, width = ink.shape
    columns = np.ascontiguousarray(ink.T)
    bottoms, lefts = long_rows[::-1][:_L_TRIES].tolist(), long_cols[:_L_TRIES].tolist()
    # Where each candidate row and column has no ink, found once when first needed: every run below
    # is a lookup in these (up to _L_TRIES squared corners are tried, each reading four runs).
    row_gaps: dict[int, list[int]] = {}
    column_gaps: dict[int, list[int]] = {}
    for bottom in bottoms:
        for left in lefts:
            if not ink[bottom, left]:
                continue
            if (row := row_gaps.get(bottom)) is None:
                row = row_gaps[bottom] = np.flatnonzero(ink[bottom] == 0).tolist()
            if (column := column_gaps.get(left)) is None:
                column = column_gaps[left] = np.flatnonzero(columns[left] == 0).tolist()
            along = _run_after(row, left, width)  # the bottom spine, rightwards from the corner
            up = _run_before(column, bottom)  # the left spine, upwards from the corner
            if along < MIN_SPAN * width or up < MIN_SPAN * height:
                continue
            top, right = bottom - up + 1, left + along - 1
            # A corner, not a crossing: past the corner the two lines do not both run on further
            # than a tick mark (grid lines cross; a flat stretch of a thick line meets a spike).
            down, back = _run_after(column, bottom + 1, height), _run_before(row, left - 1) if left else 0
            if down > _tick(height) and back > _tick(width):
                continue
            # Thin lines, not the edges of a fill, a face or a dense stretch of data: outside each
            # spine (below the bottom one, left of the left one) a line near it holds at most tick
            # marks (tick labels may sit close: the clearest line within reach counts), and inside,
            # where the data may touch the spine (zero margins, a dense series), a line near it is
            # at least not solid.
            # (checked one line set at a time, cheapest refusal first: most candidates fail the first)
            reach_rows, reach_cols = _max_spine(height) + 3, _max_spine(width) + 3
            along_rows, along_cols = ink[:, left : right + 1], columns[:, top : bottom + 1]
            if (_clearest(along_rows, bottom, reach_rows) <= SPINE_OUTSIDE_COVER
                    and _clearest(along_cols, left, -reach_cols) <= SPINE_OUTSIDE_COVER
                    and _clearest(along_rows, bottom, -reach_rows) < FRAME_COVER
                    and _clearest(along_cols, left, reach_cols) < FRAME_COVER):  # fmt: skip
                return top, bottom, left, right
    return None


def _past_grid(ink: np.ndarray, frame: tuple[int, int, int, int], is_open: bool) -> tuple[int, int, int, int]:
    """``frame`` (top, bottom, left, right) widened where its edges are grid lines of a frameless
    axes, which run on to the axes' edges while a real frame's edges stop at its corners, give or
    take a tick mark.

    A closed rectangle is widened on each side where both edges across it run on past the corner
    by more than a tick mark, to where the nearer of the two ends, and only when they do so both
    across and down (a legend box drawn against the frame continues one edge, not both). An open
    one (an L) is widened to the left and downwards where its bottom and left line run on past
    their corner: its top and right already are where those lines end.
    """
    top, bottom, left, right = frame
    height, width = ink.shape
    columns = np.ascontiguousarray(ink.T)
    if is_open:
        return (top, bottom + _run_on(columns, (left, left), bottom, +1, height),
                left - _run_on(ink, (bottom, bottom), left, -1, width), right)  # fmt: skip
    left_run = _run_on(ink, (top, bottom), left, -1, width)
    right_run = _run_on(ink, (top, bottom), right, +1, width)
    top_run = _run_on(columns, (left, right), top, -1, height)
    bottom_run = _run_on(columns, (left, right), bottom, +1, height)
    if not (left_run or right_run) or not (top_run or bottom_run):
        return frame  # grid lines run on both ways; a frame's edges at most a tick mark
    return top - top_run, bottom + bottom_run, left - left_run, right + right_run


def _run_on(lines: np.ndarray, pair: tuple[int, int], corner: int, step: int, length: int) -> int:
    """How far both ``lines[pair[0]]`` and ``lines[pair[1]]`` run on in ink past index ``corner``
    (towards ``step``): the shorter run, or 0 when it is no longer than a tick mark."""
    tails = [lines[index, corner + 1 :] if step > 0 else lines[index, :corner][::-1] for index in pair]
    run = min(_run(tail) for tail in tails)
    return run if run > _tick(length) else 0


def _line_extent(ink: np.ndarray) -> Box | None:
    """The drawn line of a frameless plot: the widest connected patch of ink, when it spans at least
    LINE_SPAN of the image across and MIN_SPAN down, widened by LINE_MARGIN of its size on each side
    (the axes' default margins); None otherwise."""
    height, width = ink.shape
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if count < 2:
        return None
    widest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_WIDTH]))
    x, y, w, h = (int(stats[widest, k]) for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    if w < LINE_SPAN * width or h < MIN_SPAN * height:
        return None
    pad_x, pad_y = round(LINE_MARGIN * w), round(LINE_MARGIN * h)
    return Box(max(0, x - pad_x), max(0, y - pad_y), min(width, x + w + pad_x), min(height, y + h + pad_y))


def _tick(length: int) -> int:
    """The longest tick mark expected at a corner, in pixels, for an image ``length`` pixels across."""
    return max(_max_spine(length), round(0.02 * length))


def _contains(outer: tuple[int, int, int, int], inner: tuple[int, int, int, int]) -> bool:
    """Whether box ``outer`` (top, bottom, left, right) holds ``inner``, give or take a spine's width."""
    slack = 3
    return (outer[0] <= inner[0] + slack and outer[1] >= inner[1] - slack
            and outer[2] <= inner[2] + slack and outer[3] >= inner[3] - slack)  # fmt: skip


def _run(line: np.ndarray) -> int:
    """Length of the run of ink at the start of ``line``."""
    gaps = np.flatnonzero(line == 0)
    return int(gaps[0]) if gaps.size else len(line)


def _run_after(gaps: list[int], start: int, length: int) -> int:
    """Length of the run of ink from ``start`` onwards in a line of ``length`` whose ink-free
    positions are ``gaps`` (sorted): ``_run(line[start:])``."""
    i = bisect_left(gaps, start)
    return (gaps[i] if i < len(gaps) else length) - start


def _run_before(gaps: list[int], start: int) -> int:
    """Length of the run of ink from ``start`` backwards in a line whose ink-free positions are
    ``gaps`` (sorted): ``_run(line[start::-1])``."""
    i = bisect_right(gaps, start) - 1
    return start - (gaps[i] if i >= 0 else -1)


def _clearest(ink: np.ndarray, index: int, reach: int) -> float:
    """The least ink on any line 1 to ``|reach|`` lines from ``index`` (towards the sign of ``reach``);
    0 when there is no line on that side (the image's edge: nothing beyond can be ink)."""
    lo, hi = (index + 1, min(len(ink), index + reach + 1)) if reach > 0 else (max(0, index + reach), index)
    if lo >= hi:
        return 0.0
    return float(ink[lo:hi].mean(axis=1).min())  # integer sums: the same means line by line or at once


def _cover(ink: np.ndarray, index: int, start: int, end: int, outward: int) -> float:
    """Share of ink along line ``index`` from ``start`` to ``end``; 0 when each of the three lines
    from ``outward`` further out holds more than OUTSIDE_COVER ink (then this is not the frame's edge)."""
    cover = float(ink[index, start : end + 1].mean())
    if cover < FRAME_COVER:
        return cover  # not an edge anyway: the lines outside need no look
    step = 1 if outward > 0 else -1
    beyond = [index + outward + step * k for k in range(3)]  # the clearest of 3 lines: text may start close
    beyond = [ink[line, start : end + 1].mean() for line in beyond if 0 <= line < len(ink)]
    return 0.0 if beyond and min(beyond) > OUTSIDE_COVER else cover


def _inside(profile: np.ndarray, first: int, last: int) -> tuple[int, int]:
    """Step over a thin spine at either end, so the crop starts inside the frame."""
    limit = _max_spine(len(profile))
    start, end = _past_spine(profile, first, +1, limit), _past_spine(profile, last, -1, limit)
    if end - start < MIN_SPAN * len(profile):  # a filled block, not a frame: keep its outer edges
        return first, last
    return start, end


def _past_spine(profile: np.ndarray, edge: int, step: int, limit: int) -> int:
    """The first index past a spine at ``edge``: a run of at most ``limit`` long lines followed by
    lines with little ink. Otherwise (an axes face, maybe crossed by a grid line) ``edge`` itself."""
    index = edge
    while 0 <= index < len(profile) and profile[index] >= LONG_FRACTION:
        index += step
        if abs(index - edge) > limit:
            return edge
    after = profile[index : index + 4 * step : step] if step > 0 else profile[max(0, index - 3) : index + 1]
    return index if after.size and after.mean() < LONG_FRACTION else edge
