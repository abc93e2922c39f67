"""Read the series back out of a plot image: the drawn line, column by column, as numbers.

A PNG of a series drawn by another tool loses some points when an image model reads it (other
aspect ratios, margins, markers and themes change what the model sees; ``docs/BENCHMARKS_crop.md``).
A series model does not care how a series was drawn, only about its shape, so an image given to a
series model (or to the image + series ensemble) is first turned back into a series here and then
predicted like a CSV (``backend/predict_series.py``, ``docs/DIGITIZE.md``).

How (:func:`digitize_plot`), numpy + OpenCV, about 30 ms for an 800x600 plot:

1. crop to the axes' data area (:func:`backend.data.plotarea.find_plot_area`) and drop a thin
   border, so spines, tick labels, titles and legends outside the axes are gone;
2. the axes' face is the most common colour inside the crop; *ink* is what differs from it;
3. the line's colour: among the most common quantised ink colours, the best ``columns reached *
   (1 - share on thin straight rows or columns, i.e. a grid) * sqrt(strength)``, strength being the
   distance from the face (an anti-aliased blend is weaker than the core); a stronger colour on the
   same ray from the face that reaches about as far wins over it (the chosen one was a translucent
   fill under the line); then the blend is followed to its strong end (:func:`_core`);
4. a pixel belongs to the line when it lies on the blend from the face to that colour and is at least
   half line (:func:`_near`: grey tick labels on a dark face, a fill, text in another colour are
   off that segment or weaker); thin runs of long rows, and full-height thin columns when there are
   at least two (a grid in the line's colour), a legend's sample stroke alone near a corner, inward
   tick marks at the edges and short strays cut off at either end are removed;
5. per column, two values, so time runs evenly across the plot: the middle of the line's pixels
   twice, or, when the column holds a steep stretch taller than the line is thick (a spike, a noisy
   stretch squeezed into one pixel column), its top and bottom inside the line's width, in the
   order that continues the path. Columns without line (markers only, scatter, a legend covering
   the line) are interpolated between their neighbours; the empty margins at both ends are dropped;
6. values are image rows turned upwards (``-row``): the y scale and offset of the plot are lost,
   which does not matter to a series model (it normalises each series by its median and MAD).

Limits: one line per plot (several series: the most visible one is read); colour maps along the
line and lines drawn in the face's colour are not read; a spike as tall as the axes in a theme
without margins, with a second one like it, would be taken for a grid. When fewer than
:data:`MIN_COLUMNS_SHARE` of the columns between the line's ends hold line, or fewer than
:data:`MIN_POINTS` points are found, :class:`DigitizeError` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from backend.data.plotarea import Box, find_plot_area

INK_DISTANCE = 40  # largest per-channel difference from the face still counted as face (anti-aliasing aside)
QUANT_SHIFT = 4  # colours are grouped by their top 4 bits per channel when the line's colour is chosen
TOP_COLOURS = 8  # most common ink colours tried as the line's colour
LONG_ROW = 0.25  # share of a row's columns in line colour that makes a straight line (grid; dotted too)
LONG_COLUMN = 0.25  # the same for a column (a grid column must also reach both edges: see _line_mask)
THIN_RUN = 3  # most consecutive long rows (columns) that count as one grid line
END_GAP = 0.03  # a short stroke at either end cut off by a gap wider than this share of the width is dropped
STRAY_SHARE = 0.1  # ... when it holds less than this share of the columns with line (a legend, a stray mark)
MIN_COLUMNS_SHARE = 0.3  # share of the columns between the line's ends that must hold line
MIN_POINTS = 16
BORDER = 0.004  # share of each side dropped inside the crop (what is left of a spine), at least 2 px
BLEND = 0.5  # least blend weight from the face towards the line's colour of a line pixel
OFF_SEGMENT = 0.25  # most distance from the face-to-line colour segment, as a share of its length
# Why no line is read, in the user's words: the digitizer's refusal and an image run's uncertain reason.
NOTHING_DRAWN = "nothing is drawn inside the plot area (no line found)"
ONLY_STRAIGHT_LINES = "only straight lines (grid, frame) are drawn inside the plot area (no series line found)"


class DigitizeError(ValueError):
    """No line could be read from the image; the message says why, for the user."""


@dataclass(frozen=True)
class Digitized:
    """A series read from a plot image.

    ``values``: the series, two points per pixel column (upwards positive, in pixels);
    ``box``: the crop the line was read in; ``colour``: the line's RGB; ``columns``: how many pixel
    columns between the line's ends held line (the rest were interpolated); ``span``: those columns.
    """

    values: np.ndarray
    box: Box
    colour: tuple[int, int, int]
    columns: int
    span: int
    notes: list[str] = field(default_factory=list)


def digitize_plot(image: np.ndarray) -> Digitized:
    """The series drawn in an (H, W, 3) uint8 plot image (module docstring); ``DigitizeError`` when
    no line can be read."""
    box, area = _plot_area(image)
    if _too_small(area):
        raise DigitizeError(f"the plot area is too small to read a line from ({area.shape[1]}x{area.shape[0]} px)")
    keys = _keys(area)
    face = _face(area, keys)
    colour = _line_colour(area, face, keys)
    mask = _line_mask(area, face, colour)
    values, columns, span = _trace(mask)
    notes = [f"series read from the plot's line ({columns} of {span} pixel columns, colour #{_hex(colour)})"]
    return Digitized(values=values, box=box, colour=tuple(int(c) for c in colour), columns=columns, span=span,
                     notes=notes)  # fmt: skip


def line_problem(image: np.ndarray) -> str | None:
    """Why the plot in an (H, W, 3) uint8 image shows no series line, or ``None`` when it shows one.

    The question step 3 of :func:`digitize_plot` asks first, answered cheaply for a check on every
    uploaded image: inside the axes (step 1) is there ink (what differs from the face, here the
    commonest colour of every 4th pixel each way), and is any of it off thin straight rows and
    columns (a grid, an ``axhline``)? When not, any class an image model gives the plot is a guess.
    A plot area too small to read (a thumbnail) is not called empty: ``None``. About 3 ms for an
    800x600 plot (docs/BENCHMARKS_predict.md). It answered ``None`` for every one of the 6,750
    mixed-style plots of mixed600 and 1,440 varied and other-tool clean-room PNGs (2026-12-07).
    It errs the safe way: non-straight ink inside empty axes (a legend box, inward ticks) counts."""
    _, area = _plot_area(image)
    if _too_small(area):
        return None
    sample = area[::4, ::4]
    ink = _ink(area, np.round(_face(sample, _keys(sample))))
    if not cv2.countNonZero(ink):
        return NOTHING_DRAWN
    rows = cv2.reduce(ink, 1, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel() / 255.0
    cols = cv2.reduce(ink, 0, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel() / 255.0
    ink[_thin_lines(rows, LONG_ROW)] = 0
    ink[:, _thin_lines(cols, LONG_COLUMN)] = 0
    if not cv2.countNonZero(ink):
        return ONLY_STRAIGHT_LINES
    return None


def _plot_area(image: np.ndarray) -> tuple[Box, np.ndarray]:
    """The plot area's box and its pixels less a thin border (what is left of the spines)."""
    box = find_plot_area(image)  # ValueError for anything but an (H, W, 3) uint8 array
    dy, dx = max(2, round(BORDER * box.height)), max(2, round(BORDER * box.width))
    return box, image[box.top + dy : box.bottom - dy, box.left + dx : box.right - dx]


