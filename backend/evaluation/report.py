"""A run's test result as the dashboard and ``runs show --json`` report it, for old and new runs alike.

Runs stored before validation selection existed have no ``selection_split`` (their best epoch was
picked on test: "selected on test"), no intervals and no calibration; their test figures come from
``best_val_acc`` / ``best_val_f1``, which held test metrics then. Works on a ``RunRecord`` or on a
row of ``store.list_runs`` (a pandas Series) or a plain dict.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from backend.evaluation.stats import format_interval

TEST_KEYS = (
    "n",
    "accuracy",
    "accuracy_ci",
    "macro_f1",
    "macro_f1_ci",
    "per_class_f1",
    "per_class_f1_ci",
    "ece",
    "ece_uncalibrated",
)


def _field(run: Any, name: str) -> Any:
    """One column of a run, None when absent or NaN (DataFrame rows carry NaN for NULL)."""
    value = getattr(run, name, None) if dataclasses.is_dataclass(run) else run.get(name)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def selection_split(run: Any) -> str:
    """ "validation" for runs that chose their best epoch on validation, "test" for runs stored before."""
    return _field(run, "selection_split") or "test"


def selection_label(run: Any) -> str:
    """ "selected on validation" or "selected on test" (the latter's test figures are optimistic)."""
    return f"selected on {selection_split(run)}"


def figures_on_test(run: Any) -> dict:
    """The run's test figures (``TEST_KEYS``; None where not stored) from ``test_metrics``, falling
    back to ``best_val_acc`` / ``best_val_f1`` for runs stored before intervals existed."""
    stored = _field(run, "test_metrics") or {}
    figures = {key: stored.get(key) for key in TEST_KEYS}
    if not stored:
        figures["accuracy"] = _field(run, "best_val_acc")
        figures["macro_f1"] = _field(run, "best_val_f1")
    return figures


def split_counts(run: Any) -> dict | None:
    """Images per split: ``split_counts`` when stored, else totals of the per-class ``class_counts``."""
    stored = _field(run, "split_counts")
    if stored:
        return stored
    per_class = _field(run, "class_counts") or {}
    return {split: int(sum(counts.values())) for split, counts in per_class.items() if counts} or None


def comparison_fields(run: Any) -> dict:
    """The honest-comparison fields of ``runs show N --json``: selection_split, splits, test
    (accuracy, macro_f1, their ``[lo, hi]`` intervals, ece, ...) and temperature."""
    return {
        "selection_split": selection_split(run),
        "splits": split_counts(run),
        "test": figures_on_test(run),
        "temperature": _field(run, "temperature"),
    }


def figure_text(figures: dict, name: str, digits: int = 3) -> str:
    """``0.909 [0.890, 0.927]`` for ``name`` ("accuracy" or "macro_f1") of ``figures_on_test``."""
    return format_interval(figures.get(name), figures.get(f"{name}_ci"), digits)
