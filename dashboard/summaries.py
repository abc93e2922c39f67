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

from backend.evaluation.calibration import reliability_table
from backend.evaluation.report import figure_text, figures_on_test, selection_split, split_counts
from backend.store import RunRecord

MILD_GAP_POINTS = 5.0  # train-test accuracy gap (points) below which overfitting is "mild"
SEVERE_GAP_POINTS = 10.0  # above this it is "severe"; in between "moderate"


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
    """Training accuracy at the selected epoch minus test accuracy, in percentage points."""
    train, test = _finite(record.train_acc_at_best), _finite(figures_on_test(record)["accuracy"])
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
    return (split_counts(record) or {}).get(split)


def _format_params(n: int | None) -> str:
    if n is None:
        return ""
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k"


def _format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def _format_ece(record: RunRecord) -> str | None:
    figures = figures_on_test(record)
    ece, before = _finite(figures["ece"]), _finite(figures["ece_uncalibrated"])
    if ece is None:
        return None
    return f"{ece:.3f}" + (f" ({before:.3f} before temperature)" if before is not None else "")


def _dataset_size(record: RunRecord) -> int | None:
    counts = split_counts(record) or {}
    present = [int(counts[split]) for split in ("train", "val", "test") if counts.get(split) is not None]
    return sum(present) if present else None


def _selection(record: RunRecord) -> str:
    split = selection_split(record)
    return "validation" if split == "validation" else "test (figures optimistic)"


# Rows of the comparison table: label, text(record) (None when the run lacks it). No row is starred:
# a best value is noise unless a paired test says otherwise (the page's paired comparisons do that).
def _comparison_rows() -> list[tuple[str, Any]]:
    def shown(value_of, fmt):
        return lambda r: None if (v := value_of(r)) is None else fmt(v)

    pct = "{:.2%}".format
    three = "{:.4f}".format
    return [
        ("Selected on", _selection),
        ("Accuracy", lambda r: figure_text(figures_on_test(r), "accuracy")),
        ("Macro-F1", lambda r: figure_text(figures_on_test(r), "macro_f1")),
        ("Precision", shown(lambda r: best_metric(r, "precision"), three)),
        ("Recall", shown(lambda r: best_metric(r, "recall"), three)),
        ("ECE (test)", _format_ece),
        ("Temperature", shown(lambda r: _finite(r.temperature), "{:.2f}".format)),
        ("Classes", shown(lambda r: len(r.class_names) if r.class_names else None, "{:d}".format)),
        ("Dataset size", shown(_dataset_size, "{:,}".format)),
        ("Images per class (train)", shown(_images_per_class, "{:.0f}".format)),
        ("Best epoch", shown(lambda r: r.best_epoch, "{:d}".format)),
        ("Train accuracy at best", shown(lambda r: _finite(r.train_acc_at_best), pct)),
        ("Train-test gap", shown(train_test_gap, _format_gap)),
        ("Parameters", shown(lambda r: r.num_params, _format_params)),
        ("Training time", shown(run_duration, _format_duration)),
    ]


def _images_per_class(record: RunRecord) -> float | None:
    total, classes = _split_total(record, "train"), len(record.class_names or [])
    return total / classes if total and classes else None


def _format_gap(points: float) -> str:
    return f"{points:.2f} pts ({overfitting_label(points)})"


def comparison_table(records: Sequence[RunRecord], labels: Sequence[str]) -> pd.DataFrame:
    """The metrics table of several runs: rows are measures, columns are runs, test figures with their
    95% intervals. Nothing is starred: which run is better is the paired comparison's question."""
    rows = {name: [text(r) or "" for r in records] for name, text in _comparison_rows()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(labels))


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


# A run stored before an option existed has no value for it; it ran with that build's behaviour,
# which need not be today's default (the two-convolution block became visual_cnn's default on
# 2026-12-04), so the diff says the value is missing rather than guessing it.
NOT_RECORDED = "(not recorded)"


