"""Synthetic time series for the nine anomaly classes (numpy only: the dashboard imports it without torch).

Each class has one generator, registered under its name, whose docstring is the class definition.
Every generator builds its series in *noise units* (the base noise has standard deviation 1); the
series is then moved to a random offset and scale, so a plot's shape never tells its units.

Variety is the point: the models are judged on series from generators the team did not write, so
every class draws from several sub-kinds and from wide ranges of length (100-5,000), scale and offset
(1e-3 to 1e5), noise type (white, AR(1), heavy-tailed Student-t), seasonality (none, or one to three
components of 2-20 cycles, on every class whose definition allows a season),
anomaly position, width and magnitude. ``difficulty`` (default 1, higher is harder) divides each
anomaly's magnitude against the noise.

What keeps the classes apart (details in each generator's docstring):

- point_anomaly: 1-3 *isolated single samples* far outside the noise band; nothing else changes.
- collective_anomaly: *one contiguous segment* behaves abnormally, and the series *returns* to
  normal after it.
- contextual_anomaly: only on *seasonal* series; a segment of at most about one period is wrong for
  its place in the season while every value stays *within the normal range*.
- mean_shift: *one lasting jump in level* (abrupt or a short ramp); slope and noise unchanged.
- trend_shift: *one lasting change of slope* with a continuous level (no jump).
- variance_shift: *one lasting change of noise level*; mean unchanged.
- volatility: *repeated, clustered* changes of noise level (bursts, GARCH, stochastic volatility).
- deterministic_trend: a smooth global trend (linear, quadratic, exponential, logistic, saturating,
  often with a season) plus stationary noise; no change points, no events.
- stochastic_trend: a random walk (with or without drift, sometimes with a season): the level wanders
  and never reverts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from backend.registry import Registry

DEFAULT_LENGTH_RANGE = (100, 5000)
MIN_LENGTH = 50  # room for a seasonal series of three periods with an anomaly in the middle
SCALE_RANGE = (1e-3, 1e5)
NOISE_KINDS = ("white", "ar1", "student_t")

_GENERATORS: Registry[Callable[[_Context], np.ndarray]] = Registry("anomaly class")
SUBKINDS: dict[str, tuple[str, ...]] = {}


@dataclass
class Series:
    """One generated series with its label and everything needed to reproduce or explain it."""

    values: np.ndarray  # float64, 1-D
    class_name: str
    subkind: str
    params: dict  # JSON-able: length, scale, offset, noise, background, location, magnitudes


@dataclass
class _Context:
    """What a class generator works with: the RNG, the length, the base noise and a params sink."""

    rng: np.random.Generator
    n: int
    difficulty: float
    subkind: str
    noise: np.ndarray  # unit standard deviation
    params: dict = field(default_factory=dict)

    def strength(self, low: float, high: float) -> float:
        """A magnitude drawn from [low, high] and divided by the difficulty."""
        return float(self.rng.uniform(low, high)) / self.difficulty

    @property
    def band(self) -> float:
        """Half-width of the noise band (99th percentile of |noise|): what an event must clear."""
        return float(np.quantile(np.abs(self.noise), 0.99))

    def event_size(self, background: np.ndarray, low: float, high: float) -> float:
        """An event's size: [low, high] (over the difficulty) times the normal half-range.

        The normal half-range is the noise band plus half the background's own swing, so an event
        stands out from a seasonal or trending background as clearly as from a flat one.
        """
        return self.strength(low, high) * (self.band + float(np.ptp(background)) / 2)


def _anomaly_class(name: str, subkinds: Sequence[str]):
    """Register a class generator and its sub-kinds under the class name."""

    def decorator(fn):
        SUBKINDS[name] = tuple(subkinds)
        return _GENERATORS.register(name)(fn)

    return decorator


# ---------------------------------------------------------------------------------------------
# Building blocks (all in noise units)
# ---------------------------------------------------------------------------------------------


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _ar1(innovations: np.ndarray, phi: float) -> np.ndarray:
    """AR(1) filter with unit marginal variance when the innovations have unit variance."""
    out = np.empty_like(innovations)
    scale = np.sqrt(1.0 - phi * phi)
    previous = innovations[0]
    out[0] = previous
    for i in range(1, len(innovations)):
        previous = phi * previous + scale * innovations[i]
        out[i] = previous
    return out


def _noise(rng: np.random.Generator, n: int) -> tuple[np.ndarray, dict]:
    """Stationary unit-variance noise: white, AR(1) (phi 0.2-0.8) or Student-t (4-10 dof)."""
    kind = str(rng.choice(NOISE_KINDS, p=(0.5, 0.3, 0.2)))
    if kind == "ar1":
        phi = float(rng.uniform(0.2, 0.8))
        return _ar1(rng.standard_normal(n), phi), {"kind": kind, "phi": phi}
    if kind == "student_t":
        dof = float(rng.uniform(4.0, 10.0))
        return rng.standard_t(dof, n) / np.sqrt(dof / (dof - 2.0)), {"kind": kind, "dof": dof}
    return rng.standard_normal(n), {"kind": kind}


def _seasonal(rng: np.random.Generator, n: int, amplitude: float, cycles: tuple[float, float],
              components: int | None = None) -> tuple[np.ndarray, list[dict]]:
    """Sum of 1-3 sinusoids; the first has ``amplitude`` and completes ``cycles`` times over the series.

    Extra components are faster and weaker (daily inside weekly, say). Periods stay >= 6 samples.
    """
    if components is None:
        components = int(rng.choice((1, 2, 3), p=(0.6, 0.3, 0.1)))
    t = np.arange(n)
    period = max(6.0, n / rng.uniform(*cycles))
    parts = [{"period": period, "amplitude": amplitude, "phase": float(rng.uniform(0, 2 * np.pi))}]
    for _ in range(components - 1):
        parts.append({"period": max(6.0, parts[-1]["period"] / rng.uniform(2.5, 7.0)),
                      "amplitude": parts[-1]["amplitude"] * float(rng.uniform(0.2, 0.5)),
                      "phase": float(rng.uniform(0, 2 * np.pi))})
    wave = sum(p["amplitude"] * np.sin(2 * np.pi * t / p["period"] + p["phase"]) for p in parts)
    return wave, parts


def _background(ctx: _Context, kinds: Sequence[str] = ("flat", "trend", "seasonal")) -> np.ndarray:
    """The normal behaviour an anomaly sits on: flat, a mild linear trend, or a mild season (2-20 cycles).

    Kept mild (at most a few noise units) so the anomaly stays the most visible thing in the plot.
    """
    kind = str(ctx.rng.choice(kinds))
    if kind == "trend":
        change = float(ctx.rng.uniform(1.0, 6.0) * ctx.rng.choice((-1, 1)))
        ctx.params["background"] = {"kind": kind, "total_change": change}
        return np.linspace(0.0, change, ctx.n)
    if kind == "seasonal":
        wave, parts = _seasonal(ctx.rng, ctx.n, float(ctx.rng.uniform(0.8, 3.0)), (2.0, 20.0))
        ctx.params["background"] = {"kind": kind, "seasonality": parts}
        return wave
    ctx.params["background"] = {"kind": "flat"}
    return np.zeros(ctx.n)


def _maybe_season(ctx: _Context, probability: float, size: float, relative: tuple[float, float],
                  cycles: tuple[float, float] = (3.0, 20.0), components: int | None = None) -> np.ndarray:
    """With ``probability``, a season of ``relative`` times ``size``; else zeros. Records the background.

    For the classes whose shape is not an event on a background (trends, walks): a season is one more
    thing that varies, so that "has a season" never tells a class.
    """
    if ctx.rng.random() >= probability:
        ctx.params["background"] = {"kind": "flat"}
        return np.zeros(ctx.n)
    wave, parts = _seasonal(ctx.rng, ctx.n, size * float(ctx.rng.uniform(*relative)), cycles, components)
    ctx.params["background"] = {"kind": "seasonal", "seasonality": parts}
    return wave


def _segment(ctx: _Context, width_frac: tuple[float, float], min_width: int = 8,
             within: tuple[float, float] = (0.1, 0.9)) -> tuple[int, int]:
    """A random [start, end) segment that lies inside the ``within`` fractions of the series."""
    n = ctx.n
    lo, hi = int(within[0] * n), int(within[1] * n)
    width = int(np.clip(ctx.rng.uniform(*width_frac) * n, min_width, max(min_width, (hi - lo) // 2)))
    start = int(ctx.rng.integers(lo, max(lo + 1, hi - width)))
    return start, start + width


def _taper(width: int, fraction: float) -> np.ndarray:
    """A plateau of ones with raised-cosine edges (Tukey window): events start and end smoothly."""
    if width < 3 or fraction <= 0:
        return np.ones(width)
    edge = max(1, int(fraction * width / 2))
    window = np.ones(width)
    ramp = 0.5 * (1 - np.cos(np.pi * np.arange(1, edge + 1) / (edge + 1)))
    window[:edge] = ramp
    window[-edge:] = ramp[::-1]
    return window


def _step_profile(n: int, start: int, width: int) -> np.ndarray:
    """0 before ``start``, a linear ramp over ``width`` samples, 1 after (width 1 is a jump)."""
    profile = np.clip((np.arange(n) - start + 1) / max(1, width), 0.0, 1.0)
    return profile


def _isolated_indices(ctx: _Context, count: int) -> list[int]:
    """``count`` indices inside 5-95% of the series, at least 5% of its length apart."""
    lo, hi, gap = int(0.05 * ctx.n), int(0.95 * ctx.n), max(3, int(0.05 * ctx.n))
    chosen: list[int] = []
    while len(chosen) < count:
        index = int(ctx.rng.integers(lo, hi))
        if all(abs(index - c) >= gap for c in chosen):
            chosen.append(index)
    return sorted(chosen)


# ---------------------------------------------------------------------------------------------
# The nine classes
# ---------------------------------------------------------------------------------------------


@_anomaly_class("point_anomaly", ("single_up", "single_down", "several"))
def point_anomaly(ctx: _Context) -> np.ndarray:
    """Point anomaly: 1-3 isolated single samples far outside the noise band; nothing else changes.

    Each spike is one sample displaced from the background by 1.5-3.5 times the largest noise
    excursion of the series (over the difficulty), at least 5% of the length from any other spike and
    inside 5-95% of the series. Background: flat, mildly trending or mildly seasonal.
    Sub-kinds: ``single_up`` (one spike up), ``single_down`` (one down), ``several`` (2-3 spikes, each
    up or down). Unlike a collective anomaly, no spike is wider than one sample.
    """
    base = _background(ctx)
    count = 1 if ctx.subkind.startswith("single") else int(ctx.rng.integers(2, 4))
    indices = _isolated_indices(ctx, count)
    signs = {"single_up": [1], "single_down": [-1]}.get(ctx.subkind) or list(ctx.rng.choice((-1, 1), count))
    reach = float(np.max(np.abs(ctx.noise)))
    heights = [ctx.strength(1.5, 3.5) * reach for _ in indices]
    values = base + ctx.noise
    for index, sign, height in zip(indices, signs, heights, strict=True):
        values[index] = base[index] + sign * height
    ctx.params.update(location={"indices": indices}, directions=[int(s) for s in signs],
                      magnitude=heights)
    return values


@_anomaly_class("collective_anomaly",
                ("bump", "dip", "flatline", "dropout", "oscillation", "frequency", "amplitude",
                 "cycle_frequency", "cycle_damped", "cycle_shape", "cycle_level"))
def collective_anomaly(ctx: _Context) -> np.ndarray:
    """Collective anomaly: one contiguous segment behaves abnormally, then the series returns to normal.

    The segment covers 4-15% of the length (at least 8 samples; 1.5-3 periods for the seasonal
    sub-kinds) and ends by 90% of the series, so the normal behaviour after it is visible.
    Sizes are in units of the *normal half-range* (the noise band plus half the background's swing)
    and are divided by the difficulty. Sub-kinds: ``bump``/``dip`` (the segment rises/falls by
    1.2-3 half-ranges, with sharp or smooth edges); ``flatline`` (a stuck sensor on a flat or trending
    series: the value freezes and the noise vanishes); ``dropout`` (the value drops to a constant floor
    1-2.5 noise bands below the whole series); ``oscillation`` (a wave packet of 3-8 cycles and
    1.2-2.5 half-ranges on a non-seasonal series); ``frequency`` (a strong season, 4-7 noise units,
    runs 2.5-5 times faster); ``amplitude`` (the season swings 2-3.5 times wider). On a periodic
    signal (3-7 noise units) whose cycle goes on through the segment, at strengths that vary (over the
    difficulty): ``cycle_frequency`` (1.5-3 times faster or slower), ``cycle_damped`` (the swing
    shrinks to 10-50%), ``cycle_shape`` (the wave turns square, sawtooth, triangular or spiky at the
    same period and swing), ``cycle_level`` (the whole cycle moves up or down by 0.6-1.5 amplitudes).
    Unlike a mean
    shift the level comes back; unlike a point anomaly the event spans many samples; unlike
    volatility there is one segment.
    """
    make = _COLLECTIVE[ctx.subkind]
    return make(ctx)


def _collective_level(ctx: _Context) -> np.ndarray:
    """Bump or dip: the segment moves by a plateau-shaped offset beyond the background's range."""
    base = _background(ctx)
    start, end = _segment(ctx, (0.04, 0.15))
    sign = 1 if ctx.subkind == "bump" else -1
    height = ctx.event_size(base, 1.2, 3.0)
    shape = _taper(end - start, float(ctx.rng.uniform(0.0, 1.0)))
    values = base + ctx.noise
    values[start:end] += sign * height * shape
    ctx.params.update(location={"start": start, "end": end}, magnitude=height)
    return values


def _collective_flatline(ctx: _Context) -> np.ndarray:
    base = _background(ctx, ("flat", "trend"))
    start, end = _segment(ctx, (0.06, 0.15))
    values = base + ctx.noise
    values[start:end] = values[start]
    ctx.params.update(location={"start": start, "end": end}, magnitude=ctx.band)  # the noise that vanished
    return values


def _collective_dropout(ctx: _Context) -> np.ndarray:
    base = _background(ctx)
    start, end = _segment(ctx, (0.04, 0.15))
    values = base + ctx.noise
    depth = ctx.strength(1.0, 2.5) * ctx.band
    floor = float(values.min()) - depth
    values[start:end] = floor
    ctx.params.update(location={"start": start, "end": end}, magnitude=float(np.median(values) - floor))
    return values


def _collective_oscillation(ctx: _Context) -> np.ndarray:
    base = _background(ctx, ("flat", "trend"))
    start, end = _segment(ctx, (0.06, 0.2), min_width=16)
    width = end - start
    period = max(4.0, width / ctx.rng.uniform(3.0, 8.0))
    amplitude = ctx.event_size(base, 1.2, 2.5)
    wave = amplitude * np.sin(2 * np.pi * np.arange(width) / period) * _taper(width, 0.3)
    values = base + ctx.noise
    values[start:end] += wave
    ctx.params.update(location={"start": start, "end": end}, magnitude=amplitude, period=period)
    return values


def _collective_seasonal(ctx: _Context) -> np.ndarray:
    """Frequency or amplitude change of the season over 1.5-3 periods, blended in and out."""
    amplitude = float(ctx.rng.uniform(4.0, 7.0))
    # at least 15 samples per cycle, so a season running 5 times faster is still drawn as a wave
    wave, parts = _seasonal(ctx.rng, ctx.n, amplitude, (5.0, max(5.5, min(20.0, ctx.n / 15))), components=1)
    ctx.params["background"] = {"kind": "seasonal", "seasonality": parts}
    period, phase = parts[0]["period"], parts[0]["phase"]
    width = int(max(8, ctx.rng.uniform(1.5, 3.0) * period))
    start = int(ctx.rng.integers(int(0.1 * ctx.n), max(int(0.1 * ctx.n) + 1, int(0.9 * ctx.n) - width)))
    t = np.arange(start, start + width)
    if ctx.subkind == "frequency":
        factor = float(ctx.rng.uniform(2.5, 5.0))
        start_phase = 2 * np.pi * start / period + phase
        changed = amplitude * np.sin(start_phase + factor * 2 * np.pi * (t - start) / period)
    else:
        factor = 1.0 + ctx.strength(1.0, 2.5)
        changed = factor * wave[start:start + width]
    blend = _taper(width, 0.2)
    wave = wave.copy()
    wave[start:start + width] += blend * (changed - wave[start:start + width])
    extra_swing = amplitude if ctx.subkind == "frequency" else amplitude * (factor - 1.0)
    ctx.params.update(location={"start": start, "end": start + width}, factor=factor, magnitude=extra_swing)
    return wave + ctx.noise


def _cycle_shape(angle: np.ndarray, shape: str) -> np.ndarray:
    """A unit-swing periodic wave of ``shape`` at the sine's phase ``angle`` (radians)."""
    if shape == "square":
        return np.tanh(4.0 * np.sin(angle))  # soft edges, so the line is drawn, not just dots
    if shape == "sawtooth":
        return 2.0 * (((angle + np.pi / 2) / (2 * np.pi)) % 1.0) - 1.0
    if shape == "triangle":
        return (2 / np.pi) * np.arcsin(np.sin(angle))
    return np.sign(np.sin(angle)) * np.abs(np.sin(angle)) ** 4  # spiky: narrow peaks, long flats


def _collective_cycle(ctx: _Context) -> np.ndarray:
    """A periodic signal whose frequency, swing, shape or level changes for 1.5-3 periods while the
    cycle goes on; each change's strength is drawn, then divided by the difficulty."""
    rng = ctx.rng
    amplitude = float(rng.uniform(3.0, 7.0))
    wave, parts = _seasonal(rng, ctx.n, amplitude, (5.0, max(5.5, min(20.0, ctx.n / 15))), components=1)
    ctx.params["background"] = {"kind": "seasonal", "seasonality": parts}
    period, phase = parts[0]["period"], parts[0]["phase"]
    width = int(max(8, rng.uniform(1.5, 3.0) * period))
    start = int(rng.integers(int(0.1 * ctx.n), max(int(0.1 * ctx.n) + 1, int(0.9 * ctx.n) - width)))
    t = np.arange(start, start + width)
    angle = 2 * np.pi * t / period + phase
    details: dict = {}
    if ctx.subkind == "cycle_frequency":
        factor = 1.0 + ctx.strength(0.5, 2.0)
        factor = factor if rng.random() < 0.5 else 1.0 / factor  # faster or slower
        changed = amplitude * np.sin(angle[0] + factor * 2 * np.pi * (t - start) / period)
        details = {"factor": factor, "magnitude": amplitude * abs(factor - 1.0)}
    elif ctx.subkind == "cycle_damped":
        factor = float(np.clip(1.0 - ctx.strength(0.5, 0.9), 0.1, 0.9))
        changed = factor * wave[start : start + width]
        details = {"factor": factor, "magnitude": amplitude * (1.0 - factor)}
    elif ctx.subkind == "cycle_shape":
        shape = str(rng.choice(("square", "sawtooth", "triangle", "spiky")))
        mix = float(np.clip(ctx.strength(0.7, 1.0), 0.3, 1.0))  # how far the wave turns into the shape
        target = amplitude * _cycle_shape(angle, shape)
        changed = wave[start : start + width] + mix * (target - wave[start : start + width])
        details = {"shape": shape, "mix": mix, "magnitude": float(np.abs(changed - wave[start : start + width]).max())}
    else:  # cycle_level
        offset = ctx.strength(0.6, 1.5) * amplitude * float(rng.choice((-1, 1)))
        changed = wave[start : start + width] + offset
        details = {"shift": offset, "magnitude": abs(offset)}
    blend = _taper(width, 0.2)
    wave = wave.copy()
    wave[start : start + width] += blend * (changed - wave[start : start + width])
    ctx.params.update(location={"start": start, "end": start + width}, **details)
    return wave + ctx.noise


_COLLECTIVE: dict[str, Callable[[_Context], np.ndarray]] = {
    "bump": _collective_level, "dip": _collective_level, "flatline": _collective_flatline,
    "dropout": _collective_dropout, "oscillation": _collective_oscillation,
    "frequency": _collective_seasonal, "amplitude": _collective_seasonal,
    "cycle_frequency": _collective_cycle, "cycle_damped": _collective_cycle, "cycle_shape": _collective_cycle,
    "cycle_level": _collective_cycle,
}


@_anomaly_class("contextual_anomaly",
                ("missing_peak", "inverted_cycle", "shifted_peak", "level_hold", "inner_dip", "inner_peak"))
def contextual_anomaly(ctx: _Context) -> np.ndarray:
    """Contextual anomaly: on a seasonal series, a stretch that is normal in value but wrong for its phase.

    The series is a strong season (3.5-20 cycles, at least 12 samples per cycle; amplitude 4-10 noise
    units over the difficulty, often with a second harmonic, sometimes a mild trend). One stretch of
    0.5-1.2 periods, never in the first or last cycle, departs from the seasonal pattern while every
    value stays inside the range the season spans. Sub-kinds: ``missing_peak`` (a peak flattened to
    the mean level), ``inverted_cycle`` (one whole cycle upside down), ``shifted_peak`` (a peak where
    a trough should be), ``level_hold`` (the value holds at a high or low in-range level through a
    cycle), ``inner_dip`` / ``inner_peak`` (a small dip near a peak, a small rise near a trough:
    0.15-0.35 periods wide, 0.3-1.0 amplitudes deep over the difficulty, so at high difficulty barely
    more than the noise).
    Unlike a collective anomaly nothing leaves the normal range.
    """
    n, rng = ctx.n, ctx.rng
    amplitude = ctx.strength(4.0, 10.0)
    cycles = float(rng.uniform(3.5, max(3.6, min(20.0, n / 12))))
    period, phase = n / cycles, float(rng.uniform(0, 2 * np.pi))
    harmonic = float(rng.uniform(0.0, 0.45))
    t = np.arange(n)

    def season(times: np.ndarray) -> np.ndarray:
        angle = 2 * np.pi * times / period + phase
        return amplitude * (np.sin(angle) + harmonic * np.sin(2 * angle))

    wave = season(t)
    # Cycle k starts where the main sine crosses zero going up; skip the first and the last cycle.
    first = (-phase / (2 * np.pi)) % 1.0 * period
    cycle_start = first + period * int(rng.integers(1, max(2, int((n - first) / period) - 1)))
    start, width, target = _contextual_target(ctx, season, cycle_start, period, amplitude)
    start, end = int(max(0, start)), int(min(n, start + width))
    window = _taper(end - start, 0.2)
    wave[start:end] += window * (target[: end - start] - wave[start:end])
    trend = 0.0
    if rng.random() < 0.3:
        trend = float(rng.uniform(0.5, 1.5) * amplitude * rng.choice((-1, 1)))
    ctx.params.update(
        location={"start": start, "end": end}, magnitude=amplitude,
        background={"kind": "seasonal", "trend_change": trend,
                    "seasonality": [{"period": period, "amplitude": amplitude, "phase": phase,
                                     "harmonic": harmonic}]})
    return wave + np.linspace(0.0, trend, n) + ctx.noise


def _contextual_target(ctx, season, cycle_start: float, period: float, amplitude: float):
    """Where the contextual stretch starts, how long it is, and the (in-range) values it takes."""
    rng = ctx.rng
    if ctx.subkind == "inverted_cycle":
        start, width = cycle_start, period
        times = np.arange(int(start), int(start) + int(width) + 1)
        return start, width, -season(times)
    if ctx.subkind == "level_hold":
        width = period * rng.uniform(0.8, 1.2)
        start = cycle_start + period * rng.uniform(0.0, 0.5)
        level = float(rng.uniform(0.5, 0.85) * amplitude * rng.choice((-1, 1)))
        return start, width, np.full(int(width) + 1, level)
    if ctx.subkind in ("inner_dip", "inner_peak"):
        width = max(3.0, period * rng.uniform(0.15, 0.35))
        sign = -1.0 if ctx.subkind == "inner_dip" else 1.0
        extreme = period / 4 if sign < 0 else 3 * period / 4  # a dip near a peak, a rise near a trough
        start = cycle_start + extreme + period * rng.uniform(-0.1, 0.1) - width / 2
        times = np.arange(int(start), int(start) + int(width) + 1)
        depth = float(rng.uniform(0.3, 1.0)) * amplitude / ctx.difficulty
        bump = np.sin(np.pi * np.clip((times - start) / width, 0.0, 1.0)) ** 2  # 0 at both ends
        one_cycle = season(np.linspace(0.0, period, 256))  # the normal range: never left
        return start, width, np.clip(season(times) + sign * depth * bump, one_cycle.min(), one_cycle.max())
    width = period * rng.uniform(0.5, 0.7)
    if ctx.subkind == "missing_peak":
        start = cycle_start + period / 4 - width / 2
        return start, width, np.full(int(width) + 1, float(rng.uniform(-0.15, 0.15) * amplitude))
    start = cycle_start + 3 * period / 4 - width / 2  # shifted_peak: centred on a trough
    times = np.arange(int(start), int(start) + int(width) + 1)
    return start, width, season(times + period / 2)


@_anomaly_class("mean_shift", ("step_up", "step_down", "ramp_up", "ramp_down"))
def mean_shift(ctx: _Context) -> np.ndarray:
    """Mean shift: one lasting jump in level; slope, season and noise are the same before and after.

    The level moves by 0.9-2.5 times the normal half-range (noise band plus half the seasonal swing,
    over the difficulty) at a change point in 20-80% of the series and stays there to the end.
    Background: flat or mildly seasonal, never trending, so the only change is the level. Sub-kinds: ``step_up``/``step_down`` (abrupt), ``ramp_up``/``ramp_down``
    (the move takes 2-8% of the length, flat on both sides). Unlike a trend shift the level jumps
    and the slope does not change; unlike a collective anomaly it never comes back.
    """
    base = _background(ctx, ("flat", "seasonal"))
    start = int(ctx.rng.uniform(0.2, 0.8) * ctx.n)
    width = 1 if ctx.subkind.startswith("step") else max(3, int(ctx.rng.uniform(0.02, 0.08) * ctx.n))
    sign = 1 if ctx.subkind.endswith("up") else -1
    height = ctx.event_size(base, 0.9, 2.5)
    ctx.params.update(location={"start": start, "end": start + width}, magnitude=height, direction=sign)
    return base + ctx.noise + sign * height * _step_profile(ctx.n, start, width)


@_anomaly_class("trend_shift", ("onset", "stop", "reversal", "slope_change"))
def trend_shift(ctx: _Context) -> np.ndarray:
    """Trend shift: one lasting change of slope at a change point; the level is continuous (no jump).

    A piecewise-linear trend whose slope changes at 25-75% of the series; the larger segment moves by
    6-30 noise units (over the difficulty); about a third carry a small season (4-10% of that move,
    3-20 cycles). Sub-kinds: ``onset`` (flat, then a trend), ``stop`` (a trend, then flat),
    ``reversal`` (up then down, or down then up), ``slope_change`` (same direction, 3-6 times steeper
    or gentler). Unlike a mean shift the level
    does not jump; unlike a deterministic trend there is one sharp kink between straight segments.
    """
    n, rng = ctx.n, ctx.rng
    change = int(rng.uniform(0.25, 0.75) * n)
    rise = ctx.strength(6.0, 30.0) * float(rng.choice((-1, 1)))
    ratio = float(rng.uniform(3.0, 6.0))
    slopes = {
        "onset": (0.0, rise / (n - change)),
        "stop": (rise / change, 0.0),
        "reversal": (rise / change, -rise * rng.uniform(0.6, 1.4) / (n - change)),
        "slope_change": ((rise / ratio / (n - change), rise / (n - change)) if rng.random() < 0.5
                         else (rise / change, rise / ratio / change)),
    }[ctx.subkind]
    t = np.arange(n)
    trend = np.where(t < change, slopes[0] * t, slopes[0] * change + slopes[1] * (t - change))
    season = _maybe_season(ctx, 0.35, abs(rise), (0.04, 0.1))
    ctx.params.update(location={"start": change, "end": change + 1}, slopes=[float(s) for s in slopes],
                      magnitude=abs(rise))
    return trend + season + ctx.noise


@_anomaly_class("variance_shift", ("increase", "decrease", "gradual_increase", "gradual_decrease"))
def variance_shift(ctx: _Context) -> np.ndarray:
    """Variance shift: one lasting change of noise level at a change point; the mean is unchanged.

    The noise standard deviation changes by a factor of 2.2-5 (1 + 1.2-4 over the difficulty) at
    25-75% of the series and keeps its new level to the end. Background: flat, mild trend or mild
    season. Sub-kinds: ``increase``/``decrease`` (abrupt), ``gradual_increase``/``gradual_decrease``
    (the change takes 5-20% of the length). Unlike volatility there is exactly one change and no
    return; unlike a mean shift the centre of the band does not move.
    """
    base = _background(ctx)
    start = int(ctx.rng.uniform(0.25, 0.75) * ctx.n)
    width = 1 if not ctx.subkind.startswith("gradual") else max(3, int(ctx.rng.uniform(0.05, 0.2) * ctx.n))
    ratio = 1.0 + ctx.strength(1.2, 4.0)
    profile = _step_profile(ctx.n, start, width)
    std = 1.0 + (ratio - 1.0) * (profile if ctx.subkind.endswith("increase") else 1.0 - profile)
    after_over_before = ratio if ctx.subkind.endswith("increase") else 1.0 / ratio
    ctx.params.update(location={"start": start, "end": start + width}, std_ratio=after_over_before,
                      magnitude=ratio)
    return base + ctx.noise * std


@_anomaly_class("volatility", ("bursts", "garch", "stochastic"))
def volatility(ctx: _Context) -> np.ndarray:
    """Volatility: repeated, clustered changes of noise level around a steady level.

    The series is a returns-like process whose standard deviation rises and falls again several times.
    Sub-kinds: ``bursts`` (3-6 separate episodes of 2-7% of the length each, 3-6 times the calm noise
    level over the difficulty); ``garch`` (variance from a GARCH(1,1) recursion, alpha 0.15-0.25 over
    the difficulty, persistence 0.97-0.99: long-lived calm and turbulent spells); ``stochastic``
    (stochastic volatility: log-volatility is an AR(1) whose correlation length is 1/12-1/30 of the
    series, its std 0.6-0.9 over the difficulty). Background: flat or a mild
    trend. Unlike a variance shift the noise level changes many times and returns; unlike a
    stochastic trend the level does not wander.
    """
    base = _background(ctx, ("flat", "flat", "trend"))
    # Gaussian shocks: heavy-tailed shocks on top of clustered variance read as isolated spikes.
    ctx.params["noise"] = {"kind": "white"}
    shocks = ctx.rng.standard_normal(ctx.n)
    std = _VOLATILITY[ctx.subkind](ctx)
    return base + shocks * std


def _volatility_bursts(ctx: _Context) -> np.ndarray:
    count = int(ctx.rng.integers(3, 7))
    width = max(5, int(ctx.rng.uniform(0.02, 0.07) * ctx.n))
    slots = ctx.rng.choice(np.arange(int(0.03 * ctx.n), int(0.97 * ctx.n) - width, width + 2), count,
                           replace=False)
    std = np.ones(ctx.n)
    segments = []
    for start in sorted(int(s) for s in slots):
        level = 1.0 + ctx.strength(2.0, 5.0)
        std[start:start + width] += (level - 1.0) * _taper(width, 0.5)
        segments.append([start, start + width])
    ctx.params.update(location={"segments": segments}, magnitude=float(std.max()))
    return std


def _spell_length(ctx: _Context) -> float:
    """How long a calm or turbulent spell lasts: 1/8-1/20 of the series (>= 6 samples), so a plot shows several."""
    return max(6.0, ctx.n / float(ctx.rng.uniform(8.0, 20.0)))


def _volatility_garch(ctx: _Context) -> np.ndarray:
    """Variance from a GARCH(1,1) recursion; its shocks are clipped at 2.5 so spells, not single spikes, show."""
    alpha = max(0.03, float(ctx.rng.uniform(0.2, 0.3)) / ctx.difficulty)
    persistence = 1.0 - 1.0 / _spell_length(ctx)
    beta, omega = persistence - alpha, 1.0 - persistence
    shocks = np.clip(ctx.rng.standard_normal(ctx.n + 200), -2.5, 2.5)
    shocks /= shocks.std()
    variance, var = np.empty(ctx.n + 200), 1.0
    for i, z in enumerate(shocks):
        variance[i] = var
        var = omega + alpha * var * z * z + beta * var
    std = np.sqrt(variance[200:])
    ctx.params.update(location={"start": 0, "end": ctx.n}, alpha=alpha, beta=beta,
                      magnitude=float(std.max() / std.min()))
    return std


def _volatility_stochastic(ctx: _Context) -> np.ndarray:
    phi = 1.0 - 1.0 / _spell_length(ctx)
    spread = ctx.strength(0.7, 1.0)
    log_std = spread * _ar1(ctx.rng.standard_normal(ctx.n), phi)
    std = np.exp(log_std - log_std.mean())
    ctx.params.update(location={"start": 0, "end": ctx.n}, phi=phi, log_std_spread=spread,
                      magnitude=float(std.max() / std.min()))
    return std


_VOLATILITY: dict[str, Callable[[_Context], np.ndarray]] = {
    "bursts": _volatility_bursts, "garch": _volatility_garch, "stochastic": _volatility_stochastic,
}


@_anomaly_class("deterministic_trend",
                ("linear", "quadratic", "exponential", "logistic", "saturating", "seasonal"))
def deterministic_trend(ctx: _Context) -> np.ndarray:
    """Deterministic trend: a smooth function of time over the whole series plus stationary noise.

    The trend moves by 6-40 noise units (over the difficulty) from its lowest to its highest point,
    up or down. Sub-kinds: ``linear``; ``quadratic`` (vertex anywhere from -0.5 to 1.5 of the length,
    so monotone curves and smooth U shapes); ``exponential`` (growth or decay, rate 2.5-6);
    ``logistic`` (an S-curve whose transition spans 25-70% of the length); ``saturating`` (rises fast,
    then levels off: 1 - exp(-rate t), rate 2-6, or the mirror image); ``seasonal`` (linear or gently
    curved trend plus a season of 8-20% of its range, 3-20 cycles). A quarter of the other sub-kinds
    carry a weaker season (3-8% of the range). There is no change point: unlike a trend shift the
    slope changes smoothly if at all; unlike a stochastic trend the noise is a band of constant width
    around a smooth curve.
    """
    rng = ctx.rng
    u = np.linspace(0.0, 1.0, ctx.n)
    rise = ctx.strength(6.0, 40.0) * float(rng.choice((-1, 1)))
    if ctx.subkind == "quadratic":
        shape = (u - rng.uniform(-0.5, 1.5)) ** 2
    elif ctx.subkind == "exponential":
        rate = float(rng.uniform(2.5, 6.0))
        shape = np.expm1(rate * (u if rng.random() < 0.5 else 1.0 - u))
    elif ctx.subkind == "logistic":
        # 8 / steepness is the width of the 2%-98% transition, as a fraction of the length
        steepness = 8.0 / float(rng.uniform(0.25, 0.7))
        shape = 1.0 / (1.0 + np.exp(-steepness * (u - rng.uniform(0.3, 0.7))))
    elif ctx.subkind == "saturating":
        rate = float(rng.uniform(2.0, 6.0))
        shape = -np.expm1(-rate * (u if rng.random() < 0.5 else 1.0 - u))
    elif ctx.subkind == "seasonal":
        shape = u + rng.uniform(-0.3, 0.3) * u * u
    else:
        shape = u
    shape = (shape - shape.min()) / np.ptp(shape)
    if ctx.subkind == "seasonal":
        season = _maybe_season(ctx, 1.0, abs(rise), (0.08, 0.2), components=int(rng.integers(1, 3)))
    else:
        season = _maybe_season(ctx, 0.25, abs(rise), (0.03, 0.08), components=1)
    values = rise * shape + season + ctx.noise
    ctx.params.update(location={"start": 0, "end": ctx.n}, magnitude=abs(rise))
    return values


@_anomaly_class("stochastic_trend", ("random_walk", "drift", "integrated_ar", "walk_plus_noise"))
def stochastic_trend(ctx: _Context) -> np.ndarray:
    """Stochastic trend: a random walk; the level wanders and never reverts to a mean.

    The series is the running sum of the noise (white, AR(1) or Student-t steps). Sub-kinds:
    ``random_walk`` (no drift); ``drift`` (a drift that moves the level by 1-3 times the walk's typical
    excursion, up or down); ``integrated_ar`` (AR(1) steps with phi 0.5-0.9: a smoother wander);
    ``walk_plus_noise`` (a walk seen through observation noise of 3-8% of its range, times the
    difficulty). A fifth of them carry a season of 5-15% of the walk's range (3-20 cycles). Unlike a
    deterministic trend there is no smooth shape; unlike volatility the level itself moves.
    """
    n, rng = ctx.n, ctx.rng
    steps = ctx.noise
    if ctx.subkind == "integrated_ar":
        phi = float(rng.uniform(0.5, 0.9))
        steps = _ar1(rng.standard_normal(n), phi)
        ctx.params["step_phi"] = phi
    walk = np.cumsum(steps)
    drift = 0.0
    if ctx.subkind == "drift":
        drift = float(rng.uniform(1.0, 3.0) * rng.choice((-1, 1)) / np.sqrt(n))
        walk += drift * np.arange(n)
    spread = (0.03, 0.08) if ctx.subkind == "walk_plus_noise" else (0.0, 0.02)
    observation = float(rng.uniform(*spread) * np.ptp(walk) * ctx.difficulty)
    season = _maybe_season(ctx, 0.2, float(np.ptp(walk)), (0.05, 0.15))
    ctx.params.update(location={"start": 0, "end": n}, drift=drift, observation_noise=observation,
                      magnitude=float(np.ptp(walk)))
    return walk + season + observation * rng.standard_normal(n)


CLASSES: tuple[str, ...] = tuple(_GENERATORS.names())

# The 5-class visual task: five classes whose defining features are different visual primitives
# (isolated spikes, one level step, one change of band width, a smooth curve, a rough wander), so no
# two of them share a feature; see docs/DATA.md.
FIVE_CLASS_PRESET: tuple[str, ...] = (
    "deterministic_trend", "mean_shift", "point_anomaly", "stochastic_trend", "variance_shift",
)


# ---------------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------------


def check_series_options(class_name: str, length: int | None = None, difficulty: float = 1.0,
                         subkinds: Sequence[str] | None = None) -> tuple[str, ...]:
    """Validate generate_series options without generating (ValueError saying what to change).

    Returns the sub-kinds that will be drawn from.
    """
    _GENERATORS.get(class_name)  # unknown class -> ValueError naming the valid ones
    if length is not None and (int(length) != length or length < MIN_LENGTH):
        raise ValueError(f"length must be a whole number >= {MIN_LENGTH}, got {length!r}")
    if not np.isfinite(difficulty) or difficulty <= 0:
        raise ValueError(f"difficulty must be a positive number (1 is the default, higher is harder), got {difficulty!r}")
    allowed = SUBKINDS[class_name]
    if subkinds is None:
        return allowed
    unknown = sorted(set(subkinds) - set(allowed))
    if unknown or not subkinds:
        raise ValueError(f"unknown sub-kind(s) {', '.join(unknown) or '(none given)'} for {class_name}; "
                         f"choose from: {', '.join(allowed)}")
    return tuple(s for s in allowed if s in set(subkinds))


def _offset(rng: np.random.Generator, scale: float) -> float:
    """Zero, a level comparable to the noise, or a large positive level (prices, sensor readings)."""
    kind = rng.choice(3, p=(0.2, 0.5, 0.3))
    if kind == 0:
        return 0.0
    if kind == 1:
        return float(scale * rng.uniform(-30.0, 30.0))
    return float(scale * _log_uniform(rng, 50.0, 2000.0))


def _jsonable(value):
    """Plain Python types, floats to 6 significant digits: params go into manifest.json as they are."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(f"{float(value):.6g}")
    return value


def generate_series(class_name: str, rng: np.random.Generator, *, length: int | None = None,
                    difficulty: float = 1.0, subkinds: Sequence[str] | None = None) -> Series:
    """Draw one series of ``class_name`` from ``rng``.

    ``length`` fixes the number of samples (default: log-uniform in 100-5,000); ``difficulty`` divides
    the anomaly's magnitude against the noise; ``subkinds`` restricts the sub-kinds drawn from (for
    held-out sub-kind experiments). The same RNG state gives the same series.
    """
    allowed = check_series_options(class_name, length, difficulty, subkinds)
    n = int(length) if length is not None else int(round(_log_uniform(rng, *DEFAULT_LENGTH_RANGE)))
    subkind = str(rng.choice(allowed))
    noise, noise_params = _noise(rng, n)
    ctx = _Context(rng=rng, n=n, difficulty=float(difficulty), subkind=subkind, noise=noise,
                   params={"noise": noise_params})
    shape = _GENERATORS.get(class_name)(ctx)
    scale = _log_uniform(rng, *SCALE_RANGE)
    offset = _offset(rng, scale)
    params = {"length": n, "subkind": subkind, "difficulty": float(difficulty), "scale": scale,
              "offset": offset, **ctx.params}
    return Series(values=offset + scale * shape, class_name=class_name, subkind=subkind,
                  params=_jsonable(params))
