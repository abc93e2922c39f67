"""Scoring helpers shared by the model-family benches (``generalization.py``, ``series_model.py``).

Every figure carries its 95% stratified bootstrap interval (``backend.evaluation.stats``, seed fixed);
CSVs go through each model's own upload path (``predict_files``): an image model draws the CSV and
answers ``softmax(logits / T)``, a series model reads the numbers and answers ``softmax(logits / T)``,
both calibrated by their run's temperature. The ensemble is the mean of the two calibrated vectors
(``backend.predict_series.average_probabilities``, what ``predict --ensemble-run`` answers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from backend.evaluation.stats import bootstrap_metrics
from backend.predict_series import average_probabilities
from backend.training.metrics import confusion

N_RESAMPLES = 1000


def threads() -> int:
    """Torch's intra-op threads in this process (``OMP_NUM_THREADS`` when set), for a report's command line."""
    return torch.get_num_threads()


def top_confusions(matrix: list[list[int]], names: Sequence[str], k: int = 3) -> list[tuple[str, str, int]]:
    """The ``k`` largest off-diagonal cells: (true class, predicted class, count)."""
    pairs = [(names[i], names[j], n) for i, row in enumerate(matrix) for j, n in enumerate(row) if i != j and n]
    return sorted(pairs, key=lambda pair: -pair[2])[:k]


def figures(y_true: Sequence[int], y_pred: Sequence[int], names: Sequence[str], seed: int) -> dict:
    """``bootstrap_metrics`` (accuracy, macro-F1, per-class F1, each with its 95% interval) plus the
    confusion matrix and its largest off-diagonal cells."""
    result = bootstrap_metrics(list(y_true), list(y_pred), list(names), n_resamples=N_RESAMPLES, seed=seed)
    matrix = confusion(list(y_true), list(y_pred), len(names))
    return result | {"confusion": matrix, "top_confusions": top_confusions(matrix, names)}


def csv_files(folder: Path) -> list[Path]:
    """``folder/<class>/*.csv``, sorted: the class is the parent folder's name."""
    return sorted(Path(folder).glob("*/*.csv"))


def member_probabilities(predictors: Mapping[str, object], files: Sequence[Path], names: Sequence[str],
                         tta: str = "none") -> tuple[list[int], dict[str, np.ndarray], int]:  # fmt: skip
    """Every CSV through every predictor's ``predict_files`` (with ``tta``): ``(y_true, {member: (N, C)
    calibrated probabilities in ``names`` order}, unreadable count)``. Only files every member read are
    kept, so the members (and their ensemble) are scored on the same items; labels are the parent
    folder names."""
    pairs = [(str(p), p) for p in files]
    answers = {member: predictor.predict_files(pairs, tta) for member, predictor in predictors.items()}
    keep = [i for i in range(len(files)) if all(a[i].error is None for a in answers.values())]
    y_true = [list(names).index(Path(files[i]).parent.name) for i in keep]
    probabilities = {
        member: np.array([[a[i].probabilities[c] for c in names] for i in keep]).reshape(len(keep), len(names))
        for member, a in answers.items()
    }
    return y_true, probabilities, len(files) - len(keep)


def with_ensemble(probabilities: Mapping[str, np.ndarray], image: str, series: str) -> dict[str, np.ndarray]:
    """The members' probabilities plus ``"ensemble"``: the mean of the image and series members'."""
    return {**probabilities, "ensemble": average_probabilities(probabilities[image], probabilities[series])}