def config_diff(
    configs: Sequence[Mapping[str, Any]], labels: Sequence[str], ignore: Sequence[str] = ("name",)
) -> pd.DataFrame:
    """Only the options whose values differ between the runs (rows options, columns runs); an option
    a run's stored config lacks (the run predates it) reads ``NOT_RECORDED``."""
    flat = [flatten_config(c) for c in configs]
    keys = sorted({k for f in flat for k in f} - set(ignore))
    rows = {}
    for key in keys:
        values = [f.get(key, NOT_RECORDED) for f in flat]
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
    """Per dataset and model family, the completed run with the highest selection macro-F1
    (``best_val_f1``: validation for new runs, test for runs stored before), with its test figures
    as text (``accuracy``, ``macro_f1`` with intervals) and ``selected_on``."""
    done = runs[(runs["status"] == "completed") & runs["best_val_f1"].notna()]
    if done.empty:
        return done.assign(test_accuracy=[], test_macro_f1=[], selected_on=[])
    best = done.loc[done.groupby(["dataset", "model"])["best_val_f1"].idxmax()]
    best = best.sort_values(["dataset", "best_val_f1"], ascending=[True, False])
    figures = [figures_on_test(row) for _, row in best.iterrows()]
    return best.assign(
        test_accuracy=[figure_text(f, "accuracy") for f in figures],
        test_macro_f1=[figure_text(f, "macro_f1") for f in figures],
        selected_on=[selection_split(row) for _, row in best.iterrows()],
    )


def per_class_with_intervals(per_class: pd.DataFrame, figures: Mapping[str, Any] | None) -> pd.DataFrame:
    """Per-class rows plus ``f1_interval`` ("0.909 [0.890, 0.927]") where intervals were stored."""
    intervals = (figures or {}).get("per_class_f1_ci") or {}
    if per_class.empty or not intervals:
        return per_class
    text = [
        figure_text({"f1": f1, "f1_ci": intervals.get(name)}, "f1")
        for name, f1 in zip(per_class["class_name"], per_class["f1"], strict=True)
    ]
    return per_class.assign(f1_interval=text)


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


def cell_items(predictions: pd.DataFrame, class_names: Sequence[str], true: str, predicted: str) -> pd.DataFrame:
    """The stored per-file predictions (``store.predictions``) behind one confusion-matrix cell, most
    confident first: path (relative to the dataset root), item_hash, confidence, ``p_true`` (the
    probability given to the true class) and ``top3`` (``"a 81%, b 12%, c 4%"``)."""
    columns = ["path", "item_hash", "confidence", "p_true", "top3"]
    names = list(class_names)
    if predictions.empty or true not in names or predicted not in names:
        return pd.DataFrame(columns=columns)
    t, p = names.index(true), names.index(predicted)
    cell = predictions[(predictions["true_index"] == t) & (predictions["pred_index"] == p)]
    rows = []
    for row in cell.itertuples(index=False):
        probs = list(row.probs) if isinstance(row.probs, list | tuple) else None
        p_true = float(probs[t]) if probs and len(probs) == len(names) else None
        ranked = sorted(enumerate(probs), key=lambda kv: kv[1], reverse=True)[:3] if p_true is not None else []
        rows.append({
            "path": row.path, "item_hash": row.item_hash, "confidence": _finite(row.confidence), "p_true": p_true,
            "top3": ", ".join(f"{names[i]} {q:.0%}" for i, q in ranked),
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("confidence", ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def predictions_from_csv(frame: pd.DataFrame, class_names: Sequence[str]) -> pd.DataFrame:
    """A run's ``test_predictions.csv`` in the form of ``store.predictions`` (for runs from before
    per-file predictions were stored): ``path`` is the CSV's absolute ``file``, ``item_hash`` its hash
    when the CSV has one (None: the file is not checked), probabilities from its ``prob_<class>`` columns."""
    names = list(class_names)
    known = frame["true"].isin(names) & frame["predicted"].isin(names)
    frame = frame[known]
    prob_columns = [f"prob_{name}" for name in names]
    has_probs = all(c in frame for c in prob_columns)
    return pd.DataFrame({
        "path": frame["file"].astype(str),
        "item_hash": frame["item_hash"] if "item_hash" in frame else None,
        "true_index": frame["true"].map(names.index),
        "pred_index": frame["predicted"].map(names.index),
        "probs": frame[prob_columns].to_numpy().tolist() if has_probs else None,
        "confidence": frame["confidence"] if "confidence" in frame else np.nan,
    })  # fmt: skip


def reliability(predictions: pd.DataFrame) -> pd.DataFrame | None:
    """The reliability table (15 bins) of stored per-item predictions, None when no probabilities
    were stored (runs from before per-item predictions)."""
    if predictions.empty or predictions["probs"].isna().any():
        return None
    return reliability_table(np.vstack(predictions["probs"].to_list()), predictions["true_index"].to_numpy())
