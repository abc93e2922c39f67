"""Tables the pages show that the store does not answer in one query: derived from its public functions.

The comparison table (the layout of the team's ResNet50 write-up, ``000_6ece13bbb17eaa0d.txt``),
the config diff, ETAs, the best run per model family, per-class F1 against class frequency and the
test images behind a confusion-matrix cell. Plain pandas in, plain pandas out; no Streamlit here, so
these are easy to test and could move into ``backend`` unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from backend.store import RunRecord

MILD_GAP_POINTS = 5.0  # train-test accuracy gap (points) below which overfitting is "mild"
SEVERE_GAP_POINTS = 10.0  # above this it is "severe"; in between "moderate"
BEST_MARK = "★ "


def _finite(value: Any) -> float | None:
    """``value`` as a float, or None when missing or NaN."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def overfitting_label(gap_points: float | None) -> str:
    """mild (< 5 points), moderate (5-10) or severe (> 10) from the train-test accuracy gap."""
    if gap_points is None:
        return ""
    if gap_points < MILD_GAP_POINTS:
        return "mild"
    if gap_points <= SEVERE_GAP_POINTS:
        return "moderate"
    return "severe"


def train_test_gap(record: RunRecord) -> float | None:
    """Training minus test accuracy at the best epoch, in percentage points."""
    train, test = _finite(record.train_acc_at_best), _finite(record.best_val_acc)
    if train is None or test is None:
        return None
    return 100.0 * (train - test)


def best_metric(record: RunRecord, name: str) -> float | None:
    """A macro metric of the run's best epoch (``precision``, ``recall``, ...) from ``best_metrics``."""
    metrics = record.best_metrics or {}
    for key in (f"val_{name}", f"macro_{name}", name):
        if key in metrics:
            return _finite(metrics[key])
    return None


def run_duration(record: RunRecord) -> float | None:
    """Seconds from start to finish (or to now while it runs)."""
    if record.started_at is None:
        return None
    end = record.finished_at or pd.Timestamp.now(tz="UTC").to_pydatetime()
    return (end - record.started_at).total_seconds()


def _split_total(record: RunRecord, split: str) -> int | None:
    counts = (record.class_counts or {}).get(split)
    return int(sum(counts.values())) if counts else None


def _format_params(n: int | None) -> str:
    if n is None:
        return ""
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def _format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


# Rows of the comparison table: label, value(record), display format, which value is best.
def _comparison_rows() -> list[tuple[str, Any, Any, str | None]]:
    pct = "{:.2%}".format
    three = "{:.4f}".format
    return [
        ("Accuracy", lambda r: _finite(r.best_val_acc), pct, "max"),
        ("Macro-F1", lambda r: _finite(r.best_val_f1), three, "max"),
        ("Precision", lambda r: best_metric(r, "precision"), three, "max"),
        ("Recall", lambda r: best_metric(r, "recall"), three, "max"),
        ("Classes", lambda r: len(r.class_names) if r.class_names else None, "{:d}".format, None),
        (
            "Dataset size",
            lambda r: _sum_optional(_split_total(r, "train"), _split_total(r, "test")),
            "{:,}".format,
            None,
        ),
        ("Images per class (train)", _images_per_class, "{:.0f}".format, None),
        ("Best epoch", lambda r: r.best_epoch, "{:d}".format, None),
        ("Train accuracy at best", lambda r: _finite(r.train_acc_at_best), pct, None),
        ("Train-test gap", train_test_gap, _format_gap, "min"),
        ("Parameters", lambda r: r.num_params, _format_params, None),
        ("Training time", run_duration, _format_duration, "min"),
    ]