def _too_small(area: np.ndarray) -> bool:
    """A plot area with too few rows or columns to read a line from."""
    return area.shape[0] < 8 or area.shape[1] < MIN_POINTS


def _hex(colour: np.ndarray) -> str:
    return "".join(f"{int(c):02x}" for c in colour)


def _face(area: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The most common colour of the area (quantised, then the mean of its pixels): the axes' face."""
    common = np.bincount(keys.ravel(), minlength=1 << (3 * (8 - QUANT_SHIFT))).argmax()
    return area[keys == common].mean(axis=0)


def _ink(area: np.ndarray, face: np.ndarray) -> np.ndarray:
    """(H, W) uint8: 255 where some channel of a pixel is more than INK_DISTANCE off the whole-number
    ``face`` colour, else 0 (cv2.inRange: 5x faster than the same test in numpy)."""
    lower, upper = np.clip(face - INK_DISTANCE, 0, 255), np.clip(face + INK_DISTANCE, 0, 255)
    return cv2.bitwise_not(cv2.inRange(area, lower, upper))


def _keys(area: np.ndarray) -> np.ndarray:
    """(H, W) int: each pixel's quantised colour as one number."""
    bits = 8 - QUANT_SHIFT
    q = (area >> QUANT_SHIFT).astype(np.int32)
    return (q[:, :, 0] << (2 * bits)) | (q[:, :, 1] << bits) | q[:, :, 2]


def _line_colour(area: np.ndarray, face: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The ink colour that reaches the most columns and lies least on long straight lines."""
    ink = _ink(area, np.trunc(face)) > 0
    if not ink.any():
        raise DigitizeError(NOTHING_DRAWN)
    counts = np.bincount(keys[ink])
    candidates = []  # (score, columns reached, colour)
    for key in np.argsort(counts)[::-1][:TOP_COLOURS]:
        if counts[key] == 0:
            break
        same = ((keys == key) & ink).astype(np.uint8)
        rows = cv2.reduce(same, 1, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()
        cols = cv2.reduce(same, 0, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()
        straight = same[_thin_lines(rows, LONG_ROW)].sum() + same[:, _thin_lines(cols, LONG_COLUMN)].sum()
        colour = np.median(area[same.astype(bool)], axis=0)
        strength = np.sqrt(np.abs(colour - face).max() / 255.0)  # an anti-aliased blend is weaker than the core
        reached = float((cols > 0).sum())
        candidates.append((reached * (1.0 - min(1.0, straight / float(counts[key]))) * strength, reached, colour))
    score, reached, best = max(candidates, key=lambda c: c[0])
    if score <= 0:
        raise DigitizeError(ONLY_STRAIGHT_LINES)
    # A translucent fill under the line is the line's colour blended with the face, and reaches every
    # column too: when a stronger colour on the same ray from the face reaches about as far, it is the line.
    for other_score, other_reached, colour in candidates:
        weight, off = _blend(colour[None, None], face, best - face)
        if other_score > 0 and other_reached >= 0.5 * reached and weight[0, 0] > 1.3 and off[0, 0] < OFF_SEGMENT**2:
            best, reached = colour, other_reached
    return _core(area, face, best)


def _core(area: np.ndarray, face: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """The line's full colour: the chosen colour may be a blend of the line with the face (thin
    anti-aliased lines have few full-colour pixels); follow the blend to its strong end."""
    direction = colour - face
    weight, off = _blend(area, face, direction)
    on = (weight > BLEND) & (off < OFF_SEGMENT**2)
    if on.sum() < MIN_POINTS:
        return colour
    return np.clip(face + float(np.percentile(weight[on], 95)) * direction, 0, 255)


def _blend(area: np.ndarray, face: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's blend weight along ``face -> face + direction`` and its squared distance off that
    segment (as a share of the segment's squared length)."""
    direction = np.asarray(direction, dtype=np.float32)
    norm2 = float(direction @ direction)
    offset = area.astype(np.float32) - face.astype(np.float32)
    weight = offset @ direction / norm2
    residual = offset - weight[..., None] * direction
    return weight, np.einsum("ijk,ijk->ij", residual, residual) / norm2


def _near(area: np.ndarray, face: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels on the blend from the face to the line's colour, at least about half line.

    An anti-aliased edge pixel is ``face + w * (colour - face)``: its blend weight ``w`` is its
    projection on that segment, and it lies close to the segment. Other ink (a grey tick mark on a
    dark face, a translucent fill, text) lies off the segment or has a small ``w``.
    """
    direction = np.asarray(colour, dtype=np.float32) - face.astype(np.float32)
    if float(np.abs(direction).max()) < INK_DISTANCE:
        raise DigitizeError("the line is drawn in (almost) the plot's background colour")
    weight, off = _blend(area, face, direction)
    return (weight > BLEND) & (off < OFF_SEGMENT**2)


def _line_mask(area: np.ndarray, face: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """(H, W) uint8: the line's pixels; long rows and columns in its colour (a grid) and a legend's
    sample stroke removed."""
    near = _near(area, face, colour).astype(np.uint8)
    rows = cv2.reduce(near, 1, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()
    cols = cv2.reduce(near, 0, cv2.REDUCE_AVG, dtype=cv2.CV_32F).ravel()
    near[_thin_lines(rows, LONG_ROW)] = 0
    # A vertical grid line (solid, dashed or dotted) runs from the very top to the very bottom, and a
    # grid has several; a spike of the series stops short of an edge (the axes' margins), or is one.
    edge = max(2, round(0.01 * len(near)))
    grid = [c for c in _thin_lines(cols, LONG_COLUMN) if near[:edge, c].any() and near[-edge:, c].any()]
    if len({c // (THIN_RUN + 1) for c in grid}) >= 2:
        near[:, grid] = 0
    _drop_legend_strokes(near)
    return near


def _thin_lines(profile: np.ndarray, long: float) -> np.ndarray:
    """Indices of thin runs (at most THIN_RUN lines) of long lines with much less ink on both sides:
    grid lines. A dense band of the series itself (thousands of points squeezed into a few hundred
    columns) is long in many rows at once and stays."""
    found = []
    index, size = 0, len(profile)
    while index < size:
        if profile[index] < long:
            index += 1
            continue
        end = index
        while end + 1 < size and profile[end + 1] >= long:
            end += 1
        if end - index + 1 <= THIN_RUN:
            level = profile[index : end + 1].min()
            beside = [profile[j] for j in (index - 2, end + 2) if 0 <= j < size]
            if all(b < level / 2 for b in beside):
                found.extend(range(index, end + 1))
        index = end + 1
    return np.asarray(found, dtype=np.int64)


def _drop_legend_strokes(mask: np.ndarray) -> None:
    """Remove what is not the series but can share its colour: short flat strokes alone near a corner
    (a legend's sample of the line) and short ticks standing on the top or bottom edge (inward ticks)."""
    height, width = mask.shape
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    flat = max(6, round(0.04 * height))
    for label in range(1, count):
        left, top, w, h, _ = stats[label]
        if (top == 0 or top + h == height) and h <= 0.05 * height + 2 and w <= 3 + 0.005 * width:
            mask[top : top + h, left : left + w] = 0  # a tick mark pointing inwards from the top or bottom
            continue
        if (left == 0 or left + w == width) and w <= 0.05 * width + 2 and h <= 3 + 0.005 * height:
            mask[top : top + h, left : left + w] = 0  # ... from the left or right
            continue
        if not (8 <= w <= 0.25 * width and h <= flat and w >= 3 * h):
            continue
        near_side = left + w <= 0.4 * width or left >= 0.6 * width
        near_edge = top + h <= 0.4 * height or top >= 0.6 * height
        if near_side and near_edge:
            mask[top : top + h, left : left + w] = 0


def _drop_strays_at_the_ends(where: np.ndarray, gap: float) -> np.ndarray:
    """Columns with line, without a small stretch at either end cut off by a gap wider than ``gap``
    (a legend's marker outside the axes, a stray mark): the series is the long stretch between."""
    while True:
        breaks = np.flatnonzero(np.diff(where) > gap)
        if not breaks.size:
            return where
        head, tail = breaks[0] + 1, where.size - breaks[-1] - 1  # columns before the first, after the last break
        if min(head, tail) >= STRAY_SHARE * where.size:
            return where
        where = where[head:] if head <= tail else where[: breaks[-1] + 1]


def _trace(mask: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The series along the line mask: (values, columns with line, columns between the ends)."""
    height = mask.shape[0]
    present = mask.any(axis=0)
    where = np.flatnonzero(present)
    if where.size < 2:
        raise DigitizeError("no series line found inside the plot area")
    where = _drop_strays_at_the_ends(where, max(2, END_GAP * mask.shape[1]))
    present = np.zeros_like(present)
    present[where] = True
    first, last = int(where[0]), int(where[-1])
    span = last - first + 1
    if where.size < MIN_COLUMNS_SHARE * span or where.size < MIN_POINTS // 2:
        raise DigitizeError(
            f"the line is too broken to read: {where.size} of {span} pixel columns between its ends hold it"
        )
    rows = np.arange(height, dtype=np.float64)[:, None]
    sub = mask[:, first : last + 1].astype(bool) & present[None, first : last + 1]
    inside = present[first : last + 1]
    big = np.float64(height)
    top = np.where(sub, rows, big).min(axis=0)
    bottom = np.where(sub, rows, -1.0).max(axis=0)
    extent = bottom - top + 1
    thickness = float(np.percentile(extent[inside], 25))  # most columns of a line are about its width tall
    half = (thickness - 1) / 2
    steep = inside & (extent > 1.5 * thickness + 2)
    centre = (top + bottom) / 2
    x = np.arange(span, dtype=np.float64)
    centre = np.interp(x, x[inside], centre[inside])  # gaps (markers, scatter) interpolated
    values = np.repeat(centre, 2)  # two points per column, so time runs evenly across the plot
    previous = centre[0]
    for index in range(span):
        if steep[index]:
            high, low = top[index] + half, bottom[index] - half  # the path's ends inside the line's width
            pair = (high, low) if abs(previous - high) <= abs(previous - low) else (low, high)
            values[2 * index : 2 * index + 2] = pair
            previous = pair[1]
        else:
            previous = centre[index]
    series = -values
    if series.size < MIN_POINTS:
        raise DigitizeError(f"the line is too short to read: {series.size} points")
    return series, int(where.size), span
