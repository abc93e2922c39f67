"""Knowledge distillation: another run's calibrated probabilities as part of each training target.

With ``distill_from = N`` (a completed run, the *teacher*), every training image's target becomes

    (1 - w) * one_hot(label) + w * soften(p_teacher, T),   soften(p, T) = p^(1/T) / sum(p^(1/T))

where ``p_teacher`` is the teacher's calibrated probability vector for the same item (a series
teacher reads the item's CSV, an image teacher its PNG, each with the preprocessing of its own
checkpoint), ``w = distill_weight`` and ``T = distill_temperature``. Every loss of
``backend.training.losses`` already takes probability targets (what MixUp produces), so the loss,
the class weights and label smoothing mean what they mean without a teacher. Softening the
teacher's probabilities equals dividing its logits by T (the log-sum-exp shift cancels).

With ``distill_with = M`` as well, ``p_teacher`` is the mean of both runs' calibrated probabilities
(``AveragedTeacher``): the image + series ensemble the Predict page offers for CSVs, as a teacher.
A student takes its teacher's per-class profile with its knowledge (docs/BENCHMARKS_quality.md,
"Distillation from the series model"): a series teacher alone is strong on the anomaly classes and
weak on the trend classes, where the image model is strong, and the average is strong on both.

The teacher is read once, before the first epoch; the targets then travel with their images
through the batch path and the worker path alike (``TrainingData.train_targets``). Validation, the
best epoch, calibration and the test split use the true labels only, so a distilled run's figures
are comparable with any other run's on the same test split.

The teacher is a ``Teacher``: anything that gives probabilities for the training items. The one
that reads a stored run, and the honesty checks that need the store, live in the run manager
(``backend.runs.teacher``: the training engine does not read the store). Those checks, run before a
run is queued or trained: the teacher has completed on the same dataset folder with the same class
names, and none of this run's test images was in the teacher's training or validation split
(``seen_test_items``; a teacher that had seen them would pass their labels on).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any, Protocol

import numpy as np

from backend.training.config import ConfigError, TrainConfig, load_split

TEMPERATURE_RANGE = (0.5, 10.0)


def soften(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Each row of ``probabilities`` as ``p^(1/T)`` renormalised: T > 1 flattens, T < 1 sharpens."""
    logs = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logs -= logs.max(axis=1, keepdims=True)
    weights = np.exp(logs)
    return weights / weights.sum(axis=1, keepdims=True)


def soft_targets(labels: np.ndarray, teacher: np.ndarray, weight: float, temperature: float) -> np.ndarray:
    """(N, C) float32 targets: ``(1 - weight)`` of each true label's one-hot plus ``weight`` of the
    teacher's softened probabilities; every row sums to 1."""
    labels = np.asarray(labels, dtype=np.int64)
    one_hot = np.eye(teacher.shape[1], dtype=np.float64)[labels]
    return ((1.0 - weight) * one_hot + weight * soften(teacher, temperature)).astype(np.float32)


def check_options(config: TrainConfig) -> None:
    """The distillation options' ranges and combinations (no store access)."""
    if config.distill_from < 0:
        raise ConfigError(f"distill_from must be a run id, or 0 for no teacher; got {config.distill_from}")
    if not 0 < config.distill_weight <= 1:
        raise ConfigError(f"distill_weight must be in (0, 1] (the teacher's share of each target), got {config.distill_weight}")
    low, high = TEMPERATURE_RANGE
    if not low <= config.distill_temperature <= high:
        raise ConfigError(f"distill_temperature must be between {low:g} and {high:g}, got {config.distill_temperature}")
    if config.distill_with < 0:
        raise ConfigError(f"distill_with must be a run id, or 0 for one teacher; got {config.distill_with}")
    if config.distill_with and not config.distill_from:
        raise ConfigError("distill_with names a second teacher; set distill_from to the first")
    if config.distill_with and config.distill_with == config.distill_from:
        raise ConfigError(f"distill_with and distill_from both name run {config.distill_from}; "
                          "name two different runs, or set distill_with to 0")  # fmt: skip
    if config.distill_from and (config.mixup_alpha > 0 or config.cutmix_alpha > 0):
        raise ConfigError("distillation and MixUp / CutMix both rewrite the training targets: "
                          "set mixup_alpha and cutmix_alpha to 0, or distill_from to 0")  # fmt: skip


