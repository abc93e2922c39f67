"""Prediction with a series model, and the image + series ensemble for CSV files.

Which predictor a checkpoint needs comes from the checkpoint itself (``input_kind``, written by
training; checkpoints without it are image models): :func:`open_checkpoint` / :func:`open_run`
return a ``backend.predict.Predictor`` for an image model and a :class:`SeriesPredictor` for a
series model. Both answer ``iter_files`` / ``predict_files`` / ``predict_file`` with the same
``Prediction`` objects, so the CLI and the Predict page do not branch on the kind.

The path of a CSV through a series model::

    CSV bytes -> read_series_csv (as for the image models) -> series_to_input (resample to the
    checkpoint's series_length, robust z-score) -> the model -> softmax(logits / temperature)

A series model's probabilities are **calibrated** (the temperature fitted on validation at the end
of its run). An image file given to a series model is read back into a series first
(``backend.data.digitize.digitize_plot``: the plot's line, column by column) and then predicted
like a CSV; an image with no readable line is an error for that file, in words.

:class:`EnsemblePredictor` answers a CSV or a plot image with the mean of two calibrated probability
vectors: an image run's (a CSV drawn as the generator draws plots, an image as it is) and a series
run's (a CSV's numbers, an image's line read back into a series). ``python -m backend predict
--run A --ensemble-run B`` (either order: one image run, one series run).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from backend.data.csvseries import downsample_for_drawing
from backend.data.digitize import digitize_plot
from backend.data.inputs import FILE_TIME_BUDGET_S, _read_bytes, display_name, input_kind, one_line, read_upload
from backend.data.render import render_series
from backend.device import Runtime
from backend.evaluation.calibration import softmax
from backend.models.series1d import DEFAULT_LENGTH, series_to_input, series_tta_view_count, series_tta_views
from backend.predict import CheckpointLoader, PredictError, Prediction, Predictor, run_checkpoint
from backend.training.checkpoint import CheckpointError, read_checkpoint


def checkpoint_input_kind(checkpoint: dict) -> str:
    """``"series"`` or ``"image"`` (checkpoints written before series models existed are image models)."""
    return str(checkpoint.get("input_kind") or "image")


def _source_kind(source: Path | str | bytes, name: str) -> str:
    """``"image"`` or ``"csv"`` from the name and the first bytes (``backend.data.inputs.input_kind``)."""
    if isinstance(source, bytes | bytearray | memoryview):
        head = bytes(source[:64])
    else:
        with Path(source).open("rb") as handle:
            head = handle.read(64)
    return input_kind(name, head)


class SeriesPredictor(CheckpointLoader):
    """One loaded series checkpoint that predicts CSV files of any length (calibrated probabilities).

    Attributes as ``Predictor``'s: ``class_names``, ``model_name``, ``run_id``, ``runtime``; plus
    ``input_kind`` ("series"), ``series_length`` and ``temperature``. Read-only after construction.
    """

    input_kind = "series"

    def __init__(self, model: torch.nn.Module, checkpoint: dict, runtime: Runtime, *, run_id: int | None = None):
        if checkpoint_input_kind(checkpoint) != "series":
            raise PredictError(f"{checkpoint['model_name']} is an image model; load it with backend.predict.Predictor")
        self.class_names: list[str] = list(checkpoint["class_names"])
        self.model_name: str = checkpoint["model_name"]
        self.series_length = int(
            checkpoint.get("series_length") or checkpoint["model_kwargs"].get("length", DEFAULT_LENGTH)
        )
        self.image_size = None  # not an image model: nothing is resized
        self.temperature = float(checkpoint.get("temperature") or 1.0)
        self.run_id = run_id
        self.runtime = dataclasses.replace(runtime, dtype=None, channels_last=False)  # fp32: the model is small
        self.model = model.to(self.runtime.device).eval()

    def describe(self) -> str:
        source = f"run {self.run_id}" if self.run_id is not None else "checkpoint"
        return (f"{source}: {self.model_name} (series model: reads CSVs), {len(self.class_names)} classes, "
                f"{self.series_length} points, {self.runtime.describe()}")  # fmt: skip

    def predict_series(self, series: Sequence[np.ndarray], batch_size: int = 256, tta: str = "none") -> np.ndarray:
        """Raw series (each any length >= 2, finite) -> calibrated probabilities (N, C), the mean over
        the ``tta`` views (``backend.models.series1d.series_tta_views``)."""
        return self.predict_series_views(series, batch_size, tta).mean(axis=0)

    def predict_series_views(self, series: Sequence[np.ndarray], batch_size: int = 256, tta: str = "none") -> np.ndarray:
        """Calibrated probabilities of every test-time view, (V, N, C): view ``v`` of series ``i``
        at ``[v, i]``; every view goes through the model in the same forward pass as its series."""
        n_views = series_tta_view_count(tta)  # an unknown mode fails here
        if not len(series):
            return np.zeros((n_views, 0, len(self.class_names)))
        inputs = np.stack([series_to_input(values, self.series_length) for values in series])
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(inputs), batch_size):
                batch = torch.from_numpy(inputs[start : start + batch_size]).to(self.runtime.device)
                logits = self.model(series_tta_views(batch, tta))["logits"].float().cpu().numpy()
                chunks.append(softmax(logits, self.temperature).reshape(n_views, len(batch), -1))
        return np.concatenate(chunks, axis=1)

    def _read(self, name: str, source: Path | str | bytes, column: str | None, draw: bool):
        """(values, image or None, notes) of one CSV or plot image; ValueError (its message for the
        user) otherwise."""
        upload = read_upload(name, _read_bytes(source, name), column=column)
        if isinstance(upload, np.ndarray):  # a plot image: its line is read back into a series
            try:
                digitized = digitize_plot(upload)
            except ValueError as e:
                raise ValueError(f"{Path(name).name}: no series could be read from the plot ({one_line(e)}); "
                                 "a series model reads CSVs and plots with one visible line") from e  # fmt: skip
            return digitized.values, upload if draw else None, list(digitized.notes)
        image = render_series(downsample_for_drawing(upload.values)) if draw else None
        return upload.values, image, [f"series from column {upload.column!r}", *upload.notes]

    def iter_files(self, files: Iterable[tuple[str, Path | str | bytes]], tta: str = "none", *,
                   batch_size: int = 32, column: str | None = None, time_budget: float = FILE_TIME_BUDGET_S,
                   draw: bool = False, style_views: int = 0) -> Iterator[Prediction]:  # fmt: skip
        """Predict ``(filename, bytes or path)`` pairs in order; a file that fails yields ``error``.

        CSVs are parsed in this process (``read_series_csv`` is bounded: a 32 MiB file in about 1.5 s),
        so ``time_budget`` is accepted for the common interface and not enforced per file. ``tta``
        ("none" or "flip4": the series, reversed in time, negated and both) averages the views'
        calibrated probabilities and reports their agreement and spread as the image models do;
        ``style_views`` is accepted and ignored (a series model reads numbers, not a drawing).
        ``draw=True`` draws each series (``Prediction.image``) for the Predict page.
        """
        series_tta_view_count(tta)  # an unknown mode fails before any file is read
        for name, source in files:
            try:
                values, image, notes = self._read(name, source, column, draw)
            except (ValueError, OSError) as e:
                yield Prediction(filename=name, error=one_line(e))
                continue
            views = self.predict_series_views([values], tta=tta)[:, 0]
            answer = _prediction(name, self.class_names, views.mean(axis=0), image, notes)
            best = self.class_names.index(answer.predicted)
            yield dataclasses.replace(
                answer, tta_agreement=float((views.argmax(axis=1) == best).mean()),
                tta_spread=float(np.ptp(views[:, best])), n_views=len(views),
            )  # fmt: skip

    def predict_files(self, files: Iterable[tuple[str, Path | str | bytes]], tta: str = "none", *,
                      batch_size: int = 32, column: str | None = None, time_budget: float = FILE_TIME_BUDGET_S,
                      draw: bool = False, style_views: int = 0) -> list[Prediction]:  # fmt: skip
        return list(self.iter_files(files, tta, batch_size=batch_size, column=column, time_budget=time_budget,
                                    draw=draw))  # fmt: skip

    def predict_file(self, source: Path | str | bytes, *, filename: str | None = None, tta: str = "none",
                     column: str | None = None) -> Prediction:  # fmt: skip
        return self.predict_files([(display_name(source, filename), source)], tta, column=column)[0]


def _prediction(name: str, class_names: Sequence[str], probabilities: np.ndarray, image, notes) -> Prediction:
    best = int(np.argmax(probabilities))
    return Prediction(
        filename=name, predicted=class_names[best], confidence=float(probabilities[best]),
        probabilities={c: float(p) for c, p in zip(class_names, probabilities, strict=True)},
        image=image, notes=list(notes),
    )  # fmt: skip


def average_probabilities(image_probs: np.ndarray, series_probs: np.ndarray) -> np.ndarray:
    """The ensemble's answer: the mean of two calibrated probability vectors (same class order)."""
    return (np.asarray(image_probs, dtype=np.float64) + np.asarray(series_probs, dtype=np.float64)) / 2.0


