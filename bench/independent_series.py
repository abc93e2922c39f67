"""Independent (clean-room) generator of labelled time series for the nine anomaly classes.

Written without reference to ``backend/data`` so the product's models can be checked on series
whose parameter ranges, noise models and sub-kinds were chosen separately. numpy + csv only.

Every generator works in "noise units" (the stationary noise has unit marginal std) and the
result is mapped through a random affine transform (arbitrary offset and scale) at the end.

Usage: ``python bench/independent_series.py --out DIR --per-class N --seed S [--manifest]``
writes ``DIR/<class>/<i>.csv`` files with header ``timestamp,value``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np

CLASSES = (
    "collective_anomaly",
    "contextual_anomaly",
    "deterministic_trend",
    "mean_shift",
    "point_anomaly",
    "stochastic_trend",
    "trend_shift",
    "variance_shift",
    "volatility",
)
MIN_LENGTH, MAX_LENGTH = 150, 3000
NOISE_KINDS = ("gaussian", "student_t", "laplace", "ar1")

Info = dict[str, object]


# ---------------------------------------------------------------------------- building blocks


def _length(rng: np.random.Generator) -> int:
    """Log-uniform length in [MIN_LENGTH, MAX_LENGTH]."""
    return int(round(np.exp(rng.uniform(np.log(MIN_LENGTH), np.log(MAX_LENGTH)))))


def _noise(rng: np.random.Generator, n: int, kinds: tuple[str, ...] = NOISE_KINDS) -> tuple[np.ndarray, str]:
    """Stationary noise with unit marginal standard deviation."""
    kind = str(rng.choice(kinds))
    if kind == "gaussian":
        e = rng.standard_normal(n)
    elif kind == "student_t":
        df = rng.uniform(5.0, 12.0)
        e = rng.standard_t(df, n) / np.sqrt(df / (df - 2.0))
    elif kind == "laplace":
        e = rng.laplace(0.0, 1.0 / np.sqrt(2.0), n)
    else:  # AR(1), scaled to unit marginal variance
        phi = rng.uniform(0.2, 0.7)
        w = rng.standard_normal(n + 50) * np.sqrt(1.0 - phi**2)
        e = np.empty_like(w)
        e[0] = rng.standard_normal()
        for i in range(1, len(w)):
            e[i] = phi * e[i - 1] + w[i]
        e = e[50:]
        kind = f"ar1({phi:.2f})"
    return e, kind


def _seasonal(
    rng: np.random.Generator, n: int, min_period: int = 12, cycles: tuple[float, float] = (4, 25)
) -> tuple[np.ndarray, float]:
    """Unit-amplitude periodic wave (sine, sine + harmonic, or a peaked 'daily' shape); returns (wave, period)."""
    period = max(float(min_period), n / rng.uniform(*cycles))
    phase = rng.uniform(0, 2 * np.pi)
    t = 2 * np.pi * np.arange(n) / period + phase
    shape = rng.integers(3)
    if shape == 0:
        s = np.sin(t)
    elif shape == 1:
        s = np.sin(t) + rng.uniform(0.2, 0.5) * np.sin(2 * t + rng.uniform(0, 2 * np.pi))
    else:
        s = np.exp(rng.uniform(1.0, 2.5) * np.cos(t))
    s = s - s.mean()
    return s / (np.abs(s).max() + 1e-12), period


def _affine(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Arbitrary scale (1e-2 .. 1e3) and offset (centred, or a large positive sensor-like baseline)."""
    scale = 10 ** rng.uniform(-2, 3)
    offset = scale * rng.uniform(-30, 30) if rng.random() < 0.7 else 10 ** rng.uniform(0, 4) * rng.uniform(0.5, 2)
    return offset + scale * x


# ---------------------------------------------------------------------------- class generators
# Each returns (values in noise units, info); ``info`` records the sub-kind and any change location.