def _sum_optional(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _images_per_class(record: RunRecord) -> float | None:
    total, classes = _split_total(record, "train"), len(record.class_names or [])
    return total / classes if total and classes else None


def _format_gap(points: float) -> str:
    return f"{points:.2f} pts ({overfitting_label(points)})"


def comparison_table(records: Sequence[RunRecord], labels: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The metrics table of several runs: rows are measures, columns are runs.

    Returns ``(display, best)``: display strings (the best value of a row prefixed with a star) and
    a boolean frame of the same shape marking the best cells (for highlighting). Rows where "best"
    means nothing (classes, parameters) are not marked; a row is marked only if two runs have values.
    """
    display: dict[str, list[str]] = {}
    best: dict[str, list[bool]] = {}
    for name, value_of, fmt, better in _comparison_rows():
        values = [value_of(r) for r in records]
        present = [v for v in values if v is not None]
        target = None
        if better and len(present) >= 2 and len(set(present)) > 1:
            target = max(present) if better == "max" else min(present, key=abs)
        marks = [v is not None and v == target for v in values]
        display[name] = [
            "" if v is None else (BEST_MARK if mark else "") + fmt(v) for v, mark in zip(values, marks, strict=True)
        ]
        best[name] = marks
    columns = list(labels)
    return (
        pd.DataFrame.from_dict(display, orient="index", columns=columns),
        pd.DataFrame.from_dict(best, orient="index", columns=columns),
    )


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config dicts as dotted keys (``model_kwargs.latent_dim``)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def config_diff(
    configs: Sequence[Mapping[str, Any]], labels: Sequence[str], ignore: Sequence[str] = ("name",)
) -> pd.DataFrame:
    """Only the options whose values differ between the runs (rows options, columns runs)."""
    flat = [flatten_config(c) for c in configs]
    keys = sorted({k for f in flat for k in f} - set(ignore))
    rows = {}
    for key in keys:
        values = [f.get(key, "(not set)") for f in flat]
        if len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1:
            rows[key] = [json.dumps(v, default=str) if isinstance(v, list | dict) else str(v) for v in values]
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(labels))


def eta_seconds(record: RunRecord, history: pd.DataFrame) -> float | None:
    """Seconds left for an active run: remaining epochs times the mean epoch time so far."""
    if not record.total_epochs or history.empty or "seconds" not in history:
        return None
    per_epoch = history["seconds"].dropna()
    if per_epoch.empty:
        return None
    remaining = max(0, int(record.total_epochs) - int(history["epoch"].max()))
    return remaining * float(per_epoch.mean())


def best_run_per_model(runs: pd.DataFrame) -> pd.DataFrame:
    """Per model family, the completed run with the highest best validation macro-F1."""
    done = runs[(runs["status"] == "completed") & runs["best_val_f1"].notna()]
    if done.empty:
        return done
    best = done.loc[done.groupby("model")["best_val_f1"].idxmax()]
    return best.sort_values("best_val_f1", ascending=False)


def f1_against_frequency(per_class: pd.DataFrame, train_counts: Mapping[str, int] | None) -> pd.DataFrame:
    """Per-class test F1 beside the number of training images of the class (for the scatter)."""
    if per_class.empty or not train_counts:
        return pd.DataFrame(columns=["class_name", "train_images", "f1"])
    data = per_class[["class_name", "f1"]].copy()
    data["train_images"] = data["class_name"].map(lambda c: int(train_counts.get(c, 0)))
    return data


def most_confused_cell(class_names: Sequence[str], matrix: np.ndarray) -> tuple[str, str]:
    """The off-diagonal (true, predicted) pair with the most images (the first diagonal cell if none)."""
    matrix = np.asarray(matrix).copy()
    np.fill_diagonal(matrix, -1)
    if matrix.size == 0 or matrix.max() <= 0:
        return class_names[0], class_names[0]
    true_idx, pred_idx = np.unravel_index(int(matrix.argmax()), matrix.shape)
    return class_names[true_idx], class_names[pred_idx]


def cell_predictions(predictions: pd.DataFrame, true: str, predicted: str) -> pd.DataFrame:
    """Test images whose true class is ``true`` and predicted class ``predicted``, most confident first
    (for a mistake, the confident ones are the telling ones)."""
    cell = predictions[(predictions["true"] == true) & (predictions["predicted"] == predicted)]
    return cell.sort_values("confidence", ascending=False) if "confidence" in cell else cell