class EnsemblePredictor:
    """An image run and a series run answering CSVs and plot images together: the mean of their
    calibrated probabilities."""

    input_kind = "series"

    def __init__(self, image: Predictor, image_temperature: float, series: SeriesPredictor):
        if sorted(image.class_names) != sorted(series.class_names):
            raise PredictError(
                f"the two runs have different classes ({', '.join(image.class_names)} against "
                f"{', '.join(series.class_names)}); an ensemble needs runs trained on the same classes"
            )
        self.image, self.series, self.image_temperature = image, series, float(image_temperature)
        self.class_names = list(image.class_names)
        self._series_order = [series.class_names.index(c) for c in self.class_names]
        self.model_name = f"{image.model_name} + {series.model_name}"
        self.run_id = image.run_id
        self.runtime = image.runtime
        self.image_size = image.image_size

    def describe(self) -> str:
        return (f"image + series ensemble, mean of calibrated probabilities: [{self.image.describe()}; "
                f"temperature {self.image_temperature:.3f}] + [{self.series.describe()}; "
                f"temperature {self.series.temperature:.3f}]")  # fmt: skip

    def iter_files(self, files: Iterable[tuple[str, Path | str | bytes]], tta: str = "none", *,
                   batch_size: int = 32, column: str | None = None, time_budget: float = FILE_TIME_BUDGET_S,
                   draw: bool = False, style_views: int = 0) -> Iterator[Prediction]:  # fmt: skip
        """Each file through both runs, each with ``tta``: a CSV is drawn for the image run and read as numbers
        by the series run; a plot image is read by the image run as it is and by the series run as the
        series its line draws (``digitize_plot``). An image whose line cannot be read is answered by the
        image run alone, with a note saying so."""
        files = list(files)
        kinds = []
        for name, source in files:
            try:
                kinds.append(_source_kind(source, name))
            except (ValueError, OSError) as e:
                kinds.append(one_line(e))
        readable = [pair for pair, kind in zip(files, kinds, strict=True) if kind in ("csv", "image")]
        image_answers = self.image.iter_files(readable, tta, batch_size=batch_size, column=column,
                                              time_budget=time_budget, style_views=style_views)  # fmt: skip
        series_answers = self.series.iter_files(readable, tta, column=column)
        for (name, _), kind in zip(files, kinds, strict=True):
            if kind not in ("csv", "image"):
                yield Prediction(filename=name, error=kind)
                continue
            from_image, from_series = next(image_answers), next(series_answers)
            if from_image.error:
                yield from_image
                continue
            if from_series.error:
                if kind == "csv":
                    yield Prediction(filename=name, error=from_series.error)
                else:  # no line could be read: the image run's answer stands alone, and says so
                    yield dataclasses.replace(
                        from_image, notes=[*from_image.notes, f"image run alone: {from_series.error}"]
                    )
                continue
            # The image Predictor already divides its logits by the run's temperature (calibrated answers).
            image_probs = np.array([from_image.probabilities[c] for c in self.class_names])
            series_probs = np.array([from_series.probabilities[c] for c in self.class_names])
            # For an image, how its line was read; a CSV's own notes already come with the image run's answer.
            read = from_series.notes if kind == "image" else []
            notes = [*from_image.notes, *read, f"mean of calibrated probabilities of {self.image.model_name} and "
                     f"{self.series.model_name}"]  # fmt: skip
            yield _prediction(name, self.class_names, average_probabilities(image_probs, series_probs),
                              from_image.image, notes)  # fmt: skip

    def predict_files(self, files, tta: str = "none", *, batch_size: int = 32, column: str | None = None,
                      time_budget: float = FILE_TIME_BUDGET_S, draw: bool = False,
                      style_views: int = 0) -> list[Prediction]:  # fmt: skip
        return list(self.iter_files(files, tta, batch_size=batch_size, column=column, time_budget=time_budget))

    def predict_file(self, source, *, filename: str | None = None, tta: str = "none",
                     column: str | None = None) -> Prediction:  # fmt: skip
        return self.predict_files([(display_name(source, filename), source)], tta, column=column)[0]