def _collective(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Info]:
    kind = str(rng.choice(["plateau", "dip", "oscillation", "stuck", "frequency"]))
    seasonal = kind == "frequency" or rng.random() < 0.4
    noise, nk = _noise(rng, n)
    amp, period, wave = 0.0, 0.0, np.zeros(n)
    if seasonal:
        wave, period = _seasonal(rng, n, min_period=16, cycles=(5, 20))
        amp = rng.uniform(2.0, 5.0)
    x = amp * wave + noise
    spread = float(np.std(x))
    seg = int(max(8, round(n * rng.uniform(0.05, 0.15))))
    start = int(rng.integers(int(0.15 * n), int(0.85 * n) - seg))
    end = start + seg
    idx = np.arange(seg)
    if kind in ("plateau", "dip"):
        ramp = int(rng.integers(0, 4))
        prof = np.ones(seg)
        if ramp:
            edge = np.arange(1, ramp + 1) / (ramp + 1)
            prof[:ramp], prof[seg - ramp :] = edge, edge[::-1]
        sign = 1.0 if kind == "plateau" else -1.0
        x[start:end] += sign * rng.uniform(3.0, 6.0) * spread * prof
    elif kind == "oscillation":
        p = rng.uniform(3.0, 10.0)
        x[start:end] += rng.uniform(2.5, 5.0) * spread * np.sin(2 * np.pi * idx / p + rng.uniform(0, 2 * np.pi))
    elif kind == "stuck":
        x[start:end] = x[start - 1] if rng.random() < 0.5 else float(np.median(x))
    else:  # segment oscillating at a different frequency (faster, sometimes slower)
        factor = rng.uniform(2.5, 4.5) if rng.random() < 0.75 else rng.uniform(0.25, 0.4)
        x[start:end] = amp * np.sin(2 * np.pi * factor * idx / period + rng.uniform(0, 2 * np.pi)) + noise[start:end]
    return x, {"kind": kind, "start": start, "end": end, "noise": nk}