class Teacher(Protocol):
    """What the loop needs of a teacher: the run ids it speaks for (``teacher_runs`` of the config),
    one line about it, and its calibrated probabilities for every item of ``split.train`` with
    columns in ``class_names`` order.
    ``backend.runs.teacher.RunTeacher`` is the one that reads a stored run (the training engine
    does not read the store)."""

    run_ids: list[int]

    def describe(self) -> str: ...

    def probabilities(self, split, class_names: Sequence[str]) -> np.ndarray: ...


class AveragedTeacher:
    """Several teachers as one: the mean of their probabilities (each already calibrated by its own
    run's temperature), e.g. a series run and an image run, the ensemble the Predict page offers for
    CSVs. ``run_ids`` lists every teacher's runs, in order."""

    def __init__(self, teachers: Sequence[Teacher]):
        if len(teachers) < 2:
            raise ValueError("an averaged teacher needs two or more teachers")
        self.teachers = list(teachers)
        self.run_ids = [run for t in self.teachers for run in t.run_ids]

    def describe(self) -> str:
        return " + ".join(t.describe() for t in self.teachers) + ", averaged"

    def probabilities(self, split, class_names: Sequence[str]) -> np.ndarray:
        found = [np.asarray(t.probabilities(split, class_names), dtype=np.float64) for t in self.teachers]
        shapes = {f.shape for f in found}
        if len(shapes) != 1:
            raise ConfigError(f"distill_with: the teachers gave probabilities of different shapes {sorted(shapes)}")
        return np.mean(found, axis=0)


def teacher_runs(config: TrainConfig) -> list[int]:
    """The run ids ``config`` distils from, in order: ``[]``, ``[distill_from]`` or both."""
    return [int(r) for r in (config.distill_from, config.distill_with) if r]


def seen_test_items(teacher_config: Mapping[str, Any], config: TrainConfig, split) -> list[str]:
    """The paths of ``split.test`` that the teacher (trained with ``teacher_config``) had in its own
    train or validation split: with a ``test/`` folder none; with a split drawn by seed, those a
    teacher with another seed or fractions trained or selected on."""
    options = SimpleNamespace(
        data=config.data,
        test_fraction=float(teacher_config.get("test_fraction", config.test_fraction)),
        val_fraction=float(teacher_config.get("val_fraction", config.val_fraction)),
        seed=int(teacher_config.get("seed", config.seed)),
    )
    taught = load_split(options)
    seen = {str(s.path) for s in (*taught.train, *taught.val)}
    return sorted(str(s.path) for s in split.test if str(s.path) in seen)


def distillation_targets(config: TrainConfig, teacher: Teacher | None, split, class_names: Sequence[str],
                         labels: np.ndarray, log: logging.Logger) -> tuple[np.ndarray | None, dict[str, Any]]:  # fmt: skip
    """``(targets, summary)`` for the training split, or ``(None, {})`` without ``distill_from``.

    The summary (stored with the run's test figures as ``distillation``) says how much the teacher
    agrees with the labels it is mixed with: its accuracy on the training items and its mean
    probability for the true class, before and after softening.
    """
    if not config.distill_from:
        return None, {}
    if teacher is None or list(teacher.run_ids) != teacher_runs(config):
        raise ConfigError(f"distill_from is {config.distill_from} (distill_with {config.distill_with}) but the "
                          "trainer was given no such teacher; train through `python -m backend train`, which "
                          "reads the teacher runs from the store")  # fmt: skip
    probabilities = np.asarray(teacher.probabilities(split, class_names), dtype=np.float64)
    if probabilities.shape != (len(labels), len(class_names)):
        raise ConfigError(f"distill_from: the teacher gave {probabilities.shape} probabilities for "
                          f"{len(labels)} training items and {len(class_names)} classes")  # fmt: skip
    softened = soften(probabilities, config.distill_temperature)
    rows = np.arange(len(labels))
    summary = {
        "teacher_run": int(config.distill_from),
        "teacher_runs": teacher_runs(config),
        "weight": float(config.distill_weight),
        "temperature": float(config.distill_temperature),
        "teacher_train_accuracy": float(np.mean(probabilities.argmax(axis=1) == labels)),
        "teacher_true_class_probability": float(np.mean(probabilities[rows, labels])),
        "softened_true_class_probability": float(np.mean(softened[rows, labels])),
    }
    log.info("distilling from %s: weight %.2f, temperature %.2f; on the %d training items the teacher is %.1f%% "
             "right, true-class probability %.3f (%.3f softened)", teacher.describe(), config.distill_weight,
             config.distill_temperature, len(labels), 100 * summary["teacher_train_accuracy"],
             summary["teacher_true_class_probability"], summary["softened_true_class_probability"])  # fmt: skip
    return soft_targets(labels, probabilities, config.distill_weight, config.distill_temperature), summary