def open_checkpoint(path: Path | str, device: str = "auto", precision: str = "auto", *,
                    run_id: int | None = None) -> Predictor | SeriesPredictor:  # fmt: skip
    """The predictor a checkpoint needs: ``SeriesPredictor`` for a series model, else ``Predictor``."""
    try:
        kind = checkpoint_input_kind(read_checkpoint(path))
    except CheckpointError as e:
        raise PredictError(one_line(e)) from e
    cls = SeriesPredictor if kind == "series" else Predictor
    return cls.from_checkpoint(path, device, precision, run_id=run_id)


def open_run(run_id: int, device: str = "auto", precision: str = "auto") -> Predictor | SeriesPredictor:
    """:func:`open_checkpoint` for a run's best checkpoint."""
    return open_checkpoint(run_checkpoint(run_id), device, precision, run_id=int(run_id))


def open_ensemble(run_a: int, run_b: int, device: str = "auto", precision: str = "auto") -> EnsemblePredictor:
    """The ensemble of an image run and a series run, in either order; ``PredictError`` otherwise."""
    paths = {run: run_checkpoint(run) for run in (run_a, run_b)}
    try:
        checkpoints = {run: read_checkpoint(path) for run, path in paths.items()}
    except CheckpointError as e:
        raise PredictError(one_line(e)) from e
    kinds = {run: checkpoint_input_kind(c) for run, c in checkpoints.items()}
    images = [run for run, kind in kinds.items() if kind == "image"]
    series = [run for run, kind in kinds.items() if kind == "series"]
    if run_a == run_b or len(images) != 1 or len(series) != 1:
        described = ", ".join(f"run {run} is {'a series' if kind == 'series' else 'an image'} model"
                              for run, kind in kinds.items())  # fmt: skip
        raise PredictError(f"an ensemble needs one image run and one series run; {described}")
    image_run, series_run = images[0], series[0]
    image = Predictor.from_checkpoint(paths[image_run], device, precision, run_id=image_run)
    return EnsemblePredictor(
        image,
        float(checkpoints[image_run].get("temperature") or 1.0),
        SeriesPredictor.from_checkpoint(paths[series_run], device, precision, run_id=series_run),
    )