def _contextual(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Info]:
    kind = str(rng.choice(["half_period_swap", "phase_jump", "missing_cycle"]))
    cycles_hi = min(25.0, n / 14.0)
    period = n / rng.uniform(6.0, cycles_hi)
    phase = rng.uniform(0, 2 * np.pi)
    harm, hphase = (rng.uniform(0.2, 0.45), rng.uniform(0, 2 * np.pi)) if rng.random() < 0.5 else (0.0, 0.0)

    def wave(tt: np.ndarray) -> np.ndarray:
        u = 2 * np.pi * tt / period + phase
        return np.sin(u) + harm * np.sin(2 * u + hphase)

    t = np.arange(n, dtype=float)
    sigma = rng.uniform(0.05, 0.15)  # noise relative to unit-ish seasonal amplitude
    noise, nk = _noise(rng, n, ("gaussian", "student_t", "laplace"))
    n_cyc = 1 if kind != "phase_jump" else int(rng.integers(1, 3))
    total_cycles = int(n // period)
    k = int(rng.integers(2, max(3, total_cycles - 2 - n_cyc)))
    start, end = int(round(k * period)), int(round((k + n_cyc) * period))
    tt = t.copy()
    if kind == "half_period_swap":
        tt[start:end] += period / 2  # peak where a trough should be
    elif kind == "phase_jump":
        tt[start:end] += period * rng.uniform(0.3, 0.5) * rng.choice([-1, 1])
    s = wave(tt)
    if kind == "missing_cycle":  # a flat cycle at the mean level (well inside the range)
        s[start:end] = rng.uniform(-0.2, 0.2)
    x = (s + sigma * noise) / sigma  # back to noise units
    return x, {"kind": kind, "start": start, "end": end, "period": period, "noise": nk}


def _deterministic_trend(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Info]:
    kind = str(rng.choice(["linear", "quadratic", "cubic", "logistic", "exp_growth", "exp_decay"]))
    t = np.linspace(0, 1, n)
    if kind == "linear":
        f = t.copy()
    elif kind == "quadratic":  # vertex outside the window: curved but monotone
        v = rng.uniform(-1.0, -0.05) if rng.random() < 0.5 else rng.uniform(1.05, 2.0)
        f = (t - v) ** 2
    elif kind == "cubic":
        f = (t - rng.uniform(0.3, 0.7)) ** 3 + rng.uniform(0.0, 0.1) * t
    elif kind == "logistic":
        f = 1 / (1 + np.exp(-rng.uniform(5, 12) * (t - rng.uniform(0.3, 0.7))))
    elif kind == "exp_growth":
        f = np.exp(rng.uniform(1.5, 4.5) * t)
    else:
        f = np.exp(-rng.uniform(2.0, 6.0) * t)
    f = (f - f.min()) / (np.ptp(f) + 1e-12) * rng.uniform(8, 25) * rng.choice([-1, 1])
    noise, nk = _noise(rng, n)
    x = f + noise
    seasonal = rng.random() < 0.35
    if seasonal:
        s, _ = _seasonal(rng, n)
        x += rng.uniform(1.0, 3.0) * s
    return x, {"kind": kind, "seasonal": seasonal, "noise": nk}


def _mean_shift(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Info]:
    noise, nk = _noise(rng, n)
    change = int(rng.integers(int(0.25 * n), int(0.75 * n)))
    ramp = int(rng.integers(1, 6))  # 1 = abrupt step
    shift = rng.uniform(3.0, 8.0) * rng.choice([-1, 1])
    level = np.zeros(n)
    level[change : change + ramp] = shift * np.arange(1, ramp + 1) / ramp
    level[change + ramp :] = shift
    x = level + noise
    seasonal = rng.random() < 0.3
    if seasonal:
        x += rng.uniform(0.3, 1.0) * _seasonal(rng, n)[0]
    return x, {"kind": "up" if shift > 0 else "down", "change": change, "ramp": ramp, "seasonal": seasonal, "noise": nk}


def _point(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Info]:
    noise, nk = _noise(rng, n, ("gaussian", "student_t", "laplace", "ar1"))
    x = noise.copy()
    if rng.random() < 0.4:
        x += rng.uniform(1.0, 3.0) * _seasonal(rng, n, min_period=30, cycles=(2, 10))[0]
    count = int(rng.choice([1, 2, 3, 4], p=[0.4, 0.3, 0.2, 0.1]))
    gap = n // (count + 1)
    positions = []
    for j in range(count):  # one anomaly per stratum, away from the stratum edges
        lo, hi = int(j * gap + 0.2 * gap + 0.05 * n), int((j + 1) * gap + 0.05 * n)
        positions.append(int(rng.integers(lo, max(lo + 1, hi))))
    widths = []
    for p in positions:
        w = int(rng.choice([1, 2, 3], p=[0.6, 0.25, 0.15]))
        x[p : p + w] += rng.uniform(8.0, 15.0) * rng.choice([-1, 1])
        widths.append(w)
    return x, {"kind": f"{count}_points", "positions": positions, "widths": widths, "noise": nk}


def _stochastic_trend(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Info]:
    kind = str(rng.choice(["arima010", "arima110", "arima011"]))
    e = rng.standard_normal(n) if rng.random() < 0.6 else rng.standard_t(6, n) / np.sqrt(1.5)
    d = e.copy()
    if kind == "arima110":
        phi = rng.uniform(-0.4, 0.8)
        for i in range(1, n):
            d[i] = phi * d[i - 1] + e[i]
    elif kind == "arima011":
        d[1:] += rng.uniform(-0.5, 0.7) * e[:-1]
    drift = 0.0
    if rng.random() < 0.4:  # drift comparable to (not dominating) the wandering
        drift = rng.uniform(0.3, 1.5) * np.std(d) / np.sqrt(n) * rng.choice([-1, 1])
    x = np.cumsum(d + drift)
    x = x / (np.std(np.diff(x)) + 1e-12)  # unit step size
    x += rng.uniform(0.0, 0.5) * rng.standard_normal(n)  # optional measurement noise
    return x, {"kind": kind, "drift": bool(drift)}


def _trend_shift(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Info]:
    kind = str(rng.choice(["start", "stop", "reverse", "steepen", "flatten"]))
    tau = rng.uniform(0.3, 0.7)
    big = rng.uniform(8, 25) / 0.5 * rng.choice([-1, 1])  # slope per unit time (whole series = 1)
    s1, s2 = {
        "start": (0.0, big),
        "stop": (big, 0.0),
        "reverse": (big, -big * rng.uniform(0.5, 1.5)),
        "steepen": (big * rng.uniform(0.15, 0.35), big),
        "flatten": (big, big * rng.uniform(0.1, 0.3)),
    }[kind]
    t = np.linspace(0, 1, n)
    f = np.where(t < tau, s1 * t, s1 * tau + s2 * (t - tau))  # continuous at tau
    noise, nk = _noise(rng, n)
    x = f + noise
    if rng.random() < 0.25:
        x += rng.uniform(0.5, 2.0) * _seasonal(rng, n)[0]
    change = int(np.searchsorted(t, tau))
    return x, {"kind": kind, "change": change, "slopes": (s1, s2), "noise": nk}


def _variance_shift(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Info]:
    noise, nk = _noise(rng, n)
    change = int(rng.integers(int(0.25 * n), int(0.75 * n)))
    ratio = rng.uniform(2.5, 6.0)
    up = bool(rng.random() < 0.5)
    sd = np.where(np.arange(n) < change, 1.0, ratio) if up else np.where(np.arange(n) < change, ratio, 1.0)
    x = sd * noise
    if rng.random() < 0.25:
        x += rng.uniform(0.3, 1.0) * _seasonal(rng, n, min_period=40, cycles=(2, 8))[0]
    return x, {"kind": "increase" if up else "decrease", "change": change, "ratio": ratio, "noise": nk}


def _volatility(rng: np.random.Generator, n: int) -> tuple[np.ndarray, Info]:
    kind = str(rng.choice(["garch11", "stochastic_vol", "regime_switching"]))
    tdf = rng.uniform(5.0, 10.0) if rng.random() < 0.4 else None
    burn = 500
    m = n + burn
    z = rng.standard_t(tdf, m) / np.sqrt(tdf / (tdf - 2)) if tdf else rng.standard_normal(m)
    if kind == "garch11":
        alpha = rng.uniform(0.12, 0.3)
        beta = rng.uniform(0.95, 0.99) - alpha
        h = np.empty(m)
        x = np.empty(m)
        h[0] = 1.0
        x[0] = z[0]
        for i in range(1, m):
            h[i] = (1 - alpha - beta) + alpha * x[i - 1] ** 2 + beta * h[i - 1]
            x[i] = np.sqrt(h[i]) * z[i]
        x = x[burn:]
    elif kind == "stochastic_vol":
        phi = rng.uniform(0.95, 0.99)
        sd_h = rng.uniform(0.8, 1.3)  # stationary std of log-variance
        eta = rng.standard_normal(m) * sd_h * np.sqrt(1 - phi**2)
        h = np.empty(m)
        h[0] = rng.standard_normal() * sd_h
        for i in range(1, m):
            h[i] = phi * h[i - 1] + eta[i]
        x = (np.exp(h / 2) * z)[burn:]
    else:  # alternating calm/turbulent regimes, at least four segments
        segs = int(rng.integers(4, 10))
        min_len = max(8, n // (3 * segs))
        lengths = min_len + rng.multinomial(n - segs * min_len, rng.dirichlet(np.full(segs, 2.0)))
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        levels = [1.0, rng.uniform(3.0, 7.0)]
        if rng.random() < 0.3:
            levels.append(rng.uniform(1.7, 2.5))
        sd = np.empty(n)
        state = int(rng.integers(2))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            sd[a:b] = levels[state]
            state = (state + 1 + int(rng.integers(len(levels) - 1))) % len(levels)
        x = sd * z[burn:]
    x = x / (np.std(x) + 1e-12)
    return x, {"kind": kind, "innovations": f"t({tdf:.1f})" if tdf else "gaussian"}


_GENERATORS: dict[str, Callable[[np.random.Generator, int], tuple[np.ndarray, Info]]] = {
    "collective_anomaly": _collective,
    "contextual_anomaly": _contextual,
    "deterministic_trend": _deterministic_trend,
    "mean_shift": _mean_shift,
    "point_anomaly": _point,
    "stochastic_trend": _stochastic_trend,
    "trend_shift": _trend_shift,
    "variance_shift": _variance_shift,
    "volatility": _volatility,
}


# ---------------------------------------------------------------------------- public API


def generate_with_info(class_name: str, rng: np.random.Generator, length: int | None = None) -> tuple[np.ndarray, Info]:
    """Like :func:`generate`, also returning the sub-kind and change locations (``info``).

    ``info["raw"]`` holds the series in noise units, before the random affine transform.
    """
    if class_name not in _GENERATORS:
        raise ValueError(f"unknown class {class_name!r}; expected one of {CLASSES}")
    n = _length(rng) if length is None else int(length)
    if n < 100:
        raise ValueError("length must be at least 100")
    raw, info = _GENERATORS[class_name](rng, n)
    info["raw"] = raw
    return _affine(rng, raw), info


def generate(class_name: str, rng: np.random.Generator, length: int | None = None) -> np.ndarray:
    """One series of ``class_name`` (length ``length``, or log-uniform in [150, 3000])."""
    return generate_with_info(class_name, rng, length)[0]


def _timestamps(rng: np.random.Generator, n: int) -> list[str]:
    hourly = bool(rng.random() < 0.5)
    start = dt.datetime(2000, 1, 1) + dt.timedelta(days=int(rng.integers(0, 9000)))
    if hourly:
        start += dt.timedelta(hours=int(rng.integers(0, 24)))
        return [(start + dt.timedelta(hours=i)).isoformat() for i in range(n)]
    return [(start + dt.timedelta(days=i)).date().isoformat() for i in range(n)]


def write_dataset(out_dir: str | Path, per_class: int, seed: int, manifest: bool = False) -> None:
    """Write ``out_dir/<class>/<i>.csv`` (``timestamp,value``), deterministic per ``seed``.

    Each file has its own stream ``default_rng([seed, class_index, i])``, so a file does not depend on
    ``per_class``. With ``manifest`` also writes ``out_dir/manifest.csv`` (class, file, sub-kind, length).
    """
    out = Path(out_dir)
    rows = []
    for ci, name in enumerate(CLASSES):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            rng = np.random.default_rng([seed, ci, i])
            values, info = generate_with_info(name, rng)
            stamps = _timestamps(rng, len(values))
            with open(folder / f"{i}.csv", "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(["timestamp", "value"])
                w.writerows((s, f"{v:.10g}") for s, v in zip(stamps, values, strict=True))
            rows.append((name, f"{name}/{i}.csv", info["kind"], len(values)))
    if manifest:
        with open(out / "manifest.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["class", "file", "kind", "length"])
            w.writerows(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output folder (one sub-folder per class)")
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--manifest", action="store_true", help="also write manifest.csv with sub-kinds")
    args = ap.parse_args(argv)
    write_dataset(args.out, args.per_class, args.seed, manifest=args.manifest)
    print(f"wrote {args.per_class * len(CLASSES)} series to {args.out}")


if __name__ == "__main__":
    main()
