"""The teacher of a distilled run (``distill_from``, and ``distill_with`` for a second one whose
probabilities are averaged with the first's): the stored runs they name, checked and read.

``check_teacher`` is run wherever a config becomes a run (``launch`` before queueing, the trainer's
CLI before anything trains, ``train_run`` before ``fit``), because it needs the store, which the
training engine does not read: the teacher must be a completed run with a checkpoint, trained on the
same dataset folder with the same class names, and must never have trained or selected on one of
this run's test images (``backend.training.distill.seen_test_items``). It returns a ``RunTeacher``,
the ``backend.training.distill.Teacher`` that ``fit`` asks for the training items' probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from backend import store
from backend.training.config import ConfigError, TrainConfig, load_split
from backend.training.distill import AveragedTeacher, seen_test_items, teacher_runs


class RunTeacher:
    """A stored run as a teacher: its best checkpoint predicts the training items, a series model
    from each plot's CSV, an image model from the image with its own checkpoint's preprocessing."""

    def __init__(self, run: store.RunRecord, device: str = "auto", option: str = "distill_from"):
        self.run_id = int(run.id)
        self.run_ids = [self.run_id]
        self.option = option  # the config option that named it, for messages
        self.model = run.model
        self.device = device

    def describe(self) -> str:
        return f"run {self.run_id} ({self.model})"

    def probabilities(self, split, class_names: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities for every item of ``split.train``, (N, C) in ``class_names`` order."""
        from backend.predict import PredictError
        from backend.predict_series import SeriesPredictor, open_run

        try:  # open_run says where a checkpoint is missing, or written on another host
            predictor = open_run(self.run_id, self.device)
        except PredictError as e:
            raise ConfigError(f"{self.option}: {e}") from e
        if sorted(predictor.class_names) != sorted(class_names):
            raise ConfigError(f"{self.option}: run {self.run_id} knows the classes {', '.join(predictor.class_names)}; "
                              f"this run trains {', '.join(class_names)}")  # fmt: skip
        if isinstance(predictor, SeriesPredictor):
            found = _read_series(predictor, split, self.option)
        else:
            found = _read_images(predictor, split, self.option)
        return found[:, [list(predictor.class_names).index(name) for name in class_names]]


def _read_series(predictor, split, option: str) -> np.ndarray:
    from backend.data.csvseries import CSVError, read_series_csv
    from backend.training.series_data import series_files

    values = []
    for path in series_files(split, ("train",))["train"]:
        try:
            values.append(read_series_csv(Path(path)).values)
        except (CSVError, ValueError, OSError) as e:
            raise ConfigError(f"{option}: the teacher cannot read the series {path}: {e}") from e
    return predictor.predict_series(values)


def _read_images(predictor, split, option: str) -> np.ndarray:
    answers = predictor.predict_files([(str(s.path), s.path) for s in split.train])
    failed = [a for a in answers if a.error]
    if failed:
        raise ConfigError(f"{option}: the teacher could not read {len(failed)} training image(s), "
                          f"e.g. {failed[0].filename}: {failed[0].error}")  # fmt: skip
    return np.array([[a.probabilities[name] for name in predictor.class_names] for a in answers], dtype=np.float64)


def check_teacher(config: TrainConfig, url: str | None = None) -> RunTeacher | AveragedTeacher | None:
    """The teacher ``config.distill_from`` names (None when it is 0), averaged with the run
    ``config.distill_with`` names when that is set, or ``ConfigError`` saying why a run cannot teach
    this one. Each teacher run passes every check on its own."""
    ids = teacher_runs(config)
    if not ids:
        return None
    split = load_split(config)
    teachers = [_checked_run(teacher_id, config, split, url) for teacher_id in ids]
    return teachers[0] if len(teachers) == 1 else AveragedTeacher(teachers)


def _checked_run(teacher_id: int, config: TrainConfig, split, url: str | None) -> RunTeacher:
    option = "distill_from" if teacher_id == config.distill_from else "distill_with"
    try:
        run = store.get_run(int(teacher_id), url=url)
    except store.RunNotFound:
        raise ConfigError(f"{option}: run {teacher_id} not found") from None
    if run.status != "completed" or not run.checkpoint_path:
        raise ConfigError(f"{option}: run {teacher_id} is {run.status}; a teacher must be a completed run "
                          "with a checkpoint")  # fmt: skip
    teacher_data = (run.config or {}).get("data") or run.dataset
    if not teacher_data or Path(teacher_data).resolve() != Path(config.data).resolve():
        raise ConfigError(f"{option}: run {teacher_id} was trained on {teacher_data}, this run on {config.data}; "
                          "a teacher must be trained on the same dataset, so its test split is this run's")  # fmt: skip
    if run.class_names and sorted(run.class_names) != sorted(split.classes):
        raise ConfigError(f"{option}: run {teacher_id} knows the classes {', '.join(run.class_names)}; "
                          f"this dataset has {', '.join(split.classes)}")  # fmt: skip
    leaked = seen_test_items(run.config or {}, config, split)
    if leaked:
        raise ConfigError(
            f"{option}: run {teacher_id} trained or selected on {len(leaked)} of this run's {len(split.test)} "
            f"test images (e.g. {Path(leaked[0]).name}), so it would pass their labels on; train the teacher with "
            "this run's seed, test_fraction and val_fraction, or use a dataset with a test/ folder"
        )
    return RunTeacher(run, device=config.device, option=option)
