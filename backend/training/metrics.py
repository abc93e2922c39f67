"""Classification metrics (scikit-learn) and the running means the epoch loops keep.

Every metric is computed over ``labels=range(k)`` so a class that is absent from a split or never
predicted still has its row (with 0, not an exception: ``zero_division=0``), and label ``i`` always
means ``class_names[i]``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


class RunningMeans:
    """Batch-size-weighted means of named values, kept on the device until read.

    Summing detached tensors avoids a GPU sync per batch; ``means()`` syncs once per epoch.
    """

    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), dtype=torch.float64))
        self._count = 0

    def update(self, values: dict[str, torch.Tensor], n: int) -> None:
        for name, value in values.items():
            self._sums[name] = self._sums[name].to(value.device) + value.detach().double() * n
        self._count += n

    def means(self) -> dict[str, float]:
        return {name: float(total) / max(self._count, 1) for name, total in self._sums.items()}


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> dict[str, float]:
    """Accuracy and macro precision, recall and F1 over all ``num_classes`` labels."""
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(num_classes)), average="macro", zero_division=0
    )
    return {"acc": float(accuracy_score(y_true, y_pred)), "precision": float(precision),
            "recall": float(recall), "f1": float(f1)}  # fmt: skip


def per_class_metrics(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]) -> list[dict]:
    """One row per class: class_name, precision, recall, f1, support (the store's class-metric rows)."""
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(len(class_names))), average=None, zero_division=0
    )
    return [
        {"class_name": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(class_names, precision, recall, f1, support, strict=True)
    ]


def confusion(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> list[list[int]]:
    """The k x k confusion matrix (rows true, columns predicted) as plain ints."""
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(num_classes)))
    return np.asarray(matrix, dtype=np.int64).tolist()


@dataclass
class EvalReport:
    """A model's results on one labelled split: overall macro metrics, per-class rows, confusion."""

    class_names: list[str]
    metrics: dict[str, float]  # acc, precision, recall, f1 (macro)
    per_class: list[dict]  # the store's class-metric rows
    matrix: list[list[int]]  # rows true, columns predicted


def eval_report(y_true: Sequence[int], y_pred: Sequence[int], class_names: Sequence[str]) -> EvalReport:
    """Everything the Class metrics page needs about ``y_pred`` against ``y_true``."""
    k = len(class_names)
    return EvalReport(
        class_names=list(class_names),
        metrics=classification_metrics(y_true, y_pred, k),
        per_class=per_class_metrics(y_true, y_pred, class_names),
        matrix=confusion(y_true, y_pred, k),
    )
